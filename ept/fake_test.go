package ept

import (
	"errors"
	"fmt"
	"testing"
)

// errOOM is what fakeAlloc returns when it reaches its limit.
var errOOM = errors.New("fake allocator: out of pages")

// fakeBase is the HPA of fake page 0: high, so that table addresses are
// never confused with the HPAs tests map.
const fakeBase uint64 = 0x000F_0000_0000_0000

// fakeAlloc is an Allocator backed by Go arrays. It counts live pages,
// enforces an optional limit, fills pages it hands out or takes back with
// garbage (so missing zeroing and use-after-free show up) and records
// misuse instead of panicking.
type fakeAlloc struct {
	pages  []*[512]uint64 // page i has HPA fakeBase + i*4096
	live   []bool
	free   []int
	nLive  int
	limit  int // most live pages; < 0 means no limit
	allocs int
	bad    string
	// badPage makes AllocPage return an unaligned address once.
	badPage bool
}

func newFakeAlloc() *fakeAlloc { return &fakeAlloc{limit: -1} }

const garbage = 0xdead_beef_dead_beef

func (f *fakeAlloc) AllocPage() (uint64, error) {
	if f.limit >= 0 && f.nLive >= f.limit {
		return 0, errOOM
	}
	var i int
	if n := len(f.free); n > 0 {
		i = f.free[n-1]
		f.free = f.free[:n-1]
	} else {
		i = len(f.pages)
		f.pages = append(f.pages, new([512]uint64))
		f.live = append(f.live, false)
		for j := range f.pages[i] {
			f.pages[i][j] = garbage
		}
	}
	f.live[i] = true
	f.nLive++
	f.allocs++
	hpa := fakeBase + uint64(i)*Size4K
	if f.badPage {
		f.badPage = false
		hpa |= 0x800
	}
	return hpa, nil
}

func (f *fakeAlloc) index(hpa uint64) (int, bool) {
	hpa &^= 0x800 // see badPage
	if hpa < fakeBase || hpa&(Size4K-1) != 0 || (hpa-fakeBase)/Size4K >= uint64(len(f.pages)) {
		return 0, false
	}
	i := int((hpa - fakeBase) / Size4K)
	return i, f.live[i]
}

func (f *fakeAlloc) FreePage(hpa uint64) {
	i, ok := f.index(hpa)
	if !ok {
		if f.bad == "" {
			f.bad = fmt.Sprintf("FreePage(%#x) of a page that is not allocated", hpa)
		}
		return
	}
	for j := range f.pages[i] {
		f.pages[i][j] = garbage
	}
	f.live[i] = false
	f.nLive--
	f.free = append(f.free, i)
}

func (f *fakeAlloc) Page(hpa uint64) *[512]uint64 {
	if hpa&0x800 != 0 {
		return nil
	}
	i, ok := f.index(hpa)
	if !ok {
		if f.bad == "" {
			f.bad = fmt.Sprintf("Page(%#x) of a page that is not allocated", hpa)
		}
		return nil
	}
	return f.pages[i]
}

// newTable makes a table of format f with options o over a fresh fakeAlloc.
func newTable(tb testing.TB, f Format, o Options) (*Table, *fakeAlloc) {
	tb.Helper()
	fa := newFakeAlloc()
	t, err := NewOptions(f, fa, o)
	if err != nil {
		tb.Fatal(err)
	}
	return t, fa
}

// checkTables verifies the table's structure against the invariants and the
// layouts: every live page is a reachable table, reached once; no table
// below the root is empty; non-present entries are zero; non-leaf entries
// are exactly the format's table entry; leaves carry only valid bits.
func checkTables(tb testing.TB, t *Table, fa *fakeAlloc) {
	tb.Helper()
	if fa.bad != "" {
		tb.Fatal(fa.bad)
	}
	if err := structure(t, fa); err != nil {
		tb.Fatal(err)
	}
}

func structure(t *Table, fa *fakeAlloc) error {
	seen := map[uint64]bool{}
	var visit func(hpa uint64, level int, base uint64) error
	visit = func(hpa uint64, level int, base uint64) error {
		if _, ok := fa.index(hpa); !ok {
			return fmt.Errorf("level %d table %#x (gpa %#x) is not a live page", level, hpa, base)
		}
		if seen[hpa] {
			return fmt.Errorf("table %#x reached twice", hpa)
		}
		seen[hpa] = true
		tbl := fa.Page(hpa)
		if level < 4 && empty(tbl) {
			return fmt.Errorf("level %d table %#x (gpa %#x) is empty", level, hpa, base)
		}
		for i, e := range tbl {
			gpa := base + uint64(i)*span(level)
			if !t.present(e) {
				if e != 0 {
					return fmt.Errorf("gpa %#x level %d: non-present entry %#x is not zero", gpa, level, e)
				}
				continue
			}
			if level == 4 || !isLeaf(e, level) {
				if e != t.tableEntry(e&addrMask) {
					return fmt.Errorf("gpa %#x level %d: table entry %#x, want %#x", gpa, level, e, t.tableEntry(e&addrMask))
				}
				if err := visit(e&addrMask, level-1, gpa); err != nil {
					return err
				}
				continue
			}
			if err := checkLeaf(t, e, level); err != nil {
				return fmt.Errorf("gpa %#x level %d leaf %#x: %v", gpa, level, e, err)
			}
		}
		return nil
	}
	if err := visit(t.root, 4, 0); err != nil {
		return err
	}
	if len(seen) != fa.nLive {
		return fmt.Errorf("%d pages live, %d tables reachable", fa.nLive, len(seen))
	}
	return nil
}

// checkLeaf checks a leaf's bits against the format's layout.
func checkLeaf(t *Table, e uint64, level int) error {
	if (e&pageSize != 0) != (level > 1) {
		return fmt.Errorf("PS bit wrong for level %d", level)
	}
	if e&addrMask&(span(level)-1) != 0 {
		return fmt.Errorf("address not aligned to the page size")
	}
	rest := e &^ addrMask &^ pageSize
	if t.f == EPT {
		allowed := eptR | eptW | eptX | eptXU | eptMT | eptA | eptD
		if t.ipat {
			allowed |= eptIPAT
			if rest&eptIPAT == 0 {
				return fmt.Errorf("IPAT missing")
			}
		}
		if rest&^allowed != 0 {
			return fmt.Errorf("stray bits %#x", rest&^allowed)
		}
		if rest&eptW != 0 && rest&eptR == 0 {
			return fmt.Errorf("write without read")
		}
		switch (rest & eptMT) >> eptMTShift {
		case 0, 1, 4, 5, 6:
		default:
			return fmt.Errorf("reserved memory type")
		}
		return nil
	}
	allowed := nptP | nptRW | nptUS | nptPWT | nptPCD | nptA | nptD | nptNX
	if rest&^allowed != 0 {
		return fmt.Errorf("stray bits %#x", rest&^allowed)
	}
	if rest&(nptP|nptUS) != nptP|nptUS {
		return fmt.Errorf("P or US clear")
	}
	if rest&(nptPCD|nptPWT) == nptPCD {
		return fmt.Errorf("PCD without PWT")
	}
	return nil
}

// entry reads the raw entry for gpa at level, or fails if the walk stops
// above it.
func entry(tb testing.TB, t *Table, gpa uint64, level int) uint64 {
	tb.Helper()
	tbl := t.page(t.root)
	for l := 4; ; l-- {
		e := tbl[index(gpa, l)]
		if l == level {
			return e
		}
		if !t.present(e) || isLeaf(e, l) {
			tb.Fatalf("walk for gpa %#x stops at level %d (entry %#x), above level %d", gpa, l, e, level)
		}
		tbl = t.page(e & addrMask)
	}
}

func mappings(t *Table) []Mapping {
	var out []Mapping
	t.Mappings(func(m Mapping) bool {
		out = append(out, m)
		return true
	})
	return out
}

func ranges(t *Table) []Mapping {
	var out []Mapping
	t.Ranges(func(m Mapping) bool {
		out = append(out, m)
		return true
	})
	return out
}

func (m Mapping) String() string {
	return fmt.Sprintf("{gpa %#x hpa %#x size %#x %v %v}", m.GPA, m.HPA, m.Size, m.Perm, m.MemType)
}
