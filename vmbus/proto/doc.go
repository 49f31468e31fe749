// Package proto holds the VMBus wire protocol both ends speak: the
// channel-management messages that travel in SynIC messages (offers,
// GPADLs, open and close, version negotiation, unload), the protocol
// versions, Hyper-V's mixed-endian GUIDs and the device classes gohv
// offers, and the packet formats that travel in a channel's ring buffers
// (the VMPACKET_DESCRIPTOR, in-band, GPA-direct, transfer-page and
// completion packets). It holds definitions and codecs only: no state, no
// I/O. It imports the standard library, github.com/google/uuid and
// hv/tlfs, so a guest-side client can use it without the hypervisor.
//
// Names are Linux's (include/linux/hyperv.h: CHANNELMSG_OFFERCHANNEL →
// ChannelMsgOfferChannel, VM_PKT_DATA_INBAND → PktDataInband,
// VERSION_WIN10_V5_3 → VersionWin10V5_3) so a reader can look them up,
// and every size and offset is pinned by a test against the layouts the
// project's research sheet took from Linux 6.1 and OpenVMM
// (linux-guest-hyperv-facts.md §4.2 and §5.3).
//
// # Messages
//
// A channel-management message is the payload of a SynIC message (type
// SynICMessageType, at most 240 bytes): an 8-byte header (u32 type, u32
// padding) and the type's fields. Each type is a Go struct implementing
// Message; Marshal encodes one, ParseChannelMessage decodes any, returning
// the struct by value (switch on its type).
//
// # Packets
//
// A ring packet is a 16-byte descriptor (type, data offset and length in
// 8-byte units, flags, transaction ID), for GPA-direct and transfer-page
// packets an extension with the page ranges, then the payload, padded to 8
// bytes. The ring (package vmbus/ring) frames packets and adds the 8-byte
// trailer; ParsePacket decodes what the ring returns, and the Append…Header
// functions build the descriptor and extension a sender hands to it.
//
// # Invariants
//
//   - Marshal never produces more than 240 bytes; a message whose variable
//     part does not fit is an error.
//   - For every payload ParseChannelMessage accepts, Marshal of the result
//     succeeds and parses back to the same value (fields that are reserved
//     come back zero): FuzzParseChannelMessage checks this.
//   - A Packet's Payload, ranges and PFNs lie inside the bytes it was
//     parsed from; every range was checked when the packet was parsed, so
//     the accessors do not fail.
//
// # Failure
//
// Everything a peer sends is hostile input. Parsers return (T, error) and
// never panic: a message shorter than the minimum Linux 6.1 enforces for
// its type (MinPayloadSize), longer than 240 bytes, of an unknown type, or
// a packet whose lengths, offsets or ranges do not fit inside it, is an
// error wrapping ErrMessage or ErrPacket. The caller decides what the
// error costs the peer (a dropped message, a closed channel).
//
// # Concurrency
//
// Values are plain data. Parsers read their input once; a caller whose
// input is shared with a guest (a GPADL-mapped ring, a hypercall input
// page) must copy it first, or a guest can change it between the checks
// and the use. ParseChannelMessage copies what it keeps; ParsePacket
// returns views into its input (no allocation on the data path), so parse
// a private copy such as the one ring.Receiver.Read returns.
package proto
