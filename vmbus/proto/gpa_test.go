package proto

import (
	"encoding/binary"
	"errors"
	"reflect"
	"testing"
)

func pfnsFrom(first uint64, n int) []uint64 {
	p := make([]uint64, n)
	for i := range p {
		p[i] = first + uint64(i)*3
	}
	return p
}

// storvsc's rings: 128 KiB each way, one GPADL of 64 pages, which Linux
// sends as a header with 26 PFNs and bodies of 28 and 10
// (linux-guest-hyperv-facts.md §4.2, §5.1).
func TestSplitGPADLAsLinuxDoes(t *testing.T) {
	pfns := pfnsFrom(0x1000, 64)
	array, err := AppendGPARange(nil, 64*PageSize, 0, pfns)
	if err != nil {
		t.Fatal(err)
	}
	h, bodies, err := SplitGPADL(7, 0xe1e10, 1, array)
	if err != nil {
		t.Fatal(err)
	}
	if h.RangeBufLen != 8+64*8 || h.RangeCount != 1 || len(h.Data) != 8+26*8 || len(bodies) != 2 ||
		len(bodies[0].Data) != 28*8 || len(bodies[1].Data) != 10*8 {
		t.Fatalf("header %d/%d bytes, %d bodies", len(h.Data), h.RangeBufLen, len(bodies))
	}
	sizes := []int{}
	var assembled []byte
	for _, m := range append([]Message{h}, bodies[0], bodies[1]) {
		b, err := Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		sizes = append(sizes, len(b))
		back, err := ParseChannelMessage(b)
		if err != nil {
			t.Fatal(err)
		}
		switch m := back.(type) {
		case GPADLHeader:
			assembled = append(assembled, m.Data...)
		case GPADLBody:
			if m.GPADL != 0xe1e10 {
				t.Fatalf("body for GPADL %#x", m.GPADL)
			}
			assembled = append(assembled, m.Data...)
		}
	}
	if !reflect.DeepEqual(sizes, []int{236, 240, 96}) {
		t.Fatalf("message sizes %v", sizes)
	}
	l, err := ParseGPADLRanges(h.RangeCount, assembled)
	if err != nil {
		t.Fatal(err)
	}
	if l.Len() != 1 || l.PageCount() != 64 {
		t.Fatalf("%d ranges, %d pages", l.Len(), l.PageCount())
	}
	for r := range l.All() {
		if r.ByteCount != 64*PageSize || r.ByteOffset != 0 {
			t.Fatalf("range %+v", r)
		}
		for i := range r.PageCount() {
			if r.PFN(i) != pfns[i] {
				t.Fatalf("PFN %d = %#x", i, r.PFN(i))
			}
		}
	}
}

// hv_utils' rings fit in the header: 8 pages.
func TestSmallGPADLHasNoBodies(t *testing.T) {
	array, _ := AppendGPARange(nil, 8*PageSize, 0, pfnsFrom(1, 8))
	h, bodies, err := SplitGPADL(1, 2, 1, array)
	if err != nil || len(bodies) != 0 || len(h.Data) != 72 {
		t.Fatalf("%v %d bodies %d bytes", err, len(bodies), len(h.Data))
	}
}

func TestGPARangePages(t *testing.T) {
	for _, c := range []struct {
		off, n uint32
		want   int
	}{
		{0, 1, 1}, {0, 4096, 1}, {0, 4097, 2}, {4095, 1, 1}, {4095, 2, 2}, {100, 8192, 3},
		{0xfff, 0xffff_ffff, 1048577},
	} {
		if got := GPARangePages(c.off, c.n); got != c.want {
			t.Errorf("offset %#x count %#x: %d pages, want %d", c.off, c.n, got, c.want)
		}
	}
}

func rangeBytes(n, off uint32, pfns int) []byte {
	b := binary.LittleEndian.AppendUint32(nil, n)
	b = binary.LittleEndian.AppendUint32(b, off)
	return append(b, make([]byte, 8*pfns)...)
}

func TestParseGPARangesRefusesHostileRanges(t *testing.T) {
	cat := func(bs ...[]byte) (out []byte) {
		for _, b := range bs {
			out = append(out, b...)
		}
		return out
	}
	for _, c := range []struct {
		name  string
		b     []byte
		count int
	}{
		{"zero bytes", rangeBytes(0, 0, 1), 1},
		{"offset past the first page", rangeBytes(1, 4096, 2), 1},
		{"too few PFNs", rangeBytes(4097, 0, 1), 1},
		{"offset pushes into another page", rangeBytes(4096, 1, 1), 1},
		{"second range missing", rangeBytes(1, 0, 1), 2},
		{"second range truncated", cat(rangeBytes(1, 0, 1), rangeBytes(8192, 0, 1)), 2},
		{"huge count", rangeBytes(1, 0, 1), 1 << 30},
		{"negative count", rangeBytes(1, 0, 1), -1},
		{"byte count near 4 GiB", rangeBytes(0xffff_ffff, 0xfff, 4), 1},
		{"header cut", []byte{1, 0, 0, 0}, 1},
	} {
		if _, err := ParseGPARanges(c.b, c.count); !errors.Is(err, ErrRange) {
			t.Errorf("%s: %v", c.name, err)
		}
	}
	// Trailing bytes are allowed by ParseGPARanges, not by a GPADL.
	b := append(rangeBytes(10, 5, 1), make([]byte, 8)...)
	l, err := ParseGPARanges(b, 1)
	if err != nil || len(l.Bytes()) != 16 {
		t.Fatalf("%v, %d bytes", err, len(l.Bytes()))
	}
	if _, err := ParseGPADLRanges(1, b); !errors.Is(err, ErrRange) {
		t.Fatal("a GPADL with a stray PFN parsed")
	}
	if _, _, err := SplitGPADL(1, 1, 1, b); err == nil {
		t.Fatal("SplitGPADL took an invalid array")
	}
	if _, err := AppendGPARange(nil, 4097, 0, []uint64{1}); !errors.Is(err, ErrRange) {
		t.Fatal("AppendGPARange took too few PFNs")
	}
}

func TestSplitGPADLRefusesArraysAbove64KiB(t *testing.T) {
	array, err := AppendGPARange(nil, 8192*PageSize, 0, pfnsFrom(0, 8192))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := SplitGPADL(1, 1, 1, array); !errors.Is(err, ErrRange) {
		t.Fatal("range_buflen would overflow")
	}
}
