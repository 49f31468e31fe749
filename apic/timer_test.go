package apic

import (
	"testing"

	"gohv/x86"
)

var divideConfigs = []struct {
	dcr uint32
	div int64
}{
	{0b0000, 2}, {0b0001, 4}, {0b0010, 8}, {0b0011, 16},
	{0b1000, 32}, {0b1001, 64}, {0b1010, 128}, {0b1011, 1},
}

// TestTimerOneShotEachDivide: with TimerHz 1 GHz one count lasts div ns;
// the current count falls by one every div ns from the initial count, the
// interrupt comes exactly when it reaches 0, once.
func TestTimerOneShotEachDivide(t *testing.T) {
	for _, d := range divideConfigs {
		l, r := newOne(t)
		enable(l)
		xw(l, LAPIC_TIMER_DIVIDE, d.dcr)
		xw(l, LAPIC_LVT_TIMER, 0x40)
		xw(l, LAPIC_TIMER_INITIAL, 1000)
		if got := xr(l, LAPIC_TIMER_CURRENT); got != 1000 {
			t.Fatalf("div %d: current %d at start", d.div, got)
		}
		r.clock.Advance(d.div*250 + d.div - 1)
		if got := xr(l, LAPIC_TIMER_CURRENT); got != 750 {
			t.Fatalf("div %d: current %d after 250.x counts, want 750", d.div, got)
		}
		r.clock.Advance(d.div*750 - d.div)
		if got := xr(l, LAPIC_TIMER_CURRENT); got != 1 {
			t.Fatalf("div %d: current %d one count before expiry", d.div, got)
		}
		if _, ok := l.PendingVector(); ok {
			t.Fatalf("div %d: fired early", d.div)
		}
		r.clock.Advance(1)
		if v, ok := l.PendingVector(); !ok || v != 0x40 {
			t.Fatalf("div %d: not fired at expiry", d.div)
		}
		if got := xr(l, LAPIC_TIMER_CURRENT); got != 0 {
			t.Fatalf("div %d: current %d after expiry", d.div, got)
		}
		r.clock.Advance(d.div * 10000)
		if s := l.Stats(); s.TimerFired != 1 {
			t.Fatalf("div %d: fired %d times", d.div, s.TimerFired)
		}
	}
}

// TestTimerPeriodicEachDivide: a periodic timer reloads and fires every
// period, keeping its phase.
func TestTimerPeriodicEachDivide(t *testing.T) {
	for _, d := range divideConfigs {
		l, r := newOne(t)
		enable(l)
		xw(l, LAPIC_TIMER_DIVIDE, d.dcr)
		xw(l, LAPIC_LVT_TIMER, TIMER_MODE_PERIODIC<<TIMER_MODE|0x41)
		const initial = 200_000 // 200 µs at divide 1: above MinTimerPeriod
		xw(l, LAPIC_TIMER_INITIAL, initial)
		period := d.div * initial
		for k := 1; k <= 5; k++ {
			r.clock.Advance(period - 1)
			if _, ok := l.PendingVector(); ok {
				t.Fatalf("div %d period %d: early", d.div, k)
			}
			if got := xr(l, LAPIC_TIMER_CURRENT); got != 1 {
				t.Fatalf("div %d period %d: current %d just before reload", d.div, k, got)
			}
			r.clock.Advance(1)
			if v, ok := l.Ack(); !ok || v != 0x41 {
				t.Fatalf("div %d period %d: no interrupt", d.div, k)
			}
			xw(l, LAPIC_EOI, 0)
			if got := xr(l, LAPIC_TIMER_CURRENT); got != initial {
				t.Fatalf("div %d period %d: current %d after reload", d.div, k, got)
			}
		}
		if s := l.Stats(); s.TimerFired != 5 || s.TimerCoalesced != 0 {
			t.Fatalf("div %d: %+v", d.div, s)
		}
	}
}

// TestTimerOddRate: a TimerHz that does not divide 1 GHz still counts
// whole counts exactly: at 33.333333 MHz a count lasts a hair over 30 ns,
// so 90 ns are not yet three counts and 91 ns are.
func TestTimerOddRate(t *testing.T) {
	r := newRig(t, 1, func(_ int, c *Config) { c.TimerHz = 33_333_333 })
	l := r.lapics[0]
	enable(l)
	xw(l, LAPIC_TIMER_DIVIDE, 0b1011) // divide by 1
	xw(l, LAPIC_LVT_TIMER, 0x40)
	xw(l, LAPIC_TIMER_INITIAL, 3)
	r.clock.Advance(89) // 2.97 counts
	if got := xr(l, LAPIC_TIMER_CURRENT); got != 1 {
		t.Fatalf("current %d after 89 ns, want 1", got)
	}
	r.clock.Advance(1) // 90 ns: 2.99999997 counts
	if _, ok := l.PendingVector(); ok {
		t.Fatal("fired before three whole counts")
	}
	r.clock.Advance(1)
	if _, ok := l.PendingVector(); !ok {
		t.Fatal("not fired after three counts")
	}
}

// TestTimerPeriodicCoalesces: periods that pass while the callback is
// late, or while the vector still waits in IRR, give one interrupt; the
// rest are counted, and the phase is kept.
func TestTimerPeriodicCoalesces(t *testing.T) {
	l, r := newOne(t)
	enable(l)
	xw(l, LAPIC_TIMER_DIVIDE, 0b1011)
	xw(l, LAPIC_LVT_TIMER, TIMER_MODE_PERIODIC<<TIMER_MODE|0x41)
	xw(l, LAPIC_TIMER_INITIAL, 1_000_000) // 1 ms
	// The host is busy: the callback comes 5.5 periods late.
	host := r.clock.timers[0]
	host.armed = false
	r.clock.Advance(5_500_000)
	l.timerCallback()
	if s := l.Stats(); s.TimerFired != 1 || s.TimerCoalesced != 4 {
		t.Fatalf("after a late callback: %+v, want 1 fired, 4 coalesced", s)
	}
	if got := xr(l, LAPIC_TIMER_CURRENT); got != 500_000 {
		t.Fatalf("phase lost: current %d, want 500000", got)
	}
	if !host.armed || host.at != r.clock.now+500_000 {
		t.Fatalf("next callback at %d, want %d", host.at, r.clock.now+500_000)
	}
	// The VP never acks: ten more periods leave one vector in IRR, and
	// the expiries that found it there count as coalesced, not fired.
	r.clock.Advance(10_000_000)
	irr, _, _ := l.snapshot()
	if got := bitsOf(irr); len(got) != 1 || got[0] != 0x41 {
		t.Fatalf("IRR %#x", got)
	}
	if s := l.Stats(); s.TimerFired != 1 || s.TimerCoalesced != 14 {
		t.Fatalf("after ten unacked periods: %+v, want 1 fired, 14 coalesced", s)
	}
}

// TestTimerRateLimited: a periodic timer of one tick costs at most one
// host callback and one interrupt per MinTimerPeriod, while the count
// reads as programmed.
func TestTimerRateLimited(t *testing.T) {
	l, r := newOne(t)
	enable(l)
	xw(l, LAPIC_TIMER_DIVIDE, 0b1011)
	xw(l, LAPIC_LVT_TIMER, TIMER_MODE_PERIODIC<<TIMER_MODE|0x41)
	xw(l, LAPIC_TIMER_INITIAL, 1)
	start := r.clock.callbacks
	for i := 0; i < 100; i++ {
		r.clock.Advance(100_000)
		if v, ok := l.Ack(); ok {
			if v != 0x41 {
				t.Fatalf("acked %#x", v)
			}
			xw(l, LAPIC_EOI, 0)
		}
		// Reading the count polls the timer: it must not beat the limit.
		xr(l, LAPIC_TIMER_CURRENT)
	}
	cb := r.clock.callbacks - start
	s := l.Stats()
	if cb > 101 || s.TimerFired > 101 {
		t.Fatalf("10 ms of a 1 ns period: %d callbacks, %d interrupts; want at most 101", cb, s.TimerFired)
	}
	if s.TimerFired < 99 {
		t.Fatalf("only %d interrupts in 10 ms", s.TimerFired)
	}
	if s.TimerCoalesced < 9_000_000 {
		t.Fatalf("coalesced %d", s.TimerCoalesced)
	}
}

// TestTimerTSCDeadline: arming, firing once, reading back 0, disarming,
// a deadline already past, and the registers TSC-deadline mode ignores
// (SDM Vol. 3A 11.5.4.1).
func TestTimerTSCDeadline(t *testing.T) {
	l, r := newOne(t)
	enable(l)
	xw(l, LAPIC_LVT_TIMER, TIMER_MODE_TSC_DEADLINE<<TIMER_MODE|0x42)
	tsc := r.clock.TSC()
	mustNil(t, l.WriteMSR(x86.MsrTSCDeadline, tsc+25_000)) // 10 µs at 2.5 GHz
	if got, _ := l.ReadMSR(x86.MsrTSCDeadline); got != tsc+25_000 {
		t.Fatalf("deadline reads %d", got)
	}
	xw(l, LAPIC_TIMER_INITIAL, 5)
	if xr(l, LAPIC_TIMER_INITIAL) != 0 || xr(l, LAPIC_TIMER_CURRENT) != 0 {
		t.Fatal("initial count write not ignored in TSC-deadline mode")
	}
	r.clock.Advance(9_999)
	if _, ok := l.PendingVector(); ok {
		t.Fatal("fired early")
	}
	r.clock.Advance(1)
	if v, ok := l.PendingVector(); !ok || v != 0x42 {
		t.Fatal("not fired at the deadline")
	}
	if got, _ := l.ReadMSR(x86.MsrTSCDeadline); got != 0 {
		t.Fatalf("deadline reads %d after firing", got)
	}
	l.Ack()
	xw(l, LAPIC_EOI, 0)
	r.clock.Advance(1_000_000)
	if l.Stats().TimerFired != 1 {
		t.Fatal("fired more than once")
	}
	// A deadline in the past fires at the write.
	mustNil(t, l.WriteMSR(x86.MsrTSCDeadline, 1))
	if _, ok := l.PendingVector(); !ok {
		t.Fatal("past deadline did not fire at once")
	}
	l.Ack()
	xw(l, LAPIC_EOI, 0)
	// Zero disarms.
	mustNil(t, l.WriteMSR(x86.MsrTSCDeadline, r.clock.TSC()+100))
	mustNil(t, l.WriteMSR(x86.MsrTSCDeadline, 0))
	r.clock.Advance(1_000)
	if _, ok := l.PendingVector(); ok {
		t.Fatal("fired after being disarmed")
	}
	// Leaving TSC-deadline mode disarms; the MSR then reads 0 and
	// ignores writes.
	mustNil(t, l.WriteMSR(x86.MsrTSCDeadline, r.clock.TSC()+100))
	xw(l, LAPIC_LVT_TIMER, 0x42)
	if got, _ := l.ReadMSR(x86.MsrTSCDeadline); got != 0 {
		t.Fatalf("deadline %d in one-shot mode", got)
	}
	mustNil(t, l.WriteMSR(x86.MsrTSCDeadline, r.clock.TSC()+100))
	xw(l, LAPIC_LVT_TIMER, TIMER_MODE_TSC_DEADLINE<<TIMER_MODE|0x42)
	r.clock.Advance(1_000)
	if _, ok := l.PendingVector(); ok {
		t.Fatal("a deadline written outside TSC-deadline mode fired")
	}
}

// TestTimerModeSwitchDisarms: entering TSC-deadline mode clears a running
// count (SDM Vol. 3A 11.5.4.1); one-shot to periodic keeps counting.
func TestTimerModeSwitchDisarms(t *testing.T) {
	l, r := newOne(t)
	enable(l)
	xw(l, LAPIC_TIMER_DIVIDE, 0b1011)
	xw(l, LAPIC_LVT_TIMER, 0x40)
	xw(l, LAPIC_TIMER_INITIAL, 1_000_000)
	r.clock.Advance(400_000)
	xw(l, LAPIC_LVT_TIMER, TIMER_MODE_PERIODIC<<TIMER_MODE|0x40)
	if got := xr(l, LAPIC_TIMER_CURRENT); got != 600_000 {
		t.Fatalf("one-shot to periodic: current %d, want 600000", got)
	}
	xw(l, LAPIC_LVT_TIMER, TIMER_MODE_TSC_DEADLINE<<TIMER_MODE|0x40)
	if xr(l, LAPIC_TIMER_INITIAL) != 0 {
		t.Fatal("initial count survived the switch to TSC-deadline")
	}
	xw(l, LAPIC_LVT_TIMER, 0x40)
	r.clock.Advance(10_000_000)
	if _, ok := l.PendingVector(); ok {
		t.Fatal("a disarmed timer fired")
	}
	// Reserved mode 11 through the xAPIC page: stored, the count stops.
	xw(l, LAPIC_TIMER_INITIAL, 100)
	xw(l, LAPIC_LVT_TIMER, 3<<TIMER_MODE|0x40)
	if got := xr(l, LAPIC_LVT_TIMER); got != 3<<TIMER_MODE|0x40 {
		t.Fatalf("LVT timer %#x", got)
	}
	r.clock.Advance(10_000)
	if _, ok := l.PendingVector(); ok || xr(l, LAPIC_TIMER_CURRENT) != 0 {
		t.Fatal("the timer ran in reserved mode 11")
	}
}

// TestTimerMasked: a masked timer keeps counting but arms no host timer
// and raises nothing; unmasking a periodic timer resumes interrupts at
// the next boundary.
func TestTimerMasked(t *testing.T) {
	l, r := newOne(t)
	enable(l)
	host := r.clock.timers[0]
	xw(l, LAPIC_TIMER_DIVIDE, 0b1011)
	xw(l, LAPIC_LVT_TIMER, lvtMasked|TIMER_MODE_PERIODIC<<TIMER_MODE|0x40)
	xw(l, LAPIC_TIMER_INITIAL, 1_000_000)
	if host.armed {
		t.Fatal("host timer armed for a masked LVT")
	}
	r.clock.Advance(2_300_000)
	if got := xr(l, LAPIC_TIMER_CURRENT); got != 700_000 {
		t.Fatalf("masked count %d, want 700000", got)
	}
	if _, ok := l.PendingVector(); ok {
		t.Fatal("masked timer interrupted")
	}
	xw(l, LAPIC_LVT_TIMER, TIMER_MODE_PERIODIC<<TIMER_MODE|0x40)
	if !host.armed || host.at != r.clock.now+700_000 {
		t.Fatalf("after unmask: armed %v at %d, want %d", host.armed, host.at, r.clock.now+700_000)
	}
	r.clock.Advance(700_000)
	if _, ok := l.PendingVector(); !ok {
		t.Fatal("no interrupt at the boundary after unmask")
	}
}

// TestTimerDivideChangeMidCount: a new divider takes effect from the
// current count.
func TestTimerDivideChangeMidCount(t *testing.T) {
	l, r := newOne(t)
	enable(l)
	xw(l, LAPIC_TIMER_DIVIDE, 0b1011) // 1
	xw(l, LAPIC_LVT_TIMER, 0x40)
	xw(l, LAPIC_TIMER_INITIAL, 1000)
	r.clock.Advance(400)
	xw(l, LAPIC_TIMER_DIVIDE, 0b0001) // 4
	if got := xr(l, LAPIC_TIMER_CURRENT); got != 600 {
		t.Fatalf("current %d after the divide change, want 600", got)
	}
	r.clock.Advance(400) // 100 counts at divide 4
	if got := xr(l, LAPIC_TIMER_CURRENT); got != 500 {
		t.Fatalf("current %d, want 500", got)
	}
	r.clock.Advance(2000)
	if _, ok := l.PendingVector(); !ok {
		t.Fatal("not fired")
	}
}

// TestTimerStaleCallback: a host callback that comes early or after the
// timer was stopped does nothing.
func TestTimerStaleCallback(t *testing.T) {
	l, r := newOne(t)
	enable(l)
	xw(l, LAPIC_TIMER_DIVIDE, 0b1011)
	xw(l, LAPIC_LVT_TIMER, 0x40)
	xw(l, LAPIC_TIMER_INITIAL, 1000)
	l.timerCallback() // early
	if _, ok := l.PendingVector(); ok {
		t.Fatal("early callback fired the timer")
	}
	xw(l, LAPIC_TIMER_INITIAL, 0) // stop
	r.clock.now += 5000
	l.timerCallback() // stale
	if _, ok := l.PendingVector(); ok || l.Stats().TimerFired != 0 {
		t.Fatal("stale callback fired the timer")
	}
	if r.clock.timers[0].armed {
		t.Fatal("host timer re-armed for a stopped timer")
	}
}

// TestPollTimer: the VP thread can process a due expiry itself.
func TestPollTimer(t *testing.T) {
	l, r := newOne(t)
	enable(l)
	xw(l, LAPIC_TIMER_DIVIDE, 0b1011)
	xw(l, LAPIC_LVT_TIMER, 0x40)
	xw(l, LAPIC_TIMER_INITIAL, 1000)
	r.clock.timers[0].armed = false // the host timer is late
	r.clock.Advance(1000)
	l.PollTimer()
	if _, ok := l.PendingVector(); !ok {
		t.Fatal("PollTimer did not fire a due timer")
	}
}

// TestTimerPeriodicToOneShot: switching a running periodic timer to
// one-shot lets the current period run out, fires once, and stops.
func TestTimerPeriodicToOneShot(t *testing.T) {
	l, r := newOne(t)
	enable(l)
	xw(l, LAPIC_TIMER_DIVIDE, 0b1011)
	xw(l, LAPIC_LVT_TIMER, lvtMasked|TIMER_MODE_PERIODIC<<TIMER_MODE|0x40)
	xw(l, LAPIC_TIMER_INITIAL, 1_000_000)
	r.clock.Advance(2_300_000)
	xw(l, LAPIC_LVT_TIMER, 0x40) // one-shot, unmasked
	if got := xr(l, LAPIC_TIMER_CURRENT); got != 700_000 {
		t.Fatalf("current %d after the switch, want 700000", got)
	}
	r.clock.Advance(700_000)
	if _, ok := l.PendingVector(); !ok {
		t.Fatal("the rest of the period did not fire")
	}
	fired := l.Stats().TimerFired
	r.clock.Advance(5_000_000)
	if l.Stats().TimerFired != fired || xr(l, LAPIC_TIMER_CURRENT) != 0 {
		t.Fatal("one-shot kept running")
	}
}

// TestTimerArithmeticSaturates: extreme counts and times neither wrap nor
// panic.
func TestTimerArithmeticSaturates(t *testing.T) {
	if got := mulDiv(1<<63, 1<<63, 3); got != 1<<64-1 {
		t.Errorf("mulDiv overflow = %#x", got)
	}
	if got := mulDivCeil(1<<63, 1<<63, 3); got != 1<<64-1 {
		t.Errorf("mulDivCeil overflow = %#x", got)
	}
	if got := clampNS(1 << 63); got != maxNS {
		t.Errorf("clampNS = %d", got)
	}
	if got := addNS(1<<62, 1<<62); got != 1<<63-1 {
		t.Errorf("addNS = %d", got)
	}
	if got := addNS(-1<<62, -1<<62-1); got != -1<<63 {
		t.Errorf("addNS = %d", got)
	}
	// A slow timer: initial count 2^32-1 at divide 128 and 1 kHz: 17 years.
	r := newRig(t, 1, func(_ int, c *Config) { c.TimerHz = 1000 })
	l := r.lapics[0]
	enable(l)
	xw(l, LAPIC_TIMER_DIVIDE, 0b1010)
	xw(l, LAPIC_LVT_TIMER, 0x40)
	xw(l, LAPIC_TIMER_INITIAL, 0xffff_ffff)
	r.clock.Advance(128_000_000) // 1 count
	if got := xr(l, LAPIC_TIMER_CURRENT); got != 0xffff_fffe {
		t.Fatalf("current %#x", got)
	}
}

// TestTimerExpiryMirrorsTheHostTimer: TimerExpiry is the deadline the host
// timer is armed for, 0 when it is not.
func TestTimerExpiryMirrorsTheHostTimer(t *testing.T) {
	l, r := newOne(t)
	enable(l)
	if l.TimerExpiry() != 0 {
		t.Fatal("expiry before the timer is armed")
	}
	xw(l, LAPIC_LVT_TIMER, 0x40)
	xw(l, LAPIC_TIMER_DIVIDE, 0xb) // divide by 1
	xw(l, LAPIC_TIMER_INITIAL, 1000)
	want := r.clock.now + int64(1000*1e9/DefaultTimerHz)
	if got := l.TimerExpiry(); got != want {
		t.Fatalf("expiry %d, want %d", got, want)
	}
	xw(l, LAPIC_TIMER_INITIAL, 0)
	if l.TimerExpiry() != 0 {
		t.Fatal("expiry after the count was cleared")
	}
}
