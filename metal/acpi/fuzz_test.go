package acpi

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"
)

// Fuzz targets for every parser of firmware data. Each must return an
// error, never panic or loop, on any input. With fix set, the harness
// repairs the signature, Length and checksum first, so the fuzzer spends
// its time inside the table rather than failing at the checksum.

// addCaptured seeds f with testdata/*/<file> (fix false: the real bytes).
func addCaptured(f *testing.F, file string) {
	files, _ := filepath.Glob(filepath.Join("testdata", "*", file))
	if len(files) == 0 {
		f.Fatalf("no testdata/*/%s to seed with", file)
	}
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, false)
	}
}

// fixTable returns a copy of b, at least a header long, with signature
// sig, Length len(b) and a valid checksum.
func fixTable(b []byte, sig string) []byte {
	out := make([]byte, max(len(b), HeaderLen))
	copy(out, b)
	copy(out, sig)
	binary.LittleEndian.PutUint32(out[4:], uint32(len(out)))
	fixChecksum(out, 9, len(out))
	return out
}

func FuzzParseMADT(f *testing.F) {
	addCaptured(f, "APIC.bin")
	f.Add(mkMADT(0xfee00000, 1, lapicEntry(0, 0, 1), []byte{MADTLocalX2APIC, 16}), true)
	f.Add(mkMADT(0xfee00000, 1, []byte{MADTLocalAPIC, 0}), true)
	f.Fuzz(func(t *testing.T, b []byte, fix bool) {
		if fix {
			b = fixTable(b, SigMADT)
		}
		m, err := ParseMADT(b)
		if err != nil {
			return
		}
		cpus := m.CPUs()
		if n := m.EnabledCPUs(); n > len(cpus) || len(cpus) > len(m.LocalAPICs)+len(m.LocalX2APICs) {
			t.Fatalf("%d enabled of %d CPUs from %d+%d entries", n, len(cpus), len(m.LocalAPICs), len(m.LocalX2APICs))
		}
		for _, s := range m.Skipped {
			if s.Offset < madtEntriesOff || s.Offset+int(s.Length) > len(b) || s.Length < 2 {
				t.Fatalf("skipped entry %+v outside the table", s)
			}
		}
		for irq := range 16 {
			m.ISAIRQ(uint8(irq))
		}
	})
}

func FuzzParseFADT(f *testing.F) {
	addCaptured(f, "FACP.bin")
	f.Add(newFADT(116).table(), true)
	f.Add(newFADT(276).table(), true)
	f.Fuzz(func(t *testing.T, b []byte, fix bool) {
		if fix {
			b = fixTable(b, SigFADT)
		}
		fadt, err := ParseFADT(b)
		if err != nil {
			return
		}
		if len(b) < fadtMinLen {
			t.Fatalf("accepted a %d-byte FADT", len(b))
		}
		fadt.ResetSupported()
		fadt.PMTimer32Bit()
		fadt.PM1aCnt.IOPort()
		_ = fadt.PM1bCnt.String()
	})
}

func FuzzParseHPET(f *testing.F) {
	addCaptured(f, "HPET.bin")
	f.Fuzz(func(t *testing.T, b []byte, fix bool) {
		if fix {
			b = fixTable(b, SigHPET)
		}
		if h, err := ParseHPET(b); err == nil {
			h.Comparators()
		}
	})
}

func FuzzS5(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "*", "DSDT.bin"))
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{amlNameOp, '\\', '_', 'S', '5', '_', amlPackageOp, 0x46, 0, 2, amlBytePrefix, 5, amlWordPrefix, 5, 0})
	f.Add([]byte{amlNameOp, '_', 'S', '5', '_', amlPackageOp, 5, 1, amlWordPrefix, 7, 7})
	f.Fuzz(func(t *testing.T, b []byte) {
		a, bb, err := S5(b)
		if err == nil && (a > 7 || bb > 7) {
			t.Fatalf("S5 = %d, %d: beyond the 3-bit SLP_TYP field", a, bb)
		}
	})
}

func FuzzParseRSDP(f *testing.F) {
	addCaptured(f, "RSDP.bin")
	f.Add(mkRSDP(2, 0x1000, 0x2000), false)
	f.Add(mkRSDP(2, 0x1000, 0x2000)[:20], true)
	f.Fuzz(func(t *testing.T, b []byte, fix bool) {
		if fix && len(b) >= rsdpV1Len {
			b = append([]byte(nil), b...)
			copy(b, rsdpSignature)
			fixChecksum(b, 8, rsdpV1Len)
			if len(b) >= rsdpV2Len {
				n := int(binary.LittleEndian.Uint32(b[20:]))
				if n >= rsdpV2Len && n <= len(b) {
					fixChecksum(b, 32, n)
				}
			}
		}
		r, err := ParseRSDP(b)
		if err != nil {
			return
		}
		if r.Revision >= 2 && (r.Length < rsdpV2Len || int(r.Length) > len(b)) {
			t.Fatalf("accepted revision %d with Length %d from %d bytes", r.Revision, r.Length, len(b))
		}
		r.RootTable()
	})
}

// FuzzLoad puts the input in memory at 0 and follows an RSDT at 0x40, the
// way Load would through firmware memory, with every listed table's
// checksum repaired.
func FuzzLoad(f *testing.F) {
	var m []byte
	m = append(m, make([]byte, 0x40)...)
	m = append(m, mkRSDT(0x80, 0x100)...)
	m = append(m, make([]byte, 0x80-len(m))...)
	m = append(m, mkFADTWithDSDT(0x200)...)
	m = append(m, make([]byte, 0x100-len(m))...)
	m = append(m, mkMADT(0xfee00000, 1, lapicEntry(0, 0, 1))...)
	m = append(m, make([]byte, 0x200-len(m))...)
	m = append(m, mkTable(SigDSDT, 2, []byte{amlNameOp, '_', 'S', '5', '_', amlPackageOp, 4, 2, 5, 5})...)
	f.Add(m)
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) > 1<<16 {
			return
		}
		b = append([]byte(nil), b...) // the engine's input must not be modified
		mem := Region{Base: 0, Data: b}
		// Repair checksums of whatever headers sit where the RSDT
		// points, so the fuzzer reaches the parsers behind Load.
		if len(b) >= 0x40+HeaderLen {
			fixAt(b, 0x40)
			n := binary.LittleEndian.Uint32(b[0x44:])
			for off := uint32(0x40 + HeaderLen); off+4 <= 0x40+n && int(off)+4 <= len(b); off += 4 {
				fixAt(b, uint64(binary.LittleEndian.Uint32(b[off:])))
			}
		}
		tabs, err := Load(mem, RSDP{RsdtAddress: 0x40})
		if err != nil {
			return
		}
		_ = tabs.Summary()
	})
}

// fixAt repairs the checksum of the table header at pa in b, if its
// Length fits.
func fixAt(b []byte, pa uint64) {
	if pa > uint64(len(b)) || uint64(len(b))-pa < HeaderLen {
		return
	}
	n := uint64(binary.LittleEndian.Uint32(b[pa+4:]))
	if n < HeaderLen || n > uint64(len(b))-pa {
		return
	}
	fixChecksum(b[pa:], 9, int(n))
}

func FuzzParseDMAR(f *testing.F) {
	addCaptured(f, "DMAR.bin")
	f.Add(mkDMAR(45, DMARIntrRemap,
		drhdStruct(DRHDIncludePCIAll, 0, 0xfed90000, scopeEntry(ScopeIOAPIC, 8, 0xf0, 0x1f, 0)),
		rmrrStruct(0, 0x1000, 0x1fff, scopeEntry(ScopePCISubHierarchy, 0, 0, 0x1c, 0, 0, 0)),
		cat(le16(DMARTypeATSR), le16(8), []byte{1, 0}, le16(0))), true)
	f.Fuzz(func(t *testing.T, b []byte, fix bool) {
		if fix {
			b = fixTable(b, SigDMAR)
		}
		d, err := ParseDMAR(b)
		if err != nil {
			return
		}
		for _, u := range d.DRHDs {
			u.IncludePCIAll()
			for _, s := range u.Scopes {
				if len(s.Path) == 0 {
					t.Fatalf("DRHD at %d: scope %+v without a path", u.Offset, s)
				}
				_ = s.String()
			}
		}
		for _, r := range d.RMRRs {
			if r.Limit < r.Base {
				t.Fatalf("RMRR %+v: limit below base", r)
			}
		}
		for _, s := range d.Skipped {
			if s.Offset < dmarStructuresOff || s.Offset+int(s.Length) > len(b) || s.Length < 4 {
				t.Fatalf("skipped structure %+v outside the table", s)
			}
			_ = s.Name()
		}
	})
}

func FuzzParseIVRS(f *testing.F) {
	addCaptured(f, "IVRS.bin")
	f.Add(mkIVRS(0x00203041,
		ivhd10(0xb0, 2, 0x40, 0xfeb80000, 0, 0, 0,
			dev4(IVHDEntryAll, 0, 0), dev4(IVHDEntryStartRange, 0x10, 0), dev4(IVHDEntryEndRange, 0xfe, 0),
			cat(dev4(IVHDEntryAliasSelect, 0x300, 0), []byte{0}, le16(0xa5), []byte{0}),
			cat([]byte{IVHDEntrySpecial, 0, 0, 0xd7, 0x21}, le16(0xa0), []byte{SpecialIOAPIC}),
			cat(dev4(IVHDEntryACPIHID, 0xa5, 0), []byte("AMDI0020"), make([]byte, 8), []byte{2, 1}, []byte("0"))),
		ivhd11(IVHDType40, 2, 0xfeb80000, 1, cat(dev4(IVHDEntryExtRange, 0x500, 0), le32(7)), dev4(IVHDEntryEndRange, 0x5ff, 0)),
		ivmd(IVMDRange, 0x8, 0x100, 0x1ff, 0x80000000, 0x10000)), true)
	f.Fuzz(func(t *testing.T, b []byte, fix bool) {
		if fix {
			b = fixTable(b, SigIVRS)
		}
		r, err := ParseIVRS(b)
		if err != nil {
			return
		}
		r.PASize()
		r.VASize()
		for _, h := range r.IVHDs {
			_ = PCIAddress(h.DeviceID)
			for _, e := range h.Entries {
				if e.Last < e.First || e.Offset < h.Offset || e.Offset >= len(b) {
					t.Fatalf("IVHD at %d: entry %+v", h.Offset, e)
				}
			}
		}
		for _, m := range r.IVMDs {
			if m.Last < m.First {
				t.Fatalf("IVMD %+v: devices backwards", m)
			}
		}
	})
}
