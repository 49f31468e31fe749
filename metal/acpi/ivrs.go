package acpi

import (
	"encoding/binary"
	"fmt"
)

// I/O Virtualization Reporting Structure (IVRS), AMD I/O Virtualization
// Technology (IOMMU) Specification, publication 48882 rev. 3.08, 5.2.
// Section numbers in this file refer to that specification.
const (
	ivrsIVinfoOff = 36 // u32, 5.2.1
	ivrsBlocksOff = 48 // after 8 reserved bytes

	// IVinfo fields.
	IVinfoEFRSup = 1 << 0 // the IVHD type 11h/40h EFR image is valid
)

// IVRS block types, 5.2.2.
const (
	IVHDType10 = 0x10 // I/O virtualization hardware definition, legacy form
	IVHDType11 = 0x11 // with the EFR register image
	IVHDType40 = 0x40 // as 11h, and ACPI HID device entries in full
	IVMDAll    = 0x20 // I/O virtualization memory definition for every device
	IVMDSelect = 0x21 // for one device
	IVMDRange  = 0x22 // for a range of devices

	ivrsBlockHeaderLen = 4 // type, flags, length u16
	ivhd10Len          = 24
	ivhd11Len          = 40
	ivmdLen            = 32
)

// IVHD device entry types, 5.2.2.2. Types below 0x40 are 4 bytes long,
// 0x40 to 0x7f 8 bytes, 0x80 and above variable.
const (
	IVHDEntryPad          = 0x00
	IVHDEntryAll          = 0x01 // every device ID
	IVHDEntrySelect       = 0x02
	IVHDEntryStartRange   = 0x03
	IVHDEntryEndRange     = 0x04
	IVHDEntryAliasSelect  = 0x42
	IVHDEntryAliasRange   = 0x43 // start of a range aliased to one device ID
	IVHDEntryExtSelect    = 0x46
	IVHDEntryExtRange     = 0x47 // start of a range with extended settings
	IVHDEntrySpecial      = 0x48 // an IOAPIC or HPET and the device ID it uses
	IVHDEntryACPIHID      = 0xf0 // an ACPI device named by _HID/_CID/_UID
	ivhdEntryACPIHIDFixed = 22   // before the UID bytes
)

// Special device varieties of entry type 0x48.
const (
	SpecialIOAPIC = 1
	SpecialHPET   = 2
)

// IVHDEntry is one device entry of an IVHD (a start-of-range entry and the
// end-of-range entry that closes it are merged into one).
type IVHDEntry struct {
	Type   uint8 // of the entry (the start entry of a range)
	Offset int   // from the start of the table
	// First and Last are the device IDs covered (bus<<8 | dev<<3 | fn):
	// equal for a select entry, 0 and 0xffff for IVHDEntryAll, the
	// special device's ID for IVHDEntrySpecial.
	First, Last uint16
	DTE         uint8  // device table entry settings (INITPass, EIntPass, NMIPass, SysMgt, Lint0/1Pass)
	Alias       uint16 // the device ID requests from First..Last appear with (alias entries)
	Ext         uint32 // extended settings (ExtSelect, ExtRange; bit 31 ATS disabled)
	Handle      uint8  // special: the IOAPIC ID or HPET number
	Variety     uint8  // special: SpecialIOAPIC or SpecialHPET
	HID, CID    string // ACPI HID entries
	UIDFormat   uint8
	UID         []byte
}

// IVHD is an I/O virtualization hardware definition block: one IOMMU.
type IVHD struct {
	Type     uint8 // IVHDType10, 11 or 40
	Offset   int
	Flags    uint8
	DeviceID uint16 // the IOMMU's own PCI function (bus<<8 | dev<<3 | fn)
	CapOff   uint16 // offset of its capability block in configuration space
	Base     uint64 // physical address of its registers
	Segment  uint16
	Info     uint16 // bits 4:0 MSI number, 12:8 UnitID
	// Features is the IOMMU feature reporting field of type 10h, or the
	// IOMMU attributes of types 11h and 40h.
	Features uint32
	EFR      uint64 // type 11h/40h: image of the Extended Feature Register
	EFR2     uint64 // type 11h/40h: image of the second EFR
	Entries  []IVHDEntry
}

// IVMD is an I/O virtualization memory definition block: memory the
// devices it names must reach (unity-mapped) or be excluded from.
type IVMD struct {
	Type   uint8 // IVMDAll, IVMDSelect or IVMDRange
	Offset int
	Flags  uint8 // bit 0 unity, 1 readable, 2 writable, 3 exclusion range
	First  uint16
	Last   uint16 // IVMDRange's end device; First for Select; 0xffff for All
	Start  uint64
	Length uint64
}

// IVRSBlock locates a block of a type this package does not decode.
type IVRSBlock struct {
	Type   uint8
	Offset int
	Length uint16
}

// IVRS is the parsed I/O Virtualization Reporting Structure.
type IVRS struct {
	Header
	IVinfo  uint32
	IVHDs   []IVHD
	IVMDs   []IVMD
	Skipped []IVRSBlock
}

// EFRSup reports whether the IVHDs' EFR images are valid.
func (r *IVRS) EFRSup() bool { return r.IVinfo&IVinfoEFRSup != 0 }

// PASize is the maximum physical address size the IOMMUs support, in bits.
func (r *IVRS) PASize() int { return int(r.IVinfo >> 8 & 0x7f) }

// VASize is the maximum virtual address size, in bits.
func (r *IVRS) VASize() int { return int(r.IVinfo >> 15 & 0x7f) }

// GVASize is the guest virtual address size field (2: 48 bits).
func (r *IVRS) GVASize() int { return int(r.IVinfo >> 5 & 7) }

// PCIAddress renders a device ID as bus:device.function.
func PCIAddress(id uint16) string {
	return fmt.Sprintf("%02x:%02x.%d", id>>8, id>>3&0x1f, id&7)
}

// ParseIVRS validates an IVRS (see ParseTable) and decodes its IVHD and
// IVMD blocks. Every block and device entry must lie within the table
// (and its block) and be as long as its type requires; a range must be
// closed by an end-of-range entry in the same block. Errors name the
// offset from the start of the table.
func ParseIVRS(b []byte) (*IVRS, error) {
	t, err := ParseTable(b)
	if err != nil {
		return nil, err
	}
	if t.Signature != SigIVRS {
		return nil, fmt.Errorf("acpi: IVRS: signature %s, want %s: %w", sigName(t.Signature), SigIVRS, ErrSignature)
	}
	d := t.Data
	if len(d) < ivrsBlocksOff {
		return nil, fmt.Errorf("acpi: IVRS: Length %d, need at least %d: %w", len(d), ivrsBlocksOff, ErrBadLength)
	}
	le := binary.LittleEndian
	r := &IVRS{Header: t.Header, IVinfo: le.Uint32(d[ivrsIVinfoOff:])}
	for off := ivrsBlocksOff; off < len(d); {
		if len(d)-off < ivrsBlockHeaderLen {
			return nil, fmt.Errorf("acpi: IVRS block at offset %d: header runs past table end %d: %w", off, len(d), ErrTruncated)
		}
		typ, n := d[off], int(le.Uint16(d[off+2:]))
		if n < ivrsBlockHeaderLen {
			return nil, fmt.Errorf("acpi: IVRS block at offset %d: type %#x length %d: %w", off, typ, n, ErrBadLength)
		}
		if n > len(d)-off {
			return nil, fmt.Errorf("acpi: IVRS block at offset %d: type %#x length %d runs past table end %d: %w", off, typ, n, len(d), ErrTruncated)
		}
		s := d[off : off+n]
		switch typ {
		case IVHDType10, IVHDType11, IVHDType40:
			h, err := parseIVHD(s, off)
			if err != nil {
				return nil, err
			}
			r.IVHDs = append(r.IVHDs, h)
		case IVMDAll, IVMDSelect, IVMDRange:
			if n < ivmdLen {
				return nil, fmt.Errorf("acpi: IVRS IVMD at offset %d: type %#x length %d, need %d: %w", off, typ, n, ivmdLen, ErrBadLength)
			}
			m := IVMD{
				Type: typ, Offset: off, Flags: s[1], First: le.Uint16(s[4:]),
				Start: le.Uint64(s[16:]), Length: le.Uint64(s[24:]),
			}
			switch typ {
			case IVMDAll:
				m.First, m.Last = 0, 0xffff
			case IVMDSelect:
				m.Last = m.First
			case IVMDRange:
				m.Last = le.Uint16(s[6:])
				if m.Last < m.First {
					return nil, fmt.Errorf("acpi: IVRS IVMD at offset %d: device range %#x-%#x ends before it starts: %w", off, m.First, m.Last, ErrBadLength)
				}
			}
			if m.Length != 0 && m.Start+(m.Length-1) < m.Start {
				return nil, fmt.Errorf("acpi: IVRS IVMD at offset %d: start %#x length %#x wraps past the top of the address space: %w", off, m.Start, m.Length, ErrBadLength)
			}
			r.IVMDs = append(r.IVMDs, m)
		default:
			r.Skipped = append(r.Skipped, IVRSBlock{Type: typ, Offset: off, Length: uint16(n)})
		}
		off += n
	}
	return r, nil
}

// parseIVHD decodes one IVHD block s, found at table offset base.
func parseIVHD(s []byte, base int) (IVHD, error) {
	le := binary.LittleEndian
	typ := s[0]
	hdr := ivhd11Len
	if typ == IVHDType10 {
		hdr = ivhd10Len
	}
	if len(s) < hdr {
		return IVHD{}, fmt.Errorf("acpi: IVRS IVHD at offset %d: type %#x length %d, need %d: %w", base, typ, len(s), hdr, ErrBadLength)
	}
	h := IVHD{
		Type: typ, Offset: base, Flags: s[1], DeviceID: le.Uint16(s[4:]), CapOff: le.Uint16(s[6:]),
		Base: le.Uint64(s[8:]), Segment: le.Uint16(s[16:]), Info: le.Uint16(s[18:]), Features: le.Uint32(s[20:]),
	}
	if typ != IVHDType10 {
		h.EFR, h.EFR2 = le.Uint64(s[24:]), le.Uint64(s[32:])
	}
	open := -1 // index in h.Entries of a range awaiting its end entry
	for off := hdr; off < len(s); {
		at := base + off
		et := s[off]
		var n int
		switch {
		case et < 0x40:
			n = 4
		case et < 0x80:
			n = 8
		case et == IVHDEntryACPIHID:
			if len(s)-off < ivhdEntryACPIHIDFixed {
				return IVHD{}, fmt.Errorf("acpi: IVRS IVHD entry at offset %d: ACPI HID entry runs past its block's end %d: %w", at, base+len(s), ErrTruncated)
			}
			n = ivhdEntryACPIHIDFixed + int(s[off+21])
		default:
			return IVHD{}, fmt.Errorf("acpi: IVRS IVHD entry at offset %d: variable-length type %#x of unknown layout: %w", at, et, ErrBadLength)
		}
		if n > len(s)-off {
			return IVHD{}, fmt.Errorf("acpi: IVRS IVHD entry at offset %d: type %#x length %d runs past its block's end %d: %w", at, et, n, base+len(s), ErrTruncated)
		}
		e := s[off : off+n]
		id := le.Uint16(e[1:])
		en := IVHDEntry{Type: et, Offset: at, First: id, Last: id, DTE: e[3]}
		switch et {
		case IVHDEntryAll:
			en.First, en.Last = 0, 0xffff
		case IVHDEntryStartRange, IVHDEntryAliasRange, IVHDEntryExtRange:
			if open >= 0 {
				return IVHD{}, fmt.Errorf("acpi: IVRS IVHD entry at offset %d: start of range while the range at offset %d is open: %w", at, h.Entries[open].Offset, ErrBadLength)
			}
			open = len(h.Entries)
		case IVHDEntryEndRange:
			if open < 0 {
				return IVHD{}, fmt.Errorf("acpi: IVRS IVHD entry at offset %d: end of range without a start: %w", at, ErrBadLength)
			}
			st := &h.Entries[open]
			if id < st.First {
				return IVHD{}, fmt.Errorf("acpi: IVRS IVHD entry at offset %d: range %#x-%#x (started at offset %d) ends before it starts: %w", at, st.First, id, st.Offset, ErrBadLength)
			}
			st.Last = id
			open = -1
			off += n
			continue
		case IVHDEntrySpecial:
			en.Handle, en.Variety = e[4], e[7]
			en.First = le.Uint16(e[5:])
			en.Last = en.First
		case IVHDEntryACPIHID:
			en.HID, en.CID = trimOEM(e[4:12]), trimOEM(e[12:20])
			en.UIDFormat = e[20]
			en.UID = append([]byte(nil), e[ivhdEntryACPIHIDFixed:]...)
		}
		switch et {
		case IVHDEntryAliasSelect, IVHDEntryAliasRange:
			en.Alias = le.Uint16(e[5:])
		case IVHDEntryExtSelect, IVHDEntryExtRange:
			en.Ext = le.Uint32(e[4:])
		}
		if et != IVHDEntryPad {
			h.Entries = append(h.Entries, en)
		}
		off += n
	}
	if open >= 0 {
		return IVHD{}, fmt.Errorf("acpi: IVRS IVHD at offset %d: the range started at offset %d has no end entry: %w", base, h.Entries[open].Offset, ErrTruncated)
	}
	return h, nil
}
