package main

import (
	"errors"
	"fmt"
	"io"
	"time"

	"golang.org/x/sys/unix"
)

// pingWarmup round trips go unreported: the first ones fault pages in.
const pingWarmup = 10

// pingPong bounces one byte n times between a thread on CPU from and one
// on CPU to, through a pipe each way, and reports the round trips timed on
// CPU from. The pipes are blocking and read with read(2) directly, not
// through the runtime's poller: each read puts its thread to sleep in the
// kernel, so each hop wakes a sleeping thread on the other CPU (a
// reschedule IPI, to a halted CPU when the other one is idle).
func pingPong(w io.Writer, from, to, n int) error {
	if from == to || n < 1 {
		return fmt.Errorf("pingpong: -from %d -to %d -n %d: want two CPUs and a round trip", from, to, n)
	}
	var there, back [2]int // [0] reads, [1] writes
	if err := unix.Pipe2(there[:], unix.O_CLOEXEC); err != nil {
		return fmt.Errorf("pingpong: pipe: %w", err)
	}
	if err := unix.Pipe2(back[:], unix.O_CLOEXEC); err != nil {
		unix.Close(there[0])
		unix.Close(there[1])
		return fmt.Errorf("pingpong: pipe: %w", err)
	}
	rtt := make([]time.Duration, pingWarmup+n)
	err := onThreads([]int{from, to}, func(i int) error {
		tok := []byte{0}
		if i == 1 { // the echo
			defer unix.Close(back[1])
			for range rtt {
				if err := echo(there[0], back[1], tok); err != nil {
					return fmt.Errorf("pingpong: CPU %d: %w", to, err)
				}
			}
			return nil
		}
		defer unix.Close(there[1]) // the echo sees EOF should this side fail
		for r := range rtt {
			t0 := time.Now()
			if err := roundTrip(there[1], back[0], tok); err != nil {
				return fmt.Errorf("pingpong: CPU %d: round trip %d: %w", from, r, err)
			}
			rtt[r] = time.Since(t0)
		}
		return nil
	})
	unix.Close(there[0])
	unix.Close(back[0])
	if err != nil {
		return err
	}
	s := summarise(rtt[pingWarmup:])
	fmt.Fprintf(w, "guest: smp.pingpong-median-us %.2f (CPU %d <-> %d, %d round trips)\n", us(s.median), from, to, n)
	fmt.Fprintf(w, "guest: smp.pingpong-p90-us %.2f (mean %.2f us, max %.0f us, %d of 1 ms or more)\n", us(s.p90), us(s.mean), us(s.max), s.slow)
	return nil
}

// echo reads the token from in and writes it to out.
func echo(in, out int, tok []byte) error {
	if err := readFull(in, tok); err != nil {
		return err
	}
	return writeFull(out, tok)
}

// roundTrip writes the token to out and waits for it on in.
func roundTrip(out, in int, tok []byte) error {
	if err := writeFull(out, tok); err != nil {
		return err
	}
	return readFull(in, tok)
}

// readFull reads len(b) bytes from fd, retrying on EINTR.
func readFull(fd int, b []byte) error {
	for len(b) > 0 {
		n, err := unix.Read(fd, b)
		switch {
		case errors.Is(err, unix.EINTR):
			continue
		case err != nil:
			return fmt.Errorf("read: %w", err)
		case n == 0:
			return io.ErrUnexpectedEOF
		}
		b = b[n:]
	}
	return nil
}

// writeFull writes b to fd, retrying on EINTR.
func writeFull(fd int, b []byte) error {
	for len(b) > 0 {
		n, err := unix.Write(fd, b)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return fmt.Errorf("write: %w", err)
		}
		b = b[n:]
	}
	return nil
}
