package loader

import (
	"fmt"
	"sort"

	"gohv/hv"
)

// Memory is the partition's guest-physical memory as a loader needs it.
// WriteRAM and ReadRAM fail when any byte of the access is not RAM;
// RAMRanges calls fn once for each RAM range. hv.GuestMemory satisfies it;
// the tests use a sparse fake.
type Memory interface {
	WriteRAM(gpa uint64, b []byte) error
	ReadRAM(gpa uint64, b []byte) error
	RAMRanges(fn func(gpa, size uint64))
}

var _ Memory = (*hv.GuestMemory)(nil)

// E820Type is the type of an E820 memory-map entry (ACPI 6.5 Table 15.312,
// Linux arch/x86/include/asm/e820/types.h).
type E820Type uint32

// The E820 types a loader reports.
const (
	E820RAM      E820Type = 1 // E820_TYPE_RAM: usable
	E820Reserved E820Type = 2 // E820_TYPE_RESERVED: MMIO windows, firmware areas
	E820ACPI     E820Type = 3 // E820_TYPE_ACPI: ACPI tables, reclaimable after parsing
	E820NVS      E820Type = 4 // E820_TYPE_NVS: ACPI non-volatile storage
)

func (t E820Type) String() string {
	switch t {
	case E820RAM:
		return "RAM"
	case E820Reserved:
		return "reserved"
	case E820ACPI:
		return "ACPI"
	case E820NVS:
		return "NVS"
	}
	return fmt.Sprintf("type %d", uint32(t))
}

// Range is a guest-physical range with an E820 type: a range the platform
// reserves (ACPI tables, MMIO windows) in Linux.Reserved, an entry of the
// memory map E820 returns.
type Range struct {
	GPA, Size uint64
	Type      E820Type
}

// End is the first address after r.
func (r Range) End() uint64 { return r.GPA + r.Size }

func (r Range) String() string {
	return fmt.Sprintf("[%#x, %#x) %v", r.GPA, r.End(), r.Type)
}

// contains reports whether [gpa, gpa+size) lies inside r.
func (r Range) contains(gpa, size uint64) bool {
	return gpa >= r.GPA && gpa+size >= gpa && gpa+size <= r.End()
}

// overlaps reports whether [gpa, gpa+size) and r share a byte.
func (r Range) overlaps(gpa, size uint64) bool {
	return gpa < r.End() && r.GPA < gpa+size
}

// ramRanges returns mem's RAM as sorted ranges of type E820RAM, adjacent
// ranges merged. Ranges that overlap or wrap the address space are a bug
// in the memory's owner and are refused.
func ramRanges(mem Memory) ([]Range, error) {
	var rs []Range
	var bad error
	mem.RAMRanges(func(gpa, size uint64) {
		if size == 0 {
			return
		}
		if gpa+size < gpa {
			bad = fmt.Errorf("RAM range %#x+%#x wraps the address space", gpa, size)
		}
		rs = append(rs, Range{gpa, size, E820RAM})
	})
	if bad != nil {
		return nil, bad
	}
	sort.Slice(rs, func(i, j int) bool { return rs[i].GPA < rs[j].GPA })
	out := rs[:0]
	for _, r := range rs {
		if n := len(out); n > 0 && r.GPA < out[n-1].End() {
			return nil, fmt.Errorf("RAM ranges %v and %v overlap", out[n-1], r)
		} else if n > 0 && r.GPA == out[n-1].End() {
			out[n-1].Size += r.Size
			continue
		}
		out = append(out, r)
	}
	return out, nil
}

// isRAM reports whether every byte of [gpa, gpa+size) is RAM (size 0:
// the byte at gpa).
func isRAM(mem Memory, gpa, size uint64) bool {
	rs, err := ramRanges(mem)
	if err != nil {
		return false
	}
	if size == 0 {
		size = 1
	}
	for _, r := range rs {
		if r.contains(gpa, size) {
			return true
		}
	}
	return false
}
