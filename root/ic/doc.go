// Package ic is the root partition's integration services: the host end of
// the shutdown, heartbeat and time-synchronisation ICs that Linux's
// hv_utils serves over VMBus channels offered with the classes in
// ShutdownOffer, HeartbeatOffer and TimeSyncOffer (wire format in
// ic/protocol). Each service is a Service above one small seam the VMBus
// side fills, Channel (send one in-band packet); the partition worker
// hands it the guest's packets through HandlePacket. It imports nothing of
// the hypervisor and, of VMBus, only vmbus/proto's GUIDs.
//
// # The protocol as implemented
//
// The host speaks first and the guest only answers, on every IC. Each
// request is one VMBus in-band packet (VM_PKT_DATA_INBAND, flags 0 — no
// completion requested, as OpenVMM sends them — and a trans_id
// of the service's own, counting up from 1) whose payload is an 8-byte
// pipe header {DATA, size}, the 20-byte icmsg_hdr with icflags
// TRANSACTION|REQUEST and ictransaction_id 0, and the body. Linux 6.1
// answers by sending the same bytes back (with the ring's padding) in-band
// with the request's trans_id, icflags TRANSACTION|RESPONSE and its status
// in the header; it echoes the pipe header. An answer must carry the
// outstanding request's trans_id, type and ictransaction_id and both
// TRANSACTION and RESPONSE; its pipe and IC sizes must fit the packet.
//
// Negotiation, first on every channel (Run): NEGOTIATE offers framework
// 3.0 and 1.0 and the service's versions, newest first, with header
// versions 0.0. Linux picks the first version of its own preference list
// that the host offered and answers counts 1/1 with the two versions
// (icmsgsize 0x10), or 0/0 when there is none. With Linux 6.1:
//
//	service    offered              Linux 6.1 picks
//	framework  3.0, 1.0             3.0
//	shutdown   3.2, 3.1, 3.0, 1.0   3.2
//	heartbeat  3.0, 1.0             3.0
//	timesync   4.0, 3.0, 1.0        4.0
//
// Later requests carry the negotiated versions in icverframe and icvermsg.
//
// Shutdown: RequestShutdown sends shutdown_msg_data (2060 bytes; a 2088-byte
// payload) with reason SHTDN_REASON_FLAG_PLANNED, timeout 0, flags 0 (shut
// down) or 2 (restart). Linux answers HV_S_OK and then runs
// orderly_poweroff or orderly_reboot; the guest's status is returned.
//
// Heartbeat: heartbeat_msg_data (40 bytes) with seq_num 1, 2, 3… at
// once and every period (2 s, Hyper-V's period per hv_util.c); Linux
// answers seq_num+1, which the service checks. Status reports the last
// answer and its time.
//
// Time sync: a SYNC at once after negotiation and on Sync, a SAMPLE every
// period (5 s, as OpenVMM). With version 4.0 the body is
// ictimesync_ref_data as OpenVMM sends it (24 bytes; Linux's packed struct,
// and its length check, are 22): parenttime, the host's UTC in 100 ns
// units since 1601-01-01, and vmreferencetime, the partition's reference
// time read with it (Clock); Linux adds the reference time that passed
// until it read the message and, on SYNC, sets its clock. Before 4.0 it is
// ictimesync_data (28 bytes, Linux's 25 packed), parenttime only.
//
// KVP, VSS and file copy are not served: Linux answers them — even their
// NEGOTIATE — only with a user-space daemon (hv_kvp_daemon…) running.
//
// # Invariants
//
// One request is outstanding per channel at a time, from its Send until
// its answer has been handled — also after the caller waiting for it gave
// up (ErrTimeout) — because hv_utils' shutdown callback reads one packet
// per interrupt and the host signals only when the ring turns non-empty: a
// second request queued behind an unread one would wait for an interrupt
// that never comes (research/linux-guest-hyperv-facts.md trap 12). A
// period whose previous request is unanswered sends nothing (a heartbeat
// miss, a skipped time sample); RequestShutdown and Sync wait, bounded by
// their context. Every payload is at most MaxPayloadSize bytes, so the
// packet fits hv_utils' 4 KiB receive buffer. No field of a guest packet
// sizes an allocation, and HandlePacket keeps nothing of a payload.
//
// # Failure
//
// Everything in a guest packet is guest-controlled. A packet that is not
// the answer to the outstanding request — short, sizes that lie, a pipe
// packet other than DATA, unsolicited, another trans_id, type or
// ictransaction_id, flags without TRANSACTION|RESPONSE, a NEGOTIATE answer
// with counts other than 1/1 or 0/0 or a version the host did not offer, a
// heartbeat answer that is not seq+1 — makes HandlePacket return an error
// wrapping ErrMalformed; a NEGOTIATE answer of 0/0 one wrapping
// ErrNoCommonVersion. Either closes the service: Run returns the same
// error, every later call returns ErrClosed, and the caller closes (or
// rescinds) the channel and logs the error. A failed Send does the same.
// An unanswered NEGOTIATE ends Run with ErrTimeout after
// Config.NegotiateTimeout (30 s by default); the caller closes the
// channel. A status other than HV_S_OK is not a protocol failure: shutdown
// returns it with ErrRefused, heartbeat and time sync log it.
//
// The services do not recover panics: a panic here is a gohv bug. The
// partition worker's goroutines that run Run and HandlePacket defer a
// recover, close the channel and end that partition with the panic
// reported (issue 12).
//
// # Concurrency
//
// Run is called once per channel open, on a goroutine of its own, with a
// context that ends when the channel closes; it then returns nil and the
// service is closed (waiting RequestShutdown and Sync calls return
// ErrClosed). HandlePacket is called from the goroutine that drains the
// guest→host ring, concurrently with Run; it never blocks and never waits
// for Send, so Channel.Send may block on ring space, and the guest's
// answer may arrive before Send returns. RequestShutdown, Sync, Status and
// Versions may be called from any goroutine. One service value serves one
// channel open; make a new one when the guest reopens the channel.
package ic
