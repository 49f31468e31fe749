package checks

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"gohv/iommu"
	"gohv/metal"
	"gohv/metal/pci"
)

// IOMMUTest proves with a real device's DMA that the boot's IOMMU units
// block every device. It needs QEMU's edu device (-device edu) behind an
// enabled unit (q35, -device intel-iommu or -device amd-iommu).
var IOMMUTest = Suite{
	Word:   "iommutest",
	Checks: []Check{{"iommu-blocks-dma", checkIOMMUBlocksDMA}, {"iommu-assign-edu", checkIOMMUAssign}},
}

// QEMU's educational PCI device (QEMU docs/specs/edu.rst, hw/misc/edu.c):
// BAR0 is 1 MiB of registers; a DMA engine copies between RAM and a
// 4 KiB buffer the device keeps at bus address 0x40000, 100 ms of virtual
// time after the command is written. Its DMA addresses are masked to 28
// bits (the dma_mask property's default). QEMU 7.2 stops the machine
// (hw_error) for a transfer that reaches the buffer's last byte, so the
// transfers here are half the buffer.
const (
	eduVendor      = 0x1234
	eduDevice      = 0x11e8
	eduRegID       = 0x00 // identification: 0x010000ed
	eduRegIRQRaise = 0x60 // raise the interrupt (MSI where enabled), status |= value
	eduRegIRQAck   = 0x64 // acknowledge: status &^= value
	eduRegDMASrc   = 0x80
	eduRegDMADst   = 0x88
	eduRegDMACount = 0x90
	eduRegDMACmd   = 0x98
	eduID          = 0x010000ed
	eduDMARun      = 1 << 0 // start; reads 1 until the transfer is done
	eduDMAToRAM    = 1 << 1 // direction: 1 from the buffer to RAM, 0 from RAM to the buffer
	eduBuffer      = 0x40000
	eduDMALimit    = 1 << 28
	dmaBytes       = 2048
)

// checkIOMMUBlocksDMA makes QEMU's edu device DMA into a hypervisor page.
// The control first, with translation off on every unit: a page of a
// known pattern copied into the device's buffer and back out into a
// second page, which must then hold the pattern (so the device
// programming works and a missing write later is the IOMMU's doing).
// Then, translation on again with every device blocked, the same write
// into the second page, refilled with another pattern: the page must stay
// unchanged and a unit must have recorded a fault from the edu device's
// requester ID at that page, a write. The device's command register and
// the pages are put back; the units end blocked whatever happens.
func checkIOMMUBlocksDMA(env *Env) (detail string, err error) {
	if len(env.IOMMUs) == 0 {
		return "", errors.New("no IOMMU unit was enabled at boot (the boot report says why)")
	}
	edu, bar, err := findEdu(env.PCIFunctions)
	if err != nil {
		return "", err
	}
	regs, err := metal.MapMMIO(bar.Base, bar.Size)
	if err != nil {
		return "", fmt.Errorf("edu %v BAR0: %w", edu, err)
	}
	old := pci.SetCommand(env.PCI, edu, pci.CommandMemory|pci.CommandBusMaster, 0)
	defer pci.SetCommand(env.PCI, edu, old, 0xffff)
	if id := regs.Read32(eduRegID); id != eduID {
		return "", fmt.Errorf("edu %v: identification register reads %#x, want %#x", edu, id, eduID)
	}
	pages, err := allocDMAPages(2)
	if err != nil {
		return "", err
	}
	defer func() {
		for _, pa := range pages {
			metal.FreePage(pa)
		}
	}()
	src, dst := pages[0], pages[1]
	fill(src, 0x5a)
	fill(dst, 0x00)

	// Control: translation off, the device reaches memory.
	blocked := false
	defer func() { // whatever happens, every unit ends blocking
		if blocked {
			return
		}
		if e := blockAll(env.IOMMUs); e != nil {
			detail, err = "", fmt.Errorf("cannot block again: %v (after: %v)", e, err)
		}
	}()
	for _, u := range env.IOMMUs {
		u.Faults() // earlier faults are not this check's
		if err := u.Disable(); err != nil {
			return "", err
		}
	}
	t0 := metal.TSC()
	if err := eduDMA(regs, src, eduBuffer, 0); err != nil {
		return "", fmt.Errorf("control, translation off: %w", err)
	}
	controlTicks := metal.TSC() - t0
	if err := eduDMA(regs, eduBuffer, dst, eduDMAToRAM); err != nil {
		return "", fmt.Errorf("control, translation off: %w", err)
	}
	if n := count(dst, 0x5a); n != dmaBytes {
		return "", fmt.Errorf("control, translation off: edu %v copied %d bytes from %#x through its buffer to %#x, but %d arrived: the device programming is wrong, so a blocked DMA would prove nothing", edu, dmaBytes, src, dst, n)
	}
	for _, u := range env.IOMMUs {
		if f := u.Faults(); len(f) != 0 {
			return "", fmt.Errorf("control: %s recorded faults with translation off: %v", u.Name(), f)
		}
	}

	// Translation on, every device blocked.
	blocked = true
	if err := blockAll(env.IOMMUs); err != nil {
		return "", err
	}
	fill(dst, 0xc3)
	if err := eduDMA(regs, eduBuffer, dst, eduDMAToRAM); err != nil {
		return "", fmt.Errorf("blocked: %w", err)
	}
	if n := count(dst, 0xc3); n != 4096 {
		return "", fmt.Errorf("blocked: edu %v wrote %d bytes of page %#x with translation on", edu, 4096-n, dst)
	}
	source := uint16(edu.Bus)<<8 | uint16(edu.Dev)<<3 | uint16(edu.Fn)
	var all []string
	for _, u := range env.IOMMUs {
		for _, f := range u.Faults() {
			if f.Source == source && f.Addr == dst && f.Write {
				kind := "read"
				if f.Write {
					kind = "write"
				}
				return fmt.Sprintf("device=%v target=%#x page=unchanged unit=%q fault-source=%s fault-addr=%#x fault-type=%s fault-reason=%q control=\"%d bytes %#x->edu->%#x with translation off\" control-dma-ticks=%d",
					edu, dst, u.Name(), f.SourceString(), f.Addr, kind, f.Reason, dmaBytes, src, dst, controlTicks), nil
			}
			all = append(all, u.Name()+": "+f.String())
		}
	}
	// A unit known to record nothing (QEMU 7.2's amd-iommu) still proves
	// the confinement by the page and the control; the line says so.
	if len(all) == 0 {
		for _, u := range env.IOMMUs {
			if r, ok := u.(faultRecorder); ok {
				if rec, why := r.RecordsFaults(); !rec {
					return fmt.Sprintf("device=%v target=%#x page=unchanged unit=%q fault=unrecorded fault-why=%q control=\"%d bytes %#x->edu->%#x with translation off\" control-dma-ticks=%d",
						edu, dst, u.Name(), why, dmaBytes, src, dst, controlTicks), nil
				}
			}
		}
	}
	return "", fmt.Errorf("blocked: page %#x unchanged but no fault from %v at it recorded (faults: %s)", dst, edu, strings.Join(all, "; "))
}

// faultRecorder is a unit that can say it records no faults.
type faultRecorder interface{ RecordsFaults() (bool, string) }

// findEdu finds the first edu function and its 1 MiB memory BAR0.
func findEdu(fns []pci.Function) (pci.Addr, pci.BAR, error) {
	for _, f := range fns {
		if f.Vendor != eduVendor || f.Device != eduDevice {
			continue
		}
		for _, b := range f.BARs {
			if b.Index == 0 && !b.IO && b.Size >= 1<<20 && b.Base != 0 {
				return f.Addr, b, nil
			}
		}
		return f.Addr, pci.BAR{}, fmt.Errorf("edu %v has no memory BAR0 of 1 MiB", f.Addr)
	}
	return pci.Addr{}, pci.BAR{}, fmt.Errorf("no edu device (%04x:%04x) among %d PCI functions: run under QEMU with -device edu", eduVendor, eduDevice, len(fns))
}

func blockAll(units []iommu.Unit) error {
	for _, u := range units {
		if err := u.BlockAll(); err != nil {
			return err
		}
	}
	return nil
}

// allocDMAPages returns n pages the edu device can address (below 256
// MiB), or an error after trying a few more.
func allocDMAPages(n int) ([]uint64, error) {
	var got, high []uint64
	defer func() {
		for _, pa := range high {
			metal.FreePage(pa)
		}
	}()
	for len(got) < n && len(high) < 64 {
		pa, err := metal.AllocPage()
		if err != nil {
			break
		}
		if pa+4096 <= eduDMALimit {
			got = append(got, pa)
		} else {
			high = append(high, pa)
		}
	}
	if len(got) < n {
		for _, pa := range got {
			metal.FreePage(pa)
		}
		return nil, fmt.Errorf("no %d pages below %#x (the edu device's DMA mask)", n, eduDMALimit)
	}
	return got, nil
}

// eduDMA has the device copy dmaBytes from src to dst (one of them its
// buffer) and waits for it, bounded: the transfer starts 100 ms of QEMU's
// virtual time after the command.
func eduDMA(regs metal.MMIO, src, dst uint64, dir uint64) error {
	return eduDMACount(regs, src, dst, dir, dmaBytes)
}

// eduDMACount is eduDMA of n bytes.
func eduDMACount(regs metal.MMIO, src, dst uint64, dir uint64, n uint64) error {
	if regs.Read64(eduRegDMACmd)&eduDMARun != 0 {
		return errors.New("edu: a DMA is already running")
	}
	regs.Write64(eduRegDMASrc, src)
	regs.Write64(eduRegDMADst, dst)
	regs.Write64(eduRegDMACount, n)
	regs.Write64(eduRegDMACmd, eduDMARun|dir)
	deadline := time.Now().Add(5 * time.Second)
	for regs.Read64(eduRegDMACmd)&eduDMARun != 0 {
		if time.Now().After(deadline) {
			return fmt.Errorf("edu: DMA %#x->%#x not done after 5 s", src, dst)
		}
		time.Sleep(time.Millisecond)
	}
	return nil
}

func fill(pa uint64, b byte) {
	p := metal.PhysPage(pa)
	for i := range p {
		p[i] = b
	}
}

func count(pa uint64, b byte) int {
	n := 0
	for _, x := range metal.PhysPage(pa) {
		if x == b {
			n++
		}
	}
	return n
}
