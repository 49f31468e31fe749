package physmem

import (
	"math/rand"
	"reflect"
	"slices"
	"testing"
)

func newAllocator(t testing.TB, m *Map) *Allocator {
	t.Helper()
	a := new(Allocator)
	if !a.Init(m, make([]uint64, BitmapWords(m.Highest()))) {
		t.Fatal("Init failed")
	}
	return a
}

func TestBitmapWords(t *testing.T) {
	for _, tc := range []struct{ highest, want uint64 }{
		{0, 0},
		{PageSize, 1},
		{64 * PageSize, 1},
		{65 * PageSize, 2},
		{64 * gib, 1 << 18},
	} {
		if got := BitmapWords(tc.highest); uint64(got) != tc.want {
			t.Errorf("BitmapWords(%#x) = %d, want %d", tc.highest, got, tc.want)
		}
	}
}

func TestAllocatorInitRejectsSmallBitmap(t *testing.T) {
	m := build(op{false, 0, 65 * PageSize})
	var a Allocator
	if a.Init(m, make([]uint64, 1)) {
		t.Fatal("Init accepted a one-word bitmap for 65 pages")
	}
	if _, ok := a.Alloc(); ok {
		t.Error("Alloc succeeded after failed Init")
	}
	if a.Free(0) {
		t.Error("Free succeeded after failed Init")
	}
}

func TestAllocatorExhaustsExactlyTotalPages(t *testing.T) {
	m := build(
		op{false, PageSize, 640 * kib}, // low memory minus page 0
		op{false, mib, 3*mib + 5*PageSize},
		op{false, 4 * gib, 4*gib + 130*PageSize},
		op{true, 2 * mib, 2*mib + 3*PageSize},
	)
	a := newAllocator(t, m)
	want := m.Total() / PageSize
	if a.TotalPages() != want || a.FreePages() != want {
		t.Fatalf("TotalPages %d FreePages %d, want %d", a.TotalPages(), a.FreePages(), want)
	}
	seen := map[uint64]bool{}
	for i := uint64(0); i < want; i++ {
		pa, ok := a.Alloc()
		if !ok {
			t.Fatalf("Alloc %d of %d failed", i, want)
		}
		if pa%PageSize != 0 || !m.Contains(pa) {
			t.Fatalf("Alloc returned %#x, not a usable page", pa)
		}
		if seen[pa] {
			t.Fatalf("Alloc returned %#x twice", pa)
		}
		seen[pa] = true
	}
	if pa, ok := a.Alloc(); ok {
		t.Fatalf("Alloc past TotalPages returned %#x", pa)
	}
	if a.FreePages() != 0 {
		t.Errorf("FreePages %d after exhausting", a.FreePages())
	}
	if _, ok := a.AllocBelow(^uint64(0)); ok {
		t.Error("AllocBelow succeeded on an exhausted allocator")
	}
}

func TestAllocatorFreeThenReallocate(t *testing.T) {
	m := build(op{false, 0, 300 * PageSize})
	a := newAllocator(t, m)
	var got []uint64
	for {
		pa, ok := a.Alloc()
		if !ok {
			break
		}
		got = append(got, pa)
	}
	// Free every third page; exactly those come back.
	freed := map[uint64]bool{}
	for i := 0; i < len(got); i += 3 {
		if !a.Free(got[i]) {
			t.Fatalf("Free(%#x) failed", got[i])
		}
		freed[got[i]] = true
	}
	if a.FreePages() != uint64(len(freed)) {
		t.Fatalf("FreePages %d, want %d", a.FreePages(), len(freed))
	}
	for n := len(freed); n > 0; n-- {
		pa, ok := a.Alloc()
		if !ok || !freed[pa] {
			t.Fatalf("re-Alloc gave %#x, %v", pa, ok)
		}
		delete(freed, pa)
	}
	if _, ok := a.Alloc(); ok {
		t.Error("Alloc succeeded with nothing free")
	}
}

func TestAllocatorFreeRejectsBadPages(t *testing.T) {
	m := build(op{false, 0, 64 * PageSize}, op{false, 128 * PageSize, 192 * PageSize})
	a := newAllocator(t, m)
	pa, _ := a.Alloc()
	for _, tc := range []struct {
		name string
		pa   uint64
	}{
		{"already free (double free)", 5 * PageSize},
		{"unaligned", pa + 8},
		{"never usable (hole)", 100 * PageSize},
		{"past the end", 192 * PageSize},
		{"far past the end", 1 << 62},
	} {
		before := *a
		before.bits = slices.Clone(a.bits)
		if a.Free(tc.pa) {
			t.Errorf("%s: Free(%#x) accepted", tc.name, tc.pa)
		}
		if !reflect.DeepEqual(*a, before) {
			t.Errorf("%s: failed Free changed state", tc.name)
		}
	}
	if !a.Free(pa) {
		t.Fatal("Free of an allocated page failed")
	}
	if a.Free(pa) {
		t.Error("double free accepted")
	}
	if a.FreePages() != a.TotalPages() {
		t.Errorf("FreePages %d, TotalPages %d", a.FreePages(), a.TotalPages())
	}
}

func TestAllocBelowRespectsLimit(t *testing.T) {
	m := build(op{false, 16 * mib, 16*mib + 4*PageSize}, op{false, 4 * gib, 4*gib + 64*PageSize})
	a := newAllocator(t, m)
	for i := 0; i < 4; i++ {
		pa, ok := a.AllocBelow(4 * gib)
		if !ok || pa+PageSize > 4*gib {
			t.Fatalf("AllocBelow(4 GiB) = %#x, %v", pa, ok)
		}
	}
	if pa, ok := a.AllocBelow(4 * gib); ok {
		t.Fatalf("AllocBelow(4 GiB) = %#x with nothing below 4 GiB", pa)
	}
	// A limit inside a page excludes that page.
	if pa, ok := a.AllocBelow(4*gib + PageSize - 1); ok {
		t.Fatalf("AllocBelow(limit inside a page) = %#x", pa)
	}
	if pa, ok := a.AllocBelow(4*gib + PageSize); !ok || pa != 4*gib {
		t.Fatalf("AllocBelow(4 GiB + 4 KiB) = %#x, %v", pa, ok)
	}
	if a.FreePages() != 63 {
		t.Errorf("FreePages %d", a.FreePages())
	}
}

func TestAllocatorReserveTakesSpecificPage(t *testing.T) {
	m := build(op{false, 0, 64 * PageSize})
	a := newAllocator(t, m)
	if !a.Reserve(0) || !a.Reserve(10*PageSize) {
		t.Fatal("Reserve of a free page failed")
	}
	if a.Reserve(10 * PageSize) {
		t.Error("Reserve of a used page accepted")
	}
	if a.Reserve(64*PageSize) || a.Reserve(PageSize+1) {
		t.Error("Reserve of a bad page accepted")
	}
	if a.IsFree(10 * PageSize) {
		t.Error("reserved page still free")
	}
	for {
		pa, ok := a.Alloc()
		if !ok {
			break
		}
		if pa == 0 || pa == 10*PageSize {
			t.Fatalf("Alloc returned reserved page %#x", pa)
		}
	}
	if !a.Free(10 * PageSize) {
		t.Error("Free of a reserved page failed")
	}
	if pa, ok := a.Alloc(); !ok || pa != 10*PageSize {
		t.Errorf("Alloc after freeing the reserved page = %#x, %v", pa, ok)
	}
}

func TestAllocRotatesHint(t *testing.T) {
	m := build(op{false, 0, 1024 * PageSize})
	a := newAllocator(t, m)
	p0, _ := a.Alloc()
	p1, _ := a.Alloc()
	a.Free(p0)
	// The hint has moved past p0: the next page comes after p1.
	if p2, _ := a.Alloc(); p2 != p1+PageSize {
		t.Errorf("Alloc after free = %#x, want %#x", p2, p1+PageSize)
	}
}

// TestAllocatorMatchesModelLargeSparse checks the summary levels on a bitmap
// big enough to need grouped summary bits (shift > 0), with widely scattered
// free pages.
func TestAllocatorMatchesModelLargeSparse(t *testing.T) {
	const highest = 128 * gib // 2^25 pages: shift 3
	m := build(op{false, 0, highest})
	a := newAllocator(t, m)
	if a.shift != 3 {
		t.Fatalf("shift = %d", a.shift)
	}
	// Take everything in bulk through Reserve-like clearing, then free a few.
	for i := range a.bits {
		a.bits[i] = 0
	}
	clear(a.summary[:])
	clear(a.top[:])
	a.free = 0
	rng := rand.New(rand.NewSource(2))
	free := map[uint64]bool{}
	for i := 0; i < 2000; i++ {
		pa := uint64(rng.Int63n(highest/PageSize)) * PageSize
		if a.Free(pa) != !free[pa] {
			t.Fatalf("Free(%#x) disagreed with model", pa)
		}
		free[pa] = true
	}
	for step := 0; step < 20000; step++ {
		if rng.Intn(2) == 0 && len(free) > 0 {
			pa, ok := a.Alloc()
			if !ok || !free[pa] {
				t.Fatalf("step %d: Alloc = %#x, %v", step, pa, ok)
			}
			delete(free, pa)
		} else {
			pa := uint64(rng.Int63n(highest/PageSize)) * PageSize
			if a.Free(pa) != !free[pa] {
				t.Fatalf("step %d: Free(%#x) disagreed with model", step, pa)
			}
			free[pa] = true
		}
		if a.FreePages() != uint64(len(free)) {
			t.Fatalf("FreePages %d, model %d", a.FreePages(), len(free))
		}
	}
	// The lowest free page is what AllocBelow returns.
	lowest := ^uint64(0)
	for pa := range free {
		lowest = min(lowest, pa)
	}
	if pa, ok := a.AllocBelow(highest); !ok || pa != lowest {
		t.Errorf("AllocBelow = %#x, want %#x", pa, lowest)
	}
}

func TestAllocatorDoesNotAllocate(t *testing.T) {
	m := build(op{false, mib, 64 * mib})
	a := newAllocator(t, m)
	n := testing.AllocsPerRun(1000, func() {
		pa, ok := a.Alloc()
		if !ok {
			t.Fatal("Alloc failed")
		}
		lo, ok := a.AllocBelow(16 * mib)
		if !ok {
			t.Fatal("AllocBelow failed")
		}
		a.Free(pa)
		a.Free(lo)
		a.Free(lo) // rejected double free
		if a.Reserve(pa) {
			a.Free(pa)
		}
	})
	if n != 0 {
		t.Errorf("%v allocations per run", n)
	}
	bitmap := make([]uint64, BitmapWords(m.Highest()))
	n = testing.AllocsPerRun(10, func() { a.Init(m, bitmap) })
	if n != 0 {
		t.Errorf("Init: %v allocations per run", n)
	}
}

func BenchmarkAllocFree(b *testing.B) {
	m := build(op{false, 0, 4 * gib})
	a := newAllocator(b, m)
	// Fragment: allocate all, free every other page.
	for {
		if _, ok := a.Alloc(); !ok {
			break
		}
	}
	for pa := uint64(0); pa < 4*gib; pa += 2 * PageSize {
		a.Free(pa)
	}
	b.ResetTimer()
	for b.Loop() {
		pa, _ := a.Alloc()
		a.Free(pa)
	}
}

// BenchmarkAllocNearlyFull: 64 GiB of pages, all used but one at the far end
// from the hint. The summary levels keep each search a few word reads.
func BenchmarkAllocNearlyFull(b *testing.B) {
	m := build(op{false, 0, 64 * gib})
	a := newAllocator(b, m)
	for pa := uint64(0); pa < 64*gib; pa += PageSize {
		a.Reserve(pa)
	}
	a.Free(64*gib - PageSize)
	for b.Loop() {
		pa, _ := a.Alloc()
		a.Free(pa)
		a.hint = 0 // search the whole bitmap again
	}
}
