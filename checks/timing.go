package checks

import (
	"errors"
	"fmt"
	"math"
	"runtime"
	"runtime/metrics"
	"sort"
	"syscall"
	"time"

	"gohv/hv"
	"gohv/metal"
	"gohv/testguests"
)

// Timing measures for the bench: how late metal's timed waits end, how
// often the timer interrupts an idle machine, and the longest Go
// stop-the-world pause with and without a guest spinning on a VP thread.
// Every lateness is in nanoseconds of metal's clock (the TSC, converted with
// its calibrated rate): under QEMU -icount shift=0 and Bochs with clock
// sync=none that is emulated time, so the figures are the guest's view.

// sleepLengths are the requested lengths the lateness measures cycle
// through: shorter and longer than a slice, a tick of the old periodic
// timer, and an epoll millisecond.
var sleepLengths = [...]time.Duration{
	20 * time.Microsecond, 50 * time.Microsecond, 100 * time.Microsecond, 200 * time.Microsecond,
	500 * time.Microsecond, time.Millisecond, 1500 * time.Microsecond, 2 * time.Millisecond,
}

// benchTimers prints the lateness of nanosleep, time.Sleep and
// metal.SetAlarm, and the timer interrupts per second of an idle machine. (A futex wait's timeout
// ends through the same timed block in metal as nanosleep; measuring it
// here would need package unsafe for the futex word.)
func benchTimers(env *Env) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	const n = 1000
	var errs []error
	nanosleep := lateness(n, func(d time.Duration) {
		ts := syscall.NsecToTimespec(int64(d))
		if err := syscall.Nanosleep(&ts, nil); err != nil {
			errs = append(errs, fmt.Errorf("nanosleep: %w", err))
		}
	})
	sleep := lateness(n/4, time.Sleep)
	alarm := lateness(n/4, func(d time.Duration) {
		if err := spinUntilAlarm(d); err != nil {
			errs = append(errs, err)
		}
	})
	if len(errs) > 0 {
		return errs[0]
	}
	for _, m := range []struct {
		name, what string
		late       []int64
	}{
		{"nanosleep", "nanosleep system call", nanosleep},
		{"time-sleep", "time.Sleep (the runtime's timers: epoll_pwait, whole milliseconds)", sleep},
		{"alarm", "metal.SetAlarm interrupts of a spinning thread (to its resumption)", alarm},
	} {
		pct := func(p int) int64 { return m.late[len(m.late)*p/100] }
		med, p99, worst := pct(50), pct(99), m.late[len(m.late)-1]
		fmt.Fprintf(env.Out, "gohv: measure %s-late-median %d ns past the deadline over %d %s of 20us-2ms (min %d, p10 %d, p90 %d, p99 %d, max %d)\n",
			m.name, med, len(m.late), m.what, m.late[0], pct(10), pct(90), p99, worst)
		fmt.Fprintf(env.Out, "gohv: measure %s-late-p99 %d ns past the deadline, 99th percentile of the same\n", m.name, p99)
	}

	// An idle second: nothing is due but the end of this sleep (and what
	// the runtime itself schedules), so a tickless timer hardly fires.
	const idle = 2 * time.Second
	s0 := metal.GetStats()
	time.Sleep(idle)
	s1 := metal.GetStats()
	perSec := func(n uint64) float64 { return float64(n) / idle.Seconds() }
	st := metal.GetStats()
	fmt.Fprintf(env.Out, "gohv: timer %s, armed %v ahead of each deadline (the interrupt's measured latency), %v spun in all waiting out the rest\n",
		metal.GetInfo().Timer, time.Duration(st.TimerAdvanceNanos), time.Duration(st.TimerSpinNanos))
	fmt.Fprintf(env.Out, "gohv: measure idle-timer-interrupts %.1f per-second timer interrupts while the root sleeps %v with nothing else due (%.1f/s found nothing due; %.1f/s interrupts woke the idle CPU; timer %s)\n",
		perSec(s1.TimerInterrupts-s0.TimerInterrupts), idle, perSec(s1.TimerEarly-s0.TimerEarly), perSec(s1.IdleWakeups-s0.IdleWakeups), metal.GetInfo().Timer)
	return nil
}

// spinUntilAlarm sets an alarm d ahead and spins, as a VP thread in its
// guest would run, until the interrupt shows as a gap in the TSC readings
// that ends after the deadline; it returns at the gap's end, when the
// thread runs again.
func spinUntilAlarm(d time.Duration) error {
	const gap = 200 // ns: ten turns of the loop; a trap takes 500 or more
	deadline := metal.Nanotime() + int64(d)
	metal.SetAlarm(deadline)
	prev := metal.Nanotime()
	for {
		now := metal.Nanotime()
		if now-prev > gap && now >= deadline {
			return nil
		}
		if now > deadline+int64(time.Second) {
			metal.SetAlarm(0)
			return fmt.Errorf("alarm %v ahead: no interrupt a second after its deadline", d)
		}
		prev = now
	}
}

// lateness runs wait n times over sleepLengths and returns, sorted, how
// many nanoseconds past the requested length each returned.
func lateness(n int, wait func(time.Duration)) []int64 {
	late := make([]int64, 0, n)
	for i := 0; i < n; i++ {
		d := sleepLengths[i%len(sleepLengths)]
		t0 := metal.TSC()
		wait(d)
		late = append(late, metal.TSCToNanos(metal.TSC()-t0)-int64(d))
	}
	sort.Slice(late, func(a, b int) bool { return late[a] < late[b] })
	return late
}

// benchPauses prints the longest garbage-collector stop-the-world pause over
// a series of forced collections, first with the root alone, then with a
// guest spinning on a VP thread. Two Ps: the spinning VP's goroutine keeps
// one, inside the guest, so a stop-the-world has to wait until that VP
// thread leaves the guest — which, on one CPU, needs metal to preempt it.
func benchPauses(env *Env) error {
	if env.hv == nil {
		if err := openHypervisor(env); err != nil {
			return err
		}
	}
	prev := runtime.GOMAXPROCS(2)
	defer runtime.GOMAXPROCS(prev)
	const gcs = 30
	alone, n0 := stwPause(gcs)
	p, err := env.start("spin", 4<<20, testguests.Spin, testguests.Options{}, nil)
	if err != nil {
		return err
	}
	time.Sleep(20 * time.Millisecond) // the VP thread is in the guest
	spinning, n1 := stwPause(gcs)
	exits := p.VP(0).Exits
	p.Stop("the measure is done")
	r := p.WaitOrStop(5 * time.Second)
	p.Destroy()
	if !errors.Is(r.Err, hv.ErrStopRequested) {
		return fmt.Errorf("spinning guest: %v, want stopped on request", r)
	}
	var intr uint64
	for _, x := range exits {
		intr += x
	}
	fmt.Fprintf(env.Out, "gohv: measure stw-max-pause-alone %d ns longest stop-the-world pause over %d pauses of %d forced GCs, GOMAXPROCS 2, no guest (runtime/metrics bucket bound)\n",
		alone, n0, gcs)
	fmt.Fprintf(env.Out, "gohv: measure stw-max-pause-spinning-guest %d ns the same while a guest spins on a VP thread (%d pauses; the VP took %d exits)\n",
		spinning, n1, intr)
	return nil
}

// stwPause forces n collections and returns the upper bound of the
// highest runtime/metrics bucket their stop-the-world pauses landed in, in
// nanoseconds, and how many pauses were counted.
func stwPause(n int) (int64, uint64) {
	const name = "/sched/pauses/total/gc:seconds"
	s := []metrics.Sample{{Name: name}}
	metrics.Read(s)
	before := s[0].Value.Float64Histogram()
	counts := append([]uint64(nil), before.Counts...)
	for i := 0; i < n; i++ {
		runtime.GC()
	}
	metrics.Read(s)
	after := s[0].Value.Float64Histogram()
	var worst float64
	var total uint64
	for i, c := range after.Counts {
		if d := c - counts[i]; d > 0 {
			total += d
			hi := after.Buckets[i+1]
			if math.IsInf(hi, 1) {
				hi = after.Buckets[i]
			}
			worst = hi
		}
	}
	return int64(worst * 1e9), total
}
