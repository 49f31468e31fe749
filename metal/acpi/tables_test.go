package acpi

import (
	"encoding/binary"
	"errors"
	"strings"
	"testing"
)

func TestParseTable(t *testing.T) {
	good := mkTable("WAET", 1, []byte{0, 0, 0, 0})
	badSum := append([]byte(nil), good...)
	badSum[HeaderLen]++
	tooShort := append([]byte(nil), good...)
	binary.LittleEndian.PutUint32(tooShort[4:], 35)
	tooLong := append([]byte(nil), good...)
	binary.LittleEndian.PutUint32(tooLong[4:], MaxTableLen+1)
	pastEnd := append([]byte(nil), good...)
	binary.LittleEndian.PutUint32(pastEnd[4:], uint32(len(good)+1))

	tests := []struct {
		name    string
		in      []byte
		wantErr error
	}{
		{"valid", good, nil},
		{"valid with trailing bytes", append(append([]byte(nil), good...), 1, 2, 3), nil},
		{"header truncated", good[:HeaderLen-1], ErrTruncated},
		{"bad checksum", badSum, ErrChecksum},
		{"Length below the header", tooShort, ErrBadLength},
		{"Length above 16 MiB", tooLong, ErrBadLength},
		{"Length past the end", pastEnd, ErrTruncated},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tab, err := ParseTable(tt.in)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("ParseTable: error %v, want %v", err, tt.wantErr)
			}
			if err == nil && (tab.Signature != "WAET" || len(tab.Data) != len(good) || tab.OEMID != "GOHV" || tab.OEMTableID != "TESTTBL") {
				t.Errorf("ParseTable = %+v", tab.Header)
			}
		})
	}
}

func TestHeaderFieldOffsets(t *testing.T) { // ACPI 6.5 5.2.6
	b := make([]byte, HeaderLen)
	copy(b[0:], "SSDT")
	binary.LittleEndian.PutUint32(b[4:], 0x11223344)
	b[8], b[9] = 2, 0xab
	copy(b[10:], "OEMID1")
	copy(b[16:], "TABLEID8")
	binary.LittleEndian.PutUint32(b[24:], 0x55667788)
	copy(b[28:], "INTL")
	binary.LittleEndian.PutUint32(b[32:], 0x20230628)
	h, err := ParseHeader(b)
	want := Header{"SSDT", 0x11223344, 2, 0xab, "OEMID1", "TABLEID8", 0x55667788, "INTL", 0x20230628}
	if err != nil || h != want {
		t.Fatalf("ParseHeader = %+v, %v; want %+v", h, err, want)
	}
}

// machine lays out hand-built tables in a sparse memory.
type machine struct{ mem Regions }

func (m *machine) put(pa uint64, b []byte) { m.mem = append(m.mem, Region{Base: pa, Data: b}) }

func mkFADTWithDSDT(dsdt uint32) []byte {
	body := make([]byte, fadtMinLen-HeaderLen)
	binary.LittleEndian.PutUint32(body[fadtDSDT-HeaderLen:], dsdt)
	binary.LittleEndian.PutUint32(body[fadtPM1aCntBlk-HeaderLen:], 0x604)
	body[fadtPM1CntLen-HeaderLen] = 2
	return mkTable(SigFADT, 1, body)
}

func TestLoadPrefersXSDTForRevision2(t *testing.T) {
	var m machine
	m.put(0x1000, mkRSDT(0x3000))         // lists only the FADT
	m.put(0x2000, mkXSDT(0x3000, 0x4000)) // FADT and MADT
	m.put(0x3000, mkFADTWithDSDT(0x5000))
	m.put(0x4000, mkMADT(0xfee00000, 0))
	m.put(0x5000, mkTable(SigDSDT, 2, nil))

	tests := []struct {
		name     string
		rsdp     []byte
		wantRoot string
		wantSigs string
	}{
		{"revision 2 with XSDT", mkRSDP(2, 0x1000, 0x2000), "XSDT", "FACP APIC DSDT"},
		{"revision 2 without XSDT", mkRSDP(2, 0x1000, 0), "RSDT", "FACP DSDT"},
		{"revision 0 ignores the XSDT fields", mkRSDP(0, 0x1000, 0), "RSDT", "FACP DSDT"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := ParseRSDP(tt.rsdp)
			if err != nil {
				t.Fatal(err)
			}
			tabs, err := Load(m.mem, r)
			if err != nil {
				t.Fatal(err)
			}
			var sigs []string
			for _, tab := range tabs.List {
				sigs = append(sigs, tab.Signature)
			}
			if tabs.Root.Signature != tt.wantRoot || strings.Join(sigs, " ") != tt.wantSigs || len(tabs.Invalid) != 0 {
				t.Errorf("root %s, tables %v, invalid %v; want %s, %s", tabs.Root.Signature, sigs, tabs.Invalid, tt.wantRoot, tt.wantSigs)
			}
			if d, ok := tabs.Find(SigDSDT); !ok || d.Address != 0x5000 {
				t.Errorf("Find(DSDT) = %#x, %v", d.Address, ok)
			}
		})
	}
}

func TestLoadRejectsBadRootTable(t *testing.T) {
	rsdt := mkRSDT(0x3000)
	pastEnd := append([]byte(nil), rsdt...)
	binary.LittleEndian.PutUint32(pastEnd[4:], 4096)
	fixChecksum(pastEnd, 9, len(pastEnd))
	badSum := append([]byte(nil), rsdt...)
	badSum[HeaderLen]++
	huge := append([]byte(nil), rsdt...)
	binary.LittleEndian.PutUint32(huge[4:], MaxTableLen+1)

	tests := []struct {
		name    string
		root    []byte
		rsdp    []byte
		wantErr error
	}{
		{"root Length past the end of memory", pastEnd, mkRSDP(0, 0x1000, 0), ErrTruncated},
		{"root bad checksum", badSum, mkRSDP(0, 0x1000, 0), ErrChecksum},
		{"root Length above 16 MiB", huge, mkRSDP(0, 0x1000, 0), ErrBadLength},
		{"XSDT address holds an RSDT", rsdt, mkRSDP(2, 0, 0x1000), ErrSignature},
		{"RSDT address unmapped", rsdt, mkRSDP(0, 0x9000, 0), ErrTruncated},
		{"no root address", rsdt, mkRSDP(0, 0, 0), ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var m machine
			m.put(0x1000, tt.root)
			r, err := ParseRSDP(tt.rsdp)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := Load(m.mem, r); !errors.Is(err, tt.wantErr) {
				t.Fatalf("Load: error %v, want %v", err, tt.wantErr)
			}
		})
	}
}

func TestLoadLeavesBadTablesOut(t *testing.T) {
	var m machine
	good := mkTable("WAET", 1, make([]byte, 4))
	badSum := mkTable("BERT", 1, make([]byte, 4))
	badSum[HeaderLen]++
	pastEnd := mkTable("SRAT", 1, make([]byte, 4))
	binary.LittleEndian.PutUint32(pastEnd[4:], 0x10000) // runs past its region
	fixChecksum(pastEnd, 9, len(pastEnd))
	tiny := mkTable("SLIT", 1, nil)
	binary.LittleEndian.PutUint32(tiny[4:], 8)

	m.put(0x1000, mkRSDT(0x2000, 0x3000, 0x4000, 0, 0x5000, 0x6000, 0xdead0000))
	m.put(0x2000, good)
	m.put(0x3000, badSum)
	m.put(0x4000, pastEnd)
	m.put(0x5000, tiny)
	m.put(0x6000, mkFADTWithDSDT(0x7000)) // DSDT missing
	tabs, err := Load(m.mem, RSDP{RsdtAddress: 0x1000})
	if err != nil {
		t.Fatal(err)
	}
	if len(tabs.List) != 2 || tabs.List[0].Signature != "WAET" || tabs.List[1].Signature != SigFADT {
		t.Errorf("List = %v", tabs.List)
	}
	wantErrs := []error{ErrChecksum, ErrTruncated, ErrNotFound, ErrBadLength, ErrTruncated, ErrTruncated}
	if len(tabs.Invalid) != len(wantErrs) {
		t.Fatalf("Invalid = %v, want %d errors", tabs.Invalid, len(wantErrs))
	}
	for i, want := range wantErrs {
		if !errors.Is(tabs.Invalid[i], want) {
			t.Errorf("Invalid[%d] = %v, want %v", i, tabs.Invalid[i], want)
		}
	}
	if !strings.Contains(tabs.Invalid[5].Error(), "DSDT named by the FADT") {
		t.Errorf("Invalid[5] = %v, want it to name the DSDT", tabs.Invalid[5])
	}
	if s := tabs.Summary(); !strings.HasPrefix(s, "ACPI: RSDT, 2 tables (WAET FACP), 6 invalid") {
		t.Errorf("Summary() = %q", s)
	}
}

func TestLoadListsDSDTOnce(t *testing.T) {
	// Some firmware also lists the DSDT in the RSDT.
	var m machine
	m.put(0x1000, mkRSDT(0x2000, 0x3000))
	m.put(0x2000, mkFADTWithDSDT(0x3000))
	m.put(0x3000, mkTable(SigDSDT, 2, nil))
	tabs, err := Load(m.mem, RSDP{RsdtAddress: 0x1000})
	if err != nil || len(tabs.List) != 2 {
		t.Fatalf("Load = %v, %v; want FACP and DSDT once", tabs.List, err)
	}
}

func TestTablesLookupBySignature(t *testing.T) {
	tabs := &Tables{List: []Table{
		{Header: Header{Signature: SigSSDT}, Address: 1},
		{Header: Header{Signature: SigMADT}, Address: 2},
		{Header: Header{Signature: SigSSDT}, Address: 3},
	}}
	if tab, ok := tabs.Find(SigSSDT); !ok || tab.Address != 1 {
		t.Errorf("Find(SSDT) = %d, %v; want the first", tab.Address, ok)
	}
	if all := tabs.FindAll(SigSSDT); len(all) != 2 || all[1].Address != 3 {
		t.Errorf("FindAll(SSDT) = %v", all)
	}
	if _, ok := tabs.Find(SigHPET); ok {
		t.Error("Find(HPET) found one")
	}
	if _, err := tabs.HPET(); !errors.Is(err, ErrNotFound) {
		t.Errorf("HPET() error %v, want ErrNotFound", err)
	}
	if _, err := tabs.FADT(); !errors.Is(err, ErrNotFound) {
		t.Errorf("FADT() error %v, want ErrNotFound", err)
	}
	if _, err := tabs.PowerOff(); !errors.Is(err, ErrNotFound) {
		t.Errorf("PowerOff() error %v, want ErrNotFound", err)
	}
}

func TestRegionsReadAcrossAdjacentRegions(t *testing.T) {
	mem := Regions{{Base: 0x10, Data: []byte{1, 2}}, {Base: 0x12, Data: []byte{3, 4}}, {Base: 0x20, Data: []byte{5}}}
	p := make([]byte, 4)
	if err := mem.ReadAt(p, 0x10); err != nil || string(p) != "\x01\x02\x03\x04" {
		t.Errorf("ReadAt(0x10) = %v, %v", p, err)
	}
	if err := mem.ReadAt(p[:3], 0x13); err == nil {
		t.Error("ReadAt across a hole succeeded")
	}
	if err := mem.ReadAt(p[:2], ^uint64(0)); err == nil {
		t.Error("ReadAt wrapping the address space succeeded")
	}
	r := Region{Base: 0x100, Data: []byte{1, 2, 3}}
	if err := r.ReadAt(p[:3], 0x100); err != nil {
		t.Errorf("Region.ReadAt: %v", err)
	}
	for _, pa := range []uint64{0xff, 0x101, ^uint64(0)} {
		if err := r.ReadAt(p[:3], pa); err == nil {
			t.Errorf("Region.ReadAt(%#x) succeeded", pa)
		}
	}
}
