package acpi

import (
	"slices"
	"testing"
)

func TestIOMMUReportOfCaptures(t *testing.T) {
	const (
		none = "warning: no IOMMU (no usable ACPI DMAR or IVRS table): DMA is not confined and device assignment is unavailable"
	)
	tests := []struct {
		capture string
		want    []string
	}{
		{"qemu-q35-intel-iommu", []string{
			"acpi iommu vt-d unit 0 at 0xfed90000 segment 0 scope 5 entries intr-remap=true address-width 39"}},
		{"qemu-q35-amd-iommu", []string{
			"acpi iommu amd-vi unit 0 at 0xfed80000 segment 0 device 00:01.0 ivhd-type 0x10 6 device entries"}},
		{"qemu-q35", []string{none}},
		{"qemu-pc", []string{none}},
	}
	for _, tt := range tests {
		t.Run(tt.capture, func(t *testing.T) {
			got := loadCapture(t, tt.capture).loadTables(t).IOMMUReport()
			if !slices.Equal(got, tt.want) {
				t.Errorf("IOMMUReport() =\n%q\nwant\n%q", got, tt.want)
			}
		})
	}
}

func TestIOMMUReportNamesBadTablesAndRegions(t *testing.T) {
	dmar := mkDMAR(38, 0, drhdStruct(DRHDIncludePCIAll, 1, 0xfed90000),
		rmrrStruct(1, 0x3e2e0000, 0x3e2fffff, scopeEntry(ScopePCIEndpoint, 0, 0, 0x14, 0)))
	ivrs := mkIVRS(0, ivmd(IVMDSelect, 7, 0x0008, 0, 0x1000, 0x2000), []byte{0x10, 0, 4, 0})
	tabs := &Tables{List: []Table{{Header: Header{Signature: SigDMAR}, Data: dmar}, {Header: Header{Signature: SigIVRS}, Data: ivrs}}}
	want := []string{
		"acpi iommu vt-d unit 0 at 0xfed90000 segment 1 all-devices intr-remap=false address-width 39",
		"acpi iommu vt-d reserved memory 0x3e2e0000-0x3e2fffff segment 1 for 1 device",
		"warning: ACPI IVRS ignored: acpi: IVRS IVHD at offset 80: type 0x10 length 4, need 24: acpi: bad length",
	}
	if got := tabs.IOMMUReport(); !slices.Equal(got, want) {
		t.Errorf("IOMMUReport() =\n%q\nwant\n%q", got, want)
	}
}
