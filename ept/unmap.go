package ept

import "fmt"

// Unmap removes every mapping in [gpa, gpa+size). Unmapped holes in the
// range are fine. A large page that straddles an edge of the range is split
// first, so its part outside keeps its mapping; table pages left empty are
// freed (never the root). The pages that were mapped belong to the caller
// and are not freed.
//
// The table pages the splits need (at most four) are obtained before
// anything changes: if the Allocator runs out, Unmap returns its error
// wrapped and the mappings are as before.
func (t *Table) Unmap(gpa, size uint64) error {
	if err := t.usable(); err != nil {
		return fmt.Errorf("ept: unmap gpa %#x size %#x: %w", gpa, size, err)
	}
	if err := t.checkRange(gpa, size); err != nil {
		return fmt.Errorf("ept: unmap gpa %#x size %#x: %w", gpa, size, err)
	}
	end := gpa + size
	var r reserve
	if err := t.fill(&r, t.planSplits(gpa, end, false, 0)); err != nil {
		return fmt.Errorf("ept: unmap gpa %#x size %#x: %w", gpa, size, err)
	}
	t.unmap(t.page(t.root), t.levels, gpa, end, &r)
	t.release(&r)
	return nil
}

// unmap clears [lo, hi) within tbl, a table at level whose coverage holds
// the range, taking split pages from r. Recursion is at most four deep.
func (t *Table) unmap(tbl *[512]uint64, level int, lo, hi uint64, r *reserve) {
	s := span(level)
	for lo < hi {
		next := lo&^(s-1) + s
		slot := &tbl[index(lo, level)]
		e := *slot
		if !t.present(e) {
			lo = next
			continue
		}
		if lo&(s-1) == 0 && hi >= next {
			store(slot, 0)
			if !isLeaf(e, level) {
				t.freeTree(e&addrMask, level-1)
			}
			lo = next
			continue
		}
		if isLeaf(e, level) {
			t.split(slot, level, r.take())
			e = *slot
		}
		child := e & addrMask
		ctbl := t.page(child)
		t.unmap(ctbl, level-1, lo, min(hi, next), r)
		if empty(ctbl) {
			store(slot, 0)
			t.a.FreePage(child)
		}
		lo = next
	}
}
