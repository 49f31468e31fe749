package ept

import "fmt"

// Protect sets the permissions of every page in [gpa, gpa+size) to perm,
// keeping each page's memory type and accessed/dirty bits. Every page in
// the range must be mapped, else Protect returns ErrNotMapped and changes
// nothing. A large page that straddles an edge of the range and does not
// already have perm is split first, so its part outside keeps its
// permissions.
//
// As with Unmap, the table pages splits need are obtained first: if the
// Allocator runs out, the mappings are as before.
func (t *Table) Protect(gpa, size uint64, perm Perm) error {
	if err := t.usable(); err != nil {
		return fmt.Errorf("ept: protect gpa %#x size %#x: %w", gpa, size, err)
	}
	if err := t.checkRange(gpa, size); err != nil {
		return fmt.Errorf("ept: protect gpa %#x size %#x: %w", gpa, size, err)
	}
	// The memory type is not changed; WB is valid in both formats.
	if err := t.check(perm, WB); err != nil {
		return fmt.Errorf("ept: protect gpa %#x size %#x: %w", gpa, size, err)
	}
	end := gpa + size
	root := t.page(t.root)
	if !t.allMapped(root, t.levels, gpa, end) {
		return fmt.Errorf("ept: protect gpa %#x size %#x: %w", gpa, size, ErrNotMapped)
	}
	bits := t.permBits(perm) & t.permMask()
	var r reserve
	if err := t.fill(&r, t.planSplits(gpa, end, true, bits)); err != nil {
		return fmt.Errorf("ept: protect gpa %#x size %#x: %w", gpa, size, err)
	}
	t.protect(root, t.levels, gpa, end, bits, &r)
	t.release(&r)
	return nil
}

// allMapped reports whether every page in [lo, hi) is mapped, within tbl at
// level.
func (t *Table) allMapped(tbl *[512]uint64, level int, lo, hi uint64) bool {
	s := span(level)
	for lo < hi {
		next := lo&^(s-1) + s
		e := tbl[index(lo, level)]
		if !t.present(e) {
			return false
		}
		if !isLeaf(e, level) && !t.allMapped(t.page(e&addrMask), level-1, lo, min(hi, next)) {
			return false
		}
		lo = next
	}
	return true
}

// protect replaces the permission bits (permMask) of the leaves in [lo, hi)
// within tbl at level with bits, taking split pages from r. Every page in
// the range is mapped. Recursion is at most four deep.
func (t *Table) protect(tbl *[512]uint64, level int, lo, hi, bits uint64, r *reserve) {
	s := span(level)
	mask := t.permMask()
	for lo < hi {
		next := lo&^(s-1) + s
		slot := &tbl[index(lo, level)]
		e := *slot
		if isLeaf(e, level) {
			if e&mask == bits {
				lo = next
				continue
			}
			if lo&(s-1) == 0 && hi >= next {
				store(slot, e&^mask|bits)
				lo = next
				continue
			}
			t.split(slot, level, r.take())
			e = *slot
		}
		t.protect(t.page(e&addrMask), level-1, lo, min(hi, next), bits, r)
		lo = next
	}
}
