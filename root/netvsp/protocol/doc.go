// Package protocol is the network VSP's wire format: NVSP, the messages a
// network Virtualization Service Client (Linux's hv_netvsc, Windows'
// netvsc) and the root's network VSP exchange over a VMBus channel, and
// RNDIS, the Remote NDIS messages that travel inside NVSP's
// SEND_RNDIS_PKT (control requests and their completions, status
// indications, and the Ethernet frames themselves with their per-packet
// information). The VSP itself is root/netvsp; this package is its
// definitions and codecs only, usable by a guest-side client too.
//
// Names follow Linux 6.1's drivers/net/hyperv/hyperv_net.h and
// include/linux/rndis.h, and the RNDIS and NDIS specifications' names for
// what those headers abbreviate (NVSP_MSG1_TYPE_SEND_RECV_BUF →
// TypeSendRecvBuf, REMOTE_NDIS_QUERY_MSG → RNDISQueryMsg,
// OID_GEN_MAXIMUM_FRAME_SIZE → OIDGenMaximumFrameSize). Every number, size
// and offset is pinned by a test against the fact sheet
// research/netvsc-facts.md, which cites Linux 6.1 and OpenVMM's
// vm/devices/net/netvsp for each; multi-byte fields are little-endian and
// the structures packed, as on the wire.
//
// # NVSP
//
// An NVSP message is a u32 type and a union; Linux sends and expects the
// whole 40-byte struct nvsp_message (MessageSize), and checks the host's
// completions against lengths of 16 and 28 bytes, so every Append here
// writes 40 bytes (SEND_INDIRECTION_TABLE adds its table after them).
// ParseFromGuest decodes what a guest sends the host, ParseFromHost what a
// host sends the guest (SUBCHANNEL's number means a request one way and a
// completion the other); each checks that the payload holds every field
// its type has.
//
// # RNDIS
//
// An RNDIS message is an 8-byte header (type, msg_len) and a body whose
// variable parts (a QUERY's or SET's information buffer, an indication's
// status buffer, a PACKET_MSG's frame and per-packet-info chain) are
// located by offsets and lengths that the sender chose. ParseRNDIS checks
// msg_len against the bytes it was given and every offset and length
// against msg_len, and walks a packet's per-packet-info chain record by
// record, so a parsed message's slices always lie inside its msg_len. A
// SEND_RNDIS_PKT may carry several messages back to back: ParseRNDIS
// returns how many bytes the first one took.
//
// # Failure
//
// Everything the parsers read is guest-controlled. They never panic on any
// input (FuzzParse); a message that is too short, or whose offsets or
// lengths point outside it, is a *FieldError naming the message and the
// field, wrapping ErrMalformed; a type the parser does not know wraps
// ErrUnknownType. Field values are returned as sent: whether a version, an
// OID or a section index is acceptable is the VSP's decision.
//
// # Concurrency
//
// None needed: every function works on values its caller owns. Parsed
// slices (a frame, an information buffer) alias the input.
package protocol
