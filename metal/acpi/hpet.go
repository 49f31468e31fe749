package acpi

import (
	"encoding/binary"
	"fmt"
)

// HPET Description Table, IA-PC HPET Specification 1.0a, 3.2.4.
const (
	hpetEventTimerBlockID = 36 // u32
	hpetBaseAddress       = 40 // GAS
	hpetNumber            = 52 // u8
	hpetMinimumTick       = 53 // u16
	hpetPageProtection    = 55 // u8
	hpetLen               = 56
)

// HPET is the parsed HPET description table.
type HPET struct {
	Header
	// EventTimerBlockID mirrors the block's capabilities register low
	// half: bits 7:0 hardware revision, 12:8 number of the last
	// comparator, 13 64-bit counter, 15 legacy replacement capable,
	// 31:16 PCI vendor ID.
	EventTimerBlockID uint32
	Address           GenericAddress // the timer block's registers (system memory)
	Number            uint8          // HPET sequence number
	MinimumTick       uint16         // minimum clock ticks in periodic mode without lost interrupts
	PageProtection    uint8
}

// Comparators is the number of comparators in the first timer block.
func (h *HPET) Comparators() int { return int(h.EventTimerBlockID>>8&0x1f) + 1 }

// Counter64 reports whether the main counter is 64 bits wide.
func (h *HPET) Counter64() bool { return h.EventTimerBlockID&(1<<13) != 0 }

// LegacyReplacement reports whether the block can take over IRQ0 and IRQ8.
func (h *HPET) LegacyReplacement() bool { return h.EventTimerBlockID&(1<<15) != 0 }

// VendorID is the PCI vendor ID of the first timer block.
func (h *HPET) VendorID() uint16 { return uint16(h.EventTimerBlockID >> 16) }

// ParseHPET validates an HPET table (see ParseTable) and decodes it.
func ParseHPET(b []byte) (*HPET, error) {
	t, err := ParseTable(b)
	if err != nil {
		return nil, err
	}
	if t.Signature != SigHPET {
		return nil, fmt.Errorf("acpi: HPET: signature %s, want %s: %w", sigName(t.Signature), SigHPET, ErrSignature)
	}
	d := t.Data
	if len(d) < hpetLen {
		return nil, fmt.Errorf("acpi: HPET: Length %d, need %d: %w", len(d), hpetLen, ErrBadLength)
	}
	le := binary.LittleEndian
	return &HPET{
		Header:            t.Header,
		EventTimerBlockID: le.Uint32(d[hpetEventTimerBlockID:]),
		Address:           parseGAS(d[hpetBaseAddress : hpetBaseAddress+gasLen]),
		Number:            d[hpetNumber],
		MinimumTick:       le.Uint16(d[hpetMinimumTick:]),
		PageProtection:    d[hpetPageProtection],
	}, nil
}
