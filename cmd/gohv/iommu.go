package main

import (
	"errors"
	"fmt"
	"strings"

	"gohv/iommu"
	"gohv/iommu/amdvi"
	"gohv/iommu/vtd"
	"gohv/metal"
	"gohv/metal/acpi"
)

// iommus are the remapping units enableIOMMUs turned on, for the checks.
var iommus []iommu.Unit

// metalPages gives iommu/vtd and iommu/amdvi metal's physical pages and
// physical map.
type metalPages struct{}

func (metalPages) AllocPage() (uint64, error) { return metal.AllocPage() }
func (metalPages) Page(pa uint64) *[4096]byte { return metal.PhysPage(pa) }
func (metalPages) Flush(pa uint64)            { metal.FlushPage(pa) }
func (metalPages) FreePage(pa uint64)         { metal.FreePage(pa) }

// AllocPages returns n physically contiguous pages. metal hands out one
// page at a time, the first free one after the previous allocation, so
// consecutive allocations at boot are almost always adjacent: pages are
// taken until the last n are a run, and the others given back. An AMD-Vi
// device table is the only user (2 pages on QEMU's bus 0, at most 512).
func (metalPages) AllocPages(n int) (uint64, error) {
	var all []uint64
	defer func() {
		for _, pa := range all {
			metal.FreePage(pa)
		}
	}()
	for len(all) < 4*n+64 {
		pa, err := metal.AllocPage()
		if err != nil {
			return 0, err
		}
		all = append(all, pa)
		run := len(all) - n
		if run < 0 {
			continue
		}
		ok := true
		for i := 1; i < n && ok; i++ {
			ok = all[run+i] == all[run]+uint64(i)*4096
		}
		if ok {
			first := all[run]
			all = all[:run]
			return first, nil
		}
	}
	return 0, fmt.Errorf("no %d contiguous pages in %d allocations", n, len(all))
}

// enableIOMMUs turns on every VT-d unit of the DMAR table and every AMD-Vi
// unit of the IVRS table with every device blocked, and interrupt
// remapping with every interrupt blocked where the unit can, and reports
// each:
//
//	gohv: iommu vt-d unit 0xfed90000: translation on, every device blocked (1 fault record); interrupt remapping on, every interrupt blocked
//	gohv: iommu amd-vi unit 0xfed80000: translation on, every device blocked (256 device table entries); interrupt remapping off: the IVHD names no I/O APIC (QEMU: amd-iommu with intremap=off)
//
// A unit whose interrupt remapping cannot be turned on still confines
// DMA; its line says why remapping is off (a device's DMA write to the
// interrupt window then reaches the host's local APICs as an interrupt).
// A unit that fails is reported and left; the boot goes on. When the
// tables name units and none could be enabled, the last line warns that
// DMA is not confined and says why (the tables' own "no IOMMU" warning
// covers a machine without any).
func enableIOMMUs(t *acpi.Tables) {
	var why []string
	found := 0
	if d, err := t.DMAR(); err == nil {
		for _, drhd := range d.DRHDs {
			found++
			u, err := enableVTd(drhd, strings.TrimSpace(d.OEMID) == "BOCHS")
			if err != nil {
				fmt.Printf("gohv: warning: iommu vt-d unit %#x not enabled: %v\n", drhd.RegisterBase, err)
				why = append(why, fmt.Sprintf("vt-d unit %#x: %v", drhd.RegisterBase, err))
				continue
			}
			iommus = append(iommus, u)
			fmt.Printf("gohv: iommu %s: version %d.%d cap %#x ecap %#x: %v; %v\n",
				u.Name(), u.Ver>>4&0xf, u.Ver&0xf, u.Cap.Raw, u.ECap.Raw, u.Cap, u.ECap)
			fmt.Printf("gohv: iommu %s: translation on, every device blocked (%s); %s\n", u.Name(), plural(u.Cap.NFR, "fault record"), remapInterrupts(u))
		}
	}
	if r, err := t.IVRS(); err == nil {
		for _, h := range r.IVHDs {
			found++
			u, err := enableAMDVi(h, strings.TrimSpace(r.OEMID) == "BOCHS")
			if err != nil {
				fmt.Printf("gohv: warning: iommu amd-vi unit %#x not enabled: %v\n", h.Base, err)
				why = append(why, fmt.Sprintf("amd-vi unit %#x: %v", h.Base, err))
				continue
			}
			iommus = append(iommus, u)
			fmt.Printf("gohv: iommu %s: device %s segment %d efr %#x ia=%v coherent=%v event-log=%v\n",
				u.Name(), acpi.PCIAddress(u.DeviceID), u.Segment, u.EFR, u.EFR&amdvi.EFR_IASup != 0, u.Coherent, !u.NoEventLog)
			fmt.Printf("gohv: iommu %s: translation on, every device blocked (%s); %s\n", u.Name(), fmt.Sprintf("%d device table entries", u.DeviceTableEntries()), remapInterrupts(u))
		}
	}
	if found > 0 && len(iommus) == 0 {
		fmt.Printf("gohv: warning: IOMMU not enabled (%s): DMA is not confined and device assignment is unavailable\n", strings.Join(why, "; "))
	}
}

// enableVTd reaches a DRHD's registers through the identity map and
// blocks every device behind it. qemu is set for QEMU's tables (OEM ID
// "BOCHS"), whose intel-iommu (7.2) passes compatibility-format
// interrupts with remapping on.
func enableVTd(drhd acpi.DRHD, qemu bool) (*vtd.Unit, error) {
	base := drhd.RegisterBase
	win, err := metal.MapMMIO(base, 0x1000)
	if err != nil {
		return nil, err
	}
	u, err := vtd.New(base, win, metalPages{})
	if err != nil {
		return nil, err
	}
	size := max(uint64(0x1000)<<(drhd.Size&0xf), vtd.Extent(u.Cap, u.ECap))
	if win, err = metal.MapMMIO(base, size); err != nil {
		return nil, err
	}
	if u, err = vtd.New(base, win, metalPages{}); err != nil {
		return nil, err
	}
	if qemu {
		u.CompatPasses = "QEMU 7.2's intel-iommu delivers compatibility-format interrupts whatever GCMD_REG.CFI says"
	}
	if err := u.BlockAll(); err != nil {
		if errors.Is(err, vtd.ErrTimeout) {
			return nil, fmt.Errorf("%w (translation state unknown)", err)
		}
		return nil, err
	}
	return u, nil
}

// ivhdCoherent is the Coherent bit of an IVHD's Flags (AMD IOMMU
// specification 5.2.2, IVHD block): the IOMMU's table accesses snoop the
// CPU's caches.
const ivhdCoherent = 1 << 5

// enableAMDVi reaches an IVHD's registers through the identity map and
// blocks every device behind it. The device table covers every device ID
// the IVHD names, up to the end of the highest one's bus. qemu is set for
// QEMU's tables (OEM ID "BOCHS"), whose amd-iommu (7.2) writes no events.
func enableAMDVi(h acpi.IVHD, qemu bool) (*amdvi.Unit, error) {
	win, err := metal.MapMMIO(h.Base, amdvi.MMIOSize)
	if err != nil {
		return nil, err
	}
	c := amdvi.Config{Base: h.Base, DeviceID: h.DeviceID, Segment: h.Segment, LastDeviceID: h.DeviceID, Coherent: h.Flags&ivhdCoherent != 0, NoEventLog: qemu}
	for _, e := range h.Entries {
		c.LastDeviceID = max(c.LastDeviceID, e.Last)
		if e.Type == acpi.IVHDEntrySpecial && e.Variety == acpi.SpecialIOAPIC {
			c.InterruptRemapping = true
		}
	}
	u, err := amdvi.New(c, win, metalPages{})
	if err != nil {
		return nil, err
	}
	if err := u.BlockAll(); err != nil {
		if errors.Is(err, amdvi.ErrTimeout) {
			return nil, fmt.Errorf("%w (translation state unknown)", err)
		}
		return nil, err
	}
	return u, nil
}

// remapInterrupts turns interrupt remapping on where the unit can and
// says how it went, for the unit's boot report line.
func remapInterrupts(u iommu.Remapper) string {
	if err := u.EnableInterruptRemapping(); errors.Is(err, iommu.ErrNoRemapping) {
		_, why := u.InterruptRemapping()
		return "interrupt remapping off: " + why
	} else if err != nil {
		return fmt.Sprintf("interrupt remapping off: %v", err)
	}
	if c, ok := u.(interface{ CompatibilityFormatPasses() (bool, string) }); ok {
		if passes, why := c.CompatibilityFormatPasses(); passes {
			return "interrupt remapping on, every remappable-format interrupt blocked but not the compatibility format (" + why + ")"
		}
	}
	return "interrupt remapping on, every interrupt blocked"
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}
