package synic

import (
	"testing"

	"gohv/hv/tlfs"
)

// STIMER0's MSRs and configurations the tests use.
const (
	cfg0   = tlfs.MsrSTimer0Config
	count0 = tlfs.MsrSTimer0Count

	sint2      = 2 << tlfs.STimerSINTShift
	msgOneShot = sint2 | tlfs.STimerAutoEnable                        // Linux's legacy mode without Enable: 0x20008
	msgPeriod  = sint2 | tlfs.STimerPeriodic | tlfs.STimerEnable      // 0x20003
	directED   = 0xed<<tlfs.STimerVectorShift | tlfs.STimerDirectMode // vector 0xed, direct
)

// timerMsg reads and empties slot 2, which must hold a timer message.
func timerMsg(t *testing.T, r *rig) (tlfs.TimerMessagePayload, uint8) {
	t.Helper()
	h, p, ok := r.ram.consume(simpGPA, 2)
	if !ok || h.Type != tlfs.MessageTypeTimerExpired || h.PayloadSize != tlfs.TimerMessagePayloadSize || h.Origin != 0 {
		t.Fatalf("slot 2: %+v (full %v), want a timer message", h, ok)
	}
	m, err := tlfs.ParseTimerMessagePayload(p)
	if err != nil {
		t.Fatal(err)
	}
	return m, h.Flags
}

func slotEmpty(r *rig, sint uint8) bool {
	h, _ := r.ram.slot(simpGPA, sint)
	return h.Type == 0
}

// TestOneShotMessage is Linux's legacy stimer: CONFIG with AutoEnable and
// SINT 2, then COUNT = an absolute reference time (TLFS "Synthetic Timer
// Count Register"). The message arrives when the reference time reaches
// COUNT, not before, with the timer index, the expiration and the delivery
// time, and the timer disables itself.
func TestOneShotMessage(t *testing.T) {
	r := newRig(t, nil)
	r.enable(t)
	r.wr(t, cfg0+2, msgOneShot) // STIMER1
	at := r.clock.ReferenceTime() + 100
	r.wr(t, count0+2, at)
	if got := r.rd(t, cfg0+2); got != msgOneShot|tlfs.STimerEnable {
		t.Fatalf("CONFIG %#x: AutoEnable did not enable", got)
	}
	r.clock.Advance(99)
	if !slotEmpty(r, 2) {
		t.Fatal("expired early")
	}
	r.clock.Advance(1)
	m, _ := timerMsg(t, r)
	if want := (tlfs.TimerMessagePayload{TimerIndex: 1, ExpirationTime: at, DeliveryTime: at}); m != want {
		t.Fatalf("payload %+v, want %+v", m, want)
	}
	if got := r.rd(t, cfg0+2); got != msgOneShot {
		t.Fatalf("CONFIG %#x after expiry: Enable not cleared", got)
	}
	if r.intr.n(sintVector) != 1 || r.clock.Callbacks() != 1 {
		t.Fatalf("interrupts %d, callbacks %d", r.intr.n(sintVector), r.clock.Callbacks())
	}
	r.clock.Advance(1_000_000)
	if !slotEmpty(r, 2) || r.s.Stats().TimerSignals != 1 {
		t.Fatal("one-shot fired twice")
	}
}

// TestOneShotInThePast: a one-shot enabled with a count already passed
// expires at once (TLFS "Synthetic Timer Configuration Register"), on the
// write.
func TestOneShotInThePast(t *testing.T) {
	r := newRig(t, nil)
	r.enable(t)
	r.wr(t, cfg0, msgOneShot)
	now := r.clock.ReferenceTime()
	r.wr(t, count0, now-5)
	m, _ := timerMsg(t, r)
	if m.ExpirationTime != now-5 || m.DeliveryTime != now {
		t.Fatalf("payload %+v", m)
	}
}

// TestOneShotDirect is Linux's direct-mode stimer (CONFIG 0x1ed9): the
// vector goes to the APIC; nothing to the SIM page.
func TestOneShotDirect(t *testing.T) {
	r := newRig(t, nil)
	r.enable(t)
	r.wr(t, cfg0, directED|tlfs.STimerAutoEnable|tlfs.STimerEnable)
	if got := r.rd(t, cfg0); got != 0x1ed9 {
		t.Fatalf("CONFIG %#x, want Linux's 0x1ed9", got)
	}
	r.wr(t, count0, r.clock.ReferenceTime()+50)
	r.clock.Advance(50)
	if r.intr.n(0xed) != 1 || !slotEmpty(r, 2) {
		t.Fatalf("vector 0xed raised %d times", r.intr.n(0xed))
	}
	if got := r.rd(t, cfg0); got != 0x1ed8 {
		t.Fatalf("CONFIG %#x after expiry", got)
	}
	// Direct mode does not depend on the SynIC being enabled.
	r.wr(t, tlfs.MsrSControl, 0)
	r.wr(t, count0, r.clock.ReferenceTime()+50)
	r.clock.Advance(50)
	if r.intr.n(0xed) != 2 {
		t.Fatal("direct timer needs SCONTROL")
	}
}

// TestPeriodicDirect: the first period starts at enable (TLFS "Synthetic
// Timer Count Register"); one interrupt and one host callback per period,
// phase kept.
func TestPeriodicDirect(t *testing.T) {
	r := newRig(t, nil)
	r.wr(t, count0, 10_000)
	r.wr(t, cfg0, directED|tlfs.STimerPeriodic|tlfs.STimerEnable)
	r.clock.Advance(50_000)
	if r.intr.n(0xed) != 5 || r.clock.Callbacks() != 5 {
		t.Fatalf("interrupts %d, callbacks %d; want 5", r.intr.n(0xed), r.clock.Callbacks())
	}
	// A late callback keeps the phase: the next expiry stays on the grid.
	start := r.clock.ReferenceTime() - 50_000
	r.clock.Jump(10_500)
	r.clock.Advance(0)
	if at, armed, _ := r.clock.timers[0].state(); !armed || at != start+70_000 {
		t.Fatalf("armed %v at +%d, want +70000", armed, at-start)
	}
	if r.rd(t, cfg0)&tlfs.STimerEnable == 0 {
		t.Fatal("periodic timer disabled itself")
	}
}

// TestPeriodOfOneIsRateLimited: a period of one tick (100 ns) costs at
// most one host callback and one interrupt per MinTimerPeriod; the
// expirations in between are counted as coalesced.
func TestPeriodOfOneIsRateLimited(t *testing.T) {
	r := newRig(t, nil)
	r.wr(t, count0, 1)
	r.wr(t, cfg0, directED|tlfs.STimerPeriodic|tlfs.STimerEnable)
	const second = tlfs.ReferenceHz
	r.clock.Advance(second)
	n := r.intr.n(0xed)
	if n < second/DefaultMinTimerPeriod-1 || n > second/DefaultMinTimerPeriod+1 || r.clock.Callbacks() > n+1 {
		t.Fatalf("%d interrupts and %d callbacks in a second", n, r.clock.Callbacks())
	}
	st := r.s.Stats()
	if total := st.TimerSignals + st.TimerCoalesced; total > second || total < second-2*DefaultMinTimerPeriod {
		t.Fatalf("signals %d + coalesced %d, want about %d expirations", st.TimerSignals, st.TimerCoalesced, second)
	}
}

// TestPeriodicCatchUp: a non-lazy periodic timer whose host callback came 2.5
// periods late signals every missed expiration, each with its own
// ExpirationTime, MinTimerPeriod apart, until it is back on its grid (TLFS
// "Periodic Timers": period modulation); a lazy one signals only the latest
// and skips the rest.
func TestPeriodicCatchUp(t *testing.T) {
	type rec struct{ exp, delivery uint64 }
	for _, c := range []struct {
		name      string
		lazy      bool
		want      []rec
		coalesced uint64
	}{
		{"non-lazy", false, []rec{{10_000, 35_000}, {20_000, 36_000}, {30_000, 37_000}, {40_000, 40_000}}, 0},
		{"lazy", true, []rec{{30_000, 35_000}, {40_000, 40_000}}, 2},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := newRig(t, nil)
			r.enable(t)
			start := r.clock.ReferenceTime()
			config := uint64(msgPeriod)
			if c.lazy {
				config |= tlfs.STimerLazy
			}
			r.wr(t, count0, 10_000)
			r.wr(t, cfg0, config)
			r.clock.Jump(35_000)
			var got []rec
			for i := range 6 {
				if i > 0 {
					r.clock.Advance(1000)
				} else {
					r.clock.Advance(0)
				}
				if !slotEmpty(r, 2) {
					m, _ := timerMsg(t, r)
					got = append(got, rec{m.ExpirationTime - start, m.DeliveryTime - start})
				}
			}
			if len(got) != len(c.want) {
				t.Fatalf("messages %v, want %v", got, c.want)
			}
			for i := range got {
				if got[i] != c.want[i] {
					t.Fatalf("messages %v, want %v", got, c.want)
				}
			}
			if st := r.s.Stats(); st.TimerCoalesced != c.coalesced {
				t.Fatalf("coalesced %d, want %d", st.TimerCoalesced, c.coalesced)
			}
		})
	}
}

// TestBusySlotHoldsOneExpiration: a message-mode expiration that finds the
// slot busy is held (one per timer: the timer stops counting, so a guest
// that never EOMs costs no host callbacks), MessagePending is set, and the
// guest's EOM brings it in: non-lazy with the first missed expiration,
// lazy with the latest.
func TestBusySlotHoldsOneExpiration(t *testing.T) {
	for _, lazy := range []bool{false, true} {
		r := newRig(t, nil)
		r.enable(t)
		start := r.clock.ReferenceTime()
		mustPost(t, r.s, 2, 1, "vmbus")
		config := uint64(msgPeriod)
		if lazy {
			config |= tlfs.STimerLazy
		}
		r.wr(t, count0, 10_000)
		r.wr(t, cfg0, config)
		r.clock.Advance(60_000)
		if r.clock.Callbacks() != 1 {
			t.Fatalf("lazy %v: %d callbacks while the expiration is held", lazy, r.clock.Callbacks())
		}
		h, _, _ := r.ram.consume(simpGPA, 2)
		if h.Type != 1 || h.Flags&tlfs.MessagePendingFlag == 0 {
			t.Fatalf("lazy %v: root message %+v without MessagePending", lazy, h)
		}
		r.wr(t, tlfs.MsrEOM, 0)
		m, _ := timerMsg(t, r)
		wantExp := start + 10_000
		if lazy {
			wantExp = start + 60_000
		}
		if m.ExpirationTime != wantExp || m.DeliveryTime != start+60_000 {
			t.Fatalf("lazy %v: payload exp +%d delivery +%d", lazy, m.ExpirationTime-start, m.DeliveryTime-start)
		}
		// The timer counts again from the delivery.
		if _, armed, _ := r.clock.timers[0].state(); !armed {
			t.Fatalf("lazy %v: timer not re-armed after delivery", lazy)
		}
	}
}

// TestTimerBeforeQueuedMessages: each timer has its own message buffer
// (TLFS "SynIC Messages"): a held expiration goes into the slot before messages
// queued earlier, so a message flood cannot starve the timer.
func TestTimerBeforeQueuedMessages(t *testing.T) {
	r := newRig(t, nil)
	r.enable(t)
	mustPost(t, r.s, 2, 1, "a")
	mustPost(t, r.s, 2, 1, "b")
	r.wr(t, cfg0, msgOneShot)
	r.wr(t, count0, r.clock.ReferenceTime()+10)
	r.clock.Advance(10)
	r.ram.consume(simpGPA, 2)
	r.wr(t, tlfs.MsrEOM, 0)
	if _, flags := timerMsg(t, r); flags&tlfs.MessagePendingFlag == 0 {
		t.Fatal("timer message without MessagePending while b waits")
	}
	r.wr(t, tlfs.MsrEOM, 0)
	if _, p, _ := r.ram.consume(simpGPA, 2); string(p) != "b" {
		t.Fatalf("then %q", p)
	}
	checkConservation(t, r.s)
}

// TestCountWrites: AutoEnable sets Enable on a non-zero COUNT write; a COUNT
// of 0 clears Enable whatever AutoEnable says (TLFS "Synthetic Timer Count
// Register"); an enabled message-mode timer aimed at SINT 0 is disabled at
// once (TLFS "Synthetic Timer Configuration Register").
func TestCountWrites(t *testing.T) {
	r := newRig(t, nil)
	r.wr(t, cfg0, msgOneShot)
	r.wr(t, count0, 5_000_000)
	if r.rd(t, cfg0)&tlfs.STimerEnable == 0 {
		t.Fatal("AutoEnable did not enable")
	}
	r.wr(t, count0, 0)
	if r.rd(t, cfg0)&tlfs.STimerEnable != 0 {
		t.Fatal("COUNT 0 did not disable")
	}
	if _, armed, _ := r.clock.timers[0].state(); armed {
		t.Fatal("disabled timer still armed")
	}
	r.wr(t, cfg0, tlfs.STimerAutoEnable) // SINT 0, message mode
	r.wr(t, count0, 5_000_000)
	if r.rd(t, cfg0)&tlfs.STimerEnable != 0 {
		t.Fatal("AutoEnable enabled a message timer on SINT 0")
	}
	r.wr(t, cfg0, tlfs.STimerEnable|tlfs.STimerPeriodic)
	if got := r.rd(t, cfg0); got != tlfs.STimerPeriodic {
		t.Fatalf("CONFIG %#x: SINT 0 timer left enabled", got)
	}
	r.wr(t, cfg0, sint2|tlfs.STimerEnable) // Enable written with COUNT already set: runs
	if _, armed, _ := r.clock.timers[0].state(); !armed {
		t.Fatal("CONFIG enable with a count did not arm")
	}
}

// TestRewriteDropsHeld: rewriting COUNT or CONFIG restarts the timer and
// drops an expiration still waiting for the slot.
func TestRewriteDropsHeld(t *testing.T) {
	r := newRig(t, nil)
	r.enable(t)
	mustPost(t, r.s, 2, 1, "busy")
	r.wr(t, cfg0, msgOneShot)
	r.wr(t, count0, r.clock.ReferenceTime()+10)
	r.clock.Advance(10)
	r.wr(t, count0, r.clock.ReferenceTime()+1000)
	r.ram.consume(simpGPA, 2)
	r.wr(t, tlfs.MsrEOM, 0)
	if !slotEmpty(r, 2) {
		t.Fatal("the dropped expiration arrived")
	}
	r.clock.Advance(1000)
	if m, _ := timerMsg(t, r); m.ExpirationTime != r.clock.ReferenceTime() {
		t.Fatalf("new programming: %+v", m)
	}
}

// TestTimerWaitsForSynIC: a message-mode expiration while SCONTROL is
// off is held, and enabling the SynIC delivers it.
func TestTimerWaitsForSynIC(t *testing.T) {
	r := newRig(t, nil)
	r.enable(t)
	r.wr(t, tlfs.MsrSControl, 0)
	r.wr(t, cfg0, msgOneShot)
	r.wr(t, count0, r.clock.ReferenceTime()+10)
	r.clock.Advance(10)
	if !slotEmpty(r, 2) {
		t.Fatal("delivered while the SynIC is off")
	}
	r.wr(t, tlfs.MsrSControl, 1)
	timerMsg(t, r)
}

// TestTimerPageOutsideRAM: a timer message for a SIM page outside RAM is
// dropped and counted; a periodic timer keeps running.
func TestTimerPageOutsideRAM(t *testing.T) {
	r := newRig(t, nil)
	r.enable(t)
	r.wr(t, tlfs.MsrSIMP, holeGPA|1)
	r.wr(t, count0, 10_000)
	r.wr(t, cfg0, msgPeriod)
	r.clock.Advance(30_000)
	if st := r.s.Stats(); st.TimerDropped != 3 || st.TimerSignals != 0 || r.intr.total() != 0 {
		t.Fatalf("stats %+v", st)
	}
}

// TestFarExpiryArmsInSteps: a one-shot at the end of time arms the host
// timer MaxArmAhead ahead at most, and the early callback only re-arms.
func TestFarExpiryArmsInSteps(t *testing.T) {
	r := newRig(t, nil)
	r.wr(t, cfg0, directED|tlfs.STimerAutoEnable)
	now := r.clock.ReferenceTime()
	r.wr(t, count0, ^uint64(0))
	if at, armed, _ := r.clock.timers[0].state(); !armed || at != now+MaxArmAhead {
		t.Fatalf("armed %v at %#x", armed, at)
	}
	r.clock.Advance(MaxArmAhead)
	if at, armed, _ := r.clock.timers[0].state(); !armed || at != now+2*MaxArmAhead || r.intr.total() != 0 {
		t.Fatalf("after the early callback: armed %v at %#x, interrupts %d", armed, at, r.intr.total())
	}
	// A huge period saturates instead of wrapping into the past.
	r.wr(t, count0, ^uint64(0)-5)
	r.wr(t, cfg0, directED|tlfs.STimerPeriodic|tlfs.STimerEnable)
	r.clock.Advance(1_000_000)
	if r.intr.total() != 0 {
		t.Fatal("a period near 2^64 expired")
	}
}

// TestResetStopsTimers: Reset stops every timer and clears its registers.
func TestResetStopsTimers(t *testing.T) {
	r := newRig(t, nil)
	for i := range uint32(tlfs.STimerCount) {
		r.wr(t, count0+2*i, 1000)
		r.wr(t, cfg0+2*i, directED|tlfs.STimerPeriodic|tlfs.STimerEnable)
	}
	r.s.Reset()
	r.clock.Advance(100_000)
	if r.intr.total() != 0 {
		t.Fatal("timers ran after Reset")
	}
	for i := range uint32(tlfs.STimerCount) {
		if r.rd(t, cfg0+2*i) != 0 || r.rd(t, count0+2*i) != 0 {
			t.Fatalf("STIMER%d not reset", i)
		}
	}
}

// TestStaleCallback: a host-timer callback that was already running when
// the timer was disabled, or that comes early, changes nothing.
func TestStaleCallback(t *testing.T) {
	r := newRig(t, nil)
	r.wr(t, count0, 10_000)
	r.wr(t, cfg0, directED|tlfs.STimerPeriodic|tlfs.STimerEnable)
	r.s.timerCallback(0) // early: re-arms for the same expiry
	if at, armed, _ := r.clock.timers[0].state(); !armed || at != r.clock.ReferenceTime()+10_000 {
		t.Fatalf("early callback: armed %v at %d", armed, at)
	}
	r.wr(t, cfg0, 0)
	r.s.timerCallback(0) // stale: the timer is off
	if _, armed, _ := r.clock.timers[0].state(); armed || r.intr.total() != 0 {
		t.Fatal("stale callback re-armed or raised")
	}
}
