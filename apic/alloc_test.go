package apic

import (
	"testing"

	"gohv/x86"
)

// TestHotPathsDoNotAllocate: what a VP does on every entry (PendingVector,
// TakeEvents), on every interrupt (Ack, EOI, TPR), on self-IPIs and timer
// MSR writes, what other goroutines do (Deliver, the timer callback), and
// the #GP paths allocate nothing.
func TestHotPathsDoNotAllocate(t *testing.T) {
	eois := &countEOI{}
	r := newRig(t, 2, func(_ int, c *Config) { c.EOI = eois })
	l, other := r.lapics[0], r.lapics[1]
	enable(l)
	enable(other)
	xw(l, LAPIC_LVT_TIMER, TIMER_MODE_PERIODIC<<TIMER_MODE|0x60)
	xw(l, LAPIC_TIMER_DIVIDE, 0b1011)
	xw(l, LAPIC_TIMER_INITIAL, 1000)
	var page [4]byte
	for _, c := range []struct {
		name string
		f    func()
	}{
		{"PendingVector", func() { l.PendingVector() }},
		{"TakeEvents", func() { l.TakeEvents() }},
		{"Deliver+Ack+EOI", func() {
			Deliver(r.bus, Message{Vector: 0x41, Dest: 0, Level: true})
			l.Ack()
			l.WriteMMIO(LAPIC_EOI, page[:])
		}},
		{"SetTPR", func() { l.SetTPR(0x10); l.SetTPR(0) }},
		{"ReadMMIO", func() { l.ReadMMIO(LAPIC_TIMER_CURRENT, page[:]) }},
		{"ICR self IPI", func() {
			xw(l, LAPIC_ICRL, ICR_DST_SELF|0x42)
			l.Ack()
			xw(l, LAPIC_EOI, 0)
		}},
		{"ICR IPI to other", func() {
			xw(l, LAPIC_ICRH, 1<<24)
			xw(l, LAPIC_ICRL, 0x43)
			other.Ack()
			xw(other, LAPIC_EOI, 0)
		}},
		{"timer callback", func() { r.clock.now += 1000; l.timerCallback(); l.Ack(); xw(l, LAPIC_EOI, 0) }},
		{"PollTimer", func() { l.PollTimer() }},
		{"SetLINT", func() { l.SetLINT(0, true); l.SetLINT(0, false) }},
		{"Stats", func() { l.Stats() }},
		{"x2APIC #GP", func() {
			if _, err := l.ReadMSR(x86.MsrX2APICTPR); err == nil {
				panic("no #GP")
			}
			if err := l.WriteMSR(x86.MsrAPICBase, 1); err == nil {
				panic("no #GP")
			}
		}},
	} {
		if n := testing.AllocsPerRun(100, c.f); n != 0 {
			t.Errorf("%s: %v allocations per run", c.name, n)
		}
	}
	if eois.n == 0 {
		t.Error("the level EOI path was not exercised")
	}
	mustNil(t, l.WriteMSR(x86.MsrAPICBase, l.Base()|x86.APICBaseEXTD))
	mustNil(t, l.WriteMSR(x86.MsrX2APICLVTTimer, TIMER_MODE_TSC_DEADLINE<<TIMER_MODE|0x61))
	for _, c := range []struct {
		name string
		f    func()
	}{
		{"x2APIC SELF_IPI+Ack+EOI", func() {
			l.WriteMSR(x86.MsrX2APICSelfIPI, 0x44)
			l.Ack()
			l.WriteMSR(x86.MsrX2APICEOI, 0)
		}},
		{"x2APIC TPR", func() { l.WriteMSR(x86.MsrX2APICTPR, 0); l.ReadMSR(x86.MsrX2APICPPR) }},
		{"TSC deadline", func() {
			l.WriteMSR(x86.MsrTSCDeadline, r.clock.TSC()+100)
			l.ReadMSR(x86.MsrTSCDeadline)
		}},
		{"x2APIC #GP", func() {
			if err := l.WriteMSR(x86.MsrX2APICEOI, 1); err == nil {
				panic("no #GP")
			}
		}},
	} {
		if n := testing.AllocsPerRun(100, c.f); n != 0 {
			t.Errorf("%s: %v allocations per run", c.name, n)
		}
	}
}

// countEOI is an EOIListener that does not allocate (AllocsPerRun rounds
// an occasional append down to zero).
type countEOI struct{ n int }

func (c *countEOI) EOI(uint8) { c.n++ }
