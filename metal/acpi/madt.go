package acpi

import (
	"encoding/binary"
	"fmt"
)

// Multiple APIC Description Table, ACPI 6.5 5.2.12.
const (
	madtLocalAPICAddrOff = 36 // Local Interrupt Controller Address, 32-bit
	madtFlagsOff         = 40
	madtEntriesOff       = 44

	// MADTPCATCompat: the system also has a PC-AT dual 8259 setup, which
	// must be masked before the APICs are used. ACPI 6.5 5.2.12.
	MADTPCATCompat = 1 << 0
)

// Interrupt Controller Structure types, ACPI 6.5 5.2.12.
const (
	MADTLocalAPIC                = 0x0
	MADTIOAPIC                   = 0x1
	MADTInterruptSourceOverride  = 0x2
	MADTNMISource                = 0x3
	MADTLocalAPICNMI             = 0x4
	MADTLocalAPICAddressOverride = 0x5
	MADTLocalX2APIC              = 0x9
	MADTLocalX2APICNMI           = 0xa
)

// madtMinLen is each known entry type's length; longer entries (later
// revisions) are accepted, shorter ones are errors.
var madtMinLen = [...]uint8{
	MADTLocalAPIC:                8,  // 5.2.12.2
	MADTIOAPIC:                   12, // 5.2.12.3
	MADTInterruptSourceOverride:  10, // 5.2.12.5
	MADTNMISource:                8,  // 5.2.12.6
	MADTLocalAPICNMI:             6,  // 5.2.12.7
	MADTLocalAPICAddressOverride: 12, // 5.2.12.8
	MADTLocalX2APIC:              16, // 5.2.12.12
	MADTLocalX2APICNMI:           12, // 5.2.12.13
}

// Local APIC and Local x2APIC flags, ACPI 6.5 5.2.12.2.
const (
	LocalAPICEnabled       = 1 << 0 // usable now
	LocalAPICOnlineCapable = 1 << 1 // not Enabled, but may be brought online (hot-add); ACPI 6.3+
)

// LocalAPIC is a Processor Local APIC structure (type 0), 5.2.12.2.
type LocalAPIC struct {
	ProcessorUID uint8 // ACPI Processor UID, matches a processor object's _UID
	APICID       uint8
	Flags        uint32
}

// LocalX2APIC is a Processor Local x2APIC structure (type 9), 5.2.12.12.
type LocalX2APIC struct {
	X2APICID     uint32
	Flags        uint32
	ProcessorUID uint32
}

// IOAPIC is an I/O APIC structure (type 1), 5.2.12.3.
type IOAPIC struct {
	ID      uint8
	Address uint32 // physical address of its registers
	GSIBase uint32 // first global system interrupt number it handles
}

// InterruptSourceOverride (type 2), 5.2.12.5: bus-relative (ISA) interrupt
// Source is connected to global system interrupt GSI.
type InterruptSourceOverride struct {
	Bus    uint8 // 0: ISA
	Source uint8 // bus-relative IRQ
	GSI    uint32
	Flags  INTIFlags
}

// NMISource (type 3), 5.2.12.6: a GSI that is an NMI.
type NMISource struct {
	Flags INTIFlags
	GSI   uint32
}

// AllProcessorsUID8 in a LocalAPICNMI means every processor.
const AllProcessorsUID8 = 0xff

// LocalAPICNMI (type 4), 5.2.12.7: which LINT pin of which processor's
// local APIC has NMI connected.
type LocalAPICNMI struct {
	ProcessorUID uint8 // AllProcessorsUID8 for all
	Flags        INTIFlags
	LINT         uint8 // 0 or 1
}

// AllProcessorsUID32 in a LocalX2APICNMI means every processor.
const AllProcessorsUID32 = 0xffffffff

// LocalX2APICNMI (type 0xA), 5.2.12.13.
type LocalX2APICNMI struct {
	Flags        INTIFlags
	ProcessorUID uint32 // AllProcessorsUID32 for all
	LINT         uint8
}

// MADTEntry locates one interrupt controller structure in the table.
type MADTEntry struct {
	Type   uint8
	Offset int // from the start of the table
	Length uint8
}

// MADT is the parsed Multiple APIC Description Table.
type MADT struct {
	Header

	// LocalAPICAddress is where every processor's local APIC is: the
	// Local APIC Address Override (type 5) when present, else the
	// table's 32-bit field.
	LocalAPICAddress uint64
	// LocalAPICAddress32 is the table's own 32-bit field.
	LocalAPICAddress32 uint32
	Flags              uint32

	LocalAPICs      []LocalAPIC
	LocalX2APICs    []LocalX2APIC
	IOAPICs         []IOAPIC
	Overrides       []InterruptSourceOverride
	NMISources      []NMISource
	LocalAPICNMIs   []LocalAPICNMI
	LocalX2APICNMIs []LocalX2APICNMI

	// Skipped lists entries of types this package does not decode (GIC,
	// I/O SAPIC, ...), which are passed over.
	Skipped []MADTEntry
}

// ParseMADT validates an MADT (see ParseTable) and decodes its entries.
// An entry whose length is below 2, below its type's size, or runs past the
// end of the table is an error.
func ParseMADT(b []byte) (*MADT, error) {
	t, err := ParseTable(b)
	if err != nil {
		return nil, err
	}
	if t.Signature != SigMADT {
		return nil, fmt.Errorf("acpi: MADT: signature %s, want %s: %w", sigName(t.Signature), SigMADT, ErrSignature)
	}
	d := t.Data
	if len(d) < madtEntriesOff {
		return nil, fmt.Errorf("acpi: MADT: Length %d, need at least %d: %w", len(d), madtEntriesOff, ErrBadLength)
	}
	le := binary.LittleEndian
	m := &MADT{
		Header:             t.Header,
		LocalAPICAddress32: le.Uint32(d[madtLocalAPICAddrOff:]),
		Flags:              le.Uint32(d[madtFlagsOff:]),
	}
	m.LocalAPICAddress = uint64(m.LocalAPICAddress32)
	for off := madtEntriesOff; off < len(d); {
		if len(d)-off < 2 {
			return nil, fmt.Errorf("acpi: MADT entry at offset %d: header runs past table end %d: %w", off, len(d), ErrTruncated)
		}
		typ, n := d[off], int(d[off+1])
		if n < 2 {
			return nil, fmt.Errorf("acpi: MADT entry at offset %d: type %d length %d: %w", off, typ, n, ErrBadLength)
		}
		if n > len(d)-off {
			return nil, fmt.Errorf("acpi: MADT entry at offset %d: type %d length %d runs past table end %d: %w", off, typ, n, len(d), ErrTruncated)
		}
		e := d[off : off+n]
		if int(typ) < len(madtMinLen) && madtMinLen[typ] != 0 && n < int(madtMinLen[typ]) {
			return nil, fmt.Errorf("acpi: MADT entry at offset %d: type %d length %d, need %d: %w", off, typ, n, madtMinLen[typ], ErrBadLength)
		}
		switch typ {
		case MADTLocalAPIC:
			m.LocalAPICs = append(m.LocalAPICs, LocalAPIC{ProcessorUID: e[2], APICID: e[3], Flags: le.Uint32(e[4:])})
		case MADTIOAPIC:
			m.IOAPICs = append(m.IOAPICs, IOAPIC{ID: e[2], Address: le.Uint32(e[4:]), GSIBase: le.Uint32(e[8:])})
		case MADTInterruptSourceOverride:
			m.Overrides = append(m.Overrides, InterruptSourceOverride{Bus: e[2], Source: e[3], GSI: le.Uint32(e[4:]), Flags: INTIFlags(le.Uint16(e[8:]))})
		case MADTNMISource:
			m.NMISources = append(m.NMISources, NMISource{Flags: INTIFlags(le.Uint16(e[2:])), GSI: le.Uint32(e[4:])})
		case MADTLocalAPICNMI:
			m.LocalAPICNMIs = append(m.LocalAPICNMIs, LocalAPICNMI{ProcessorUID: e[2], Flags: INTIFlags(le.Uint16(e[3:])), LINT: e[5]})
		case MADTLocalAPICAddressOverride:
			m.LocalAPICAddress = le.Uint64(e[4:])
		case MADTLocalX2APIC:
			m.LocalX2APICs = append(m.LocalX2APICs, LocalX2APIC{X2APICID: le.Uint32(e[4:]), Flags: le.Uint32(e[8:]), ProcessorUID: le.Uint32(e[12:])})
		case MADTLocalX2APICNMI:
			m.LocalX2APICNMIs = append(m.LocalX2APICNMIs, LocalX2APICNMI{Flags: INTIFlags(le.Uint16(e[2:])), ProcessorUID: le.Uint32(e[4:]), LINT: e[8]})
		default:
			m.Skipped = append(m.Skipped, MADTEntry{Type: typ, Offset: off, Length: uint8(n)})
		}
		off += n
	}
	return m, nil
}

// PCATCompat reports whether the system has dual 8259 PICs to mask.
func (m *MADT) PCATCompat() bool { return m.Flags&MADTPCATCompat != 0 }

// CPU is one processor from a Local APIC or Local x2APIC entry.
type CPU struct {
	APICID        uint32
	ProcessorUID  uint32
	X2APIC        bool // from a Local x2APIC entry
	Enabled       bool
	OnlineCapable bool
}

// CPUs lists the processors in table order, Local APIC entries first, then
// Local x2APIC entries whose APIC ID was not already listed.
func (m *MADT) CPUs() []CPU {
	out := make([]CPU, 0, len(m.LocalAPICs)+len(m.LocalX2APICs))
	seen := make(map[uint32]bool, cap(out))
	for _, l := range m.LocalAPICs {
		id := uint32(l.APICID)
		if seen[id] {
			continue
		}
		seen[id] = true
		out = append(out, CPU{
			APICID: id, ProcessorUID: uint32(l.ProcessorUID),
			Enabled: l.Flags&LocalAPICEnabled != 0, OnlineCapable: l.Flags&LocalAPICOnlineCapable != 0,
		})
	}
	for _, x := range m.LocalX2APICs {
		if seen[x.X2APICID] {
			continue
		}
		seen[x.X2APICID] = true
		out = append(out, CPU{
			APICID: x.X2APICID, ProcessorUID: x.ProcessorUID, X2APIC: true,
			Enabled: x.Flags&LocalAPICEnabled != 0, OnlineCapable: x.Flags&LocalAPICOnlineCapable != 0,
		})
	}
	return out
}

// EnabledCPUs counts the processors that are usable now.
func (m *MADT) EnabledCPUs() int {
	n := 0
	for _, c := range m.CPUs() {
		if c.Enabled {
			n++
		}
	}
	return n
}

// ISAIRQ resolves an ISA IRQ to its global system interrupt and signalling:
// identity-mapped, active high, edge-triggered unless an Interrupt Source
// Override for bus 0 says otherwise (5.2.12.5). The results never
// "conform to the bus": that is resolved to the ISA defaults.
func (m *MADT) ISAIRQ(irq uint8) (gsi uint32, pol Polarity, trig TriggerMode) {
	gsi, pol, trig = uint32(irq), PolarityActiveHigh, TriggerEdge
	for _, o := range m.Overrides {
		if o.Bus != 0 || o.Source != irq {
			continue
		}
		gsi = o.GSI
		if p := o.Flags.Polarity(); p != PolarityConforms {
			pol = p
		}
		if t := o.Flags.TriggerMode(); t != TriggerConforms {
			trig = t
		}
		break
	}
	return gsi, pol, trig
}

// INTIFlags are the MPS INTI flags of overrides and NMI entries, ACPI 6.5
// 5.2.12.5.
type INTIFlags uint16

// Polarity of an interrupt input (INTI flags bits 1:0).
type Polarity uint8

const (
	PolarityConforms   Polarity = 0 // conforms to the bus's specification
	PolarityActiveHigh Polarity = 1
	PolarityReserved   Polarity = 2
	PolarityActiveLow  Polarity = 3
)

// TriggerMode of an interrupt input (INTI flags bits 3:2).
type TriggerMode uint8

const (
	TriggerConforms TriggerMode = 0 // conforms to the bus's specification
	TriggerEdge     TriggerMode = 1
	TriggerReserved TriggerMode = 2
	TriggerLevel    TriggerMode = 3
)

func (f INTIFlags) Polarity() Polarity       { return Polarity(f & 3) }
func (f INTIFlags) TriggerMode() TriggerMode { return TriggerMode(f >> 2 & 3) }

func (f INTIFlags) String() string {
	return f.Polarity().String() + "," + f.TriggerMode().String()
}

func (p Polarity) String() string {
	switch p {
	case PolarityConforms:
		return "conforming"
	case PolarityActiveHigh:
		return "active-high"
	case PolarityActiveLow:
		return "active-low"
	}
	return "reserved-polarity"
}

func (t TriggerMode) String() string {
	switch t {
	case TriggerConforms:
		return "conforming"
	case TriggerEdge:
		return "edge"
	case TriggerLevel:
		return "level"
	}
	return "reserved-trigger"
}
