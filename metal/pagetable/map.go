package pagetable

// validMapping checks a physical range and leaf flags for Map and Map4K.
func validMapping(pa, size, flags uint64) bool {
	return pa&(Size4K-1) == 0 && pa <= maxPhys && size <= maxPhys-pa &&
		flags&^FlagsMask == 0
}

// Map maps [va, va+size) to [pa, pa+size). At each step it uses the largest
// page — 1 GiB, 2 MiB or 4 KiB, no larger than maxPage — that the alignment
// of va and pa and the size still to map allow. Existing mappings in the
// range are replaced: a large page that straddles the range's edge is split
// so the part outside keeps its mapping, and tables under an entry that
// becomes a large page are freed. Present is always set; flags must hold
// only FlagsMask bits.
//
// It returns false, changing nothing, on a non-canonical or unaligned va, an
// unaligned or too-high pa, a range that leaves its half of the address
// space, flags outside FlagsMask or maxPage below 4 KiB. It returns false
// after mapping a prefix of the range if it runs out of table pages.
// Runs with interrupts off; must not allocate.
func (t Table) Map(m Memory, va, pa, size, flags uint64, maxPage uint64) bool {
	la, end, ok := linearRange(va, size)
	if !ok || !validMapping(pa, size, flags) {
		return false
	}
	top := 0
	switch {
	case maxPage >= Size1G:
		top = 3
	case maxPage >= Size2M:
		top = 2
	case maxPage >= Size4K:
		top = 1
	default:
		return false
	}
	flags |= Present
	for la < end {
		level := 1
		for l := top; l > 1; l-- {
			s := levelSize(l)
			if la&(s-1) == 0 && pa&(s-1) == 0 && end-la >= s {
				level = l
				break
			}
		}
		if !t.set(m, la, pa, level, flags) {
			return false
		}
		la += levelSize(level)
		pa += levelSize(level)
	}
	return true
}

// Map4K maps the one 4 KiB page at va to pa: the demand-paging fast path. A
// large page covering va is split first, so the rest of it keeps its
// mapping. It returns false on bad input (as Map) or when out of table pages,
// in which case the tables may have grown but no mapping changed.
// Runs with interrupts off; must not allocate.
func (t Table) Map4K(m Memory, va, pa, flags uint64) bool {
	if va&(Size4K-1) != 0 || !Canonical(va) || !validMapping(pa, Size4K, flags) {
		return false
	}
	return t.set(m, linear(va), pa, 1, flags|Present)
}

// set writes the leaf entry for la at level (1, 2 or 3) mapping pa, creating
// tables and splitting large pages on the way down, and frees any table the
// entry replaces.
// Runs with interrupts off; must not allocate.
func (t Table) set(m Memory, la, pa uint64, level int, flags uint64) bool {
	tbl := m.Table(t.Root)
	for l := 4; l > level; l-- {
		if tbl == nil {
			return false
		}
		i := index(la, l)
		e := tbl[i]
		switch {
		case e&Present == 0:
			npa, ok := m.AllocTable()
			if !ok {
				return false
			}
			if npa&^AddrMask != 0 {
				m.FreeTable(npa)
				return false
			}
			e = npa | tableFlags
			tbl[i] = e
		case isLeaf(e, l):
			if !split(m, tbl, i, l) {
				return false
			}
			e = tbl[i]
		}
		tbl = m.Table(e & AddrMask)
	}
	if tbl == nil {
		return false
	}
	if level > 1 {
		flags |= PageSize
	}
	i := index(la, level)
	old := tbl[i]
	tbl[i] = pa | flags
	if old&Present != 0 && !isLeaf(old, level) {
		freeTree(m, old&AddrMask, level-1)
	}
	return true
}
