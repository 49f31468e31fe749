package x86

// Segment attributes in the packed form the AMD state-save area uses and
// that gohv's vendor contract keeps: type 3:0, S 4, DPL 6:5, P 7, AVL 8,
// L 9, D/B 10, G 11 (APM Vol. 2 Table B-2). They are bits 40-47 and 52-55
// of a segment descriptor, closed up.
const (
	SegTypeMask = 0xf
	SegS        = 1 << 4 // code or data (not system)
	SegDPLShift = 5
	SegDPL      = 3 << SegDPLShift
	SegP        = 1 << 7
	SegAVL      = 1 << 8
	SegL        = 1 << 9  // 64-bit code
	SegDB       = 1 << 10 // default operand size / big
	SegG        = 1 << 11 // 4 KiB limit granularity
)

// Segment types (SDM Vol. 3A Tables 3-1 and 3-2).
const (
	SegTypeDataRW    = 0x2 // read/write data
	SegTypeDataRWA   = 0x3 // read/write data, accessed
	SegTypeCodeXR    = 0xa // execute/read code
	SegTypeCodeXRA   = 0xb // execute/read code, accessed
	SegTypeLDT       = 0x2 // system: LDT
	SegTypeTSSAvail  = 0x9 // system: 64-bit (or 32-bit) TSS, available
	SegTypeTSSBusy   = 0xb // system: 64-bit (or 32-bit) TSS, busy
	SegTypeTSS16Busy = 0x3 // system: 16-bit TSS, busy
	SegTypeIntGate   = 0xe // system: 64-bit interrupt gate (clears IF)
	SegTypeTrapGate  = 0xf // system: 64-bit trap gate
)

// Flat descriptors (base 0, limit 4 GiB, DPL 0) in encoded form, for code
// that must spell them as constants, such as a GDT built before any Go code
// runs. Each equals SegmentDescriptor(0, 0xfffff, attributes) with the
// attributes named in its comment.
const (
	DescriptorFlatCode64 = 0x00af_9a00_0000_ffff // SegTypeCodeXR|SegS|SegP|SegL|SegG
	DescriptorFlatData   = 0x00cf_9200_0000_ffff // SegTypeDataRW|SegS|SegP|SegDB|SegG
	DescriptorFlatCode32 = 0x00cf_9a00_0000_ffff // SegTypeCodeXR|SegS|SegP|SegDB|SegG
)

// SegmentDescriptor encodes an 8-byte code or data segment descriptor (SDM
// Vol. 3A 3.4.5) from a base, a 20-bit limit and packed attributes.
func SegmentDescriptor(base, limit uint32, attrib uint16) uint64 {
	return uint64(limit&0xffff) | uint64(base&0xff_ffff)<<16 |
		uint64(attrib&0xff)<<40 | uint64(limit>>16&0xf)<<48 |
		uint64(attrib>>8&0xf)<<52 | uint64(base>>24)<<56
}

// DescriptorAttrib returns the packed attributes of a descriptor.
func DescriptorAttrib(d uint64) uint16 {
	return uint16(d>>40&0xff) | uint16(d>>52&0xf)<<8
}

// DescriptorBase returns the 32-bit base of an 8-byte descriptor.
func DescriptorBase(d uint64) uint32 {
	return uint32(d>>16&0xff_ffff) | uint32(d>>56)<<24
}

// DescriptorLimit returns the 20-bit limit field of an 8-byte descriptor.
func DescriptorLimit(d uint64) uint32 {
	return uint32(d&0xffff) | uint32(d>>48&0xf)<<16
}

// SystemDescriptor64 encodes a 16-byte system descriptor (a 64-bit TSS or
// LDT, SDM Vol. 3A 8.2.3) with a 64-bit base.
func SystemDescriptor64(base uint64, limit uint32, attrib uint16) [2]uint64 {
	return [2]uint64{SegmentDescriptor(uint32(base), limit, attrib), base >> 32}
}

// SystemDescriptorBase returns the 64-bit base of a 16-byte system
// descriptor.
func SystemDescriptorBase(d [2]uint64) uint64 {
	return uint64(DescriptorBase(d[0])) | (d[1]&0xffff_ffff)<<32
}

// Segment selector fields (SDM Vol. 3A 3.4.2).
const (
	SelectorRPL        = 3
	SelectorTI         = 1 << 2
	SelectorIndex      = ^uint16(7)
	SelectorIndexShift = 3 // a descriptor's table index, shifted, is its selector
)

// GateDescriptor64 encodes a 16-byte IDT gate (SDM Vol. 3A 6.14.1, Figure
// 6-8): the handler's 64-bit offset, its code-segment selector, an IST index
// (0 for none, 1-7) and packed attributes (SegTypeIntGate or SegTypeTrapGate,
// SegDPL, SegP).
func GateDescriptor64(offset uint64, sel uint16, ist uint8, attrib uint16) [2]uint64 {
	return [2]uint64{
		offset&0xffff | uint64(sel)<<16 | uint64(ist&7)<<32 |
			uint64(attrib&0xff)<<40 | (offset>>16&0xffff)<<48,
		offset >> 32,
	}
}

// PseudoDescriptor encodes the operand of LGDT and LIDT (SDM Vol. 3A 3.5.1,
// Figure 3-11): a 16-bit limit (the table's size in bytes minus one) and a
// 64-bit base, little-endian.
func PseudoDescriptor(base uint64, limit uint16) [10]byte {
	var d [10]byte
	d[0], d[1] = byte(limit), byte(limit>>8)
	for i := 0; i < 8; i++ {
		d[2+i] = byte(base >> (8 * i))
	}
	return d
}

// Byte offsets in the 64-bit task-state segment (SDM Vol. 3A 8.7, Figure
// 8-11). ISTn is at TSS64IST1 + 8*(n-1); the I/O map base is a 16-bit
// offset from the TSS base, and one at or past the limit means no I/O
// permission bitmap.
const (
	TSS64RSP0      = 0x04
	TSS64IST1      = 0x24
	TSS64IOMapBase = 0x66
	TSS64Size      = 0x68
)
