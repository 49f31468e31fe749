package main

import (
	"errors"
	"fmt"
	"strings"

	"gohv/iommu"
	"gohv/iommu/vtd"
	"gohv/metal"
	"gohv/metal/acpi"
)

// iommus are the remapping units enableIOMMUs turned on, for the checks.
var iommus []iommu.Unit

// metalPages gives iommu/vtd metal's physical pages and physical map.
type metalPages struct{}

func (metalPages) AllocPage() (uint64, error) { return metal.AllocPage() }
func (metalPages) Page(pa uint64) *[4096]byte { return metal.PhysPage(pa) }
func (metalPages) Flush(pa uint64)            { metal.FlushPage(pa) }

// enableIOMMUs turns on every VT-d unit of the DMAR table with every
// device blocked and reports each:
//
//	gohv: iommu vt-d unit 0xfed90000: translation on, every device blocked (1 fault record)
//
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
			u, err := enableVTd(drhd)
			if err != nil {
				fmt.Printf("gohv: warning: iommu vt-d unit %#x not enabled: %v\n", drhd.RegisterBase, err)
				why = append(why, fmt.Sprintf("vt-d unit %#x: %v", drhd.RegisterBase, err))
				continue
			}
			iommus = append(iommus, u)
			fmt.Printf("gohv: iommu %s: version %d.%d cap %#x ecap %#x: %v; %v\n",
				u.Name(), u.Ver>>4&0xf, u.Ver&0xf, u.Cap.Raw, u.ECap.Raw, u.Cap, u.ECap)
			fmt.Printf("gohv: iommu %s: translation on, every device blocked (%s)\n", u.Name(), plural(u.Cap.NFR, "fault record"))
		}
	}
	if r, err := t.IVRS(); err == nil && len(r.IVHDs) > 0 {
		found += len(r.IVHDs)
		why = append(why, fmt.Sprintf("%s: AMD-Vi is not supported yet", plural(len(r.IVHDs), "amd-vi unit")))
	}
	if found > 0 && len(iommus) == 0 {
		fmt.Printf("gohv: warning: IOMMU not enabled (%s): DMA is not confined and device assignment is unavailable\n", strings.Join(why, "; "))
	}
}

// enableVTd reaches a DRHD's registers through the identity map and
// blocks every device behind it.
func enableVTd(drhd acpi.DRHD) (*vtd.Unit, error) {
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
	if err := u.BlockAll(); err != nil {
		if errors.Is(err, vtd.ErrTimeout) {
			return nil, fmt.Errorf("%w (translation state unknown)", err)
		}
		return nil, err
	}
	return u, nil
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}
