package main

import (
	"fmt"
	"runtime"

	"golang.org/x/sys/unix"
)

// pin locks the calling goroutine to its OS thread and that thread to
// cpu. The goroutine must end without unlocking: the runtime then ends the
// thread too, so no other goroutine inherits the affinity.
func pin(cpu int) error {
	runtime.LockOSThread()
	var set unix.CPUSet
	set.Set(cpu)
	if err := unix.SchedSetaffinity(0, &set); err != nil {
		return fmt.Errorf("sched_setaffinity to CPU %d: %w", cpu, err)
	}
	return nil
}

// onThreads runs f(i) for i in 0..n-1, each on a new goroutine pinned to
// cpus[i], and returns the first error: a failed pin or f's.
func onThreads(cpus []int, f func(i int) error) error {
	errs := make(chan error, len(cpus))
	for i, cpu := range cpus {
		go func() {
			if err := pin(cpu); err != nil {
				errs <- err
				return
			}
			errs <- f(i)
		}()
	}
	var first error
	for range cpus {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	return first
}
