package synic

import (
	"gohv/hv/tlfs"
)

// This file: the four synthetic timers of a VP (TLFS 12, "Synthetic Timers").
// Each counts in the partition's reference time (100 ns units) and, when it
// expires, either raises its APIC vector (direct mode) or posts an
// HvMessageTypeTimerExpired message to its SINT from its own message buffer.
// The host timer is armed only for the next expiration that must reach the
// guest.

// stimer is one synthetic timer. Guarded by the SynIC's mutex.
type stimer struct {
	config uint64 // HV_X64_MSR_STIMERx_CONFIG as stored (enable cleared when a one-shot expires)
	count  uint64 // HV_X64_MSR_STIMERx_COUNT

	// running: enabled with a non-zero count, so next is an expiration
	// still to signal.
	running bool
	// next is the next expiration not yet signalled: a one-shot's count,
	// or a point of a periodic timer's phase (enable time + k × period).
	next uint64
	// lastSignal is when a periodic timer last signalled: the rate limit
	// keeps signals MinTimerPeriod apart.
	lastSignal uint64
	// held: a message-mode expiration waits for the SINT's slot;
	// heldExp is its ExpirationTime. At most one per timer: a periodic
	// timer stops counting signals while one is held.
	held    bool
	heldExp uint64

	host HostTimer
}

func (t *stimer) enabled() bool  { return t.config&tlfs.STimerEnable != 0 }
func (t *stimer) periodic() bool { return t.config&tlfs.STimerPeriodic != 0 }
func (t *stimer) lazy() bool     { return t.config&tlfs.STimerLazy != 0 }
func (t *stimer) direct() bool   { return t.config&tlfs.STimerDirectMode != 0 }
func (t *stimer) vector() uint8 {
	return uint8((t.config & tlfs.STimerVectorMask) >> tlfs.STimerVectorShift)
}
func (t *stimer) sint() uint8 { return uint8((t.config & tlfs.STimerSINTMask) >> tlfs.STimerSINTShift) }

// writeConfigLocked is a write of HV_X64_MSR_STIMERx_CONFIG (TLFS "Synthetic
// Timer Configuration Register"). The RsvdZ bits raise #GP, as does direct
// mode when it is not advertised or names a vector below 16 (a SINT's rule,
// TLFS "SINTx Registers": a direct timer's vector is raised like one). An
// enabled message-mode timer with SINT 0 is disabled at once, as the TLFS
// says. Every write restarts the timer from its new configuration and drops a
// held expiration (the TLFS leaves rewriting an enabled timer undefined).
func (s *SynIC) writeConfigLocked(i int, v uint64, r *raises) error {
	if v&tlfs.STimerReserved != 0 {
		return ErrTimerReserved
	}
	if v&tlfs.STimerDirectMode != 0 {
		if !s.directOK {
			return ErrNoDirectTimers
		}
		if uint8((v&tlfs.STimerVectorMask)>>tlfs.STimerVectorShift) < tlfs.SINTMinVector {
			return ErrTimerVector
		}
	}
	t := &s.timers[i]
	t.config = v
	t.refuseSINT0()
	s.restartLocked(i, r)
	return nil
}

// writeCountLocked is a write of HV_X64_MSR_STIMERx_COUNT (TLFS "Synthetic
// Timer Count Register"): 0 disables the timer whatever AutoEnable says; any
// other value with AutoEnable set enables it. A one-shot's count is an
// absolute reference time, a periodic timer's its period.
func (s *SynIC) writeCountLocked(i int, v uint64, r *raises) {
	t := &s.timers[i]
	t.count = v
	switch {
	case v == 0:
		t.config &^= tlfs.STimerEnable
	case t.config&tlfs.STimerAutoEnable != 0:
		t.config |= tlfs.STimerEnable
		t.refuseSINT0()
	}
	s.restartLocked(i, r)
}

// refuseSINT0 clears Enable of a message-mode timer aimed at SINT 0 (TLFS
// "Synthetic Timer Configuration Register": "It is not permitted to set the
// SINTx field to zero for an enabled timer").
func (t *stimer) refuseSINT0() {
	if t.enabled() && !t.direct() && t.sint() == 0 {
		t.config &^= tlfs.STimerEnable
	}
}

// restartLocked starts timer i from its registers: a periodic timer's first
// period begins now (TLFS "Synthetic Timer Count Register"), a one-shot whose
// time has passed expires at once (TLFS "Synthetic Timer Configuration
// Register"). A held expiration of the old programming is dropped.
func (s *SynIC) restartLocked(i int, r *raises) {
	t := &s.timers[i]
	if t.held {
		t.held = false
		s.noteWaitingLocked()
	}
	t.running = t.enabled() && t.count != 0
	if !t.running {
		t.host.Stop()
		return
	}
	now := s.clock.ReferenceTime()
	if t.periodic() {
		t.next, t.lastSignal = satAdd(now, t.count), now
	} else {
		t.next = t.count
	}
	s.evalLocked(i, now, r)
}

// timerCallback is timer i's host-timer callback. Early and stale calls
// (the timer was rewritten or stopped meanwhile) only re-arm or do
// nothing. Any goroutine; does not allocate.
func (s *SynIC) timerCallback(i int) {
	var r raises
	s.mu.Lock()
	s.evalLocked(i, s.clock.ReferenceTime(), &r)
	s.mu.Unlock()
	s.fire(&r)
}

// evalLocked signals timer i's expiration if it is due at now, else arms
// the host timer for it.
//
// A one-shot signals once and disables itself (TLFS "Synthetic Timer
// Configuration Register"). A periodic timer keeps its phase. When it fell
// behind (a late callback, a held message, the rate limit) by several
// periods: a lazy timer signals only the latest expiration (TLFS "Periodic
// Timers": a late lazy signal is skipped when the next is due); a non-lazy
// one signals the missed expirations one by one, each with its own
// ExpirationTime, MinTimerPeriod apart ("period modulation"), at most
// CatchUpLimit of them; a timer whose period is below MinTimerPeriod cannot
// catch up and signals the latest. Skipped expirations are counted in
// Stats.TimerCoalesced.
func (s *SynIC) evalLocked(i int, now uint64, r *raises) {
	t := &s.timers[i]
	if !t.running || t.held {
		return
	}
	due := t.next
	if t.periodic() {
		due = max(due, satAdd(t.lastSignal, s.minPeriod))
	}
	if now < due {
		s.armLocked(t, now, due)
		return
	}
	if !t.periodic() {
		t.running = false
		t.config &^= tlfs.STimerEnable
		s.signalLocked(i, t.next, now, r)
		return
	}
	p := t.count
	behind := (now-t.next)/p + 1
	limit := uint64(CatchUpLimit)
	if t.lazy() || p < s.minPeriod {
		limit = 1
	}
	if behind > limit {
		skip := behind - limit
		t.next += skip * p // skip*p <= now-next: no overflow
		s.stats.timerCoalesced.Add(skip)
	}
	exp := t.next
	t.next = satAdd(t.next, p)
	t.lastSignal = now
	s.signalLocked(i, exp, now, r)
}

// signalLocked signals expiration exp of timer i: a direct timer raises
// its vector; a message-mode timer holds the expiration in its own buffer
// and tries the SINT's slot (timers go before queued messages).
func (s *SynIC) signalLocked(i int, exp, now uint64, r *raises) {
	t := &s.timers[i]
	if t.direct() {
		r.add(t.vector())
		s.stats.timerSignals.Add(1)
		s.resumeLocked(t, now)
		return
	}
	t.held, t.heldExp = true, exp
	s.noteWaitingLocked()
	s.flushSINTLocked(t.sint(), r)
}

// timerDeliveredLocked: timer i's held expiration is in its slot now.
func (s *SynIC) timerDeliveredLocked(i int, now uint64) {
	t := &s.timers[i]
	t.held = false
	s.stats.timerSignals.Add(1)
	if t.periodic() {
		t.lastSignal = now
	}
	s.resumeLocked(t, now)
}

// lazyCatchUpLocked: a lazy periodic timer whose held expiration reaches
// its slot after the next expiration came due reports the latest one
// instead, and the skipped ones are counted.
func (s *SynIC) lazyCatchUpLocked(t *stimer, now uint64) {
	if !t.lazy() || !t.periodic() || !t.running || now < t.next {
		return
	}
	p := t.count
	k := (now-t.next)/p + 1
	t.heldExp = t.next + (k-1)*p
	t.next = satAdd(t.heldExp, p)
	s.stats.timerCoalesced.Add(k)
}

// resumeLocked re-arms a periodic timer once nothing of it is held.
func (s *SynIC) resumeLocked(t *stimer, now uint64) {
	if t.running && !t.held && t.periodic() {
		s.armLocked(t, now, max(t.next, satAdd(t.lastSignal, s.minPeriod)))
	}
}

// armLocked arms t's host timer for at, or MaxArmAhead from now if that
// is sooner (the callback then re-arms).
func (s *SynIC) armLocked(t *stimer, now, at uint64) {
	t.host.Arm(min(at, satAdd(now, MaxArmAhead)))
}

// heldTimerLocked returns the lowest-numbered timer holding an expiration
// for SINT n, or -1.
func (s *SynIC) heldTimerLocked(n uint8) int {
	for i := range s.timers {
		if t := &s.timers[i]; t.held && t.sint() == n {
			return i
		}
	}
	return -1
}

// heldTimersLocked counts the timers holding an expiration for SINT n.
func (s *SynIC) heldTimersLocked(n uint8) int {
	c := 0
	for i := range s.timers {
		if t := &s.timers[i]; t.held && t.sint() == n {
			c++
		}
	}
	return c
}
