package acpi

import (
	"errors"
	"fmt"
)

// IOMMUReport renders the DMA remapping hardware the DMAR (Intel VT-d) and
// IVRS (AMD-Vi) tables describe, for the boot log: one line per remapping
// unit, one per reserved memory region, and, when the tables name no unit,
// a last line starting "warning:" that says DMA is not confined. Whether a
// unit that is found gets enabled is the caller's to report (this package
// only reads the tables). A table that fails to parse gets its own warning
// line. Under QEMU q35 with -device intel-iommu,intremap=on:
//
//	acpi iommu vt-d unit 0 at 0xfed90000 segment 0 scope 5 entries intr-remap=true address-width 39
func (t *Tables) IOMMUReport() []string {
	var out []string
	units := 0
	if d, err := t.DMAR(); err == nil {
		for i, u := range d.DRHDs {
			scope := "all-devices"
			if !u.IncludePCIAll() {
				scope = "scope " + count(len(u.Scopes), "entry", "entries")
			}
			out = append(out, fmt.Sprintf("acpi iommu vt-d unit %d at %#x segment %d %s intr-remap=%v address-width %d",
				i, u.RegisterBase, u.Segment, scope, d.IntrRemap(), d.HostAddressWidth))
		}
		units += len(d.DRHDs)
		for _, r := range d.RMRRs {
			out = append(out, fmt.Sprintf("acpi iommu vt-d reserved memory %#x-%#x segment %d for %s",
				r.Base, r.Limit, r.Segment, plural(len(r.Scopes), "device")))
		}
	} else if !errors.Is(err, ErrNotFound) {
		out = append(out, fmt.Sprintf("warning: ACPI DMAR ignored: %v", err))
	}
	if r, err := t.IVRS(); err == nil {
		for i, h := range r.IVHDs {
			out = append(out, fmt.Sprintf("acpi iommu amd-vi unit %d at %#x segment %d device %s ivhd-type %#x %s",
				i, h.Base, h.Segment, PCIAddress(h.DeviceID), h.Type, count(len(h.Entries), "device entry", "device entries")))
		}
		units += len(r.IVHDs)
		for _, m := range r.IVMDs {
			out = append(out, fmt.Sprintf("acpi iommu amd-vi memory definition %#x length %#x devices %s-%s flags %#x",
				m.Start, m.Length, PCIAddress(m.First), PCIAddress(m.Last), m.Flags))
		}
	} else if !errors.Is(err, ErrNotFound) {
		out = append(out, fmt.Sprintf("warning: ACPI IVRS ignored: %v", err))
	}
	if units == 0 {
		return append(out, "warning: no IOMMU (no usable ACPI DMAR or IVRS table): DMA is not confined and device assignment is unavailable")
	}
	return out
}

// count renders "1 <one>" or "n <many>".
func count(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}
