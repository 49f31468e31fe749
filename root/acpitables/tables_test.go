package acpitables

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"testing"

	"gohv/metal/acpi"
)

// pcPlatform is what gohv's device models describe: two VPs here.
func pcPlatform(vps int) Platform {
	return Platform{
		VPs:    vps,
		IOAPIC: IOAPIC{ID: 0xf, Base: 0xfec0_0000},
		Serial: []Serial{{Port: 0x3f8, IRQ: 4}},
		RTC:    &RTC{Port: 0x70, Century: 0x32},
		Sleep:  &Sleep{ControlPort: 0x600, StatusPort: 0x601, S5Type: 5},
		Reset:  &Reset{Port: 0xcf9, Value: 0x06},
		VMBus:  true,
	}
}

const biosArea = 0xe0000

func build(t *testing.T, p Platform, base uint64) Tables {
	t.Helper()
	tb, err := Build(p, base)
	if err != nil {
		t.Fatal(err)
	}
	return tb
}

// bytesOf returns the structure with the signature.
func bytesOf(t *testing.T, tb Tables, sig string) []byte {
	t.Helper()
	r, ok := tb.Find(sig)
	if !ok {
		t.Fatalf("no %s in %v", sig, tb.Ranges)
	}
	return tb.Bytes[r.GPA-tb.Base : r.GPA-tb.Base+uint64(r.Length)]
}

// load parses the tables back with metal's ACPI parser, written apart
// from this package, as the image does with a firmware's tables.
func load(t *testing.T, tb Tables) *acpi.Tables {
	t.Helper()
	rsdp, err := acpi.ParseRSDP(bytesOf(t, tb, SigRSDP))
	if err != nil {
		t.Fatal(err)
	}
	all, err := acpi.Load(acpi.Region{Base: tb.Base, Data: tb.Bytes}, rsdp)
	if err != nil {
		t.Fatal(err)
	}
	if len(all.Invalid) != 0 {
		t.Fatalf("metal/acpi refused tables: %v", all.Invalid)
	}
	return all
}

func TestParsedBackByMetalACPI(t *testing.T) {
	tb := build(t, pcPlatform(2), biosArea)
	all := load(t, tb)
	if sig, pa := all.RSDP.RootTable(); sig != "XSDT" || pa != tb.Ranges[1].GPA {
		t.Errorf("root table %s at %#x, want the XSDT at %#x", sig, pa, tb.Ranges[1].GPA)
	}
	var sigs []string
	for _, tab := range all.List {
		sigs = append(sigs, tab.Signature)
	}
	if want := []string{"FACP", "APIC", "DSDT"}; !equal(sigs, want) {
		t.Errorf("tables %v, want %v", sigs, want)
	}

	m, err := all.MADT()
	if err != nil {
		t.Fatal(err)
	}
	if m.LocalAPICAddress != 0xfee0_0000 || m.PCATCompat() || m.EnabledCPUs() != 2 {
		t.Errorf("MADT: LAPIC %#x, PCAT %v, %d CPUs", m.LocalAPICAddress, m.PCATCompat(), m.EnabledCPUs())
	}
	for i, c := range m.CPUs() {
		if c.APICID != uint32(i) || c.ProcessorUID != uint32(i) || !c.Enabled || c.X2APIC {
			t.Errorf("CPU %d: %+v", i, c)
		}
	}
	if len(m.IOAPICs) != 1 || m.IOAPICs[0] != (acpi.IOAPIC{ID: 0xf, Address: 0xfec0_0000, GSIBase: 0}) {
		t.Errorf("I/O APICs %+v", m.IOAPICs)
	}
	if len(m.Overrides) != 0 || len(m.NMISources) != 0 || len(m.LocalX2APICs) != 0 || len(m.Skipped) != 0 {
		t.Errorf("unexpected MADT entries: %+v", m)
	}
	if len(m.LocalAPICNMIs) != 1 || m.LocalAPICNMIs[0].ProcessorUID != acpi.AllProcessorsUID8 || m.LocalAPICNMIs[0].LINT != 1 ||
		m.LocalAPICNMIs[0].Flags.Polarity() != acpi.PolarityActiveHigh || m.LocalAPICNMIs[0].Flags.TriggerMode() != acpi.TriggerEdge {
		t.Errorf("LAPIC NMI %+v", m.LocalAPICNMIs)
	}
	if gsi, pol, trig := m.ISAIRQ(4); gsi != 4 || pol != acpi.PolarityActiveHigh || trig != acpi.TriggerEdge {
		t.Errorf("COM1's IRQ 4 reaches GSI %d %v %v", gsi, pol, trig)
	}

	f, err := all.FADT()
	if err != nil {
		t.Fatal(err)
	}
	dsdt, _ := tb.Find(SigDSDT)
	if f.Revision != 6 || f.MinorVersion != 5 || f.Length != 276 || f.DSDTAddress != dsdt.GPA || f.FirmwareCtrl != 0 {
		t.Errorf("FADT rev %d.%d len %d DSDT %#x FACS %#x", f.Revision, f.MinorVersion, f.Length, f.DSDTAddress, f.FirmwareCtrl)
	}
	if f.Flags&acpi.FADTHWReducedACPI == 0 || f.Flags&acpi.FADTForceAPICPhysDest == 0 || f.Flags&acpi.FADTWBINVD == 0 {
		t.Errorf("FADT flags %#x", f.Flags)
	}
	if !f.ResetSupported() || f.ResetValue != 6 {
		t.Errorf("reset supported %v value %#x", f.ResetSupported(), f.ResetValue)
	}
	if port, ok := f.ResetReg.IOPort(); !ok || port != 0xcf9 || f.ResetReg.BitWidth != 8 {
		t.Errorf("reset register %v", f.ResetReg)
	}
	if port, ok := f.SleepControl.IOPort(); !ok || port != 0x600 || f.SleepControl.BitWidth != 8 {
		t.Errorf("sleep control %v", f.SleepControl)
	}
	if port, ok := f.SleepStatus.IOPort(); !ok || port != 0x601 || f.SleepStatus.BitWidth != 8 {
		t.Errorf("sleep status %v", f.SleepStatus)
	}
	for name, g := range map[string]acpi.GenericAddress{"PM1a_EVT": f.PM1aEvt, "PM1b_EVT": f.PM1bEvt, "PM1a_CNT": f.PM1aCnt,
		"PM1b_CNT": f.PM1bCnt, "PM2_CNT": f.PM2Cnt, "PM_TMR": f.PMTimer, "GPE0": f.GPE0, "GPE1": f.GPE1} {
		if !g.IsZero() {
			t.Errorf("hardware-reduced FADT names %s: %v", name, g)
		}
	}
	if f.SCIInterrupt != 0 || f.SMICommand != 0 {
		t.Errorf("SCI %d, SMI_CMD %#x", f.SCIInterrupt, f.SMICommand)
	}
	if f.Century != 0x32 || f.IAPCBootArch != acpi.BootArchVGANotPresent {
		t.Errorf("century %#x, boot arch %#x", f.Century, f.IAPCBootArch)
	}
	var vendor [8]byte
	binary.LittleEndian.PutUint64(vendor[:], f.HypervisorVendor)
	if string(vendor[:]) != HypervisorVendor {
		t.Errorf("hypervisor vendor %q", vendor)
	}

	a, b, err := all.S5()
	if err != nil || a != 5 || b != 0 {
		t.Errorf("\\_S5 = %d, %d, %v; want 5, 0", a, b, err)
	}
	// metal's PowerOff drives PM1 control blocks, which a hardware-reduced
	// platform has none of: it must say so, not return port 0.
	if po, err := all.PowerOff(); err == nil {
		t.Errorf("metal/acpi PowerOff on a hardware-reduced FADT: %+v", po)
	}
	if s := all.Summary(); s == "" {
		t.Error("empty summary")
	}
}

func TestRSDPFoundByBIOSAreaScan(t *testing.T) {
	tb := build(t, pcPlatform(1), biosArea)
	area := make([]byte, 0x20000)
	copy(area, tb.Bytes)
	mem := acpi.Regions{{Base: 0, Data: make([]byte, 0x1000)}, {Base: biosArea, Data: area}}
	r, err := acpi.FindRSDP(mem)
	if err != nil {
		t.Fatal(err)
	}
	if r.Address != tb.RSDP || r.Revision != RevisionRSDP || r.OEMID != "GOHV" || r.RsdtAddress != 0 {
		t.Errorf("RSDP %+v, want at %#x", r, tb.RSDP)
	}
	if _, err := acpi.Load(mem, r); err != nil {
		t.Fatal(err)
	}
}

func TestDSDTMatchesASLCompiler(t *testing.T) {
	aml, err := os.ReadFile("testdata/dsdt.aml")
	if err != nil {
		t.Fatal(err)
	}
	got := bytesOf(t, build(t, pcPlatform(1), biosArea), SigDSDT)
	// The header differs (iasl writes its own creator ID and revision);
	// the AML after it must not.
	if !bytes.Equal(got[HeaderLen:], aml[HeaderLen:]) {
		t.Errorf("DSDT AML differs from iasl's compilation of testdata/dsdt.asl:\n got % x\nwant % x", got[HeaderLen:], aml[HeaderLen:])
	}
	if string(got[:4]) != string(aml[:4]) || got[hdrRevision] != aml[hdrRevision] ||
		string(got[hdrOEMID:hdrOEMID+14]) != string(aml[hdrOEMID:hdrOEMID+14]) {
		t.Errorf("DSDT header: % x, iasl's % x", got[:HeaderLen], aml[:HeaderLen])
	}
}

// TestDSDTWithPCIHostMatchesASLCompiler: PCI0 (what root/devices asks for
// when a partition has assigned functions) is iasl's AML for
// testdata/dsdt-pci.asl.
func TestDSDTWithPCIHostMatchesASLCompiler(t *testing.T) {
	aml, err := os.ReadFile("testdata/dsdt-pci.aml")
	if err != nil {
		t.Fatal(err)
	}
	p := pcPlatform(1)
	p.PCI = &PCIHost{MMIOBase: 0xc000_0000, MMIOLength: 0xfec0_0000 - 0xc000_0000}
	got := bytesOf(t, build(t, p, biosArea), SigDSDT)
	if !bytes.Equal(got[HeaderLen:], aml[HeaderLen:]) {
		t.Errorf("DSDT AML differs from iasl's compilation of testdata/dsdt-pci.asl:\n got % x\nwant % x", got[HeaderLen:], aml[HeaderLen:])
	}
}

func TestEveryStructureChecksummedAndSized(t *testing.T) {
	for _, vps := range []int{1, 2, 16, MaxVPs} {
		tb := build(t, pcPlatform(vps), biosArea)
		for _, r := range tb.Ranges {
			b := bytesOf(t, tb, r.Signature)
			if r.Signature == SigRSDP {
				if sum(b[:20]) != 0 || sum(b) != 0 || binary.LittleEndian.Uint32(b[20:]) != uint32(len(b)) {
					t.Errorf("%d VPs: RSDP checksums or length wrong: % x", vps, b)
				}
				continue
			}
			if sum(b) != 0 {
				t.Errorf("%d VPs: %s does not sum to zero", vps, r.Signature)
			}
			if n := binary.LittleEndian.Uint32(b[hdrLength:]); n != r.Length {
				t.Errorf("%d VPs: %s Length %d, range %d", vps, r.Signature, n, r.Length)
			}
			if _, err := acpi.ParseTable(b); err != nil {
				t.Errorf("%d VPs: %s: %v", vps, r.Signature, err)
			}
		}
	}
}

func TestLayoutContiguousAlignedRSDPFirst(t *testing.T) {
	tb := build(t, pcPlatform(4), 0x1000_0000)
	if tb.RSDP != tb.Base || tb.Ranges[0].Signature != SigRSDP {
		t.Fatalf("RSDP at %#x, first %v", tb.RSDP, tb.Ranges[0])
	}
	want := []string{SigRSDP, SigXSDT, SigFADT, SigMADT, SigDSDT}
	end := tb.Base
	for i, r := range tb.Ranges {
		if r.Signature != want[i] {
			t.Errorf("structure %d is %s, want %s", i, r.Signature, want[i])
		}
		if r.GPA%16 != 0 || r.GPA < end || r.GPA-end >= 16 {
			t.Errorf("%s at %#x after the previous end %#x", r.Signature, r.GPA, end)
		}
		end = r.GPA + uint64(r.Length)
	}
	if end > tb.Base+uint64(len(tb.Bytes)) || tb.Base+uint64(len(tb.Bytes))-end >= 16 {
		t.Errorf("last structure ends at %#x, bytes at %#x", end, tb.Base+uint64(len(tb.Bytes)))
	}
}

// TestHeadersAtSpecOffsets pins the System Description Table Header
// (ACPI 6.5 5.2.6) and each table's revision.
func TestHeadersAtSpecOffsets(t *testing.T) {
	tb := build(t, pcPlatform(1), biosArea)
	for sig, rev := range map[string]byte{"XSDT": 1, "FACP": 6, "APIC": 6, "DSDT": 2} {
		b := bytesOf(t, tb, sig)
		le := binary.LittleEndian
		if string(b[0:4]) != sig || le.Uint32(b[4:]) != uint32(len(b)) || b[8] != rev ||
			string(b[10:16]) != "GOHV  " || string(b[16:24]) != "GOHV"+sig || le.Uint32(b[24:]) != 1 ||
			string(b[28:32]) != "GOHV" || le.Uint32(b[32:]) != 1 {
			t.Errorf("%s header % x", sig, b[:36])
		}
	}
	x := bytesOf(t, tb, SigXSDT)
	f, _ := tb.Find(SigFADT)
	m, _ := tb.Find(SigMADT)
	if len(x) != 52 || binary.LittleEndian.Uint64(x[36:]) != f.GPA || binary.LittleEndian.Uint64(x[44:]) != m.GPA {
		t.Errorf("XSDT entries % x; FADT %#x MADT %#x", x[36:], f.GPA, m.GPA)
	}
}

// TestRSDPAtSpecOffsets pins ACPI 6.5 5.2.5.3.
func TestRSDPAtSpecOffsets(t *testing.T) {
	tb := build(t, pcPlatform(1), biosArea)
	b := bytesOf(t, tb, SigRSDP)
	x, _ := tb.Find(SigXSDT)
	le := binary.LittleEndian
	if len(b) != 36 || string(b[0:8]) != "RSD PTR " || string(b[9:15]) != "GOHV  " || b[15] != 2 ||
		le.Uint32(b[16:]) != 0 || le.Uint32(b[20:]) != 36 || le.Uint64(b[24:]) != x.GPA || !bytes.Equal(b[33:36], []byte{0, 0, 0}) {
		t.Errorf("RSDP % x", b)
	}
}

// TestFADTAtSpecOffsets pins the FADT fields gohv sets against ACPI 6.5
// 5.2.9 (the offsets in the FADT Format table), byte by byte.
func TestFADTAtSpecOffsets(t *testing.T) {
	tb := build(t, pcPlatform(1), biosArea)
	b := bytesOf(t, tb, SigFADT)
	d, _ := tb.Find(SigDSDT)
	le := binary.LittleEndian
	gasIO := func(port uint16) []byte { // space I/O, 8 bits, offset 0, byte access
		return le.AppendUint64([]byte{1, 8, 0, 1}, uint64(port))
	}
	for _, c := range []struct {
		field string
		off   int
		want  []byte
	}{
		{"FIRMWARE_CTRL", 36, []byte{0, 0, 0, 0}},
		{"DSDT", 40, le.AppendUint32(nil, uint32(d.GPA))},
		{"Preferred_PM_Profile", 45, []byte{0}},
		{"SCI_INT", 46, []byte{0, 0}},
		{"SMI_CMD", 48, []byte{0, 0, 0, 0}},
		{"PM1a_EVT_BLK..GPE1_BLK", 56, make([]byte, 32)},
		{"PM1_EVT_LEN..GPE1_BASE", 88, make([]byte, 7)},
		{"P_LVL2_LAT", 96, []byte{101, 0}},
		{"P_LVL3_LAT", 98, []byte{0xe9, 0x03}},
		{"CENTURY", 108, []byte{0x32}},
		{"IAPC_BOOT_ARCH", 109, []byte{0x04, 0x00}},
		{"Flags", 112, le.AppendUint32(nil, 1<<0|1<<10|1<<19|1<<20)},
		{"RESET_REG", 116, gasIO(0xcf9)},
		{"RESET_VALUE", 128, []byte{6}},
		{"ARM_BOOT_ARCH", 129, []byte{0, 0}},
		{"FADT Minor Version", 131, []byte{5}},
		{"X_FIRMWARE_CTRL", 132, make([]byte, 8)},
		{"X_DSDT", 140, le.AppendUint64(nil, d.GPA)},
		{"X_PM1a_EVT_BLK..X_GPE1_BLK", 148, make([]byte, 96)},
		{"SLEEP_CONTROL_REG", 244, gasIO(0x600)},
		{"SLEEP_STATUS_REG", 256, gasIO(0x601)},
		{"Hypervisor Vendor Identity", 268, []byte("GOHV\x00\x00\x00\x00")},
	} {
		if got := b[c.off : c.off+len(c.want)]; !bytes.Equal(got, c.want) {
			t.Errorf("%s at %d: % x, want % x", c.field, c.off, got, c.want)
		}
	}
	if len(b) != 276 {
		t.Errorf("FADT is %d bytes, want 276", len(b))
	}
}

// TestMADTAtSpecOffsets pins ACPI 6.5 5.2.12: header fields, then the
// Processor Local APIC (5.2.12.2), I/O APIC (5.2.12.3), Interrupt Source
// Override (5.2.12.5) and Local APIC NMI (5.2.12.7) structures.
func TestMADTAtSpecOffsets(t *testing.T) {
	p := pcPlatform(2)
	p.Overrides = []Override{{IRQ: 0, GSI: 2}, {IRQ: 9, GSI: 9, Flags: INTILevel | INTIActiveLow}}
	b := bytesOf(t, build(t, p, biosArea), SigMADT)
	want := []byte{
		0x00, 0x00, 0xe0, 0xfe, // Local Interrupt Controller Address
		0x00, 0x00, 0x00, 0x00, // Flags: no PCAT_COMPAT
		0, 8, 0, 0, 1, 0, 0, 0, // Local APIC: UID 0, APIC ID 0, enabled
		0, 8, 1, 1, 1, 0, 0, 0, // UID 1, APIC ID 1
		1, 12, 0x0f, 0, 0x00, 0x00, 0xc0, 0xfe, 0, 0, 0, 0, // I/O APIC 0xF at 0xFEC00000, GSI base 0
		2, 10, 0, 0, 2, 0, 0, 0, 0x00, 0x00, // ISA IRQ 0 -> GSI 2, conforming
		2, 10, 0, 9, 9, 0, 0, 0, 0x0f, 0x00, // ISA IRQ 9 -> GSI 9, level, active low
		4, 6, 0xff, 0x05, 0x00, 1, // NMI on LINT1 of all processors, edge, active high
	}
	if got := b[HeaderLen:]; !bytes.Equal(got, want) {
		t.Errorf("MADT body\n got % x\nwant % x", got, want)
	}
	m, err := acpi.ParseMADT(b)
	if err != nil {
		t.Fatal(err)
	}
	if gsi, _, _ := m.ISAIRQ(0); gsi != 2 {
		t.Errorf("IRQ 0 -> GSI %d", gsi)
	}
	if gsi, pol, trig := m.ISAIRQ(9); gsi != 9 || pol != acpi.PolarityActiveLow || trig != acpi.TriggerLevel {
		t.Errorf("IRQ 9 -> %d %v %v", gsi, pol, trig)
	}
}

func TestVPCounts(t *testing.T) {
	for _, vps := range []int{1, 3, 64, MaxVPs} {
		m, err := load(t, build(t, pcPlatform(vps), biosArea)).MADT()
		if err != nil {
			t.Fatal(err)
		}
		cpus := m.CPUs()
		if len(cpus) != vps || m.EnabledCPUs() != vps || cpus[vps-1].APICID != uint32(vps-1) {
			t.Errorf("%d VPs: MADT lists %d (%d enabled)", vps, len(cpus), m.EnabledCPUs())
		}
	}
}

func TestOptionalPartsLeftOut(t *testing.T) {
	p := pcPlatform(1)
	p.Serial, p.RTC, p.Sleep, p.Reset, p.VMBus = nil, nil, nil, nil, false
	tb := build(t, p, biosArea)
	all := load(t, tb)
	f, err := all.FADT()
	if err != nil {
		t.Fatal(err)
	}
	if f.ResetSupported() || !f.SleepControl.IsZero() || !f.SleepStatus.IsZero() || f.Century != 0 ||
		f.IAPCBootArch != acpi.BootArchVGANotPresent|acpi.BootArchCMOSRTCNotPresent {
		t.Errorf("FADT without reset/sleep/RTC: %+v", f)
	}
	if _, _, err := all.S5(); !errors.Is(err, acpi.ErrNotFound) {
		t.Errorf("\\_S5 without sleep registers: %v", err)
	}
	dsdt := bytesOf(t, tb, SigDSDT)
	for _, name := range []string{"COM1", "RTC0", "VMBS", "_S5_"} {
		if bytes.Contains(dsdt, []byte(name)) {
			t.Errorf("DSDT still names %s", name)
		}
	}
	// What is left is an empty \_SB.
	if want := []byte("\x10\x05_SB_"); !bytes.Equal(dsdt[HeaderLen:], want) {
		t.Errorf("DSDT AML % x, want % x", dsdt[HeaderLen:], want)
	}
}

func TestTwoSerialPorts(t *testing.T) {
	p := pcPlatform(1)
	p.Serial = append(p.Serial, Serial{Port: 0x2f8, IRQ: 3})
	dsdt := bytesOf(t, build(t, p, biosArea), SigDSDT)
	com2 := amlDevice("COM2", amlName("_HID", amlEISAID("PNP0501")), amlName("_UID", amlInteger(1)),
		amlName("_DDN", amlString("COM2")), amlName("_CRS", resTemplate(resIO(0x2f8, 8), resIRQ(3))))
	if !bytes.Contains(dsdt, com2) {
		t.Errorf("DSDT has no COM2 at 0x2F8 IRQ 3")
	}
}

func TestDSDTAbove4GiBLeavesThe32BitFieldZero(t *testing.T) {
	tb := build(t, pcPlatform(1), 1<<32)
	b := bytesOf(t, tb, SigFADT)
	d, _ := tb.Find(SigDSDT)
	if binary.LittleEndian.Uint32(b[fadtDSDT:]) != 0 || binary.LittleEndian.Uint64(b[fadtXDSDT:]) != d.GPA {
		t.Errorf("DSDT fields % x / % x for a DSDT at %#x", b[40:44], b[140:148], d.GPA)
	}
	load(t, tb)
}

func TestBuildRefusesWhatTablesCannotSay(t *testing.T) {
	for name, mod := range map[string]func(p *Platform) uint64{
		"no VPs":           func(p *Platform) uint64 { p.VPs = 0; return biosArea },
		"256 VPs":          func(p *Platform) uint64 { p.VPs = 256; return biosArea },
		"no I/O APIC":      func(p *Platform) uint64 { p.IOAPIC.Base = 0; return biosArea },
		"override IRQ 16":  func(p *Platform) uint64 { p.Overrides = []Override{{IRQ: 16, GSI: 16}}; return biosArea },
		"override flags":   func(p *Platform) uint64 { p.Overrides = []Override{{IRQ: 9, GSI: 9, Flags: 0x10}}; return biosArea },
		"serial IRQ 16":    func(p *Platform) uint64 { p.Serial[0].IRQ = 16; return biosArea },
		"ten serial ports": func(p *Platform) uint64 { p.Serial = make([]Serial, 10); return biosArea },
		"sleep w/o status": func(p *Platform) uint64 { p.Sleep.StatusPort = 0; return biosArea },
		"SLP_TYP 8":        func(p *Platform) uint64 { p.Sleep.S5Type = 8; return biosArea },
		"reset at port 0":  func(p *Platform) uint64 { p.Reset.Port = 0; return biosArea },
		"RTC at port 0":    func(p *Platform) uint64 { p.RTC.Port = 0; return biosArea },
		"empty PCI window": func(p *Platform) uint64 { p.PCI = &PCIHost{MMIOBase: 0xc000_0000}; return biosArea },
		"PCI past 4 GiB": func(p *Platform) uint64 {
			p.PCI = &PCIHost{MMIOBase: 0xf000_0000, MMIOLength: 0x2000_0000}
			return biosArea
		},
		"unaligned base":     func(p *Platform) uint64 { return biosArea + 8 },
		"wrapping the space": func(p *Platform) uint64 { return ^uint64(0) &^ 15 },
	} {
		p := pcPlatform(1)
		base := mod(&p)
		if _, err := Build(p, base); !errors.Is(err, ErrPlatform) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func sum(b []byte) byte {
	var s byte
	for _, c := range b {
		s += c
	}
	return s
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
