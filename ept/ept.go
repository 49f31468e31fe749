// Package ept builds and edits second-level address translation tables,
// which map guest-physical addresses (GPAs) to host-physical addresses
// (HPAs), in both vendors' formats:
//
//   - AMD nested page tables (NPT; APM Vol. 2 15.25): ordinary long-mode
//     4-level page tables (APM Vol. 2 5.3), named by nCR3 in the VMCB.
//   - Intel extended page tables (EPT; SDM Vol. 3C, "The Extended
//     Page-Table Mechanism"): the same 4-level radix tree with its own entry
//     layout, named by the EPT pointer (EPTP) in the VMCS.
//
// Both are PML4 → PDPT → PD → PT, with 1 GiB leaves in the PDPT and 2 MiB
// leaves in the PD, and cover a 48-bit guest-physical space. Code here
// calls the levels 4 (PML4) down to 1 (PT).
//
// # Invariants
//
// Between calls a Table keeps these, and every operation relies on them:
//
//   - Every table page below the root holds at least one present entry;
//     an operation that empties one frees it before returning.
//   - Every table page reachable from the root was obtained from the
//     Allocator by this Table and is freed exactly once (by Unmap,
//     Coalesce, a rolled-back Map, or Destroy).
//   - Leaf entries are built only by this package from a Perm and a
//     MemType that passed validation, so no entry holds a reserved or
//     misconfigured combination (EPT write-without-read, reserved memory
//     types, NPT US=0).
//
// # Failure
//
// Every operation is all-or-nothing: when it returns an error the mappings
// are exactly as before the call. Map undoes a partly built range; Unmap
// and Protect obtain the few table pages their splits need before they
// change anything. Table pages may have been allocated and freed again in
// between.
//
// # Hardware and concurrency
//
// A Table is not safe for concurrent use; its owner serialises calls. The
// processor may walk the tables while they change: entries of live tables
// are written with single 64-bit atomic stores, a split fills the new table
// before publishing it, and a table is unlinked before it is freed. An
// accessed or dirty bit the processor sets in an entry while Protect, a
// split or Coalesce rewrites that entry can be lost, so dirty tracking must
// stop guest access to a range (and invalidate) before it relies on them.
//
// Nothing here invalidates TLBs or paging-structure caches. After Unmap,
// Protect or Coalesce the caller invalidates the guest's cached
// translations (INVEPT for EPT; a TLB_CONTROL flush or new ASID for NPT)
// before relying on the change. Map only fills non-present entries and needs
// none. Table pages freed by Unmap, Coalesce and Destroy go straight back to
// the Allocator, so it must not hand them out again before that
// invalidation if a processor might still walk them.
//
// No operation allocates Go heap memory (table pages come from the
// Allocator) except to build the error it returns; Mappings and Ranges
// allocate nothing beyond what their fn does.
package ept

import (
	"errors"
	"fmt"
)

// Format selects an entry layout.
type Format int

const (
	// NPT is AMD's nested paging: long-mode page-table entries.
	NPT Format = iota + 1
	// EPT is Intel's extended page tables.
	EPT
)

func (f Format) String() string {
	switch f {
	case NPT:
		return "NPT"
	case EPT:
		return "EPT"
	}
	return fmt.Sprintf("Format(%d)", int(f))
}

// Allocator gives a Table its table pages and a way to reach them.
type Allocator interface {
	// AllocPage returns the host-physical address of a free 4 KiB page.
	// Its contents are undefined: the Table zeroes it.
	AllocPage() (hpa uint64, err error)
	// FreePage returns a page AllocPage gave out.
	FreePage(hpa uint64)
	// Page is the page at hpa as a table of 512 entries (in the image, a
	// pointer into the physical map). It must be non-nil for every page
	// AllocPage gave out and FreePage has not taken back; New and Map
	// check that when they get a page.
	Page(hpa uint64) *[512]uint64
}

// Page sizes.
const (
	Size4K uint64 = 1 << 12
	Size2M uint64 = 1 << 21
	Size1G uint64 = 1 << 30
)

// GPASpace is the size of the guest-physical address space a 4-level table
// covers: every GPA must be below it.
const GPASpace uint64 = 1 << 48

// hpaSpace bounds host-physical addresses: entries hold bits 51:12
// (MAXPHYADDR is at most 52).
const hpaSpace uint64 = 1 << 52

// Errors. Operations wrap them with the operation and its arguments.
var (
	// ErrAlign: an address or size is not a multiple of 4 KiB.
	ErrAlign = errors.New("ept: not 4 KiB aligned")
	// ErrRange: an empty range, or one reaching beyond the 48-bit GPA
	// space or the 52-bit HPA space.
	ErrRange = errors.New("ept: address range out of bounds")
	// ErrOverlap: Map found part of its range already mapped.
	ErrOverlap = errors.New("ept: range already mapped")
	// ErrNotMapped: Protect found part of its range unmapped.
	ErrNotMapped = errors.New("ept: range not mapped")
	// ErrPerm: a permission set the format cannot express, or that is a
	// misconfiguration (EPT write without read).
	ErrPerm = errors.New("ept: invalid permissions")
	// ErrMemType: a memory type the format cannot express.
	ErrMemType = errors.New("ept: invalid memory type")
	// ErrOption: an Options field that does not apply.
	ErrOption = errors.New("ept: invalid option")
	// ErrFormat: an operation that exists only for the other format.
	ErrFormat = errors.New("ept: wrong table format")
	// ErrBadPage: the Allocator returned a page that cannot hold a table
	// (unaligned, beyond 52 bits, or not reachable through Page).
	ErrBadPage = errors.New("ept: allocator returned an unusable page")
	// ErrDestroyed: the Table has been destroyed.
	ErrDestroyed = errors.New("ept: table destroyed")
)

// Options adjust a Table. The zero value is the default.
type Options struct {
	// MaxPage is the largest page Map and Coalesce create: Size1G (the
	// default when zero), Size2M or Size4K. Not every processor has 1 GiB
	// pages (NPT: CPUID Fn8000_0001 EDX[26]; EPT: IA32_VMX_EPT_VPID_CAP
	// bit 17) or even 2 MiB EPT pages (IA32_VMX_EPT_VPID_CAP bit 16).
	// Splitting an existing large page is always possible.
	MaxPage uint64

	// IgnorePAT sets the ignore-PAT bit (6) in every EPT leaf, so a leaf's
	// memory type is used as is rather than combined with the guest's PAT.
	// EPT only.
	IgnorePAT bool

	// AccessedDirty sets EPTP bit 6, making the processor set the accessed
	// and dirty bits of EPT entries (IA32_VMX_EPT_VPID_CAP bit 21 says
	// whether it can). EPT only; NPT always maintains them.
	AccessedDirty bool

	// Levels is the depth of the tree: 4 (the default when zero; the
	// root is a PML4 and the table covers GPASpace) or 3 (the root is a
	// PDPT and the table covers 512 GiB, GPAs below 2^39). Three levels
	// exist for VT-d second-level tables on a unit whose CAP_REG.SAGAW
	// offers only a 39-bit guest address width (QEMU's intel-iommu);
	// neither processor format walks a 3-level table. EPTP refuses such a
	// table.
	Levels int
}

// Table is one GPA → HPA translation hierarchy.
type Table struct {
	f        Format
	a        Allocator
	root     uint64 // HPA of the PML4
	maxLevel int    // highest level Map and Coalesce put leaves at: 3, 2 or 1
	levels   int    // the root's level: 4 or 3
	ipat     bool
	ad       bool
	dead     bool
}

// New creates an empty table of format f whose pages come from a, with
// default Options.
func New(f Format, a Allocator) (*Table, error) {
	return NewOptions(f, a, Options{})
}

// NewOptions creates an empty table of format f whose pages come from a.
func NewOptions(f Format, a Allocator, o Options) (*Table, error) {
	if f != NPT && f != EPT {
		return nil, fmt.Errorf("ept: new table: format %v: %w", f, ErrFormat)
	}
	if a == nil {
		return nil, fmt.Errorf("ept: new %v table: nil allocator: %w", f, ErrOption)
	}
	t := &Table{f: f, a: a, ipat: o.IgnorePAT, ad: o.AccessedDirty}
	switch o.MaxPage {
	case 0, Size1G:
		t.maxLevel = 3
	case Size2M:
		t.maxLevel = 2
	case Size4K:
		t.maxLevel = 1
	default:
		return nil, fmt.Errorf("ept: new %v table: MaxPage %#x: %w", f, o.MaxPage, ErrOption)
	}
	switch o.Levels {
	case 0, 4:
		t.levels = 4
	case 3:
		t.levels = 3
	default:
		return nil, fmt.Errorf("ept: new %v table: Levels %d: %w", f, o.Levels, ErrOption)
	}
	if f == NPT && (o.IgnorePAT || o.AccessedDirty) {
		return nil, fmt.Errorf("ept: new NPT table: IgnorePAT and AccessedDirty are EPT options: %w", ErrOption)
	}
	root, err := t.alloc()
	if err != nil {
		return nil, fmt.Errorf("ept: new %v table: %w", f, err)
	}
	t.root = root
	return t, nil
}

// Format is the table's entry layout.
func (t *Table) Format() Format { return t.f }

// Root is the HPA of the PML4: the nCR3 value for NPT, and the address
// part of the EPTP for EPT.
func (t *Table) Root() uint64 { return t.root }

// EPTP field values (SDM Vol. 3C, "Extended-Page-Table Pointer (EPTP)").
const (
	eptpWB         = 6      // bits 2:0: memory type of paging-structure accesses
	eptpWalk4      = 3 << 3 // bits 5:3: page-walk length minus one
	eptpAccessDirt = 1 << 6 // bit 6: enable accessed and dirty flags
)

// MakeEPTP builds an EPT pointer: the PML4 at pml4 (bits 51:12), walked
// with write-back accesses (memory type 6 in bits 2:0), a 4-level walk
// (3 in bits 5:3) and, if accessedDirty, accessed/dirty flags (bit 6).
func MakeEPTP(pml4 uint64, accessedDirty bool) uint64 {
	v := pml4&addrMask | eptpWalk4 | eptpWB
	if accessedDirty {
		v |= eptpAccessDirt
	}
	return v
}

// EPTP is the value for the VMCS EPT-pointer field of an EPT table.
func (t *Table) EPTP() (uint64, error) {
	if t.f != EPT {
		return 0, fmt.Errorf("ept: EPTP of an %v table: %w", t.f, ErrFormat)
	}
	if t.levels != 4 {
		return 0, fmt.Errorf("ept: EPTP of a %d-level table: %w", t.levels, ErrOption)
	}
	return MakeEPTP(t.root, t.ad), nil
}

// Destroy frees every table page, the root included. The pages the table
// mapped belong to the caller and are untouched. The Table is unusable
// afterwards: operations return ErrDestroyed and Translate finds nothing.
// The caller must make sure no processor still uses the table (and
// invalidate cached translations) before its pages are reused.
func (t *Table) Destroy() {
	if t.dead {
		return
	}
	t.freeTree(t.root, t.levels)
	t.dead = true
	t.root = 0
}
