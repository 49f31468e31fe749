package apic

import (
	"math"
	"math/bits"
)

// This file: the LAPIC timer (SDM Vol. 3A 11.5.4) in one-shot, periodic
// and TSC-deadline mode, over the Clock.
//
// The count is not stepped: the model keeps when it was last loaded and
// computes the current count from the clock, at TimerHz divided by the
// divide configuration. A host timer is armed only while an expiry must
// reach the VP: never while the LVT entry is masked (expiries then happen
// silently when next observed: a current-count read, an IA32_TSC_DEADLINE
// read, an LVT write), never in the reserved mode 11, never with a zero
// initial count or a cleared deadline.
//
// Periodic mode keeps its phase: expiry k is at start + k*period. When a
// callback comes late (the host was busy, the VP descheduled), or earlier
// expiries are still unprocessed, all the periods that passed give one
// interrupt, the rest count as Stats.TimerCoalesced, and the next expiry
// is the next boundary after now: no burst of catch-up interrupts. A
// vector still pending in IRR merges as well, as on hardware. The host
// pays at most one callback, and the guest gets at most one timer
// interrupt, per Config.MinTimerPeriod (100 µs by default) per VP, however
// short the programmed period (down to one tick): the count still reads as
// programmed. One-shot and TSC-deadline expiries are not rate-limited:
// each costs one host callback and needs a guest register write to arm.

// timerState is the LAPIC timer; guarded by the LAPIC's mutex.
type timerState struct {
	host     HostTimer
	initial  uint32 // initial-count register
	dcr      uint32 // divide-configuration register
	running  bool   // one-shot or periodic count in progress
	start    int64  // ns: when the count was last loaded with initial
	deadline uint64 // IA32_TSC_DEADLINE in TSC-deadline mode; 0: disarmed
	armed    bool   // host timer armed for armedAt
	armedAt  int64
	lastFire int64 // ns of the last periodic interrupt, for MinTimerPeriod
	fired    bool  // lastFire is valid
}

func (l *LAPIC) timerMode() uint32 { return l.lvt[lvtTimer] >> TIMER_MODE & 3 }

// timerResetLocked stops the timer: the reset and INIT state.
func (l *LAPIC) timerResetLocked() {
	t := &l.timer
	host := t.host
	*t = timerState{host: host}
	if host != nil {
		host.Stop()
	}
	l.expiry.Store(0)
}

// unitScale is 1e9 times the divider: one count lasts unitScale/timerHz ns.
func (l *LAPIC) unitScale() uint64 { return 1e9 * divideBy(l.timer.dcr) }

// unitsIn returns how many whole counts pass in d nanoseconds.
func (l *LAPIC) unitsIn(d int64) uint64 {
	if d <= 0 {
		return 0
	}
	return mulDiv(uint64(d), l.timerHz, l.unitScale())
}

// nsFor returns the nanoseconds until n counts have passed (rounded up).
func (l *LAPIC) nsFor(n uint64) int64 {
	return clampNS(mulDivCeil(n, l.unitScale(), l.timerHz))
}

// timerCurrentLocked is the current-count register at now: 0 when the
// timer is stopped, expired (one-shot) or in TSC-deadline mode (SDM Vol.
// 3A 11.5.4.1); otherwise counting down from the initial count, and in
// periodic mode reloading it each period.
func (l *LAPIC) timerCurrentLocked(now int64) uint32 {
	t := &l.timer
	if !t.running || t.initial == 0 {
		return 0
	}
	u := l.unitsIn(now - t.start)
	switch l.timerMode() {
	case TIMER_MODE_ONE_SHOT:
		if u >= uint64(t.initial) {
			return 0
		}
		return t.initial - uint32(u)
	case TIMER_MODE_PERIODIC:
		return t.initial - uint32(u%uint64(t.initial))
	}
	return 0
}

// timerPollLocked processes the expiries due by now and reports whether
// one made a vector deliverable.
func (l *LAPIC) timerPollLocked(now int64) bool {
	t := &l.timer
	switch l.timerMode() {
	case TIMER_MODE_ONE_SHOT:
		if t.running && l.unitsIn(now-t.start) >= uint64(t.initial) {
			t.running = false
			return l.timerFireLocked(now)
		}
	case TIMER_MODE_PERIODIC:
		if !t.running {
			return false
		}
		n := l.unitsIn(now-t.start) / uint64(t.initial)
		if n == 0 || (t.fired && now-t.lastFire < l.minTimerPeriod && l.lvt[lvtTimer]&lvtMasked == 0) {
			return false // not due, or due but rate-limited: the callback comes at lastFire+MinTimerPeriod
		}
		t.start = addNS(t.start, l.nsFor(n*uint64(t.initial)))
		l.stats.timerCoalesced.Add(n - 1)
		return l.timerFireLocked(now)
	case TIMER_MODE_TSC_DEADLINE:
		if t.deadline != 0 && l.clock.TSC() >= t.deadline {
			t.deadline = 0 // each arming fires once (SDM Vol. 3A 11.5.4.1)
			return l.timerFireLocked(now)
		}
	}
	return false
}

// timerFireLocked is one expiry. One whose vector still waits in IRR
// merges into it (SDM Vol. 3A 11.8.4: an IRR bit holds one request) and
// counts as coalesced, so TimerFired is the number of interrupts the
// guest can take.
func (l *LAPIC) timerFireLocked(now int64) bool {
	l.timer.lastFire, l.timer.fired = now, true
	if e := l.lvt[lvtTimer]; e&lvtMasked == 0 && testBit(&l.irr, uint8(e)) {
		l.stats.timerCoalesced.Add(1)
		_, ok := l.pendingLocked()
		return ok
	}
	l.stats.timerFired.Add(1)
	return l.deliverLVTLocked(lvtTimer)
}

// timerNextLocked returns when the next expiry that must reach the VP is
// due.
func (l *LAPIC) timerNextLocked(now int64) (int64, bool) {
	t := &l.timer
	if l.lvt[lvtTimer]&lvtMasked != 0 {
		return 0, false
	}
	switch l.timerMode() {
	case TIMER_MODE_ONE_SHOT:
		if t.running {
			return addNS(t.start, l.nsFor(uint64(t.initial))), true
		}
	case TIMER_MODE_PERIODIC:
		if t.running {
			at := addNS(t.start, l.nsFor(uint64(t.initial)))
			if t.fired {
				at = max(at, addNS(t.lastFire, l.minTimerPeriod))
			}
			return at, true
		}
	case TIMER_MODE_TSC_DEADLINE:
		if t.deadline != 0 {
			tsc := l.clock.TSC()
			if t.deadline <= tsc {
				return now, true
			}
			return addNS(now, clampNS(mulDivCeil(t.deadline-tsc, 1e9, l.clock.TSCHz()))), true
		}
	}
	return 0, false
}

// timerRescheduleLocked arms or stops the host timer for the next expiry.
func (l *LAPIC) timerRescheduleLocked(now int64) {
	t := &l.timer
	at, ok := l.timerNextLocked(now)
	switch {
	case !ok:
		if t.armed {
			t.host.Stop()
			t.armed = false
		}
		l.expiry.Store(0)
	case !t.armed || t.armedAt != at:
		t.host.Arm(at)
		t.armed, t.armedAt = true, at
		l.expiry.Store(at)
	}
}

// TimerExpiry is when the timer next needs the VP (Clock.Now time, ns),
// 0 for never: a run loop sets a host alarm for it so the interrupt comes
// on time whatever the host timer's callback latency (then PollTimer). It
// takes no lock; it may be stale by one timer write, which the next exit
// corrects. VP thread; does not allocate.
func (l *LAPIC) TimerExpiry() int64 { return l.expiry.Load() }

// timerCallback is the host timer's function: process what is due (an
// early or stale call finds nothing) and arm for the next expiry. Runs on
// the clock's goroutine.
func (l *LAPIC) timerCallback() {
	l.mu.Lock()
	l.timer.armed = false // the host timer fired; Arm again if still needed
	now := l.clock.Now()
	kick := l.timerPollLocked(now)
	l.timerRescheduleLocked(now)
	l.mu.Unlock()
	if kick {
		l.sink.Kick()
	}
}

// PollTimer processes timer expiries that are due, without waiting for
// the host timer's callback: for a run loop that has its own deadline
// (a VMX-preemption-timer exit, a wake-up from HLT). VP thread; does not
// allocate.
func (l *LAPIC) PollTimer() {
	l.mu.Lock()
	now := l.clock.Now()
	kick := l.timerPollLocked(now)
	l.timerRescheduleLocked(now)
	l.mu.Unlock()
	if kick {
		l.sink.Kick()
	}
}

// writeTimerInitialLocked writes the initial-count register: a non-zero
// count (re)starts a one-shot or periodic count from now, zero stops the
// timer; in TSC-deadline mode the write is ignored (SDM Vol. 3A 11.5.4.1)
// and in the reserved mode 11 the count is stored but does not run.
func (l *LAPIC) writeTimerInitialLocked(v uint32) bool {
	t := &l.timer
	now := l.clock.Now()
	kick := l.timerPollLocked(now)
	mode := l.timerMode()
	if mode == TIMER_MODE_TSC_DEADLINE {
		return kick
	}
	t.initial = v
	t.running = v != 0 && (mode == TIMER_MODE_ONE_SHOT || mode == TIMER_MODE_PERIODIC)
	t.start = now // lastFire stays: rewriting the count does not lift the rate limit
	l.timerRescheduleLocked(now)
	return kick
}

// writeTimerDivideLocked writes the divide configuration. A running count
// carries on from its current value at the new rate.
func (l *LAPIC) writeTimerDivideLocked(dcr uint32) bool {
	t := &l.timer
	now := l.clock.Now()
	kick := l.timerPollLocked(now)
	if t.running {
		cur := l.timerCurrentLocked(now)
		t.dcr = dcr
		t.start = addNS(now, -l.nsFor(uint64(t.initial-cur)))
	} else {
		t.dcr = dcr
	}
	l.timerRescheduleLocked(now)
	return kick
}

// timerModeChangedLocked applies an LVT timer write that changed the mode
// (old and v are the entries). Entering or leaving TSC-deadline mode
// disarms the timer: initial count and deadline become 0 (SDM Vol. 3A
// 11.5.4.1). Entering the reserved mode 11 stops the count. Between
// one-shot and periodic the count carries on, from the start of the
// current period.
func (l *LAPIC) timerModeChangedLocked(old, v uint32) {
	t := &l.timer
	om, nm := old>>TIMER_MODE&3, v>>TIMER_MODE&3
	switch {
	case om == nm:
	case om == TIMER_MODE_TSC_DEADLINE || nm == TIMER_MODE_TSC_DEADLINE:
		t.initial, t.running, t.deadline = 0, false, 0
	case nm != TIMER_MODE_ONE_SHOT && nm != TIMER_MODE_PERIODIC:
		t.running = false
	case om == TIMER_MODE_PERIODIC && t.running:
		now := l.clock.Now()
		n := l.unitsIn(now-t.start) / uint64(t.initial)
		t.start = addNS(t.start, l.nsFor(n*uint64(t.initial)))
	}
}

// readTSCDeadlineLocked is RDMSR IA32_TSC_DEADLINE: the armed deadline in
// TSC-deadline mode, 0 once it has fired or in any other mode.
func (l *LAPIC) readTSCDeadlineLocked() uint64 {
	now := l.clock.Now()
	l.timerPollLocked(now) // a masked deadline expires here; an unmasked one is in IRR either way
	l.timerRescheduleLocked(now)
	if l.timerMode() != TIMER_MODE_TSC_DEADLINE {
		return 0
	}
	return l.timer.deadline
}

// writeTSCDeadlineLocked is WRMSR IA32_TSC_DEADLINE: in TSC-deadline mode
// a non-zero value arms the timer for when the guest TSC reaches it (at
// once if it already has), zero disarms it; in other modes the write is
// ignored (SDM Vol. 3A 11.5.4.1).
func (l *LAPIC) writeTSCDeadlineLocked(v uint64) bool {
	now := l.clock.Now()
	kick := l.timerPollLocked(now)
	if l.timerMode() == TIMER_MODE_TSC_DEADLINE {
		l.timer.deadline = v
		kick = l.timerPollLocked(now) || kick
	}
	l.timerRescheduleLocked(now)
	return kick
}

// mulDiv returns a*b/c rounded down, saturating at MaxUint64.
func mulDiv(a, b, c uint64) uint64 {
	hi, lo := bits.Mul64(a, b)
	if hi >= c {
		return math.MaxUint64
	}
	q, _ := bits.Div64(hi, lo, c)
	return q
}

// mulDivCeil returns a*b/c rounded up, saturating at MaxUint64.
func mulDivCeil(a, b, c uint64) uint64 {
	hi, lo := bits.Mul64(a, b)
	if hi >= c {
		return math.MaxUint64
	}
	q, r := bits.Div64(hi, lo, c)
	if r != 0 && q != math.MaxUint64 {
		q++
	}
	return q
}

// maxNS caps durations so that time arithmetic cannot overflow: 2^62 ns is
// 146 years.
const maxNS = 1 << 62

func clampNS(d uint64) int64 {
	if d > maxNS {
		return maxNS
	}
	return int64(d)
}

// addNS adds with saturation at ±maxNS·2.
func addNS(a, b int64) int64 {
	s := a + b
	switch {
	case b > 0 && s < a:
		return math.MaxInt64
	case b < 0 && s > a:
		return math.MinInt64
	}
	return s
}
