package acpi

import (
	"encoding/binary"
	"fmt"
)

// PCI Express memory-mapped configuration space base address description
// table (MCFG), PCI Firmware Specification 3.2, 4.1.2: the header, 8
// reserved bytes, then one 16-byte allocation per segment group range.
const (
	mcfgEntries  = HeaderLen + 8
	mcfgEntryLen = 16
)

// ECAMRange is one MCFG allocation: the enhanced configuration space of
// buses StartBus..EndBus in a PCI segment group. Base is the address of
// bus 0's space (each bus takes 1 MiB), as the specification defines it
// even when StartBus is not 0.
type ECAMRange struct {
	Base     uint64
	Segment  uint16
	StartBus uint8
	EndBus   uint8
}

// MCFG is the parsed MCFG table.
type MCFG struct {
	Header
	Ranges []ECAMRange
}

// ParseMCFG validates an MCFG table (see ParseTable) and decodes its
// allocations. A trailing partial entry is an error; the ranges are
// returned as the firmware wrote them (an end bus below its start included).
func ParseMCFG(b []byte) (*MCFG, error) {
	t, err := ParseTable(b)
	if err != nil {
		return nil, err
	}
	if t.Signature != SigMCFG {
		return nil, fmt.Errorf("acpi: MCFG: signature %s, want %s: %w", sigName(t.Signature), SigMCFG, ErrSignature)
	}
	d := t.Data
	if len(d) < mcfgEntries || (len(d)-mcfgEntries)%mcfgEntryLen != 0 {
		return nil, fmt.Errorf("acpi: MCFG: Length %d is not %d plus whole %d-byte entries: %w", len(d), mcfgEntries, mcfgEntryLen, ErrBadLength)
	}
	le := binary.LittleEndian
	m := &MCFG{Header: t.Header}
	for off := mcfgEntries; off < len(d); off += mcfgEntryLen {
		e := d[off : off+mcfgEntryLen]
		m.Ranges = append(m.Ranges, ECAMRange{
			Base:     le.Uint64(e[0:]),
			Segment:  le.Uint16(e[8:]),
			StartBus: e[10],
			EndBus:   e[11],
		})
	}
	return m, nil
}

// MCFG parses the first MCFG table.
func (t *Tables) MCFG() (*MCFG, error) {
	tab, err := t.need(SigMCFG)
	if err != nil {
		return nil, err
	}
	return ParseMCFG(tab.Data)
}
