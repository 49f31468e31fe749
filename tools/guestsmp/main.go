// Command guestsmp measures a Linux guest's CPUs against each other from
// inside a partition of several VPs: how long a cross-CPU wakeup takes,
// what a remote TLB flush costs, and how CPU-bound work scales with
// threads. It is built for linux/amd64 at test time and put in a test
// guest's initramfs (tools/imagetest's BenchmarkLinuxSMP); it prints
// "guest: smp.<what> <value> (<details>)" lines for the host to read off
// the serial console. The clock is the guest's own (CLOCK_MONOTONIC):
// under QEMU's -icount, guest time.
//
// Every thread it measures with is an OS thread of its own
// (runtime.LockOSThread) pinned to one CPU (sched_setaffinity). One mode
// a run:
//
//	guestsmp -pingpong -from A -to B -n N   a token bounced N times between CPUs A and B through two pipes:
//	                                         median and 90th percentile round trip (two cross-CPU wakeups)
//	guestsmp -shootdown -cpus C -n N         CPUs 1..C-1 spin reading a shared page while CPU 0 mprotects it
//	                                         read-only and back N times: the median time per pair
//	                                         (each a TLB flush on every CPU of the spinners)
//	guestsmp -spin -threads T -ms M          T threads on CPUs 0..T-1 run a fixed CPU-bound loop for M ms:
//	                                         iterations per second, all threads together
//
// -suffix S makes the keys smp.<what>-S-<unit>: a run of a mode under
// other conditions (CPUs taken offline) beside the first. A failure prints "guest: smp.error <why>" and exits 1.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

func main() {
	pingpong := flag.Bool("pingpong", false, "round trips of a token between CPUs -from and -to")
	shootdown := flag.Bool("shootdown", false, "mprotect pairs on CPU 0 while CPUs 1..-cpus-1 spin on the page")
	spinMode := flag.Bool("spin", false, "-threads threads on CPUs 0.. run a CPU-bound loop for -ms ms")
	from := flag.Int("from", 0, "the CPU that times the round trips (-pingpong)")
	to := flag.Int("to", 1, "the CPU that sends the token back (-pingpong)")
	cpus := flag.Int("cpus", 2, "CPUs taking part, CPU 0 included (-shootdown)")
	threads := flag.Int("threads", 1, "threads (-spin)")
	ms := flag.Int("ms", 500, "how long the threads run, in ms of the guest's time (-spin)")
	n := flag.Int("n", 2000, "round trips (-pingpong) or mprotect pairs (-shootdown)")
	suffix := flag.String("suffix", "", "appended to the figures' keys (guest: smp.spin1-<suffix>-ips), to tell two runs of a mode apart")
	flag.Parse()

	w := &suffixWriter{w: os.Stdout, suffix: *suffix}
	var err error
	switch {
	case *pingpong:
		err = pingPong(w, *from, *to, *n)
	case *shootdown:
		err = shootDown(w, *cpus, *n)
	case *spinMode:
		err = spin(w, *threads, time.Duration(*ms)*time.Millisecond)
	default:
		err = fmt.Errorf("no mode: one of -pingpong, -shootdown, -spin")
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "guestsmp: %v\n", err)
		fmt.Printf("guest: smp.error %v\n", err)
		os.Exit(1)
	}
}

// suffixWriter writes the figure lines, "guest: smp.<what>-<unit> ...",
// as "guest: smp.<what>-<suffix>-<unit> ..." (the unit is the key's last
// "-" field). One line a Write.
type suffixWriter struct {
	w      io.Writer
	suffix string
}

func (s *suffixWriter) Write(p []byte) (int, error) {
	line := string(p)
	if rest, ok := strings.CutPrefix(line, "guest: "); ok && s.suffix != "" {
		if key, value, ok := strings.Cut(rest, " "); ok {
			if i := strings.LastIndex(key, "-"); i > 0 {
				line = "guest: " + key[:i] + "-" + s.suffix + key[i:] + " " + value
			}
		}
	}
	if _, err := io.WriteString(s.w, line); err != nil {
		return 0, err
	}
	return len(p), nil
}
