package pagetable

import (
	"fmt"
	"testing"
)

// fakeMem is a Memory backed by a preallocated slice of pages, so that
// AllocTable and FreeTable themselves never allocate. Page i has physical
// address fakeBase + i*4096. It records misuse (double free, reaching a
// page that is not an allocated table) instead of panicking.
type fakeMem struct {
	pages []([512]uint64)
	inUse []bool
	free  []int // stack of free page indices
	limit int   // most tables in use at once
	used  int
	bad   string
}

const fakeBase = 0x4000_0000

func newFakeMem(n int) *fakeMem {
	f := &fakeMem{
		pages: make([][512]uint64, n),
		inUse: make([]bool, n),
		free:  make([]int, 0, n),
		limit: n,
	}
	for i := n - 1; i >= 0; i-- {
		f.free = append(f.free, i)
	}
	return f
}

func (f *fakeMem) AllocTable() (uint64, bool) {
	if len(f.free) == 0 || f.used >= f.limit {
		return 0, false
	}
	i := f.free[len(f.free)-1]
	f.free = f.free[:len(f.free)-1]
	f.inUse[i] = true
	f.used++
	clear(f.pages[i][:])
	return fakeBase + uint64(i)*Size4K, true
}

func (f *fakeMem) index(pa uint64) (int, bool) {
	if pa < fakeBase || pa&(Size4K-1) != 0 || (pa-fakeBase)/Size4K >= uint64(len(f.pages)) {
		return 0, false
	}
	return int((pa - fakeBase) / Size4K), true
}

func (f *fakeMem) FreeTable(pa uint64) {
	i, ok := f.index(pa)
	if !ok || !f.inUse[i] {
		if f.bad == "" {
			f.bad = "FreeTable of a page that is not an allocated table"
		}
		return
	}
	// Scribble on freed tables so use-after-free shows up.
	for j := range f.pages[i] {
		f.pages[i][j] = 0xdead_0000_0000_0001
	}
	f.inUse[i] = false
	f.used--
	f.free = append(f.free, i)
}

func (f *fakeMem) Table(pa uint64) *[512]uint64 {
	i, ok := f.index(pa)
	if !ok || !f.inUse[i] {
		if f.bad == "" {
			f.bad = "Table of a page that is not an allocated table"
		}
		return nil
	}
	return &f.pages[i]
}

// check fails t if the Memory was misused.
func (f *fakeMem) check(t testing.TB) {
	t.Helper()
	if f.bad != "" {
		t.Fatal(f.bad)
	}
}

// tables counts the tables reachable from t's root (including it) and
// reports the first reachable non-root table that is empty.
func (f *fakeMem) tables(t Table) (n int, err error) {
	var visit func(pa uint64, level int) error
	visit = func(pa uint64, level int) error {
		i, ok := f.index(pa)
		if !ok || !f.inUse[i] {
			return fmt.Errorf("level %d table %#x is not allocated", level, pa)
		}
		n++
		tbl := &f.pages[i]
		if level < 4 && empty(tbl) {
			return fmt.Errorf("level %d table %#x is empty", level, pa)
		}
		for _, e := range tbl {
			if e&Present != 0 && !isLeaf(e, level) {
				if err := visit(e&AddrMask, level-1); err != nil {
					return err
				}
			}
		}
		return nil
	}
	err = visit(t.Root, 4)
	return n, err
}

// checkTables fails t unless every allocated table is reachable and no
// reachable table below the root is empty.
func (f *fakeMem) checkTables(tb testing.TB, t Table) {
	tb.Helper()
	f.check(tb)
	n, err := f.tables(t)
	if err != nil {
		tb.Fatal(err)
	}
	if n != f.used {
		tb.Fatalf("%d tables allocated, %d reachable", f.used, n)
	}
}

func newTable(tb testing.TB, pages int) (*fakeMem, Table) {
	tb.Helper()
	m := newFakeMem(pages)
	t, ok := New(m)
	if !ok {
		tb.Fatal("New failed")
	}
	return m, t
}

type leaf struct{ va, pa, size, flags uint64 }

func (l leaf) String() string {
	return fmt.Sprintf("{va %#x pa %#x size %#x flags %#x}", l.va, l.pa, l.size, l.flags)
}

func leaves(m Memory, t Table) []leaf {
	var out []leaf
	t.Walk(m, func(va, pa, size, flags uint64) bool {
		out = append(out, leaf{va, pa, size, flags})
		return true
	})
	return out
}
