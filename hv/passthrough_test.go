package hv

import (
	"testing"

	"gohv/ept"
	"gohv/x86"
)

// TestRAMHostRuns: the runs cover the RAM exactly, in order, each backed
// by the host pages Page sees.
func TestRAMHostRuns(t *testing.T) {
	p, _, _, _ := newTestPartition(t, 4<<20)
	next := uint64(0)
	p.Mem.RAMHostRuns(func(gpa, hpa, size uint64) {
		if gpa != next || size == 0 || size%x86.PageSize != 0 {
			t.Fatalf("run %#x+%#x after %#x", gpa, size, next)
		}
		if h, _, _, ok := p.Mem.table.Translate(gpa + size - x86.PageSize); !ok || h != hpa+size-x86.PageSize {
			t.Fatalf("run %#x→%#x: the nested table maps its last page to %#x", gpa, hpa, h)
		}
		next = gpa + size
	})
	if next != 4<<20 {
		t.Fatalf("runs end at %#x", next)
	}
}

// TestMapDevice: device memory maps uncached, read/write, no execute, at
// an address clear of RAM, emulated MMIO, the interrupt controllers and
// other device ranges; anything else is refused and leaves nothing.
func TestMapDevice(t *testing.T) {
	p, _, _, _ := newTestPartition(t, 4<<20)
	if err := p.Mem.MapDevice(0xc000_0000, 0xfea0_0000, 1<<20); err != nil {
		t.Fatal(err)
	}
	m, ok := p.Mem.table.Lookup(0xc00f_f000)
	if !ok || m.HPA+(0xc00f_f000-m.GPA) != 0xfeaf_f000 || m.MemType != ept.UC || m.Perm&ept.Exec != 0 || m.Perm&ept.Write == 0 {
		t.Fatalf("mapping %+v", m)
	}
	if h, ok := p.Mem.DeviceAt(0xc000_1234); !ok || h != 0xfea0_1234 {
		t.Fatalf("DeviceAt: %#x %v", h, ok)
	}
	for _, c := range []struct{ gpa, size uint64 }{
		{0x30_0000, 0x20_0000},          // RAM
		{0xc008_0000, 1 << 20},          // the first range
		{0xfec0_0000, 0x1000},           // the I/O APIC
		{0xfee0_0000, 0x1000},           // the local APIC
		{0xd000_0800, 0x1000},           // unaligned
		{0xffff_ffff_ffff_f000, 0x2000}, // wraps
	} {
		if err := p.Mem.MapDevice(c.gpa, 0xfe00_0000, c.size); err == nil {
			t.Errorf("device range %#x+%#x accepted", c.gpa, c.size)
		}
	}
	if _, ok := p.Mem.DeviceAt(0xfec0_0000); ok {
		t.Fatal("a refused range was recorded")
	}
}
