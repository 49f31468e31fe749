package ept

import "fmt"

// Coalesce merges small pages into large ones within [gpa, gpa+size): each
// aligned 2 MiB region (then each aligned 1 GiB region) that lies wholly in
// the range, is allowed by Options.MaxPage, and is mapped entirely by
// leaves of the next smaller size with contiguous HPAs starting at an HPA
// aligned to the large size and with identical permissions and memory
// type, becomes one large leaf; the table that held the small leaves is
// freed. Accessed and dirty bits of the merged leaves are ORed.
//
// Coalesce never allocates, and fails (changing nothing) only on bad
// arguments. Regions that do not qualify are left alone.
func (t *Table) Coalesce(gpa, size uint64) error {
	if err := t.usable(); err != nil {
		return fmt.Errorf("ept: coalesce gpa %#x size %#x: %w", gpa, size, err)
	}
	if err := t.checkRange(gpa, size); err != nil {
		return fmt.Errorf("ept: coalesce gpa %#x size %#x: %w", gpa, size, err)
	}
	t.coalesce(t.page(t.root), t.levels, gpa, gpa+size)
	return nil
}

// coalesce merges within [lo, hi) in tbl at level, bottom-up: a table's
// children are merged before the table itself is considered. Recursion is
// at most three deep.
func (t *Table) coalesce(tbl *[512]uint64, level int, lo, hi uint64) {
	s := span(level)
	for lo < hi {
		next := lo&^(s-1) + s
		slot := &tbl[index(lo, level)]
		if e := *slot; t.present(e) && !isLeaf(e, level) {
			child := e & addrMask
			ctbl := t.page(child)
			if level-1 >= 2 {
				t.coalesce(ctbl, level-1, lo, min(hi, next))
			}
			if level <= t.maxLevel && lo&(s-1) == 0 && hi >= next {
				if leaf, ok := t.mergeable(ctbl, level-1); ok {
					store(slot, leaf)
					t.a.FreePage(child)
				}
			}
		}
		lo = next
	}
}

// mergeable reports whether tbl, a table at level (1 or 2), holds 512
// leaves that map one contiguous block, aligned to the span of level+1,
// with identical attributes; if so it returns the level+1 leaf mapping that
// block.
func (t *Table) mergeable(tbl *[512]uint64, level int) (uint64, bool) {
	first := tbl[0]
	if !t.present(first) || !isLeaf(first, level) {
		return 0, false
	}
	base := frame(first, level)
	if base&(span(level+1)-1) != 0 {
		return 0, false
	}
	attrs := t.attrs(first)
	step := span(level)
	var ad uint64
	for j, e := range tbl {
		if !t.present(e) || !isLeaf(e, level) || frame(e, level) != base+uint64(j)*step || t.attrs(e) != attrs {
			return 0, false
		}
		ad |= e & t.accessDirty()
	}
	return leafAt(base, level+1, attrs|ad), true
}
