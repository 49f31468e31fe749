package amdvi

import (
	"encoding/binary"
	"fmt"

	"gohv/iommu"
)

// A Domain is an AMD-Vi domain for host (GPA = IOVA) translation: a
// DomainID, a 4-level I/O page table in the spec's format (2.2.3), and
// the device table entries of the devices attached to it.
//
// The I/O page table is not package ept's: its entries differ from both
// processor formats where the walk looks — a PDE names the level of the
// table it points at (Next Level, bits 11:9) instead of a page-size bit,
// a 2 MiB page is a level-2 entry with Next Level 0, and the permissions
// are IR and IW in bits 61 and 62 — so this file keeps its own small
// table: 4 KiB and 2 MiB pages, a 2 MiB page split when Unmap cuts it,
// tables freed when they empty.
//
// Attach writes the device's entry (V, TV, Mode 4 over the domain's root,
// IR and IW set, the DomainID), Detach writes the blocking entry back;
// both are followed by INVALIDATE_DEVTAB_ENTRY, INVALIDATE_IOMMU_PAGES
// for the domain (PDE set: directory entries too) and a COMPLETION_WAIT
// that is awaited. Unmap invalidates the one page it removed or the
// domain's every page; Map needs no invalidation (the unit caches no
// not-present entry, 2.2.6).
type Domain struct {
	u       *Unit
	id      uint16
	root    uint64
	live    map[uint64]bool // the table pages, root included
	devices map[uint16]bool
	onFault func(iommu.Fault)
	dead    bool
}

var (
	_ iommu.Domain  = (*Domain)(nil)
	_ iommu.Domains = (*Unit)(nil)
)

// ptSpace is the IOVA space of a 4-level table.
const ptSpace = 1 << 48

// Covers says whether the device is in the unit's device table.
func (u *Unit) Covers(source uint16) bool { return int(source) < u.DeviceTableEntries() }

// NewDomain makes an empty domain with the lowest free DomainID from 1
// (the blocking entries carry 0).
func (u *Unit) NewDomain() (iommu.Domain, error) {
	if u.devTab == 0 {
		return nil, fmt.Errorf("%s: new domain: BlockAll has not run", u.Name())
	}
	if u.dids == nil {
		u.dids, u.attached = map[uint16]bool{}, map[uint16]*Domain{}
	}
	d := &Domain{u: u, live: map[uint64]bool{}, devices: map[uint16]bool{}}
	for id := 1; id <= 0xffff; id++ {
		if !u.dids[uint16(id)] {
			d.id = uint16(id)
			break
		}
	}
	if d.id == 0 {
		return nil, fmt.Errorf("%s: new domain: %w", u.Name(), iommu.ErrNoDomainID)
	}
	root, err := d.alloc()
	if err != nil {
		return nil, fmt.Errorf("%s: new domain %d: page-table root: %w", u.Name(), d.id, err)
	}
	d.root = root
	d.flush()
	u.dids[d.id] = true
	return d, nil
}

func (d *Domain) alloc() (uint64, error) {
	pa, err := d.u.pages.AllocPages(1)
	if err != nil {
		return 0, err
	}
	if pa&0xfff != 0 {
		return 0, fmt.Errorf("page %#x is not 4 KiB aligned", pa)
	}
	clear(d.u.pages.Page(pa)[:])
	d.live[pa] = true
	return pa, nil
}

func (d *Domain) free(pa uint64) {
	delete(d.live, pa)
	d.u.pages.FreePage(pa)
}

// ID is the DomainID.
func (d *Domain) ID() uint16 { return d.id }

func (d *Domain) name() string { return fmt.Sprintf("%s domain %d", d.u.Name(), d.id) }

// OnFault sets the callback for faults of the domain's devices.
func (d *Domain) OnFault(fn func(iommu.Fault)) { d.onFault = fn }

func (d *Domain) usable() error {
	if d.dead {
		return fmt.Errorf("%s: %w", d.name(), iommu.ErrDestroyed)
	}
	return nil
}

// Attach points the device's table entry at the domain.
func (d *Domain) Attach(source uint16) error {
	u := d.u
	if err := d.usable(); err != nil {
		return err
	}
	if !u.Covers(source) {
		return fmt.Errorf("%s: attach %s: beyond the %d-entry device table: %w", d.name(), sourceString(source), u.DeviceTableEntries(), iommu.ErrOutside)
	}
	if o := u.attached[source]; o != nil {
		return fmt.Errorf("%s: attach %s: in domain %d: %w", d.name(), sourceString(source), o.id, iommu.ErrAttached)
	}
	q0 := uint64(DTE_V|DTE_TV|ptLevels<<DTE_ModeShift|DTE_IR|DTE_IW) | d.root&DTE_PtRoot
	u.writeDTE(source, q0, uint64(d.id))
	if err := d.invalidateDevice(source); err != nil {
		u.writeDTE(source, u.blockingDTE(), 0)
		return fmt.Errorf("attach %s: %w", sourceString(source), err)
	}
	u.attached[source] = d
	d.devices[source] = true
	u.router.Set(source, &d.onFault)
	return nil
}

// Detach writes the blocking entry back.
func (d *Domain) Detach(source uint16) error {
	u := d.u
	if err := d.usable(); err != nil {
		return err
	}
	if !d.devices[source] {
		return fmt.Errorf("%s: detach %s: %w", d.name(), sourceString(source), iommu.ErrNotAttached)
	}
	u.writeDTE(source, u.blockingDTE(), 0)
	delete(u.attached, source)
	delete(d.devices, source)
	u.router.Clear(source)
	if err := d.invalidateDevice(source); err != nil {
		return fmt.Errorf("detach %s: %w", sourceString(source), err)
	}
	return nil
}

// blockingDTE is the first qword of BlockAll's entries.
func (u *Unit) blockingDTE() uint64 {
	return uint64(DTE_V|DTE_TV|dteBlockMode<<DTE_ModeShift) | u.ptRoot&DTE_PtRoot
}

// writeDTE writes a device table entry's first two qwords and its
// interrupt qword (intremap.go; the fourth stays zero), the others before
// the first that makes it translate.
func (u *Unit) writeDTE(id uint16, q0, q1 uint64) {
	pa := u.devTab + uint64(id)*DTESize
	pg := u.pages.Page(pa &^ 0xfff)
	off := pa & 0xfff
	binary.LittleEndian.PutUint64(pg[off+8:], q1)
	binary.LittleEndian.PutUint64(pg[off+16:], u.intDTE(id))
	binary.LittleEndian.PutUint64(pg[off:], q0)
	u.flush(pa &^ 0xfff)
}

// invalidateDevice drops what the unit cached of the device's table entry
// and of the domain's pages, and waits for completion.
func (d *Domain) invalidateDevice(source uint16) error {
	if err := d.u.submit("INVALIDATE_DEVTAB_ENTRY", CMD_INVALIDATE_DEVTAB<<CmdOpShift|uint64(source), 0); err != nil {
		return err
	}
	return d.invalidatePages(0, 0)
}

// invalidatePages drops the domain's cached translations — the one page
// at iova when size is 4 KiB, else every page — with its directory
// entries, and waits for completion.
func (d *Domain) invalidatePages(iova, size uint64) error {
	hi := uint64(INVALIDATE_ALL_PAGES | InvPages_S | InvPages_PDE)
	if size == iommu.Size4K {
		hi = iova&PTE_Addr | InvPages_PDE
	}
	if err := d.u.submit("INVALIDATE_IOMMU_PAGES", CMD_INVALIDATE_IOMMU_PAGE<<CmdOpShift|uint64(d.id)<<InvPages_DomainShift, hi); err != nil {
		return err
	}
	return d.u.completionWait()
}

func ptShift(level int) uint             { return 12 + 9*uint(level-1) }
func ptIndex(iova uint64, level int) int { return int(iova >> ptShift(level) & (ptEntries - 1)) }

func (d *Domain) table(pa uint64) *[4096]byte { return d.u.pages.Page(pa) }

func entry(tbl *[4096]byte, i int) uint64 { return binary.LittleEndian.Uint64(tbl[i*8:]) }

func setEntry(tbl *[4096]byte, i int, v uint64) { binary.LittleEndian.PutUint64(tbl[i*8:], v) }

// isLeaf: a present entry at level that maps a page.
func isLeaf(e uint64, level int) bool { return level == 1 || e&PTE_NextLevel == 0 }

// Map maps [iova, iova+size) to host pages (see iommu.Domain). On an
// allocation failure it removes what it added.
func (d *Domain) Map(iova, hpa, size uint64, perm iommu.Perm) error {
	if err := d.usable(); err != nil {
		return err
	}
	if err := iommu.CheckMap(iova, hpa, size, perm, ptSpace); err != nil {
		return fmt.Errorf("%s: map: %w", d.name(), err)
	}
	if a, ok := d.firstMapped(iova, iova+size); ok {
		return fmt.Errorf("%s: map iova %#x size %#x: %#x is mapped already", d.name(), iova, size, a)
	}
	bits := uint64(PTE_PR | PTE_IR)
	if perm&iommu.Write != 0 {
		bits |= PTE_IW
	}
	for a := iova; a < iova+size; {
		h := hpa + (a - iova)
		level := 1
		if a%iommu.Size2M == 0 && h%iommu.Size2M == 0 && iova+size-a >= iommu.Size2M {
			level = 2
		}
		if err := d.install(a, h&PTE_Addr|bits, level); err != nil {
			if a > iova {
				d.unmapIn(d.root, ptLevels, iova, a)
			}
			d.flush()
			return fmt.Errorf("%s: map iova %#x size %#x: at %#x: %w", d.name(), iova, size, a, err)
		}
		a += 1 << ptShift(level)
	}
	d.flush()
	return nil
}

// firstMapped finds the first mapped IOVA in [lo, hi), skipping the
// span of every entry that is not present.
func (d *Domain) firstMapped(lo, hi uint64) (uint64, bool) {
	for a := lo; a < hi; {
		tbl := d.table(d.root)
		for level := ptLevels; ; level-- {
			e := entry(tbl, ptIndex(a, level))
			if e&PTE_PR == 0 {
				span := uint64(1) << ptShift(level)
				a = a&^(span-1) + span
				break
			}
			if isLeaf(e, level) {
				return a, true
			}
			tbl = d.table(e & PTE_Addr)
		}
	}
	return 0, false
}

// install writes leaf e at level for iova, creating the directories above.
func (d *Domain) install(iova, e uint64, level int) error {
	tbl := d.table(d.root)
	for l := ptLevels; l > level; l-- {
		i := ptIndex(iova, l)
		pde := entry(tbl, i)
		if pde&PTE_PR == 0 {
			pa, err := d.alloc()
			if err != nil {
				return err
			}
			pde = pa | uint64(l-1)<<PTE_NextShift | PTE_PR | PTE_IR | PTE_IW
			setEntry(tbl, i, pde)
		}
		tbl = d.table(pde & PTE_Addr)
	}
	setEntry(tbl, ptIndex(iova, level), e)
	return nil
}

// Unmap removes the mappings in [iova, iova+size) and invalidates them.
func (d *Domain) Unmap(iova, size uint64) error {
	if err := d.usable(); err != nil {
		return err
	}
	if err := iommu.CheckMap(iova, 0, size, iommu.Read, ptSpace); err != nil {
		return fmt.Errorf("%s: unmap: %w", d.name(), err)
	}
	// A 2 MiB page across either edge is split: its table page first.
	var spare [2]uint64
	n := 0
	for i, a := range [2]uint64{iova, iova + size} {
		if i == 1 && a&^(iommu.Size2M-1) == iova&^(iommu.Size2M-1) && n == 1 {
			break // both edges in one 2 MiB page: one split
		}
		if _, _, ps, ok := d.Translate(a); ok && ps == iommu.Size2M && a%iommu.Size2M != 0 {
			pa, err := d.alloc()
			if err != nil {
				for _, p := range spare[:n] {
					d.free(p)
				}
				return fmt.Errorf("%s: unmap iova %#x size %#x: split: %w", d.name(), iova, size, err)
			}
			spare[n] = pa
			n++
		}
	}
	for _, a := range [2]uint64{iova, iova + size} {
		if _, _, ps, ok := d.Translate(a); ok && ps == iommu.Size2M && a%iommu.Size2M != 0 {
			n--
			d.split(a, spare[n])
		}
	}
	d.unmapIn(d.root, ptLevels, iova, iova+size)
	d.flush()
	return d.invalidatePages(iova, size)
}

// split replaces the 2 MiB leaf holding iova by the table page pa of 512
// 4 KiB leaves with its permissions.
func (d *Domain) split(iova, pa uint64) {
	tbl := d.table(d.root)
	for l := ptLevels; l > 2; l-- {
		tbl = d.table(entry(tbl, ptIndex(iova, l)) & PTE_Addr)
	}
	i := ptIndex(iova, 2)
	e := entry(tbl, i)
	child := d.table(pa)
	for j := range ptEntries {
		setEntry(child, j, e+uint64(j)<<12)
	}
	setEntry(tbl, i, pa|1<<PTE_NextShift|PTE_PR|PTE_IR|PTE_IW)
}

// unmapIn clears every leaf in [lo, hi) — which no 2 MiB page straddles —
// in the table at pa at level, freeing the tables it empties; it reports
// whether the table is empty afterwards.
func (d *Domain) unmapIn(pa uint64, level int, lo, hi uint64) bool {
	tbl := d.table(pa)
	span := uint64(1) << ptShift(level)
	for a := lo; a < hi; {
		next := a&^(span-1) + span
		i := ptIndex(a, level)
		e := entry(tbl, i)
		if e&PTE_PR != 0 {
			if isLeaf(e, level) {
				setEntry(tbl, i, 0)
			} else if d.unmapIn(e&PTE_Addr, level-1, a, min(hi, next)) {
				setEntry(tbl, i, 0)
				d.free(e & PTE_Addr)
			}
		}
		a = next
	}
	for i := range ptEntries {
		if entry(tbl, i) != 0 {
			return false
		}
	}
	return true
}

// Translate walks the domain's I/O page table.
func (d *Domain) Translate(iova uint64) (uint64, iommu.Perm, uint64, bool) {
	if d.dead || iova >= ptSpace {
		return 0, 0, 0, false
	}
	tbl := d.table(d.root)
	for level := ptLevels; level >= 1; level-- {
		e := entry(tbl, ptIndex(iova, level))
		if e&PTE_PR == 0 {
			return 0, 0, 0, false
		}
		if isLeaf(e, level) {
			size := uint64(1) << ptShift(level)
			var p iommu.Perm
			if e&PTE_IR != 0 {
				p |= iommu.Read
			}
			if e&PTE_IW != 0 {
				p |= iommu.Write
			}
			return e&PTE_Addr&^(size-1) + iova&(size-1), p, size, true
		}
		tbl = d.table(e & PTE_Addr)
	}
	return 0, 0, 0, false
}

// Destroy detaches every device and frees the tables and the DomainID.
func (d *Domain) Destroy() error {
	if d.dead {
		return nil
	}
	for s := range d.devices {
		if err := d.Detach(s); err != nil {
			return err
		}
	}
	d.unmapIn(d.root, ptLevels, 0, ptSpace)
	d.free(d.root)
	delete(d.u.dids, d.id)
	d.dead = true
	return nil
}

// flush writes the table pages back for a unit that does not snoop.
func (d *Domain) flush() {
	if d.u.Coherent {
		return
	}
	for pa := range d.live {
		d.u.pages.Flush(pa)
	}
}

func sourceString(s uint16) string { return iommu.Fault{Source: s}.SourceString() }
