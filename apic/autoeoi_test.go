package apic

import (
	"slices"
	"testing"
)

// TestAutoEOIVectorSkipsISR: an auto-EOI vector is acknowledged without
// entering ISR (TLFS "SINTx Registers": the hypervisor clears the ISR bit
// itself), so a lower-priority vector behind it is deliverable at once and no
// EOI is needed; with the mark removed the same vector is in service until
// EOI.
func TestAutoEOIVectorSkipsISR(t *testing.T) {
	l, r := newOne(t)
	enable(l)
	l.SetAutoEOI(0xf3, true)
	if !l.AutoEOI(0xf3) || l.AutoEOI(0xf2) {
		t.Fatal("AutoEOI does not report the marked vector alone")
	}
	fixed(r, 0, 0xf3)
	if v, ok := l.Ack(); !ok || v != 0xf3 {
		t.Fatalf("Ack %#x %v", v, ok)
	}
	if _, isr, _ := l.snapshot(); bitsOf(isr) != nil {
		t.Fatalf("ISR %#x after an auto-EOI Ack", bitsOf(isr))
	}
	fixed(r, 0, 0x31)
	if v, ok := l.PendingVector(); !ok || v != 0x31 {
		t.Fatalf("vector 0x31 held back after an auto-EOI vector: %#x %v", v, ok)
	}
	l.Ack()
	xw(l, LAPIC_EOI, 0) // retires 0x31

	l.SetAutoEOI(0xf3, false)
	fixed(r, 0, 0xf3)
	l.Ack()
	if _, isr, _ := l.snapshot(); !slices.Equal(bitsOf(isr), []int{0xf3}) {
		t.Fatalf("ISR %#x, want 0xf3 once the mark is off", bitsOf(isr))
	}
	fixed(r, 0, 0x31)
	if _, ok := l.PendingVector(); ok {
		t.Fatal("0x31 deliverable while 0xf3 is in service")
	}
	if st := l.Stats(); st.Acked != 3 {
		t.Fatalf("acked %d, want 3", st.Acked)
	}
}

// TestAutoEOILevelStillInService: a marked vector that arrives
// level-triggered still enters ISR, so its EOI reaches the I/O APIC (SDM
// Vol. 3A 11.8.5); only edge deliveries are retired at once.
func TestAutoEOILevelStillInService(t *testing.T) {
	l, r := newOne(t)
	enable(l)
	l.SetAutoEOI(0x41, true)
	Deliver(r.bus, Message{Vector: 0x41, Dest: 0, Level: true})
	l.Ack()
	if _, isr, _ := l.snapshot(); !slices.Equal(bitsOf(isr), []int{0x41}) {
		t.Fatalf("ISR %#x, want the level vector in service", bitsOf(isr))
	}
	xw(l, LAPIC_EOI, 0)
	if !slices.Equal(r.eoi.vectors, []uint8{0x41}) {
		t.Fatalf("EOI listener saw %#x", r.eoi.vectors)
	}
}

// TestAutoEOIIsNotArchitectural: INIT resets the LAPIC but not the
// auto-EOI marks (they are the SynIC's configuration); vectors below 16
// cannot be marked.
func TestAutoEOIIsNotArchitectural(t *testing.T) {
	l, r := newOne(t)
	l.SetAutoEOI(0x80, true)
	l.SetAutoEOI(0x0f, true)
	Deliver(r.bus, Message{Mode: DeliveryINIT, Dest: 0})
	l.TakeEvents()
	if !l.AutoEOI(0x80) {
		t.Fatal("INIT cleared an auto-EOI mark")
	}
	if l.AutoEOI(0x0f) {
		t.Fatal("vector 15 marked auto-EOI")
	}
}

// TestAutoEOIDoesNotAllocate: marking and acknowledging an auto-EOI vector
// allocate nothing.
func TestAutoEOIDoesNotAllocate(t *testing.T) {
	l, r := newOne(t)
	enable(l)
	n := testing.AllocsPerRun(100, func() {
		l.SetAutoEOI(0xf3, true)
		fixed(r, 0, 0xf3)
		l.Ack()
		_ = l.AutoEOI(0xf3)
	})
	if n != 0 {
		t.Fatalf("%v allocations", n)
	}
}
