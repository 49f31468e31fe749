package pagetable

// Walk calls fn for every mapping, in virtual-address order (the lower half,
// then the upper half), with the canonical va, the physical address, the page
// size and the leaf's flags (FlagsMask bits). It stops early when fn returns
// false. fn must not change the table.
// Runs with interrupts off; must not allocate (in kernel use, neither may fn).
func (t Table) Walk(m Memory, fn func(va, pa, size, flags uint64) bool) {
	if root := m.Table(t.Root); root != nil {
		walk(m, root, 4, 0, fn)
	}
}

// walk visits the table at level whose coverage starts at linear address
// base. It returns false once fn has asked to stop. Recursion depth is at
// most the 4 levels.
// Runs with interrupts off; must not allocate.
func walk(m Memory, tbl *[512]uint64, level int, base uint64, fn func(va, pa, size, flags uint64) bool) bool {
	size := levelSize(level)
	for i, e := range tbl {
		if e&Present == 0 {
			continue
		}
		la := base + uint64(i)*size
		if isLeaf(e, level) {
			if !fn(canonical(la), frame(e, level), size, e&FlagsMask) {
				return false
			}
			continue
		}
		if child := m.Table(e & AddrMask); child != nil {
			if !walk(m, child, level-1, la, fn) {
				return false
			}
		}
	}
	return true
}
