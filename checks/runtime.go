package checks

import (
	"errors"
	"fmt"
	"runtime"
	"runtime/debug"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"gohv/metal"
)

// Selftest checks metal and the Go runtime it hosts: threads, channels,
// the collector, timers, panics, maps and closures, mutexes, nil checks,
// and gVisor's netstack (root/hostnet) on top of them.
var Selftest = Suite{
	Word: "selftest",
	Checks: []Check{
		{"goroutines-threads", checkThreads},
		{"channel-pingpong", checkPingPong},
		{"gc-pressure", checkGC},
		{"timers", checkTimers},
		{"panic-recover", checkPanicRecover},
		{"maps-defer-closures", checkMapsDeferClosures},
		{"mutex-contention", checkMutex},
		{"nil-deref-panic", checkNilDeref},
		{"hostnet-loopback", checkHostnetLoopback},
		{"smp", checkSMP},
	},
	After: func(env *Env) {
		s := metal.GetStats()
		fmt.Fprintf(env.Out, "gohv: stats syscalls=%d context-switches=%d page-faults=%d pages-backed=%d pages-freed=%d signals=%d threads=%d free=%dMiB\n",
			s.Syscalls, s.ContextSwitches, s.PageFaults, s.PagesBacked, s.PagesFreed, s.Signals, s.Threads, s.FreeBytes>>20)
	},
}

// checkThreads runs goroutines locked to distinct OS threads (one kernel
// thread each) plus many unlocked goroutines, and requires them all to make
// progress under the preemptive scheduler.
func checkThreads(*Env) (string, error) {
	const locked = 6
	tids := make(chan int, locked)
	release := make(chan struct{})
	var wg sync.WaitGroup
	for i := 0; i < locked; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			tids <- syscall.Gettid()
			// Spin without blocking until released: only preemption of
			// kernel threads lets the others run.
			for {
				select {
				case <-release:
					return
				default:
				}
				for i := 0; i < 1000; i++ {
				}
			}
		}()
	}
	seen := map[int]bool{}
	deadline := time.After(30 * time.Second)
	for len(seen) < locked {
		select {
		case t := <-tids:
			seen[t] = true
		case <-deadline:
			close(release)
			return "", fmt.Errorf("only %d of %d locked goroutines started", len(seen), locked)
		}
	}
	close(release)
	wg.Wait()
	var sum int64
	var wg2 sync.WaitGroup
	var mu sync.Mutex
	for i := 0; i < 1000; i++ {
		wg2.Add(1)
		go func(i int) {
			defer wg2.Done()
			mu.Lock()
			sum += int64(i)
			mu.Unlock()
		}(i)
	}
	wg2.Wait()
	if sum != 999*1000/2 {
		return "", fmt.Errorf("1000 goroutines summed to %d", sum)
	}
	ids := make([]int, 0, len(seen))
	for t := range seen {
		ids = append(ids, t)
	}
	sort.Ints(ids)
	return fmt.Sprintf("%d locked goroutines on distinct kernel threads %v, 1000 goroutines joined", locked, ids), nil
}

func checkPingPong(*Env) (string, error) {
	const n = 20000
	ping, pong := make(chan int), make(chan int)
	go func() {
		for v := range ping {
			pong <- v + 1
		}
		close(pong)
	}()
	start := metal.Nanotime()
	for i := 0; i < n; i++ {
		ping <- i
		if v := <-pong; v != i+1 {
			return "", fmt.Errorf("round %d: got %d", i, v)
		}
	}
	close(ping)
	el := metal.Nanotime() - start
	return fmt.Sprintf("%d round trips, %d ns each", n, el/n), nil
}

// checkGC allocates 2 GiB in total while keeping at most 32 MiB live, then
// requires the heap to come back to its starting size.
func checkGC(*Env) (string, error) {
	runtime.GC()
	var before, peak, after runtime.MemStats
	runtime.ReadMemStats(&before)
	const chunk = 256 << 10
	const liveChunks = 128 // 32 MiB live
	const total = 2 << 30
	ring := make([][]byte, liveChunks)
	var maxHeap uint64
	for i := 0; i < total/chunk; i++ {
		b := make([]byte, chunk)
		b[0], b[len(b)-1] = byte(i), byte(i>>8)
		ring[i%liveChunks] = b
		if i%512 == 0 {
			runtime.ReadMemStats(&peak)
			maxHeap = max(maxHeap, peak.HeapAlloc)
		}
	}
	for i, b := range ring {
		if b == nil || len(b) != chunk {
			return "", fmt.Errorf("live chunk %d lost", i)
		}
	}
	ring = nil
	runtime.GC()
	debug.FreeOSMemory()
	runtime.ReadMemStats(&after)
	gcs := after.NumGC - before.NumGC
	if gcs < 10 {
		return "", fmt.Errorf("only %d collections for 2 GiB of garbage", gcs)
	}
	// Without a working collector the heap would reach 2 GiB. With one it
	// stays near GOGC's goal of twice the marked heap, but the marked heap
	// includes what was allocated during a concurrent mark, and HeapAlloc
	// counts dead objects not yet swept: under TCG, where the mark runs
	// slowly next to this loop, peaks of 100 MiB are seen, and 134 MiB on
	// a host busy with other emulators. Eight times the live set (256 MiB,
	// an eighth of what was allocated) separates those from a collector
	// that is not reclaiming. With several CPUs the mark runs on another
	// CPU, which the emulator gives a share of its time, while this loop
	// allocates on its own: up to 287 MiB was seen with 4 CPUs under
	// -icount, and 277 MiB with 2 on a busy host, so the bound grows by
	// half of it for each CPU beyond the first, up to half of what was
	// allocated (1 GiB: a collector that does not reclaim reaches 2).
	limit := min(uint64(8*liveChunks*chunk)*uint64(metal.CPUCount()+1)/2, total/2)
	if maxHeap > limit {
		return "", fmt.Errorf("heap peaked at %d MiB with 32 MiB live (limit %d MiB on %d CPUs)", maxHeap>>20, limit>>20, metal.CPUCount())
	}
	if after.HeapAlloc > before.HeapAlloc+4<<20 {
		return "", fmt.Errorf("heap did not return to steady state: %d KiB before, %d KiB after", before.HeapAlloc>>10, after.HeapAlloc>>10)
	}
	s := metal.GetStats()
	return fmt.Sprintf("2048 MiB allocated, 32 MiB live, %d GCs, heap peak %d MiB, heap %d KiB before / %d KiB after, released to kernel %d pages",
		gcs, maxHeap>>20, before.HeapAlloc>>10, after.HeapAlloc>>10, s.PagesFreed), nil
}

// checkTimers compares time.Sleep, time.Timer and the nanosleep system
// call against the calibrated TSC clock. metal's one-shot timer ends a
// nanosleep within microseconds of its deadline; the runtime's timers wait
// in epoll_pwait, whose timeout is whole milliseconds, so time.Sleep ends
// up to 1 ms late. The bound leaves room for QEMU TCG on a loaded host,
// and a round that overshoots it is tried again, up to timerRounds in
// all: the emulator's process descheduled for a moment makes one sleep
// late, a timer that is not woken on time makes every round late.
func checkTimers(*Env) (string, error) {
	const timerRounds = 3
	var errs []string
	for range timerRounds {
		detail, err := timerRound()
		if err == nil {
			if len(errs) > 0 {
				detail += fmt.Sprintf(" (after %d late rounds: %s)", len(errs), strings.Join(errs, "; "))
			}
			return detail, nil
		}
		if !errors.As(err, new(timerLate)) {
			return "", err
		}
		errs = append(errs, err.Error())
	}
	return "", fmt.Errorf("late in all %d rounds: %s", timerRounds, strings.Join(errs, "; "))
}

// timerLate is a round of checkTimers that woke within the rules but
// beyond the bound.
type timerLate string

func (e timerLate) Error() string { return string(e) }

// timerRound is one round of checkTimers.
func timerRound() (string, error) {
	const bound = 20 * time.Millisecond
	var worst time.Duration
	var total time.Duration
	durations := []time.Duration{time.Millisecond, 5 * time.Millisecond, 20 * time.Millisecond, 50 * time.Millisecond}
	for _, d := range durations {
		start := metal.Nanotime()
		time.Sleep(d)
		got := time.Duration(metal.Nanotime() - start)
		off := got - d
		if off < 0 {
			return "", fmt.Errorf("time.Sleep(%v) returned after %v", d, got)
		}
		total += off
		worst = max(worst, off)
	}
	start := metal.Nanotime()
	t := time.NewTimer(30 * time.Millisecond)
	<-t.C
	tgot := time.Duration(metal.Nanotime() - start)
	if tgot < 30*time.Millisecond {
		return "", fmt.Errorf("30ms timer fired after %v", tgot)
	}
	worst = max(worst, tgot-30*time.Millisecond)
	if worst > bound {
		return "", timerLate(fmt.Sprintf("sleep overshoot up to %v (bound %v)", worst, bound))
	}
	var nsWorst time.Duration
	for _, d := range []time.Duration{50 * time.Microsecond, 300 * time.Microsecond, 2 * time.Millisecond} {
		ts := syscall.NsecToTimespec(int64(d))
		start := metal.Nanotime()
		if err := syscall.Nanosleep(&ts, nil); err != nil {
			return "", fmt.Errorf("nanosleep(%v): %w", d, err)
		}
		off := time.Duration(metal.Nanotime()-start) - d
		if off < 0 {
			return "", fmt.Errorf("nanosleep(%v) returned %v early", d, -off)
		}
		nsWorst = max(nsWorst, off)
	}
	if nsWorst > bound {
		return "", timerLate(fmt.Sprintf("nanosleep overshoot up to %v (bound %v)", nsWorst, bound))
	}
	wall := time.Since(time.Unix(0, 0)) > 0
	return fmt.Sprintf("time.Sleep late by %v on average, %v at worst (epoll's whole milliseconds); nanosleep late by %v at worst (%s timer); wall clock set=%v",
		total/time.Duration(len(durations)), worst, nsWorst, metal.GetInfo().Timer, wall), nil
}

func checkPanicRecover(*Env) (string, error) {
	var got any
	func() {
		defer func() { got = recover() }()
		panic("deliberate")
	}()
	if got != "deliberate" {
		return "", fmt.Errorf("recovered %v", got)
	}
	var err error
	func() {
		defer func() {
			if r := recover(); r != nil {
				err, _ = r.(error)
			}
		}()
		var a []int
		_ = a[len(a)+3]
	}()
	if err == nil || !strings.Contains(err.Error(), "index out of range") {
		return "", fmt.Errorf("bounds check recovered %v", err)
	}
	return "panic(string) and a bounds-check runtime error both recovered", nil
}

func checkMapsDeferClosures(*Env) (string, error) {
	m := map[string]int{}
	for i := 0; i < 10000; i++ {
		m[fmt.Sprint("k", i)] = i
	}
	for i := 0; i < 10000; i += 2 {
		delete(m, fmt.Sprint("k", i))
	}
	if len(m) != 5000 || m["k9999"] != 9999 {
		return "", fmt.Errorf("map has %d entries", len(m))
	}
	var order []int
	func() {
		for i := 0; i < 3; i++ {
			defer func() { order = append(order, i) }()
		}
	}()
	if fmt.Sprint(order) != "[2 1 0]" {
		return "", fmt.Errorf("defer order %v", order)
	}
	counter := func() func() int {
		c := 0
		return func() int { c++; return c }
	}()
	counter()
	if counter() != 2 {
		return "", errors.New("closure lost its state")
	}
	return "map of 10000 keys, LIFO defers, stateful closure", nil
}

func checkMutex(*Env) (string, error) {
	const workers, iters = 4, 20000
	var mu sync.Mutex
	n := 0
	var wg sync.WaitGroup
	tids := make([]int, workers)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			tids[w] = syscall.Gettid()
			for i := 0; i < iters; i++ {
				mu.Lock()
				v := n
				if i%100 == 0 {
					runtime.Gosched()
				}
				n = v + 1
				mu.Unlock()
			}
		}(w)
	}
	wg.Wait()
	if n != workers*iters {
		return "", fmt.Errorf("counter %d, want %d", n, workers*iters)
	}
	return fmt.Sprintf("%d threads %v × %d locked increments", workers, tids, iters), nil
}

type node struct {
	next *node
	v    int
}

// sink keeps the deliberate nil dereference from being optimised away.
var sink int

// checkNilDeref faults on page 0 inside a goroutine; metal turns the page
// fault into SIGSEGV and the runtime into a recoverable runtime error.
func checkNilDeref(*Env) (string, error) {
	res := make(chan error, 1)
	go func() {
		defer func() {
			r := recover()
			err, _ := r.(error)
			res <- err
		}()
		var p *node
		sink = p.next.v
	}()
	err := <-res
	if err == nil {
		return "", errors.New("nil dereference did not panic")
	}
	if !strings.Contains(err.Error(), "nil pointer dereference") {
		return "", fmt.Errorf("recovered %q", err)
	}
	return fmt.Sprintf("recovered %q", err.Error()), nil
}
