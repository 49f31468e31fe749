package acpitables

import (
	"encoding/binary"
	"errors"
	"fmt"

	"gohv/x86"
)

// Platform describes what a partition's guest finds: its processors and
// interrupt controllers, the registers through which it powers off and
// resets, and the legacy devices the DSDT names. The root's device models
// (package root/devices) fill it in for the ports they serve.
type Platform struct {
	// VPs is the number of virtual processors: one Processor Local APIC
	// entry each, APIC ID and ACPI processor UID equal to the VP index.
	VPs int
	// LocalAPICAddress is where every VP's local APIC is; 0 means the
	// architectural default 0xFEE00000.
	LocalAPICAddress uint32
	// IOAPIC is the partition's I/O APIC.
	IOAPIC IOAPIC
	// Overrides are the MADT's Interrupt Source Overrides: ISA IRQs that
	// do not reach the I/O APIC pin of the same number, edge-triggered and
	// active high. Without them every ISA IRQ is identity-mapped that way.
	Overrides []Override

	// Serial lists the 16550 UARTs, named COM1, COM2, ... in the DSDT.
	Serial []Serial
	// RTC, when set, is the CMOS real-time clock: a PNP0B00 device in the
	// DSDT and the FADT's century index. Nil sets the FADT's "CMOS RTC
	// not present" boot flag instead.
	RTC *RTC
	// Sleep, when set, is the hardware-reduced sleep control and status
	// register pair through which the guest enters S5 (power-off): the
	// FADT names them and the DSDT gets \_S5. Nil leaves the guest no
	// ACPI power-off (Linux then halts instead).
	Sleep *Sleep
	// Reset, when set, is the FADT's reset register.
	Reset *Reset
	// VMBus puts the VMBus device (_HID "VMBus") in the DSDT, where
	// Linux's hv_vmbus looks for it.
	VMBus bool
	// PCI, when set, is a PCI host bridge (PCI0, PNP0A03) in the DSDT:
	// bus 0 behind the configuration ports and a memory window for its
	// functions' BARs. Nil leaves the guest no PCI bus (Linux then
	// scans none).
	PCI *PCIHost
}

// PCIHost is a host bridge decoding bus 0 and the memory window
// [MMIOBase, MMIOBase+MMIOLength), below 4 GiB.
type PCIHost struct {
	MMIOBase, MMIOLength uint32
}

// IOAPIC is an I/O APIC: its ID, register base and first GSI.
type IOAPIC struct {
	ID      uint8
	Base    uint32
	GSIBase uint32
}

// Override is an Interrupt Source Override (ACPI 6.5 5.2.12.5): ISA IRQ
// reaches global system interrupt GSI with the MPS INTI Flags (bits 1:0
// polarity, 3:2 trigger mode; 0 conforms to the ISA bus).
type Override struct {
	IRQ   uint8
	GSI   uint32
	Flags uint16
}

// MPS INTI flags of overrides and NMI entries, ACPI 6.5 5.2.12.5.
const (
	INTIActiveHigh = 0x1 << 0
	INTIActiveLow  = 0x3 << 0
	INTIEdge       = 0x1 << 2
	INTILevel      = 0x3 << 2
)

// Serial is a 16550 UART at Port (eight registers) on ISA IRQ.
type Serial struct {
	Port uint16
	IRQ  uint8
}

// RTC is an MC146818-compatible CMOS clock at Port (index, data) whose
// century byte is at CMOS index Century (0: none).
type RTC struct {
	Port    uint16
	Century uint8
}

// Sleep is the hardware-reduced Sleep Control and Sleep Status registers
// (ACPI 6.5 4.8.3.7), one I/O byte each, and the SLP_TYP value the control
// register accepts for S5.
type Sleep struct {
	ControlPort, StatusPort uint16
	S5Type                  uint8
}

// Reset is the FADT reset register (ACPI 6.5 4.8.3.6): writing Value to
// I/O port Port resets the system.
type Reset struct {
	Port  uint16
	Value uint8
}

// Tables is the built set: Bytes go to guest-physical Base, where the
// RSDP is first.
type Tables struct {
	Bytes []byte
	Base  uint64
	// RSDP is the RSDP's guest-physical address (for boot_params'
	// acpi_rsdp_addr); it equals Base.
	RSDP uint64
	// Ranges lists each structure in Bytes in order: the RSDP
	// ("RSD PTR "), then each table by its signature.
	Ranges []Range
}

// Range is one structure: its signature, guest-physical address and
// length.
type Range struct {
	Signature string
	GPA       uint64
	Length    uint32
}

// Find returns the range of the structure with the signature.
func (t Tables) Find(sig string) (Range, bool) {
	for _, r := range t.Ranges {
		if r.Signature == sig {
			return r, true
		}
	}
	return Range{}, false
}

// ErrPlatform is wrapped by every error Build returns: the Platform
// describes something the tables cannot say.
var ErrPlatform = errors.New("acpitables: invalid platform")

// MaxVPs is the most VPs Build describes: Processor Local APIC entries
// hold 8-bit APIC IDs and 0xFF is the broadcast ID. More would need
// Local x2APIC entries.
const MaxVPs = 255

// Identification in every table header (ACPI 6.5 5.2.6) and in the RSDP.
const (
	OEMID           = "GOHV  "
	OEMRevision     = 1
	CreatorID       = "GOHV"
	CreatorRevision = 1
)

// Signatures and revisions, ACPI 6.5 5.2.5-5.2.12.
const (
	SigRSDP = "RSD PTR "
	SigXSDT = "XSDT"
	SigFADT = "FACP"
	SigMADT = "APIC"
	SigDSDT = "DSDT"

	RevisionRSDP     = 2 // ACPI 2.0 and later: Length, XSDT, extended checksum
	RevisionXSDT     = 1
	RevisionFADT     = 6 // ACPI 6.x FADT, 276 bytes
	FADTMinorVersion = 5 // ACPI 6.5
	RevisionMADT     = 6 // ACPI 6.5
	RevisionDSDT     = 2 // 64-bit AML integers

	HeaderLen = 36 // System Description Table Header
	RSDPLen   = 36
)

// align is where each structure starts: the RSDP must sit on a 16-byte
// boundary for the BIOS-area scan (5.2.5.1); the tables follow suit.
const align = 16

// Build lays out RSDP, XSDT, FADT, MADT and DSDT, in that order, from
// guest-physical base (16-byte aligned), every checksum set. The RSDP is
// at base: put base at 0xE0000 and a guest that scans the BIOS area finds
// it too.
func Build(p Platform, base uint64) (Tables, error) {
	if err := p.validate(); err != nil {
		return Tables{}, err
	}
	if base%align != 0 {
		return Tables{}, fmt.Errorf("%w: base %#x is not %d-byte aligned", ErrPlatform, base, align)
	}
	dsdt := table(SigDSDT, RevisionDSDT, p.dsdt())
	madt := table(SigMADT, RevisionMADT, p.madt())
	const xsdtEntries = 2 // FADT, MADT
	sizes := []int{RSDPLen, HeaderLen + 8*xsdtEntries, fadtLen, len(madt), len(dsdt)}
	offs := make([]uint64, len(sizes))
	end := uint64(0)
	for i, n := range sizes {
		offs[i] = end
		end = (end + uint64(n) + align - 1) &^ (align - 1)
	}
	if base+end < base {
		return Tables{}, fmt.Errorf("%w: tables at %#x wrap around the address space", ErrPlatform, base)
	}
	gpa := func(i int) uint64 { return base + offs[i] }
	const iRSDP, iXSDT, iFADT, iMADT, iDSDT = 0, 1, 2, 3, 4

	fadt := table(SigFADT, RevisionFADT, p.fadtBody(gpa(iDSDT)))
	xsdtBody := make([]byte, 8*xsdtEntries)
	binary.LittleEndian.PutUint64(xsdtBody[0:], gpa(iFADT))
	binary.LittleEndian.PutUint64(xsdtBody[8:], gpa(iMADT))
	xsdt := table(SigXSDT, RevisionXSDT, xsdtBody)
	rsdp := rsdp(gpa(iXSDT))

	t := Tables{Bytes: make([]byte, end), Base: base, RSDP: gpa(iRSDP)}
	for i, s := range []struct {
		sig string
		b   []byte
	}{{SigRSDP, rsdp}, {SigXSDT, xsdt}, {SigFADT, fadt}, {SigMADT, madt}, {SigDSDT, dsdt}} {
		copy(t.Bytes[offs[i]:], s.b)
		t.Ranges = append(t.Ranges, Range{Signature: s.sig, GPA: gpa(i), Length: uint32(len(s.b))})
	}
	return t, nil
}

func (p Platform) validate() error {
	if p.VPs < 1 || p.VPs > MaxVPs {
		return fmt.Errorf("%w: %d VPs; 1-%d can be described", ErrPlatform, p.VPs, MaxVPs)
	}
	if p.IOAPIC.Base == 0 {
		return fmt.Errorf("%w: no I/O APIC base", ErrPlatform)
	}
	for _, o := range p.Overrides {
		if o.IRQ > 15 {
			return fmt.Errorf("%w: override of IRQ %d: ISA IRQs are 0-15", ErrPlatform, o.IRQ)
		}
		if o.Flags&^0xf != 0 {
			return fmt.Errorf("%w: override of IRQ %d: flags %#x have reserved bits", ErrPlatform, o.IRQ, o.Flags)
		}
	}
	if len(p.Serial) > 9 {
		return fmt.Errorf("%w: %d serial ports; COM1-COM9 can be named", ErrPlatform, len(p.Serial))
	}
	for i, s := range p.Serial {
		if s.IRQ > 15 {
			return fmt.Errorf("%w: COM%d: IRQ %d is not an ISA IRQ (0-15)", ErrPlatform, i+1, s.IRQ)
		}
	}
	if p.Sleep != nil {
		if p.Sleep.ControlPort == 0 || p.Sleep.StatusPort == 0 {
			return fmt.Errorf("%w: sleep registers need both a control and a status port", ErrPlatform)
		}
		if p.Sleep.S5Type > 7 {
			return fmt.Errorf("%w: S5 SLP_TYP %d does not fit the 3-bit field", ErrPlatform, p.Sleep.S5Type)
		}
	}
	if p.Reset != nil && p.Reset.Port == 0 {
		return fmt.Errorf("%w: reset register at port 0", ErrPlatform)
	}
	if h := p.PCI; h != nil && (h.MMIOLength == 0 || uint64(h.MMIOBase)+uint64(h.MMIOLength) > 1<<32) {
		return fmt.Errorf("%w: PCI window %#x+%#x is empty or crosses 4 GiB", ErrPlatform, h.MMIOBase, h.MMIOLength)
	}
	if p.RTC != nil && p.RTC.Port == 0 {
		return fmt.Errorf("%w: RTC at port 0", ErrPlatform)
	}
	return nil
}

// System Description Table Header offsets, ACPI 6.5 5.2.6.
const (
	hdrSignature       = 0
	hdrLength          = 4
	hdrRevision        = 8
	hdrChecksum        = 9
	hdrOEMID           = 10
	hdrOEMTableID      = 16
	hdrOEMRevision     = 24
	hdrCreatorID       = 28
	hdrCreatorRevision = 32
)

// table wraps body in a header: the OEM table ID is "GOHV" and the
// signature ("GOHVAPIC"), the checksum makes the whole sum to zero.
func table(sig string, revision uint8, body []byte) []byte {
	b := make([]byte, HeaderLen+len(body))
	copy(b[hdrSignature:], sig)
	binary.LittleEndian.PutUint32(b[hdrLength:], uint32(len(b)))
	b[hdrRevision] = revision
	copy(b[hdrOEMID:], OEMID)
	copy(b[hdrOEMTableID:], "GOHV"+sig)
	binary.LittleEndian.PutUint32(b[hdrOEMRevision:], OEMRevision)
	copy(b[hdrCreatorID:], CreatorID)
	binary.LittleEndian.PutUint32(b[hdrCreatorRevision:], CreatorRevision)
	copy(b[HeaderLen:], body)
	b[hdrChecksum] = checksum(b)
	return b
}

// checksum is the byte that makes b sum to zero (mod 256) in its place,
// which must hold 0 when it is computed.
func checksum(b []byte) byte {
	var s byte
	for _, c := range b {
		s += c
	}
	return -s
}

// RSDP offsets, ACPI 6.5 5.2.5.3.
const (
	rsdpChecksum    = 8  // over the first 20 bytes (the ACPI 1.0 structure)
	rsdpOEMID       = 9  // 6 bytes
	rsdpRevision    = 15 // 2 for ACPI 2.0 and later
	rsdpRSDT        = 16 // u32; 0: no RSDT
	rsdpLength      = 20 // u32, the whole structure
	rsdpXSDT        = 24 // u64
	rsdpExtChecksum = 32 // over all RSDPLen bytes
	rsdpV1Len       = 20
)

// rsdp points at the XSDT only: a 64-bit guest reads ACPI 2.0 and later.
func rsdp(xsdt uint64) []byte {
	b := make([]byte, RSDPLen)
	copy(b, SigRSDP)
	copy(b[rsdpOEMID:], OEMID)
	b[rsdpRevision] = RevisionRSDP
	binary.LittleEndian.PutUint32(b[rsdpLength:], RSDPLen)
	binary.LittleEndian.PutUint64(b[rsdpXSDT:], xsdt)
	b[rsdpChecksum] = checksum(b[:rsdpV1Len])
	b[rsdpExtChecksum] = checksum(b)
	return b
}

// localAPICAddress is where the MADT says the local APICs are.
func (p Platform) localAPICAddress() uint32 {
	if p.LocalAPICAddress == 0 {
		return x86.APICDefaultBase
	}
	return p.LocalAPICAddress
}
