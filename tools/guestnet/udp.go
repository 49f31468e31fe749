package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"time"
)

// sendUDP connects to the sink's TCP port at addr (so the sink is
// listening before the first datagram), sends count datagrams of size
// bytes to its UDP port as fast as the socket takes them, then tells the
// sink over TCP how many it sent and waits for its EOF. It reports
// "guest: net.udp-send-pps". A send the kernel refuses (ENOBUFS) is not
// counted as sent; their number is in the text.
func sendUDP(out io.Writer, addr string, count, size int, deadline time.Time) error {
	ctl, err := dial(addr, deadline)
	if err != nil {
		return err
	}
	defer ctl.Close()
	ctl.SetDeadline(deadline)
	u, err := net.Dial("udp", addr)
	if err != nil {
		return err
	}
	defer u.Close()
	buf := make([]byte, size)
	sent, refused := 0, 0
	start := time.Now()
	for i := 0; i < count; i++ {
		buf[0], buf[1], buf[2], buf[3] = byte(i>>24), byte(i>>16), byte(i>>8), byte(i)
		if _, err := u.Write(buf); err != nil {
			if !errors.Is(err, os.ErrDeadlineExceeded) && time.Now().Before(deadline) {
				refused++
				continue
			}
			return fmt.Errorf("udp to %s after %d datagrams: %w", addr, sent, err)
		}
		sent++
	}
	d := time.Since(start)
	if _, err := fmt.Fprintf(ctl, "sent %d\n", sent); err != nil {
		return fmt.Errorf("udp: telling the sink: %w", err)
	}
	ctl.CloseWrite()
	if n, err := drain(ctl); err != nil || n != 0 {
		return fmt.Errorf("udp: waiting for the sink's EOF: %d bytes, %v", n, err)
	}
	fmt.Fprintf(out, "guest: net.udp-send-pps %.0f (%d datagrams of %d bytes in %.3f s to %s, %d refused)\n",
		float64(sent)/d.Seconds(), sent, size, d.Seconds(), addr, refused)
	return nil
}

// sinkUDP accepts the sender's TCP connection on ln, counts the datagrams
// arriving on pc and, once the sender has said how many it sent and no
// datagram came for quiet (or all did), reports "guest:
// net.udp-recv-pps" (first to last datagram) and "guest:
// net.udp-loss-pct".
func sinkUDP(out io.Writer, ln net.Listener, pc net.PacketConn, quiet time.Duration, deadline time.Time) error {
	ctl, err := accept(ln, deadline)
	if err != nil {
		return err
	}
	defer ctl.Close()
	told := make(chan int, 1)
	go func() {
		line, err := bufio.NewReader(ctl).ReadString('\n')
		n, err2 := strconv.Atoi(strings.TrimPrefix(strings.TrimSpace(line), "sent "))
		if err != nil || err2 != nil {
			n = -1
		}
		told <- n
	}()
	buf := make([]byte, 65536)
	got, sent := 0, -2 // -2: the sender has not said yet
	var first, last time.Time
	for sent < 0 || got < sent {
		if time.Now().After(deadline) {
			return fmt.Errorf("udp sink: %d datagrams by the deadline, the sender said %d", got, sent)
		}
		select {
		case n := <-told:
			if n < 0 {
				return fmt.Errorf("udp sink: the sender's count did not arrive")
			}
			sent = n
		default:
		}
		pc.SetReadDeadline(time.Now().Add(quiet))
		_, _, err := pc.ReadFrom(buf)
		if err != nil {
			if !errors.Is(err, os.ErrDeadlineExceeded) {
				return fmt.Errorf("udp sink after %d datagrams: %w", got, err)
			}
			if sent >= 0 {
				break // quiet after the sender's end: the rest are lost
			}
			continue
		}
		last = time.Now()
		if got == 0 {
			first = last
		}
		got++
	}
	loss := 0.0
	if sent > 0 {
		loss = 100 * float64(sent-got) / float64(sent)
	}
	pps := 0.0
	if d := last.Sub(first); got > 1 && d > 0 {
		pps = float64(got-1) / d.Seconds()
	}
	fmt.Fprintf(out, "guest: net.udp-recv-pps %.0f (%d of %d datagrams in %.3f s)\n", pps, got, sent, last.Sub(first).Seconds())
	fmt.Fprintf(out, "guest: net.udp-loss-pct %.2f\n", loss)
	return nil
}
