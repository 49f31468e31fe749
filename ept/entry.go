package ept

import "fmt"

// Perm is a set of guest access rights to a mapping.
type Perm uint8

const (
	// Read allows reads. In NPT every mapping is readable: a present entry
	// can always be read, so Read is required there.
	Read Perm = 1 << iota
	// Write allows writes. EPT cannot express write without read (the
	// combination is an EPT misconfiguration), so Write needs Read.
	Write
	// Exec allows instruction fetches (in EPT with mode-based execute
	// control: supervisor-mode fetches). NPT sets NX (bit 63) in a leaf
	// without it; that bit is reserved unless no-execute is enabled
	// (EFER.NXE), so the hypervisor runs with EFER.NXE set. EPT
	// execute-only (Exec without Read) needs IA32_VMX_EPT_VPID_CAP bit 0.
	Exec
	// ExecUser allows user-mode instruction fetches under EPT's mode-based
	// execute control (bit 10; ignored by processors without that control
	// enabled). EPT only.
	ExecUser

	// RW and RWX are the usual combinations.
	RW  = Read | Write
	RWX = Read | Write | Exec

	permAll = Read | Write | Exec | ExecUser
)

func (p Perm) String() string {
	b := []byte("---")
	if p&Read != 0 {
		b[0] = 'r'
	}
	if p&Write != 0 {
		b[1] = 'w'
	}
	if p&Exec != 0 {
		b[2] = 'x'
	}
	if p&ExecUser != 0 {
		b = append(b, 'u')
	}
	if p&^permAll != 0 {
		b = fmt.Appendf(b, "+%#x", uint8(p&^permAll))
	}
	return string(b)
}

// MemType is a memory type, encoded as in the MTRRs, the PAT and EPT leaf
// bits 5:3 (SDM Vol. 3A, "Memory Types"). Note that the zero value is UC.
type MemType uint8

const (
	UC MemType = 0 // uncacheable
	WC MemType = 1 // write-combining (EPT only)
	WT MemType = 4 // write-through
	WP MemType = 5 // write-protected (EPT only)
	WB MemType = 6 // write-back
)

func (m MemType) String() string {
	switch m {
	case UC:
		return "UC"
	case WC:
		return "WC"
	case WT:
		return "WT"
	case WP:
		return "WP"
	case WB:
		return "WB"
	}
	return fmt.Sprintf("MemType(%d)", uint8(m))
}

// Entry bits common to both layouts.
const (
	// addrMask selects the physical address in an entry: bits 51:12.
	addrMask uint64 = 0x000F_FFFF_FFFF_F000
	// pageSize (bit 7 in both layouts) marks a PDPTE or PDE as a 1 GiB or
	// 2 MiB leaf. In a PTE the bit means something else (NPT: PAT; EPT:
	// ignored); this package leaves it clear there.
	pageSize uint64 = 1 << 7
)

// AMD NPT entries: long-mode page-table entries (APM Vol. 2, "Long-Mode
// Page Translation"). The memory type is a PAT index, PAT:PCD:PWT; with the
// host PAT at its power-on value, index 0 is WB, 1 WT and 3 UC (APM Vol. 2,
// "Page-Attribute Table Mechanism"). Nested walks are user accesses (APM
// Vol. 2, "Nested Paging"), so every level has US set.
const (
	nptP   uint64 = 1 << 0
	nptRW  uint64 = 1 << 1
	nptUS  uint64 = 1 << 2
	nptPWT uint64 = 1 << 3
	nptPCD uint64 = 1 << 4
	nptA   uint64 = 1 << 5
	nptD   uint64 = 1 << 6 // leaves only
	nptNX  uint64 = 1 << 63

	// nptTable is a non-leaf entry's bits: most permissive rights; each
	// leaf sets its own.
	nptTable = nptP | nptRW | nptUS
)

// Intel EPT entries, SDM Vol. 3C, "EPT Translation Mechanism" (the tables
// describing EPT PML4Es through PTEs).
const (
	eptR       uint64 = 1 << 0
	eptW       uint64 = 1 << 1
	eptX       uint64 = 1 << 2 // supervisor-mode execute with MBEC
	eptMTShift        = 3      // bits 5:3, leaves only
	eptMT      uint64 = 7 << eptMTShift
	eptIPAT    uint64 = 1 << 6 // ignore PAT, leaves only
	eptA       uint64 = 1 << 8
	eptD       uint64 = 1 << 9 // leaves only
	eptXU      uint64 = 1 << 10

	// eptTable is a non-leaf entry's bits: most permissive rights,
	// including user-mode execute for mode-based execute control (an access
	// is allowed only if every level allows it). Bits 7:3 must be zero.
	eptTable = eptR | eptW | eptX | eptXU
)

// present reports whether entry e is present. NPT: P. EPT: any of bits
// 2:0. (With mode-based execute control bit 10 alone would also count, but
// this package never writes such an entry.)
func (t *Table) present(e uint64) bool {
	if t.f == EPT {
		return e&(eptR|eptW|eptX) != 0
	}
	return e&nptP != 0
}

// tableEntry is the non-leaf entry pointing at the table page at hpa.
func (t *Table) tableEntry(hpa uint64) uint64 {
	if t.f == EPT {
		return hpa | eptTable
	}
	return hpa | nptTable
}

// accessDirty is the mask of the accessed and dirty bits, which the
// processor sets and this package carries over (through Protect, splits and
// merges) but never compares.
func (t *Table) accessDirty() uint64 {
	if t.f == EPT {
		return eptA | eptD
	}
	return nptA | nptD
}

// permMask is the bits leafBits derives from a Perm.
func (t *Table) permMask() uint64 {
	if t.f == EPT {
		return eptR | eptW | eptX | eptXU
	}
	return nptRW | nptNX
}

// check validates a permission set and memory type for t's format.
func (t *Table) check(p Perm, mt MemType) error {
	switch {
	case p&^permAll != 0:
		return fmt.Errorf("unknown bits in %v: %w", p, ErrPerm)
	case p&(Read|Write|Exec) == 0:
		return fmt.Errorf("%v grants no access (use Unmap): %w", p, ErrPerm)
	}
	if t.f == EPT {
		if p&Write != 0 && p&Read == 0 {
			return fmt.Errorf("%v: EPT write without read is a misconfiguration: %w", p, ErrPerm)
		}
		switch mt {
		case UC, WC, WT, WP, WB:
		default:
			return fmt.Errorf("%v: reserved for EPT: %w", mt, ErrMemType)
		}
		return nil
	}
	if p&Read == 0 {
		return fmt.Errorf("%v: NPT mappings are always readable: %w", p, ErrPerm)
	}
	if p&ExecUser != 0 {
		return fmt.Errorf("%v: user execute is EPT only: %w", p, ErrPerm)
	}
	switch mt {
	case UC, WT, WB:
	default:
		return fmt.Errorf("%v: no NPT encoding with the default PAT: %w", mt, ErrMemType)
	}
	return nil
}

// leafBits is a leaf entry for a checked Perm and MemType, without the
// address, PS, or accessed/dirty bits.
func (t *Table) leafBits(p Perm, mt MemType) uint64 {
	return t.permBits(p) | t.memTypeBits(mt)
}

// permBits encodes p (the permMask bits, plus NPT's constant P and US).
func (t *Table) permBits(p Perm) uint64 {
	var e uint64
	if t.f == EPT {
		if p&Read != 0 {
			e |= eptR
		}
		if p&Write != 0 {
			e |= eptW
		}
		if p&Exec != 0 {
			e |= eptX
		}
		if p&ExecUser != 0 {
			e |= eptXU
		}
		return e
	}
	e = nptP | nptUS
	if p&Write != 0 {
		e |= nptRW
	}
	if p&Exec == 0 {
		e |= nptNX
	}
	return e
}

// memTypeBits encodes mt. EPT: bits 5:3, and IPAT if the table asks for it.
// NPT: a PAT index under the power-on PAT (WB 0, WT PWT, UC PCD|PWT).
func (t *Table) memTypeBits(mt MemType) uint64 {
	if t.f == EPT {
		e := uint64(mt) << eptMTShift
		if t.ipat {
			e |= eptIPAT
		}
		return e
	}
	switch mt {
	case UC:
		return nptPCD | nptPWT
	case WT:
		return nptPWT
	}
	return 0
}

// decode returns the Perm and MemType of present leaf entry e.
func (t *Table) decode(e uint64) (Perm, MemType) {
	var p Perm
	if t.f == EPT {
		if e&eptR != 0 {
			p |= Read
		}
		if e&eptW != 0 {
			p |= Write
		}
		if e&eptX != 0 {
			p |= Exec
		}
		if e&eptXU != 0 {
			p |= ExecUser
		}
		return p, MemType(e & eptMT >> eptMTShift)
	}
	p = Read
	if e&nptRW != 0 {
		p |= Write
	}
	if e&nptNX == 0 {
		p |= Exec
	}
	switch e & (nptPCD | nptPWT) {
	case 0:
		return p, WB
	case nptPWT:
		return p, WT
	}
	return p, UC
}

// Levels: 4 is the PML4, 1 the page table.
func shift(level int) uint  { return 12 + 9*uint(level-1) }
func span(level int) uint64 { return 1 << shift(level) }
func index(gpa uint64, level int) int {
	return int(gpa>>shift(level)) & 511
}

// isLeaf reports whether present entry e at level maps a page rather than
// pointing to a table.
func isLeaf(e uint64, level int) bool {
	return level == 1 || (level <= 3 && e&pageSize != 0)
}

// frame is the physical base of the page that leaf entry e at level maps.
func frame(e uint64, level int) uint64 {
	return e & addrMask &^ (span(level) - 1)
}

// attrs is a leaf entry without its address, PS and accessed/dirty bits:
// what two leaves must share to be merged.
func (t *Table) attrs(e uint64) uint64 {
	return e &^ (addrMask | pageSize | t.accessDirty())
}

// leafAt builds a leaf at level mapping hpa with the attributes (and
// accessed/dirty bits) bits.
func leafAt(hpa uint64, level int, bits uint64) uint64 {
	e := hpa | bits&^(addrMask|pageSize)
	if level > 1 {
		e |= pageSize
	}
	return e
}
