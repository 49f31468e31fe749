package acpi

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

// Entry builders, ACPI 6.5 5.2.12.
func lapicEntry(uid, id uint8, flags uint32) []byte {
	return cat([]byte{MADTLocalAPIC, 8, uid, id}, le32(flags))
}

func ioapicEntry(id uint8, addr, gsiBase uint32) []byte {
	return cat([]byte{MADTIOAPIC, 12, id, 0}, le32(addr), le32(gsiBase))
}

func isoEntry(src uint8, gsi uint32, flags uint16) []byte {
	return cat([]byte{MADTInterruptSourceOverride, 10, 0, src}, le32(gsi), le16(flags))
}

func TestParseMADTDecodesEveryEntryType(t *testing.T) {
	long := cat(lapicEntry(2, 5, 1), []byte{9}) // longer than the ACPI 1.0 size: accepted
	long[1] = 9
	b := mkMADT(0xfee00000, MADTPCATCompat,
		lapicEntry(0, 0, LocalAPICEnabled),
		lapicEntry(1, 4, LocalAPICOnlineCapable),
		ioapicEntry(8, 0xfec00000, 0),
		ioapicEntry(9, 0xfec01000, 24),
		isoEntry(0, 2, 0),
		isoEntry(9, 9, 0xf), // active low, level
		cat([]byte{MADTNMISource, 8}, le16(0x5), le32(23)),
		cat([]byte{MADTLocalAPICNMI, 6, 0xff}, le16(0x5), []byte{1}),
		cat([]byte{MADTLocalAPICAddressOverride, 12, 0, 0}, le64(0x1_fee0_0000)),
		cat([]byte{MADTLocalX2APIC, 16, 0, 0}, le32(0x100), le32(LocalAPICEnabled), le32(7)),
		cat([]byte{MADTLocalX2APIC, 16, 0, 0}, le32(0), le32(LocalAPICEnabled), le32(0)), // duplicates APIC ID 0
		cat([]byte{MADTLocalX2APICNMI, 12}, le16(0), le32(AllProcessorsUID32), []byte{1, 0, 0, 0}),
		[]byte{0x0b, 4, 0xaa, 0xbb}, // GICC, truncated: unknown types are only skipped
		cat([]byte{0x7f, 3, 0}),     // reserved type
		long,
	)

	m, err := ParseMADT(b)
	if err != nil {
		t.Fatal(err)
	}
	if m.LocalAPICAddress32 != 0xfee00000 || m.LocalAPICAddress != 0x1_fee0_0000 || !m.PCATCompat() {
		t.Errorf("LAPIC address %#x (32-bit field %#x), PCAT_COMPAT %v", m.LocalAPICAddress, m.LocalAPICAddress32, m.PCATCompat())
	}
	wantLAPICs := []LocalAPIC{{0, 0, LocalAPICEnabled}, {1, 4, LocalAPICOnlineCapable}, {2, 5, 1}}
	if !slices.Equal(m.LocalAPICs, wantLAPICs) {
		t.Errorf("LocalAPICs = %+v, want %+v", m.LocalAPICs, wantLAPICs)
	}
	wantIO := []IOAPIC{{8, 0xfec00000, 0}, {9, 0xfec01000, 24}}
	if !slices.Equal(m.IOAPICs, wantIO) {
		t.Errorf("IOAPICs = %+v, want %+v", m.IOAPICs, wantIO)
	}
	wantISO := []InterruptSourceOverride{{0, 0, 2, 0}, {0, 9, 9, 0xf}}
	if !slices.Equal(m.Overrides, wantISO) {
		t.Errorf("Overrides = %+v, want %+v", m.Overrides, wantISO)
	}
	if want := []NMISource{{5, 23}}; !slices.Equal(m.NMISources, want) {
		t.Errorf("NMISources = %+v, want %+v", m.NMISources, want)
	}
	if want := []LocalAPICNMI{{0xff, 5, 1}}; !slices.Equal(m.LocalAPICNMIs, want) {
		t.Errorf("LocalAPICNMIs = %+v, want %+v", m.LocalAPICNMIs, want)
	}
	if want := []LocalX2APIC{{0x100, 1, 7}, {0, 1, 0}}; !slices.Equal(m.LocalX2APICs, want) {
		t.Errorf("LocalX2APICs = %+v, want %+v", m.LocalX2APICs, want)
	}
	if want := []LocalX2APICNMI{{0, AllProcessorsUID32, 1}}; !slices.Equal(m.LocalX2APICNMIs, want) {
		t.Errorf("LocalX2APICNMIs = %+v, want %+v", m.LocalX2APICNMIs, want)
	}
	if len(m.Skipped) != 2 || m.Skipped[0].Type != 0x0b || m.Skipped[1].Type != 0x7f {
		t.Errorf("Skipped = %+v, want types 0xb and 0x7f", m.Skipped)
	}
	wantCPUs := []CPU{
		{APICID: 0, ProcessorUID: 0, Enabled: true},
		{APICID: 4, ProcessorUID: 1, OnlineCapable: true},
		{APICID: 5, ProcessorUID: 2, Enabled: true},
		{APICID: 0x100, ProcessorUID: 7, X2APIC: true, Enabled: true},
	}
	if got := m.CPUs(); !slices.Equal(got, wantCPUs) {
		t.Errorf("CPUs() = %+v, want %+v", got, wantCPUs)
	}
	if m.EnabledCPUs() != 3 {
		t.Errorf("EnabledCPUs() = %d, want 3", m.EnabledCPUs())
	}
	if gsi, pol, trig := m.ISAIRQ(9); gsi != 9 || pol != PolarityActiveLow || trig != TriggerLevel {
		t.Errorf("ISAIRQ(9) = %d %v %v, want 9 active-low level", gsi, pol, trig)
	}
}

func TestParseMADTRejectsBadEntries(t *testing.T) {
	tests := []struct {
		name    string
		entries [][]byte
		wantErr error
		wantMsg string
	}{
		{"entry of length 0", [][]byte{lapicEntry(0, 0, 1), {MADTLocalAPIC, 0, 0, 0, 0, 0, 0, 0}},
			ErrBadLength, "acpi: MADT entry at offset 52: type 0 length 0"},
		{"entry of length 1", [][]byte{{0x42, 1}}, ErrBadLength, "length 1"},
		{"entry running past the table", [][]byte{lapicEntry(0, 0, 1), {MADTIOAPIC, 12, 0, 0}},
			ErrTruncated, "acpi: MADT entry at offset 52: type 1 length 12 runs past table end 56"},
		{"one byte left over", [][]byte{lapicEntry(0, 0, 1), {MADTIOAPIC}}, ErrTruncated, "header runs past table end"},
		{"I/O APIC shorter than 12 bytes", [][]byte{{MADTIOAPIC, 8, 0, 0, 0, 0, 0, 0}}, ErrBadLength, "need 12"},
		{"x2APIC shorter than 16 bytes", [][]byte{{MADTLocalX2APIC, 8, 0, 0, 0, 0, 0, 0}}, ErrBadLength, "need 16"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseMADT(mkMADT(0xfee00000, 0, tt.entries...))
			if !errors.Is(err, tt.wantErr) || !strings.Contains(err.Error(), tt.wantMsg) {
				t.Fatalf("ParseMADT: %v, want %v containing %q", err, tt.wantErr, tt.wantMsg)
			}
		})
	}
}

func TestParseMADTRejectsBadTables(t *testing.T) {
	short := mkTable(SigMADT, 1, []byte{0, 0, 0xe0, 0xfe}) // no Flags field
	notMADT := mkTable(SigFADT, 1, make([]byte, 8))
	badSum := mkMADT(0xfee00000, 0)
	badSum[40]++
	for _, tt := range []struct {
		name    string
		in      []byte
		wantErr error
	}{
		{"fixed part missing", short, ErrBadLength},
		{"wrong signature", notMADT, ErrSignature},
		{"bad checksum", badSum, ErrChecksum},
		{"nothing", nil, ErrTruncated},
	} {
		if _, err := ParseMADT(tt.in); !errors.Is(err, tt.wantErr) {
			t.Errorf("%s: ParseMADT error %v, want %v", tt.name, err, tt.wantErr)
		}
	}
	if m, err := ParseMADT(mkMADT(0xfee00000, 0)); err != nil || len(m.CPUs()) != 0 || m.PCATCompat() {
		t.Errorf("empty MADT: %+v, %v", m, err)
	}
}

func TestINTIFlags(t *testing.T) { // ACPI 6.5 5.2.12.5
	for _, tt := range []struct {
		f    INTIFlags
		pol  Polarity
		trig TriggerMode
		s    string
	}{
		{0x0, PolarityConforms, TriggerConforms, "conforming,conforming"},
		{0x1, PolarityActiveHigh, TriggerConforms, "active-high,conforming"},
		{0x3, PolarityActiveLow, TriggerConforms, "active-low,conforming"},
		{0x4, PolarityConforms, TriggerEdge, "conforming,edge"},
		{0xd, PolarityActiveHigh, TriggerLevel, "active-high,level"},
		{0xa, PolarityReserved, TriggerReserved, "reserved-polarity,reserved-trigger"},
	} {
		if tt.f.Polarity() != tt.pol || tt.f.TriggerMode() != tt.trig || tt.f.String() != tt.s {
			t.Errorf("INTIFlags(%#x) = %v %v %q", uint16(tt.f), tt.f.Polarity(), tt.f.TriggerMode(), tt.f.String())
		}
	}
}
