package pagetable

// Unmap removes every mapping in [va, va+size). A large page that straddles
// an edge of the range is split first, so its part outside keeps its
// mapping. Page-table pages left empty are freed (never the root). Holes in
// the range are fine. The pages that were mapped are not freed: they belong
// to the caller.
//
// It returns false, changing nothing, on a non-canonical or unaligned range
// or one that leaves its half of the address space; it returns false having
// unmapped part of the range if a split runs out of table pages.
// Runs with interrupts off; must not allocate.
func (t Table) Unmap(m Memory, va, size uint64) bool {
	la, end, ok := linearRange(va, size)
	if !ok {
		return false
	}
	root := m.Table(t.Root)
	if root == nil {
		return false
	}
	return unmap(m, root, 4, la, end)
}

// unmap clears [la, end) within tbl, a table at level whose coverage holds
// the range. Recursion depth is at most the 4 levels.
// Runs with interrupts off; must not allocate.
func unmap(m Memory, tbl *[512]uint64, level int, la, end uint64) bool {
	for la < end {
		i := index(la, level)
		size := levelSize(level)
		next := la&^(size-1) + size
		e := tbl[i]
		if e&Present == 0 {
			la = next
			continue
		}
		whole := la&(size-1) == 0 && end >= next
		if whole {
			tbl[i] = 0
			if !isLeaf(e, level) {
				freeTree(m, e&AddrMask, level-1)
			}
			la = next
			continue
		}
		if isLeaf(e, level) {
			if !split(m, tbl, i, level) {
				return false
			}
			e = tbl[i]
		}
		cpa := e & AddrMask
		child := m.Table(cpa)
		if child == nil {
			return false
		}
		ok := unmap(m, child, level-1, la, min(end, next))
		if empty(child) {
			tbl[i] = 0
			m.FreeTable(cpa)
		}
		if !ok {
			return false
		}
		la = next
	}
	return true
}

// Protect changes the flags of every page mapped in [va, va+size): each leaf
// entry becomes (entry | setFlags) &^ clearFlags. A large page that straddles
// an edge of the range is split first. Unmapped holes are skipped. The flags
// may hold only FlagsMask bits, and clearFlags may not clear Present (use
// Unmap).
//
// It returns false, changing nothing, on bad input; it returns false having
// changed part of the range if a split runs out of table pages.
// Runs with interrupts off; must not allocate.
func (t Table) Protect(m Memory, va, size, setFlags, clearFlags uint64) bool {
	la, end, ok := linearRange(va, size)
	if !ok || setFlags&^FlagsMask != 0 || clearFlags&^FlagsMask != 0 || clearFlags&Present != 0 {
		return false
	}
	root := m.Table(t.Root)
	if root == nil {
		return false
	}
	return protect(m, root, 4, la, end, setFlags, clearFlags)
}

// protect applies set/clear to the leaves of [la, end) within tbl, a table
// at level. Recursion depth is at most the 4 levels.
// Runs with interrupts off; must not allocate.
func protect(m Memory, tbl *[512]uint64, level int, la, end, set, clr uint64) bool {
	for la < end {
		i := index(la, level)
		size := levelSize(level)
		next := la&^(size-1) + size
		e := tbl[i]
		if e&Present == 0 {
			la = next
			continue
		}
		if isLeaf(e, level) {
			if la&(size-1) == 0 && end >= next {
				tbl[i] = (e | set) &^ clr
				la = next
				continue
			}
			if !split(m, tbl, i, level) {
				return false
			}
			e = tbl[i]
		}
		child := m.Table(e & AddrMask)
		if child == nil {
			return false
		}
		if !protect(m, child, level-1, la, min(end, next), set, clr) {
			return false
		}
		la = next
	}
	return true
}
