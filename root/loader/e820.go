package loader

import (
	"errors"
	"fmt"
	"sort"
)

// The legacy area below 1 MiB. A PC's conventional memory ends at 640 KiB
// minus the EBDA; gohv has no EBDA and reports RAM up to LowRAMEnd, which
// leaves Linux's decompressor its trampoline pages just below it
// (arch/x86/boot/compressed/pgtable_64.c find_trampoline_placement clamps
// to 0x9F000) and its real-mode AP trampoline RAM below 1 MiB
// (arch/x86/realmode/init.c reserve_real_mode). RAM in [LowRAMEnd, 1 MiB)
// is reported reserved: Linux scans it for ROMs, DMI and the RSDP.
const (
	LowRAMEnd = 0x9f000
	legacyEnd = 0x100000
)

// E820MaxEntries is how many entries boot_params holds
// (E820_MAX_ENTRIES_ZEROPAGE).
const E820MaxEntries = 128

// ErrE820TooLarge is returned when the memory map has more entries than
// boot_params holds (the setup_data extension, SETUP_E820_EXT, is not
// written).
var ErrE820TooLarge = errors.New("memory map has more than 128 entries")

// E820 builds the memory map Linux receives: mem's RAM with the legacy
// area [LowRAMEnd, 1 MiB) and every range of reserved carved out of it,
// each reserved range with its own type whether or not RAM lies under it,
// sorted by address, adjacent entries of one type merged.
//
// Reserved ranges must have a size, must not wrap, must be of type
// reserved, ACPI or NVS, and must not overlap one another; a reserved
// range wins over the legacy area it overlaps (ACPI tables at 0xE0000 are
// reported as ACPI). The map must fit boot_params (ErrE820TooLarge).
func E820(mem Memory, reserved []Range) ([]Range, error) {
	ram, err := ramRanges(mem)
	if err != nil {
		return nil, err
	}
	if len(reserved) > E820MaxEntries {
		return nil, fmt.Errorf("%d reserved ranges: %w", len(reserved), ErrE820TooLarge)
	}
	res := append([]Range(nil), reserved...)
	for i, r := range res {
		switch {
		case r.Size == 0:
			return nil, fmt.Errorf("reserved range %d at %#x: size 0", i, r.GPA)
		case r.GPA+r.Size < r.GPA:
			return nil, fmt.Errorf("reserved range %d at %#x+%#x wraps the address space", i, r.GPA, r.Size)
		case r.Type != E820Reserved && r.Type != E820ACPI && r.Type != E820NVS:
			return nil, fmt.Errorf("reserved range %v: type must be reserved (2), ACPI (3) or NVS (4)", r)
		}
	}
	sort.Slice(res, func(i, j int) bool { return res[i].GPA < res[j].GPA })
	for i := 1; i < len(res); i++ {
		if res[i].GPA < res[i-1].End() {
			return nil, fmt.Errorf("reserved ranges %v and %v overlap", res[i-1], res[i])
		}
	}

	// Every boundary of every input range; between two neighbours the
	// type is constant.
	var pts []uint64
	for _, rs := range [][]Range{ram, res, {{GPA: LowRAMEnd, Size: legacyEnd - LowRAMEnd}}} {
		for _, r := range rs {
			pts = append(pts, r.GPA, r.End())
		}
	}
	sort.Slice(pts, func(i, j int) bool { return pts[i] < pts[j] })
	in := func(rs []Range, a uint64) (Range, bool) {
		i := sort.Search(len(rs), func(i int) bool { return rs[i].End() > a })
		if i < len(rs) && rs[i].GPA <= a {
			return rs[i], true
		}
		return Range{}, false
	}
	var out []Range
	for i := 0; i+1 < len(pts); i++ {
		a, b := pts[i], pts[i+1]
		if a == b {
			continue
		}
		var t E820Type
		if r, ok := in(res, a); ok {
			t = r.Type
		} else if _, ok := in(ram, a); ok {
			t = E820RAM
			if a >= LowRAMEnd && a < legacyEnd {
				t = E820Reserved
			}
		} else {
			continue
		}
		if n := len(out); n > 0 && out[n-1].End() == a && out[n-1].Type == t {
			out[n-1].Size += b - a
			continue
		}
		out = append(out, Range{a, b - a, t})
	}
	if len(out) > E820MaxEntries {
		return nil, fmt.Errorf("%d entries: %w", len(out), ErrE820TooLarge)
	}
	return out, nil
}
