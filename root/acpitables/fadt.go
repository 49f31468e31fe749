package acpitables

import "encoding/binary"

// The FADT ("FACP"), ACPI 6.5 5.2.9, is hardware-reduced (4.1): the guest
// finds no PM1 event/control blocks, no PM timer, no GPE blocks, no SCI
// and no FACS. It powers off through the Sleep Control/Status registers
// and resets through the reset register. See the package documentation
// for why.

// fadtLen is the ACPI 6.x FADT's length (through Hypervisor Vendor
// Identity).
const fadtLen = 276

// FADT field offsets from the start of the table, ACPI 6.5 5.2.9.
const (
	fadtFirmwareCtrl     = 36  // u32 FACS address; 0: none
	fadtDSDT             = 40  // u32 DSDT address
	fadtPreferredProfile = 45  // u8
	fadtSCIInt           = 46  // u16
	fadtSMICmd           = 48  // u32; 0: no SMI command port, always in ACPI mode
	fadtPM1aEvtBlk       = 56  // u32 ports of the legacy blocks, 56-84
	fadtPM1EvtLen        = 88  // u8 lengths, 88-93
	fadtPLvl2Lat         = 96  // u16 worst-case C2 latency, µs
	fadtPLvl3Lat         = 98  // u16 worst-case C3 latency, µs
	fadtCentury          = 108 // u8 CMOS index of the century
	fadtIAPCBootArch     = 109 // u16
	fadtFlags            = 112 // u32
	fadtResetReg         = 116 // GAS
	fadtResetValue       = 128 // u8
	fadtMinorVersion     = 131 // u8
	fadtXFirmwareCtrl    = 132 // u64
	fadtXDSDT            = 140 // u64
	fadtXPM1aEvtBlk      = 148 // GAS, then the other X_ blocks through 243
	fadtSleepControl     = 244 // GAS
	fadtSleepStatus      = 256 // GAS
	fadtHypervisorVendor = 268 // u64
)

// IA-PC Boot Architecture Flags, ACPI 6.5 5.2.9.3.
const (
	BootArchLegacyDevices   = 1 << 0 // ISA/LPC devices the OS cannot enumerate from the namespace
	BootArch8042            = 1 << 1 // an 8042 the OS should probe
	BootArchVGANotPresent   = 1 << 2
	BootArchMSINotSupported = 1 << 3
	BootArchPCIeASPM        = 1 << 4
	BootArchCMOSRTCAbsent   = 1 << 5
)

// Fixed Feature Flags, ACPI 6.5 5.2.9.
const (
	FADTWBINVD            = 1 << 0  // WBINVD flushes caches (required of new systems)
	FADTResetRegSup       = 1 << 10 // RESET_REG/RESET_VALUE are valid
	FADTForceAPICPhysDest = 1 << 19 // OSPM must use physical APIC destination mode
	FADTHWReducedACPI     = 1 << 20
)

// C-state latencies that mean "not supported" (5.2.9, P_LVL2_LAT and
// P_LVL3_LAT: above 100 µs for C2, above 1000 µs for C3).
const (
	noC2Latency = 101
	noC3Latency = 1001
)

// HypervisorVendor is the FADT's Hypervisor Vendor Identity: "GOHV" and
// four zero bytes.
const HypervisorVendor = "GOHV\x00\x00\x00\x00"

// Generic Address Structure, ACPI 6.5 5.2.3.2.
const (
	gasLen          = 12
	gasSpaceIO      = 1
	gasAccessByte   = 1
	gasSpaceOff     = 0
	gasBitWidthOff  = 1
	gasBitOffsetOff = 2
	gasAccessOff    = 3
	gasAddressOff   = 4
)

// putGASPort writes a Generic Address Structure naming the 8-bit I/O
// register at port.
func putGASPort(b []byte, port uint16) {
	b[gasSpaceOff] = gasSpaceIO
	b[gasBitWidthOff] = 8
	b[gasBitOffsetOff] = 0
	b[gasAccessOff] = gasAccessByte
	binary.LittleEndian.PutUint64(b[gasAddressOff:], uint64(port))
}

// fadtBody returns the FADT after its header, the DSDT at dsdt.
func (p Platform) fadtBody(dsdt uint64) []byte {
	b := make([]byte, fadtLen)
	le := binary.LittleEndian
	// Both DSDT fields, equal, where the address fits 32 bits: the 64-bit
	// one wins for ACPI 2.0+ readers, the other serves older ones.
	if dsdt <= 0xffff_ffff {
		le.PutUint32(b[fadtDSDT:], uint32(dsdt))
	}
	le.PutUint64(b[fadtXDSDT:], dsdt)
	le.PutUint16(b[fadtPLvl2Lat:], noC2Latency)
	le.PutUint16(b[fadtPLvl3Lat:], noC3Latency)

	// No LEGACY_DEVICES: every device is in the namespace. No 8042 flag:
	// Linux then leaves its i8042 driver alone (the reset line at port
	// 0x64 works regardless). No VGA.
	bootArch := uint16(BootArchVGANotPresent)
	if p.RTC != nil {
		b[fadtCentury] = p.RTC.Century
	} else {
		bootArch |= BootArchCMOSRTCAbsent
	}
	le.PutUint16(b[fadtIAPCBootArch:], bootArch)

	flags := uint32(FADTWBINVD | FADTHWReducedACPI | FADTForceAPICPhysDest)
	if p.Reset != nil {
		flags |= FADTResetRegSup
		putGASPort(b[fadtResetReg:], p.Reset.Port)
		b[fadtResetValue] = p.Reset.Value
	}
	le.PutUint32(b[fadtFlags:], flags)
	b[fadtMinorVersion] = FADTMinorVersion
	if p.Sleep != nil {
		putGASPort(b[fadtSleepControl:], p.Sleep.ControlPort)
		putGASPort(b[fadtSleepStatus:], p.Sleep.StatusPort)
	}
	copy(b[fadtHypervisorVendor:], HypervisorVendor)
	return b[HeaderLen:]
}
