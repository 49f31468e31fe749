package passthrough

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"gohv/iommu"
)

// Config is one host function's configuration space, a dword at a time
// (off a multiple of 4 below 4096). The image binds metal/pci's ECAM or
// ports to the function's address; tests a fake.
type Config interface {
	Read32(off uint16) uint32
	Write32(off uint16, v uint32)
}

// BAR is one of the host function's base address registers as the root
// enumerated it.
type BAR struct {
	Index          int // 0-5: the register at 0x10 + 4*Index (a 64-bit BAR takes Index+1 too)
	Base, Size     uint64
	IO, Is64, Pref bool
}

// Function is the host function to assign.
type Function struct {
	Name   string // its address, bb:dd.f, for logs
	Source uint16 // its requester ID: bus<<8 | device<<3 | function
	Config Config
	BARs   []BAR
	// BARMemory, when set, gives the root a memory BAR's registers: the
	// host's MSI-X table is programmed through it (msix.go). Nil leaves
	// MSI-X unrouted.
	BARMemory func(b BAR) (Memory, error)
}

// Guest is what assignment needs of the partition's memory;
// *hv.GuestMemory has it.
type Guest interface {
	RAMHostRuns(fn func(gpa, hpa, size uint64))
	MapDevice(gpa, hpa, size uint64) error
}

// The guest-physical window assigned functions' memory BARs live in:
// below the interrupt controllers (0xFEC00000), above any RAM a partition
// may have below 3 GiB.
const (
	BARWindowBase = 0xc000_0000
	BARWindowTop  = 0xfec0_0000
	// maxMapsPerBAR bounds the places one BAR is mapped at as the guest
	// relocates it (each costs table pages until the partition ends).
	maxMapsPerBAR = 4
)

// Configuration space offsets and bits (PCI Local Bus 3.0 6.1, 6.2, 6.8;
// PCI Express Base 7.5.3).
const (
	regID        = 0x00
	regCommand   = 0x04
	regClass     = 0x08
	regHeader    = 0x0c
	regBAR0      = 0x10
	regBAR5      = 0x24
	regSubsystem = 0x2c
	regROM       = 0x30
	regCapPtr    = 0x34
	regInterrupt = 0x3c

	cmdIO          = 1 << 0
	cmdMemory      = 1 << 1
	cmdBusMaster   = 1 << 2
	cmdIntxDisable = 1 << 10
	// cmdToHost are the command bits the guest's writes change on the
	// host function.
	cmdToHost    = cmdMemory | cmdBusMaster | cmdIntxDisable
	statusCaps   = 1 << 4
	headerType   = 0x7f // header type byte without the multi-function bit
	barMemFlags  = 0xf  // a memory BAR's type and prefetchable bits
	capMSI       = 0x05
	capPCIe      = 0x10
	capMSIX      = 0x11
	msiEnable    = 1 << 0  // MSI Message Control
	msi64        = 1 << 7  // MSI Message Control: 64-bit address
	msiPVM       = 1 << 8  // MSI Message Control: per-vector masking
	msixEnable   = 1 << 15 // MSI-X Message Control
	msixMask     = 1 << 14
	pcieDevCap   = 0x04 // from the PCIe capability
	pcieDevCtl   = 0x08 // Device Control (16) and Device Status (16)
	devCapFLR    = 1 << 28
	devCtlFLR    = 1 << 15
	devStaTrPend = 1 << (16 + 5) // Transactions Pending, in the dword at pcieDevCtl
	maxCaps      = 48
)

// flrWait is how long a function has to complete an FLR (PCIe Base
// 6.6.2: 100 ms); pendingPolls×pendingWait bounds the wait for its
// transactions before one.
var (
	flrWait      = 100 * time.Millisecond
	pendingWait  = 10 * time.Millisecond
	pendingPolls = 10
	sleep        = time.Sleep
)

// Device is an assigned function: its domain, its BARs in the
// partition's space and its virtual configuration space.
type Device struct {
	Function
	Domain iommu.Domain
	Unit   iommu.Unit

	mu      sync.Mutex
	guest   Guest
	header  [16]uint32 // the host's first 64 bytes at assignment
	cmd     uint16     // the guest's command register
	cacheLn uint8
	intLine uint8
	bars    [6]vbar
	msi     shadow // MSI capability: virtual from its Message Control on
	msix    shadow // MSI-X capability: its Message Control's enable and mask
	pcie    uint8  // the PCIe capability's offset, or 0
	// msixPrev is the capability whose next pointer names MSI-X (0: the
	// header's capabilities pointer), msixNext the one after MSI-X:
	// while MSI-X is not routed the guest's list skips it (unlinked).
	msixPrev, msixNext uint8
	faults             []iommu.Fault
	route              *msiRoute  // the routed MSI (msi.go), or nil
	msixT              *msixTable // the MSI-X table (msix.go), or nil
	msiStats           MSIStats
	// Relocations counts BAR writes that moved a mapping; Refused those
	// that named a range the BAR cannot be mapped at.
	Relocations, Refused int
	released             bool
}

// vbar is one virtual base address register.
type vbar struct {
	bar   *BAR   // the host BAR this register (or, high, its pair) is; nil: reads 0
	high  bool   // the upper dword of a 64-bit BAR
	raw   uint32 // what the guest wrote, as masked when read
	flags uint32 // the host BAR's type bits (a memory BAR's 3:0), read-only
	maps  []uint64
	guest uint64 // the guest base it was placed at
}

// shadow is a capability whose bytes from off to off+len are virtual.
type shadow struct {
	off, len uint8
	bytes    [24]uint8
}

func (s *shadow) holds(reg uint8) bool { return s.len != 0 && reg+3 >= s.off && reg < s.off+s.len }

// Assign gives host function f to the partition whose memory is g, at
// guest PCI slot slot: a new domain of unit maps every page of g's RAM at
// its GPA (read and write) and takes f from the blocked state; f's memory
// BARs are mapped from BARWindowBase on, each aligned to its size; bus
// master and I/O decoding are turned off on the host until the guest
// turns them on (memory decoding stays as the host had it). On error
// nothing is left attached or mapped in the IOMMU (BARs already mapped in
// g go with the partition).
func Assign(unit iommu.Domains, g Guest, f Function) (*Device, error) {
	d := &Device{Function: f, Unit: unit, guest: g}
	if !unit.Covers(f.Source) {
		return nil, fmt.Errorf("passthrough: %s: not behind %s", f.Name, unit.Name())
	}
	for i := range d.header {
		d.header[i] = f.Config.Read32(uint16(4 * i))
	}
	if d.header[0] == ^uint32(0) {
		return nil, fmt.Errorf("passthrough: %s: no function there (its IDs read all ones)", f.Name)
	}
	if ht := d.header[regHeader/4] >> 16 & headerType; ht != 0 {
		return nil, fmt.Errorf("passthrough: %s: header type %d: only endpoints (type 0) are assigned", f.Name, ht)
	}
	if err := d.findCaps(); err != nil {
		return nil, fmt.Errorf("passthrough: %s: %w", f.Name, err)
	}
	next := uint64(BARWindowBase)
	for i := range f.BARs {
		b := &f.BARs[i]
		if b.IO || b.Size == 0 {
			continue
		}
		if b.Index < 0 || b.Index > 5 || b.Is64 && b.Index == 5 {
			return nil, fmt.Errorf("passthrough: %s: BAR index %d", f.Name, b.Index)
		}
		if b.Size < 4096 || b.Size&(b.Size-1) != 0 || b.Base%b.Size != 0 {
			// A BAR smaller than a page shares its page with another
			// device's registers: mapping it would give them away.
			return nil, fmt.Errorf("passthrough: %s: BAR%d of %#x bytes at %#x cannot be mapped page by page", f.Name, b.Index, b.Size, b.Base)
		}
		gpa := (next + b.Size - 1) &^ (b.Size - 1)
		if gpa+b.Size > BARWindowTop {
			return nil, fmt.Errorf("passthrough: %s: BAR%d of %#x bytes does not fit the window %#x-%#x", f.Name, b.Index, b.Size, BARWindowBase, BARWindowTop)
		}
		trapped, err := d.trapMSIX(g, b, gpa)
		if err == nil && !trapped {
			err = g.MapDevice(gpa, b.Base, b.Size)
		}
		if err != nil {
			return nil, fmt.Errorf("passthrough: %s: BAR%d: %w", f.Name, b.Index, err)
		}
		next = gpa + b.Size
		v := &d.bars[b.Index]
		v.bar, v.guest, v.maps = b, gpa, []uint64{gpa}
		v.raw, v.flags = uint32(gpa), d.header[regBAR0/4+b.Index]&barMemFlags
		if b.Is64 {
			d.bars[b.Index+1] = vbar{bar: b, high: true, raw: uint32(gpa >> 32)}
		}
	}
	// No DMA and no port decoding until the guest asks.
	f.Config.Write32(regCommand, d.header[regCommand/4]&0xffff&^(cmdBusMaster|cmdIO))
	dom, err := unit.NewDomain()
	if err != nil {
		return nil, fmt.Errorf("passthrough: %s: %w", f.Name, err)
	}
	d.Domain = dom
	var mapErr error
	g.RAMHostRuns(func(gpa, hpa, size uint64) {
		if mapErr == nil {
			mapErr = dom.Map(gpa, hpa, size, iommu.ReadWrite)
		}
	})
	if mapErr == nil {
		mapErr = dom.Attach(f.Source)
	}
	if mapErr != nil {
		return nil, errors.Join(fmt.Errorf("passthrough: %s: %w", f.Name, mapErr), dom.Destroy())
	}
	dom.OnFault(func(x iommu.Fault) {
		d.mu.Lock()
		if len(d.faults) < 64 {
			d.faults = append(d.faults, x)
		}
		d.mu.Unlock()
	})
	return d, nil
}

// findCaps walks the host's capability list (bounded, as metal/pci does)
// for MSI, MSI-X and PCI Express.
func (d *Device) findCaps() error {
	if d.header[regCommand/4]>>16&statusCaps == 0 {
		return nil
	}
	ptr := uint8(d.header[regCapPtr/4]) &^ 3
	prev := uint8(0)
	for n := 0; ptr != 0; n++ {
		if n == maxCaps || ptr < 0x40 {
			return fmt.Errorf("capability list loops or points into the header (at %#x)", ptr)
		}
		v := d.Config.Read32(uint16(ptr))
		switch uint8(v) {
		case capMSI:
			mc := uint16(v >> 16)
			if mc&msiEnable != 0 { // firmware's: off, the guest's is a shadow
				d.Config.Write32(uint16(ptr), v&^(msiEnable<<16))
			}
			l := uint8(12) // ID, next, control, address, data (and pad)
			if mc&msi64 != 0 {
				l = 16
			}
			if mc&msiPVM != 0 {
				l += 8 // mask and pending bits
			}
			d.msi = shadow{off: ptr, len: l}
			d.msi.bytes[0], d.msi.bytes[1], d.msi.bytes[2], d.msi.bytes[3] = uint8(v), uint8(v>>8), uint8(mc&^(msiEnable|7<<4)), uint8(mc>>8)
		case capMSIX:
			if v>>16&msixEnable != 0 {
				d.Config.Write32(uint16(ptr), v&^(msixEnable<<16))
			}
			d.msix = shadow{off: ptr, len: 4}
			d.parseMSIX(ptr, v)
			d.msixPrev, d.msixNext = prev, uint8(v>>8)&^3
			mc := uint16(v>>16) &^ (msixEnable | msixMask)
			d.msix.bytes[0], d.msix.bytes[1], d.msix.bytes[2], d.msix.bytes[3] = uint8(v), uint8(v>>8), uint8(mc), uint8(mc>>8)
		case capPCIe:
			d.pcie = ptr
		}
		prev, ptr = ptr, uint8(v>>8)&^3
	}
	return nil
}

// Faults returns the DMA faults the unit reported for the function since
// the last call (the unit's Faults must have been read: the root polls
// it), oldest first, at most 64.
func (d *Device) Faults() []iommu.Fault {
	d.mu.Lock()
	defer d.mu.Unlock()
	f := d.faults
	d.faults = nil
	return f
}

// GuestBAR is where BAR index i was placed in the partition, or 0.
func (d *Device) GuestBAR(i int) uint64 {
	if i < 0 || i > 5 || d.bars[i].high {
		return 0
	}
	return d.bars[i].guest
}

// ReadConfig reads the virtual configuration space (see the package
// documentation). reg is guest-controlled: any value is handled.
func (d *Device) ReadConfig(reg uint8) uint32 {
	reg &^= 3
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.released {
		return ^uint32(0)
	}
	switch {
	case reg == regID, reg == regClass, reg == regSubsystem:
		return d.header[reg/4]
	case reg == regCommand:
		return d.Config.Read32(regCommand)&0xffff_0000 | uint32(d.cmd)
	case reg == regHeader:
		return d.header[reg/4]&0x00ff_0000 | uint32(d.cacheLn)
	case reg >= regBAR0 && reg <= regBAR5:
		return d.bars[(reg-regBAR0)/4].read()
	case reg == regCapPtr:
		if d.msixHidden() && d.msixPrev == 0 {
			return uint32(d.msixNext) // MSI-X first: skipped
		}
		return d.header[reg/4] & 0xff
	case reg == regInterrupt:
		return d.header[reg/4]&0xffff_ff00 | uint32(d.intLine)
	case reg < 0x40: // CardBus CIS, ROM, reserved
		return 0
	}
	v := d.Config.Read32(uint16(reg))
	for _, s := range []*shadow{&d.msi, &d.msix} {
		if s.holds(reg) {
			for i := range uint8(4) {
				if b := reg + i; b >= s.off && b < s.off+s.len {
					v = v&^(0xff<<(8*i)) | uint32(s.bytes[b-s.off])<<(8*i)
				}
			}
		}
	}
	if d.msixHidden() && d.msixPrev != 0 && reg == d.msixPrev {
		v = v&^0xff00 | uint32(d.msixNext)<<8 // its next pointer skips MSI-X
	}
	return v
}

// msixHidden: the function has MSI-X and it is not routed, so the
// guest's capability list skips it.
func (d *Device) msixHidden() bool {
	return d.msix.len != 0 && (d.msixT == nil || d.msixT.ins == nil)
}

// read is a BAR register's value: the guest's bits above the size, the
// host's type bits.
func (v *vbar) read() uint32 {
	if v.bar == nil {
		return 0
	}
	mask := ^(v.bar.Size - 1)
	if v.high {
		return v.raw & uint32(mask>>32)
	}
	return v.raw&uint32(mask)&^barMemFlags | v.flags
}

// WriteConfig writes the virtual configuration space; the bytes mask
// selects are written. reg, v and mask are guest-controlled. A write that
// unmasks (or enables) the guest's MSI with an interrupt held sends it.
func (d *Device) WriteConfig(reg uint8, v, mask uint32) {
	var rel msixReleased
	d.mu.Lock()
	d.writeConfigLocked(reg&^3, v, mask)
	addr, data, send := d.msiUnmaskedLocked()
	d.syncHostModeLocked()
	d.msixUnmaskedLocked(&rel)
	d.mu.Unlock()
	if send {
		d.deliver(addr, data) // a refusal is counted in MSIStats.Invalid
	}
	d.sendReleased(&rel)
}

func (d *Device) writeConfigLocked(reg uint8, v, mask uint32) {
	if d.released {
		return
	}
	merge := func(old uint32) uint32 { return old&^mask | v&mask }
	switch {
	case reg == regCommand:
		if mask&0xffff == 0 {
			return // status only: write-one-to-clear bits, dropped
		}
		d.cmd = uint16(merge(uint32(d.cmd))) & (cmdIO | cmdToHost)
		host := d.Config.Read32(regCommand) & 0xffff
		d.Config.Write32(regCommand, host&^cmdToHost&^cmdIO|uint32(d.cmd)&cmdToHost)
	case reg == regHeader:
		d.cacheLn = uint8(merge(uint32(d.cacheLn)))
	case reg >= regBAR0 && reg <= regBAR5:
		d.writeBAR(int(reg-regBAR0)/4, merge)
	case reg == regInterrupt:
		d.intLine = uint8(merge(uint32(d.intLine)))
	case reg >= 0x40:
		for _, s := range []*shadow{&d.msi, &d.msix} {
			if !s.holds(reg) {
				continue
			}
			for i := range uint8(4) {
				b := reg + i
				if mask>>(8*i)&0xff == 0 || b < s.off || b >= s.off+s.len {
					continue
				}
				x := uint8(v >> (8 * i))
				switch b - s.off {
				case 0, 1: // ID and next: read-only
					continue
				case 2:
					if s == &d.msi { // enable and Multiple Message Enable
						x = s.bytes[2]&^0x71 | x&0x71
					} else {
						x = s.bytes[2] // MSI-X table size low bits: read-only
					}
				case 3:
					if s == &d.msi {
						x = s.bytes[3] // capability bits: read-only
					} else {
						x = s.bytes[3]&^0xc0 | x&0xc0 // enable, function mask
					}
				}
				s.bytes[b-s.off] = x
			}
		}
	}
}

// writeBAR updates BAR register i and, when the guest base it now names
// is a whole new place for the BAR, maps the host BAR there if it may.
func (d *Device) writeBAR(i int, merge func(uint32) uint32) {
	v := &d.bars[i]
	if v.bar == nil {
		return
	}
	v.raw = merge(v.raw)
	lo := v
	if v.high {
		lo = &d.bars[i-1]
	}
	b := lo.bar
	base := uint64(lo.read()) &^ barMemFlags
	if b.Is64 {
		base |= uint64(d.bars[b.Index+1].read()) << 32
	}
	if base == lo.guest || uint32(base) == uint32(^(b.Size-1))&^barMemFlags {
		return // unchanged, or being sized
	}
	for _, m := range lo.maps {
		if m == base {
			lo.guest = base
			return
		}
	}
	trapped := d.msixT != nil && d.msixT.host != nil && d.msixT.bir == b.Index
	if trapped || base < BARWindowBase || base+b.Size > BARWindowTop || len(lo.maps) >= maxMapsPerBAR {
		d.Refused++
		return
	}
	if err := d.guest.MapDevice(base, b.Base, b.Size); err != nil {
		d.Refused++
		return
	}
	lo.maps = append(lo.maps, base)
	lo.guest = base
	d.Relocations++
}

// Release resets the function and returns it to the blocked state (see
// the package documentation); the returned string says how it was reset.
// The partition must have stopped; its memory may be freed once Release
// returns, even with an error (the function is then detached as far as
// the unit allowed, and the error says what failed).
func (d *Device) Release() (string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.released {
		return "", nil
	}
	d.released = true
	c := d.Config
	c.Write32(regCommand, c.Read32(regCommand)&0xffff&^(cmdBusMaster|cmdMemory|cmdIO))
	routeErr := errors.Join(d.unrouteLocked(), d.unrouteMSIXLocked()) // no more interrupts; the entries blocked again
	how := "bus master and decoding off (no function level reset: the function keeps the state the guest left)"
	if d.pcie != 0 && c.Read32(uint16(d.pcie)+pcieDevCap)&devCapFLR != 0 {
		for i := 0; i < pendingPolls && c.Read32(uint16(d.pcie)+pcieDevCtl)&devStaTrPend != 0; i++ {
			sleep(pendingWait)
		}
		ctl := c.Read32(uint16(d.pcie)+pcieDevCtl) & 0xffff
		c.Write32(uint16(d.pcie)+pcieDevCtl, ctl|devCtlFLR)
		sleep(flrWait)
		for i := range 6 {
			c.Write32(uint16(regBAR0+4*i), d.header[regBAR0/4+i])
		}
		c.Write32(regCommand, d.header[regCommand/4]&0xffff&^(cmdBusMaster|cmdMemory|cmdIO))
		how = "function level reset"
	}
	if err := d.Domain.Destroy(); err != nil {
		return how, errors.Join(fmt.Errorf("passthrough: %s: blocking it again: %w", d.Name, err), routeErr)
	}
	if routeErr != nil {
		return how, fmt.Errorf("passthrough: %s: freeing its interrupt remapping entry: %w", d.Name, routeErr)
	}
	return how, nil
}
