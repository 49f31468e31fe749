package physmem

import (
	"math/rand"
	"reflect"
	"slices"
	"testing"
)

const (
	kib = 1 << 10
	mib = 1 << 20
	gib = 1 << 30
)

func ranges(m *Map) []Range {
	var out []Range
	for i := 0; i < m.Len(); i++ {
		out = append(out, m.At(i))
	}
	return out
}

// checkInvariants fails t unless m is sorted, non-overlapping, merged,
// page-aligned and holds no empty range.
func checkInvariants(t *testing.T, m *Map) {
	t.Helper()
	for i := 0; i < m.Len(); i++ {
		r := m.At(i)
		if r.Start%PageSize != 0 || r.End%PageSize != 0 {
			t.Fatalf("range %d %#x-%#x not page-aligned: %#x", i, r.Start, r.End, ranges(m))
		}
		if r.Start >= r.End {
			t.Fatalf("range %d empty: %#x", i, ranges(m))
		}
		if i > 0 && m.At(i-1).End >= r.Start {
			t.Fatalf("ranges %d and %d overlap or touch: %#x", i-1, i, ranges(m))
		}
	}
}

type op struct {
	reserve    bool
	start, end uint64
}

func build(ops ...op) *Map {
	m := new(Map)
	for _, o := range ops {
		if o.reserve {
			m.Reserve(o.start, o.end)
		} else {
			m.AddUsable(o.start, o.end)
		}
	}
	return m
}

func TestMapAddUsableMergesAndAligns(t *testing.T) {
	for _, tc := range []struct {
		name string
		ops  []op
		want []Range
	}{
		{"empty", nil, nil},
		{"aligns inward", []op{{false, 100, 3*PageSize + 5}}, []Range{{PageSize, 3 * PageSize}}},
		{"less than a page adds nothing", []op{{false, 1, PageSize + 1}}, nil},
		{"inverted adds nothing", []op{{false, 2 * PageSize, PageSize}}, nil},
		{"disjoint stay sorted", []op{{false, 8 * PageSize, 9 * PageSize}, {false, 0, PageSize}, {false, 4 * PageSize, 5 * PageSize}},
			[]Range{{0, PageSize}, {4 * PageSize, 5 * PageSize}, {8 * PageSize, 9 * PageSize}}},
		{"touching merge", []op{{false, 0, PageSize}, {false, PageSize, 2 * PageSize}}, []Range{{0, 2 * PageSize}}},
		{"overlapping merge", []op{{false, 0, 3 * PageSize}, {false, 2 * PageSize, 5 * PageSize}}, []Range{{0, 5 * PageSize}}},
		{"bridge merges three", []op{{false, 0, PageSize}, {false, 2 * PageSize, 3 * PageSize}, {false, 4 * PageSize, 5 * PageSize}, {false, PageSize, 4 * PageSize}},
			[]Range{{0, 5 * PageSize}}},
		{"contained adds nothing", []op{{false, 0, 10 * PageSize}, {false, 2 * PageSize, 3 * PageSize}}, []Range{{0, 10 * PageSize}}},
		{"top of address space", []op{{false, ^uint64(0) - 3*PageSize, ^uint64(0)}}, []Range{{^uint64(0) - 3*PageSize + 1, lastPage}}},
		{"start near 2^64 adds nothing", []op{{false, ^uint64(0) - 10, ^uint64(0)}}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := build(tc.ops...)
			checkInvariants(t, m)
			if got := ranges(m); !slices.Equal(got, tc.want) {
				t.Errorf("got %#x, want %#x", got, tc.want)
			}
		})
	}
}

func TestMapReserveSplitsAndAlignsOutward(t *testing.T) {
	base := op{false, 0, 16 * PageSize}
	for _, tc := range []struct {
		name string
		ops  []op
		want []Range
	}{
		{"middle splits", []op{base, {true, 4 * PageSize, 6 * PageSize}}, []Range{{0, 4 * PageSize}, {6 * PageSize, 16 * PageSize}}},
		{"one byte takes its page", []op{base, {true, 4*PageSize + 7, 4*PageSize + 8}}, []Range{{0, 4 * PageSize}, {5 * PageSize, 16 * PageSize}}},
		{"straddling bytes take both pages", []op{base, {true, 5*PageSize - 1, 5*PageSize + 1}}, []Range{{0, 4 * PageSize}, {6 * PageSize, 16 * PageSize}}},
		{"head", []op{base, {true, 0, 100}}, []Range{{PageSize, 16 * PageSize}}},
		{"tail", []op{base, {true, 15*PageSize + 1, 1 << 40}}, []Range{{0, 15 * PageSize}}},
		{"whole", []op{base, {true, 0, 16 * PageSize}}, nil},
		{"across ranges", []op{{false, 0, 4 * PageSize}, {false, 8 * PageSize, 12 * PageSize}, {false, 16 * PageSize, 20 * PageSize},
			{true, 2 * PageSize, 18 * PageSize}}, []Range{{0, 2 * PageSize}, {18 * PageSize, 20 * PageSize}}},
		{"gap changes nothing", []op{{false, 0, 4 * PageSize}, {false, 8 * PageSize, 12 * PageSize}, {true, 5 * PageSize, 7 * PageSize}},
			[]Range{{0, 4 * PageSize}, {8 * PageSize, 12 * PageSize}}},
		{"to 2^64", []op{{false, 0, ^uint64(0)}, {true, 1 * gib, ^uint64(0)}}, []Range{{0, 1 * gib}}},
		{"empty reserve", []op{base, {true, 5 * PageSize, 5 * PageSize}}, []Range{{0, 16 * PageSize}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := build(tc.ops...)
			checkInvariants(t, m)
			if got := ranges(m); !slices.Equal(got, tc.want) {
				t.Errorf("got %#x, want %#x", got, tc.want)
			}
		})
	}
}

func TestMapTotalHighestAt(t *testing.T) {
	m := build(op{false, 1 * mib, 2 * mib}, op{false, 4 * gib, 5 * gib})
	if got := m.Total(); got != 1*mib+1*gib {
		t.Errorf("Total = %#x", got)
	}
	if got := m.Highest(); got != 5*gib {
		t.Errorf("Highest = %#x", got)
	}
	if got := m.At(-1); got != (Range{}) {
		t.Errorf("At(-1) = %v", got)
	}
	if got := m.At(2); got != (Range{}) {
		t.Errorf("At(2) = %v", got)
	}
	var empty Map
	if empty.Highest() != 0 || empty.Total() != 0 || empty.Len() != 0 {
		t.Error("zero Map not empty")
	}
}

func TestMapAddUsableFullLeavesMapUnchanged(t *testing.T) {
	var m Map
	for i := uint64(0); i < MaxRanges; i++ {
		if !m.AddUsable(2*i*PageSize, (2*i+1)*PageSize) {
			t.Fatalf("add %d failed", i)
		}
	}
	before := m
	if m.AddUsable(1000*PageSize, 1001*PageSize) {
		t.Error("129th range accepted")
	}
	if m != before {
		t.Error("failed AddUsable changed the map")
	}
	// Merging into an existing range still works when full.
	if !m.AddUsable(PageSize, 2*PageSize) || m.Len() != MaxRanges-1 {
		t.Errorf("merge when full: len %d", m.Len())
	}
}

func TestMapReserveWhenFullDropsSmallerPiece(t *testing.T) {
	var m Map
	for i := uint64(0); i < MaxRanges; i++ {
		m.AddUsable(100*i*PageSize, (100*i+10)*PageSize)
	}
	// Split [0,10) pages at [2,3): the left piece (2 pages) is smaller.
	if m.Reserve(2*PageSize, 3*PageSize) {
		t.Error("Reserve reported an exact split with no room")
	}
	checkInvariants(t, &m)
	if got := m.At(0); got != (Range{3 * PageSize, 10 * PageSize}) {
		t.Errorf("first range = %#x", got)
	}
	if m.Len() != MaxRanges {
		t.Errorf("len %d", m.Len())
	}
	for pa := uint64(0); pa < 3*PageSize; pa += PageSize {
		if m.Contains(pa) {
			t.Errorf("reserved page %#x still usable", pa)
		}
	}
}

// TestMapMatchesPageModel runs random AddUsable/Reserve sequences with
// unaligned bounds against a set of pages.
func TestMapMatchesPageModel(t *testing.T) {
	const pages = 200 // at most 100 disjoint ranges: never overflows
	rng := rand.New(rand.NewSource(1))
	for iter := 0; iter < 500; iter++ {
		var m Map
		model := map[uint64]bool{}
		for step := 0; step < 60; step++ {
			a := uint64(rng.Intn(pages * PageSize))
			b := a + uint64(rng.Intn(20*PageSize))
			if rng.Intn(4) == 0 {
				a &^= pageMask
			}
			if rng.Intn(3) == 0 {
				// Reserve.
				m.Reserve(a, b)
				for p := a &^ pageMask; p < b; p += PageSize {
					delete(model, p)
				}
			} else {
				if !m.AddUsable(a, b) {
					t.Fatalf("AddUsable failed with %d ranges", m.Len())
				}
				for p := (a + pageMask) &^ pageMask; p+PageSize <= b; p += PageSize {
					model[p] = true
				}
			}
			checkInvariants(t, &m)
			var total uint64
			for p := uint64(0); p < (pages+40)*PageSize; p += PageSize {
				if m.Contains(p) != model[p] {
					t.Fatalf("iter %d step %d: page %#x: map %v, model %v; ranges %#x", iter, step, p, m.Contains(p), model[p], ranges(&m))
				}
				if model[p] {
					total += PageSize
				}
			}
			if m.Total() != total {
				t.Fatalf("Total %d, model %d", m.Total(), total)
			}
		}
	}
}

func TestMemoryMapReservedWins(t *testing.T) {
	type entry struct {
		base, length uint64
		typ          uint32
	}
	for _, tc := range []struct {
		name    string
		entries []entry
		want    []Range
	}{
		{"qemu pc", []entry{
			{0, 0x9fc00, TypeUsable},
			{0x9fc00, 0x400, TypeReserved},
			{0xf0000, 0x10000, TypeReserved},
			{0x100000, 0x7ee0000, TypeUsable},
			{0x7fe0000, 0x20000, TypeReserved},
			{0xfffc0000, 0x40000, TypeReserved},
		}, []Range{{0, 0x9f000}, {0x100000, 0x7fe0000}}},
		{"reserved inside usable", []entry{{0, 16 * mib, TypeUsable}, {4*mib + 10, 10, TypeACPINVS}},
			[]Range{{0, 4 * mib}, {4*mib + PageSize, 16 * mib}}},
		{"reserved before usable still wins", []entry{{4 * mib, mib, TypeReserved}, {0, 16 * mib, TypeUsable}},
			[]Range{{0, 4 * mib}, {5 * mib, 16 * mib}}},
		{"unknown type is reserved", []entry{{0, 16 * mib, TypeUsable}, {0, 8 * mib, 77}}, []Range{{8 * mib, 16 * mib}}},
		{"bad RAM", []entry{{0, 16 * mib, TypeUsable}, {8 * mib, PageSize, TypeBadRAM}}, []Range{{0, 8 * mib}, {8*mib + PageSize, 16 * mib}}},
		{"zero length ignored", []entry{{0, 16 * mib, TypeUsable}, {8 * mib, 0, TypeReserved}}, []Range{{0, 16 * mib}}},
		{"wraps past 2^64", []entry{{4 * gib, ^uint64(0), TypeUsable}, {8 * gib, ^uint64(0), TypeReserved}}, []Range{{4 * gib, 8 * gib}}},
		{"overlapping usable merge", []entry{{0, 8 * mib, TypeUsable}, {4 * mib, 8 * mib, TypeUsable}}, []Range{{0, 12 * mib}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var mm MemoryMap
			for _, e := range tc.entries {
				if !mm.Add(e.base, e.length, e.typ) {
					t.Fatalf("Add(%#x, %#x, %d) failed", e.base, e.length, e.typ)
				}
			}
			var m Map
			if !mm.Build(&m) {
				t.Fatal("Build failed")
			}
			checkInvariants(t, &m)
			if got := ranges(&m); !slices.Equal(got, tc.want) {
				t.Errorf("got %#x, want %#x", got, tc.want)
			}
		})
	}
}

func TestMemoryMapReservedOverflowStaysSafe(t *testing.T) {
	var mm MemoryMap
	mm.Add(0, 1*gib, TypeUsable)
	for i := uint64(0); i < MaxRanges; i++ {
		if !mm.Add(i*4*mib, PageSize, TypeReserved) {
			t.Fatalf("reserved %d", i)
		}
	}
	odd := uint64(MaxRanges*4*mib + 2*mib)
	if mm.Add(odd, PageSize, TypeReserved) {
		t.Error("reserved entry beyond MaxRanges accepted exactly")
	}
	var m Map
	if mm.Build(&m) {
		t.Error("Build reported success after an overflow")
	}
	checkInvariants(t, &m)
	for i := uint64(0); i < MaxRanges; i++ {
		if m.Contains(i * 4 * mib) {
			t.Errorf("reserved page %#x usable", i*4*mib)
		}
	}
	if m.Contains(odd) {
		t.Error("overflowing reserved page usable")
	}
	var r Map
	mm.Reserved(&r)
	if r.Len() != MaxRanges {
		t.Errorf("reserved ranges %d", r.Len())
	}
}

func TestMapAndMemoryMapDoNotAllocate(t *testing.T) {
	var m Map
	var mm MemoryMap
	var out Map
	n := testing.AllocsPerRun(100, func() {
		m = Map{}
		m.AddUsable(0, 64*mib)
		m.Reserve(mib, 2*mib)
		_ = m.Contains(3 * mib)
		_ = m.Total()
		mm = MemoryMap{}
		mm.Add(0, 64*mib, TypeUsable)
		mm.Add(mib, mib, TypeReserved)
		mm.Build(&out)
	})
	if n != 0 {
		t.Errorf("%v allocations per run", n)
	}
}

func TestStateIsPointerFree(t *testing.T) {
	for _, v := range []any{Map{}, MemoryMap{}, Range{}} {
		if hasPointers(reflect.TypeOf(v)) {
			t.Errorf("%T holds pointers", v)
		}
	}
	// Allocator holds exactly one pointer: the bitmap slice stored by Init.
	typ := reflect.TypeOf(Allocator{})
	for i := 0; i < typ.NumField(); i++ {
		f := typ.Field(i)
		if f.Name != "bits" && hasPointers(f.Type) {
			t.Errorf("Allocator.%s holds pointers", f.Name)
		}
	}
}

func hasPointers(t reflect.Type) bool {
	switch t.Kind() {
	case reflect.Pointer, reflect.Slice, reflect.Map, reflect.Chan, reflect.Func, reflect.Interface, reflect.String, reflect.UnsafePointer:
		return true
	case reflect.Array:
		return t.Len() > 0 && hasPointers(t.Elem())
	case reflect.Struct:
		for i := 0; i < t.NumField(); i++ {
			if hasPointers(t.Field(i).Type) {
				return true
			}
		}
	}
	return false
}
