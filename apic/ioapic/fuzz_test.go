package ioapic

import (
	"encoding/binary"
	"testing"

	"gohv/apic"
)

// FuzzIOAPIC drives an I/O APIC and two local APICs with guest-chosen
// window accesses, device line changes, acks and EOIs, and checks after
// every step:
//
//   - nothing panics;
//   - remote IRR is set only on level-triggered fixed or lowest-priority
//     entries;
//   - a masked entry sends nothing when its line changes;
//   - a level entry with remote IRR set sends nothing when its line is
//     asserted again;
//   - no LAPIC holds a vector below 16 in IRR or ISR.
//
// Each step is 6 bytes: an operation and its arguments (see step).
func FuzzIOAPIC(f *testing.F) {
	for _, s := range ioapicSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r := newRig(t, 2)
		data = data[:min(len(data), 6*maxSteps)] // short inputs keep minimizing cheap
		for len(data) >= 6 {
			step(t, r, data[:6])
			data = data[6:]
			check(t, r)
		}
	})
}

func step(t *testing.T, r *rig, b []byte) {
	v := binary.LittleEndian.Uint32(b[2:6])
	l := r.lapic(int(b[0] >> 7))
	switch b[0] & 7 {
	case 0: // select and write a register (often a redirection entry)
		r.write(uint32(b[1]), v)
	case 1: // raw window write
		n := []int{1, 2, 4, 8}[b[1]>>6]
		var buf [8]byte
		binary.LittleEndian.PutUint32(buf[:], v)
		r.io.WriteMMIO(uint64(b[1]&0x3f)<<2, buf[:n])
	case 2: // raw window read
		var buf [8]byte
		r.io.ReadMMIO(uint64(b[1]), buf[:[]int{1, 2, 4, 8}[b[2]&3]])
	case 3: // a device line
		pin := int(b[1]) % (Pins + 2) // now and then a pin that does not exist
		before := r.io.Stats().Sent
		var e uint64
		if pin < Pins {
			e = r.entry(pin)
		}
		r.io.SetIRQ(pin, b[2]&1 != 0)
		if sent := r.io.Stats().Sent - before; sent != 0 && pin < Pins {
			if e&mask != 0 {
				t.Fatalf("masked pin %d (entry %#x) sent", pin, e)
			}
			if e&(1<<REDTBL_RIRR) != 0 {
				t.Fatalf("pin %d sent again with remote IRR set (entry %#x)", pin, e)
			}
		}
	case 4: // the VP takes its interrupt and EOIs it
		if _, ok := l.Ack(); ok {
			lw(l, apic.LAPIC_EOI, 0)
		}
	case 5: // the VP toggles EOI-broadcast suppression or software enable
		lw(l, apic.LAPIC_SVR, uint32(b[1])<<8|0xff)
	case 6: // the EOI register
		w32(r.io, IOEOI, v)
	case 7: // program a whole entry: pin in bits 4:0, destination in 7:5
		r.program(int(b[1]&31)%Pins, v, b[1]>>5)
	}
}

// maxSteps bounds one input's length.
const maxSteps = 96

func check(t *testing.T, r *rig) {
	r.io.mu.Lock()
	tbl := r.io.redtbl
	r.io.mu.Unlock()
	for pin, e := range tbl {
		if e&(1<<REDTBL_RIRR) != 0 && !levelEntry(e) {
			t.Fatalf("entry %d = %#x: remote IRR on an entry that is not level fixed/lowest", pin, e)
		}
	}
	for i := range r.bus.LAPICs() {
		l := r.lapic(i)
		if lr(l, apic.LAPIC_IRR)&0xffff != 0 || lr(l, apic.LAPIC_ISR)&0xffff != 0 {
			t.Fatalf("lapic %d holds a vector below 16", i)
		}
	}
}

func ioapicSeeds() [][]byte {
	st := func(op, a byte, v uint32) []byte {
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
	return [][]byte{
		// Level IRQ 4 to LAPIC 0, asserted, EOI'd twice, dropped.
		cat(st(7, 4, level|0x34), st(3, 4, 1), st(3, 4, 1), st(4, 0, 0), st(4, 0, 0), st(3, 4, 0), st(4, 0, 0)),
		// Edge IRQ 1 to LAPIC 1 (destination byte 1), masked and unmasked.
		cat(st(7, 0x21, 0x41), st(3, 1, 1), st(3, 1, 0), st(0x84, 0, 0), st(7, 0x21, mask|0x41), st(3, 1, 1), st(7, 0x21, 0x41)),
		// EOI suppression and the EOI register.
		cat(st(5, 0x11, 0), st(7, 8, level|0x58), st(3, 8, 1), st(4, 0, 0), st(6, 0, 0x58), st(4, 0, 0)),
		// Window accesses of odd sizes and an illegal vector.
		cat(st(1, 0x40, IOAPICVER), st(2, 0x10, 3), st(0, 0x10, 0x05), st(0, 0x11, 0), st(3, 0, 1)),
	}
}
