package acpi

import (
	"encoding/binary"
	"fmt"
)

// Generic Address Structure, ACPI 6.5 5.2.3.2.
const gasLen = 12

// Address space IDs, ACPI 6.5 5.2.3.2 (the ones this package meets).
const (
	AddressSpaceSystemMemory = 0x00
	AddressSpaceSystemIO     = 0x01
	AddressSpacePCIConfig    = 0x02
	AddressSpaceFFixedHW     = 0x7f
)

// Access sizes, ACPI 6.5 5.2.3.2.
const (
	AccessUndefined = 0 // legacy: use the register bit width
	AccessByte      = 1
	AccessWord      = 2
	AccessDword     = 3
	AccessQword     = 4
)

// GenericAddress says where a register is and how to access it.
type GenericAddress struct {
	AddressSpace uint8
	BitWidth     uint8
	BitOffset    uint8
	AccessSize   uint8
	Address      uint64
}

func parseGAS(b []byte) GenericAddress {
	return GenericAddress{
		AddressSpace: b[0],
		BitWidth:     b[1],
		BitOffset:    b[2],
		AccessSize:   b[3],
		Address:      binary.LittleEndian.Uint64(b[4:12]),
	}
}

// IsZero reports whether the structure names no register.
func (g GenericAddress) IsZero() bool { return g.Address == 0 }

// IOPort returns the register's I/O port when it is in system I/O space.
func (g GenericAddress) IOPort() (uint16, bool) {
	if g.AddressSpace != AddressSpaceSystemIO || g.Address == 0 || g.Address > 0xffff {
		return 0, false
	}
	return uint16(g.Address), true
}

func (g GenericAddress) String() string {
	var space string
	switch g.AddressSpace {
	case AddressSpaceSystemMemory:
		space = "mem"
	case AddressSpaceSystemIO:
		space = "io"
	case AddressSpacePCIConfig:
		space = "pcicfg"
	case AddressSpaceFFixedHW:
		space = "ffh"
	default:
		space = fmt.Sprintf("space%#x", g.AddressSpace)
	}
	return fmt.Sprintf("%s:%#x/%d", space, g.Address, g.BitWidth)
}
