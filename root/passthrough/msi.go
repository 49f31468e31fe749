package passthrough

import (
	"errors"
	"fmt"
	"time"

	"gohv/iommu"
)

// MSI delivery to the partition. The host function's MSI capability is
// the root's: it is programmed with an interrupt remapping entry's
// message (RouteMSI), so the function's interrupt reaches the IOMMU as a
// request naming that entry, which delivers it on a host CPU at a host
// vector the root chose. The guest's MSI capability is a shadow (see the
// package documentation); when the host vector fires, the root calls
// Interrupt, which sends the message the guest programmed — its address
// and data, decoded by the partition's own APIC bus — into the partition.
// Whatever the guest writes to its capability, the device's message is
// the root's; whatever it makes the device write into the interrupt
// window by DMA, the IOMMU remaps only this device's own entry (VT-d
// checks the requester ID, AMD-Vi's table is the device's), so it can
// neither reach the host's local APICs nor another partition.
//
// RouteMSI routes MSI alone: a function that has MSI-X but not MSI is
// refused by it; MSI-X is RouteMSIX's (msix.go).

// MSISink delivers a message-signalled interrupt into the partition as
// the guest addressed it; *hv.Partition has it. addr and data are
// guest-controlled: the sink refuses what is not a valid message.
type MSISink interface {
	SignalMSI(addr uint64, data uint32) error
}

// ErrNoMSI: the function has no MSI capability to route.
var ErrNoMSI = errors.New("passthrough: the function has no MSI capability")

// msiRoute is a routed MSI: the remapping entry and where its
// interrupts go.
type msiRoute struct {
	remap   iommu.Remapper
	in      iommu.Interrupt
	sink    MSISink
	pending bool // fired while the guest's vector was masked
}

// MSIStats counts what became of the host interrupts Interrupt was told
// of.
type MSIStats struct {
	Delivered int // sent into the partition as the guest programmed it
	Pending   int // held while the guest masked its vector (sent on unmask)
	Disabled  int // dropped: the guest's MSI is not enabled
	Invalid   int // dropped: the guest's message is not a valid MSI
}

// MSI capability layout (PCI Local Bus 3.0 6.8.1): Message Control at
// +2, Message Address at +4, then with 64-bit addresses the upper
// address at +8 and Message Data at +12, else Message Data at +8; with
// per-vector masking the Mask Bits after the data's dword.
const (
	msiControl  = 2
	msiAddrLo   = 4
	msiAddrHi   = 8
	msiData32   = 8
	msiData64   = 12
	msiMask32   = 12
	msiMask64   = 16
	msiMMEShift = 4 // Multiple Message Enable, bits 6:4
)

// RouteMSI programs the host function's MSI capability with in's message
// (a remapping entry of unit r for this function, which the caller
// allocated to a host vector it serves) and enables it with one vector;
// from then on Interrupt delivers the guest's message. Release disables
// it and frees in.
func (d *Device) RouteMSI(r iommu.Remapper, in iommu.Interrupt, sink MSISink) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	switch {
	case d.released:
		return fmt.Errorf("passthrough: %s: route MSI: released", d.Name)
	case d.msi.len == 0:
		return fmt.Errorf("passthrough: %s: %w", d.Name, ErrNoMSI)
	case d.route != nil:
		return fmt.Errorf("passthrough: %s: route MSI: routed already (entry %d)", d.Name, d.route.in.Index)
	case in.Source != d.Source:
		return fmt.Errorf("passthrough: %s: route MSI: entry %d is %s's", d.Name, in.Index, iommu.Fault{Source: in.Source}.SourceString())
	}
	c, off := d.Config, uint16(d.msi.off)
	ctl := c.Read32(off)
	is64 := uint16(ctl>>16)&msi64 != 0
	if !is64 && in.Address>>32 != 0 {
		return fmt.Errorf("passthrough: %s: route MSI: address %#x needs a 64-bit MSI capability", d.Name, in.Address)
	}
	c.Write32(off+msiAddrLo, uint32(in.Address))
	data := off + msiData32
	if is64 {
		c.Write32(off+msiAddrHi, uint32(in.Address>>32))
		data = off + msiData64
	}
	c.Write32(data, c.Read32(data)&0xffff_0000|in.Data&0xffff)
	if uint16(ctl>>16)&msiPVM != 0 { // the root's vector unmasked
		mask := off + msiMask32
		if is64 {
			mask = off + msiMask64
		}
		c.Write32(mask, 0)
	}
	mc := uint16(ctl>>16)&^(7<<msiMMEShift) | msiEnable // one vector
	c.Write32(off, ctl&0xffff|uint32(mc)<<16)
	d.route = &msiRoute{remap: r, in: in, sink: sink}
	return nil
}

// Interrupt tells the device its routed host vector fired: the guest's
// MSI is sent into the partition if the guest enabled it and has not
// masked it; a masked one is held and sent when the guest unmasks it; a
// disabled one is dropped (as a function with MSI off would not send
// it). The error is the sink's refusal of the guest's message (it names
// the guest's address and data); the partition keeps running.
func (d *Device) Interrupt() error {
	d.mu.Lock()
	if d.route == nil || d.released {
		d.mu.Unlock()
		return nil
	}
	addr, data, ok := d.msiFireLocked()
	d.mu.Unlock()
	if !ok {
		return nil
	}
	return d.deliver(addr, data)
}

func (d *Device) deliver(addr uint64, data uint32) error {
	return d.deliverTo(d.route.sink, addr, data)
}

// deliverTo sends the guest's message through sink and counts it.
func (d *Device) deliverTo(sink MSISink, addr uint64, data uint32) error {
	err := sink.SignalMSI(addr, data)
	d.mu.Lock()
	if err != nil {
		d.msiStats.Invalid++
	} else {
		d.msiStats.Delivered++
	}
	d.mu.Unlock()
	if err != nil {
		return fmt.Errorf("passthrough: %s: the guest's MSI: %w", d.Name, err)
	}
	return nil
}

// MSIStats returns the counts so far.
func (d *Device) MSIStats() MSIStats {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.msiStats
}

// guestMSI decodes the guest's shadow capability: enabled, masked
// (vector 0's mask bit, with per-vector masking), the message.
func (d *Device) guestMSI() (enabled, masked bool, addr uint64, data uint32) {
	b := d.msi.bytes[:]
	u32 := func(i int) uint32 { return uint32(b[i]) | uint32(b[i+1])<<8 | uint32(b[i+2])<<16 | uint32(b[i+3])<<24 }
	mc := uint16(b[msiControl]) | uint16(b[msiControl+1])<<8
	addr = uint64(u32(msiAddrLo))
	dataAt, maskAt := msiData32, msiMask32
	if mc&msi64 != 0 {
		addr |= uint64(u32(msiAddrHi)) << 32
		dataAt, maskAt = msiData64, msiMask64
	}
	data = uint32(b[dataAt]) | uint32(b[dataAt+1])<<8
	masked = mc&msiPVM != 0 && b[maskAt]&1 != 0
	return mc&msiEnable != 0, masked, addr, data
}

// msiFireLocked accounts for one host interrupt and says what to send.
func (d *Device) msiFireLocked() (uint64, uint32, bool) {
	enabled, masked, addr, data := d.guestMSI()
	switch {
	case !enabled:
		d.msiStats.Disabled++
		return 0, 0, false
	case masked:
		d.route.pending = true
		d.msiStats.Pending++
		return 0, 0, false
	}
	return addr, data, true
}

// msiUnmaskedLocked is a held interrupt the guest's last write released.
func (d *Device) msiUnmaskedLocked() (uint64, uint32, bool) {
	if d.route == nil || !d.route.pending {
		return 0, 0, false
	}
	enabled, masked, addr, data := d.guestMSI()
	if !enabled || masked {
		return 0, 0, false
	}
	d.route.pending = false
	return addr, data, true
}

// unrouteLocked disables the host function's MSI and frees the entry.
func (d *Device) unrouteLocked() error {
	if d.route == nil {
		return nil
	}
	off := uint16(d.msi.off)
	ctl := d.Config.Read32(off)
	d.Config.Write32(off, ctl&^(msiEnable<<16))
	err := d.route.remap.FreeInterrupt(d.route.in)
	d.route = nil
	return err
}

// HostVector is the host vector a routed MSI arrives at, as the root's
// interrupt layer (metal's device vectors) serves it: Count is how many
// interrupts it has taken, Wait blocks until the count is no longer seen
// or timeout passes and returns it.
type HostVector struct {
	Count func() uint32
	Wait  func(seen uint32, timeout time.Duration) (uint32, error)
}

// serveWait bounds each wait, so quit is seen.
const serveWait = 50 * time.Millisecond

// Serve hands every interrupt v takes to Interrupt until quit is closed;
// each error (a guest message the partition refused, a failed wait) is
// passed to onErr, and a failed wait ends it. Run it on its own
// goroutine once RouteMSI has returned; it returns once quit is closed.
func (d *Device) Serve(v HostVector, quit <-chan struct{}, onErr func(error)) {
	d.serve(v, quit, onErr, d.Interrupt)
}

// ServeMSIX is Serve for the host vector of MSI-X table entry i (RouteMSIX's
// ins[i]): each interrupt goes to InterruptMSIX(i).
func (d *Device) ServeMSIX(v HostVector, i int, quit <-chan struct{}, onErr func(error)) {
	d.serve(v, quit, onErr, func() error { return d.InterruptMSIX(i) })
}

func (d *Device) serve(v HostVector, quit <-chan struct{}, onErr func(error), fire func() error) {
	seen := v.Count()
	for {
		select {
		case <-quit:
			return
		default:
		}
		n, err := v.Wait(seen, serveWait)
		if err != nil {
			onErr(fmt.Errorf("passthrough: %s: waiting for its interrupts: %w", d.Name, err))
			<-quit
			return
		}
		for ; seen != n; seen++ {
			if err := fire(); err != nil {
				onErr(err)
			}
		}
	}
}
