package metal

import (
	"math/bits"
	"math/rand/v2"
	"testing"

	"gohv/x86"
)

func TestNextExpiryIsTheEarliestThingDue(t *testing.T) {
	for _, c := range []struct {
		name                    string
		wakeAt, alarm, sliceEnd int64
		contended               bool
		want                    int64
	}{
		{"nothing due", 0, 0, 500, false, 0},
		{"a timed block alone", 700, 0, 500, false, 700},
		{"the slice counts only while another thread waits", 0, 0, 500, true, 500},
		{"slice end before the deadline", 700, 0, 500, true, 500},
		{"deadline before the slice end", 300, 0, 500, true, 300},
		{"a slice that never started is over", 0, 0, 0, true, 1},
		{"a negative slice end is over too", 700, 0, -5, true, 1},
		{"an alarm alone", 0, 900, 500, false, 900},
		{"an alarm before the deadline", 700, 400, 500, false, 400},
		{"an alarm after the slice end", 700, 600, 500, true, 500},
		{"an alarm after the deadline", 300, 600, 500, true, 300},
	} {
		if got := nextExpiry(c.wakeAt, c.alarm, c.sliceEnd, c.contended); got != c.want {
			t.Errorf("%s: nextExpiry(%d, %d, %d, %v) = %d, want %d", c.name, c.wakeAt, c.alarm, c.sliceEnd, c.contended, got, c.want)
		}
	}
}

func TestLAPICCountRoundsUpAndClamps(t *testing.T) {
	for _, c := range []struct {
		delta int64
		hz    uint64
		want  uint32
	}{
		{1000, 1e9, 1000},                 // 1 µs at 1 GHz
		{1000, 100e6, 100},                // 1 µs at 100 MHz
		{1001, 100e6, 101},                // 100.1 counts: up, never early
		{1, 100e6, 1},                     // a tenth of a count: 1
		{0, 1e9, 1},                       // due now: at once, not a stopped count
		{-50, 1e9, 1},                     // overdue
		{4_294_967_295, 1e9, 4294967295},  // exactly the largest count
		{4_294_967_296, 1e9, 4294967295},  // one more: clamped, re-armed later
		{3600e9, 1e9, 4294967295},         // an hour
		{1 << 62, 1 << 40, 4294967295},    // the product overflows 64 bits
		{10e6, 1_000_000_001, 10_000_001}, // 10 ms at a calibrated 1.000000001 GHz: 10000000.01
	} {
		if got := lapicCount(c.delta, c.hz); got != c.want {
			t.Errorf("lapicCount(%d ns, %d Hz) = %d, want %d", c.delta, c.hz, got, c.want)
		}
	}
}

// TestLongOneShotWaitIsArmedInPieces follows a wait longer than a 32-bit
// count reaches: each interrupt that comes before the deadline arms the
// rest, and the last piece ends at the deadline, not before.
func TestLongOneShotWaitIsArmedInPieces(t *testing.T) {
	const hz = 3_000_000_000 // 3 GHz LAPIC clock: a full count is 1.43 s
	deadline := int64(10e9)  // 10 s from 0
	now, pieces := int64(0), 0
	for now < deadline {
		n := lapicCount(deadline-now, hz)
		// The LAPIC interrupts after n counts: the first time the
		// count has run down, rounded up to a nanosecond.
		hi, lo := bits.Mul64(uint64(n), 1e9)
		q, r := bits.Div64(hi, lo, hz)
		if r != 0 {
			q++
		}
		now += int64(q)
		pieces++
		if pieces > 10 {
			t.Fatal("no end to the pieces")
		}
	}
	if pieces != 7 {
		t.Errorf("%d pieces for 10 s at 3 GHz, want 7 (6 full counts and the rest)", pieces)
	}
	if now-deadline > 1 {
		t.Errorf("last piece ends %d ns after the deadline", now-deadline)
	}
}

func TestTSCDeadlineIsTheFirstTSCAtTheDeadline(t *testing.T) {
	for _, hz := range []uint64{1e9, 999_123_456, 2_600_000_000, 3_500_000_000, 37_000_000} {
		mult := (uint64(1e9) << 32) / hz
		ns := func(tsc, base uint64) int64 { // nanotime's formula
			hi, lo := bits.Mul64(tsc-base, mult)
			return int64(hi<<32 | lo>>32)
		}
		for _, base := range []uint64{0, 12345, 1 << 40} {
			for _, at := range []int64{0, 1, 999, 1e6, 123_456_789, 3600e9, 86400e9 * 30} {
				v := tscDeadline(at, base, mult)
				if v == x86.TSCDeadlineDisarm {
					t.Fatalf("hz %d base %d at %d: the disarm value", hz, base, at)
				}
				if got := ns(v, base); got < at {
					t.Errorf("hz %d base %d at %d: TSC %d reads %d ns, before the deadline", hz, base, at, v, got)
				}
				if v > base {
					if got := ns(v-1, base); got >= at && at > 0 {
						t.Errorf("hz %d base %d at %d: TSC %d already reads %d ns, so %d is late", hz, base, at, v-1, got, v)
					}
				}
			}
		}
	}
	// Beyond maxTSCArmNS: the deadline for the bound, re-armed when it
	// comes.
	mult := (uint64(1e9) << 32) / 1e9
	if got, want := tscDeadline(1<<62, 100, mult), tscDeadline(maxTSCArmNS, 100, mult); got != want {
		t.Errorf("far deadline = %d, want the bound's %d", got, want)
	}
	if got := tscDeadline(-5, 100, mult); got != 100 {
		t.Errorf("deadline before the clock's start = %d, want the base 100", got)
	}
}

func TestTimerValueByMode(t *testing.T) {
	setupKernel(t)
	lapicHz = 100e6
	if w := timerValue(timerOneShot, 0, 50); w.tscDeadline || w.value != 0 {
		t.Errorf("one-shot disarm = %+v, want a count of 0", w)
	}
	if w := timerValue(timerOneShot, 1050, 50); w.tscDeadline || w.value != 100 {
		t.Errorf("one-shot 1 µs ahead at 100 MHz = %+v, want a count of 100", w)
	}
	if w := timerValue(timerTSCDeadline, 0, 50); !w.tscDeadline || w.value != x86.TSCDeadlineDisarm {
		t.Errorf("TSC-deadline disarm = %+v", w)
	}
	if w := timerValue(timerTSCDeadline, 1000, 50); !w.tscDeadline || w.value != tscBase+1000 {
		t.Errorf("TSC-deadline at 1000 ns (1 GHz TSC) = %+v, want TSC %d", w, tscBase+1000)
	}
}

// The slice end is armed only while another thread waits for the CPU: 1
// ms from the switch-in when the waiter was woken, 10 ms when it was
// preempted.
func TestSliceIsArmedOnlyWithARunnableThread(t *testing.T) {
	setupKernel(t)
	timerMode = timerTSCDeadline
	c := thisCPU()
	first := c.current
	c.sliceStart = nanotime()
	schedule() // the running thread alone
	c.armTimer()
	if c.timerArmed != 0 || hostTimer.value != 0 {
		t.Fatalf("alone, nothing due: armed %d (wrote %+v), want disarmed", c.timerArmed, hostTimer)
	}
	other := newThread()
	makeRunnable(other) // new, like a woken thread
	c.armTimer()
	if want := c.sliceStart + wakeSliceNS; c.timerArmed != want || hostTimer.value != tscDeadline(want, tscBase, tscMult) {
		t.Fatalf("a woken thread waits: armed %d (wrote %+v), want switch-in + 1 ms = %d", c.timerArmed, hostTimer, want)
	}
	schedule() // slice not over: no switch
	if c.current != first {
		t.Fatalf("switched to %d before the slice ended", c.current)
	}
	c.sliceStart = nanotime() - wakeSliceNS // over: the interrupt comes
	timerInterrupt()
	schedule()
	if c.current != other {
		t.Fatalf("slice over, another waits: running %d, want %d", c.current, other)
	}
	if c.sliceStart < nanotime()-wakeSliceNS/2 {
		t.Error("the switched-to thread got no new slice")
	}
	c.armTimer()
	if want := c.sliceStart + sliceNS; c.timerArmed != want {
		t.Errorf("the preempted thread waits: armed %d, want switch-in + 10 ms = %d", c.timerArmed, want)
	}
	// The running thread blocks without a timeout: the first runs alone.
	word := userAddr(256)
	sys(sysFutex, word, futexWait, uint64(*userU32(word)), 0)
	schedule()
	c.armTimer()
	if c.current != first || c.contended() || c.timerArmed != 0 {
		t.Errorf("alone again: running %d, contended %v, armed %d, want %d uncontended and disarmed",
			c.current, c.contended(), c.timerArmed, first)
	}
}

// A thread that finds the CPU taken by one that has had its 1 ms preempts
// it at once, at the end of the trap that woke it.
func TestWokenThreadPreemptsALongRunner(t *testing.T) {
	setupKernel(t)
	c := thisCPU()
	runner := c.current
	c.sliceStart = nanotime() - 5*wakeSliceNS // has run 5 ms alone
	sleeper := newThread()
	threads[sleeper].state = tsBlocked
	threads[sleeper].reason = blockFutex
	wake(sleeper, 0)
	schedule()
	if c.current != sleeper {
		t.Fatalf("running %d, want the woken %d", c.current, sleeper)
	}
	if wokenQueued != 0 || threads[runner].woken {
		t.Errorf("woken queued %d, runner queued as woken %v: want 0, false", wokenQueued, threads[runner].woken)
	}
}

// The interrupt wakes exactly the threads whose deadline passed and arms
// the next deadline; an early wake of the earliest moves the timer on.
func TestTimerInterruptWakesExactlyTheExpired(t *testing.T) {
	setupKernel(t)
	timerMode = timerTSCDeadline
	c := thisCPU()
	now := nanotime()
	sleepers := [3]int32{}
	deadlines := [3]int64{now - 1, now + 2e12, now + 1e12} // passed, far, near
	for k := range sleepers {
		i := newThread()
		sleepers[k] = i
		threads[i].state = tsRunning
		c.current = i
		block(blockSleep, deadlines[k])
		threads[i].frame.RAX = 99
	}
	c.current = c.idle
	threads[c.idle].state = tsRunning
	c.armTimer()
	if c.timerArmed != deadlines[0] {
		t.Fatalf("armed %d, want the earliest deadline %d", c.timerArmed, deadlines[0])
	}
	timerInterrupt()
	if s := threads[sleepers[0]]; s.state != tsRunnable || s.frame.RAX != 0 {
		t.Errorf("expired sleeper: state %d result %d, want runnable with 0", s.state, s.frame.RAX)
	}
	for _, k := range []int{1, 2} {
		if threads[sleepers[k]].state != tsBlocked {
			t.Errorf("sleeper %d with a later deadline was woken", k)
		}
	}
	if c.timerEarly != 0 {
		t.Errorf("counted an interrupt that woke a sleeper as early")
	}
	schedule()
	c.armTimer()
	if c.timerArmed != deadlines[2] {
		t.Fatalf("re-armed for %d, want the next deadline %d", c.timerArmed, deadlines[2])
	}
	// The woken sleeper blocks again, without a timeout; the CPU idles.
	if c.current != sleepers[0] {
		t.Fatalf("running %d, want the woken sleeper %d", c.current, sleepers[0])
	}
	block(blockFutex, 0)
	schedule()
	// The near sleeper is woken early (say by a futex wake): the timer
	// moves to the far one, then off.
	wake(sleepers[2], 0)
	c.armTimer()
	if c.timerArmed != deadlines[1] {
		t.Errorf("after an early wake armed %d, want %d", c.timerArmed, deadlines[1])
	}
	wake(sleepers[1], 0)
	c.armTimer()
	if c.timerArmed != 0 || hostTimer.value != x86.TSCDeadlineDisarm {
		t.Errorf("nothing left: armed %d, wrote %+v, want disarmed", c.timerArmed, hostTimer)
	}
	// An interrupt with nothing due (a moved deadline) is counted.
	timerInterrupt()
	if c.timerEarly != 1 {
		t.Errorf("early interrupts = %d, want 1", c.timerEarly)
	}
}

func TestTimerPathDoesNotAllocate(t *testing.T) {
	setupKernel(t)
	c := thisCPU()
	other := newThread()
	makeRunnable(other)
	n := testing.AllocsPerRun(100, func() {
		c.sliceStart = nanotime() - sliceNS
		timerInterrupt()
		schedule()
		c.armTimer()
	})
	if n != 0 {
		t.Errorf("%v allocations per timer interrupt", n)
	}
}

// TestTimerIsArmedForWhatIsDue drives the scheduler through random system
// calls, wakes and interrupts, and after each trap's end checks the timer
// against what is due computed from scratch: the earliest timed block, the
// slice end when another thread waits, nothing otherwise. It is what keeps
// the timerDirty shortcut honest.
func TestTimerIsArmedForWhatIsDue(t *testing.T) {
	for _, mode := range []timerKind{timerTSCDeadline, timerOneShot} {
		setupKernel(t)
		timerMode, lapicHz = mode, 1e9
		c := thisCPU()
		c.sliceStart = nanotime()
		rng := rand.New(rand.NewPCG(9, uint64(mode)))
		words := [3]uint64{userAddr(256), userAddr(260), userAddr(264)}
		ts := userAddr(512)
		timeouts := [...]uint64{0, 1, 1000, 1e9, 100e9} // ns; 0: none
		endTrap := func() {
			schedule()
			c.armTimer()
		}
		interrupt := func() {
			hostTimer = timerValue(mode, 0, 0) // the one-shot hardware disarms as it fires
			timerInterrupt()
		}
		for step := 0; step < 5000; step++ {
			if c.current == c.idle {
				// Only an interrupt runs now: the timer, or a wake from
				// elsewhere (the eventfd's, say).
				if rng.IntN(2) == 0 {
					interrupt()
				} else {
					for i := int32(1); i < threadsHigh; i++ {
						if threads[i].state == tsBlocked && threads[i].reason != blockNone {
							wake(i, 0)
							break
						}
					}
				}
				endTrap()
			} else {
				w := words[rng.IntN(len(words))]
				switch rng.IntN(9) {
				case 8: // an alarm for the running thread, or none
					alarms := [...]int64{0, 1, nanotime() + 1000, nanotime() + 5e9}
					threads[c.current].alarm = alarms[rng.IntN(len(alarms))]
					c.timerDirty = true // as SetAlarm does
				case 0, 1: // futex wait, maybe with a timeout
					d := timeouts[rng.IntN(len(timeouts))]
					*userU64(ts), *userU64(ts + 8) = d/1e9, d%1e9
					arg := ts
					if d == 0 {
						arg = 0
					}
					sys(sysFutex, w, futexWait|futexPrivate, uint64(*userU32(w)), arg)
				case 2: // nanosleep
					d := timeouts[1+rng.IntN(len(timeouts)-1)]
					*userU64(ts), *userU64(ts + 8) = d/1e9, d%1e9
					sys(sysNanosleep, ts)
				case 3, 4: // futex wake: an early end for a timed waiter
					sys(sysFutex, w, futexWake|futexPrivate, uint64(1+rng.IntN(2)))
				case 5: // a new thread
					if threadCount < 12 {
						sys(sysClone, 0x100|0x10000, 0, 0, 0, 0)
					}
				case 6:
					sys(sysSchedYield)
				case 7:
					interrupt()
				}
				endTrap()
			}
			want := nextExpiry(earliestDeadline(c), threads[c.current].alarm, c.sliceEnd(), c.contended())
			if c.timerArmed != want {
				t.Fatalf("mode %d step %d: timer armed for %d, %d is due (wakeAt %d, contended %v)",
					mode, step, c.timerArmed, want, c.wakeAt, c.contended())
			}
			fire := int64(0)
			if want != 0 {
				fire = max(want-c.timerAdvance, 1)
			}
			if c.timerFire != fire {
				t.Fatalf("step %d: fires at %d, want %d less the advance %d = %d", step, c.timerFire, want, c.timerAdvance, fire)
			}
			if mode == timerTSCDeadline {
				if w := timerValue(mode, fire, 0); hostTimer != w {
					t.Fatalf("step %d: wrote %+v, want %+v", step, hostTimer, w)
				}
			}
			if c.contended() && nanotime() >= c.sliceEnd()+sliceNS {
				t.Fatalf("step %d: a slice overran by 10 ms", step)
			}
		}
	}
}

func TestAdvanceFollowsTheInterruptLatency(t *testing.T) {
	adv := int64(0)
	for i := 0; i < 100; i++ {
		adv = nextAdvance(adv, 40_000)
	}
	if adv < 39_900 || adv > 40_000 {
		t.Errorf("after 100 interrupts 40 µs late the advance is %d ns, want about 40000", adv)
	}
	if a := nextAdvance(adv, 10_000_000); a > adv+(maxTimerAdvanceNS-adv)/8 {
		t.Errorf("one 10 ms outlier moves the advance to %d: more than its bounded share", a)
	}
	for i := 0; i < 100; i++ {
		adv = nextAdvance(adv, 1_000)
	}
	if adv > 1_100 {
		t.Errorf("back on hardware-like latency the advance stays at %d ns", adv)
	}
	if a := nextAdvance(0, -5); a != 0 {
		t.Errorf("an interrupt before its time makes the advance %d", a)
	}
}

// The timer is armed the advance ahead of the deadline; an interrupt that
// comes before the deadline waits out the rest, so the sleeper wakes at
// its deadline and not before; the latency past the armed time is learnt.
func TestInterruptBeforeTheDeadlineWaitsItOut(t *testing.T) {
	setupKernel(t)
	timerMode = timerTSCDeadline
	c := thisCPU()
	c.timerAdvance = 30_000
	deadline := nanotime() + 50_000
	block(blockSleep, deadline)
	schedule()
	c.armTimer()
	if c.timerArmed != deadline || c.timerFire != deadline-30_000 || hostTimer.value != tscDeadline(deadline-30_000, tscBase, tscMult) {
		t.Fatalf("armed %d to fire at %d (wrote %+v), want %d at %d", c.timerArmed, c.timerFire, hostTimer, deadline, deadline-30_000)
	}
	for nanotime() < c.timerFire+10_000 { // the interrupt, 10 µs after the fire time
	}
	early, spun := c.timerEarly, c.timerSpinNS
	timerInterrupt()
	if now := nanotime(); now < deadline {
		t.Errorf("the interrupt returned %d ns before the deadline", deadline-now)
	}
	if c.timerEarly != early || c.wakeAt != 0 {
		t.Errorf("the sleeper was not woken: %d early, wakeAt %d", c.timerEarly-early, c.wakeAt)
	}
	// A 10 µs sample gives 27500; a host that took the test's CPU away
	// in between gives up to the bound's 38750.
	if c.timerAdvance < 27_500 || c.timerAdvance > 38_750 {
		t.Errorf("advance after one sample = %d, want 30000 + (sample-30000)/8 for a sample of 10-100 µs", c.timerAdvance)
	}
	if c.timerSpinNS == spun && c.timerAdvance < 30_000 {
		t.Error("the interrupt came before the deadline, and no spin was counted")
	}
}

// An alarm interrupts its thread while it runs, and again every
// AlarmRepeat until the thread replaces or cancels it; it is not armed for
// a thread that is not running, and one that came due meanwhile fires
// AlarmRepeat into the thread's next slice.
func TestAlarmInterruptsItsThreadOnce(t *testing.T) {
	setupKernel(t)
	timerMode = timerTSCDeadline
	c := thisCPU()
	vp := c.current
	at := nanotime() + 1e12
	threads[vp].alarm = at
	c.timerDirty = true
	c.armTimer()
	if c.timerArmed != at {
		t.Fatalf("armed %d, want the alarm %d", c.timerArmed, at)
	}
	// The thread blocks: nothing is due on the CPU.
	word := userAddr(256)
	sys(sysFutex, word, futexWait, uint64(*userU32(word)), 0)
	schedule()
	c.armTimer()
	if c.timerArmed != 0 {
		t.Fatalf("the alarm's thread blocked, yet the timer is armed for %d", c.timerArmed)
	}
	wake(vp, 0)
	schedule()
	c.armTimer()
	if c.current != vp || c.timerArmed != at {
		t.Fatalf("back on the CPU (running %d): armed %d, want its alarm %d", c.current, c.timerArmed, at)
	}
	// It fires: not counted as early, and armed again AlarmRepeat on.
	early := c.timerEarly
	threads[vp].alarm = nanotime() - 1
	c.timerDirty = true
	c.armTimer()
	before := nanotime()
	timerInterrupt()
	schedule()
	c.armTimer()
	again := threads[vp].alarm
	if again < before+AlarmRepeat.Nanoseconds() || again > nanotime()+AlarmRepeat.Nanoseconds() || c.timerArmed != again || c.timerEarly != early {
		t.Errorf("after the alarm: alarm %d, armed %d, %d early, want it again %v on and none early",
			again-before, c.timerArmed, c.timerEarly-early, AlarmRepeat)
	}
	// Cancelled (SetAlarm(0) without its CLI), it is gone.
	threads[vp].alarm = 0
	c.timerDirty = true
	c.armTimer()
	if threads[vp].alarm != 0 || c.timerArmed != 0 {
		t.Errorf("cancelled: alarm %d, armed %d", threads[vp].alarm, c.timerArmed)
	}
	// One that comes due while the thread is off the CPU fires
	// AlarmRepeat into its next slice.
	threads[vp].alarm = nanotime() + 1000
	sys(sysFutex, word, futexWait, uint64(*userU32(word)), 0)
	schedule()
	for now := nanotime(); nanotime() < now+2000; {
	}
	wake(vp, 0)
	schedule()
	c.armTimer()
	if want := c.sliceStart + AlarmRepeat.Nanoseconds(); threads[vp].alarm != want || c.timerArmed != want {
		t.Errorf("an alarm that passed while blocked: alarm %d, armed %d, want %d", threads[vp].alarm, c.timerArmed, want)
	}
}

// An interrupt taken while the armed timer still counts is an older
// deadline's (it fired while interrupts were off, and the trap that took
// that long armed a later one): it is not waited out and changes nothing,
// and the armed deadline's own interrupt is handled as usual. Waiting it
// out spun past the new fire time and left that interrupt pending too:
// with an alarm repeating every AlarmRepeat, a CPU of a two-processor
// Bochs spun 5.9 of 6.4 s and its VP threads never ran again. The clock
// runs a thousand times slower than the TSC here, so that the host taking
// the test's CPU away does not make the timer fire early.
func TestStaleTimerInterruptIsNotWaitedOut(t *testing.T) {
	for _, mode := range []timerKind{timerTSCDeadline, timerOneShot} {
		setupKernel(t)
		timerMode, lapicHz = mode, 1e9
		tscMult = (uint64(1e9) << 32) / 1e12
		c := thisCPU()
		c.timerAdvance = 25_000
		vp := c.current
		alarm := nanotime() + AlarmRepeat.Nanoseconds() + c.timerAdvance // a repeat, as timerInterrupt arms it
		threads[vp].alarm = alarm
		c.timerDirty = true
		c.armTimer()
		armed, fire, wrote, programs := c.timerArmed, c.timerFire, hostTimer, c.timerPrograms
		if armed != alarm || fire != alarm-c.timerAdvance {
			t.Fatalf("mode %d: armed %d to fire at %d, want %d at %d", mode, armed, fire, alarm, alarm-c.timerAdvance)
		}

		spun, early := c.timerSpinNS, c.timerEarly
		c.timerWaitOut()
		timerInterrupt()
		schedule()
		c.armTimer()
		if now := nanotime(); now >= fire || c.timerSpinNS != spun {
			t.Errorf("mode %d: the stale interrupt returned %d ns after the fire time, %d ns spun; want before it, none spun", mode, now-fire, c.timerSpinNS-spun)
		}
		if c.timerArmed != armed || c.timerFire != fire || threads[vp].alarm != alarm || c.timerPrograms != programs || hostTimer != wrote {
			t.Errorf("mode %d: after the stale interrupt armed %d at %d (wrote %+v, %d programs), alarm %d; want all as before: %d at %d (%+v, %d), %d",
				mode, c.timerArmed, c.timerFire, hostTimer, c.timerPrograms, threads[vp].alarm, armed, fire, wrote, programs, alarm)
		}
		if c.timerEarly != early+1 || c.timerStale {
			t.Errorf("mode %d: %d counted early (want 1), stale still marked: %v", mode, c.timerEarly-early, c.timerStale)
		}

		for nanotime() < fire { // its own interrupt
		}
		c.timerWaitOut()
		timerInterrupt()
		if now := nanotime(); now < alarm || threads[vp].alarm <= alarm || c.timerEarly != early+1 {
			t.Errorf("mode %d: the armed deadline's interrupt returned %d ns before it, alarm moved to %d (from %d), %d early; want the alarm fired and repeated",
				mode, alarm-now, threads[vp].alarm, alarm, c.timerEarly-early)
		}
	}
}
