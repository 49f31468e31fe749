package apic

import (
	"slices"
	"testing"
)

// TestPPRArithmetic checks SDM Vol. 3A 11.8.3.1: PPR is TPR when TPR's
// class is at least the highest in-service class, else that class with
// subclass 0.
func TestPPRArithmetic(t *testing.T) {
	for _, c := range []struct {
		tpr  uint8
		isr  []uint8
		want uint32
	}{
		{0x00, nil, 0x00},
		{0x45, nil, 0x45},
		{0x00, []uint8{0x31}, 0x30},
		{0x3f, []uint8{0x31}, 0x3f}, // equal class: TPR wins with its subclass
		{0x2f, []uint8{0x31}, 0x30},
		{0x10, []uint8{0x31, 0x9a}, 0x90},
		{0xff, []uint8{0xfe}, 0xff},
	} {
		l, _ := newOne(t)
		l.SetTPR(c.tpr)
		l.mu.Lock()
		for _, v := range c.isr {
			setBit(&l.isr, v)
		}
		l.mu.Unlock()
		if got := xr(l, LAPIC_PPR); got != c.want {
			t.Errorf("TPR %#x ISR %#x: PPR %#x, want %#x", c.tpr, c.isr, got, c.want)
		}
	}
}

// TestTPRMasksLowerClasses: a vector is deliverable only when its class
// is above TPR's; lowering TPR releases it (SDM Vol. 3A 11.8.3).
func TestTPRMasksLowerClasses(t *testing.T) {
	l, r := newOne(t)
	enable(l)
	xw(l, LAPIC_TPR, 0x50)
	fixed(r, 0, 0x55)
	if v, ok := l.PendingVector(); ok {
		t.Fatalf("vector %#x deliverable with TPR 0x50", v)
	}
	fixed(r, 0, 0x61)
	if v, ok := l.PendingVector(); !ok || v != 0x61 {
		t.Fatalf("pending %#x %v, want 0x61", v, ok)
	}
	if v, _ := l.Ack(); v != 0x61 {
		t.Fatalf("acked %#x", v)
	}
	xw(l, LAPIC_EOI, 0)
	if _, ok := l.PendingVector(); ok {
		t.Fatal("0x55 deliverable before TPR was lowered")
	}
	xw(l, LAPIC_TPR, 0x4f)
	if v, ok := l.PendingVector(); !ok || v != 0x55 {
		t.Fatalf("after lowering TPR: pending %#x %v, want 0x55", v, ok)
	}
	if l.TPR() != 0x4f {
		t.Fatalf("TPR reads %#x", l.TPR())
	}
}

// TestNestedEOIOrder walks nested interrupts: a higher class interrupts a
// lower one, an equal or lower class waits, and each EOI retires the
// highest in-service vector (SDM Vol. 3A 11.8.4, 11.8.5).
func TestNestedEOIOrder(t *testing.T) {
	l, r := newOne(t)
	enable(l)
	ack := func(want uint8) {
		t.Helper()
		v, ok := l.Ack()
		if !ok || v != want {
			t.Fatalf("Ack = %#x %v, want %#x", v, ok, want)
		}
	}
	fixed(r, 0, 0x30)
	ack(0x30)
	fixed(r, 0, 0x3e) // same class: waits
	if v, ok := l.PendingVector(); ok {
		t.Fatalf("same-class %#x deliverable while 0x30 in service", v)
	}
	fixed(r, 0, 0x50)
	ack(0x50)
	fixed(r, 0, 0x40) // below the in-service 0x50: waits
	if _, ok := l.PendingVector(); ok {
		t.Fatal("0x40 deliverable while 0x50 in service")
	}
	_, isr, _ := l.snapshot()
	if got := bitsOf(isr); !slices.Equal(got, []int{0x30, 0x50}) {
		t.Fatalf("ISR %#x", got)
	}
	xw(l, LAPIC_EOI, 0) // retires 0x50
	ack(0x40)
	xw(l, LAPIC_EOI, 0) // retires 0x40
	if _, ok := l.PendingVector(); ok {
		t.Fatal("0x3e deliverable while 0x30 in service")
	}
	xw(l, LAPIC_EOI, 0) // retires 0x30
	ack(0x3e)
	xw(l, LAPIC_EOI, 0)
	xw(l, LAPIC_EOI, 0) // nothing in service: ignored
	irr, isr, _ := l.snapshot()
	if bitsOf(irr) != nil || bitsOf(isr) != nil {
		t.Fatalf("IRR %#x ISR %#x left over", bitsOf(irr), bitsOf(isr))
	}
	if s := l.Stats(); s.Acked != 4 || s.EOIs != 4 {
		t.Fatalf("stats %+v", s)
	}
}

// TestHighestVectorFirst: with several classes pending, Ack takes the
// highest vector.
func TestHighestVectorFirst(t *testing.T) {
	l, r := newOne(t)
	enable(l)
	for _, v := range []uint8{0x21, 0xfe, 0x80, 0x8f, 0x40} {
		fixed(r, 0, v)
	}
	if v, _ := l.Ack(); v != 0xfe {
		t.Fatalf("first %#x", v)
	}
	xw(l, LAPIC_EOI, 0)
	if v, _ := l.Ack(); v != 0x8f {
		t.Fatalf("second %#x", v)
	}
}

// TestSpuriousAck: Ack with nothing deliverable returns SVR's vector and
// leaves ISR alone (SDM Vol. 3A 11.9).
func TestSpuriousAck(t *testing.T) {
	l, r := newOne(t)
	xw(l, LAPIC_SVR, 1<<SVR_ENABLE|0x3f)
	xw(l, LAPIC_TPR, 0xf0)
	fixed(r, 0, 0x80)
	v, ok := l.Ack()
	if ok || v != 0x3f {
		t.Fatalf("Ack = %#x %v, want spurious 0x3f", v, ok)
	}
	if irr, isr, _ := l.snapshot(); bitsOf(isr) != nil || !slices.Equal(bitsOf(irr), []int{0x80}) {
		t.Fatalf("IRR %#x ISR %#x", bitsOf(irr), bitsOf(isr))
	}
	if l.Stats().Spurious != 1 {
		t.Fatal("spurious not counted")
	}
}

// TestIllegalVectorsRefused: vectors 0-15 never reach IRR; the receiver
// notes receive-illegal-vector and raises its error interrupt once per
// ESR write (SDM Vol. 3A 11.5.3).
func TestIllegalVectorsRefused(t *testing.T) {
	l, r := newOne(t)
	enable(l)
	xw(l, LAPIC_LVT_ERROR, 0xe3)
	for v := 0; v < 16; v++ {
		if _, acc := Deliver(r.bus, Message{Vector: uint8(v), Dest: 0}); acc != 0 {
			t.Fatalf("vector %d accepted", v)
		}
	}
	irr, _, _ := l.snapshot()
	if got := bitsOf(irr); !slices.Equal(got, []int{0xe3}) {
		t.Fatalf("IRR %#x, want only the error vector 0xe3", got)
	}
	if got := xr(l, LAPIC_ESR); got != 0 {
		t.Fatalf("ESR reads %#x before the write that latches it", got)
	}
	xw(l, LAPIC_ESR, 0)
	if got := xr(l, LAPIC_ESR); got != 1<<ESR_RECV_ILLEGAL_VEC {
		t.Fatalf("ESR %#x, want receive-illegal", got)
	}
	xw(l, LAPIC_ESR, 0)
	if got := xr(l, LAPIC_ESR); got != 0 {
		t.Fatalf("ESR %#x after a second write with no new errors", got)
	}
	if s := l.Stats(); s.Errors != 1 {
		t.Fatalf("errors %d, want 1 (repeats merge until the ESR write)", s.Errors)
	}
}

// TestErrorVectorIllegal: an error LVT with an illegal vector records
// receive-illegal too, without looping.
func TestErrorVectorIllegal(t *testing.T) {
	l, _ := newOne(t)
	enable(l)
	xw(l, LAPIC_LVT_ERROR, 0x05)
	xr(l, 0x3f0) // reserved: illegal register address
	xw(l, LAPIC_ESR, 0)
	want := uint32(1<<ESR_ILLEGAL_REG_ADDR | 1<<ESR_RECV_ILLEGAL_VEC)
	if got := xr(l, LAPIC_ESR); got != want {
		t.Fatalf("ESR %#x, want %#x", got, want)
	}
	if irr, _, _ := l.snapshot(); bitsOf(irr) != nil {
		t.Fatalf("IRR %#x", bitsOf(irr))
	}
}

// TestLevelEOIBroadcast: EOI of a level-triggered vector reaches the EOI
// listener unless SVR suppresses the broadcast; edge vectors never do
// (SDM Vol. 3A 11.8.5).
func TestLevelEOIBroadcast(t *testing.T) {
	l, r := newOne(t)
	enable(l)
	Deliver(r.bus, Message{Vector: 0x41, Dest: 0, Level: true})
	fixed(r, 0, 0x52)
	if _, _, tmr := l.snapshot(); !slices.Equal(bitsOf(tmr), []int{0x41}) {
		t.Fatalf("TMR %#x", bitsOf(tmr))
	}
	l.Ack()
	xw(l, LAPIC_EOI, 0) // 0x52, edge
	l.Ack()
	xw(l, LAPIC_EOI, 0) // 0x41, level
	if !slices.Equal(r.eoi.vectors, []uint8{0x41}) {
		t.Fatalf("EOI listener saw %#x", r.eoi.vectors)
	}
	xw(l, LAPIC_SVR, 1<<SVR_ENABLE|1<<SVR_EOI_SUPPRESS|0xff)
	Deliver(r.bus, Message{Vector: 0x41, Dest: 0, Level: true})
	l.Ack()
	xw(l, LAPIC_EOI, 0)
	if len(r.eoi.vectors) != 1 {
		t.Fatalf("suppressed EOI broadcast reached the listener: %#x", r.eoi.vectors)
	}
}

// TestSuppressBitNeedsAdvertising: without the version bit, SVR bit 12 is
// not writable.
func TestSuppressBitNeedsAdvertising(t *testing.T) {
	r := newRig(t, 1, func(_ int, c *Config) { c.SuppressEOIBroadcast = false })
	l := r.lapics[0]
	xw(l, LAPIC_SVR, 0xffff_ffff)
	if got := xr(l, LAPIC_SVR); got != 0x3ff {
		t.Fatalf("SVR %#x, want 0x3ff", got)
	}
	if got := xr(l, LAPIC_VER); got&(1<<VER_EOI_SUPPRESS) != 0 {
		t.Fatalf("version %#x advertises suppression", got)
	}
}

// TestSoftwareDisabled: a software-disabled LAPIC drops fixed interrupts
// but takes NMI, INIT and SIPI; clearing SVR bit 8 masks every LVT entry,
// and the masks stay while it is clear (SDM Vol. 3A 11.4.7.2).
func TestSoftwareDisabled(t *testing.T) {
	r := newRig(t, 2, nil)
	l := r.lapics[1]
	enable(l)
	xw(l, LAPIC_LVT_LINT0, 0x30)
	xw(l, LAPIC_SVR, 0xff)
	if got := xr(l, LAPIC_LVT_LINT0); got != 0x1_0030 {
		t.Fatalf("LINT0 %#x after software disable, want masked", got)
	}
	xw(l, LAPIC_LVT_TIMER, 0x40)
	if got := xr(l, LAPIC_LVT_TIMER); got&lvtMasked == 0 {
		t.Fatal("LVT unmasked while software-disabled")
	}
	if _, acc := Deliver(r.bus, Message{Vector: 0x40, Dest: 1}); acc != 0 {
		t.Fatal("fixed interrupt accepted while software-disabled")
	}
	if _, acc := Deliver(r.bus, Message{Mode: DeliveryNMI, Dest: 1}); acc != 1 {
		t.Fatal("NMI refused while software-disabled")
	}
	if ev := l.TakeEvents(); !ev.NMI {
		t.Fatal("no NMI event")
	}
	if l.Stats().Dropped != 1 {
		t.Fatalf("dropped %d", l.Stats().Dropped)
	}
}

// TestKickOnlyWhenActionable: the sink hears of vectors that became
// deliverable and of events, not of vectors PPR holds back.
func TestKickOnlyWhenActionable(t *testing.T) {
	l, r := newOne(t)
	s := r.sinks[0]
	enable(l)
	xw(l, LAPIC_TPR, 0x80)
	fixed(r, 0, 0x70)
	if s.kicks != 0 {
		t.Fatal("kicked for a vector below TPR")
	}
	fixed(r, 0, 0x90)
	if s.kicks != 1 {
		t.Fatalf("kicks %d, want 1", s.kicks)
	}
	Deliver(r.bus, Message{Mode: DeliveryNMI, Dest: 0})
	if s.kicks != 2 {
		t.Fatalf("kicks %d after NMI, want 2", s.kicks)
	}
}

// TestINITAndSIPI: INIT resets the LAPIC (keeping its ID) and parks an AP
// in wait-for-SIPI; the first SIPI starts it, a second is ignored; the
// BSP restarts instead of waiting (SDM Vol. 3A 9.4.4, 11.4.7.3).
func TestINITAndSIPI(t *testing.T) {
	r := newRig(t, 2, nil)
	ap := r.lapics[1]
	enable(ap)
	xw(ap, LAPIC_TPR, 0x20)
	fixed(r, 1, 0x77)
	if _, acc := Deliver(r.bus, Message{Mode: DeliveryStartUp, Vector: 0x9a, Dest: 1}); acc != 0 {
		t.Fatal("SIPI accepted outside wait-for-SIPI")
	}
	Deliver(r.bus, Message{Mode: DeliveryINIT, Dest: 1})
	Deliver(r.bus, Message{Mode: DeliveryStartUp, Vector: 0x9a, Dest: 1})
	Deliver(r.bus, Message{Mode: DeliveryStartUp, Vector: 0x9b, Dest: 1})
	ev := ap.TakeEvents()
	want := Events{INIT: true, WaitForSIPI: true, SIPI: true, SIPIVector: 0x9a}
	if ev != want {
		t.Fatalf("events %+v, want %+v", ev, want)
	}
	if got := xr(ap, LAPIC_ID); got != 1<<24 {
		t.Fatalf("ID %#x after INIT", got)
	}
	if got := xr(ap, LAPIC_SVR); got != 0xff {
		t.Fatalf("SVR %#x after INIT", got)
	}
	if irr, _, _ := ap.snapshot(); bitsOf(irr) != nil || xr(ap, LAPIC_TPR) != 0 {
		t.Fatal("INIT left IRR or TPR")
	}
	if (ap.TakeEvents() != Events{}) {
		t.Fatal("events not cleared")
	}
	if ap.Stats().Dropped != 2 {
		t.Fatalf("dropped %d, want 2 (the SIPIs outside wait-for-SIPI)", ap.Stats().Dropped)
	}

	bsp := r.lapics[0]
	Deliver(r.bus, Message{Mode: DeliveryINIT, Dest: 0})
	Deliver(r.bus, Message{Mode: DeliveryStartUp, Vector: 0x10, Dest: 0})
	if ev := bsp.TakeEvents(); ev != (Events{INIT: true}) {
		t.Fatalf("BSP events %+v", ev)
	}
}

// TestLINT0LevelRemoteIRR: a level-triggered LINT0 entry delivers once
// while asserted, sets remote IRR, and delivers again after EOI while the
// line stays asserted.
func TestLINT0LevelRemoteIRR(t *testing.T) {
	l, _ := newOne(t)
	enable(l)
	xw(l, LAPIC_LVT_LINT0, 1<<LVT_TRIGGER|0x66)
	l.SetLINT(0, true)
	if got := xr(l, LAPIC_LVT_LINT0); got&(1<<LVT_REMOTE_IRR) == 0 {
		t.Fatalf("LINT0 %#x: remote IRR clear after delivery", got)
	}
	if v, ok := l.Ack(); !ok || v != 0x66 {
		t.Fatalf("Ack %#x %v", v, ok)
	}
	l.SetLINT(0, true) // still asserted: no second message before EOI
	if _, ok := l.PendingVector(); ok {
		t.Fatal("redelivered before EOI")
	}
	xw(l, LAPIC_EOI, 0)
	if v, ok := l.PendingVector(); !ok || v != 0x66 {
		t.Fatal("not redelivered after EOI with the line asserted")
	}
	l.Ack()
	l.SetLINT(0, false)
	xw(l, LAPIC_EOI, 0)
	if _, ok := l.PendingVector(); ok {
		t.Fatal("redelivered after the line dropped")
	}
	if got := xr(l, LAPIC_LVT_LINT0); got&(1<<LVT_REMOTE_IRR) != 0 {
		t.Fatal("remote IRR still set")
	}
}

// TestLINT1EdgeNMI: LINT1 programmed for NMI gives one NMI per assertion.
func TestLINT1EdgeNMI(t *testing.T) {
	l, _ := newOne(t)
	enable(l)
	xw(l, LAPIC_LVT_LINT1, uint32(DeliveryNMI)<<LVT_DLV|1<<LVT_TRIGGER) // level ignored on LINT1
	l.SetLINT(1, true)
	l.SetLINT(1, true)
	if !l.TakeEvents().NMI {
		t.Fatal("no NMI")
	}
	l.SetLINT(1, true)
	if l.TakeEvents().NMI {
		t.Fatal("NMI without a new edge")
	}
	l.SetLINT(1, false)
	l.SetLINT(1, true)
	if !l.TakeEvents().NMI {
		t.Fatal("no NMI on the second edge")
	}
	l.SetLINT(7, true) // no such pin: ignored
	xw(l, LAPIC_LVT_LINT0, uint32(DeliveryExtINT)<<LVT_DLV)
	l.SetLINT(0, true)
	if l.Stats().Dropped != 1 {
		t.Fatal("ExtINT without a PIC not counted as dropped")
	}
}

// TestLINTEdgeClearsRemoteIRR: rewriting a level LINT0 entry as edge drops
// its remote IRR, so a lost EOI cannot wedge the pin.
func TestLINTEdgeClearsRemoteIRR(t *testing.T) {
	l, _ := newOne(t)
	enable(l)
	xw(l, LAPIC_LVT_LINT0, 1<<LVT_TRIGGER|0x66)
	l.SetLINT(0, true)
	xw(l, LAPIC_LVT_LINT0, 0x66)
	if got := xr(l, LAPIC_LVT_LINT0); got != 0x66 {
		t.Fatalf("LINT0 %#x", got)
	}
	// A level entry unmasked while its pin is asserted delivers.
	l.Ack()
	xw(l, LAPIC_EOI, 0)
	xw(l, LAPIC_LVT_LINT0, lvtMasked|1<<LVT_TRIGGER|0x67)
	xw(l, LAPIC_LVT_LINT0, 1<<LVT_TRIGGER|0x67)
	if v, ok := l.PendingVector(); !ok || v != 0x67 {
		t.Fatal("unmasking an asserted level LINT0 did not deliver")
	}
}

// TestNeverEOI: a guest that never EOIs holds at most one vector per
// class in service (15 classes above the illegal one); everything else
// waits in IRR, one bit per vector however many messages arrive (an
// in-service vector may be pending once more, as on hardware).
func TestNeverEOI(t *testing.T) {
	l, r := newOne(t)
	enable(l)
	acks := 0
	for round := 0; round < 3; round++ {
		for v := 16; v < 256; v++ {
			fixed(r, 0, uint8(v))
			if _, ok := l.Ack(); ok {
				acks++
			}
		}
	}
	if acks != 15 {
		t.Fatalf("%d vectors in service, want 15 (one per class 1-15)", acks)
	}
	irr, isr, _ := l.snapshot()
	if len(bitsOf(isr)) != 15 || len(bitsOf(irr)) != 240 {
		t.Fatalf("ISR holds %d, IRR %d", len(bitsOf(isr)), len(bitsOf(irr)))
	}
}

// TestSelfIPIFlood: a flood of self-IPIs of one vector is one pending
// interrupt, not a queue.
func TestSelfIPIFlood(t *testing.T) {
	l, _ := newOne(t)
	enable(l)
	for i := 0; i < 10_000; i++ {
		xw(l, LAPIC_ICRL, ICR_DST_SELF|0x80)
	}
	if v, ok := l.Ack(); !ok || v != 0x80 {
		t.Fatal("no interrupt")
	}
	xw(l, LAPIC_EOI, 0)
	if _, ok := l.PendingVector(); ok {
		t.Fatal("the flood queued more than one interrupt")
	}
	if s := l.Stats(); s.IPIsSent != 10_000 || s.Accepted != 10_000 {
		t.Fatalf("stats %+v", s)
	}
}

// TestIdleHint: Idle is false exactly while IRR holds a vector or an event
// waits, so the run loop may skip the LAPIC when it is true.
func TestIdleHint(t *testing.T) {
	l, r := newOne(t)
	enable(l)
	if !l.Idle() {
		t.Fatal("a fresh LAPIC is not idle")
	}
	fixed(r, 0, 0x40)
	if l.Idle() {
		t.Fatal("idle with 0x40 in IRR")
	}
	if v, ok := l.Ack(); !ok || v != 0x40 || !l.Idle() {
		t.Fatalf("Ack %#x %v; idle %v with IRR empty", v, ok, l.Idle())
	}
	Deliver(r.bus, Message{Mode: DeliveryNMI, Dest: 0})
	if l.Idle() {
		t.Fatal("idle with an NMI waiting")
	}
	if ev := l.TakeEvents(); !ev.NMI || !l.Idle() {
		t.Fatalf("events %+v; idle %v", ev, l.Idle())
	}
}

// TestTPRThreshold: only a vector the TPR holds back gives a threshold;
// one behind an in-service vector waits for the EOI instead.
func TestTPRThreshold(t *testing.T) {
	l, r := newOne(t)
	enable(l)
	if got := l.TPRThreshold(); got != 0 {
		t.Fatalf("empty IRR: %d", got)
	}
	l.SetTPR(0x50)
	fixed(r, 0, 0x45)
	if got := l.TPRThreshold(); got != 4 {
		t.Fatalf("0x45 under TPR 0x50: threshold %d, want 4", got)
	}
	l.SetTPR(0)
	if got := l.TPRThreshold(); got != 0 {
		t.Fatalf("deliverable vector: threshold %d", got)
	}
	if v, _ := l.Ack(); v != 0x45 {
		t.Fatal(v)
	}
	fixed(r, 0, 0x42) // same class as the one in service
	l.SetTPR(0x60)
	if got := l.TPRThreshold(); got != 0 {
		t.Fatalf("vector behind an in-service one: threshold %d, want 0 (the EOI exits)", got)
	}
}
