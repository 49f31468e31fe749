package metal

import (
	"math/bits"
	"testing"

	"gohv/x86"
)

func TestNextExpiryIsTheEarliestThingDue(t *testing.T) {
	for _, c := range []struct {
		name             string
		wakeAt, sliceEnd int64
		contended        bool
		want             int64
	}{
		{"nothing due", 0, 500, false, 0},
		{"a timed block alone", 700, 500, false, 700},
		{"the slice counts only while another thread waits", 0, 500, true, 500},
		{"slice end before the deadline", 700, 500, true, 500},
		{"deadline before the slice end", 300, 500, true, 300},
		{"a slice that never started is over", 0, 0, true, 1},
		{"a negative slice end is over too", 700, -5, true, 1},
	} {
		if got := nextExpiry(c.wakeAt, c.sliceEnd, c.contended); got != c.want {
			t.Errorf("%s: nextExpiry(%d, %d, %v) = %d, want %d", c.name, c.wakeAt, c.sliceEnd, c.contended, got, c.want)
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

// The slice end is armed only while another thread waits for the CPU.
func TestSliceIsArmedOnlyWithARunnableThread(t *testing.T) {
	setupKernel(t)
	timerMode = timerTSCDeadline
	c := thisCPU()
	schedule() // the running thread alone
	c.armTimer()
	if c.timerArmed != 0 || hostTimer.value != 0 {
		t.Fatalf("alone, nothing due: armed %d (wrote %+v), want disarmed", c.timerArmed, hostTimer)
	}
	other := newThread()
	makeRunnable(other)
	c.sliceEnd = nanotime() + sliceNS
	c.armTimer()
	if c.timerArmed != c.sliceEnd || hostTimer.value != tscDeadline(c.sliceEnd, tscBase, tscMult) {
		t.Fatalf("contended: armed %d (wrote %+v), want the slice end %d", c.timerArmed, hostTimer, c.sliceEnd)
	}
	schedule() // slice not over: no switch
	if threads[c.current].tid != 1 {
		t.Fatalf("switched to tid %d before the slice ended", threads[c.current].tid)
	}
	c.sliceEnd = nanotime() - 1 // over
	schedule()
	if c.current != other {
		t.Fatalf("slice over, another waits: running %d, want %d", c.current, other)
	}
	if c.sliceEnd <= nanotime() {
		t.Error("the switched-to thread got no new slice")
	}
	c.armTimer()
	if c.timerArmed != c.sliceEnd {
		t.Errorf("the preempted thread waits: armed %d, want the new slice end %d", c.timerArmed, c.sliceEnd)
	}
	// The other thread blocks without a timeout: the first runs alone.
	sys(sysFutex, userAddr(256), futexWait, uint64(*userU32(userAddr(256))), 0)
	schedule()
	c.armTimer()
	if c.contended() || c.timerArmed != 0 {
		t.Errorf("alone again: contended %v, armed %d, want disarmed", c.contended(), c.timerArmed)
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
		c.sliceEnd = nanotime() - 1
		timerInterrupt()
		schedule()
		c.armTimer()
	})
	if n != 0 {
		t.Errorf("%v allocations per timer interrupt", n)
	}
}
