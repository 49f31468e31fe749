package acpi

import (
	"encoding/binary"
	"errors"
	"testing"
)

// fadtBytes builds an FADT of length n with fields poked at the byte
// offsets of ACPI 6.5 5.2.9 (written out here, not taken from fadt.go,
// so a wrong constant there fails).
type fadtBytes []byte

func newFADT(n int) fadtBytes { b := make(fadtBytes, n); copy(b, SigFADT); return b }

func (b fadtBytes) u8(off int, v uint8)   { b[off] = v }
func (b fadtBytes) u16(off int, v uint16) { binary.LittleEndian.PutUint16(b[off:], v) }
func (b fadtBytes) u32(off int, v uint32) { binary.LittleEndian.PutUint32(b[off:], v) }
func (b fadtBytes) u64(off int, v uint64) { binary.LittleEndian.PutUint64(b[off:], v) }
func (b fadtBytes) gas(off int, g GenericAddress) {
	b[off], b[off+1], b[off+2], b[off+3] = g.AddressSpace, g.BitWidth, g.BitOffset, g.AccessSize
	b.u64(off+4, g.Address)
}

func (b fadtBytes) table() []byte { return mkTable(SigFADT, 6, b[HeaderLen:]) }

func TestParseFADTFieldOffsets(t *testing.T) {
	var (
		resetReg = GenericAddress{AddressSpaceSystemIO, 8, 0, AccessByte, 0xcf9}
		xPM1aEvt = GenericAddress{AddressSpaceSystemIO, 32, 0, 0, 0x500}
		xPM1aCnt = GenericAddress{AddressSpaceSystemIO, 16, 0, 0, 0x504}
		xPMTmr   = GenericAddress{AddressSpaceSystemMemory, 32, 0, AccessDword, 0xfed0_0f00}
		sleepCtl = GenericAddress{AddressSpaceSystemMemory, 8, 0, AccessByte, 0xfe00_0000}
		sleepSts = GenericAddress{AddressSpaceSystemMemory, 8, 0, AccessByte, 0xfe00_0001}
	)
	f := newFADT(276)          // the ACPI 6.5 size
	f.u32(36, 0x1000)          // FIRMWARE_CTRL
	f.u32(40, 0x2000)          // DSDT
	f.u8(45, 4)                // Preferred_PM_Profile
	f.u16(46, 20)              // SCI_INT
	f.u32(48, 0xb2)            // SMI_CMD
	f.u32(56, 0x400)           // PM1a_EVT_BLK
	f.u32(60, 0x440)           // PM1b_EVT_BLK
	f.u32(64, 0x404)           // PM1a_CNT_BLK
	f.u32(68, 0x444)           // PM1b_CNT_BLK
	f.u32(72, 0x450)           // PM2_CNT_BLK
	f.u32(76, 0x408)           // PM_TMR_BLK
	f.u32(80, 0x420)           // GPE0_BLK
	f.u32(84, 0x430)           // GPE1_BLK
	f.u8(88, 4)                // PM1_EVT_LEN
	f.u8(89, 2)                // PM1_CNT_LEN
	f.u8(90, 1)                // PM2_CNT_LEN
	f.u8(91, 4)                // PM_TMR_LEN
	f.u8(92, 64)               // GPE0_BLK_LEN: 512 bits, too wide for a GAS
	f.u8(93, 8)                // GPE1_BLK_LEN
	f.u8(108, 0x32)            // CENTURY
	f.u16(109, 0x2|0x4)        // IAPC_BOOT_ARCH: 8042, VGA Not Present
	f.u32(112, 1<<8|1<<10)     // Flags: TMR_VAL_EXT, RESET_REG_SUP
	f.gas(116, resetReg)       // RESET_REG
	f.u8(128, 6)               // RESET_VALUE
	f.u8(131, 5)               // FADT Minor Version
	f.u64(132, 0x1_0000_1000)  // X_FIRMWARE_CTRL
	f.u64(140, 0x1_0000_2000)  // X_DSDT
	f.gas(148, xPM1aEvt)       // X_PM1a_EVT_BLK
	f.gas(172, xPM1aCnt)       // X_PM1a_CNT_BLK
	f.gas(208, xPMTmr)         // X_PM_TMR_BLK
	f.gas(244, sleepCtl)       // SLEEP_CONTROL_REG
	f.gas(256, sleepSts)       // SLEEP_STATUS_REG
	f.u64(268, 0x4b564d4b564d) // Hypervisor Vendor Identity

	got, err := ParseFADT(f.table())
	if err != nil {
		t.Fatal(err)
	}
	io := func(port uint64, bits uint8) GenericAddress {
		return GenericAddress{AddressSpace: AddressSpaceSystemIO, BitWidth: bits, Address: port}
	}
	want := FADT{
		Header:             got.Header,
		MinorVersion:       5,
		FirmwareCtrl:       0x1_0000_1000, // X_ preferred
		DSDTAddress:        0x1_0000_2000, // X_ preferred
		PreferredPMProfile: 4,
		SCIInterrupt:       20,
		SMICommand:         0xb2,
		PM1aEvt:            io(0x500, 32), // X_ preferred
		PM1bEvt:            io(0x440, 32), // X_ zero: legacy port, PM1_EVT_LEN*8 bits
		PM1aCnt:            io(0x504, 16),
		PM1bCnt:            io(0x444, 16),
		PM2Cnt:             io(0x450, 8),
		PMTimer:            xPMTmr,
		GPE0:               io(0x420, 255),
		GPE1:               io(0x430, 64),
		GPE0Len:            64,
		GPE1Len:            8,
		Century:            0x32,
		IAPCBootArch:       BootArch8042 | BootArchVGANotPresent,
		Flags:              FADTTmrValExt | FADTResetRegSup,
		ResetReg:           resetReg,
		ResetValue:         6,
		SleepControl:       sleepCtl,
		SleepStatus:        sleepSts,
		HypervisorVendor:   0x4b564d4b564d,
	}
	if *got != want {
		t.Errorf("ParseFADT =\n%+v\nwant\n%+v", *got, want)
	}
	if !got.PMTimer32Bit() || !got.ResetSupported() {
		t.Errorf("PMTimer32Bit %v ResetSupported %v, want both", got.PMTimer32Bit(), got.ResetSupported())
	}
}

func TestParseFADTAcpi10TableHasNoExtendedFields(t *testing.T) {
	f := newFADT(116)
	f.u32(36, 0x1000)
	f.u32(40, 0x2000)
	f.u32(64, 0x804)
	f.u8(89, 2)
	f.u32(112, FADTResetRegSup) // set, but the table has no RESET_REG
	got, err := ParseFADT(f.table())
	if err != nil {
		t.Fatal(err)
	}
	if got.DSDTAddress != 0x2000 || got.FirmwareCtrl != 0x1000 || got.PM1aCnt != (GenericAddress{AddressSpaceSystemIO, 16, 0, 0, 0x804}) {
		t.Errorf("ParseFADT = %+v", got)
	}
	if got.ResetSupported() || got.PMTimer32Bit() || !got.PMTimer.IsZero() {
		t.Errorf("ResetSupported %v PMTimer32Bit %v PMTimer %v; want false, false, none", got.ResetSupported(), got.PMTimer32Bit(), got.PMTimer)
	}
}

func TestParseFADTRejectsBadTables(t *testing.T) {
	for _, tt := range []struct {
		name    string
		in      []byte
		wantErr error
	}{
		{"shorter than ACPI 1.0", newFADT(115).table(), ErrBadLength},
		{"wrong signature", mkTable(SigMADT, 1, make([]byte, 80)), ErrSignature},
		{"header only", newFADT(HeaderLen).table(), ErrBadLength},
		{"truncated header", []byte("FACP"), ErrTruncated},
	} {
		if _, err := ParseFADT(tt.in); !errors.Is(err, tt.wantErr) {
			t.Errorf("%s: ParseFADT error %v, want %v", tt.name, err, tt.wantErr)
		}
	}
}

func TestPowerOff(t *testing.T) {
	dsdt := mkTable(SigDSDT, 2, []byte{amlNameOp, '_', 'S', '5', '_', amlPackageOp, 6, 4, amlBytePrefix, 5, amlOneOp, 0})
	ssdt := mkTable(SigSSDT, 2, []byte{amlNameOp, '\\', '_', 'S', '5', '_', amlPackageOp, 4, 2, 7, 7})
	noS5 := mkTable(SigDSDT, 2, []byte{0x10, 0x05})
	withPM1b := newFADT(116)
	withPM1b.u32(64, 0x404)
	withPM1b.u32(68, 0x444)
	pm1aOnly := newFADT(116)
	pm1aOnly.u32(64, 0x404)
	reduced := newFADT(276)
	reduced.u32(112, FADTHWReducedACPI)
	memPM1 := newFADT(276)
	memPM1.gas(172, GenericAddress{AddressSpace: AddressSpaceSystemMemory, BitWidth: 16, Address: 0xfe000404})

	tests := []struct {
		name    string
		tables  [][]byte
		want    PowerOff
		wantErr error
	}{
		{"PM1a and PM1b", [][]byte{withPM1b.table(), dsdt}, PowerOff{0x404, 0x444, 5, 1}, nil},
		{"\\_S5_ only in an SSDT", [][]byte{pm1aOnly.table(), noS5, ssdt}, PowerOff{0x404, 0, 7, 7}, nil},
		{"no \\_S5_", [][]byte{pm1aOnly.table(), noS5}, PowerOff{}, ErrNotFound},
		{"no DSDT", [][]byte{pm1aOnly.table()}, PowerOff{}, ErrNotFound},
		{"hardware-reduced", [][]byte{reduced.table(), dsdt}, PowerOff{}, ErrNotFound},
		{"PM1a in memory space", [][]byte{memPM1.table(), dsdt}, PowerOff{}, ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tabs := &Tables{}
			for _, b := range tt.tables {
				tab, err := ParseTable(b)
				if err != nil {
					t.Fatal(err)
				}
				tabs.List = append(tabs.List, tab)
			}
			got, err := tabs.PowerOff()
			if !errors.Is(err, tt.wantErr) || got != tt.want {
				t.Errorf("PowerOff() = %+v, %v; want %+v, %v", got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestGenericAddressIOPort(t *testing.T) {
	for _, tt := range []struct {
		g    GenericAddress
		port uint16
		ok   bool
		s    string
	}{
		{GenericAddress{AddressSpaceSystemIO, 16, 0, 0, 0x604}, 0x604, true, "io:0x604/16"},
		{GenericAddress{AddressSpaceSystemIO, 16, 0, 0, 0x10000}, 0, false, "io:0x10000/16"},
		{GenericAddress{AddressSpaceSystemMemory, 32, 0, 3, 0xfed00000}, 0, false, "mem:0xfed00000/32"},
		{GenericAddress{}, 0, false, "mem:0x0/0"},
		{GenericAddress{0x42, 8, 0, 0, 1}, 0, false, "space0x42:0x1/8"},
	} {
		port, ok := tt.g.IOPort()
		if port != tt.port || ok != tt.ok || tt.g.String() != tt.s {
			t.Errorf("%+v: IOPort() = %#x, %v; String() = %q", tt.g, port, ok, tt.g.String())
		}
	}
}

func TestParseHPET(t *testing.T) {
	body := cat(le32(0x8086a201), []byte{0, 64, 0, 0}, le64(0xfed00000), []byte{0}, le16(0x80), []byte{0})
	h, err := ParseHPET(mkTable(SigHPET, 1, body))
	if err != nil {
		t.Fatal(err)
	}
	if h.Address != (GenericAddress{AddressSpaceSystemMemory, 64, 0, 0, 0xfed00000}) || h.MinimumTick != 0x80 ||
		h.Comparators() != 3 || !h.Counter64() || !h.LegacyReplacement() || h.VendorID() != 0x8086 {
		t.Errorf("ParseHPET = %+v", h)
	}
	if _, err := ParseHPET(mkTable(SigHPET, 1, body[:19])); !errors.Is(err, ErrBadLength) {
		t.Errorf("short HPET: %v, want ErrBadLength", err)
	}
}
