package emul

import (
	"errors"
	"fmt"

	"gohv/x86"
)

// Access describes one memory access for address translation. Its bits are
// chosen to coincide with the #PF error-code bits (x86.PFErrWrite,
// x86.PFErrUser, x86.PFErrFetch), plus AccessAC, which sits where RFLAGS.AC
// does.
type Access uint32

const (
	// AccessRead is a data read (the zero value).
	AccessRead Access = 0
	// AccessWrite is a data write, or the read half of a read-modify-write.
	AccessWrite Access = Access(x86.PFErrWrite)
	// AccessUser marks an access made at CPL 3.
	AccessUser Access = Access(x86.PFErrUser)
	// AccessFetch is an instruction fetch. Do not combine with AccessWrite.
	AccessFetch Access = Access(x86.PFErrFetch)
	// AccessAC marks an explicit supervisor data access made with
	// RFLAGS.AC=1: under CR4.SMAP it may touch user pages.
	AccessAC Access = Access(x86.RFLAGSAC)
)

// Paging is a guest's paging configuration: the control registers as the
// guest sees them (from the VMCB/VMCS guest-state area) and the MAXPHYADDR
// the guest is told in CPUID 0x80000008 EAX[7:0].
//
// EFER.LMA (not LME) selects long-mode paging; CR4.LA57 selects 5-level
// paging within it.
type Paging struct {
	CR0, CR3, CR4, EFER uint64
	// MaxPhysAddr is MAXPHYADDR in bits. 0 means 52; other values are
	// clamped to [32, 52].
	MaxPhysAddr uint
}

// PhysReader reads the naturally aligned 8 bytes of guest-physical memory at
// gpa (always 8-byte aligned when called by Walk), little-endian. An error
// (GPA not backed by RAM, say) aborts the walk and is returned wrapped.
type PhysReader func(gpa uint64) (uint64, error)

var errWalk = errors.New("emul: internal error in page walk")

// ErrBadPagingMode is returned for control-register combinations no CPU
// accepts (EFER.LMA=1 with CR4.PAE=0).
var ErrBadPagingMode = errors.New("emul: invalid paging mode (EFER.LMA=1 with CR4.PAE=0)")

// maxPhys is MAXPHYADDR clamped to [32, 52]. Exit path: must not allocate.
func (p *Paging) maxPhys() uint {
	m := p.MaxPhysAddr
	switch {
	case m == 0 || m > 52:
		return 52
	case m < 32:
		return 32
	}
	return m
}

// FrameMask is the mask of the physical-address bits a paging-structure
// entry holds: 12 to MAXPHYADDR-1. Exit path: must not allocate.
func (p *Paging) FrameMask() uint64 { return bitRange(12, p.maxPhys()-1) }

// bitRange returns a mask with bits lo..hi (inclusive) set; empty if hi <
// lo. Exit path: must not allocate.
func bitRange(lo, hi uint) uint64 {
	if hi < lo {
		return 0
	}
	return (^uint64(0) >> (63 - hi)) &^ (1<<lo - 1)
}

// Walk translates the linear address la for an access of kind acc through
// the guest's page tables and returns the guest-physical address.
//
// It supports no paging (CR0.PG=0: physical = linear, truncated to 32 bits
// unless EFER.LMA), 32-bit paging (4 KiB pages, 4 MiB pages under CR4.PSE
// with PSE-36 high bits up to min(MAXPHYADDR, 40)), PAE paging (PDPTEs
// are read from memory on every walk, not from a copy taken at MOV CR3 as
// Intel CPUs keep; a reserved PDPTE bit is reported as #PF with RSVD
// rather than the #GP a MOV CR3 would raise) and 4- or 5-level long-mode
// paging with 2 MiB and 1 GiB pages (1 GiB pages are always accepted).
// It checks present bits,
// reserved bits (address bits at or above MAXPHYADDR, XD when EFER.NXE=0,
// PS in PML4E/PML5E, the PAT-to-page gaps of large pages, PAE PDPTE
// reserved bits), and access rights: R/W and U/S ANDed over all levels, XD
// ORed, CR0.WP for supervisor writes, CR4.SMEP and CR4.SMAP (with
// AccessAC). Protection keys (CR4.PKE), shadow stacks and the AMD-only
// reserved bit 8 of non-leaf entries are not modelled.
//
// A denial is returned as *PageFault carrying la and the architectural
// error code; a non-canonical la in long mode as *Exception (#GP(0)).
//
// Walk never writes guest memory: it sets no accessed or dirty flags. That
// suits inspection and accesses whose pages the guest itself has just
// touched; use WalkAD where the flags matter (an emulated REP MOVS from
// MMIO into a clean RAM page must leave that page's D flag set, or the
// guest may drop the data when it reclaims the page).
//
// Exit path: allocates only the fault it returns (and what read does); the
// page tables and la are guest-controlled.
func (p *Paging) Walk(la uint64, acc Access, read PhysReader) (uint64, error) {
	return p.walk(la, acc, read, nil)
}

// PhysCAS atomically replaces the 8-byte word at gpa (8-byte aligned) with
// new if it still equals old, as a locked CMPXCHG does, and reports whether
// it did.
type PhysCAS func(gpa, old, new uint64) (swapped bool, err error)

// WalkAD is Walk that, when the translation succeeds, also sets the
// accessed flag in every paging-structure entry it used (PAE PDPTEs have
// none) and, for a write, the dirty flag in the leaf entry, as the CPU
// does. Flags already set cost no write. If an entry changed under it (cas
// reports no swap) the walk starts again, up to 8 times.
// Exit path: allocates only the fault it returns (and what read and cas
// do).
func (p *Paging) WalkAD(la uint64, acc Access, read PhysReader, cas PhysCAS) (uint64, error) {
	for range 8 {
		gpa, err := p.walk(la, acc, read, cas)
		if err != errRetry {
			return gpa, err
		}
	}
	return 0, fmt.Errorf("emul: page walk of %#x: entries keep changing", la)
}

var errRetry = errors.New("emul: retry walk")

// walk is Walk, and WalkAD when cas is not nil. Exit path: allocates only
// the fault it returns (and what read and cas do).
func (p *Paging) walk(la uint64, acc Access, read PhysReader, cas PhysCAS) (uint64, error) {
	if acc&AccessFetch != 0 {
		acc &^= AccessWrite
	}
	if p.CR0&x86.CR0PG == 0 {
		if p.EFER&x86.EFERLMA == 0 {
			la &= 0xffffffff
		}
		return la, nil
	}
	w := walker{p: p, la: la, acc: acc, read: read, cas: cas, m: p.maxPhys(), user: true, writable: true}
	switch {
	case p.EFER&x86.EFERLMA != 0:
		if p.CR4&x86.CR4PAE == 0 {
			return 0, ErrBadPagingMode
		}
		return w.long()
	case p.CR4&x86.CR4PAE != 0:
		w.la &= 0xffffffff
		return w.pae()
	default:
		w.la &= 0xffffffff
		return w.legacy()
	}
}

type walker struct {
	p    *Paging
	la   uint64
	acc  Access
	read PhysReader
	cas  PhysCAS // nil: leave A/D alone
	m    uint    // MAXPHYADDR

	// Entries used, for setting accessed/dirty flags: the 8-byte word
	// holding each, its value, and the entry's bit offset in it.
	ents [5]usedEntry
	n    int

	// Access rights accumulated over the levels walked so far.
	user, writable, xd bool
}

// addrMask is the mask of physical-address bits 12..MAXPHYADDR-1. Exit
// path: must not allocate.
func (w *walker) addrMask() uint64 { return bitRange(12, w.m-1) }

// nxe reports EFER.NXE. Exit path: must not allocate.
func (w *walker) nxe() bool { return w.p.EFER&x86.EFERNXE != 0 }

type usedEntry struct {
	gpa, word uint64
	shift     uint
}

// readWord reads an 8-byte-aligned word of a paging structure. Exit path:
// allocates only on a read error; the word is guest-controlled.
func (w *walker) readWord(gpa uint64) (uint64, error) {
	v, err := w.read(gpa)
	if err != nil {
		return 0, fmt.Errorf("emul: page walk of %#x: reading entry at gpa %#x: %w", w.la, gpa, err)
	}
	return v, nil
}

// read64 reads an 8-byte entry and remembers it for A/D updates. Exit
// path: as readWord.
func (w *walker) read64(gpa uint64) (uint64, error) {
	v, err := w.readWord(gpa)
	if err == nil && w.n < len(w.ents) {
		w.ents[w.n] = usedEntry{gpa: gpa, word: v}
		w.n++
	}
	return v, err
}

// read32 reads the 4-byte entry at gpa (4-byte aligned) through the
// 8-byte-aligned reader, so the read never leaves the table's page. Exit
// path: as readWord.
func (w *walker) read32(gpa uint64) (uint64, error) {
	v, err := w.readWord(gpa &^ 7)
	if err != nil {
		return 0, err
	}
	sh := uint(gpa&4) * 8
	if w.n < len(w.ents) {
		w.ents[w.n] = usedEntry{gpa: gpa &^ 7, word: v, shift: sh}
		w.n++
	}
	return (v >> sh) & 0xffffffff, nil
}

// setAD sets A in every remembered entry and D in the last (the leaf) for
// a write. It returns errRetry if an entry changed since it was read. Exit
// path: allocates only on a cas error.
func (w *walker) setAD() error {
	if w.cas == nil {
		return nil
	}
	for i := 0; i < w.n; i++ {
		u := w.ents[i]
		bits := uint64(x86.PTEAccessed)
		if i == w.n-1 && w.acc&AccessWrite != 0 {
			bits |= x86.PTEDirty
		}
		bits <<= u.shift
		if u.word&bits == bits {
			continue
		}
		ok, err := w.cas(u.gpa, u.word, u.word|bits)
		if err != nil {
			return fmt.Errorf("emul: page walk of %#x: setting A/D at gpa %#x: %w", w.la, u.gpa, err)
		}
		if !ok {
			return errRetry
		}
	}
	return nil
}

// fault builds the #PF for this walk. present is false for a not-present
// entry; rsvd is true for a reserved-bit violation. Allocates the
// *PageFault: the guest's fault path.
func (w *walker) fault(present, rsvd bool) error {
	code := uint32(w.acc) & (x86.PFErrWrite | x86.PFErrUser)
	if present {
		code |= x86.PFErrPresent
	}
	if rsvd {
		code |= x86.PFErrRsvd
	}
	if w.acc&AccessFetch != 0 {
		// I/D is reported when SMEP is on, or when PAE/long-mode paging
		// runs with EFER.NXE=1.
		if w.p.CR4&x86.CR4SMEP != 0 || (w.p.CR4&x86.CR4PAE != 0 && w.nxe()) {
			code |= x86.PFErrFetch
		}
	}
	return &PageFault{Addr: w.la, Code: code}
}

// accumulate folds one present entry's rights into the walk. Exit path:
// must not allocate.
func (w *walker) accumulate(e uint64, hasRights, hasXD bool) {
	if hasRights {
		w.user = w.user && e&x86.PTEUser != 0
		w.writable = w.writable && e&x86.PTEWrite != 0
	}
	if hasXD && w.nxe() && e&x86.PTENX != 0 {
		w.xd = true
	}
}

// finish checks access rights against the accumulated rights and returns
// gpa. Exit path: allocates only the fault it returns.
func (w *walker) finish(gpa uint64) (uint64, error) {
	cr0, cr4 := w.p.CR0, w.p.CR4
	userAcc := w.acc&AccessUser != 0
	switch {
	case w.acc&AccessFetch != 0:
		if w.xd {
			return 0, w.fault(true, false)
		}
		if userAcc && !w.user {
			return 0, w.fault(true, false)
		}
		if !userAcc && w.user && cr4&x86.CR4SMEP != 0 {
			return 0, w.fault(true, false)
		}
	case userAcc:
		if !w.user || (w.acc&AccessWrite != 0 && !w.writable) {
			return 0, w.fault(true, false)
		}
	default: // supervisor data access
		if w.user && cr4&x86.CR4SMAP != 0 && w.acc&AccessAC == 0 {
			return 0, w.fault(true, false)
		}
		if w.acc&AccessWrite != 0 && !w.writable && cr0&x86.CR0WP != 0 {
			return 0, w.fault(true, false)
		}
	}
	if err := w.setAD(); err != nil {
		return 0, err
	}
	return gpa, nil
}
