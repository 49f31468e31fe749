package pagetable

import (
	"math/rand"
	"testing"
)

// model is the reference: for each 4 KiB virtual page of a window, whether
// it is mapped and to which physical page with which flags.
type model struct {
	base   uint64 // canonical va of page 0
	mapped []bool
	pa     []uint64
	flags  []uint64
	seen   map[uint64]bool // page sizes Walk has reported
}

func newModel(base, size uint64) *model {
	n := size / Size4K
	return &model{base, make([]bool, n), make([]uint64, n), make([]uint64, n), map[uint64]bool{}}
}

func (md *model) pages(va, size uint64) (lo, hi uint64) {
	return (va - md.base) / Size4K, (va - md.base + size) / Size4K
}

func (md *model) mapRange(va, pa, size, flags uint64) {
	lo, hi := md.pages(va, size)
	for i := lo; i < hi; i++ {
		md.mapped[i], md.pa[i], md.flags[i] = true, pa+(i-lo)*Size4K, flags|Present
	}
}

func (md *model) unmap(va, size uint64) {
	lo, hi := md.pages(va, size)
	for i := lo; i < hi; i++ {
		md.mapped[i] = false
	}
}

func (md *model) protect(va, size, set, clr uint64) {
	lo, hi := md.pages(va, size)
	for i := lo; i < hi; i++ {
		if md.mapped[i] {
			md.flags[i] = (md.flags[i] | set) &^ clr
		}
	}
}

// checkLookup compares Lookup with the model on pages [lo, hi).
func (md *model) checkLookup(t *testing.T, m Memory, pt Table, lo, hi uint64, what string) {
	t.Helper()
	for i := lo; i < hi; i++ {
		va := md.base + i*Size4K
		off := uint64(i*7) & (Size4K - 1) // some offset inside the page
		pa, flags, size, ok := pt.Lookup(m, va+off)
		if ok != md.mapped[i] {
			t.Fatalf("%s: Lookup(%#x) ok=%v, model mapped=%v", what, va+off, ok, md.mapped[i])
		}
		if !ok {
			continue
		}
		if pa != md.pa[i]+off || flags != md.flags[i] {
			t.Fatalf("%s: Lookup(%#x) = pa %#x flags %#x size %#x; model pa %#x flags %#x",
				what, va+off, pa, flags, size, md.pa[i]+off, md.flags[i])
		}
		// The page must lie in the window and its frame be aligned to its
		// size (Walk checks every page it covers against the model).
		if va&^(size-1) < md.base || (pa-(va+off)&(size-1))&(size-1) != 0 {
			t.Fatalf("%s: Lookup(%#x): page size %#x inconsistent with pa %#x", what, va, size, pa)
		}
	}
}

// checkWalk compares Walk's enumeration with the whole model.
func (md *model) checkWalk(t *testing.T, m Memory, pt Table, what string) {
	t.Helper()
	n := uint64(len(md.mapped))
	seen := uint64(0)
	prev := uint64(0)
	first := true
	var bad string
	pt.Walk(m, func(va, pa, size, flags uint64) bool {
		if !first && va <= prev {
			bad = "Walk out of va order"
			return false
		}
		first, prev = false, va
		if va < md.base || (va-md.base)/Size4K+size/Size4K > n {
			bad = "Walk reported a mapping outside the window"
			return false
		}
		lo := (va - md.base) / Size4K
		for k := uint64(0); k < size/Size4K; k++ {
			i := lo + k
			if !md.mapped[i] || md.pa[i] != pa+k*Size4K || md.flags[i] != flags {
				bad = "Walk disagrees with the model"
				t.Logf("leaf va %#x pa %#x size %#x flags %#x; page %d: model mapped %v pa %#x flags %#x",
					va, pa, size, flags, k, md.mapped[i], md.pa[i], md.flags[i])
				return false
			}
		}
		seen += size / Size4K
		md.seen[size] = true
		return true
	})
	if bad != "" {
		t.Fatalf("%s: %s", what, bad)
	}
	want := uint64(0)
	for _, b := range md.mapped {
		if b {
			want++
		}
	}
	if seen != want {
		t.Fatalf("%s: Walk saw %d pages, model has %d", what, seen, want)
	}
}

var randomFlags = []uint64{Writable, User, WriteThrough, CacheDisable, Accessed, Dirty, Global, NoExecute, 1 << 9, 1 << 11, 1 << 52}

func pickFlags(rng *rand.Rand) uint64 {
	var f uint64
	for _, b := range randomFlags {
		if rng.Intn(3) == 0 {
			f |= b
		}
	}
	return f
}

// TestRandomOperationsMatchModel runs random Map, Map4K, Unmap and Protect
// sequences over windows chosen to exercise every page size, a PML4 boundary
// and the upper half, and checks the table against the model after every
// operation (Lookup on every touched page, Walk over everything) and that no
// table page leaks or is left empty.
func TestRandomOperationsMatchModel(t *testing.T) {
	for _, w := range []struct {
		name      string
		base      uint64
		size      uint64
		units     []uint64 // alignment units ops are built from
		seqs, ops int
	}{
		{"lower 32 MiB, 4K and 2M", 0x40_0000_0000, 32 * mib, []uint64{Size4K, Size4K, Size2M}, 40, 60},
		{"across a PML4 boundary", 512*gib - 2*gib, 4 * gib, []uint64{Size4K, Size2M, Size2M, Size1G}, 6, 50},
		{"upper half top", 0xFFFF_FFFF_0000_0000, 4 * gib, []uint64{Size4K, Size2M, Size1G}, 6, 50},
		{"upper half bottom", high, 4 * gib, []uint64{Size4K, Size2M, Size1G}, 4, 50},
	} {
		t.Run(w.name, func(t *testing.T) {
			if testing.Short() && w.size > 32*mib {
				t.Skip("large window")
			}
			rng := rand.New(rand.NewSource(int64(w.base>>20) + 1))
			sizes := map[uint64]bool{}
			for seq := 0; seq < w.seqs; seq++ {
				for s := range runSequence(t, rng, w.base, w.size, w.units, w.ops) {
					sizes[s] = true
				}
			}
			// The sequences must have exercised every page size they could.
			for _, u := range w.units {
				if !sizes[u] {
					t.Errorf("no %#x pages were ever mapped", u)
				}
			}
		})
	}
}

// runSequence runs one random sequence on a fresh table and returns the page
// sizes that appeared in it.
func runSequence(t *testing.T, rng *rand.Rand, base, winSize uint64, units []uint64, ops int) map[uint64]bool {
	m, pt := newTable(t, 8192)
	md := newModel(base, winSize)
	for step := 0; step < ops; step++ {
		unit := units[rng.Intn(len(units))]
		// A range built from whole units, often with its head and tail moved
		// in or out by a few 4K pages, so large pages straddle its edges or
		// are covered all but a page.
		n := uint64(1 + rng.Intn(3))
		if unit == Size4K {
			n = uint64(1 + rng.Intn(40))
			if rng.Intn(8) == 0 {
				n = uint64(500 + rng.Intn(600)) // about a 2M page
			}
		}
		va := base + uint64(rng.Int63n(int64(winSize/unit)))*unit
		size := n * unit
		if rng.Intn(2) == 0 {
			d := uint64(rng.Intn(7)) * Size4K
			if rng.Intn(2) == 0 && va-base >= d {
				va, size = va-d, size+d
			} else if size > d {
				va, size = va+d, size-d
			}
		}
		if rng.Intn(2) == 0 {
			d := uint64(rng.Intn(7)) * Size4K
			if rng.Intn(2) == 0 {
				size += d
			} else if size > d {
				size -= d
			}
		}
		if size > base+winSize-va {
			size = base + winSize - va
		}
		if size == 0 {
			continue
		}
		// Physical addresses keep va's alignment within a GiB half the
		// time, so large pages are possible; otherwise anything.
		pa := uint64(rng.Intn(64))*Size1G + (va & (Size1G - 1))
		if rng.Intn(2) == 0 {
			pa = uint64(rng.Int63n(1<<40)) &^ (Size4K - 1)
		}
		flags := pickFlags(rng)
		var what string
		switch rng.Intn(10) {
		case 0, 1, 2, 3:
			what = "Map"
			maxPage := []uint64{Size4K, Size2M, Size1G}[rng.Intn(3)]
			if !pt.Map(m, va, pa, size, flags, maxPage) {
				t.Fatalf("step %d: Map(%#x, %#x, %#x, %#x, %#x) failed", step, va, pa, size, flags, maxPage)
			}
			md.mapRange(va, pa, size, flags)
		case 4, 5:
			what = "Map4K"
			size = Size4K
			if !pt.Map4K(m, va, pa, flags) {
				t.Fatalf("step %d: Map4K(%#x) failed", step, va)
			}
			md.mapRange(va, pa, size, flags)
		case 6, 7:
			what = "Unmap"
			if !pt.Unmap(m, va, size) {
				t.Fatalf("step %d: Unmap(%#x, %#x) failed", step, va, size)
			}
			md.unmap(va, size)
		default:
			what = "Protect"
			set, clr := pickFlags(rng), pickFlags(rng)
			if !pt.Protect(m, va, size, set, clr) {
				t.Fatalf("step %d: Protect(%#x, %#x) failed", step, va, size)
			}
			md.protect(va, size, set, clr)
		}
		// Every touched page, and a few on either side of the range.
		lo, hi := md.pages(va, size)
		lo = max(lo, 3) - 3
		hi = min(hi+3, uint64(len(md.mapped)))
		md.checkLookup(t, m, pt, lo, hi, what)
		md.checkWalk(t, m, pt, what)
		m.checkTables(t, pt)
	}
	md.checkLookup(t, m, pt, 0, uint64(len(md.mapped)), "final")
	// Unmapping the window leaves only the root.
	if !pt.Unmap(m, base, winSize) {
		t.Fatal("final Unmap failed")
	}
	if m.used != 1 {
		t.Fatalf("%d tables after unmapping everything", m.used)
	}
	m.checkTables(t, pt)
	return md.seen
}
