package ioapic

import (
	"encoding/binary"
	"testing"

	"gohv/apic"
)

// nopClock serves LAPICs whose timers these tests never start.
type nopClock struct{}

func (nopClock) Now() int64                     { return 0 }
func (nopClock) TSC() uint64                    { return 0 }
func (nopClock) TSCHz() uint64                  { return 1e9 }
func (nopClock) NewTimer(func()) apic.HostTimer { return nopTimer{} }

type nopTimer struct{}

func (nopTimer) Arm(int64) {}
func (nopTimer) Stop()     {}

type countSink struct{ n int }

func (s *countSink) Kick() { s.n++ }

// lateEOI forwards LAPIC EOIs to the I/O APIC, which is made after the
// LAPICs.
type lateEOI struct{ io *IOAPIC }

func (b *lateEOI) EOI(v uint8) { b.io.EOI(v) }

type rig struct {
	bus *apic.StaticBus
	io  *IOAPIC
}

func (r *rig) lapic(i int) *apic.LAPIC { return r.bus.LAPICs()[i] }
func (r *rig) sel(index uint32)        { w32(r.io, IOREGSEL, index) }
func (r *rig) read(index uint32) uint64 {
	r.sel(index)
	return uint64(r32(r.io, IOWIN))
}
func (r *rig) write(index, v uint32) {
	r.sel(index)
	w32(r.io, IOWIN, v)
}

// entry reads redirection entry pin through IOREGSEL/IOWIN.
func (r *rig) entry(pin int) uint64 {
	i := IOAPICREDTBLn + 2*uint32(pin)
	return r.read(i) | r.read(i+1)<<32
}

// program writes entry pin: high half (destination) first, as drivers do.
func (r *rig) program(pin int, lo uint32, dest byte) {
	i := IOAPICREDTBLn + 2*uint32(pin)
	r.write(i+1, uint32(dest)<<24)
	r.write(i, lo)
}

// newRig makes n xAPIC LAPICs (IDs 0..n-1, software-enabled, flat LDR
// bit i) and an I/O APIC with ID 2.
func newRig(t testing.TB, n int) *rig {
	t.Helper()
	r := &rig{bus: &apic.StaticBus{}}
	fwd := &lateEOI{}
	for i := 0; i < n; i++ {
		l, err := apic.New(apic.Config{ID: uint32(i), BSP: i == 0, SuppressEOIBroadcast: true,
			Clock: nopClock{}, Bus: r.bus, Sink: &countSink{}, EOI: fwd})
		if err != nil {
			t.Fatal(err)
		}
		lw(l, apic.LAPIC_SVR, 1<<apic.SVR_ENABLE|0xff)
		lw(l, apic.LAPIC_LDR, 1<<(24+i))
		r.bus.Add(l)
	}
	r.io = New(r.bus, 2)
	fwd.io = r.io
	return r
}

func r32(d interface{ ReadMMIO(uint64, []byte) }, off uint64) uint32 {
	var b [4]byte
	d.ReadMMIO(off, b[:])
	return binary.LittleEndian.Uint32(b[:])
}

func w32(d interface{ WriteMMIO(uint64, []byte) }, off uint64, v uint32) {
	var b [4]byte
	binary.LittleEndian.PutUint32(b[:], v)
	d.WriteMMIO(off, b[:])
}

func lr(l *apic.LAPIC, off uint32) uint32    { return r32(l, uint64(off)) }
func lw(l *apic.LAPIC, off uint32, v uint32) { w32(l, uint64(off), v) }

// inIRR reports whether v is pending in l's IRR.
func inIRR(l *apic.LAPIC, v uint8) bool {
	return lr(l, apic.LAPIC_IRR+uint32(v/32)*0x10)&(1<<(v%32)) != 0
}

func ackEOI(t *testing.T, l *apic.LAPIC, want uint8) {
	t.Helper()
	v, ok := l.Ack()
	if !ok || v != want {
		t.Fatalf("Ack = %#x %v, want %#x", v, ok, want)
	}
	lw(l, apic.LAPIC_EOI, 0)
}

const (
	level = 1 << REDTBL_TRIGGER
	mask  = 1 << REDTBL_MASK
)

// TestRegisters: ID, version, arbitration and the reset redirection
// table, and which bits of each are writable.
func TestRegisters(t *testing.T) {
	r := newRig(t, 1)
	if got := r.read(IOAPICID); got != 2<<24 {
		t.Errorf("ID %#x", got)
	}
	if got := r.read(IOAPICVER); got != 0x0017_0020 {
		t.Errorf("version %#x, want 0x00170020 (24 entries, version 0x20)", got)
	}
	r.write(IOAPICID, 0xffff_ffff)
	if got := r.read(IOAPICID); got != 0x0f00_0000 {
		t.Errorf("ID %#x after writing ones", got)
	}
	if got := r.read(IOAPICARB); got != 0x0f00_0000 {
		t.Errorf("arbitration %#x", got)
	}
	r.write(IOAPICVER, 0)
	r.write(IOAPICARB, 0)
	if r.read(IOAPICVER) != 0x0017_0020 || r.read(IOAPICARB) != 0x0f00_0000 {
		t.Error("read-only register changed")
	}
	for pin := 0; pin < Pins; pin++ {
		if got := r.entry(pin); got != mask {
			t.Fatalf("entry %d resets to %#x", pin, got)
		}
	}
	r.write(IOAPICREDTBLn, 0xffff_ffff)
	r.write(IOAPICREDTBLn+1, 0xffff_ffff)
	if got := r.entry(0); got != 0xff00_0000_0001_afff {
		t.Errorf("entry 0 after writing ones: %#x", got)
	}
	for _, idx := range []uint32{0x03, 0x0f, 0x40, 0xff} {
		r.write(idx, 0x1234)
		if got := r.read(idx); got != 0 {
			t.Errorf("index %#x reads %#x", idx, got)
		}
	}
	w32(r.io, IOREGSEL, 0x1234_5601)
	if got := r32(r.io, IOREGSEL); got != 0x01 {
		t.Errorf("IOREGSEL %#x", got)
	}
}

// TestEdge: an edge entry sends one message per assertion; assertions
// while masked are lost.
func TestEdge(t *testing.T) {
	r := newRig(t, 2)
	l1 := r.lapic(1)
	r.program(4, 0x34, 1)
	r.io.SetIRQ(4, true)
	r.io.SetIRQ(4, true)
	if !inIRR(l1, 0x34) || inIRR(r.lapic(0), 0x34) {
		t.Fatal("IRQ 4 not delivered to LAPIC 1 alone")
	}
	ackEOI(t, l1, 0x34)
	r.io.SetIRQ(4, false)
	r.io.SetIRQ(4, true)
	ackEOI(t, l1, 0x34)
	if s := r.io.Stats(); s.Sent != 2 {
		t.Fatalf("sent %d, want 2", s.Sent)
	}
	r.program(4, mask|0x34, 1)
	r.io.SetIRQ(4, false)
	r.io.SetIRQ(4, true)
	r.program(4, 0x34, 1)
	if inIRR(l1, 0x34) {
		t.Fatal("masked edge delivered on unmask")
	}
}

// TestLevelRemoteIRR: a level entry sends while asserted, holds remote
// IRR until the EOI, and re-sends after the EOI while still asserted.
func TestLevelRemoteIRR(t *testing.T) {
	r := newRig(t, 1)
	l := r.lapic(0)
	r.program(9, level|0x49, 0)
	r.io.SetIRQ(9, true)
	if r.entry(9)&(1<<REDTBL_RIRR) == 0 || !inIRR(l, 0x49) {
		t.Fatal("level IRQ not delivered with remote IRR")
	}
	if lr(l, apic.LAPIC_TMR+0x20)&(1<<(0x49-64)) == 0 {
		t.Fatal("TMR not set for a level message")
	}
	r.io.SetIRQ(9, true)
	v, _ := l.Ack()
	if v != 0x49 {
		t.Fatal(v)
	}
	if s := r.io.Stats(); s.Sent != 1 {
		t.Fatalf("sent %d before EOI", s.Sent)
	}
	lw(l, apic.LAPIC_EOI, 0) // broadcast to the I/O APIC: re-sent, still asserted
	if s := r.io.Stats(); s.Sent != 2 || !inIRR(l, 0x49) {
		t.Fatalf("not re-sent after EOI: %+v", s)
	}
	r.io.SetIRQ(9, false)
	ackEOI(t, l, 0x49)
	if r.entry(9)&(1<<REDTBL_RIRR) != 0 || r.io.Stats().Sent != 2 {
		t.Fatal("remote IRR or a message after the line dropped")
	}
}

// TestLevelUnmaskSends: unmasking an asserted level entry sends at once.
func TestLevelUnmaskSends(t *testing.T) {
	r := newRig(t, 1)
	r.program(3, mask|level|0x33, 0)
	r.io.SetIRQ(3, true)
	if inIRR(r.lapic(0), 0x33) {
		t.Fatal("masked entry sent")
	}
	r.program(3, level|0x33, 0)
	if !inIRR(r.lapic(0), 0x33) {
		t.Fatal("unmasking an asserted level entry did not send")
	}
}

// TestEOIRegister: with the LAPIC suppressing EOI broadcasts, remote IRR
// stays until the guest writes the vector to the EOI register.
func TestEOIRegister(t *testing.T) {
	r := newRig(t, 1)
	l := r.lapic(0)
	lw(l, apic.LAPIC_SVR, 1<<apic.SVR_ENABLE|1<<apic.SVR_EOI_SUPPRESS|0xff)
	r.program(10, level|0x5a, 0)
	r.io.SetIRQ(10, true)
	ackEOI(t, l, 0x5a)
	if r.entry(10)&(1<<REDTBL_RIRR) == 0 {
		t.Fatal("suppressed broadcast cleared remote IRR")
	}
	r.io.SetIRQ(10, false)
	w32(r.io, IOEOI, 0x5b) // another vector: nothing
	if r.entry(10)&(1<<REDTBL_RIRR) == 0 {
		t.Fatal("EOI of another vector cleared remote IRR")
	}
	w32(r.io, IOEOI, 0x5a)
	if r.entry(10)&(1<<REDTBL_RIRR) != 0 {
		t.Fatal("EOI register did not clear remote IRR")
	}
}

// TestNoTarget: a message no LAPIC takes is counted and leaves remote IRR
// clear, so fixing the destination delivers the still-asserted line.
func TestNoTarget(t *testing.T) {
	r := newRig(t, 1)
	r.program(5, level|0x45, 7)
	r.io.SetIRQ(5, true)
	if s := r.io.Stats(); s.NoTarget != 1 || r.entry(5)&(1<<REDTBL_RIRR) != 0 {
		t.Fatalf("stats %+v, entry %#x", s, r.entry(5))
	}
	r.program(5, level|0x45, 0)
	if !inIRR(r.lapic(0), 0x45) {
		t.Fatal("not delivered after the destination was fixed")
	}
	r.io.SetIRQ(24, true)
	r.io.SetIRQ(-1, true)
	if r.io.Stats().BadPin != 2 {
		t.Fatal("bad pins not counted")
	}
}

// TestSwitchToEdgeClearsRIRR: rewriting a level entry as edge drops its
// remote IRR, so a lost EOI cannot wedge the pin.
func TestSwitchToEdgeClearsRIRR(t *testing.T) {
	r := newRig(t, 1)
	r.program(6, level|0x46, 0)
	r.io.SetIRQ(6, true)
	r.program(6, 0x46, 0)
	if r.entry(6)&(1<<REDTBL_RIRR) != 0 {
		t.Fatal("remote IRR survived the switch to edge")
	}
}

// TestLogicalAndModes: logical destinations, lowest priority, NMI and
// INIT through redirection entries; ExtINT and SMI reach nobody.
func TestLogicalAndModes(t *testing.T) {
	r := newRig(t, 3)
	r.program(1, 1<<REDTBL_DESTMOD|0x61, 0x06) // LAPICs 1 and 2
	r.io.SetIRQ(1, true)
	if inIRR(r.lapic(0), 0x61) || !inIRR(r.lapic(1), 0x61) || !inIRR(r.lapic(2), 0x61) {
		t.Fatal("logical destination 0x06")
	}
	r.program(2, 1<<REDTBL_DESTMOD|uint32(apic.DeliveryLowestPriority)<<REDTBL_DELMOD|0x62, 0x06)
	r.io.SetIRQ(2, true)
	if !inIRR(r.lapic(1), 0x62) || inIRR(r.lapic(2), 0x62) {
		t.Fatal("lowest priority did not pick the lowest ID")
	}
	r.program(7, uint32(apic.DeliveryNMI)<<REDTBL_DELMOD|level, 2)
	r.io.SetIRQ(7, true)
	if !r.lapic(2).TakeEvents().NMI || r.entry(7)&(1<<REDTBL_RIRR) != 0 {
		t.Fatal("level NMI entry: no NMI, or remote IRR set")
	}
	r.program(8, uint32(apic.DeliveryExtINT)<<REDTBL_DELMOD, 0)
	r.io.SetIRQ(8, true)
	if r.io.Stats().NoTarget != 1 {
		t.Fatal("ExtINT without a PIC not counted")
	}
}

// TestMMIOWidths: reads of any width see the slot image; only 4-byte
// aligned writes (and 1-byte IOREGSEL writes) count.
func TestMMIOWidths(t *testing.T) {
	r := newRig(t, 1)
	r.sel(IOAPICVER)
	b := make([]byte, 8)
	r.io.ReadMMIO(IOWIN, b)
	if binary.LittleEndian.Uint64(b) != 0x0017_0020 {
		t.Fatalf("8-byte read % x", b)
	}
	r.io.ReadMMIO(IOWIN+2, b[:1])
	if b[0] != 0x17 {
		t.Fatalf("byte read %#x", b[0])
	}
	r.io.WriteMMIO(IOREGSEL, []byte{IOAPICID})
	if r32(r.io, IOWIN) != 2<<24 {
		t.Fatal("1-byte IOREGSEL write ignored")
	}
	r.io.WriteMMIO(IOWIN, []byte{0, 0, 0, 5, 0, 0, 0, 0})
	r.io.WriteMMIO(IOWIN+1, []byte{0, 0, 0, 5})
	r.io.WriteMMIO(IOWIN, []byte{0, 5})
	if r32(r.io, IOWIN) != 2<<24 {
		t.Fatal("odd-sized write reached IOWIN")
	}
	r.io.ReadMMIO(Size, b)
	r.io.ReadMMIO(0x800, b)
	if binary.LittleEndian.Uint64(b) != 0 {
		t.Fatal("read outside the registers")
	}
}

// TestDoesNotAllocate: the device and EOI paths allocate nothing.
func TestDoesNotAllocate(t *testing.T) {
	r := newRig(t, 1)
	l := r.lapic(0)
	r.program(9, level|0x49, 0)
	r.program(4, 0x34, 0)
	n := testing.AllocsPerRun(100, func() {
		r.io.SetIRQ(9, true)
		r.io.SetIRQ(4, true)
		l.Ack()
		lw(l, apic.LAPIC_EOI, 0)
		l.Ack()
		r.io.SetIRQ(9, false)
		lw(l, apic.LAPIC_EOI, 0)
		r.io.SetIRQ(4, false)
		r32(r.io, IOWIN)
	})
	if n != 0 {
		t.Fatalf("%v allocations per run", n)
	}
}
