package checks

import (
	"errors"
	"fmt"
	"runtime"
	"runtime/debug"
	"slices"
	"sync"
	"time"

	"gohv/hv"
	"gohv/hv/vcpu"
	"gohv/metal"
	"gohv/testguests"
)

// checkSMP: every online CPU runs Go code. A goroutine locked to its thread
// and bound to each CPU (metal.PinThread) finds itself there, sleeps on its
// CPU's timer, and passes a token around the ring of CPUs through
// channels (futex waits and wakes from one CPU to another, which take
// reschedule IPIs).
func checkSMP(*Env) (string, error) {
	n := metal.CPUCount()
	var cpus []int
	for i := range vcpu.MaxHostCPUs {
		if metal.CPUOnline(i) {
			cpus = append(cpus, i)
		}
	}
	const laps = 200
	ring := make([]chan int, len(cpus))
	for k := range ring {
		ring[k] = make(chan int, 1)
	}
	var wg sync.WaitGroup
	errs := make([]error, len(cpus))
	t0 := time.Now()
	for k, cpu := range cpus {
		wg.Add(1)
		go func() {
			defer wg.Done()
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			if err := metal.PinThread(cpu); err != nil {
				errs[k] = err
				return
			}
			defer metal.PinThread(-1)
			if got := metal.CurrentCPU(); got != cpu {
				errs[k] = fmt.Errorf("bound to CPU %d, runs on %d", cpu, got)
				return
			}
			s := time.Now()
			time.Sleep(2 * time.Millisecond)
			if d := time.Since(s); d < 2*time.Millisecond || d > 500*time.Millisecond {
				errs[k] = fmt.Errorf("CPU %d: a 2 ms sleep took %v", cpu, d)
				return
			}
			next := ring[(k+1)%len(ring)]
			if k == 0 {
				next <- 0
			}
			for lap := 0; lap < laps; lap++ {
				v := <-ring[k]
				if metal.CurrentCPU() != cpu {
					errs[k] = fmt.Errorf("CPU %d: woken on CPU %d", cpu, metal.CurrentCPU())
					return
				}
				next <- v + 1
			}
		}()
	}
	wg.Wait()
	ring0 := time.Since(t0)
	if err := errors.Join(errs...); err != nil {
		return "", err
	}
	s := metal.GetStats()
	detail := fmt.Sprintf("%d cpus online; a goroutine bound to each ran there, slept 2 ms and passed a token %d times around the ring; all in %v; %d IPIs, %d TLB shootdowns",
		n, laps, ring0.Round(time.Millisecond), s.IPIs, s.Shootdowns)
	if n > 1 && s.IPIs == 0 {
		return "", fmtErr("%s: no IPI was sent between the CPUs", detail)
	}
	return detail, nil
}

// checkGCPauseSpinning: the garbage collector's stop-the-world reaches every
// CPU while it runs a spinning guest (a VP in guest mode only leaves it at
// its time slice's host interrupt): with a partition spinning on every host
// CPU that runs VPs (all but the boot CPU when there are several), forced
// collections' longest pause stays bounded. The VPs land one per CPU
// (placement spreads them).
func checkGCPauseSpinning(env *Env) (string, error) {
	n := metal.CPUCount()
	first := 0 // the first CPU that runs VPs
	if n > 1 {
		first = 1
	}
	var parts []*hv.Partition
	defer func() {
		for _, p := range parts {
			p.Stop("the check is done")
			destroy(p)
		}
	}()
	for i := first; i < n; i++ {
		p, err := env.start(fmt.Sprintf("spin%d", i), 4<<20, testguests.Spin, testguests.Options{}, nil)
		if err != nil {
			return "", err
		}
		parts = append(parts, p)
	}
	time.Sleep(100 * time.Millisecond)
	placed := env.hv.PlacedVPs()
	for i := first; i < n; i++ {
		if placed[i] != 1 {
			return "", fmtErr("VPs per host CPU %v: want one on each of CPUs %d to %d", placed[:n], first, n-1)
		}
	}
	var before debug.GCStats
	debug.ReadGCStats(&before)
	const collections = 10
	junk := make([][]byte, 0, 1024)
	for range collections {
		for range 256 {
			junk = append(junk, make([]byte, 4096))
		}
		runtime.GC()
		junk = junk[:0]
	}
	var after debug.GCStats
	after.PauseQuantiles = make([]time.Duration, 5)
	debug.ReadGCStats(&after)
	got := after.NumGC - before.NumGC
	pauses := after.Pause[:min(int(got), len(after.Pause))]
	longest := slices.Max(pauses)
	for _, p := range parts {
		if r := p.Result(); r.State != hv.StateRunning {
			return "", fmtErr("partition %s ended during the collections: %v", p.Name, r)
		}
	}
	detail := fmt.Sprintf("%d spinning guests, one on each CPU that runs VPs, of %d; %d collections, longest stop-the-world pause %v",
		len(parts), n, got, longest.Round(time.Microsecond))
	// A VP's slice is hv.TimeSlice: each pause waits for about one, on an
	// emulator whose host may not run every virtual CPU at once (QEMU TCG
	// -smp 4 on 2 cores paused up to 29 ms) for several. Without the
	// slice's exit a pause would not end at all.
	if longest > 50*hv.TimeSlice {
		return "", fmtErr("%s: longer than 50 VP time slices (%v)", detail, 50*hv.TimeSlice)
	}
	return detail, nil
}
