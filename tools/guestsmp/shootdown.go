package main

import (
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// shootDown maps a shared page, has threads on CPUs 1..cpus-1 spin
// reading it (the process's address space is live on their CPUs and the
// page in their TLBs), and times n pairs of mprotect(PROT_READ) and
// mprotect(PROT_READ|PROT_WRITE) of the page on CPU 0. Taking the write
// permission away obliges the kernel to flush the page from every CPU the
// address space is live on before mprotect returns (a TLB shootdown:
// IPIs, or under Hyper-V the remote-flush hypercall); with cpus 1 the
// flush is CPU 0's alone.
func shootDown(w io.Writer, cpus, n int) error {
	if cpus < 1 || n < 1 {
		return fmt.Errorf("shootdown: -cpus %d -n %d: want a CPU and a pair", cpus, n)
	}
	page := unix.Getpagesize()
	mem, err := unix.Mmap(-1, 0, page, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_ANONYMOUS)
	if err != nil {
		return fmt.Errorf("shootdown: mmap: %w", err)
	}
	defer unix.Munmap(mem)
	mem[0] = 1 // fault the page in: mprotect then has a PTE to change

	var ready sync.WaitGroup
	ready.Add(cpus - 1)
	var stop atomic.Bool
	var spins atomic.Uint64
	pairs := make([]time.Duration, n)
	ids := make([]int, cpus)
	for i := range ids {
		ids[i] = i
	}
	err = onThreads(ids, func(i int) error {
		if i > 0 { // a spinner
			ready.Done()
			var sum byte
			var k uint64
			for !stop.Load() {
				sum += mem[k%uint64(len(mem))] // a read: allowed while read-only
				k++
			}
			spins.Add(k)
			sink.Add(uint64(sum))
			return nil
		}
		defer stop.Store(true)
		ready.Wait()
		for p := range pairs {
			t0 := time.Now()
			if err := unix.Mprotect(mem, unix.PROT_READ); err != nil {
				return fmt.Errorf("shootdown: mprotect read-only: %w", err)
			}
			if err := unix.Mprotect(mem, unix.PROT_READ|unix.PROT_WRITE); err != nil {
				return fmt.Errorf("shootdown: mprotect read-write: %w", err)
			}
			pairs[p] = time.Since(t0)
		}
		return nil
	})
	if err != nil {
		return err
	}
	s := summarise(pairs)
	spinners := "no spinners"
	if cpus > 1 {
		spinners = fmt.Sprintf("spinners on CPUs 1..%d", cpus-1)
	}
	fmt.Fprintf(w, "guest: smp.shootdown%d-median-us %.2f (%d mprotect pairs on CPU 0, %s)\n", cpus, us(s.median), n, spinners)
	fmt.Fprintf(w, "guest: smp.shootdown%d-p90-us %.2f (mean %.2f us, max %.0f us, %d of 1 ms or more; the spinners read %d times)\n",
		cpus, us(s.p90), us(s.mean), us(s.max), s.slow, spins.Load())
	return nil
}
