package passthrough

import (
	"encoding/binary"
	"fmt"

	"gohv/iommu"
)

// MSI-X delivery to the partition. The MSI-X table lives in one of the
// function's memory BARs, which the guest otherwise reaches directly; so
// the pages holding the table are left out of the BAR's mapping in the
// partition and trapped instead (Guest's AddMMIO, before the partition
// starts): the guest's table is virtual (tableTrap), and the host's is
// the root's, reached through Function.BARMemory. RouteMSIX programs
// each host entry with an interrupt remapping entry's message — one host
// vector per table entry, so the root knows which entry fired — and
// InterruptMSIX sends the guest's own entry, as its virtual table holds
// it, into the partition: held while the guest masks the entry or the
// whole function, dropped while its MSI-X is off.
//
// The host function's mode follows the guest's: its MSI-X Enable is set
// only while the guest's is (and then its MSI is off, the two being
// exclusive, PCI Local Bus 3.0 6.8.2), its MSI is on otherwise (when
// routed), and its Function Mask and entry masks stay the root's (clear
// for the routed entries, set for the rest), the guest's being virtual.
//
// What the guest cannot do: reach the host's table (its pages are not
// mapped; an access to them is the virtual table's), move the trapped
// BAR (a relocation needs a trap at the new place, which cannot be added
// while the partition runs: the write is refused), or name a message
// the partition's sink refuses (counted in MSIStats.Invalid). The Pending
// Bit Array is the host's (not trapped unless it shares the table's
// pages, where it reads as the host's too): it shows the host's entries,
// which are never masked, not the guest's pending bits.

// MSI-X capability and table layout (PCI Local Bus 3.0 6.8.2): Message
// Control at +2 (table size N-1 in bits 10:0), Table Offset/BIR at +4
// (BIR in bits 2:0, an 8-byte aligned offset above), PBA Offset/BIR at
// +8; each table entry is 16 bytes: Message Address, Message Upper
// Address, Message Data, Vector Control (bit 0 Mask).
const (
	msixTableOffBIR = 4
	msixTableSize   = 0x7ff
	msixBIRMask     = 7
	msixEntryLen    = 16
	msixEntryAddrLo = 0
	msixEntryAddrHi = 4
	msixEntryData   = 8
	msixEntryCtrl   = 12
	msixEntryMasked = 1 << 0
	pageSize        = 4096

	// MaxMSIXEntries bounds the table entries routed (each costs a host
	// vector and a remapping entry); the guest's Message Control reads a
	// table of at most this many.
	MaxMSIXEntries = 8
)

// Memory is a host memory BAR's registers, as the root reaches them: a
// dword at a time, off 4-byte aligned and below the BAR's size.
type Memory interface {
	Read32(off uint64) uint32
	Write32(off uint64, v uint32)
}

// MMIODevice is emulated guest MMIO (hv.MMIODevice's methods): off is
// from the range's base, data the access's bytes.
type MMIODevice interface {
	ReadMMIO(off uint64, data []byte)
	WriteMMIO(off uint64, data []byte)
}

// MMIOGuest is a Guest that can trap a range of its guest-physical space
// to an MMIODevice before it starts; *hv.Partition's AddMMIO is this.
// Without it (or without Function.BARMemory) MSI-X is not routed.
type MMIOGuest interface {
	AddMMIO(gpa, size uint64, dev MMIODevice) error
}

// msixTable is the function's MSI-X table: where it lives in its BAR,
// the guest's virtual copy, and the routing.
type msixTable struct {
	bir       int
	off       uint64 // the table's offset in its BAR
	size      int    // the host's entries
	trapOff   uint64 // the trapped pages' offset in the BAR and length
	trapLen   uint64
	host      Memory // the BAR holding the host's table; nil: not trapped
	entries   []byte // the guest's table, size×16 bytes
	pending   uint64 // routed entries that fired while the guest masked them
	ins       []iommu.Interrupt
	sink      MSISink
	remap     iommu.Remapper
	hostMSIX  bool // the host's MSI-X Enable as the root last wrote it
	routedMSI bool // the host's MSI is the root's to turn on (RouteMSI)
}

// parseMSIX reads the capability at ptr (Message Control v>>16) and the
// table's place; the table is usable when it lies inside a memory BAR.
func (d *Device) parseMSIX(ptr uint8, v uint32) {
	size := int(v>>16&msixTableSize) + 1
	loc := d.Config.Read32(uint16(ptr) + msixTableOffBIR)
	t := &msixTable{bir: int(loc & msixBIRMask), off: uint64(loc &^ msixBIRMask), size: size}
	for i := range d.BARs {
		b := &d.BARs[i]
		if b.Index == t.bir && !b.IO && t.off+uint64(size)*msixEntryLen <= b.Size {
			t.trapOff = t.off &^ (pageSize - 1)
			t.trapLen = (t.off+uint64(size)*msixEntryLen+pageSize-1)&^(pageSize-1) - t.trapOff
			d.msixT = t
		}
	}
}

// trapMSIX maps BAR b at gpa in g around the table's pages and traps
// those; false when it cannot (then the caller maps the whole BAR).
func (d *Device) trapMSIX(g Guest, b *BAR, gpa uint64) (bool, error) {
	t := d.msixT
	mg, ok := g.(MMIOGuest)
	if t == nil || t.bir != b.Index || !ok || d.BARMemory == nil {
		return false, nil
	}
	host, err := d.BARMemory(*b)
	if err != nil {
		return false, nil // MSI-X stays unrouted (hidden)
	}
	if t.trapOff > 0 {
		if err := g.MapDevice(gpa, b.Base, t.trapOff); err != nil {
			return true, err
		}
	}
	if end := t.trapOff + t.trapLen; end < b.Size {
		if err := g.MapDevice(gpa+end, b.Base+end, b.Size-end); err != nil {
			return true, err
		}
	}
	if err := mg.AddMMIO(gpa+t.trapOff, t.trapLen, tableTrap{d}); err != nil {
		return true, err
	}
	t.host = host
	t.entries = make([]byte, t.size*msixEntryLen)
	for i := range t.size { // entries reset masked (6.8.2.9)
		t.entries[i*msixEntryLen+msixEntryCtrl] = msixEntryMasked
	}
	return true, nil
}

// MSIXEntries is how many MSI-X table entries RouteMSIX routes: the
// host table's size up to MaxMSIXEntries, or 0 when the table could not
// be trapped (no MSI-X, a table outside a memory BAR, a Guest without
// AddMMIO, a Function without BARMemory).
func (d *Device) MSIXEntries() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.msixT == nil || d.msixT.host == nil {
		return 0
	}
	return min(d.msixT.size, MaxMSIXEntries)
}

// RouteMSIX programs host table entry i with ins[i]'s message (remapping
// entries of unit r for this function, each allocated to a host vector
// the caller serves, len(ins) == MSIXEntries()), masks the host's other
// entries, and shows the guest its MSI-X capability with a table of
// len(ins) entries; from then on InterruptMSIX(i) delivers the guest's
// entry i. The host's MSI-X is enabled only while the guest's is.
// Release disables it and frees ins.
func (d *Device) RouteMSIX(r iommu.Remapper, ins []iommu.Interrupt, sink MSISink) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	t := d.msixT
	switch {
	case d.released:
		return fmt.Errorf("passthrough: %s: route MSI-X: released", d.Name)
	case t == nil || t.host == nil:
		return fmt.Errorf("passthrough: %s: route MSI-X: no trapped MSI-X table", d.Name)
	case t.ins != nil:
		return fmt.Errorf("passthrough: %s: route MSI-X: routed already", d.Name)
	case len(ins) == 0 || len(ins) != min(t.size, MaxMSIXEntries):
		return fmt.Errorf("passthrough: %s: route MSI-X: %d entries for a table of %d", d.Name, len(ins), t.size)
	}
	for _, in := range ins {
		if in.Source != d.Source {
			return fmt.Errorf("passthrough: %s: route MSI-X: entry %d is %s's", d.Name, in.Index, iommu.Fault{Source: in.Source}.SourceString())
		}
	}
	// The host's MSI-X off while its table changes.
	off := uint16(d.msix.off)
	ctl := d.Config.Read32(off)
	d.Config.Write32(off, ctl&^((msixEnable|msixMask)<<16))
	for i := range t.size {
		e := t.off + uint64(i)*msixEntryLen
		if i < len(ins) {
			t.host.Write32(e+msixEntryCtrl, msixEntryMasked)
			t.host.Write32(e+msixEntryAddrLo, uint32(ins[i].Address))
			t.host.Write32(e+msixEntryAddrHi, uint32(ins[i].Address>>32))
			t.host.Write32(e+msixEntryData, ins[i].Data)
			t.host.Write32(e+msixEntryCtrl, 0)
		} else {
			t.host.Write32(e+msixEntryCtrl, msixEntryMasked)
		}
	}
	t.ins, t.sink, t.remap = append([]iommu.Interrupt(nil), ins...), sink, r
	// The guest's table size is what is routed.
	mc := uint16(d.msix.bytes[2]) | uint16(d.msix.bytes[3])<<8
	mc = mc&^msixTableSize | uint16(len(ins)-1)
	d.msix.bytes[2], d.msix.bytes[3] = uint8(mc), uint8(mc>>8)
	d.syncHostModeLocked()
	return nil
}

// guestMSIX is the guest's MSI-X Message Control: enabled, function
// masked.
func (d *Device) guestMSIX() (enabled, masked bool) {
	mc := uint16(d.msix.bytes[2]) | uint16(d.msix.bytes[3])<<8
	return mc&msixEnable != 0, mc&msixMask != 0
}

// syncHostModeLocked sets the host's MSI and MSI-X enables from the
// guest's: MSI-X while the guest has it enabled and it is routed, else
// MSI where RouteMSI routed it. One is turned off before the other on.
func (d *Device) syncHostModeLocked() {
	t := d.msixT
	if t == nil || t.ins == nil {
		return
	}
	msix, _ := d.guestMSIX()
	if msix == t.hostMSIX {
		return
	}
	xoff, moff := uint16(d.msix.off), uint16(d.msi.off)
	setMSI := func(on bool) {
		if d.route == nil || d.msi.len == 0 {
			return
		}
		v := d.Config.Read32(moff)
		if on {
			d.Config.Write32(moff, v|msiEnable<<16)
		} else {
			d.Config.Write32(moff, v&^(msiEnable<<16))
		}
	}
	v := d.Config.Read32(xoff) &^ ((msixEnable | msixMask) << 16)
	if msix {
		setMSI(false)
		d.Config.Write32(xoff, v|msixEnable<<16)
	} else {
		d.Config.Write32(xoff, v)
		setMSI(true)
	}
	t.hostMSIX = msix
}

// entry is the guest's table entry i: its message and mask bit.
func (t *msixTable) entry(i int) (addr uint64, data uint32, masked bool) {
	e := t.entries[i*msixEntryLen:]
	addr = uint64(binary.LittleEndian.Uint32(e[msixEntryAddrLo:])) | uint64(binary.LittleEndian.Uint32(e[msixEntryAddrHi:]))<<32
	return addr, binary.LittleEndian.Uint32(e[msixEntryData:]), e[msixEntryCtrl]&msixEntryMasked != 0
}

// InterruptMSIX tells the device its routed host vector for table entry
// i fired: the guest's entry i is sent into the partition if the guest
// enabled MSI-X and masks neither the function nor the entry; a masked
// one is held until unmasked; with MSI-X off it is dropped. The error is
// the sink's refusal of the guest's message.
func (d *Device) InterruptMSIX(i int) error {
	d.mu.Lock()
	t := d.msixT
	if d.released || t == nil || t.ins == nil || i < 0 || i >= len(t.ins) {
		d.mu.Unlock()
		return nil
	}
	enabled, fmask := d.guestMSIX()
	addr, data, masked := t.entry(i)
	switch {
	case !enabled:
		d.msiStats.Disabled++
		d.mu.Unlock()
		return nil
	case fmask || masked:
		t.pending |= 1 << i
		d.msiStats.Pending++
		d.mu.Unlock()
		return nil
	}
	d.mu.Unlock()
	return d.deliverTo(t.sink, addr, data)
}

// msixReleased is what the guest's last write unmasked: up to
// MaxMSIXEntries messages held while masked, in a fixed array so the
// exit that made the write allocates nothing.
type msixReleased struct {
	n    int
	msgs [MaxMSIXEntries]struct {
		addr uint64
		data uint32
	}
}

// msixUnmaskedLocked collects the held interrupts the guest's state now
// lets through and clears them.
func (d *Device) msixUnmaskedLocked(out *msixReleased) {
	t := d.msixT
	if t == nil || t.ins == nil || t.pending == 0 {
		return
	}
	enabled, fmask := d.guestMSIX()
	if !enabled || fmask {
		return
	}
	for i := range t.ins {
		if t.pending&(1<<i) == 0 {
			continue
		}
		if addr, data, masked := t.entry(i); !masked {
			t.pending &^= 1 << i
			out.msgs[out.n].addr, out.msgs[out.n].data = addr, data
			out.n++
		}
	}
}

func (d *Device) sendReleased(r *msixReleased) {
	for i := range r.n {
		d.deliverTo(d.msixT.sink, r.msgs[i].addr, r.msgs[i].data) // a refusal is counted in MSIStats.Invalid
	}
}

// unrouteMSIXLocked disables the host's MSI-X, masks its routed entries
// and frees their remapping entries.
func (d *Device) unrouteMSIXLocked() error {
	t := d.msixT
	if t == nil || t.ins == nil {
		return nil
	}
	off := uint16(d.msix.off)
	d.Config.Write32(off, d.Config.Read32(off)&^(msixEnable<<16))
	var err error
	for i, in := range t.ins {
		t.host.Write32(t.off+uint64(i)*msixEntryLen+msixEntryCtrl, msixEntryMasked)
		if e := t.remap.FreeInterrupt(in); e != nil && err == nil {
			err = e
		}
	}
	t.ins = nil
	return err
}

// tableTrap is the trapped pages of the BAR holding the MSI-X table.
// off and data are guest-controlled (hv bounds off to the range and data
// to 1-8 bytes; both are checked again here).
type tableTrap struct{ d *Device }

// ReadMMIO reads the guest's table where the access lies inside it; the
// rest of the trapped pages (registers sharing the table's page, the PBA)
// reads as the host's, by aligned dwords and qwords; anything else reads
// all ones.
func (tt tableTrap) ReadMMIO(off uint64, data []byte) {
	d := tt.d
	d.mu.Lock()
	defer d.mu.Unlock()
	t := d.msixT
	n := uint64(len(data))
	bar := t.trapOff + off
	switch {
	case d.released || off >= t.trapLen || n > t.trapLen-off:
		fill(data)
	case bar >= t.off && bar+n <= t.off+uint64(len(t.entries)):
		copy(data, t.entries[bar-t.off:])
	case bar+n <= t.off || bar >= t.off+uint64(len(t.entries)):
		if (n != 4 && n != 8) || bar%n != 0 {
			fill(data)
			return
		}
		for i := uint64(0); i < n; i += 4 {
			binary.LittleEndian.PutUint32(data[i:], t.host.Read32(bar+i))
		}
	default: // straddles the table's edge
		fill(data)
	}
}

// WriteMMIO writes the guest's table where the access lies inside it
// (Vector Control keeps only its Mask bit) and sends what an unmask
// released; aligned dword and qword writes to the rest of the trapped
// pages reach the host's registers there, others are dropped.
func (tt tableTrap) WriteMMIO(off uint64, data []byte) {
	d := tt.d
	var rel msixReleased
	d.mu.Lock()
	t := d.msixT
	n := uint64(len(data))
	bar := t.trapOff + off
	switch {
	case d.released || off >= t.trapLen || n > t.trapLen-off:
	case bar >= t.off && bar+n <= t.off+uint64(len(t.entries)):
		copy(t.entries[bar-t.off:], data)
		first, last := (bar-t.off)/msixEntryLen, (bar-t.off+n-1)/msixEntryLen
		for i := first; i <= last; i++ {
			c := t.entries[i*msixEntryLen+msixEntryCtrl:][:4]
			c[0] &= msixEntryMasked
			c[1], c[2], c[3] = 0, 0, 0
		}
		d.msixUnmaskedLocked(&rel)
	case bar+n <= t.off || bar >= t.off+uint64(len(t.entries)):
		if (n == 4 || n == 8) && bar%n == 0 {
			for i := uint64(0); i < n; i += 4 {
				t.host.Write32(bar+i, binary.LittleEndian.Uint32(data[i:]))
			}
		}
	}
	d.mu.Unlock()
	d.sendReleased(&rel)
}

func fill(data []byte) {
	for i := range data {
		data[i] = 0xff
	}
}
