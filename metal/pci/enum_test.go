package pci

import (
	"encoding/binary"
	"slices"
	"strings"
	"testing"
)

// fakeFn is one function of the fake configuration space: its 4 KiB and,
// per BAR, the bits a write can change (a BAR's size mask).
type fakeFn struct {
	cfg     [4096]byte
	barMask [6]uint32
}

// fakeSpace is a configuration space that answers like hardware: absent
// functions read all ones, BARs keep only their writable bits, the
// command register is writable, anything else written is an error.
type fakeSpace struct {
	t      *testing.T
	fns    map[Addr]*fakeFn
	writes int
}

func (s *fakeSpace) Read32(a Addr, off uint16) uint32 {
	f, ok := s.fns[a]
	if !ok {
		return ^uint32(0)
	}
	return binary.LittleEndian.Uint32(f.cfg[off:])
}

func (s *fakeSpace) Write32(a Addr, off uint16, v uint32) {
	s.writes++
	f, ok := s.fns[a]
	if !ok {
		s.t.Errorf("write %#x to absent %v+%#x", v, a, off)
		return
	}
	le := binary.LittleEndian
	switch {
	case off == offCommand:
		if v>>16 != 0 {
			s.t.Errorf("%v: write %#x sets status bits (write-one-to-clear)", a, v)
		}
		le.PutUint16(f.cfg[offCommand:], uint16(v))
	case off >= offBAR0 && off < offBAR0+24:
		i := (off - offBAR0) / 4
		if cmd := le.Uint16(f.cfg[offCommand:]); cmd&(cmdIO|cmdMemory) != 0 {
			s.t.Errorf("%v: BAR%d written with decoding on (command %#x)", a, i, cmd)
		}
		old := le.Uint32(f.cfg[off:])
		m := f.barMask[i]
		le.PutUint32(f.cfg[off:], old&^m|v&m)
	default:
		s.t.Errorf("%v: unexpected write %#x at %#x", a, v, off)
	}
}

// fn builds a function: IDs, class, header type, command.
func (s *fakeSpace) fn(a Addr, vendor, device uint16, class uint32, header uint8) *fakeFn {
	f := &fakeFn{}
	le := binary.LittleEndian
	le.PutUint16(f.cfg[0:], vendor)
	le.PutUint16(f.cfg[2:], device)
	le.PutUint32(f.cfg[offClass:], class<<8)
	f.cfg[offHeader+2] = header
	le.PutUint16(f.cfg[offCommand:], cmdIO|cmdMemory|0x4) // decoding and bus master on
	le.PutUint16(f.cfg[offCommand+2:], 0x8000)            // a pending error: must survive
	s.fns[a] = f
	return f
}

// bar programs BAR i: its value (address and flag bits) and its size.
func (f *fakeFn) bar(i int, value uint32, size uint64) *fakeFn {
	binary.LittleEndian.PutUint32(f.cfg[offBAR0+4*i:], value)
	mask := ^(size - 1)
	if value&1 != 0 {
		f.barMask[i] = uint32(mask) &^ 3 & 0xffff
	} else {
		f.barMask[i] = uint32(mask) &^ 0xf
	}
	if value&1 == 0 && value>>1&3 == 2 {
		f.barMask[i+1] = uint32(mask >> 32)
	}
	return f
}

// caps chains capabilities at the given offsets (id, offset pairs).
func (f *fakeFn) caps(list ...uint8) *fakeFn {
	f.cfg[offCommand+2] |= statusCapList
	f.cfg[offCapPtr] = list[1]
	for i := 0; i < len(list); i += 2 {
		f.cfg[list[i+1]] = list[i]
		if i+3 < len(list) {
			f.cfg[list[i+1]+1] = list[i+3]
		}
	}
	return f
}

func q35(t *testing.T) *fakeSpace {
	s := &fakeSpace{t: t, fns: map[Addr]*fakeFn{}}
	s.fn(Addr{0, 0, 0}, 0x8086, 0x29c0, 0x060000, 0)
	s.fn(Addr{0, 0, 1}, 0x1234, 0x5678, 0x060000, 0) // a ghost: device 0 is not multi-function
	s.fn(Addr{0, 1, 0}, 0x1234, 0x1111, 0x030000, 0).bar(0, 0xfd000008, 16<<20).bar(2, 0xfebd4000, 4<<10)
	s.fn(Addr{0, 2, 0}, 0x1234, 0x11e8, 0x00ff00, 0).bar(0, 0xfea00000, 1<<20).caps(CapPCIe, 0x40, CapMSI, 0x80)
	s.fn(Addr{0, 3, 0}, 0x1af4, 0x1041, 0x020000, 0).bar(1, 0xfebd6000, 4<<10).bar(4, 0x0000000c, 16<<10).caps(CapMSIX, 0x98, CapVendor, 0x84, CapVendor, 0x70)
	binary.LittleEndian.PutUint32(s.fns[Addr{0, 3, 0}].cfg[offBAR0+20:], 0x8) // BAR4 at 0x8_0000_0000
	// A PCIe root port, multi-function, with a device behind it.
	br := s.fn(Addr{0, 4, 0}, 0x1b36, 0x000c, 0x060400, 0x81).bar(0, 0xfebd7000, 4<<10).caps(CapPCIe, 0x54, CapMSIX, 0x48, CapPM, 0x40)
	binary.LittleEndian.PutUint32(br.cfg[offBuses:], 0x00010100)
	s.fn(Addr{0, 4, 1}, 0x1b36, 0x000c, 0x060400, 0x81)
	s.fn(Addr{1, 0, 0}, 0x8086, 0x10d3, 0x020000, 0).bar(0, 0xfe800000, 128<<10).bar(2, 0x0000d001, 32).caps(CapPM, 0xc8, CapMSI, 0xd0, CapPCIe, 0xe0, CapMSIX, 0xa0)
	// Liars.
	s.fn(Addr{0, 5, 0}, 0x1234, 0x0005, 0xff0000, 0).caps(CapMSI, 0x40, CapPM, 0x50, CapMSI, 0x40) // a loop
	s.fn(Addr{0, 6, 0}, 0x1234, 0x0006, 0xff0000, 0).bar(0, 0xfe000000, 4<<10)
	s.fns[Addr{0, 6, 0}].barMask[0] = 0xfff0f000 // a hole in the size mask
	liar := s.fn(Addr{0, 7, 0}, 0x1234, 0x0007, 0xff0000, 0).caps(CapMSI, 0x40)
	liar.cfg[0x41] = 0x20 // the second pointer points into the header
	// The ICH9 functions on device 31.
	s.fn(Addr{0, 31, 0}, 0x8086, 0x2918, 0x060100, 0x80)
	s.fn(Addr{0, 31, 2}, 0x8086, 0x2922, 0x010601, 0).bar(4, 0xc041, 32).bar(5, 0xfebd5000, 4<<10).caps(CapMSI, 0x80, CapSATA, 0xa8)
	s.fn(Addr{0, 31, 3}, 0x8086, 0x2930, 0x0c0500, 0).bar(4, 0x0701, 64)
	return s
}

func TestEnumerateQ35Like(t *testing.T) {
	s := q35(t)
	before := map[Addr][4096]byte{}
	for a, f := range s.fns {
		before[a] = f.cfg
	}
	fns, skipped := Enumerate(s, 0, 255)
	var got []string
	for _, f := range fns {
		got = append(got, f.String())
	}
	want := []string{
		"pci 00:00.0 8086:29c0 class 06.00.00",
		"pci 00:01.0 1234:1111 class 03.00.00 bars mem32-pf 0xfd000000/16M mem32 0xfebd4000/4K",
		"pci 00:02.0 1234:11e8 class 00.ff.00 bars mem32 0xfea00000/1M caps pcie msi",
		"pci 00:03.0 1af4:1041 class 02.00.00 bars mem32 0xfebd6000/4K mem64-pf 0x800000000/16K caps msix vendor vendor",
		"pci 00:04.0 1b36:000c class 06.04.00 bridge buses 01-01 bars mem32 0xfebd7000/4K caps pcie msix pm",
		"pci 00:04.1 1b36:000c class 06.04.00 bridge buses 00-00",
		"pci 00:1f.0 8086:2918 class 06.01.00",
		"pci 00:1f.2 8086:2922 class 01.06.01 bars io 0xc040/32 mem32 0xfebd5000/4K caps msi sata",
		"pci 00:1f.3 8086:2930 class 0c.05.00 bars io 0x700/64",
		"pci 01:00.0 8086:10d3 class 02.00.00 bars mem32 0xfe800000/128K io 0xd000/32 caps pm msi pcie msix",
	}
	if !slices.Equal(got, want) {
		t.Errorf("functions:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	wantSkipped := []string{
		"pci 00:05.0 1234:0005 skipped: capability list loops back to 0x40",
		"pci 00:06.0 1234:0006 skipped: BAR0 reads back 0xfffffffffff0f000: the size is not a power of two",
		"pci 00:07.0 1234:0007 skipped: capability pointer 0x20 points into the header",
	}
	if !slices.Equal(skipped, wantSkipped) {
		t.Errorf("skipped:\n%s\nwant:\n%s", strings.Join(skipped, "\n"), strings.Join(wantSkipped, "\n"))
	}
	for a, f := range s.fns {
		if f.cfg != before[a] {
			t.Errorf("%v: configuration space changed by enumeration", a)
		}
	}
	if s.writes == 0 {
		t.Error("no BAR was sized")
	}
}

func TestCapabilityListTooLong(t *testing.T) {
	s := &fakeSpace{t: t, fns: map[Addr]*fakeFn{}}
	f := s.fn(Addr{0, 0, 0}, 0x1234, 1, 0xff0000, 0)
	var list []uint8
	for off := 0x40; off < 0x100; off += 4 {
		list = append(list, CapVendor, uint8(off))
	}
	f.caps(list...)
	// 48 entries fill 0x40..0xfc exactly: the longest list that can be.
	fns, skipped := Enumerate(s, 0, 0)
	if len(fns) != 1 || len(fns[0].Caps) != 48 || len(skipped) != 0 {
		t.Fatalf("fns %v skipped %v", fns, skipped)
	}
	// A 49th entry can only revisit one (the pointer's low two bits are
	// reserved and masked): the loop check stops it.
	f.cfg[0xfd] = 0x41
	_, skipped = Enumerate(s, 0, 0)
	if len(skipped) != 1 || !strings.Contains(skipped[0], "loops back to 0x40") {
		t.Errorf("skipped %v", skipped)
	}
}
