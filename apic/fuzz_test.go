package apic

import (
	"encoding/binary"
	"math/bits"
	"testing"

	"gohv/x86"
)

// FuzzLAPIC drives two LAPICs of one partition with guest-chosen register
// and MSR accesses, IA32_APIC_BASE writes, messages from outside, acks,
// EOIs, LINT levels and the passing of time, and checks the package's
// invariants after every step:
//
//   - nothing panics;
//   - IRR, ISR and TMR hold no vector below 16;
//   - ISR holds only vectors Ack returned and no EOI (or reset) retired,
//     at most one per priority class;
//   - Ack returns the highest IRR vector exactly when its class is above
//     PPR's, and otherwise the spurious vector without touching ISR;
//   - a software-disabled LAPIC has every LVT entry masked.
//
// Each step is 6 bytes: an operation and its arguments (see fuzzStep).
func FuzzLAPIC(f *testing.F) {
	for _, seed := range lapicSeeds() {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r := newRig(t, 2, nil)
		fz := &lapicFuzzer{t: t, r: r}
		data = data[:min(len(data), 6*maxFuzzSteps)] // short inputs keep minimizing cheap
		for len(data) >= 6 {
			fz.step(data[:6])
			data = data[6:]
			for i := range r.lapics {
				fz.check(i)
			}
		}
	})
}

// maxFuzzSteps bounds one input's length.
const maxFuzzSteps = 128

type lapicFuzzer struct {
	t     *testing.T
	r     *rig
	acked [2][4]uint64 // vectors Ack returned, not yet seen retired
}

// step runs one operation. b[0] picks it (mod 16) and, in bit 7, which
// LAPIC it acts on; b[1:6] are its arguments.
func (fz *lapicFuzzer) step(b []byte) {
	who := int(b[0] >> 7)
	l := fz.r.lapics[who]
	v32 := binary.LittleEndian.Uint32(b[2:6])
	off := uint32(b[1]) << 4 // every 16-byte slot of the page
	switch b[0] & 15 {
	case 0: // aligned 32-bit register write
		xw(l, off, v32)
	case 1: // register write of any width and alignment
		n := []int{1, 2, 4, 8}[b[2]&3]
		var buf [8]byte
		binary.LittleEndian.PutUint32(buf[:], v32)
		binary.LittleEndian.PutUint32(buf[4:], v32)
		l.WriteMMIO(uint64(off|uint32(b[3]&15)), buf[:n])
	case 2: // register read of any width
		var buf [8]byte
		l.ReadMMIO(uint64(off|uint32(b[3]&15)), buf[:[]int{1, 2, 4, 8}[b[2]&3]])
	case 3: // x2APIC MSR write; the ICR gets b[5] as its destination
		v := uint64(v32)
		if b[1] == 0x30 {
			v = uint64(v32&0xff_ffff) | uint64(b[5])<<32
		}
		l.WriteMSR(x86.MsrX2APICBase+uint32(b[1]), v)
	case 4: // x2APIC MSR read
		l.ReadMSR(x86.MsrX2APICBase + uint32(b[1]))
	case 5: // IA32_APIC_BASE: mode from b[1], rarely a reserved or moved base
		v := uint64(x86.APICDefaultBase) | uint64(b[1]&3)<<10
		if b[2] == 0xff {
			v |= uint64(v32) << 12
		}
		l.WriteMSR(x86.MsrAPICBase, v)
	case 6: // a message from outside (device, MSI, another partition's VP)
		Deliver(fz.r.bus, Message{
			Vector: b[1], Mode: DeliveryMode(b[2] & 7), Logical: b[2]&8 != 0,
			Level: b[2]&16 != 0, X2APIC: b[2]&32 != 0, Dest: uint32(b[3]) | uint32(b[4]&b[2]>>6)<<8,
		})
	case 7:
		fz.ack(who)
	case 8: // EOI through whichever interface the mode has
		if l.Mode() == ModeX2APIC {
			l.WriteMSR(x86.MsrX2APICEOI, 0)
		} else {
			xw(l, LAPIC_EOI, 0)
		}
	case 9:
		fz.r.clock.Advance(int64(v32 & 0xff_ffff)) // up to 16.7 ms
	case 10:
		l.WriteMSR(x86.MsrTSCDeadline, fz.r.clock.TSC()+uint64(v32&0xf_ffff))
	case 11:
		l.TakeEvents()
	case 12:
		l.SetLINT(int(b[1]&1), b[2]&1 != 0)
	case 13:
		l.SetTPR(b[1])
	case 14:
		l.PollTimer()
		l.ReadMSR(x86.MsrTSCDeadline)
	case 15: // a typical guest sequence: program the timer and ack
		xw(l, LAPIC_SVR, 1<<SVR_ENABLE|0xff)
		xw(l, LAPIC_LVT_TIMER, uint32(b[1])|uint32(b[2]&3)<<TIMER_MODE)
		xw(l, LAPIC_TIMER_DIVIDE, uint32(b[3]))
		xw(l, LAPIC_TIMER_INITIAL, uint32(b[4])|uint32(b[5])<<8)
		fz.ack(who)
	}
}

// ack checks Ack against what the registers say it must return.
func (fz *lapicFuzzer) ack(who int) {
	l := fz.r.lapics[who]
	l.mu.Lock()
	irrv := highest(&l.irr)
	ppr := l.pprLocked()
	svr := uint8(l.svr)
	isrBefore := l.isr
	l.mu.Unlock()
	want := irrv >= 0 && uint32(irrv)&0xf0 > ppr&0xf0
	if pv, ok := l.PendingVector(); ok != want || (ok && int(pv) != irrv) {
		fz.t.Fatalf("lapic %d: PendingVector = %#x %v; IRRV %#x PPR %#x", who, pv, ok, irrv, ppr)
	}
	v, ok := l.Ack()
	switch {
	case want && (!ok || int(v) != irrv):
		fz.t.Fatalf("lapic %d: Ack = %#x %v, want %#x (PPR %#x)", who, v, ok, irrv, ppr)
	case !want && (ok || v != svr):
		fz.t.Fatalf("lapic %d: Ack = %#x %v with nothing above PPR %#x, want spurious %#x", who, v, ok, ppr, svr)
	case !want:
		if _, isr, _ := l.snapshot(); isr != isrBefore {
			fz.t.Fatalf("lapic %d: spurious Ack changed ISR", who)
		}
	default:
		setBit(&fz.acked[who], v)
	}
}

func (fz *lapicFuzzer) check(i int) {
	l := fz.r.lapics[i]
	l.mu.Lock()
	irr, isr, tmr := l.irr, l.isr, l.tmr
	swOff := !l.softwareEnabled()
	lvt := l.lvt
	events := l.nmi || l.init || l.sipi
	l.mu.Unlock()
	if l.Idle() && (irr != [4]uint64{} || events) {
		fz.t.Fatalf("lapic %d: Idle with IRR %#x, events %v", i, bitsOf(irr), events)
	}
	if (irr[0]|isr[0]|tmr[0])&0xffff != 0 {
		fz.t.Fatalf("lapic %d: vector below 16: IRR %#x ISR %#x TMR %#x", i, irr[0]&0xffff, isr[0]&0xffff, tmr[0]&0xffff)
	}
	for w := range isr {
		if extra := isr[w] &^ fz.acked[i][w]; extra != 0 {
			fz.t.Fatalf("lapic %d: ISR holds %#x, never acked", i, w*64+bits.TrailingZeros64(extra))
		}
		fz.acked[i][w] &= isr[w]
	}
	for class := 0; class < 16; class++ {
		if n := bits.OnesCount64(isr[class/4] >> (16 * (class % 4)) & 0xffff); n > 1 {
			fz.t.Fatalf("lapic %d: %d vectors of class %#x in service: %#x", i, n, class, bitsOf(isr))
		}
	}
	if swOff {
		for j, e := range lvt {
			if e&lvtMasked == 0 {
				fz.t.Fatalf("lapic %d: LVT %#x unmasked while software-disabled", i, lvtOffsets[j])
			}
		}
	}
}

// lapicSeeds are hand-written step sequences that reach the interesting
// states quickly; testdata/fuzz/FuzzLAPIC holds more.
func lapicSeeds() [][]byte {
	step := func(op, a byte, v uint32) []byte {
		b := []byte{op, a, 0, 0, 0, 0}
		binary.LittleEndian.PutUint32(b[2:], v)
		return b
	}
	cat := func(steps ...[]byte) (out []byte) {
		for _, s := range steps {
			out = append(out, s...)
		}
		return out
	}
	svr := step(0, LAPIC_SVR>>4, 0x1ff)
	return [][]byte{
		// Nested interrupts with TPR and EOIs.
		cat(svr, step(6, 0x30, 0), step(7, 0, 0), step(6, 0x50, 0), step(6, 0x40, 0),
			step(7, 0, 0), step(13, 0x60, 0), step(7, 0, 0), step(8, 0, 0), step(13, 0, 0), step(7, 0, 0), step(8, 0, 0), step(8, 0, 0)),
		// Periodic timer, one-tick period, with time passing.
		cat(step(15, 0x41, 0x0b01_0b01), step(9, 0, 0x10_0000), step(7, 0, 0), step(8, 0, 0), step(9, 0, 0x30_0000)),
		// x2APIC: switch, ICR to the other LAPIC, SELF_IPI, EOI.
		cat(svr, step(5, 3, 0), step(3, 0x0f, 0x1ff), step(0x85, 3, 0), step(0x83, 0x0f, 0x1ff),
			step(3, 0x30, 0x0100_0061), step(3, 0x3f, 0x62), step(7, 0, 0), step(0x87, 0, 0), step(8, 0, 0), step(0x88, 0, 0)),
		// TSC deadline.
		cat(svr, step(0, LAPIC_LVT_TIMER>>4, 2<<TIMER_MODE|0x43), step(10, 0, 5000), step(9, 0, 10000), step(7, 0, 0), step(14, 0, 0)),
		// INIT and SIPI from VP 0 to VP 1, then illegal vectors.
		cat(svr, step(0, LAPIC_ICRH>>4, 1<<24), step(0, LAPIC_ICRL>>4, ICR_DLV_INIT|1<<ICR_INIT), step(0, LAPIC_ICRL>>4, ICR_DLV_SIPI|0x9a),
			step(0x8b, 0, 0), step(0, LAPIC_ICRL>>4, 0x05), step(6, 0x07, 0), step(0, LAPIC_ESR>>4, 0)),
		// Level interrupts and LINT0.
		cat(svr, step(6, 0x70, 0x0010), step(0, LAPIC_LVT_LINT0>>4, 1<<LVT_TRIGGER|0x71), step(12, 0, 1), step(7, 0, 0), step(7, 0, 0), step(8, 0, 0), step(8, 0, 0)),
	}
}
