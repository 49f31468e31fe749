// Package netvsp is the root partition's network Virtualization Service
// Provider: the host end of a synthetic NIC, the NVSP and RNDIS protocol
// (wire format in netvsp/protocol) that Linux's hv_netvsc speaks over a
// VMBus channel offered with the network interface GUID
// {f8615163-df3e-46c5-913f-f2d2f965ed0e}. It carries Ethernet frames
// between the guest and a Port (the NIC's port on the root's virtual
// switch), above small seams the partition worker fills: Channel (send a
// completion or a transfer-page packet, borrow the guest's buffer
// GPADLs), GuestMemory (a packet's GPA ranges) and Port. It imports
// nothing of the hypervisor, the VMBus server or the switch.
//
// # The protocol as implemented (netvsc-facts.md, Linux 6.1, OpenVMM)
//
//  1. INIT: versions 6.1, 6, 5, 4 and 2 (Versions) are accepted, 1 and
//     anything else refused with a status; every INIT is completed.
//  2. SEND_NDIS_CONFIG (its mtu sizes the receive sections) and
//     SEND_NDIS_VER: no reply.
//  3. SEND_RECV_BUF: the GPADL is borrowed from the channel and carved
//     into one section of equal sub-allocations of 256 + frame + 36 bytes
//     (the frame: the guest's mtu, at least 1514, plus an 802.1Q tag);
//     the first 16 carry only RNDIS control replies, so frames never
//     starve a guest that waits for one. SEND_SEND_BUF: sections of 6144
//     bytes. Either out of order, twice, or over a GPADL the channel
//     cannot lend, gets a failure status.
//  4. RNDIS (in SEND_RNDIS_PKT, whose bytes are the send section it names
//     followed by its GPA ranges; several messages back to back are
//     handled in turn): INITIALIZE → connectionless 802.3, up to 8
//     packets per message aligned to 8 bytes; QUERY answers
//     MAXIMUM_FRAME_SIZE (Config.MTU), PERMANENT and CURRENT_ADDRESS
//     (Config.MAC), MEDIA_CONNECT_STATUS (connected), LINK_SPEED and
//     TCP_OFFLOAD_HARDWARE_CAPABILITIES (revision 1, nothing offloaded:
//     the guest checksums and segments its own frames), and refuses the
//     rest with NOT_SUPPORTED and no buffer — RECEIVE_SCALE_CAPABILITIES
//     among them, so Linux asks for no sub-channels and runs on the
//     primary channel; SET takes CURRENT_PACKET_FILTER,
//     TCP_OFFLOAD_PARAMETERS and OFFLOAD_ENCAPSULATION and refuses the
//     rest (RNDIS_CONFIG_PARAMETER's "NetworkAddress" included: the
//     guest cannot change its MAC); HALT stops reception, no reply.
//     Replies go to the guest as frames do.
//  5. Frames: a PACKET_MSG's data goes to the Port (a VLAN tag asked for
//     by per-packet info is refused: the switch has no VLANs). A frame
//     for the guest that its packet filter accepts is written, after a
//     44-byte PACKET_MSG header and no per-packet info, into a free data
//     section, announced by a transfer-page packet of set 0xCAFE whose
//     transaction ID is the section's index; the guest's completion of
//     it frees the section. Nothing is received before RNDIS INITIALIZE
//     and a non-zero filter.
//  6. REVOKE_RECV_BUF and REVOKE_SEND_BUF give the GPADLs back; closing
//     the channel gives back whatever is still borrowed.
//
// Link-state indications are not sent: a NIC is connected to its switch
// for as long as its partition runs.
//
// # Failure
//
// Everything in a packet, in the send buffer and in a GPA range is
// guest-controlled. A packet that cannot be NVSP (unknown type, too
// short, a host's message, a data packet of the wrong VMBus type) makes
// Packet return an error wrapping ErrMalformed, and the caller closes the
// channel. A SEND_RNDIS_PKT whose section lies outside the send buffer,
// whose ranges leave the partition's RAM or exceed 6144 + 32 pages, or
// whose RNDIS bytes do not parse, costs the guest that packet: it is
// completed with INVALID_RNDIS_PKT and counted (Stats.TxMalformed). A
// completion naming no section in flight is counted and ignored. A frame
// for the guest without a free section, or refused by its filter, is
// dropped and counted; a guest that stops completing loses its own
// frames, never blocks the switch.
//
// # Concurrency
//
// Packet runs on the channel's goroutine, Deliver on the switch port's,
// Close on the VMBus server's after the channel's goroutine ended. The
// receive side (buffer, free sections, filter) is guarded by one mutex
// held only to pick a section and copy into it, never while sending.
// Deliver and a completion allocate nothing.
package netvsp
