package loader

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

const (
	mib1 = 1 << 20
	gib1 = 1 << 30
)

func TestE820(t *testing.T) {
	ram, res, acpi, nvs := E820RAM, E820Reserved, E820ACPI, E820NVS
	for _, c := range []struct {
		name     string
		ram      []uint64
		reserved []Range
		want     []Range
	}{
		{
			name: "one RAM range: low RAM, the legacy area reserved, RAM from 1 MiB",
			ram:  []uint64{0, 256 * mib1},
			want: []Range{{0, 0x9f000, ram}, {0x9f000, 0x61000, res}, {mib1, 255 * mib1, ram}},
		},
		{
			name: "ranges given out of order and adjacent are merged",
			ram:  []uint64{2 * mib1, 6 * mib1, 0, mib1, mib1, mib1},
			want: []Range{{0, 0x9f000, ram}, {0x9f000, 0x61000, res}, {mib1, 7 * mib1, ram}},
		},
		{
			name: "a hole below 4 GiB, ACPI tables in the legacy area, MMIO outside RAM, NVS inside RAM",
			ram:  []uint64{0, 3 * gib1, 4 * gib1, 2 * gib1},
			reserved: []Range{
				{0xfee00000, 0x1000, res}, // out of order on purpose
				{0xe0000, 0x20000, acpi},
				{0xfec00000, 0x1000, res},
				{128 * mib1, 64 << 10, nvs},
			},
			want: []Range{
				{0, 0x9f000, ram},
				{0x9f000, 0xe0000 - 0x9f000, res},
				{0xe0000, 0x20000, acpi},
				{mib1, 127 * mib1, ram},
				{128 * mib1, 64 << 10, nvs},
				{128*mib1 + 64<<10, 3*gib1 - 128*mib1 - 64<<10, ram},
				{0xfec00000, 0x1000, res},
				{0xfee00000, 0x1000, res},
				{4 * gib1, 2 * gib1, ram},
			},
		},
		{
			name:     "a reserved range adjacent to the legacy area merges with it",
			ram:      []uint64{0, 64 * mib1},
			reserved: []Range{{mib1, mib1, res}},
			want:     []Range{{0, 0x9f000, ram}, {0x9f000, 0x161000, res}, {2 * mib1, 62 * mib1, ram}},
		},
		{
			name:     "a reserved range straddling the end of RAM",
			ram:      []uint64{0, 64 * mib1},
			reserved: []Range{{63 * mib1, 2 * mib1, acpi}},
			want:     []Range{{0, 0x9f000, ram}, {0x9f000, 0x61000, res}, {mib1, 62 * mib1, ram}, {63 * mib1, 2 * mib1, acpi}},
		},
		{
			name: "RAM only above 1 MiB: no low entries",
			ram:  []uint64{mib1, mib1},
			want: []Range{{mib1, mib1, ram}},
		},
		{
			name:     "no RAM: only the reserved ranges",
			reserved: []Range{{0xfec00000, 0x1000, res}},
			want:     []Range{{0xfec00000, 0x1000, res}},
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := E820(newFakeMem(c.ram...), c.reserved)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, c.want) {
				t.Fatalf("\n got %v\nwant %v", got, c.want)
			}
		})
	}
}

func TestE820Refuses(t *testing.T) {
	many := make([]Range, 0, 100)
	for i := range uint64(100) {
		many = append(many, Range{2*mib1 + i*2*0x1000, 0x1000, E820Reserved}) // 100 holes: 3 + 200 entries
	}
	for _, c := range []struct {
		name     string
		ram      []uint64
		reserved []Range
		want     string
	}{
		{"overlapping RAM", []uint64{0, 2 * mib1, mib1, mib1}, nil, "RAM ranges [0x0, 0x200000) RAM and [0x100000, 0x200000) RAM overlap"},
		{"RAM wraps", []uint64{0, mib1, 1<<64 - 0x1000, 0x2000}, nil, "wraps the address space"},
		{"reserved of size 0", []uint64{0, 4 * mib1}, []Range{{2 * mib1, 0, E820Reserved}}, "reserved range 0 at 0x200000: size 0"},
		{"reserved wraps", []uint64{0, 4 * mib1}, []Range{{1<<64 - 0x1000, 0x2000, E820Reserved}}, "wraps the address space"},
		{"reserved as RAM", []uint64{0, 4 * mib1}, []Range{{2 * mib1, 0x1000, E820RAM}}, "type must be reserved (2), ACPI (3) or NVS (4)"},
		{"reserved of type 5", []uint64{0, 4 * mib1}, []Range{{2 * mib1, 0x1000, 5}}, "[0x200000, 0x201000) type 5: type must be"},
		{"reserved ranges overlap", []uint64{0, 4 * mib1}, []Range{{2 * mib1, 0x2000, E820Reserved}, {2*mib1 + 0x1000, 0x1000, E820ACPI}}, "overlap"},
		{"more than 128 entries", []uint64{0, 4 * mib1}, many, "203 entries: memory map has more than 128 entries"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := E820(newFakeMem(c.ram...), c.reserved)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err %v, want %q", err, c.want)
			}
		})
	}
	_, err := E820(newFakeMem(0, mib1), make([]Range, 129))
	if !errors.Is(err, ErrE820TooLarge) {
		t.Fatalf("129 reserved ranges: %v", err)
	}
}
