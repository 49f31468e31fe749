package vtd

import (
	"encoding/binary"
	"fmt"
	"math/bits"

	"gohv/ept"
	"gohv/iommu"
)

// A Domain is a VT-d domain in legacy translation mode: a domain ID, a
// second-level page table, and the context entries of the devices
// attached to it (VT-d 3.4, 9.3).
//
// The second-level table is package ept's EPT-format table: VT-d's
// second-level paging entries (9.8) have EPT's layout where it matters —
// Read bit 0, Write bit 1, the page-size bit 7 marking a 2 MiB or 1 GiB
// leaf, the address in bits 51:12, the levels indexed by the same nine
// address bits — so ept's map, unmap, split and all-or-nothing rollback
// are used as they are, over the unit's pages. Where the formats differ:
//
//   - Depth: the context entry's Address Width picks 3 levels (39 bits)
//     or 4 (48), whichever CAP_REG.SAGAW offers (QEMU's unit: only 3);
//     ept builds a 3-level table for the first (Options.Levels), whose
//     root is a PDPT. EPT is always 4 levels.
//   - Bits EPT leaves carry that VT-d legacy mode ignores: the memory
//     type in 5:3 (EMT) and ignore-PAT in bit 6 are used only in
//     scalable mode (9.8), and the execute bits of non-leaf entries (2,
//     10) are ignored without execute-request support. Leaves here never
//     have execute. Snoop (bit 11) is never set: the unit's snoop
//     behaviour is its default.
//   - Write without read: EPT refuses it (a misconfiguration), VT-d
//     allows it; iommu.Domain refuses it for both vendors.
//   - Accessed and dirty bits (8, 9) are not written by a legacy-mode
//     unit; ept carries them over and never compares them.
//   - Page walks are not coherent with the CPU's caches on a unit with
//     ECAP_REG.C clear (QEMU's): every table page is written back after
//     a change (a domain holds a few pages: the partition's RAM in 2 MiB
//     pages where the host pages allow).
//
// Invalidation goes through the invalidation queue once BlockAll enabled
// it (queue.go; units with ECAP_REG.QI, QEMU's among them), else through
// the registers: a context entry change is followed by
// a device-selective context-cache invalidation and a domain-selective
// IOTLB invalidation (6.5.3.3); Unmap by a page-selective IOTLB
// invalidation where CAP_REG.PSI allows one for the range (a naturally
// aligned power of two of pages, at most 2^MAMV), else domain-selective;
// Map needs none on a unit without Caching Mode (not-present entries are
// not cached, 6.1) and a domain-selective one with it. Every queued
// request ends in an invalidation wait whose status write is awaited.
type Domain struct {
	u       *Unit
	id      uint16
	table   *ept.Table
	alloc   *tableAlloc
	space   uint64 // IOVAs below it: 2^39 or 2^48
	aw      uint64 // the context entries' Address Width
	devices map[uint16]bool
	onFault func(iommu.Fault)
	dead    bool
}

var (
	_ iommu.Domain  = (*Domain)(nil)
	_ iommu.Domains = (*Unit)(nil)
)

// tableAlloc gives ept the unit's pages and keeps the set it holds, to
// write them back for a unit that does not snoop.
type tableAlloc struct {
	p    Pages
	live map[uint64]bool
}

func (a *tableAlloc) AllocPage() (uint64, error) {
	pa, err := a.p.AllocPage()
	if err == nil {
		a.live[pa] = true
	}
	return pa, err
}

func (a *tableAlloc) FreePage(pa uint64) {
	delete(a.live, pa)
	a.p.FreePage(pa)
}

func (a *tableAlloc) Page(pa uint64) *[512]uint64 { return tableView(a.p.Page(pa)) }

// Covers says whether the unit's scope holds the device.
func (u *Unit) Covers(source uint16) bool { return u.Scope == nil || u.Scope(source) }

// NewDomain makes an empty domain with the lowest free domain ID (from
// 1: DID 0 is reserved under Caching Mode, 6.2.2). BlockAll must have
// run: the root table exists and translation is on.
func (u *Unit) NewDomain() (iommu.Domain, error) {
	if u.root == 0 {
		return nil, fmt.Errorf("%s: new domain: BlockAll has not run", u.Name())
	}
	d := &Domain{u: u, devices: map[uint16]bool{}}
	o := ept.Options{MaxPage: ept.Size4K}
	if u.Cap.Raw&capSLLPS2M != 0 {
		o.MaxPage = ept.Size2M
	}
	switch {
	case u.Cap.SAGAW&4 != 0:
		o.Levels, d.aw, d.space = 4, AW48, 1<<48
	case u.Cap.SAGAW&2 != 0:
		o.Levels, d.aw, d.space = 3, AW39, 1<<39
	default:
		return nil, fmt.Errorf("%s: new domain: SAGAW %#x offers neither a 3- nor a 4-level table", u.Name(), u.Cap.SAGAW)
	}
	if u.dids == nil {
		u.dids, u.attached, u.contexts = map[uint16]bool{}, map[uint16]*Domain{}, map[uint8]uint64{}
	}
	for id := uint32(1); id < u.Cap.Domains && id <= 0xffff; id++ {
		if !u.dids[uint16(id)] {
			d.id = uint16(id)
			break
		}
	}
	if d.id == 0 {
		return nil, fmt.Errorf("%s: new domain: %d domain IDs: %w", u.Name(), u.Cap.Domains, iommu.ErrNoDomainID)
	}
	d.alloc = &tableAlloc{p: u.pages, live: map[uint64]bool{}}
	t, err := ept.NewOptions(ept.EPT, d.alloc, o)
	if err != nil {
		return nil, fmt.Errorf("%s: new domain %d: %w", u.Name(), d.id, err)
	}
	d.table = t
	d.flush()
	u.dids[d.id] = true
	return d, nil
}

// ID is the domain ID (DID).
func (d *Domain) ID() uint16 { return d.id }

func (d *Domain) name() string { return fmt.Sprintf("%s domain %d", d.u.Name(), d.id) }

func (d *Domain) usable() error {
	if d.dead {
		return fmt.Errorf("%s: %w", d.name(), iommu.ErrDestroyed)
	}
	return nil
}

// OnFault sets the callback for faults of the domain's devices.
func (d *Domain) OnFault(fn func(iommu.Fault)) { d.onFault = fn }

// Attach writes the device's context entry — present, translation type
// 00b (untranslated requests through the second-level table), the
// table's root, its address width and the domain ID — creating its bus's
// context table and root entry on the first attach there, and
// invalidates the device's context-cache entries and the domain's IOTLB
// entries.
func (d *Domain) Attach(source uint16) error {
	u := d.u
	if err := d.usable(); err != nil {
		return err
	}
	if !u.Covers(source) {
		return fmt.Errorf("%s: attach %s: %w", d.name(), sourceString(source), iommu.ErrOutside)
	}
	if o := u.attached[source]; o != nil {
		return fmt.Errorf("%s: attach %s: in domain %d: %w", d.name(), sourceString(source), o.id, iommu.ErrAttached)
	}
	bus := uint8(source >> 8)
	ctx, newBus := u.contexts[bus]
	if !newBus {
		pa, err := u.pages.AllocPage()
		if err != nil {
			return fmt.Errorf("%s: attach %s: context table of bus %#x: %w", d.name(), sourceString(source), bus, err)
		}
		clear(u.pages.Page(pa)[:])
		u.flushPage(pa)
		root := u.pages.Page(u.root)
		binary.LittleEndian.PutUint64(root[int(bus)*rootEntrySize+8:], 0)
		binary.LittleEndian.PutUint64(root[int(bus)*rootEntrySize:], pa&RootEntry_CTP|RootEntry_P)
		u.flushPage(u.root)
		u.contexts[bus], ctx = pa, pa
	}
	e := u.pages.Page(ctx)[int(source&0xff)*contextEntrySize:]
	binary.LittleEndian.PutUint64(e[8:], d.aw|uint64(d.id)<<ContextEntry_DIDShift)
	binary.LittleEndian.PutUint64(e, d.table.Root()&ContextEntry_SLPT|ContextEntry_P) // TT 00b
	u.flushPage(ctx)
	if err := d.invalidateDevice(source, !newBus); err != nil {
		return fmt.Errorf("attach %s: %w", sourceString(source), err)
	}
	u.attached[source] = d
	d.devices[source] = true
	u.router.Set(source, &d.onFault)
	return nil
}

// Detach clears the device's context entry (requests then fault with
// reason 2h, context entry not present) and invalidates as Attach does.
func (d *Domain) Detach(source uint16) error {
	u := d.u
	if err := d.usable(); err != nil {
		return err
	}
	if !d.devices[source] {
		return fmt.Errorf("%s: detach %s: %w", d.name(), sourceString(source), iommu.ErrNotAttached)
	}
	ctx := u.contexts[uint8(source>>8)]
	e := u.pages.Page(ctx)[int(source&0xff)*contextEntrySize:]
	binary.LittleEndian.PutUint64(e, 0) // P first
	binary.LittleEndian.PutUint64(e[8:], 0)
	u.flushPage(ctx)
	delete(u.attached, source)
	delete(d.devices, source)
	u.router.Clear(source)
	if err := d.invalidateDevice(source, false); err != nil {
		return fmt.Errorf("detach %s: %w", sourceString(source), err)
	}
	return nil
}

// invalidateDevice drops what the unit cached of a device's context entry
// (device-selective, or global after a root entry was made present) and
// then the domain's IOTLB entries (6.5.3.3).
func (d *Domain) invalidateDevice(source uint16, global bool) error {
	cmd := uint64(CCMD_Device)<<CCMD_CIRG_Shift | uint64(source)<<CCMD_SID_Shift | uint64(d.id)
	if global {
		cmd = CCMD_Global << CCMD_CIRG_Shift
	}
	if d.u.Cap.RWBF {
		if err := d.u.command("write buffer flush", GCMD_WBF, GSTS_WBFS, 0); err != nil {
			return err
		}
	}
	what := fmt.Sprintf("context-cache invalidation for %s", sourceString(source))
	if d.u.queued() { // both descriptors, one wait
		return d.u.submitAndWait(what, contextDescriptor(cmd), iotlbDescriptor(uint64(IOTLB_Domain)<<IOTLB_IIRG_Shift|uint64(d.id)<<IOTLB_DID_Shift, 0))
	}
	if err := d.u.contextCommand(what, cmd); err != nil {
		return err
	}
	return d.invalidateIOTLB(0, 0)
}

// invalidateIOTLB drops the domain's IOTLB entries for [iova,
// iova+size): page-selective where the unit can do the range in one
// request, else (and for size 0) domain-selective.
func (d *Domain) invalidateIOTLB(iova, size uint64) error {
	u := d.u
	cmd := uint64(IOTLB_Domain)<<IOTLB_IIRG_Shift | uint64(d.id)<<IOTLB_DID_Shift
	var iva uint64
	if pages := size / iommu.Size4K; u.Cap.PSI && pages != 0 && pages&(pages-1) == 0 && iova%size == 0 {
		am := uint64(bits.TrailingZeros64(pages))
		if am <= u.Cap.Raw>>capMAMVShift&capMAMVMask {
			cmd = uint64(IOTLB_Page)<<IOTLB_IIRG_Shift | uint64(d.id)<<IOTLB_DID_Shift
			iva = iova | am
		}
	}
	return u.iotlbCommand(fmt.Sprintf("IOTLB invalidation for domain %d", d.id), cmd, iva)
}

// Map maps [iova, iova+size) to host pages (see iommu.Domain).
func (d *Domain) Map(iova, hpa, size uint64, perm iommu.Perm) error {
	if err := d.usable(); err != nil {
		return err
	}
	if err := iommu.CheckMap(iova, hpa, size, perm, d.space); err != nil {
		return fmt.Errorf("%s: map: %w", d.name(), err)
	}
	p := ept.Read
	if perm&iommu.Write != 0 {
		p |= ept.Write
	}
	if err := d.table.Map(iova, hpa, size, p, ept.WB); err != nil {
		return fmt.Errorf("%s: %w", d.name(), err)
	}
	d.flush()
	if d.u.Cap.RWBF {
		if err := d.u.command("write buffer flush", GCMD_WBF, GSTS_WBFS, 0); err != nil {
			return err
		}
	}
	if d.u.Cap.CM { // not-present entries may be cached (6.1)
		return d.invalidateIOTLB(iova, size)
	}
	return nil
}

// Unmap removes the mappings in [iova, iova+size) and invalidates them.
func (d *Domain) Unmap(iova, size uint64) error {
	if err := d.usable(); err != nil {
		return err
	}
	if err := iommu.CheckMap(iova, 0, size, iommu.Read, d.space); err != nil {
		return fmt.Errorf("%s: unmap: %w", d.name(), err)
	}
	if err := d.table.Unmap(iova, size); err != nil {
		return fmt.Errorf("%s: %w", d.name(), err)
	}
	d.flush()
	return d.invalidateIOTLB(iova, size)
}

// Translate walks the domain's second-level table.
func (d *Domain) Translate(iova uint64) (uint64, iommu.Perm, uint64, bool) {
	if d.dead {
		return 0, 0, 0, false
	}
	hpa, p, size, ok := d.table.Translate(iova)
	if !ok {
		return 0, 0, 0, false
	}
	perm := iommu.Read
	if p&ept.Write != 0 {
		perm |= iommu.Write
	}
	return hpa, perm, size, true
}

// Destroy detaches every device and frees the table and the domain ID.
func (d *Domain) Destroy() error {
	if d.dead {
		return nil
	}
	for s := range d.devices {
		if err := d.Detach(s); err != nil {
			return err
		}
	}
	d.table.Destroy()
	delete(d.u.dids, d.id)
	d.dead = true
	return nil
}

// flush writes the table pages back for a unit that does not snoop.
func (d *Domain) flush() {
	if d.u.ECap.C {
		return
	}
	for pa := range d.alloc.live {
		d.u.pages.Flush(pa)
	}
}

func (u *Unit) flushPage(pa uint64) {
	if !u.ECap.C {
		u.pages.Flush(pa)
	}
}

func sourceString(s uint16) string { return iommu.Fault{Source: s}.SourceString() }
