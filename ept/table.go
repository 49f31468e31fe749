package ept

import (
	"fmt"
	"sync/atomic"
)

// usable reports ErrDestroyed once Destroy has run.
func (t *Table) usable() error {
	if t.dead {
		return ErrDestroyed
	}
	return nil
}

// checkRange validates a guest-physical range: 4 KiB aligned, not empty,
// inside the table's GPA space (48 bits; 39 with Options.Levels 3).
func (t *Table) checkRange(gpa, size uint64) error {
	if gpa&(Size4K-1) != 0 || size&(Size4K-1) != 0 {
		return ErrAlign
	}
	if space := t.space(); size == 0 || gpa >= space || size > space-gpa {
		return ErrRange
	}
	return nil
}

// alloc obtains a table page from the Allocator and zeroes it. Its only
// Go heap allocation is the error on failure.
func (t *Table) alloc() (uint64, error) {
	hpa, err := t.a.AllocPage()
	if err != nil {
		return 0, fmt.Errorf("allocate table page: %w", err)
	}
	if hpa&^addrMask != 0 {
		t.a.FreePage(hpa)
		return 0, fmt.Errorf("table page %#x: %w", hpa, ErrBadPage)
	}
	p := t.a.Page(hpa)
	if p == nil {
		t.a.FreePage(hpa)
		return 0, fmt.Errorf("table page %#x: %w", hpa, ErrBadPage)
	}
	clear(p[:])
	return hpa, nil
}

// page is the table at hpa. Every table reachable from the root passed the
// checks in alloc, so Page gives a non-nil pointer for it.
func (t *Table) page(hpa uint64) *[512]uint64 { return t.a.Page(hpa) }

// store writes entry *slot of a table the processor may be walking as one
// 64-bit store, ordered after the writes that precede it (so a table is
// complete before an entry publishes it).
func store(slot *uint64, e uint64) { atomic.StoreUint64(slot, e) }

// freeTree frees the table at hpa, at level, and every table below it.
// Pages that leaf entries map are not touched. Recursion is at most four
// deep.
func (t *Table) freeTree(hpa uint64, level int) {
	if level > 1 {
		for _, e := range t.page(hpa) {
			if t.present(e) && !isLeaf(e, level) {
				t.freeTree(e&addrMask, level-1)
			}
		}
	}
	t.a.FreePage(hpa)
}

// empty reports whether a table has no entries (non-present entries are
// always written as zero).
func empty(tbl *[512]uint64) bool {
	for _, e := range tbl {
		if e != 0 {
			return false
		}
	}
	return true
}

// split replaces the large leaf *slot at level (3 or 2) with a pointer to
// the zeroed table page child, first filled with 512 leaves one level down
// that map the same memory with the same attributes and accessed/dirty
// bits.
func (t *Table) split(slot *uint64, level int, child uint64) {
	e := *slot
	tbl := t.page(child)
	base := frame(e, level)
	step := span(level - 1)
	for j := range tbl {
		tbl[j] = leafAt(base+uint64(j)*step, level-1, e)
	}
	store(slot, t.tableEntry(child))
}

// maxSplits bounds the splits one range operation needs: at each of the
// range's two edges, a 1 GiB leaf into 2 MiB leaves and one of those into
// 4 KiB leaves.
const maxSplits = 4

// reserve holds table pages obtained before an operation changes anything,
// so that its splits cannot fail half-way.
type reserve struct {
	n     int
	pages [maxSplits]uint64
}

// take hands out a reserved page. The reservation is computed exactly from
// the table (planSplits), so running out is a bug in this package.
func (r *reserve) take() uint64 {
	if r.n == 0 {
		panic("ept: split reserve exhausted")
	}
	r.n--
	return r.pages[r.n]
}

// fill reserves n pages. On failure it returns the ones it got.
func (t *Table) fill(r *reserve, n int) error {
	for r.n < n {
		hpa, err := t.alloc()
		if err != nil {
			t.release(r)
			return err
		}
		r.pages[r.n] = hpa
		r.n++
	}
	return nil
}

// space is the size of the GPA space the table covers: GPASpace with four
// levels, 512 GiB with three.
func (t *Table) space() uint64 { return span(t.levels) * 512 }

// release frees the pages an operation did not use.
func (t *Table) release(r *reserve) {
	for r.n > 0 {
		r.n--
		t.a.FreePage(r.pages[r.n])
	}
}

// leafEntry finds the leaf that maps gpa: its entry and level.
func (t *Table) leafEntry(gpa uint64) (e uint64, level int, ok bool) {
	tbl := t.page(t.root)
	for level = t.levels; level >= 1; level-- {
		e = tbl[index(gpa, level)]
		if !t.present(e) {
			return 0, 0, false
		}
		if isLeaf(e, level) {
			return e, level, true
		}
		tbl = t.page(e & addrMask)
	}
	return 0, 0, false
}

// planSplits counts the splits an operation on [lo, hi) makes: of each
// large leaf that holds lo or hi but does not start there, down to the
// level where the edge is aligned. When keep is true, a leaf whose
// permission bits already equal permBits is left whole (Protect does not
// split it), so it needs no split.
func (t *Table) planSplits(lo, hi uint64, keep bool, permBits uint64) int {
	type split struct {
		level int
		base  uint64
	}
	var (
		plan [maxSplits]split
		n    int
	)
	add := func(level int, base uint64) {
		for _, s := range plan[:n] {
			if s == (split{level, base}) {
				return
			}
		}
		plan[n] = split{level, base}
		n++
	}
	for _, a := range [2]uint64{lo, hi} {
		if a >= t.space() {
			continue
		}
		e, level, ok := t.leafEntry(a)
		if !ok || level == 1 || a&(span(level)-1) == 0 {
			continue
		}
		if keep && e&t.permMask() == permBits {
			continue
		}
		if level == 3 {
			add(3, a&^(Size1G-1))
		}
		if a&(Size2M-1) != 0 {
			add(2, a&^(Size2M-1))
		}
	}
	return n
}
