package acpi

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// The captures under testdata/ were made by tools/acpidump from QEMU 7.2
// (see its doc comment and each tables.txt header).
var captures = []string{"qemu-pc", "qemu-q35", "qemu-q35-hotplug", "qemu-q35-ovmf", "qemu-q35-intel-iommu", "qemu-q35-amd-iommu"}

// captured is one capture: the manifest and a sparse memory rebuilt from
// it, laid out as the firmware left it.
type captured struct {
	dir     string
	ebda    uint16
	entries []capturedTable
	mem     Regions
}

type capturedTable struct {
	sig  string
	pa   uint64
	data []byte
}

func (c *captured) table(t *testing.T, sig string) capturedTable {
	t.Helper()
	for _, e := range c.entries {
		if e.sig == sig {
			return e
		}
	}
	t.Fatalf("%s: no %s in tables.txt", c.dir, sig)
	return capturedTable{}
}

// loadCapture reads testdata/<name>/tables.txt and builds the memory: a
// BIOS data area holding the EBDA segment, a zeroed EBDA and BIOS area
// 0xE0000-0xFFFFF (with the RSDP copied in when it lives there), and every
// table at its address.
func loadCapture(t *testing.T, name string) *captured {
	t.Helper()
	dir := filepath.Join("testdata", name)
	f, err := os.Open(filepath.Join(dir, "tables.txt"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	c := &captured{dir: dir}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		w := strings.Fields(line)
		if w[0] == "ebda" && len(w) == 2 {
			v, err := strconv.ParseUint(w[1], 0, 16)
			if err != nil {
				t.Fatalf("%s: %q: %v", dir, line, err)
			}
			c.ebda = uint16(v)
			continue
		}
		if len(w) != 4 {
			t.Fatalf("%s: bad manifest line %q", dir, line)
		}
		pa, err1 := strconv.ParseUint(w[1], 0, 64)
		n, err2 := strconv.Atoi(w[2])
		data, err3 := os.ReadFile(filepath.Join(dir, w[3]))
		if err := errors.Join(err1, err2, err3); err != nil {
			t.Fatalf("%s: %q: %v", dir, line, err)
		}
		if len(data) != n {
			t.Fatalf("%s: %s is %d bytes, manifest says %d", dir, w[3], len(data), n)
		}
		c.entries = append(c.entries, capturedTable{sig: w[0], pa: pa, data: data})
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}

	bda := make([]byte, 0x100)
	binary.LittleEndian.PutUint16(bda[bdaEBDASegment-0x400:], c.ebda)
	bios := make([]byte, biosAreaEnd-biosAreaStart)
	c.mem = Regions{{Base: 0x400, Data: bda}, {Base: biosAreaStart, Data: bios}}
	if ebda := uint64(c.ebda) << 4; ebda != 0 {
		c.mem = append(c.mem, Region{Base: ebda, Data: make([]byte, ebdaSearchLen)})
	}
	for _, e := range c.entries {
		if e.pa >= biosAreaStart && e.pa+uint64(len(e.data)) <= biosAreaEnd {
			copy(bios[e.pa-biosAreaStart:], e.data)
			continue
		}
		c.mem = append(c.mem, Region{Base: e.pa, Data: e.data})
	}
	return c
}

// loadTables finds the RSDP as the image would (or, for UEFI firmware,
// takes it as a boot loader hands it over) and loads the tables.
func (c *captured) loadTables(t *testing.T) *Tables {
	t.Helper()
	rsdp, err := FindRSDP(c.mem)
	if errors.Is(err, ErrNoRSDP) {
		e := c.table(t, "RSDP")
		if rsdp, err = ParseRSDP(e.data); err != nil {
			t.Fatalf("ParseRSDP(%s/RSDP.bin): %v", c.dir, err)
		}
	} else if err != nil {
		t.Fatalf("FindRSDP: %v", err)
	}
	tabs, err := Load(c.mem, rsdp)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return tabs
}

func TestCapturedTablesLoadCompletely(t *testing.T) {
	tests := []struct {
		capture     string
		rsdpInBIOS  bool // SeaBIOS: found by FindRSDP; OVMF: handed over
		rsdpAddress uint64
		summary     string
	}{
		{"qemu-pc", true, 0xf59d0,
			"ACPI: RSDT, 5 tables (FACP APIC HPET WAET DSDT), 2 CPUs, 1 IOAPIC @0xfec00000 GSI 0, 5 overrides, HPET @0xfed00000, S5 0/0 via 0x604"},
		{"qemu-q35", true, 0xf59e0,
			"ACPI: RSDT, 6 tables (FACP APIC HPET MCFG WAET DSDT), 4 CPUs, 1 IOAPIC @0xfec00000 GSI 0, 5 overrides, HPET @0xfed00000, S5 0/0 via 0x604"},
		{"qemu-q35-hotplug", true, 0xf59e0,
			"ACPI: RSDT, 6 tables (FACP APIC HPET MCFG WAET DSDT), 2 CPUs, 1 IOAPIC @0xfec00000 GSI 0, 5 overrides, HPET @0xfed00000, S5 0/0 via 0x604"},
		{"qemu-q35-ovmf", false, 0x777e000,
			"ACPI: RSDT, 6 tables (FACP APIC HPET MCFG WAET DSDT), 2 CPUs, 1 IOAPIC @0xfec00000 GSI 0, 5 overrides, HPET @0xfed00000, S5 0/0 via 0x604"},
		{"qemu-q35-intel-iommu", true, 0xf59e0,
			"ACPI: RSDT, 7 tables (FACP APIC HPET MCFG DMAR WAET DSDT), 2 CPUs, 1 IOAPIC @0xfec00000 GSI 0, 5 overrides, HPET @0xfed00000, S5 0/0 via 0x604"},
		{"qemu-q35-amd-iommu", true, 0xf59e0,
			"ACPI: RSDT, 7 tables (FACP APIC HPET MCFG IVRS WAET DSDT), 2 CPUs, 1 IOAPIC @0xfec00000 GSI 0, 5 overrides, HPET @0xfed00000, S5 0/0 via 0x604"},
	}
	for _, tt := range tests {
		t.Run(tt.capture, func(t *testing.T) {
			c := loadCapture(t, tt.capture)
			rsdp, err := FindRSDP(c.mem)
			if tt.rsdpInBIOS {
				if err != nil {
					t.Fatalf("FindRSDP: %v", err)
				}
				if rsdp.Address != tt.rsdpAddress || rsdp.Revision != 0 || rsdp.OEMID != "BOCHS" {
					t.Errorf("RSDP = %+v, want revision 0 from BOCHS at %#x", rsdp, tt.rsdpAddress)
				}
			} else if !errors.Is(err, ErrNoRSDP) {
				t.Fatalf("FindRSDP on UEFI firmware's memory = %v, want ErrNoRSDP", err)
			}

			tabs := c.loadTables(t)
			if len(tabs.Invalid) != 0 {
				t.Errorf("Invalid = %v", tabs.Invalid)
			}
			if got := tabs.Summary(); got != tt.summary {
				t.Errorf("Summary() =\n%s\nwant\n%s", got, tt.summary)
			}
			// Every table Load lists is the one in the manifest, at the
			// same address, byte for byte.
			root := c.table(t, "RSDT")
			if tabs.Root.Address != root.pa || !bytes.Equal(tabs.Root.Data, root.data) {
				t.Errorf("root table at %#x differs from RSDT.bin at %#x", tabs.Root.Address, root.pa)
			}
			var want []capturedTable
			for _, e := range c.entries {
				if e.sig != "RSDP" && e.sig != "RSDT" && e.sig != "FACS" {
					want = append(want, e)
				}
			}
			if len(tabs.List) != len(want) {
				t.Fatalf("Load listed %d tables, manifest has %d", len(tabs.List), len(want))
			}
			for i, tab := range tabs.List {
				if tab.Signature != want[i].sig || tab.Address != want[i].pa || !bytes.Equal(tab.Data, want[i].data) {
					t.Errorf("table %d: %s at %#x (%d bytes), want %s at %#x (%d bytes)",
						i, tab.Signature, tab.Address, len(tab.Data), want[i].sig, want[i].pa, len(want[i].data))
				}
			}
		})
	}
}

func TestCapturedTableChecksumsAreValid(t *testing.T) {
	for _, name := range captures {
		c := loadCapture(t, name)
		for _, e := range c.entries {
			var err error
			switch e.sig {
			case "RSDP":
				_, err = ParseRSDP(e.data)
			case SigFACS: // no checksum, 5.2.10
				continue
			default:
				_, err = ParseTable(e.data)
			}
			if err != nil {
				t.Errorf("%s/%s: %v", name, e.sig, err)
			}
		}
	}
}

func TestCapturedMADTDescribesCPUsAndInterrupts(t *testing.T) {
	tests := []struct {
		capture string
		cpus    []CPU
	}{
		{"qemu-pc", []CPU{
			{APICID: 0, ProcessorUID: 0, Enabled: true},
			{APICID: 1, ProcessorUID: 1, Enabled: true},
		}},
		{"qemu-q35", []CPU{
			{APICID: 0, ProcessorUID: 0, Enabled: true},
			{APICID: 1, ProcessorUID: 1, Enabled: true},
			{APICID: 2, ProcessorUID: 2, Enabled: true},
			{APICID: 3, ProcessorUID: 3, Enabled: true},
		}},
		// -smp 2,maxcpus=4: the hot-pluggable CPUs are listed with
		// flags 0 (neither enabled nor online-capable).
		{"qemu-q35-hotplug", []CPU{
			{APICID: 0, ProcessorUID: 0, Enabled: true},
			{APICID: 1, ProcessorUID: 1, Enabled: true},
			{APICID: 2, ProcessorUID: 2},
			{APICID: 3, ProcessorUID: 3},
		}},
		{"qemu-q35-ovmf", []CPU{
			{APICID: 0, ProcessorUID: 0, Enabled: true},
			{APICID: 1, ProcessorUID: 1, Enabled: true},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.capture, func(t *testing.T) {
			m, err := loadCapture(t, tt.capture).loadTables(t).MADT()
			if err != nil {
				t.Fatal(err)
			}
			if got := m.CPUs(); !slices.Equal(got, tt.cpus) {
				t.Errorf("CPUs() = %+v, want %+v", got, tt.cpus)
			}
			if m.LocalAPICAddress != 0xfee00000 || !m.PCATCompat() {
				t.Errorf("local APIC at %#x, PCAT_COMPAT %v; want 0xfee00000, true", m.LocalAPICAddress, m.PCATCompat())
			}
			if want := []IOAPIC{{ID: 0, Address: 0xfec00000, GSIBase: 0}}; !slices.Equal(m.IOAPICs, want) {
				t.Errorf("IOAPICs = %+v, want %+v", m.IOAPICs, want)
			}
			// QEMU wires the PIT (IRQ0) to IOAPIC pin 2 and marks the
			// PCI interrupt lines (5, 9, 10, 11) level-triggered,
			// active high.
			wantOverrides := []InterruptSourceOverride{
				{Bus: 0, Source: 0, GSI: 2, Flags: 0},
				{Bus: 0, Source: 5, GSI: 5, Flags: 0xd},
				{Bus: 0, Source: 9, GSI: 9, Flags: 0xd},
				{Bus: 0, Source: 10, GSI: 10, Flags: 0xd},
				{Bus: 0, Source: 11, GSI: 11, Flags: 0xd},
			}
			if !slices.Equal(m.Overrides, wantOverrides) {
				t.Errorf("Overrides = %+v, want %+v", m.Overrides, wantOverrides)
			}
			for _, irq := range []struct {
				irq  uint8
				gsi  uint32
				pol  Polarity
				trig TriggerMode
			}{
				{0, 2, PolarityActiveHigh, TriggerEdge},
				{1, 1, PolarityActiveHigh, TriggerEdge},
				{4, 4, PolarityActiveHigh, TriggerEdge},
				{9, 9, PolarityActiveHigh, TriggerLevel},
			} {
				gsi, pol, trig := m.ISAIRQ(irq.irq)
				if gsi != irq.gsi || pol != irq.pol || trig != irq.trig {
					t.Errorf("ISAIRQ(%d) = %d %v %v, want %d %v %v", irq.irq, gsi, pol, trig, irq.gsi, irq.pol, irq.trig)
				}
			}
			if want := []LocalAPICNMI{{ProcessorUID: AllProcessorsUID8, Flags: 0, LINT: 1}}; !slices.Equal(m.LocalAPICNMIs, want) {
				t.Errorf("LocalAPICNMIs = %+v, want %+v", m.LocalAPICNMIs, want)
			}
			if len(m.LocalX2APICs)+len(m.LocalX2APICNMIs)+len(m.NMISources)+len(m.Skipped) != 0 {
				t.Errorf("unexpected entries: %+v", m)
			}
		})
	}
}

func TestCapturedFADTDescribesPMRegisters(t *testing.T) {
	io := func(port uint64, bits uint8) GenericAddress {
		return GenericAddress{AddressSpace: AddressSpaceSystemIO, BitWidth: bits, Address: port}
	}
	tests := []struct {
		capture  string
		revision uint8
		length   uint32
		gpe0     GenericAddress
		bootArch uint16
		reset    bool
	}{
		// i440fx: an ACPI 1.0 FADT, no reset register, no X_ fields.
		{"qemu-pc", 1, 116, io(0xafe0, 32), 0, false},
		// q35: revision 3 with X_ blocks (X_FIRMWARE_CTRL left 0),
		// reset through port 0xCF9, an 8042.
		{"qemu-q35", 3, 244, io(0x620, 128), BootArch8042, true},
		{"qemu-q35-ovmf", 3, 244, io(0x620, 128), BootArch8042, true},
	}
	for _, tt := range tests {
		t.Run(tt.capture, func(t *testing.T) {
			c := loadCapture(t, tt.capture)
			f, err := c.loadTables(t).FADT()
			if err != nil {
				t.Fatal(err)
			}
			if f.Revision != tt.revision || f.Length != tt.length {
				t.Errorf("revision %d length %d, want %d %d", f.Revision, f.Length, tt.revision, tt.length)
			}
			for _, r := range []struct {
				name      string
				got, want GenericAddress
			}{
				{"PM1aEvt", f.PM1aEvt, io(0x600, 32)},
				{"PM1bEvt", f.PM1bEvt, GenericAddress{}},
				{"PM1aCnt", f.PM1aCnt, io(0x604, 16)},
				{"PM1bCnt", f.PM1bCnt, GenericAddress{}},
				{"PMTimer", f.PMTimer, io(0x608, 32)},
				{"GPE0", f.GPE0, tt.gpe0},
			} {
				if r.got != r.want {
					t.Errorf("%s = %v, want %v", r.name, r.got, r.want)
				}
			}
			if f.PMTimer32Bit() {
				t.Error("PMTimer32Bit() = true; QEMU's PM timers are 24-bit (no TMR_VAL_EXT)")
			}
			if f.SCIInterrupt != 9 || f.Century != 0x32 || f.IAPCBootArch != tt.bootArch {
				t.Errorf("SCI %d century %#x IAPC_BOOT_ARCH %#x, want 9 0x32 %#x", f.SCIInterrupt, f.Century, f.IAPCBootArch, tt.bootArch)
			}
			if dsdt := c.table(t, SigDSDT); f.DSDTAddress != dsdt.pa {
				t.Errorf("DSDTAddress %#x, want %#x", f.DSDTAddress, dsdt.pa)
			}
			if facs := c.table(t, SigFACS); f.FirmwareCtrl != facs.pa {
				t.Errorf("FirmwareCtrl %#x, want %#x", f.FirmwareCtrl, facs.pa)
			}
			if f.ResetSupported() != tt.reset {
				t.Errorf("ResetSupported() = %v, want %v", f.ResetSupported(), tt.reset)
			}
			if tt.reset && (f.ResetReg != io(0xcf9, 8) || f.ResetValue != 0x0f) {
				t.Errorf("reset %v value %#x, want io:0xcf9/8 value 0xf", f.ResetReg, f.ResetValue)
			}
		})
	}
}

func TestCapturedDSDTGivesS5PowerOff(t *testing.T) {
	for _, name := range captures {
		t.Run(name, func(t *testing.T) {
			c := loadCapture(t, name)
			// QEMU's \_S5_ is Package(4){0, 0, 0, 0}: its PIIX4 and
			// ICH9 PM models power off on SLP_TYP 0.
			a, b, err := S5(c.table(t, SigDSDT).data)
			if err != nil || a != 0 || b != 0 {
				t.Errorf("S5(DSDT) = %d, %d, %v; want 0, 0, nil", a, b, err)
			}
			p, err := c.loadTables(t).PowerOff()
			if err != nil {
				t.Fatal(err)
			}
			if want := (PowerOff{PM1aCnt: 0x604}); p != want {
				t.Errorf("PowerOff() = %+v, want %+v", p, want)
			}
		})
	}
}

func TestCapturedHPETGivesBaseAddress(t *testing.T) {
	for _, name := range captures {
		t.Run(name, func(t *testing.T) {
			h, err := loadCapture(t, name).loadTables(t).HPET()
			if err != nil {
				t.Fatal(err)
			}
			// QEMU leaves the GAS bit width 0.
			want := GenericAddress{AddressSpace: AddressSpaceSystemMemory, Address: 0xfed00000}
			if h.Address != want {
				t.Errorf("Address = %v, want %v", h.Address, want)
			}
			if h.VendorID() != 0x8086 || h.Comparators() != 3 || !h.Counter64() || !h.LegacyReplacement() {
				t.Errorf("block ID %#x: vendor %#x, %d comparators, 64-bit %v, legacy %v; want 0x8086, 3, true, true",
					h.EventTimerBlockID, h.VendorID(), h.Comparators(), h.Counter64(), h.LegacyReplacement())
			}
		})
	}
}
