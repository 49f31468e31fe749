package acpi

import (
	"errors"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// IVRS builders, AMD IOMMU specification 5.2.
func mkIVRS(ivinfo uint32, blocks ...[]byte) []byte {
	body := cat(le32(ivinfo), make([]byte, 8))
	return mkTable(SigIVRS, 2, cat(append([][]byte{body}, blocks...)...))
}

func ivhd10(flags uint8, devID, capOff uint16, base uint64, seg, info uint16, feat uint32, entries ...[]byte) []byte {
	ent := cat(entries...)
	return cat([]byte{IVHDType10, flags}, le16(uint16(ivhd10Len+len(ent))), le16(devID), le16(capOff),
		le64(base), le16(seg), le16(info), le32(feat), ent)
}

func ivhd11(typ uint8, devID uint16, base uint64, efr uint64, entries ...[]byte) []byte {
	ent := cat(entries...)
	return cat([]byte{typ, 0}, le16(uint16(ivhd11Len+len(ent))), le16(devID), le16(0x40),
		le64(base), le16(0), le16(0), le32(0), le64(efr), le64(0), ent)
}

func ivmd(typ, flags uint8, dev, aux uint16, start, length uint64) []byte {
	return cat([]byte{typ, flags}, le16(ivmdLen), le16(dev), le16(aux), make([]byte, 8), le64(start), le64(length))
}

func dev4(typ uint8, id uint16, dte uint8) []byte { return cat([]byte{typ}, le16(id), []byte{dte}) }

func TestParseIVRSDecodesBlocksAndEntries(t *testing.T) {
	hid := cat(dev4(IVHDEntryACPIHID, 0xa5, 0), []byte("AMDI0020"), make([]byte, 8), []byte{2, 3}, []byte("ID0"))
	b := mkIVRS(0x00203041, // VA 64, PA 48, GVA 2, EFRSup
		ivhd10(0xb0, 0x0002, 0x40, 0xfeb80000, 0, 0x1300, 0x80048f6e,
			dev4(IVHDEntryAll, 0, 0),
			dev4(IVHDEntryPad, 0, 0),
			dev4(IVHDEntrySelect, 0x0008, 0x00),
			dev4(IVHDEntryStartRange, 0x0010, 0xd7),
			dev4(IVHDEntryEndRange, 0x00fe, 0),
			cat(dev4(IVHDEntryAliasRange, 0x0100, 0), []byte{0}, le16(0x00a4), []byte{0}),
			dev4(IVHDEntryEndRange, 0x01ff, 0),
			cat(dev4(IVHDEntryAliasSelect, 0x0300, 0), []byte{0}, le16(0x00a5), []byte{0}),
			cat(dev4(IVHDEntryExtSelect, 0x0400, 0), le32(1<<31)),
			cat([]byte{IVHDEntrySpecial, 0, 0, 0xd7, 0x21}, le16(0x00a0), []byte{SpecialIOAPIC}),
			cat([]byte{IVHDEntrySpecial, 0, 0, 0, 0}, le16(0x00a2), []byte{SpecialHPET}),
			hid),
		ivhd11(IVHDType11, 0x0002, 0xfeb80000, 0x246577efa2254afa, cat(dev4(IVHDEntryExtRange, 0x0500, 0), le32(7)), dev4(IVHDEntryEndRange, 0x05ff, 0)),
		ivhd11(IVHDType40, 0x0002, 0xfeb80000, 0x246577efa2254afa),
		ivmd(IVMDAll, 0x7, 0, 0, 0x1000, 0x2000),
		ivmd(IVMDSelect, 0x3, 0x0008, 0, 0xdead0000, 0x1000),
		ivmd(IVMDRange, 0x8, 0x0100, 0x01ff, 0x80000000, 0x10000),
		[]byte{0x50, 0, 6, 0, 0xaa, 0xbb}, // unknown block: skipped
	)
	r, err := ParseIVRS(b)
	if err != nil {
		t.Fatal(err)
	}
	if !r.EFRSup() || r.PASize() != 48 || r.VASize() != 64 || r.GVASize() != 2 {
		t.Errorf("IVinfo %#x: EFRSup %v PA %d VA %d GVA %d", r.IVinfo, r.EFRSup(), r.PASize(), r.VASize(), r.GVASize())
	}
	if len(r.IVHDs) != 3 {
		t.Fatalf("%d IVHDs, want 3", len(r.IVHDs))
	}
	h := r.IVHDs[0]
	if h.Type != IVHDType10 || h.Flags != 0xb0 || h.DeviceID != 2 || h.CapOff != 0x40 || h.Base != 0xfeb80000 ||
		h.Info != 0x1300 || h.Features != 0x80048f6e || h.Offset != 48 {
		t.Errorf("IVHD 10h = %+v", h)
	}
	e0 := 48 + ivhd10Len
	want := []IVHDEntry{
		{Type: IVHDEntryAll, Offset: e0, First: 0, Last: 0xffff},
		{Type: IVHDEntrySelect, Offset: e0 + 8, First: 8, Last: 8},
		{Type: IVHDEntryStartRange, Offset: e0 + 12, First: 0x10, Last: 0xfe, DTE: 0xd7},
		{Type: IVHDEntryAliasRange, Offset: e0 + 20, First: 0x100, Last: 0x1ff, Alias: 0xa4},
		{Type: IVHDEntryAliasSelect, Offset: e0 + 32, First: 0x300, Last: 0x300, Alias: 0xa5},
		{Type: IVHDEntryExtSelect, Offset: e0 + 40, First: 0x400, Last: 0x400, Ext: 1 << 31},
		{Type: IVHDEntrySpecial, Offset: e0 + 48, First: 0xa0, Last: 0xa0, DTE: 0xd7, Handle: 0x21, Variety: SpecialIOAPIC},
		{Type: IVHDEntrySpecial, Offset: e0 + 56, First: 0xa2, Last: 0xa2, Variety: SpecialHPET},
		{Type: IVHDEntryACPIHID, Offset: e0 + 64, First: 0xa5, Last: 0xa5, HID: "AMDI0020", UIDFormat: 2, UID: []byte("ID0")},
	}
	if !reflect.DeepEqual(h.Entries, want) {
		t.Errorf("entries:\n got %+v\nwant %+v", h.Entries, want)
	}
	h11 := r.IVHDs[1]
	if h11.Type != IVHDType11 || h11.EFR != 0x246577efa2254afa ||
		!reflect.DeepEqual(h11.Entries, []IVHDEntry{{Type: IVHDEntryExtRange, Offset: h11.Offset + ivhd11Len, First: 0x500, Last: 0x5ff, Ext: 7}}) {
		t.Errorf("IVHD 11h = %+v", h11)
	}
	if r.IVHDs[2].Type != IVHDType40 || len(r.IVHDs[2].Entries) != 0 {
		t.Errorf("IVHD 40h = %+v", r.IVHDs[2])
	}
	m0 := r.IVHDs[2].Offset + ivhd11Len
	wantM := []IVMD{
		{Type: IVMDAll, Offset: m0, Flags: 7, First: 0, Last: 0xffff, Start: 0x1000, Length: 0x2000},
		{Type: IVMDSelect, Offset: m0 + 32, Flags: 3, First: 8, Last: 8, Start: 0xdead0000, Length: 0x1000},
		{Type: IVMDRange, Offset: m0 + 64, Flags: 8, First: 0x100, Last: 0x1ff, Start: 0x80000000, Length: 0x10000},
	}
	if !reflect.DeepEqual(r.IVMDs, wantM) {
		t.Errorf("IVMDs:\n got %+v\nwant %+v", r.IVMDs, wantM)
	}
	if want := []IVRSBlock{{Type: 0x50, Offset: m0 + 96, Length: 6}}; !reflect.DeepEqual(r.Skipped, want) {
		t.Errorf("Skipped = %+v, want %+v", r.Skipped, want)
	}
	if got := PCIAddress(0x00a2); got != "00:14.2" {
		t.Errorf("PCIAddress(0xa2) = %q", got)
	}
}

func TestParseIVRSRejectsMalformedBlocks(t *testing.T) {
	h := func(entries ...[]byte) []byte { return mkIVRS(0, ivhd10(0, 2, 0x40, 0xfeb80000, 0, 0, 0, entries...)) }
	e0 := 48 + ivhd10Len
	tests := []struct {
		name string
		b    []byte
		want error
		msg  string
	}{
		{"short fixed part", mkTable(SigIVRS, 2, make([]byte, 4)), ErrBadLength, "need at least 48"},
		{"wrong signature", mkTable(SigDMAR, 2, make([]byte, 12)), ErrSignature, "want IVRS"},
		{"block header cut", mkIVRS(0, []byte{0x10, 0}), ErrTruncated, "block at offset 48: header"},
		{"block length 0", mkIVRS(0, []byte{0x10, 0, 0, 0}), ErrBadLength, "offset 48: type 0x10 length 0"},
		{"block past end", mkIVRS(0, []byte{0x20, 0, 32, 0, 0, 0}), ErrTruncated, "length 32 runs past table end 54"},
		{"IVHD 10h short", mkIVRS(0, cat([]byte{0x10, 0}, le16(20), make([]byte, 16))), ErrBadLength, "IVHD at offset 48: type 0x10 length 20, need 24"},
		{"IVHD 40h with a 10h header", mkIVRS(0, func() []byte { b := ivhd10(0, 0, 0, 0, 0, 0, 0, make([]byte, 8)); b[0] = 0x40; return b }()),
			ErrBadLength, "type 0x40 length 32, need 40"},
		{"IVMD short", mkIVRS(0, cat([]byte{0x21, 0}, le16(16), make([]byte, 12))), ErrBadLength, "IVMD at offset 48: type 0x21 length 16, need 32"},
		{"IVMD range backwards", mkIVRS(0, ivmd(IVMDRange, 0, 0x200, 0x100, 0, 0x1000)), ErrBadLength, "0x200-0x100 ends before"},
		{"IVMD wraps", mkIVRS(0, ivmd(IVMDAll, 0, 0, 0, 0xffff_ffff_ffff_f000, 0x2000)), ErrBadLength, "wraps"},
		{"entry past block", h(dev4(IVHDEntrySelect, 0, 0), []byte{IVHDEntrySpecial, 0, 0, 0}), ErrTruncated, "entry at offset " + strconv.Itoa(e0+4) + ": type 0x48 length 8 runs past"},
		{"unknown variable entry", h([]byte{0x81, 0, 0, 0}), ErrBadLength, "type 0x81 of unknown layout"},
		{"HID fixed part cut", h(cat(dev4(IVHDEntryACPIHID, 0, 0), make([]byte, 12))), ErrTruncated, "ACPI HID entry runs past"},
		{"HID UID past block", h(cat(dev4(IVHDEntryACPIHID, 0, 0), make([]byte, 17), []byte{9}, make([]byte, 2))), ErrTruncated, "type 0xf0 length 31"},
		{"end without start", h(dev4(IVHDEntryEndRange, 5, 0)), ErrBadLength, "end of range without a start"},
		{"start while open", h(dev4(IVHDEntryStartRange, 5, 0), dev4(IVHDEntryStartRange, 6, 0)), ErrBadLength, "range at offset " + strconv.Itoa(e0) + " is open"},
		{"range never closed", h(dev4(IVHDEntryStartRange, 5, 0)), ErrTruncated, "started at offset " + strconv.Itoa(e0) + " has no end"},
		{"range backwards", h(dev4(IVHDEntryStartRange, 9, 0), dev4(IVHDEntryEndRange, 5, 0)), ErrBadLength, "0x9-0x5"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseIVRS(tt.b)
			if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("ParseIVRS = %v, want %v containing %q", err, tt.want, tt.msg)
			}
		})
	}
}

// QEMU 7.2's amd-iommu on q35 (-device amd-iommu, TCG): one IVHD of type
// 10h for the IOMMU's own PCI function, which QEMU put in the first free
// slot, 00:01.0, with its capability at 0x40 and its registers at QEMU's
// fixed AMDVI_BASE_ADDR 0xfed80000; IVinfo says 40-bit physical
// addresses, no EFR image. The device entries select 00:00.0, the IOMMU
// itself, the ICH9 functions 00:1f.0, .2, .3, and map the I/O APIC (ID 0)
// to device ID 00:14.0.
func TestCapturedIVRSDescribesQEMUAMDIOMMU(t *testing.T) {
	r, err := loadCapture(t, "qemu-q35-amd-iommu").loadTables(t).IVRS()
	if err != nil {
		t.Fatal(err)
	}
	if r.PASize() != 40 || r.VASize() != 0 || r.EFRSup() {
		t.Errorf("IVinfo %#x: PA %d VA %d EFRSup %v, want 40 0 false", r.IVinfo, r.PASize(), r.VASize(), r.EFRSup())
	}
	if len(r.IVHDs) != 1 || len(r.IVMDs)+len(r.Skipped) != 0 {
		t.Fatalf("%d IVHDs, %d IVMDs, %d skipped; want 1, 0, 0", len(r.IVHDs), len(r.IVMDs), len(r.Skipped))
	}
	h := r.IVHDs[0]
	if h.Type != IVHDType10 || h.DeviceID != 0x0008 || PCIAddress(h.DeviceID) != "00:01.0" || h.CapOff != 0x40 ||
		h.Base != 0xfed80000 || h.Segment != 0 || h.Info != 0 || h.Flags != 0xd1 || h.Features != 0x44 {
		t.Errorf("IVHD = %+v", h)
	}
	sel := func(off int, id uint16) IVHDEntry {
		return IVHDEntry{Type: IVHDEntrySelect, Offset: off, First: id, Last: id}
	}
	want := []IVHDEntry{
		sel(72, 0x0000), sel(76, 0x0008), sel(80, 0x00f8), sel(84, 0x00fa), sel(88, 0x00fb),
		{Type: IVHDEntrySpecial, Offset: 92, First: 0x00a0, Last: 0x00a0, Handle: 0, Variety: SpecialIOAPIC},
	}
	if !reflect.DeepEqual(h.Entries, want) {
		t.Errorf("entries:\n got %+v\nwant %+v", h.Entries, want)
	}
	if _, err := loadCapture(t, "qemu-q35").loadTables(t).IVRS(); !errors.Is(err, ErrNotFound) {
		t.Errorf("IVRS() without amd-iommu = %v, want ErrNotFound", err)
	}
}
