package proto

import (
	"errors"
	"fmt"
)

// PacketType is a ring packet's type, the descriptor's first field
// (Linux enum vmbus_packet_type, VM_PKT_*).
type PacketType uint16

// Packet types (linux-guest-hyperv-facts.md §5.3). ParsePacket decodes the
// four the VSPs use: in-band, transfer pages, GPA direct and completion.
const (
	PktInvalid                PacketType = 0x0
	PktSynch                  PacketType = 0x1
	PktAddXferPageset         PacketType = 0x2
	PktRmXferPageset          PacketType = 0x3
	PktEstablishGPADL         PacketType = 0x4
	PktTeardownGPADL          PacketType = 0x5
	PktDataInband             PacketType = 0x6
	PktDataUsingXferPages     PacketType = 0x7
	PktDataUsingGPADL         PacketType = 0x8
	PktDataUsingGPADirect     PacketType = 0x9
	PktCancelRequest          PacketType = 0xa
	PktComp                   PacketType = 0xb
	PktDataUsingAdditionalPkt PacketType = 0xc
	PktAdditionalData         PacketType = 0xd
)

func (t PacketType) String() string {
	switch t {
	case PktDataInband:
		return "DataInband"
	case PktDataUsingXferPages:
		return "DataUsingXferPages"
	case PktDataUsingGPADirect:
		return "DataUsingGPADirect"
	case PktComp:
		return "Comp"
	}
	return fmt.Sprintf("PacketType(%#x)", uint16(t))
}

// Packet layout (linux-guest-hyperv-facts.md §5.3; netvsc-facts.md §2).
const (
	// DescriptorSize is VMPACKET_DESCRIPTOR: 0 u16 type, 2 u16 offset8
	// (where the payload starts, in 8-byte units from the descriptor), 4
	// u16 len8 (the packet's length in 8-byte units, descriptor through
	// padding), 6 u16 flags, 8 u64 trans_id.
	DescriptorSize = 16
	// TrailerSize is the u64 a ring writer puts after each packet: the
	// packet's start offset in the ring in bits 63:32 (ignored by
	// readers).
	TrailerSize = 8
	// GPADirectHeaderSize is a GPA-direct packet's descriptor and
	// extension: 16 u32 reserved, 20 u32 rangecount, then the range array
	// from 24.
	GPADirectHeaderSize = 24
	// TransferPageHeaderSize is a transfer-page packet's descriptor and
	// extension: 16 u16 xfer_pageset_id, 18 u8 sender_owns_set, 19
	// reserved, 20 u32 range_cnt, then range_cnt × {u32 byte_count, u32
	// byte_offset} from 24.
	TransferPageHeaderSize = 24
	TransferPageRangeSize  = 8
	// MaxPacketSize is the longest packet len8 can describe.
	MaxPacketSize = 0xffff * 8
)

// PacketFlagCompletionRequested (VMBUS_DATA_PACKET_FLAG_COMPLETION_REQUESTED)
// asks the receiver for a PktComp echoing the transaction ID. It is the
// only flag; ParsePacket refuses others.
const PacketFlagCompletionRequested = 1

// ErrPacket is wrapped by every error ParsePacket and the header builders
// return.
var ErrPacket = errors.New("vmbus/proto: bad packet")

// PacketDescriptor is VMPACKET_DESCRIPTOR.
type PacketDescriptor struct {
	Type          PacketType
	DataOffset8   uint16
	Length8       uint16
	Flags         uint16
	TransactionID uint64
}

// ParseDescriptor reads the descriptor at the start of b, unchecked beyond
// its length.
func ParseDescriptor(b []byte) (PacketDescriptor, error) {
	if len(b) < DescriptorSize {
		return PacketDescriptor{}, fmt.Errorf("%w: %d bytes, shorter than a descriptor", ErrPacket, len(b))
	}
	return PacketDescriptor{
		Type:          PacketType(le.Uint16(b)),
		DataOffset8:   le.Uint16(b[2:]),
		Length8:       le.Uint16(b[4:]),
		Flags:         le.Uint16(b[6:]),
		TransactionID: le.Uint64(b[8:]),
	}, nil
}

// Append appends the descriptor's 16 bytes.
func (d PacketDescriptor) Append(b []byte) []byte {
	b = u16(u16(b, uint16(d.Type)), d.DataOffset8)
	b = u16(u16(b, d.Length8), d.Flags)
	return u64(b, d.TransactionID)
}

// TransferPageRange is one range of a transfer-page packet: ByteCount
// bytes at ByteOffset in the transfer page set (netvsc's receive buffer).
type TransferPageRange struct {
	ByteCount  uint32
	ByteOffset uint32
}

// TransferPageRanges are a transfer-page packet's ranges, a view of the
// packet.
type TransferPageRanges struct{ b []byte }

// Len is the number of ranges.
func (l TransferPageRanges) Len() int { return len(l.b) / TransferPageRangeSize }

// At is range i, 0 <= i < Len(). The values are the sender's: check them
// against the transfer page set.
func (l TransferPageRanges) At(i int) TransferPageRange {
	r := l.b[TransferPageRangeSize*i:]
	return TransferPageRange{ByteCount: le.Uint32(r), ByteOffset: le.Uint32(r[4:])}
}

// Packet is a decoded ring packet. Its slices are views of the bytes it
// was parsed from.
type Packet struct {
	Type          PacketType
	Flags         uint16
	TransactionID uint64
	// Payload runs from the descriptor's data offset to the end of the
	// packet, padding included: VMBus carries no finer length, the
	// protocol inside says how much of it counts.
	Payload []byte
	// Ranges are a PktDataUsingGPADirect packet's GPA ranges.
	Ranges GPARanges
	// TransferPageSetID, SenderOwnsSet and TransferPages are a
	// PktDataUsingXferPages packet's extension.
	TransferPageSetID uint16
	SenderOwnsSet     bool
	TransferPages     TransferPageRanges
}

// CompletionRequested reports whether the sender asked for a PktComp.
func (p *Packet) CompletionRequested() bool { return p.Flags&PacketFlagCompletionRequested != 0 }

// ParsePacket decodes one packet as a ring reader returns it: the
// descriptor through the padding (len8 × 8 bytes, no trailer).
// Guest-controlled: len8 must be len(b), the data offset must lie between
// the end of the descriptor (and extension) and the end of the packet,
// flags other than PacketFlagCompletionRequested and types other than
// PktDataInband, PktDataUsingXferPages, PktDataUsingGPADirect and PktComp
// are refused, and every range must lie inside the extension. It does not
// allocate.
func ParsePacket(b []byte) (Packet, error) {
	d, err := ParseDescriptor(b)
	if err != nil {
		return Packet{}, err
	}
	if int(d.Length8)*8 != len(b) {
		return Packet{}, fmt.Errorf("%w: len8 %d for a packet of %d bytes", ErrPacket, d.Length8, len(b))
	}
	off := int(d.DataOffset8) * 8
	if off < DescriptorSize || off > len(b) {
		return Packet{}, fmt.Errorf("%w: data offset %d in a packet of %d bytes", ErrPacket, off, len(b))
	}
	if d.Flags&^PacketFlagCompletionRequested != 0 {
		return Packet{}, fmt.Errorf("%w: flags %#x", ErrPacket, d.Flags)
	}
	p := Packet{Type: d.Type, Flags: d.Flags, TransactionID: d.TransactionID, Payload: b[off:len(b):len(b)]}
	switch d.Type {
	case PktDataInband, PktComp:
	case PktDataUsingGPADirect:
		if off < GPADirectHeaderSize {
			return Packet{}, fmt.Errorf("%w: GPA-direct data offset %d inside its extension", ErrPacket, off)
		}
		count := le.Uint32(b[20:])
		if count == 0 {
			return Packet{}, fmt.Errorf("%w: GPA-direct packet without ranges", ErrPacket)
		}
		p.Ranges, err = ParseGPARanges(b[GPADirectHeaderSize:off], int(count))
		if err != nil {
			return Packet{}, fmt.Errorf("%w: %w", ErrPacket, err)
		}
	case PktDataUsingXferPages:
		if off < TransferPageHeaderSize {
			return Packet{}, fmt.Errorf("%w: transfer-page data offset %d inside its extension", ErrPacket, off)
		}
		count := uint64(le.Uint32(b[20:]))
		if TransferPageHeaderSize+TransferPageRangeSize*count > uint64(off) {
			return Packet{}, fmt.Errorf("%w: %d transfer-page ranges before data offset %d", ErrPacket, count, off)
		}
		p.TransferPageSetID = le.Uint16(b[16:])
		p.SenderOwnsSet = b[18] != 0
		end := TransferPageHeaderSize + TransferPageRangeSize*int(count)
		p.TransferPages = TransferPageRanges{b[TransferPageHeaderSize:end:end]}
	default:
		return Packet{}, fmt.Errorf("%w: type %v", ErrPacket, d.Type)
	}
	return p, nil
}

// descriptor builds the descriptor of a packet whose descriptor and
// extension take hdrLen bytes (a multiple of 8) and whose payload
// payloadLen.
func descriptor(t PacketType, flags uint16, tid uint64, hdrLen, payloadLen int) (PacketDescriptor, error) {
	if flags&^PacketFlagCompletionRequested != 0 {
		return PacketDescriptor{}, fmt.Errorf("%w: flags %#x", ErrPacket, flags)
	}
	if payloadLen < 0 || payloadLen > MaxPacketSize-hdrLen {
		return PacketDescriptor{}, fmt.Errorf("%w: %d-byte payload after a %d-byte header, above %d", ErrPacket, payloadLen, hdrLen, MaxPacketSize)
	}
	return PacketDescriptor{
		Type:          t,
		DataOffset8:   uint16(hdrLen / 8),
		Length8:       uint16((hdrLen + payloadLen + 7) / 8),
		Flags:         flags,
		TransactionID: tid,
	}, nil
}

// AppendInbandHeader appends the descriptor of a PktDataInband packet
// carrying payloadLen bytes. flags is 0 or PacketFlagCompletionRequested.
func AppendInbandHeader(b []byte, flags uint16, tid uint64, payloadLen int) ([]byte, error) {
	d, err := descriptor(PktDataInband, flags, tid, DescriptorSize, payloadLen)
	if err != nil {
		return b, err
	}
	return d.Append(b), nil
}

// AppendCompletionHeader appends the descriptor of a PktComp packet
// carrying payloadLen bytes, completing transaction tid.
func AppendCompletionHeader(b []byte, tid uint64, payloadLen int) ([]byte, error) {
	d, err := descriptor(PktComp, 0, tid, DescriptorSize, payloadLen)
	if err != nil {
		return b, err
	}
	return d.Append(b), nil
}

// AppendGPADirectHeader appends the descriptor and extension of a
// PktDataUsingGPADirect packet naming ranges and carrying payloadLen
// bytes.
func AppendGPADirectHeader(b []byte, flags uint16, tid uint64, ranges GPARanges, payloadLen int) ([]byte, error) {
	if ranges.Len() == 0 {
		return b, fmt.Errorf("%w: GPA-direct packet without ranges", ErrPacket)
	}
	hdr := GPADirectHeaderSize + len(ranges.b)
	if hdr > MaxPacketSize {
		return b, fmt.Errorf("%w: %d bytes of ranges", ErrPacket, len(ranges.b))
	}
	d, err := descriptor(PktDataUsingGPADirect, flags, tid, hdr, payloadLen)
	if err != nil {
		return b, err
	}
	b = u32(u32(d.Append(b), 0), uint32(ranges.Len()))
	return append(b, ranges.b...), nil
}

// AppendTransferPagesHeader appends the descriptor and extension of a
// PktDataUsingXferPages packet naming ranges of transfer page set setID and
// carrying payloadLen bytes.
func AppendTransferPagesHeader(b []byte, flags uint16, tid uint64, setID uint16, senderOwnsSet bool, ranges []TransferPageRange, payloadLen int) ([]byte, error) {
	hdr := TransferPageHeaderSize + TransferPageRangeSize*len(ranges)
	if len(ranges) > MaxPacketSize/TransferPageRangeSize || hdr > MaxPacketSize {
		return b, fmt.Errorf("%w: %d transfer-page ranges", ErrPacket, len(ranges))
	}
	d, err := descriptor(PktDataUsingXferPages, flags, tid, hdr, payloadLen)
	if err != nil {
		return b, err
	}
	b = u16(d.Append(b), setID)
	b = append(b, bit(senderOwnsSet), 0)
	b = u32(b, uint32(len(ranges)))
	for _, r := range ranges {
		b = u32(u32(b, r.ByteCount), r.ByteOffset)
	}
	return b, nil
}
