package apic

import (
	"bytes"
	"testing"
)

// TestMMIOWidths: reads of any width return bytes of the slot's image (the
// register in its first 4 bytes, zero after); only aligned 4-byte writes
// reach a register.
func TestMMIOWidths(t *testing.T) {
	l, _ := newOne(t)
	enable(l)
	xw(l, LAPIC_TPR, 0x5a)
	for _, c := range []struct {
		off  uint64
		n    int
		want []byte
	}{
		{LAPIC_VER, 4, []byte{0x14, 0, 0x06, 0x01}},
		{LAPIC_VER, 1, []byte{0x14}},
		{LAPIC_VER + 2, 2, []byte{0x06, 0x01}},
		{LAPIC_VER + 3, 1, []byte{0x01}},
		{LAPIC_VER, 8, []byte{0x14, 0, 0x06, 0x01, 0, 0, 0, 0}},
		{LAPIC_VER + 4, 4, []byte{0, 0, 0, 0}},
		{LAPIC_VER + 12, 8, []byte{0, 0, 0, 0, 0, 0, 0, 0}}, // runs into the next slot: zero
		{PageSize - 4, 4, []byte{0, 0, 0, 0}},
		{PageSize, 4, []byte{0, 0, 0, 0}},
	} {
		got := bytes.Repeat([]byte{0xee}, c.n)
		l.ReadMMIO(c.off, got)
		if !bytes.Equal(got, c.want) {
			t.Errorf("%d-byte read at %#x = % x, want % x", c.n, c.off, got, c.want)
		}
	}
	for _, w := range []struct {
		off  uint64
		data []byte
	}{
		{LAPIC_TPR, []byte{0x10}},
		{LAPIC_TPR, []byte{0x10, 0}},
		{LAPIC_TPR, []byte{0x10, 0, 0, 0, 0, 0, 0, 0}},
		{LAPIC_TPR + 4, []byte{0x10, 0, 0, 0}},
		{LAPIC_TPR + 1, []byte{0x10, 0, 0, 0}},
		{LAPIC_TPR, nil},
	} {
		l.WriteMMIO(w.off, w.data)
		if got := xr(l, LAPIC_TPR); got != 0x5a {
			t.Fatalf("%d-byte write at %#x reached TPR (%#x)", len(w.data), w.off, got)
		}
	}
	xw(l, LAPIC_TPR, 0xffff_ff33) // reserved bits dropped
	if got := xr(l, LAPIC_TPR); got != 0x33 {
		t.Fatalf("TPR %#x", got)
	}
	l.ReadMMIO(LAPIC_TPR, nil) // nothing to read: no panic
}

// TestMMIOIllegalRegister: reads and writes of slots that hold no register
// set ESR bit 7 and raise the error interrupt; writes to read-only
// registers are ignored without an error.
func TestMMIOIllegalRegister(t *testing.T) {
	l, _ := newOne(t)
	enable(l)
	xw(l, LAPIC_LVT_ERROR, 0xee)
	for _, off := range []uint32{0x000, 0x010, 0x040, 0x070, 0x290, 0x2e0, 0x3a0, 0x3f0, 0x400, 0xff0} {
		xw(l, LAPIC_ESR, 0)
		xw(l, LAPIC_ESR, 0)
		xw(l, off, 0x1234)
		xw(l, LAPIC_ESR, 0)
		if got := xr(l, LAPIC_ESR); got != 1<<ESR_ILLEGAL_REG_ADDR {
			t.Errorf("write at %#x: ESR %#x, want illegal register address", off, got)
		}
		xw(l, LAPIC_ESR, 0)
		xr(l, off+2)
		xw(l, LAPIC_ESR, 0)
		if got := xr(l, LAPIC_ESR); got != 1<<ESR_ILLEGAL_REG_ADDR {
			t.Errorf("read at %#x: ESR %#x", off+2, got)
		}
	}
	if v, ok := l.PendingVector(); !ok || v != 0xee {
		t.Fatal("no error interrupt")
	}
	for _, off := range []uint32{LAPIC_VER, LAPIC_PPR, LAPIC_APR, LAPIC_RRD, LAPIC_ISR, LAPIC_IRR + 0x70, LAPIC_TMR, LAPIC_TIMER_CURRENT, LAPIC_EOI} {
		before := xr(l, off)
		xw(l, LAPIC_ESR, 0)
		if off != LAPIC_EOI {
			xw(l, off, 0xffff_ffff)
		}
		xw(l, LAPIC_ESR, 0)
		if got := xr(l, LAPIC_ESR); got != 0 {
			t.Errorf("register %#x: ESR %#x", off, got)
		}
		if got := xr(l, off); got != before {
			t.Errorf("read-only register %#x changed to %#x", off, got)
		}
	}
}

// TestAPR computes the arbitration priority as SDM Vol. 3A 11.6.2.4 gives
// it.
func TestAPR(t *testing.T) {
	l, r := newOne(t)
	enable(l)
	xw(l, LAPIC_TPR, 0x45)
	if got := xr(l, LAPIC_APR); got != 0x45 {
		t.Fatalf("APR %#x with TPR only", got)
	}
	xw(l, LAPIC_TPR, 0x75)
	fixed(r, 0, 0x91)
	if got := xr(l, LAPIC_APR); got != 0x90 {
		t.Fatalf("APR %#x with IRRV above TPR", got)
	}
}

// TestLDRDFRStorage: LDR keeps bits 31:24 and DFR 31:28, the rest of DFR
// reading as ones.
func TestLDRDFRStorage(t *testing.T) {
	l, _ := newOne(t)
	xw(l, LAPIC_LDR, 0xffff_ffff)
	xw(l, LAPIC_DFR, 0x0000_1234)
	xw(l, LAPIC_ICRH, 0xffff_ffff)
	xw(l, LAPIC_SVR, 0xffff_ffff)
	for off, want := range map[uint32]uint32{LAPIC_LDR: 0xff00_0000, LAPIC_DFR: 0x0fff_ffff, LAPIC_ICRH: 0xff00_0000, LAPIC_SVR: 0x13ff} {
		if got := xr(l, off); got != want {
			t.Errorf("register %#x = %#x, want %#x", off, got, want)
		}
	}
}
