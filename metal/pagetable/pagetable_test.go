package pagetable

import (
	"slices"
	"testing"
)

const (
	rw   = Present | Writable
	kib  = 1 << 10
	mib  = 1 << 20
	gib  = 1 << 30
	tib  = 1 << 40
	high = 0xFFFF_8000_0000_0000 // lowest upper-half address
)

// Hardware numbers, pinned: SDM Vol. 3A 4.5, Tables 4-15 to 4-20.
func TestEntryBitsMatchSDM(t *testing.T) {
	for _, tc := range []struct {
		name string
		got  uint64
		bit  uint
	}{
		{"P", Present, 0}, {"R/W", Writable, 1}, {"U/S", User, 2}, {"PWT", WriteThrough, 3},
		{"PCD", CacheDisable, 4}, {"A", Accessed, 5}, {"D", Dirty, 6}, {"PS", PageSize, 7},
		{"G", Global, 8}, {"XD", NoExecute, 63}, {"PAT (PTE)", pat4K, 7}, {"PAT (large)", patLarge, 12},
	} {
		if tc.got != 1<<tc.bit {
			t.Errorf("%s = %#x, want bit %d", tc.name, tc.got, tc.bit)
		}
	}
	if AddrMask != (1<<52-1)&^0xfff {
		t.Errorf("AddrMask = %#x", AddrMask)
	}
	if FlagsMask != 0xFFF0_0000_0000_0F7F {
		t.Errorf("FlagsMask = %#x", FlagsMask)
	}
	for level, want := range map[int]uint64{1: 4 * kib, 2: 2 * mib, 3: gib, 4: 512 * gib} {
		if got := levelSize(level); got != want {
			t.Errorf("levelSize(%d) = %#x, want %#x", level, got, want)
		}
	}
	// va 0xFFFF_8123_4567_8000: PML4 258, PDPT 0x8d, PD 0x2b, PT 0x78.
	la := linear(0xFFFF_8123_4567_8000)
	for level, want := range map[int]uint64{4: 258, 3: 0x8d, 2: 0x2b, 1: 0x78} {
		if got := index(la, level); got != want {
			t.Errorf("index level %d = %#x, want %#x", level, got, want)
		}
	}
}

func TestMapUsesLargestPagesAlignmentAllows(t *testing.T) {
	for _, tc := range []struct {
		name                  string
		va, pa, size, maxPage uint64
		want                  []uint64 // leaf sizes in va order
	}{
		{"4K only", 0, 0, 3 * Size4K, Size2M, []uint64{Size4K, Size4K, Size4K}},
		{"one 2M", 2 * mib, 4 * mib, 2 * mib, Size2M, []uint64{Size2M}},
		{"2M capped at 4K", 2 * mib, 4 * mib, 2 * mib, Size4K, repeat(Size4K, 512)},
		{"va and pa misaligned to each other", 2 * mib, 4*mib + Size4K, 2 * mib, Size1G, repeat(Size4K, 512)},
		{"4K head then 2M then 4K tail", 2*mib - Size4K, 2*mib - Size4K, 2*mib + 2*Size4K, Size2M,
			[]uint64{Size4K, Size2M, Size4K}},
		{"1G", gib, 3 * gib, gib, Size1G, []uint64{Size1G}},
		{"1G capped at 2M", gib, 3 * gib, gib, Size2M, repeat(Size2M, 512)},
		{"2M heads into 1G", gib - 2*mib, gib - 2*mib, gib + 2*mib, Size1G, []uint64{Size2M, Size1G}},
		{"maxPage between sizes rounds down", 2 * mib, 2 * mib, 2 * mib, 3 * mib, []uint64{Size2M}},
		{"maxPage above 1G means 1G", 0, 0, 2 * gib, 1 << 40, []uint64{Size1G, Size1G}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, pt := newTable(t, 64)
			if !pt.Map(m, tc.va, tc.pa, tc.size, rw, tc.maxPage) {
				t.Fatal("Map failed")
			}
			var sizes []uint64
			next := tc.va
			for _, l := range leaves(m, pt) {
				if l.va != next || l.pa != tc.pa+(l.va-tc.va) || l.flags != rw {
					t.Fatalf("leaf %v: want va %#x pa %#x flags %#x", l, next, tc.pa+(next-tc.va), rw)
				}
				next += l.size
				sizes = append(sizes, l.size)
			}
			if next != tc.va+tc.size {
				t.Errorf("mapped up to %#x, want %#x", next, tc.va+tc.size)
			}
			if !slices.Equal(sizes, tc.want) {
				t.Errorf("leaf sizes %#x, want %#x", sizes, tc.want)
			}
			m.checkTables(t, pt)
		})
	}
}

func repeat(x uint64, n int) []uint64 {
	s := make([]uint64, n)
	for i := range s {
		s[i] = x
	}
	return s
}

func TestMapUses2MiBPagesWhenAligned(t *testing.T) {
	m, pt := newTable(t, 16)
	if !pt.Map(m, 4*gib, 64*mib, 8*mib, rw|NoExecute, Size2M) {
		t.Fatal("Map failed")
	}
	// PML4, PDPT, PD: no page table needed.
	if m.used != 3 {
		t.Errorf("%d tables, want 3", m.used)
	}
	pa, flags, size, ok := pt.Lookup(m, 4*gib+3*mib+0x123)
	if !ok || pa != 64*mib+3*mib+0x123 || size != Size2M || flags != rw|NoExecute {
		t.Errorf("Lookup = %#x %#x %#x %v", pa, flags, size, ok)
	}
	// The PDE has PS set; PS is not reported as a flag.
	pd := m.Table(m.Table(m.Table(pt.Root)[0] & AddrMask)[4] & AddrMask)
	if e := pd[1]; e&PageSize == 0 || e&AddrMask != 66*mib {
		t.Errorf("PDE = %#x", e)
	}
}

func TestMapUses1GiBPagesForDirectMap(t *testing.T) {
	m, pt := newTable(t, 16)
	if !pt.Map(m, high, 0, 64*gib, rw|NoExecute, Size1G) {
		t.Fatal("Map failed")
	}
	if m.used != 2 { // PML4 and one PDPT
		t.Errorf("%d tables, want 2", m.used)
	}
	if n := len(leaves(m, pt)); n != 64 {
		t.Errorf("%d leaves, want 64", n)
	}
	pa, _, size, ok := pt.Lookup(m, high+37*gib+5)
	if !ok || pa != 37*gib+5 || size != Size1G {
		t.Errorf("Lookup = %#x %#x %v", pa, size, ok)
	}
}

func TestMapReplacesExistingMappings(t *testing.T) {
	m, pt := newTable(t, 64)
	// 4 KiB pages under a 2 MiB slot, then one 2 MiB page over them: the
	// page table is freed.
	for va := uint64(0); va < 2*mib; va += 64 * Size4K {
		if !pt.Map4K(m, 2*mib+va, 100*mib+va, rw) {
			t.Fatal("Map4K failed")
		}
	}
	if m.used != 4 {
		t.Fatalf("%d tables, want 4", m.used)
	}
	if !pt.Map(m, 2*mib, 200*mib, 2*mib, Present, Size2M) {
		t.Fatal("Map failed")
	}
	if m.used != 3 {
		t.Errorf("%d tables after replacing the PT with a 2M page, want 3", m.used)
	}
	m.checkTables(t, pt)
	// A 1 GiB page over that frees the PD too.
	if !pt.Map(m, 0, 0, gib, rw, Size1G) {
		t.Fatal("Map 1G failed")
	}
	if m.used != 2 {
		t.Errorf("%d tables after replacing the PD with a 1G page, want 2", m.used)
	}
	if pa, flags, size, ok := pt.Lookup(m, 2*mib); !ok || pa != 2*mib || flags != rw || size != Size1G {
		t.Errorf("Lookup = %#x %#x %#x %v", pa, flags, size, ok)
	}
	m.checkTables(t, pt)
}

func TestMap4KSplits1GiBPage(t *testing.T) {
	m, pt := newTable(t, 16)
	flags := rw | Global | NoExecute | WriteThrough
	if !pt.Map(m, gib, 5*gib, gib, flags, Size1G) {
		t.Fatal("Map failed")
	}
	va := gib + 300*mib + 7*Size4K
	if !pt.Map4K(m, va, 0x1234_5000, Present) {
		t.Fatal("Map4K failed")
	}
	// 1G → 512 × 2M (one of which → 512 × 4K): PML4, PDPT, PD, PT.
	if m.used != 4 {
		t.Errorf("%d tables, want 4", m.used)
	}
	for _, tc := range []struct {
		va, pa, flags, size uint64
	}{
		{va, 0x1234_5000, Present, Size4K},
		{va - Size4K, 5*gib + 300*mib + 6*Size4K, flags, Size4K},
		{va + Size4K, 5*gib + 300*mib + 8*Size4K, flags, Size4K},
		{gib + 300*mib - 1, 5*gib + 300*mib - 1, flags, Size2M},
		{gib, 5 * gib, flags, Size2M},
		{2*gib - 1, 6*gib - 1, flags, Size2M},
	} {
		pa, fl, size, ok := pt.Lookup(m, tc.va)
		if !ok || pa != tc.pa || fl != tc.flags || size != tc.size {
			t.Errorf("Lookup(%#x) = %#x %#x %#x %v, want %#x %#x %#x", tc.va, pa, fl, size, ok, tc.pa, tc.flags, tc.size)
		}
	}
	if n := len(leaves(m, pt)); n != 511+512 {
		t.Errorf("%d leaves, want %d", n, 511+512)
	}
	m.checkTables(t, pt)
}

func TestMap4KSplits2MiBPage(t *testing.T) {
	m, pt := newTable(t, 16)
	if !pt.Map(m, high+2*mib, 8*mib, 2*mib, rw|User, Size2M) {
		t.Fatal("Map failed")
	}
	if !pt.Map4K(m, high+2*mib, 0x7000, rw) {
		t.Fatal("Map4K failed")
	}
	got := leaves(m, pt)
	if len(got) != 512 {
		t.Fatalf("%d leaves", len(got))
	}
	if got[0] != (leaf{high + 2*mib, 0x7000, Size4K, rw}) {
		t.Errorf("first leaf %v", got[0])
	}
	for i, l := range got[1:] {
		off := uint64(i+1) * Size4K
		if l != (leaf{high + 2*mib + off, 8*mib + off, Size4K, rw | User}) {
			t.Fatalf("leaf %d = %v", i+1, l)
		}
	}
}

// A split must carry the PAT bit, which moves from bit 12 (large) to bit 7
// (PTE), and keep PS only in 2 MiB entries.
func TestSplitCarriesPATAndPS(t *testing.T) {
	m, pt := newTable(t, 16)
	if !pt.Map(m, 0, 0, gib, rw, Size1G) {
		t.Fatal("Map failed")
	}
	pdpt := m.Table(m.Table(pt.Root)[0] & AddrMask)
	pdpt[0] |= patLarge
	if !pt.Map4K(m, 0, 0, rw) {
		t.Fatal("Map4K failed")
	}
	pd := m.Table(pdpt[0] & AddrMask)
	if e := pd[1]; e&PageSize == 0 || e&patLarge == 0 || e&AddrMask&^(patLarge) != 2*mib {
		t.Errorf("PDE after 1G split = %#x", e)
	}
	ptab := m.Table(pd[0] & AddrMask)
	if e := ptab[1]; e&pat4K == 0 || e&AddrMask != Size4K || e&FlagsMask != rw {
		t.Errorf("PTE after 2M split = %#x", e)
	}
	if e := ptab[0]; e != rw { // replaced by Map4K: no PAT
		t.Errorf("PTE 0 = %#x", e)
	}
}

func TestUnmapFreesEmptyTables(t *testing.T) {
	for _, tc := range []struct {
		name       string
		va, size   uint64
		wantTables int
		wantLeaves int
	}{
		{"one page of many keeps the table", 2*mib + Size4K, Size4K, 4, 2},
		{"all 4K pages frees PT, PD, PDPT", 2 * mib, 2 * mib, 1, 0},
		{"wider than mapped", 0, 512 * gib, 1, 0},
		{"whole address space half", 0, 1 << 47, 1, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, pt := newTable(t, 16)
			for _, va := range []uint64{2 * mib, 2*mib + Size4K, 2*mib + 9*Size4K} {
				if !pt.Map4K(m, va, va, rw) {
					t.Fatal("Map4K failed")
				}
			}
			if !pt.Unmap(m, tc.va, tc.size) {
				t.Fatal("Unmap failed")
			}
			if m.used != tc.wantTables {
				t.Errorf("%d tables, want %d", m.used, tc.wantTables)
			}
			if n := len(leaves(m, pt)); n != tc.wantLeaves {
				t.Errorf("%d leaves, want %d", n, tc.wantLeaves)
			}
			m.checkTables(t, pt)
		})
	}
}

func TestUnmapSplitsLargePagesAtEdges(t *testing.T) {
	m, pt := newTable(t, 16)
	if !pt.Map(m, 0, 0, 2*gib, rw, Size1G) {
		t.Fatal("Map failed")
	}
	// Cut [1G - 4K, 1G + 2M + 4K): splits both 1G pages down to 4K at the edges.
	lo, hi := gib-Size4K, gib+2*mib+Size4K
	if !pt.Unmap(m, lo, hi-lo) {
		t.Fatal("Unmap failed")
	}
	for _, va := range []uint64{lo, gib, gib + 2*mib, hi - 1} {
		if _, _, _, ok := pt.Lookup(m, va); ok {
			t.Errorf("%#x still mapped", va)
		}
	}
	for _, tc := range []struct{ va, size uint64 }{
		{lo - 1, Size4K}, {0, Size2M}, {hi, Size4K}, {gib + 4*mib, Size2M}, {2*gib - 1, Size2M},
	} {
		pa, _, size, ok := pt.Lookup(m, tc.va)
		if !ok || pa != tc.va || size != tc.size {
			t.Errorf("Lookup(%#x) = %#x %#x %v, want size %#x", tc.va, pa, size, ok, tc.size)
		}
	}
	var total uint64
	for _, l := range leaves(m, pt) {
		total += l.size
	}
	if total != 2*gib-(hi-lo) {
		t.Errorf("%#x bytes mapped, want %#x", total, 2*gib-(hi-lo))
	}
	m.checkTables(t, pt)
	// Unmapping the rest leaves only the root.
	if !pt.Unmap(m, 0, 2*gib) || m.used != 1 {
		t.Errorf("after unmapping everything: %d tables", m.used)
	}
	m.checkTables(t, pt)
}

func TestUpperHalfCanonical(t *testing.T) {
	m, pt := newTable(t, 32)
	top := uint64(0xFFFF_FFFF_FFE0_0000) // the last 2 MiB of the address space
	for _, tc := range []struct {
		va, pa, size uint64
	}{
		{high, 0, 4 * mib},
		{top, 6 * mib, 2 * mib},
		{0x7FFF_FFFF_F000, 0x9000, Size4K}, // last lower-half page
		{0, 0x1000_0000, Size4K},
	} {
		if !pt.Map(m, tc.va, tc.pa, tc.size, rw, Size2M) {
			t.Fatalf("Map(%#x) failed", tc.va)
		}
	}
	if pa, _, _, ok := pt.Lookup(m, ^uint64(0)); !ok || pa != 8*mib-1 {
		t.Errorf("Lookup(2^64-1) = %#x, %v", pa, ok)
	}
	if pa, _, _, ok := pt.Lookup(m, high+mib); !ok || pa != mib {
		t.Errorf("Lookup(high+1M) = %#x, %v", pa, ok)
	}
	// Walk goes lower half first, then upper, and reports canonical addresses.
	var vas []uint64
	for _, l := range leaves(m, pt) {
		vas = append(vas, l.va)
	}
	if want := []uint64{0, 0x7FFF_FFFF_F000, high, high + 2*mib, top}; !slices.Equal(vas, want) {
		t.Errorf("Walk order %#x, want %#x", vas, want)
	}
	// Non-canonical addresses are rejected everywhere and match nothing.
	for _, va := range []uint64{1 << 47, 0x0000_8000_0000_0000, 0xFFFF_7FFF_FFFF_F000, 0x8000_0000_0000_0000, 0x0001_0000_0000_0000} {
		if pt.Map(m, va, 0, Size4K, rw, Size4K) || pt.Map4K(m, va, 0, rw) {
			t.Errorf("mapped non-canonical %#x", va)
		}
		if pt.Unmap(m, va, Size4K) || pt.Protect(m, va, Size4K, 0, Writable) {
			t.Errorf("Unmap/Protect accepted non-canonical %#x", va)
		}
		if _, _, _, ok := pt.Lookup(m, va); ok {
			t.Errorf("Lookup(%#x) ok", va)
		}
	}
	// Ranges may not cross the hole or wrap.
	if pt.Map(m, 0x7FFF_FFFF_F000, 0, 2*Size4K, rw, Size4K) {
		t.Error("mapped across the top of the lower half")
	}
	if pt.Map(m, ^uint64(0)-Size4K+1, 0, 2*Size4K, rw, Size4K) {
		t.Error("mapped across 2^64")
	}
	if !pt.Unmap(m, high, 1<<47) {
		t.Error("Unmap of the whole upper half failed")
	}
	if n := len(leaves(m, pt)); n != 2 {
		t.Errorf("%d leaves after unmapping the upper half", n)
	}
	m.checkTables(t, pt)
}

func TestMapRejectsBadInput(t *testing.T) {
	for _, tc := range []struct {
		name                         string
		va, pa, size, flags, maxPage uint64
	}{
		{"unaligned va", 0x1001, 0, Size4K, rw, Size4K},
		{"unaligned pa", 0, 0x10, Size4K, rw, Size4K},
		{"unaligned size", 0, 0, 100, rw, Size4K},
		{"pa beyond 52 bits", 0, 1 << 52, Size4K, rw, Size4K},
		{"pa range beyond 52 bits", 0, 1<<52 - Size4K, 2 * Size4K, rw, Size4K},
		{"flags with address bits", 0, 0, Size4K, rw | 0x1000, Size4K},
		{"flags with PS", 0, 0, Size4K, rw | PageSize, Size4K},
		{"maxPage below 4K", 0, 0, Size4K, rw, 2048},
		{"non-canonical", 1 << 47, 0, Size4K, rw, Size4K},
		{"size wraps", high, 0, 1 << 63, rw, Size1G},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, pt := newTable(t, 8)
			if pt.Map(m, tc.va, tc.pa, tc.size, tc.flags, tc.maxPage) {
				t.Error("Map accepted")
			}
			if tc.size == Size4K && tc.maxPage >= Size4K && pt.Map4K(m, tc.va, tc.pa, tc.flags) {
				t.Error("Map4K accepted")
			}
			if m.used != 1 {
				t.Errorf("rejected Map allocated %d tables", m.used-1)
			}
		})
	}
	m, pt := newTable(t, 8)
	if !pt.Map(m, 0, 0, 0, rw, Size4K) || m.used != 1 {
		t.Error("empty Map")
	}
	if pt.Protect(m, 0, Size4K, 0, Present) || pt.Protect(m, 0, Size4K, PageSize, 0) || pt.Protect(m, 0, Size4K, 0x1000, 0) {
		t.Error("Protect accepted bad flags")
	}
	if pt.Unmap(m, 0, 100) {
		t.Error("Unmap accepted an unaligned size")
	}
}

func TestProtectChangesFlagsSplittingAtEdges(t *testing.T) {
	m, pt := newTable(t, 16)
	if !pt.Map(m, 0, 0, 4*mib, rw, Size2M) {
		t.Fatal("Map failed")
	}
	// Make [1M, 4M) read-only and no-execute: the first 2M page splits, the
	// second changes whole.
	if !pt.Protect(m, mib, 3*mib, NoExecute, Writable) {
		t.Fatal("Protect failed")
	}
	for _, tc := range []struct{ va, flags, size uint64 }{
		{0, rw, Size4K},
		{mib - 1, rw, Size4K},
		{mib, Present | NoExecute, Size4K},
		{2 * mib, Present | NoExecute, Size2M},
	} {
		pa, flags, size, ok := pt.Lookup(m, tc.va)
		if !ok || pa != tc.va || flags != tc.flags || size != tc.size {
			t.Errorf("Lookup(%#x) = %#x %#x %#x %v, want flags %#x size %#x", tc.va, pa, flags, size, ok, tc.flags, tc.size)
		}
	}
	// Holes are skipped.
	if !pt.Protect(m, 8*mib, 2*mib, User, 0) || len(leaves(m, pt)) != 513 {
		t.Error("Protect over a hole")
	}
	m.checkTables(t, pt)
}

func TestWalkStopsWhenFnReturnsFalse(t *testing.T) {
	m, pt := newTable(t, 16)
	pt.Map(m, 0, 0, 16*Size4K, rw, Size4K)
	n := 0
	pt.Walk(m, func(va, pa, size, flags uint64) bool {
		n++
		return n < 5
	})
	if n != 5 {
		t.Errorf("fn called %d times, want 5", n)
	}
}

func TestOutOfTables(t *testing.T) {
	m, pt := newTable(t, 16)
	if !pt.Map(m, 0, 0, 2*mib, rw, Size2M) {
		t.Fatal("Map failed")
	}
	m.limit = m.used // no more tables
	// Map4K into the 2M page needs a split: it fails and the mapping stays.
	if pt.Map4K(m, Size4K, 0x9000, rw) {
		t.Fatal("Map4K succeeded without tables")
	}
	if pa, _, size, ok := pt.Lookup(m, Size4K); !ok || pa != Size4K || size != Size2M {
		t.Errorf("after failed Map4K: %#x %#x %v", pa, size, ok)
	}
	if pt.Unmap(m, 0, Size4K) || pt.Protect(m, 0, Size4K, 0, Writable) {
		t.Error("Unmap/Protect split without tables")
	}
	if _, flags, _, ok := pt.Lookup(m, 0); !ok || flags != rw {
		t.Error("failed Unmap/Protect changed the mapping")
	}
	// A new region needs a PDPT: Map fails; nothing is left mapped there.
	if pt.Map(m, 512*gib, 0, Size4K, rw, Size4K) {
		t.Fatal("Map succeeded without tables")
	}
	if _, _, _, ok := pt.Lookup(m, 512*gib); ok {
		t.Error("failed Map left a mapping")
	}
	m.check(t)
	m.limit = len(m.pages)
	if !pt.Map4K(m, Size4K, 0x9000, rw) {
		t.Error("Map4K failed with tables available")
	}
	var mm fakeMem
	mm.limit = 0
	if _, ok := New(&mm); ok {
		t.Error("New succeeded without tables")
	}
}

// TestKernelPathDoesNotAllocate: Map, Map4K, Unmap, Protect, Lookup and Walk
// run in the page-fault handler; none may allocate.
func TestKernelPathDoesNotAllocate(t *testing.T) {
	m, pt := newTable(t, 64)
	pt.Map(m, high, 0, 4*gib, rw, Size1G)
	count := 0
	walkFn := func(va, pa, size, flags uint64) bool { count++; return true }
	for _, tc := range []struct {
		name string
		fn   func()
	}{
		{"Map", func() {
			pt.Map(m, 64*gib, 2*gib, 6*mib+3*Size4K, rw, Size2M)
			pt.Unmap(m, 64*gib, 6*mib+3*Size4K)
		}},
		{"Map4K", func() {
			pt.Map4K(m, 0x7f00_0000_0000, 0x5000, rw|NoExecute)
			pt.Unmap(m, 0x7f00_0000_0000, Size4K)
		}},
		{"Map4K splitting", func() {
			pt.Map4K(m, high+Size4K, 0x5000, rw)
			pt.Map(m, high, 0, gib, rw, Size1G)
		}},
		{"Unmap splitting", func() {
			pt.Unmap(m, high+gib+mib, Size4K)
			pt.Map(m, high+gib, gib, gib, rw, Size1G)
		}},
		{"Protect", func() {
			pt.Protect(m, high+3*mib, Size4K, NoExecute, Writable)
			pt.Map(m, high, 0, gib, rw, Size1G)
		}},
		{"Lookup", func() {
			pt.Lookup(m, high+12345)
			pt.Lookup(m, 0x1000)
			pt.Lookup(m, 1<<47)
		}},
		{"Walk", func() { pt.Walk(m, walkFn) }},
	} {
		if n := testing.AllocsPerRun(100, tc.fn); n != 0 {
			t.Errorf("%s: %v allocations per run", tc.name, n)
		}
	}
	m.checkTables(t, pt)
}

// TestZeroSizeMemoryDoesNotAllocate: the kernel passes a zero-size struct
// value as Memory; converting it to the interface must not allocate.
func TestZeroSizeMemoryDoesNotAllocate(t *testing.T) {
	pt := Table{Root: 0}
	if n := testing.AllocsPerRun(100, func() {
		pt.Lookup(nilMem{}, high)
		pt.Map4K(nilMem{}, 0, 0, rw)
	}); n != 0 {
		t.Errorf("%v allocations per run", n)
	}
}

// nilMem has no tables: every operation fails cleanly.
type nilMem struct{}

func (nilMem) AllocTable() (uint64, bool) { return 0, false }
func (nilMem) FreeTable(uint64)           {}
func (nilMem) Table(uint64) *[512]uint64  { return nil }

func BenchmarkMap4K(b *testing.B) {
	m, pt := newTable(b, 64)
	const base = 0x7f00_0000_0000
	// Tables exist after the first round: this measures the demand-paging
	// path of one walk and one store.
	for i := uint64(0); i < 512; i++ {
		pt.Map4K(m, base+i*Size4K, i*Size4K, rw)
	}
	i := uint64(0)
	for b.Loop() {
		pt.Map4K(m, base+(i&511)*Size4K, (i&511)*Size4K, rw|NoExecute)
		i++
	}
}

func BenchmarkLookup(b *testing.B) {
	m, pt := newTable(b, 64)
	pt.Map(m, 0x7f00_0000_0000, 0, 2*mib, rw, Size4K)
	i := uint64(0)
	for b.Loop() {
		pt.Lookup(m, 0x7f00_0000_0000+(i&511)*Size4K)
		i++
	}
}
