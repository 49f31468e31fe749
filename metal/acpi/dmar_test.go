package acpi

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

// DMAR builders, VT-d 4.1 chapter 8.
func mkDMAR(haw, flags uint8, structs ...[]byte) []byte {
	body := make([]byte, dmarStructuresOff-HeaderLen)
	body[0], body[1] = haw, flags
	return mkTable(SigDMAR, 1, cat(append([][]byte{body}, structs...)...))
}

func scopeEntry(typ, enumID, bus uint8, path ...uint8) []byte {
	return cat([]byte{typ, uint8(scopeHeaderLen + len(path)), 0, 0, enumID, bus}, path)
}

func drhdStruct(flags uint8, seg uint16, base uint64, scopes ...[]byte) []byte {
	body := cat(append([][]byte{{flags, 0}, le16(seg), le64(base)}, scopes...)...)
	return cat(le16(DMARTypeDRHD), le16(uint16(4+len(body))), body)
}

func rmrrStruct(seg uint16, base, limit uint64, scopes ...[]byte) []byte {
	body := cat(append([][]byte{le16(0), le16(seg), le64(base), le64(limit)}, scopes...)...)
	return cat(le16(DMARTypeRMRR), le16(uint16(4+len(body))), body)
}

func TestParseDMARDecodesUnitsRegionsAndScopes(t *testing.T) {
	b := mkDMAR(45, DMARIntrRemap|DMARX2APICOptOut,
		drhdStruct(0, 0, 0xfed91000,
			scopeEntry(ScopePCIEndpoint, 0, 0, 2, 0),
			scopeEntry(ScopePCISubHierarchy, 0, 0, 0x1c, 4, 0, 0)),
		drhdStruct(DRHDIncludePCIAll, 0, 0xfed90000,
			scopeEntry(ScopeIOAPIC, 8, 0xf0, 0x1f, 0),
			scopeEntry(ScopeHPET, 0, 0, 0x1f, 7)),
		rmrrStruct(0, 0x3e2e0000, 0x3e2fffff, scopeEntry(ScopePCIEndpoint, 0, 0, 0x14, 0)),
		cat(le16(DMARTypeATSR), le16(8), []byte{1, 0}, le16(0)),
		cat(le16(DMARTypeRHSA), le16(20), le32(0), le64(0xfed90000), le32(1)),
		cat(le16(DMARTypeANDD), le16(8), []byte{0, 0, 0, 1}),
	)
	d, err := ParseDMAR(b)
	if err != nil {
		t.Fatal(err)
	}
	if d.HostAddressWidth != 46 || !d.IntrRemap() || !d.X2APICOptOut() {
		t.Errorf("width %d intr-remap %v x2apic-opt-out %v, want 46 true true", d.HostAddressWidth, d.IntrRemap(), d.X2APICOptOut())
	}
	want := []DRHD{
		{Offset: 48, Segment: 0, RegisterBase: 0xfed91000, Scopes: []DeviceScope{
			{Type: ScopePCIEndpoint, Path: []PCIPathEntry{{2, 0}}},
			{Type: ScopePCISubHierarchy, Path: []PCIPathEntry{{0x1c, 4}, {0, 0}}},
		}},
		{Offset: 48 + 16 + 8 + 10, Flags: DRHDIncludePCIAll, RegisterBase: 0xfed90000, Scopes: []DeviceScope{
			{Type: ScopeIOAPIC, EnumerationID: 8, StartBus: 0xf0, Path: []PCIPathEntry{{0x1f, 0}}},
			{Type: ScopeHPET, Path: []PCIPathEntry{{0x1f, 7}}},
		}},
	}
	if !reflect.DeepEqual(d.DRHDs, want) {
		t.Errorf("DRHDs = %+v\nwant %+v", d.DRHDs, want)
	}
	if d.DRHDs[0].IncludePCIAll() || !d.DRHDs[1].IncludePCIAll() {
		t.Error("IncludePCIAll wrong")
	}
	wantR := []RMRR{{Offset: 48 + 34 + 32, Base: 0x3e2e0000, Limit: 0x3e2fffff,
		Scopes: []DeviceScope{{Type: ScopePCIEndpoint, Path: []PCIPathEntry{{0x14, 0}}}}}}
	if !reflect.DeepEqual(d.RMRRs, wantR) {
		t.Errorf("RMRRs = %+v, want %+v", d.RMRRs, wantR)
	}
	var names []string
	for _, s := range d.Skipped {
		names = append(names, s.Name())
	}
	if got := strings.Join(names, " "); got != "ATSR RHSA ANDD" {
		t.Errorf("Skipped %q, want ATSR RHSA ANDD", got)
	}
	if got := d.DRHDs[1].Scopes[0].String(); got != "ioapic 8 f0:1f.0" {
		t.Errorf("scope String() = %q", got)
	}
	if got := d.DRHDs[0].Scopes[1].String(); got != "bridge 00:1c.4/00.0" {
		t.Errorf("scope String() = %q", got)
	}
}

func TestParseDMARRejectsMalformedStructures(t *testing.T) {
	okDRHD := drhdStruct(1, 0, 0xfed90000)
	tests := []struct {
		name string
		b    []byte
		want error
		msg  string
	}{
		{"short fixed part", mkTable(SigDMAR, 1, make([]byte, 4)), ErrBadLength, "need at least 48"},
		{"wrong signature", mkTable(SigMADT, 1, make([]byte, 12)), ErrSignature, "want DMAR"},
		{"header cut", mkDMAR(38, 0, okDRHD, []byte{0, 0}), ErrTruncated, "offset 64: header"},
		{"length 0", mkDMAR(38, 0, []byte{3, 0, 0, 0}), ErrBadLength, "RHSA at offset 48: length 0"},
		{"past end", mkDMAR(38, 0, cat(le16(0), le16(40), make([]byte, 12))), ErrTruncated, "DRHD at offset 48: length 40 runs past"},
		{"DRHD short", mkDMAR(38, 0, cat(le16(0), le16(8), make([]byte, 4))), ErrBadLength, "DRHD at offset 48: length 8, need 16"},
		{"RMRR short", mkDMAR(38, 0, cat(le16(1), le16(16), make([]byte, 12))), ErrBadLength, "RMRR at offset 48: length 16, need 24"},
		{"RMRR limit below base", mkDMAR(38, 0, rmrrStruct(0, 0x2000, 0xfff)), ErrBadLength, "limit 0xfff below base 0x2000"},
		{"scope no path", mkDMAR(38, 0, drhdStruct(0, 0, 0, scopeEntry(1, 0, 0))), ErrBadLength, "scope at offset 64: type 1 length 6"},
		{"scope odd path", mkDMAR(38, 0, drhdStruct(0, 0, 0, scopeEntry(1, 0, 0, 1, 2, 3))), ErrBadLength, "length 9"},
		{"scope past structure", mkDMAR(38, 0, drhdStruct(0, 0, 0, []byte{1, 10, 0, 0, 0, 0, 1, 0})), ErrTruncated, "runs past its structure's end 72"},
		{"scope header cut", mkDMAR(38, 0, drhdStruct(0, 0, 0, []byte{1})), ErrTruncated, "scope at offset 64: header"},
		{"scope bad function", mkDMAR(38, 0, drhdStruct(0, 0, 0, scopeEntry(1, 0, 0, 3, 9))), ErrBadLength, "offset 70 is device 3 function 9"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseDMAR(tt.b)
			if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("ParseDMAR = %v, want %v containing %q", err, tt.want, tt.msg)
			}
		})
	}
}

// QEMU 7.2's intel-iommu on q35 (-device intel-iommu,intremap=on): one
// unit at Q35_HOST_BRIDGE_IOMMU_ADDR 0xfed90000 with a 39-bit host
// address width and interrupt remapping. QEMU 7.2 does not set
// INCLUDE_PCI_ALL: it names the devices of bus 0 that translate through
// the unit (q35's host bridge 00:00.0 and the ICH9 LPC, SATA and SMBus
// functions 00:1f.0, .2, .3) and the I/O APIC, ID 0 at QEMU's pseudo
// bus 0xff, 00.0.
func TestCapturedDMARDescribesQEMUIntelIOMMU(t *testing.T) {
	d, err := loadCapture(t, "qemu-q35-intel-iommu").loadTables(t).DMAR()
	if err != nil {
		t.Fatal(err)
	}
	if d.HostAddressWidth != 39 || d.Flags != DMARIntrRemap {
		t.Errorf("width %d flags %#x, want 39, INTR_REMAP only", d.HostAddressWidth, d.Flags)
	}
	pci := func(dev, fn uint8) DeviceScope {
		return DeviceScope{Type: ScopePCIEndpoint, Path: []PCIPathEntry{{dev, fn}}}
	}
	want := []DRHD{{Offset: 48, RegisterBase: 0xfed90000, Scopes: []DeviceScope{
		{Type: ScopeIOAPIC, EnumerationID: 0, StartBus: 0xff, Path: []PCIPathEntry{{0, 0}}},
		pci(0, 0), pci(0x1f, 0), pci(0x1f, 2), pci(0x1f, 3),
	}}}
	if !reflect.DeepEqual(d.DRHDs, want) {
		t.Errorf("DRHDs = %+v\nwant %+v", d.DRHDs, want)
	}
	if len(d.RMRRs)+len(d.Skipped) != 0 {
		t.Errorf("RMRRs %+v, skipped %+v; want none", d.RMRRs, d.Skipped)
	}
	if _, err := loadCapture(t, "qemu-q35").loadTables(t).DMAR(); !errors.Is(err, ErrNotFound) {
		t.Errorf("DMAR() without intel-iommu = %v, want ErrNotFound", err)
	}
}
