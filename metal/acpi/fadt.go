package acpi

import (
	"encoding/binary"
	"fmt"
)

// Fixed ACPI Description Table field offsets, ACPI 6.5 5.2.9. An FADT
// may end early (ACPI 1.0's is 116 bytes); absent fields read as zero.
const (
	fadtFirmwareCtrl   = 36           // u32, FACS
	fadtDSDT           = 40           // u32
	fadtPreferredPM    = 45           // u8 Preferred_PM_Profile
	fadtSCIInt         = 46           // u16
	fadtSMICmd         = 48           // u32
	fadtPM1aEvtBlk     = 56           // u32
	fadtPM1bEvtBlk     = 60           // u32
	fadtPM1aCntBlk     = 64           // u32
	fadtPM1bCntBlk     = 68           // u32
	fadtPM2CntBlk      = 72           // u32
	fadtPMTmrBlk       = 76           // u32
	fadtGPE0Blk        = 80           // u32
	fadtGPE1Blk        = 84           // u32
	fadtPM1EvtLen      = 88           // u8
	fadtPM1CntLen      = 89           // u8
	fadtPM2CntLen      = 90           // u8
	fadtPMTmrLen       = 91           // u8
	fadtGPE0BlkLen     = 92           // u8
	fadtGPE1BlkLen     = 93           // u8
	fadtCentury        = 108          // u8, CMOS RAM index of the century; 0 if none
	fadtIAPCBootArch   = 109          // u16
	fadtFlags          = 112          // u32
	fadtResetReg       = 116          // GAS
	fadtResetValue     = 128          // u8
	fadtMinorVersion   = 131          // u8
	fadtXFirmwareCtrl  = 132          // u64
	fadtXDSDT          = 140          // u64
	fadtXPM1aEvtBlk    = 148          // GAS
	fadtXPM1bEvtBlk    = 160          // GAS
	fadtXPM1aCntBlk    = 172          // GAS
	fadtXPM1bCntBlk    = 184          // GAS
	fadtXPM2CntBlk     = 196          // GAS
	fadtXPMTmrBlk      = 208          // GAS
	fadtXGPE0Blk       = 220          // GAS
	fadtXGPE1Blk       = 232          // GAS
	fadtSleepControl   = 244          // GAS
	fadtSleepStatus    = 256          // GAS
	fadtHypervisorID   = 268          // u64
	fadtMinLen         = fadtResetReg // through Flags: the ACPI 1.0 table
	fadtHypervisorIDTo = fadtHypervisorID + 8
)

// Fixed feature flags, ACPI 6.5 5.2.9 (FADT Fixed Feature Flags).
const (
	FADTWBINVD            = 1 << 0
	FADTProcC1            = 1 << 2
	FADTPwrButton         = 1 << 4
	FADTSlpButton         = 1 << 5
	FADTFixRTC            = 1 << 6
	FADTRTCS4             = 1 << 7
	FADTTmrValExt         = 1 << 8 // TMR_VAL_EXT: the PM timer counts 32 bits, not 24
	FADTResetRegSup       = 1 << 10
	FADTHeadless          = 1 << 12
	FADTUsePlatformClock  = 1 << 15
	FADTForceAPICCluster  = 1 << 18
	FADTForceAPICPhysDest = 1 << 19
	FADTHWReducedACPI     = 1 << 20
	FADTLowPowerS0Idle    = 1 << 21
)

// IA-PC Boot Architecture Flags, ACPI 6.5 5.2.9.3.
const (
	BootArchLegacyDevices     = 1 << 0 // LPC/ISA devices the OS cannot enumerate
	BootArch8042              = 1 << 1 // an 8042 keyboard controller
	BootArchVGANotPresent     = 1 << 2
	BootArchMSINotSupported   = 1 << 3
	BootArchPCIeASPMControls  = 1 << 4
	BootArchCMOSRTCNotPresent = 1 << 5
)

// FADT is the parsed Fixed ACPI Description Table ("FACP"), 5.2.9. For
// each register block the X_ generic address is used when non-zero, else
// the legacy 32-bit I/O port field with its length.
type FADT struct {
	Header
	MinorVersion uint8

	FirmwareCtrl uint64 // FACS address: X_FIRMWARE_CTRL, else FIRMWARE_CTRL
	DSDTAddress  uint64 // X_DSDT, else DSDT

	PreferredPMProfile uint8
	SCIInterrupt       uint16 // the SCI's ISA IRQ (8259 mode) or GSI
	SMICommand         uint32

	PM1aEvt, PM1bEvt GenericAddress
	PM1aCnt, PM1bCnt GenericAddress
	PM2Cnt           GenericAddress
	PMTimer          GenericAddress
	GPE0, GPE1       GenericAddress
	GPE0Len, GPE1Len uint8 // GPEx_BLK_LEN in bytes (too wide for a GAS BitWidth)

	Century      uint8  // CMOS index of the century byte, 0 if none
	IAPCBootArch uint16 // BootArch* flags
	Flags        uint32 // FADT* flags

	ResetReg   GenericAddress // valid when ResetSupported
	ResetValue uint8

	SleepControl, SleepStatus GenericAddress // hardware-reduced platforms
	HypervisorVendor          uint64
}

// PMTimer32Bit reports whether the PM timer counter is 32 bits wide
// (TMR_VAL_EXT); otherwise it is 24 bits.
func (f *FADT) PMTimer32Bit() bool { return f.Flags&FADTTmrValExt != 0 }

// ResetSupported reports whether ResetReg/ResetValue reset the system
// (RESET_REG_SUP and a table long enough to hold them).
func (f *FADT) ResetSupported() bool {
	return f.Flags&FADTResetRegSup != 0 && f.Length > fadtResetValue && !f.ResetReg.IsZero()
}

// ParseFADT validates an FADT (see ParseTable) and decodes it. The table
// must hold at least the ACPI 1.0 fields (through Flags).
func ParseFADT(b []byte) (*FADT, error) {
	t, err := ParseTable(b)
	if err != nil {
		return nil, err
	}
	if t.Signature != SigFADT {
		return nil, fmt.Errorf("acpi: FADT: signature %s, want %s: %w", sigName(t.Signature), SigFADT, ErrSignature)
	}
	d := t.Data
	if len(d) < fadtMinLen {
		return nil, fmt.Errorf("acpi: FADT: Length %d, need at least %d: %w", len(d), fadtMinLen, ErrBadLength)
	}
	// Fields past the table's end read as zero.
	var full [fadtHypervisorIDTo]byte
	copy(full[:], d)
	le := binary.LittleEndian
	u8 := func(off int) uint8 { return full[off] }
	u16 := func(off int) uint16 { return le.Uint16(full[off:]) }
	u32 := func(off int) uint32 { return le.Uint32(full[off:]) }
	u64 := func(off int) uint64 { return le.Uint64(full[off:]) }
	gas := func(off int) GenericAddress { return parseGAS(full[off : off+gasLen]) }
	// pick prefers the X_ block; else the legacy port with its length.
	pick := func(xOff, portOff, lenOff int) GenericAddress {
		if g := gas(xOff); !g.IsZero() {
			return g
		}
		port := u32(portOff)
		if port == 0 {
			return GenericAddress{}
		}
		return GenericAddress{AddressSpace: AddressSpaceSystemIO, BitWidth: uint8(min(int(u8(lenOff))*8, 0xff)), Address: uint64(port)}
	}

	f := &FADT{
		Header:             t.Header,
		MinorVersion:       u8(fadtMinorVersion),
		PreferredPMProfile: u8(fadtPreferredPM),
		SCIInterrupt:       u16(fadtSCIInt),
		SMICommand:         u32(fadtSMICmd),
		PM1aEvt:            pick(fadtXPM1aEvtBlk, fadtPM1aEvtBlk, fadtPM1EvtLen),
		PM1bEvt:            pick(fadtXPM1bEvtBlk, fadtPM1bEvtBlk, fadtPM1EvtLen),
		PM1aCnt:            pick(fadtXPM1aCntBlk, fadtPM1aCntBlk, fadtPM1CntLen),
		PM1bCnt:            pick(fadtXPM1bCntBlk, fadtPM1bCntBlk, fadtPM1CntLen),
		PM2Cnt:             pick(fadtXPM2CntBlk, fadtPM2CntBlk, fadtPM2CntLen),
		PMTimer:            pick(fadtXPMTmrBlk, fadtPMTmrBlk, fadtPMTmrLen),
		GPE0:               pick(fadtXGPE0Blk, fadtGPE0Blk, fadtGPE0BlkLen),
		GPE1:               pick(fadtXGPE1Blk, fadtGPE1Blk, fadtGPE1BlkLen),
		GPE0Len:            u8(fadtGPE0BlkLen),
		GPE1Len:            u8(fadtGPE1BlkLen),
		Century:            u8(fadtCentury),
		IAPCBootArch:       u16(fadtIAPCBootArch),
		Flags:              u32(fadtFlags),
		ResetReg:           gas(fadtResetReg),
		ResetValue:         u8(fadtResetValue),
		SleepControl:       gas(fadtSleepControl),
		SleepStatus:        gas(fadtSleepStatus),
		HypervisorVendor:   u64(fadtHypervisorID),
	}
	f.FirmwareCtrl = u64(fadtXFirmwareCtrl)
	if f.FirmwareCtrl == 0 {
		f.FirmwareCtrl = uint64(u32(fadtFirmwareCtrl))
	}
	f.DSDTAddress = u64(fadtXDSDT)
	if f.DSDTAddress == 0 {
		f.DSDTAddress = uint64(u32(fadtDSDT))
	}
	return f, nil
}
