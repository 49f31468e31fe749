package acpi

import (
	"bytes"
	"encoding/binary"
	"fmt"
)

// Root System Description Pointer, ACPI 6.5 5.2.5.3.
const (
	rsdpSignature = "RSD PTR "
	rsdpV1Len     = 20 // ACPI 1.0 structure: through RsdtAddress
	rsdpV2Len     = 36 // ACPI 2.0+: through Reserved
	rsdpMaxLen    = 4096

	// Where to look, ACPI 6.5 5.2.5.1.
	bdaEBDASegment = 0x40e // 16-bit real-mode segment of the EBDA
	ebdaSearchLen  = 1024
	biosAreaStart  = 0xe0000
	biosAreaEnd    = 0x100000
	rsdpAlign      = 16
)

// RSDP is the Root System Description Pointer.
type RSDP struct {
	Address     uint64 // where it was found; 0 when handed over by a boot loader
	Checksum    uint8
	OEMID       string
	Revision    uint8 // 0 for ACPI 1.0, 2 or more for ACPI 2.0 and later
	RsdtAddress uint32
	Length      uint32 // revision >= 2 only
	XsdtAddress uint64 // revision >= 2 only
	ExtChecksum uint8  // revision >= 2 only
}

// RootTable reports which root table Load uses: the XSDT when the revision
// is 2 or more and XsdtAddress is set, else the RSDT.
func (r RSDP) RootTable() (signature string, pa uint64) {
	if r.Revision >= 2 && r.XsdtAddress != 0 {
		return "XSDT", r.XsdtAddress
	}
	return "RSDT", uint64(r.RsdtAddress)
}

// ParseRSDP decodes and validates an RSDP, for example the copy a
// Multiboot2 boot loader hands over in its ACPI old/new RSDP tags. It checks
// the signature, the checksum over the first 20 bytes and, for revision 2
// and later, the Length field and the extended checksum over Length bytes.
// b may be longer than the structure.
func ParseRSDP(b []byte) (RSDP, error) {
	if len(b) < rsdpV1Len {
		return RSDP{}, fmt.Errorf("acpi: RSDP: %d bytes, need %d: %w", len(b), rsdpV1Len, ErrTruncated)
	}
	if string(b[:8]) != rsdpSignature {
		return RSDP{}, fmt.Errorf("acpi: RSDP: signature %q, want %q: %w", b[:8], rsdpSignature, ErrSignature)
	}
	if s := sum8(b[:rsdpV1Len]); s != 0 {
		return RSDP{}, fmt.Errorf("acpi: RSDP: checksum over %d bytes is %#02x, want 0: %w", rsdpV1Len, s, ErrChecksum)
	}
	r := RSDP{
		Checksum:    b[8],
		OEMID:       trimOEM(b[9:15]),
		Revision:    b[15],
		RsdtAddress: binary.LittleEndian.Uint32(b[16:20]),
	}
	if r.Revision < 2 {
		return r, nil
	}
	if len(b) < rsdpV2Len {
		return RSDP{}, fmt.Errorf("acpi: RSDP revision %d: %d bytes, need %d: %w", r.Revision, len(b), rsdpV2Len, ErrTruncated)
	}
	r.Length = binary.LittleEndian.Uint32(b[20:24])
	r.XsdtAddress = binary.LittleEndian.Uint64(b[24:32])
	r.ExtChecksum = b[32]
	if r.Length < rsdpV2Len || r.Length > rsdpMaxLen {
		return RSDP{}, fmt.Errorf("acpi: RSDP revision %d: Length %d outside [%d, %d]: %w",
			r.Revision, r.Length, rsdpV2Len, rsdpMaxLen, ErrBadLength)
	}
	if uint64(len(b)) < uint64(r.Length) {
		return RSDP{}, fmt.Errorf("acpi: RSDP revision %d: Length %d but only %d bytes: %w", r.Revision, r.Length, len(b), ErrTruncated)
	}
	if s := sum8(b[:r.Length]); s != 0 {
		return RSDP{}, fmt.Errorf("acpi: RSDP: extended checksum over %d bytes is %#02x, want 0: %w", r.Length, s, ErrChecksum)
	}
	return r, nil
}

// readRSDP reads and validates the RSDP at pa.
func readRSDP(mem Memory, pa uint64) (RSDP, error) {
	var buf [rsdpV2Len]byte
	b := buf[:]
	if err := mem.ReadAt(b, pa); err != nil {
		// The ACPI 1.0 structure may end right at the end of readable memory.
		b = buf[:rsdpV1Len]
		if err := mem.ReadAt(b, pa); err != nil {
			return RSDP{}, fmt.Errorf("acpi: RSDP at %#x: %w: %w", pa, ErrTruncated, err)
		}
	}
	if len(b) == rsdpV2Len && b[15] >= 2 {
		if n := binary.LittleEndian.Uint32(b[20:24]); n > rsdpV2Len && n <= rsdpMaxLen {
			b = make([]byte, n)
			if err := mem.ReadAt(b, pa); err != nil {
				return RSDP{}, fmt.Errorf("acpi: RSDP at %#x: Length %d: %w: %w", pa, n, ErrTruncated, err)
			}
		}
	}
	r, err := ParseRSDP(b)
	if err != nil {
		return RSDP{}, fmt.Errorf("acpi: RSDP at %#x: %w", pa, err)
	}
	r.Address = pa
	return r, nil
}

// FindRSDP searches where ACPI 6.5 5.2.5.1 says the firmware of an IA-PC
// (BIOS) system places the RSDP: the first 1 KiB of the Extended BIOS Data
// Area (segment in the 16-bit word at physical 0x40E), then the BIOS area
// 0xE0000-0xFFFFF, on 16-byte boundaries. A candidate with a bad checksum is
// passed over. UEFI systems publish the RSDP in the EFI configuration table
// instead; their boot loader hands it over (ParseRSDP).
func FindRSDP(mem Memory) (RSDP, error) {
	var firstBad error
	try := func(start, end uint64) (RSDP, bool) {
		var chunk [4096]byte
		for base := start; base < end; base += uint64(len(chunk)) {
			b := chunk[:min(uint64(len(chunk)), end-base)]
			if mem.ReadAt(b, base) != nil {
				continue // a hole in the map is not an error here
			}
			for off := 0; off+len(rsdpSignature) <= len(b); off += rsdpAlign {
				if !bytes.Equal(b[off:off+len(rsdpSignature)], []byte(rsdpSignature)) {
					continue
				}
				r, err := readRSDP(mem, base+uint64(off))
				if err == nil {
					return r, true
				}
				if firstBad == nil {
					firstBad = err
				}
			}
		}
		return RSDP{}, false
	}

	var seg [2]byte
	if mem.ReadAt(seg[:], bdaEBDASegment) == nil {
		if ebda := uint64(binary.LittleEndian.Uint16(seg[:])) << 4; ebda != 0 {
			if r, ok := try(ebda, ebda+ebdaSearchLen); ok {
				return r, nil
			}
		}
	}
	if r, ok := try(biosAreaStart, biosAreaEnd); ok {
		return r, nil
	}
	if firstBad != nil {
		return RSDP{}, fmt.Errorf("%w in the EBDA or 0xE0000-0xFFFFF (passed over a candidate: %w)", ErrNoRSDP, firstBad)
	}
	return RSDP{}, fmt.Errorf("%w in the EBDA or 0xE0000-0xFFFFF", ErrNoRSDP)
}

// sum8 is the ACPI checksum: the byte sum of a valid structure is zero.
func sum8(b []byte) uint8 {
	var s uint8
	for _, c := range b {
		s += c
	}
	return s
}

// trimOEM renders a fixed-width, space- or NUL-padded ID field.
func trimOEM(b []byte) string {
	return string(bytes.TrimRight(b, " \x00"))
}
