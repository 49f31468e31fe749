package acpitables

import (
	"bytes"
	"testing"
)

func TestAMLPkgLengthEncodings(t *testing.T) {
	// ACPI 6.5 20.2.4: the length counts its own bytes; one byte up to 63,
	// then bits 7:6 say how many bytes follow the lead byte, whose bits
	// 3:0 are the low nibble.
	for _, c := range []struct {
		n    int
		want []byte
	}{
		{0, []byte{0x01}},
		{62, []byte{0x3f}},
		{63, []byte{0x41, 0x04}},         // 65 = 0x041
		{4093, []byte{0x4f, 0xff}},       // 4095 = 0xfff, the largest two-byte length
		{4094, []byte{0x81, 0x00, 0x01}}, // 4097 = 0x1001
		{1<<20 - 4, []byte{0x8f, 0xff, 0xff}},
		{1<<20 - 3, []byte{0xc1, 0x00, 0x00, 0x01}}, // 0x100001
	} {
		if got := amlPkgLength(c.n); !bytes.Equal(got, c.want) {
			t.Errorf("PkgLength for %d bytes: % x, want % x", c.n, got, c.want)
		}
	}
}

func TestAMLIntegersUseTheShortestForm(t *testing.T) {
	for _, c := range []struct {
		v    uint64
		want []byte
	}{
		{0, []byte{0x00}},
		{1, []byte{0x01}},
		{2, []byte{0x0a, 0x02}},
		{0xff, []byte{0x0a, 0xff}},
		{0x100, []byte{0x0b, 0x00, 0x01}},
		{0xffff, []byte{0x0b, 0xff, 0xff}},
		{0x1_0000, []byte{0x0c, 0x00, 0x00, 0x01, 0x00}},
		{1 << 32, []byte{0x0e, 0, 0, 0, 0, 1, 0, 0, 0}},
	} {
		if got := amlInteger(c.v); !bytes.Equal(got, c.want) {
			t.Errorf("integer %#x: % x, want % x", c.v, got, c.want)
		}
	}
}

func TestAMLEISAIDs(t *testing.T) {
	// Known encodings: PNP0A03 is the DWord 0x030AD041 in every PC DSDT.
	for _, c := range []struct {
		id   string
		want []byte
	}{
		{"PNP0A03", []byte{0x0c, 0x41, 0xd0, 0x0a, 0x03}},
		{"PNP0501", []byte{0x0c, 0x41, 0xd0, 0x05, 0x01}},
		{"PNP0B00", []byte{0x0c, 0x41, 0xd0, 0x0b, 0x00}},
		{"AAA0000", []byte{0x0c, 0x04, 0x21, 0x00, 0x00}},
		{"ZZZFFFF", []byte{0x0c, 0x6b, 0x5a, 0xff, 0xff}},
	} {
		if got := amlEISAID(c.id); !bytes.Equal(got, c.want) {
			t.Errorf("EisaId(%q): % x, want % x", c.id, got, c.want)
		}
	}
}

func TestAMLNameStrings(t *testing.T) {
	for _, c := range []struct {
		path string
		want string
	}{
		{"_SB", "_SB_"},
		{"COM1", "COM1"},
		{`\_SB`, `\_SB_`},
		{`\_SB.PCI0`, "\\\x2e_SB_PCI0"},
		{`\_SB.PCI0.ISA`, "\\\x2f\x03_SB_PCI0ISA_"},
		{"^^FOO", "^^FOO_"},
		{`\`, "\\\x00"},
	} {
		if got := amlNameString(c.path); string(got) != c.want {
			t.Errorf("NameString(%q): % x, want % x", c.path, got, []byte(c.want))
		}
	}
}

func TestAMLRefusesMalformedConstants(t *testing.T) {
	for name, f := range map[string]func(){
		"digit first":      func() { amlNameString("1ABC") },
		"five characters":  func() { amlNameString("ABCDE") },
		"lower case":       func() { amlNameString("com1") },
		"empty segment":    func() { amlNameString(`\_SB..X`) },
		"EISA length":      func() { amlEISAID("PNP050") },
		"EISA letter":      func() { amlEISAID("pNP0501") },
		"EISA digit":       func() { amlEISAID("PNP05G1") },
		"string with NUL":  func() { amlString("a\x00b") },
		"256 package elts": func() { amlPackage(make([][]byte, 256)...) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: no panic", name)
				}
			}()
			f()
		}()
	}
}

func TestAMLTerms(t *testing.T) {
	for _, c := range []struct {
		name string
		got  []byte
		want []byte
	}{
		{"String", amlString("VMBus"), []byte("\x0dVMBus\x00")},
		{"Name", amlName("_UID", amlInteger(0)), []byte("\x08_UID\x00")},
		{"Package", amlPackage(amlInteger(5), amlInteger(0)), []byte{0x12, 0x05, 0x02, 0x0a, 0x05, 0x00}},
		{"Buffer", amlBuffer([]byte{0x79, 0x00}), []byte{0x11, 0x05, 0x0a, 0x02, 0x79, 0x00}},
		{"empty Scope", amlScope("_SB"), []byte("\x10\x05_SB_")},
		{"Device", amlDevice("VMBS", amlName("_UID", amlInteger(0))), []byte("\x5b\x82\x0bVMBS\x08_UID\x00")},
	} {
		if !bytes.Equal(c.got, c.want) {
			t.Errorf("%s: % x, want % x", c.name, c.got, c.want)
		}
	}
}

func TestResourceDescriptorLayouts(t *testing.T) {
	// ACPI 6.5 6.4.2.5 (I/O port: info bit 0 = 16-bit decode, min, max,
	// alignment, length), 6.4.2.1 (IRQ with flags: mask, then _HE bit 0,
	// _LL bit 3, _SHR bit 4), 6.4.3.4 (Memory32Fixed: length 9, info bit 0
	// = writeable, base, length), 6.4.2.9 (End Tag).
	for _, c := range []struct {
		name string
		got  []byte
		want []byte
	}{
		{"IO", resIO(0x3f8, 8), []byte{0x47, 0x01, 0xf8, 0x03, 0xf8, 0x03, 0x01, 0x08}},
		{"IRQ 4", resIRQ(4), []byte{0x23, 0x10, 0x00, 0x01}},
		{"IRQ 15", resIRQ(15), []byte{0x23, 0x00, 0x80, 0x01}},
		{"Memory32Fixed RW", resMemory32(0xfec00000, 0x1000, true), []byte{0x86, 0x09, 0x00, 0x01, 0x00, 0x00, 0xc0, 0xfe, 0x00, 0x10, 0x00, 0x00}},
		{"Memory32Fixed RO", resMemory32(0xfed00000, 0x400, false), []byte{0x86, 0x09, 0x00, 0x00, 0x00, 0x00, 0xd0, 0xfe, 0x00, 0x04, 0x00, 0x00}},
		// 6.4.3.5.3 and 6.4.3.5.1: type, general flags (MinFixed,
		// MaxFixed, producer, positive decode), type-specific flags, then
		// _GRA _MIN _MAX _TRA _LEN.
		{"WordBusNumber 0-0", resBusNumbers(0, 0), []byte{0x88, 0x0d, 0x00, 0x02, 0x0c, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0x00}},
		{"DWordMemory window", resMemoryWindow(0xc000_0000, 0x1000_0000), []byte{0x87, 0x17, 0x00, 0x00, 0x0c, 0x01,
			0, 0, 0, 0, 0x00, 0x00, 0x00, 0xc0, 0xff, 0xff, 0xff, 0xcf, 0, 0, 0, 0, 0x00, 0x00, 0x00, 0x10}},
		{"empty template", resTemplate(), []byte{0x11, 0x05, 0x0a, 0x02, 0x79, 0x00}},
		{"IO+IRQ template", resTemplate(resIO(0x70, 2), resIRQ(8)),
			[]byte{0x11, 0x11, 0x0a, 0x0e, 0x47, 0x01, 0x70, 0x00, 0x70, 0x00, 0x01, 0x02, 0x23, 0x00, 0x01, 0x01, 0x79, 0x00}},
	} {
		if !bytes.Equal(c.got, c.want) {
			t.Errorf("%s: % x, want % x", c.name, c.got, c.want)
		}
	}
}
