package acpitables

import "encoding/binary"

// Resource data descriptors for _CRS, ACPI 6.5 6.4: a ResourceTemplate is
// a Buffer of descriptors closed by an End Tag.

// Descriptor tags: small items are one byte (bits 6:3 the item name, bits
// 2:0 the length that follows), large items 0x80 | name with a 16-bit
// length after (6.4.2, 6.4.3).
const (
	resIRQWithFlags     = 0x23 // IRQ descriptor, 3 bytes: mask and flags (6.4.2.1)
	resIOPort           = 0x47 // I/O port descriptor, 7 bytes (6.4.2.5)
	resEndTag           = 0x79 // End Tag, 1 byte: checksum (6.4.2.9)
	resMemory32Fixed    = 0x86 // 32-bit fixed memory range descriptor (6.4.3.4)
	resMemory32FixedLen = 9    // its length field
	resDWordAddress     = 0x87 // DWord Address Space descriptor (6.4.3.5.1)
	resDWordAddressLen  = 23   // its length field
	resWordAddress      = 0x88 // Word Address Space descriptor (6.4.3.5.3)
	resWordAddressLen   = 13   // its length field

	ioDecode16   = 1 << 0 // I/O descriptor: the device decodes all 16 address bits
	irqEdge      = 1 << 0 // IRQ descriptor flags: _HE, edge-triggered
	irqActiveLow = 1 << 3 // _LL
	irqShared    = 1 << 4 // _SHR
	mem32Write   = 1 << 0 // Memory32Fixed: _RW, writeable

	// Address space descriptors (6.4.3.5): the resource type, the
	// general flags (bit 0 clear: the device produces the range for
	// its children, a bridge window; bit 1 clear: positive decode; bits
	// 2 and 3: _MIF and _MAF, the minimum and maximum are fixed) and, for
	// memory, the type-specific flags (bit 0 _RW, bits 2:1 _MEM 0
	// non-cacheable).
	addrSpaceMemory  = 0
	addrSpaceBus     = 2
	addrWindowFixed  = 1<<2 | 1<<3 // ResourceProducer, PosDecode, MinFixed, MaxFixed
	addrMemReadWrite = 1 << 0
)

// resIO is IO(Decode16, base, base, 1, length): a fixed range of length
// ports at base.
func resIO(base uint16, length uint8) []byte {
	b := []byte{resIOPort, ioDecode16}
	b = binary.LittleEndian.AppendUint16(b, base) // _MIN
	b = binary.LittleEndian.AppendUint16(b, base) // _MAX
	return append(b, 1, length)                   // _ALN, _LEN
}

// resIRQ is IRQ(Edge, ActiveHigh, Exclusive) {irq}: one ISA IRQ, 0-15,
// as a PC's legacy devices signal.
func resIRQ(irq uint8) []byte {
	b := []byte{resIRQWithFlags}
	b = binary.LittleEndian.AppendUint16(b, 1<<irq)
	return append(b, irqEdge)
}

// resMemory32 is Memory32Fixed(ReadWrite or ReadOnly, base, length).
func resMemory32(base, length uint32, writable bool) []byte {
	var info byte
	if writable {
		info = mem32Write
	}
	b := []byte{resMemory32Fixed}
	b = binary.LittleEndian.AppendUint16(b, resMemory32FixedLen)
	b = append(b, info)
	b = binary.LittleEndian.AppendUint32(b, base)
	return binary.LittleEndian.AppendUint32(b, length)
}

// resTemplate is ResourceTemplate() { descriptors }: a Buffer holding them
// and an End Tag whose checksum byte is 0 ("treat as correct", as ASL
// compilers emit it).
func resTemplate(descriptors ...[]byte) []byte {
	var b []byte
	for _, d := range descriptors {
		b = append(b, d...)
	}
	return amlBuffer(append(b, resEndTag, 0))
}

// resBusNumbers is WordBusNumber(ResourceProducer, MinFixed, MaxFixed,
// PosDecode, 0, first, last, 0, last-first+1): the bus numbers a host
// bridge decodes.
func resBusNumbers(first, last uint8) []byte {
	b := []byte{resWordAddress}
	b = binary.LittleEndian.AppendUint16(b, resWordAddressLen)
	b = append(b, addrSpaceBus, addrWindowFixed, 0)
	for _, v := range []uint16{0, uint16(first), uint16(last), 0, uint16(last) - uint16(first) + 1} { // _GRA _MIN _MAX _TRA _LEN
		b = binary.LittleEndian.AppendUint16(b, v)
	}
	return b
}

// resMemoryWindow is DWordMemory(ResourceProducer, PosDecode, MinFixed,
// MaxFixed, NonCacheable, ReadWrite, 0, base, base+length-1, 0, length):
// a bridge's window of memory addresses its devices' BARs live in.
func resMemoryWindow(base, length uint32) []byte {
	b := []byte{resDWordAddress}
	b = binary.LittleEndian.AppendUint16(b, resDWordAddressLen)
	b = append(b, addrSpaceMemory, addrWindowFixed, addrMemReadWrite)
	for _, v := range []uint32{0, base, base + length - 1, 0, length} { // _GRA _MIN _MAX _TRA _LEN
		b = binary.LittleEndian.AppendUint32(b, v)
	}
	return b
}
