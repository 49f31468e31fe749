// Package pagetable builds and edits x86-64 4-level page tables (Intel SDM
// Vol. 3A 4.5, AMD APM Vol. 2 5.3): PML4 → PDPT → PD → PT, with 1 GiB pages
// in the PDPT and 2 MiB pages in the PD.
//
// The code runs inside the kernel's page-fault handler and mmap system call,
// with interrupts off and possibly before the Go runtime is initialised. No
// function allocates, returns an error value or panics on bad input; Table is
// a single physical address; recursion never goes deeper than the four
// levels. Page-table pages come from, and are reached through, a Memory.
//
// Nothing here flushes TLBs: after Map, Map4K, Unmap or Protect changes or
// removes a present entry, the caller invalidates (INVLPG or a CR3 reload)
// before relying on the change. Tables freed by those calls go straight back
// to the Memory, so the caller must also invalidate before a freed table
// page can be reused while another CPU might still walk it.
package pagetable

import "gohv/x86"

// Memory gives the page-table code its page frames and a way to reach them.
type Memory interface {
	// AllocTable returns a zeroed 4 KiB page for a table.
	AllocTable() (pa uint64, ok bool)
	// FreeTable returns a page AllocTable gave out.
	FreeTable(pa uint64)
	// Table is the table page at physical address pa.
	Table(pa uint64) *[512]uint64
}

// Entry bits, SDM Vol. 3A 4.5, Tables 4-15 (PML4E) to 4-20 (PTE): the
// format this package reads and writes, under the names its API has always
// used, with the values from package x86.
const (
	Present      uint64 = x86.PTEPresent  // P
	Writable     uint64 = x86.PTEWrite    // R/W
	User         uint64 = x86.PTEUser     // U/S
	WriteThrough uint64 = x86.PTEPWT      // PWT
	CacheDisable uint64 = x86.PTEPCD      // PCD
	Accessed     uint64 = x86.PTEAccessed // A
	Dirty        uint64 = x86.PTEDirty    // D (leaf entries only)
	PageSize     uint64 = x86.PTEPS       // PS in a PDPTE or PDE: the entry maps a 1 GiB or 2 MiB page
	Global       uint64 = x86.PTEGlobal   // G (leaf entries only)
	NoExecute    uint64 = x86.PTENX       // XD/NX, with IA32_EFER.NXE set

	// AddrMask selects the physical address in an entry (MAXPHYADDR up to 52).
	AddrMask uint64 = x86.PTEAddrMask

	// FlagsMask selects the bits Map, Lookup, Walk and Protect deal in:
	// everything outside the address except PS (bits 0-6, 8-11, 52-63).
	// The PAT bit (bit 7 of a PTE, bit 12 of a large-page entry) is not
	// exposed; a split carries it over.
	FlagsMask = ^(AddrMask | PageSize)
)

// Page sizes.
const (
	Size4K uint64 = x86.PageSize
	Size2M uint64 = x86.PageSize2M
	Size1G uint64 = x86.PageSize1G
)

const (
	patLarge = x86.PTEPATLarge // PAT in a 1 GiB or 2 MiB entry
	pat4K    = x86.PTEPAT      // PAT in a PTE, where large entries have PS

	// tableFlags is what a non-leaf entry carries. Access rights are the
	// most permissive: each leaf sets its own (SDM Vol. 3A 4.6: a page is
	// writable, user-accessible or executable only if every level allows it).
	tableFlags = Present | Writable | User

	// Linear addresses are 48 bits; canonical ones sign-extend bit 47.
	vaBits    = 48
	halfSpace = 1 << (vaBits - 1)
	vaSpace   = 1 << vaBits
	maxPhys   = 1 << 52
)

// Levels: 4 is the PML4, 1 the page table.
func levelShift(level int) uint  { return 12 + 9*uint(level-1) }
func levelSize(level int) uint64 { return 1 << levelShift(level) }
func index(la uint64, level int) uint64 {
	return (la >> levelShift(level)) & 511
}

// isLeaf reports whether present entry e at level maps a page rather than
// pointing to a table.
func isLeaf(e uint64, level int) bool {
	return level == 1 || (level <= 3 && e&PageSize != 0)
}

// frame is the physical base of the page leaf entry e at level maps.
func frame(e uint64, level int) uint64 {
	return e & AddrMask &^ (levelSize(level) - 1)
}

// Canonical reports whether va is a canonical 48-bit address: bits 63:47 all
// equal (SDM Vol. 3A 3.3.7.1).
func Canonical(va uint64) bool { return uint64(int64(va<<16)>>16) == va }

// linear maps canonical va to its 48-bit linear address.
func linear(va uint64) uint64 { return va & (vaSpace - 1) }

// canonical maps a 48-bit linear address back to its canonical form.
func canonical(la uint64) uint64 { return uint64(int64(la<<16) >> 16) }

// linearRange validates [va, va+size): page-aligned, canonical, within one
// half of the address space. It returns the range in linear addresses.
func linearRange(va, size uint64) (la, end uint64, ok bool) {
	if va&(Size4K-1) != 0 || size&(Size4K-1) != 0 || !Canonical(va) {
		return 0, 0, false
	}
	la = linear(va)
	limit := uint64(halfSpace)
	if la >= halfSpace {
		limit = vaSpace
	}
	if size > limit-la {
		return 0, 0, false
	}
	return la, la + size, true
}

// Table is a 4-level page-table hierarchy, named by the physical address of
// its PML4 (the value for CR3). It is pointer-free: copy it freely.
type Table struct{ Root uint64 }

// New allocates an empty PML4.
// Runs with interrupts off; must not allocate.
func New(m Memory) (Table, bool) {
	pa, ok := m.AllocTable()
	if !ok {
		return Table{}, false
	}
	if pa&^AddrMask != 0 || m.Table(pa) == nil {
		m.FreeTable(pa)
		return Table{}, false
	}
	return Table{Root: pa}, true
}

// Lookup translates va. It returns the physical address va maps to
// (including va's offset in its page), the leaf entry's flags (FlagsMask
// bits) and the size of the page that maps it.
// Runs with interrupts off; must not allocate.
func (t Table) Lookup(m Memory, va uint64) (pa uint64, flags uint64, pageSize uint64, ok bool) {
	if !Canonical(va) {
		return 0, 0, 0, false
	}
	la := linear(va)
	tbl := m.Table(t.Root)
	for level := 4; level >= 1; level-- {
		if tbl == nil {
			return 0, 0, 0, false
		}
		e := tbl[index(la, level)]
		if e&Present == 0 {
			return 0, 0, 0, false
		}
		if isLeaf(e, level) {
			size := levelSize(level)
			return frame(e, level) | la&(size-1), e & FlagsMask, size, true
		}
		tbl = m.Table(e & AddrMask)
	}
	return 0, 0, 0, false
}

// split replaces the large-page leaf tbl[i] at level (3 or 2) with a table of
// 512 entries one level down that map the same memory with the same flags.
// On failure (no table page) nothing changes.
// Runs with interrupts off; must not allocate.
func split(m Memory, tbl *[512]uint64, i uint64, level int) bool {
	e := tbl[i]
	npa, ok := m.AllocTable()
	if !ok {
		return false
	}
	child := m.Table(npa)
	if child == nil {
		m.FreeTable(npa)
		return false
	}
	base := frame(e, level)
	step := levelSize(level - 1)
	flags := e &^ AddrMask // includes PS
	if level-1 == 1 {
		// PTEs have no PS; their PAT bit sits where PS was.
		flags &^= PageSize
		if e&patLarge != 0 {
			flags |= pat4K
		}
	} else {
		flags |= e & patLarge
	}
	for j := range child {
		child[j] = base + uint64(j)*step | flags
	}
	tbl[i] = npa | tableFlags
	return true
}

// freeTree frees the table at pa (at level) and every table below it. The
// pages leaf entries map are not touched.
// Runs with interrupts off; must not allocate.
func freeTree(m Memory, pa uint64, level int) {
	if level > 1 {
		if tbl := m.Table(pa); tbl != nil {
			for _, e := range tbl {
				if e&Present != 0 && !isLeaf(e, level) {
					freeTree(m, e&AddrMask, level-1)
				}
			}
		}
	}
	m.FreeTable(pa)
}

// empty reports whether a table has no entries.
// Runs with interrupts off; must not allocate.
func empty(tbl *[512]uint64) bool {
	for _, e := range tbl {
		if e != 0 {
			return false
		}
	}
	return true
}
