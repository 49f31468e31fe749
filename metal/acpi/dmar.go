package acpi

import (
	"encoding/binary"
	"fmt"
)

// DMA Remapping Reporting table (DMAR), Intel Virtualization Technology for
// Directed I/O Architecture Specification (VT-d) rev. 4.1, chapter 8.
// Section numbers in this file refer to that specification.
const (
	dmarHostAddressWidthOff = 36 // u8: the width minus one, 8.1
	dmarFlagsOff            = 37 // u8
	dmarStructuresOff       = 48 // after 10 reserved bytes

	// DMAR flags, 8.1.
	DMARIntrRemap            = 1 << 0 // the platform supports interrupt remapping
	DMARX2APICOptOut         = 1 << 1 // firmware asks the OS not to enable x2APIC mode
	DMARDMACtrlPlatformOptIn = 1 << 2 // firmware set up DMA protection it wants kept
)

// Remapping structure types, 8.2.
const (
	DMARTypeDRHD = 0 // DMA Remapping Hardware Unit Definition, 8.3
	DMARTypeRMRR = 1 // Reserved Memory Region Reporting, 8.4
	DMARTypeATSR = 2 // Root Port ATS Capability Reporting, 8.5
	DMARTypeRHSA = 3 // Remapping Hardware Static Affinity, 8.6
	DMARTypeANDD = 4 // ACPI Name-space Device Declaration, 8.7
	DMARTypeSATC = 5 // SoC Integrated Address Translation Cache, 8.8
	DMARTypeSIDP = 6 // SoC Integrated Device Property, 8.9
)

const (
	dmarStructHeaderLen = 4  // type u16, length u16
	drhdLen             = 16 // flags, size, segment, register base
	rmrrLen             = 24 // reserved, segment, base, limit

	// DRHDIncludePCIAll: the unit covers every PCI device of its segment
	// not named in another unit's scope (plus the I/O APICs and HPETs in
	// its own scope), 8.3.
	DRHDIncludePCIAll = 1 << 0
)

// Device scope entry types, 8.3.1.
const (
	ScopePCIEndpoint     = 1
	ScopePCISubHierarchy = 2 // a bridge and everything behind it
	ScopeIOAPIC          = 3
	ScopeHPET            = 4 // an MSI-capable HPET
	ScopeACPIDevice      = 5 // an ACPI name-space device (see ANDD)

	scopeHeaderLen = 6 // type, length, flags, reserved, enumeration ID, start bus
)

// PCIPathEntry is one hop of a device scope's path: the device and
// function on the bus the previous hop (or the start bus) leads to.
type PCIPathEntry struct {
	Device   uint8 // 0-31
	Function uint8 // 0-7
}

// DeviceScope is a device scope entry, 8.3.1: the device at the end of
// Path, walked from StartBus through each bridge.
type DeviceScope struct {
	Type          uint8
	Flags         uint8 // bit 0: requests without PASID are tagged (VT-d 3.x)
	EnumerationID uint8 // the I/O APIC ID, the HPET number, or the ANDD's device number
	StartBus      uint8
	Path          []PCIPathEntry
}

// DRHD is a DMA remapping hardware unit, 8.3.
type DRHD struct {
	Offset       int // from the start of the table
	Flags        uint8
	Size         uint8  // bits 3:0: the register set is 2^n 4-KiB pages (0 on older tables)
	Segment      uint16 // PCI segment
	RegisterBase uint64 // physical address of the unit's registers
	Scopes       []DeviceScope
}

// IncludePCIAll reports whether the unit covers every device of its
// segment that no other unit names.
func (d *DRHD) IncludePCIAll() bool { return d.Flags&DRHDIncludePCIAll != 0 }

// RMRR is a reserved memory region, 8.4: memory the devices in its scope
// may DMA to at any time (USB legacy emulation, integrated graphics), which
// their domains must keep identity-mapped.
type RMRR struct {
	Offset  int
	Segment uint16
	Base    uint64 // 4-KiB aligned
	Limit   uint64 // last byte, inclusive
	Scopes  []DeviceScope
}

// DMARStruct locates a remapping structure this package does not decode.
type DMARStruct struct {
	Type   uint16
	Offset int
	Length uint16
}

// Name is the structure's specification name ("ATSR", "RHSA", ...).
func (s DMARStruct) Name() string { return dmarTypeName(s.Type) }

// DMAR is the parsed DMA Remapping Reporting table.
type DMAR struct {
	Header
	HostAddressWidth int // DMA physical addressing width in bits (the field plus one)
	Flags            uint8
	DRHDs            []DRHD
	RMRRs            []RMRR
	// Skipped lists ATSR, RHSA, ANDD and other structures, passed over
	// by their length.
	Skipped []DMARStruct
}

// IntrRemap reports whether the platform supports interrupt remapping.
func (d *DMAR) IntrRemap() bool { return d.Flags&DMARIntrRemap != 0 }

// X2APICOptOut reports whether firmware asks the OS to stay in xAPIC mode.
func (d *DMAR) X2APICOptOut() bool { return d.Flags&DMARX2APICOptOut != 0 }

func dmarTypeName(t uint16) string {
	switch t {
	case DMARTypeDRHD:
		return "DRHD"
	case DMARTypeRMRR:
		return "RMRR"
	case DMARTypeATSR:
		return "ATSR"
	case DMARTypeRHSA:
		return "RHSA"
	case DMARTypeANDD:
		return "ANDD"
	case DMARTypeSATC:
		return "SATC"
	case DMARTypeSIDP:
		return "SIDP"
	}
	return fmt.Sprintf("type %d", t)
}

// ParseDMAR validates a DMAR (see ParseTable) and decodes its remapping
// units and reserved memory regions. Every structure and device scope
// must lie within the table and be at least as long as its fixed part;
// errors name the offset from the start of the table.
func ParseDMAR(b []byte) (*DMAR, error) {
	t, err := ParseTable(b)
	if err != nil {
		return nil, err
	}
	if t.Signature != SigDMAR {
		return nil, fmt.Errorf("acpi: DMAR: signature %s, want %s: %w", sigName(t.Signature), SigDMAR, ErrSignature)
	}
	d := t.Data
	if len(d) < dmarStructuresOff {
		return nil, fmt.Errorf("acpi: DMAR: Length %d, need at least %d: %w", len(d), dmarStructuresOff, ErrBadLength)
	}
	le := binary.LittleEndian
	m := &DMAR{
		Header:           t.Header,
		HostAddressWidth: int(d[dmarHostAddressWidthOff]) + 1,
		Flags:            d[dmarFlagsOff],
	}
	for off := dmarStructuresOff; off < len(d); {
		if len(d)-off < dmarStructHeaderLen {
			return nil, fmt.Errorf("acpi: DMAR structure at offset %d: header runs past table end %d: %w", off, len(d), ErrTruncated)
		}
		typ, n := le.Uint16(d[off:]), int(le.Uint16(d[off+2:]))
		if n < dmarStructHeaderLen {
			return nil, fmt.Errorf("acpi: DMAR %s at offset %d: length %d: %w", dmarTypeName(typ), off, n, ErrBadLength)
		}
		if n > len(d)-off {
			return nil, fmt.Errorf("acpi: DMAR %s at offset %d: length %d runs past table end %d: %w", dmarTypeName(typ), off, n, len(d), ErrTruncated)
		}
		s := d[off : off+n]
		switch typ {
		case DMARTypeDRHD:
			if n < drhdLen {
				return nil, fmt.Errorf("acpi: DMAR DRHD at offset %d: length %d, need %d: %w", off, n, drhdLen, ErrBadLength)
			}
			scopes, err := parseScopes(s, drhdLen, off)
			if err != nil {
				return nil, err
			}
			m.DRHDs = append(m.DRHDs, DRHD{
				Offset: off, Flags: s[4], Size: s[5], Segment: le.Uint16(s[6:]),
				RegisterBase: le.Uint64(s[8:]), Scopes: scopes,
			})
		case DMARTypeRMRR:
			if n < rmrrLen {
				return nil, fmt.Errorf("acpi: DMAR RMRR at offset %d: length %d, need %d: %w", off, n, rmrrLen, ErrBadLength)
			}
			r := RMRR{Offset: off, Segment: le.Uint16(s[6:]), Base: le.Uint64(s[8:]), Limit: le.Uint64(s[16:])}
			if r.Limit < r.Base {
				return nil, fmt.Errorf("acpi: DMAR RMRR at offset %d: limit %#x below base %#x: %w", off, r.Limit, r.Base, ErrBadLength)
			}
			if r.Scopes, err = parseScopes(s, rmrrLen, off); err != nil {
				return nil, err
			}
			m.RMRRs = append(m.RMRRs, r)
		default:
			m.Skipped = append(m.Skipped, DMARStruct{Type: typ, Offset: off, Length: uint16(n)})
		}
		off += n
	}
	return m, nil
}

// parseScopes decodes the device scope entries that fill s from start to
// its end; base is s's offset in the table, for the messages.
func parseScopes(s []byte, start, base int) ([]DeviceScope, error) {
	var out []DeviceScope
	for off := start; off < len(s); {
		at := base + off
		if len(s)-off < 2 {
			return nil, fmt.Errorf("acpi: DMAR device scope at offset %d: header runs past its structure's end %d: %w", at, base+len(s), ErrTruncated)
		}
		typ, n := s[off], int(s[off+1])
		if n < scopeHeaderLen+2 || (n-scopeHeaderLen)%2 != 0 {
			return nil, fmt.Errorf("acpi: DMAR device scope at offset %d: type %d length %d, want 6 plus a whole number (at least one) of 2-byte path entries: %w", at, typ, n, ErrBadLength)
		}
		if n > len(s)-off {
			return nil, fmt.Errorf("acpi: DMAR device scope at offset %d: type %d length %d runs past its structure's end %d: %w", at, typ, n, base+len(s), ErrTruncated)
		}
		e := s[off : off+n]
		ds := DeviceScope{Type: typ, Flags: e[2], EnumerationID: e[4], StartBus: e[5]}
		ds.Path = make([]PCIPathEntry, 0, (n-scopeHeaderLen)/2)
		for p := scopeHeaderLen; p < n; p += 2 {
			dev, fn := e[p], e[p+1]
			if dev > 31 || fn > 7 {
				return nil, fmt.Errorf("acpi: DMAR device scope at offset %d: path entry at offset %d is device %d function %d, beyond 31 and 7: %w", at, at+p, dev, fn, ErrBadLength)
			}
			ds.Path = append(ds.Path, PCIPathEntry{Device: dev, Function: fn})
		}
		out = append(out, ds)
		off += n
	}
	return out, nil
}

// String renders the scope as its type and the PCI address its path
// starts at, e.g. "ioapic 0 ff:00.0" or "pci 00:1f.2".
func (s DeviceScope) String() string {
	var kind string
	switch s.Type {
	case ScopePCIEndpoint:
		kind = "pci"
	case ScopePCISubHierarchy:
		kind = "bridge"
	case ScopeIOAPIC:
		kind = fmt.Sprintf("ioapic %d", s.EnumerationID)
	case ScopeHPET:
		kind = fmt.Sprintf("hpet %d", s.EnumerationID)
	case ScopeACPIDevice:
		kind = fmt.Sprintf("acpi-device %d", s.EnumerationID)
	default:
		kind = fmt.Sprintf("type-%d", s.Type)
	}
	out := fmt.Sprintf("%s %02x:", kind, s.StartBus)
	for i, p := range s.Path {
		if i > 0 {
			out += "/"
		}
		out += fmt.Sprintf("%02x.%d", p.Device, p.Function)
	}
	return out
}
