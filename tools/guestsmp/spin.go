package main

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// sink keeps the measured loops' results live, so the compiler cannot
// drop the loops.
var sink atomic.Uint64

// spinBlock is how many iterations a spinning thread runs between looks at
// the clock.
const spinBlock = 4096

// spin runs threads threads on CPUs 0..threads-1, each iterating
// xorshift64 for d of wall time from a common start, and reports the
// iterations per second of all of them together and each one's count.
func spin(w io.Writer, threads int, d time.Duration) error {
	if threads < 1 || d <= 0 {
		return fmt.Errorf("spin: -threads %d -ms %d: want a thread and some time", threads, d.Milliseconds())
	}
	var ready sync.WaitGroup
	ready.Add(threads)
	start := make(chan time.Time)
	iters := make([]uint64, threads)
	ids := make([]int, threads+1)
	for i := range threads {
		ids[i] = i
	}
	ids[threads] = 0 // the starter shares CPU 0 and sleeps while the others run
	var late time.Duration
	err := onThreads(ids, func(i int) error {
		if i == threads {
			ready.Wait()
			t0 := time.Now()
			for range threads {
				start <- t0
			}
			return nil
		}
		ready.Done()
		t0 := <-start
		end := t0.Add(d)
		x := uint64(i + 1)
		var k uint64
		var now time.Time
		for now = time.Now(); now.Before(end); now = time.Now() {
			x = xorshift(x, spinBlock)
			k += spinBlock
		}
		iters[i] = k
		sink.Add(x) // x kept live: the loop is not dead code
		if over := now.Sub(end); i == 0 {
			late = over
		}
		return nil
	})
	if err != nil {
		return err
	}
	var total uint64
	per := make([]string, threads)
	for i, k := range iters {
		total += k
		per[i] = fmt.Sprint(k)
	}
	fmt.Fprintf(w, "guest: smp.spin%d-ips %.4g (%d threads on CPUs 0..%d for %d ms; iterations per thread %s; CPU 0 stopped %.0f us late)\n",
		threads, float64(total)/d.Seconds(), threads, threads-1, d.Milliseconds(), strings.Join(per, " "), us(late))
	return nil
}

// xorshift iterates Marsaglia's xorshift64 n times from x: a fixed amount
// of CPU work per iteration, no memory traffic.
func xorshift(x uint64, n int) uint64 {
	for range n {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
	}
	return x
}
