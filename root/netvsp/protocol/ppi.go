package protocol

import (
	"encoding/binary"
	"fmt"
	"iter"
)

// PPIType is a per-packet-info record's type (enum ndis_per_pkt_info_type,
// or enum rndis_per_pkt_info_interal_type when the record is internal).
type PPIType uint32

// Per-packet-info types (netvsc-facts §9).
const (
	PPIChecksum             PPIType = 0  // TCPIP_CHKSUM_PKTINFO: u32 ndis_tcp_ip_checksum_info
	PPIIPSec                PPIType = 1  // IPSEC_PKTINFO
	PPILargeSend            PPIType = 2  // TCP_LARGESEND_PKTINFO: u32 ndis_tcp_lso_info
	PPIClassificationHandle PPIType = 3  // CLASSIFICATION_HANDLE_PKTINFO
	PPISGList               PPIType = 5  // SG_LIST_PKTINFO
	PPIIEEE8021Q            PPIType = 6  // IEEE_8021Q_INFO: u32 ndis_pkt_8021q_info
	PPIOriginal             PPIType = 7  // ORIGINAL_PKTINFO
	PPIHashValue            PPIType = 8  // NBL_HASH_VALUE: u32 hash
	PPIShortPacketPadInfo   PPIType = 11 // SHORT_PKT_PADINFO

	// PPIPacketInfoID is the internal RNDIS_PKTINFO_ID (struct
	// rndis_pktinfo_id) that marks RSC fragments.
	PPIPacketInfoID PPIType = 1
)

// Checksum-info bits (struct ndis_tcp_ip_checksum_info). The guest sets
// the transmit bits on its frames; the host sets the receive bits.
const (
	ChecksumTxIPv4     = 1 << 0
	ChecksumTxIPv6     = 1 << 1
	ChecksumTxTCP      = 1 << 2
	ChecksumTxUDP      = 1 << 3
	ChecksumTxIPHeader = 1 << 4
	// ChecksumTxTCPHeaderOffsetShift: bits 25:16 are the TCP header's
	// offset in the frame.
	ChecksumTxTCPHeaderOffsetShift = 16

	ChecksumRxTCPFailed    = 1 << 0
	ChecksumRxUDPFailed    = 1 << 1
	ChecksumRxIPFailed     = 1 << 2
	ChecksumRxTCPSucceeded = 1 << 3
	ChecksumRxUDPSucceeded = 1 << 4
	ChecksumRxIPSucceeded  = 1 << 5
	ChecksumRxLoopback     = 1 << 6
)

// VLANInfo is struct ndis_pkt_8021q_info's u32: priority in bits 2:0, CFI
// in bit 3, the VLAN id in bits 15:4.
func VLANInfo(id uint16, priority uint8) uint32 {
	return uint32(id&0xFFF)<<4 | uint32(priority&7)
}

// VLANID and VLANPriority decode a VLANInfo.
func VLANID(info uint32) uint16      { return uint16(info>>4) & 0xFFF }
func VLANPriority(info uint32) uint8 { return uint8(info & 7) }

// PerPacketInfo is one record of a PACKET_MSG's per-packet-info chain.
type PerPacketInfo struct {
	Type     PPIType
	Internal bool   // bit 31 of the type word: an RNDIS-internal type
	Data     []byte // the payload (ppi_offset up to size); aliases the chain
}

// AppendPPI appends a per-packet-info record as Linux's receive parser
// requires it: size = 12 + len(payload), ppi_offset = 12.
func AppendPPI(b []byte, t PPIType, internal bool, payload []byte) []byte {
	b, p := grow(b, PPIHeaderSize+len(payload))
	put32(p, offPPISize, uint32(len(p)))
	w := uint32(t)
	if internal {
		w |= ppiInternal
	}
	put32(p, offPPIType, w)
	put32(p, offPPIOffset, PPIHeaderSize)
	copy(p[PPIHeaderSize:], payload)
	return b
}

// AppendPPIUint32 appends a record whose payload is one u32 (checksum
// info, VLAN info, hash value, LSO info).
func AppendPPIUint32(b []byte, t PPIType, v uint32) []byte {
	var p [4]byte
	binary.LittleEndian.PutUint32(p[:], v)
	return AppendPPI(b, t, false, p[:])
}

// needsU32 reports whether a record's payload is a u32 (the types Linux
// reads and writes): such a record with less than 4 bytes of payload is
// malformed (Linux's rndis_get_ppi spins forever on one).
func needsU32(t PPIType, internal bool) bool {
	if internal {
		return t == PPIPacketInfoID
	}
	switch t {
	case PPIChecksum, PPILargeSend, PPIIEEE8021Q, PPIHashValue:
		return true
	}
	return false
}

// checkPPIChain checks every record of a chain: a whole header, a size
// that covers the header and stays inside the chain, a ppi_offset inside
// the record past its header, a payload of at least 4 bytes for the u32
// types. Every record has size ≥ 12, so the walk ends.
func checkPPIChain(chain []byte) error {
	for i, rest := 0, chain; len(rest) > 0; i++ {
		f := func(field, format string, a ...any) error {
			return &FieldError{"rndis PACKET_MSG", fmt.Sprintf("per_pkt_info[%d].%s", i, field), fmt.Sprintf(format, a...)}
		}
		if len(rest) < PPIHeaderSize {
			return f("size", "%d bytes left in per_pkt_info_len, a record header is %d", len(rest), PPIHeaderSize)
		}
		size := binary.LittleEndian.Uint32(rest[offPPISize:])
		w := binary.LittleEndian.Uint32(rest[offPPIType:])
		off := binary.LittleEndian.Uint32(rest[offPPIOffset:])
		switch {
		case size < PPIHeaderSize:
			return f("size", "%d is shorter than the %d-byte record header", size, PPIHeaderSize)
		case uint64(size) > uint64(len(rest)):
			return f("size", "%d but %d bytes are left in per_pkt_info_len", size, len(rest))
		case off < PPIHeaderSize:
			return f("ppi_offset", "%d points into the record header", off)
		case off > size:
			return f("ppi_offset", "%d is past the record's size %d", off, size)
		}
		t, internal := PPIType(w&^ppiInternal), w&ppiInternal != 0
		if needsU32(t, internal) && size-off < 4 {
			return f("size", "type %d carries a u32, the record has %d payload bytes", t, size-off)
		}
		rest = rest[size:]
	}
	return nil
}

// PPIs walks a chain that checkPPIChain accepted (a parsed PacketMsg's, or
// one built with AppendPPI); it stops at the first malformed record of any
// other.
func PPIs(chain []byte) iter.Seq[PerPacketInfo] {
	return func(yield func(PerPacketInfo) bool) {
		for len(chain) >= PPIHeaderSize {
			size := binary.LittleEndian.Uint32(chain[offPPISize:])
			w := binary.LittleEndian.Uint32(chain[offPPIType:])
			off := binary.LittleEndian.Uint32(chain[offPPIOffset:])
			if size < PPIHeaderSize || uint64(size) > uint64(len(chain)) || off < PPIHeaderSize || off > size {
				return
			}
			p := PerPacketInfo{Type: PPIType(w &^ ppiInternal), Internal: w&ppiInternal != 0, Data: chain[off:size:size]}
			if !yield(p) {
				return
			}
			chain = chain[size:]
		}
	}
}

// PerPacketInfo returns the payload of the packet's first non-internal
// record of type t.
func (m PacketMsg) PerPacketInfo(t PPIType) ([]byte, bool) {
	for p := range PPIs(m.PPI) {
		if p.Type == t && !p.Internal {
			return p.Data, true
		}
	}
	return nil, false
}

// PPIUint32 returns the u32 payload of the packet's first non-internal
// record of type t (PPIChecksum, PPIIEEE8021Q, PPIHashValue,
// PPILargeSend).
func (m PacketMsg) PPIUint32(t PPIType) (uint32, bool) {
	d, ok := m.PerPacketInfo(t)
	if !ok || len(d) < 4 {
		return 0, false
	}
	return binary.LittleEndian.Uint32(d), true
}
