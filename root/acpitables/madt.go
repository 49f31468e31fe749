package acpitables

import "encoding/binary"

// The MADT ("APIC"), ACPI 6.5 5.2.12: one Processor Local APIC per VP,
// the I/O APIC, the platform's Interrupt Source Overrides and NMI on
// every local APIC's LINT1. Flags has no PCAT_COMPAT: there is no 8259.

// MADT layout, ACPI 6.5 5.2.12: the local APIC address and flags
// after the header, then Interrupt Controller Structures from offset 44,
// each starting with a type and a length byte.
const (
	madtLocalAPICAddress = 36 // u32
	madtFlags            = 40 // u32
	madtEntries          = 44

	madtTypeLocalAPIC = 0 // 5.2.12.2, 8 bytes
	madtTypeIOAPIC    = 1 // 5.2.12.3, 12 bytes
	madtTypeOverride  = 2 // 5.2.12.5, 10 bytes
	madtTypeLAPICNMI  = 4 // 5.2.12.7, 6 bytes

	madtLocalAPICLen = 8
	madtIOAPICLen    = 12
	madtOverrideLen  = 10
	madtLAPICNMILen  = 6

	localAPICEnabled = 1 << 0 // Local APIC Flags, 5.2.12.2

	// allProcessors as a Local APIC NMI's ACPI Processor UID means every
	// processor.
	allProcessors = 0xff
	// nmiLINT is the local APIC input NMI is wired to, as on a PC.
	nmiLINT = 1
	// nmiFlags: NMI is edge-triggered, active high.
	nmiFlags = INTIEdge | INTIActiveHigh
)

func (p Platform) madt() []byte {
	le := binary.LittleEndian
	b := make([]byte, madtEntries-HeaderLen)
	le.PutUint32(b[madtLocalAPICAddress-HeaderLen:], p.localAPICAddress())
	// Flags stay 0: no PCAT_COMPAT, since gohv emulates no 8259 pair.
	for vp := 0; vp < p.VPs; vp++ {
		e := []byte{madtTypeLocalAPIC, madtLocalAPICLen, byte(vp), byte(vp)}
		b = append(b, e...)
		b = le.AppendUint32(b, localAPICEnabled)
	}
	b = append(b, madtTypeIOAPIC, madtIOAPICLen, p.IOAPIC.ID, 0)
	b = le.AppendUint32(b, p.IOAPIC.Base)
	b = le.AppendUint32(b, p.IOAPIC.GSIBase)
	for _, o := range p.Overrides {
		b = append(b, madtTypeOverride, madtOverrideLen, 0 /* ISA */, o.IRQ)
		b = le.AppendUint32(b, o.GSI)
		b = le.AppendUint16(b, o.Flags)
	}
	b = append(b, madtTypeLAPICNMI, madtLAPICNMILen, allProcessors)
	b = le.AppendUint16(b, nmiFlags)
	return append(b, nmiLINT)
}
