// Package storvsp is the root partition's storage Virtualization Service
// Provider: the host end of the VSTOR protocol (wire format in
// storvsp/protocol) that Linux's hv_storvsc speaks over a VMBus channel
// offered with the SCSI interface GUID {ba6163d9-04a1-4d29-b605-72e2ffb1dc7f}.
// It routes each SCSI request block to the logical unit (storvsp/scsi) at
// its path/target/LUN and answers with a completion, above two small
// seams the VMBus side fills: Channel (send a completion) and GuestBuffers
// (a request's data in guest memory, built by NewGPADirect over a
// GuestMemory that refuses anything outside the partition's RAM). It
// imports nothing of the hypervisor and nothing of VMBus.
//
// # The protocol as implemented
//
// Initialisation, in the order Linux 6.1's storvsc_channel_init sends it
// (every request in-band with trans_id 0xFFFFFFFFFFFFFFFD, each answered
// by a COMPLETE_IO completion echoing it):
//
//  1. BEGIN_INITIALIZATION → success (from any state before ready: a
//     guest may start over).
//  2. QUERY_PROTOCOL_VERSION: Linux offers 6.2, 6.0, 5.1 and stops at the
//     first success. 6.0 and 5.1 (Versions) succeed, echoing the version;
//     every other version, 6.2 included, gets STATUS_REVISION_MISMATCH
//     with the version echoed, and the VSP keeps waiting for another. So
//     Linux settles on 6.0, as with Hyper-V and OpenVMM: with 6.2 it would
//     lift storvsc's WRITE SAME block for vendor "Msft", and gohv serves
//     no WRITE SAME.
//  3. QUERY_PROPERTIES → success, max_transfer_bytes Config.MaxTransferBytes
//     (256 KiB by default), flags 0, max_channel_cnt 0.
//  4. END_INITIALIZATION → success; the VSP is ready.
//
// A packet of the right kind in the wrong state gets
// STATUS_INVALID_DEVICE_STATE and changes nothing (an EXECUTE_SRB also
// gets SRB status ERROR). RESET_LUN, RESET_ADAPTER and RESET_BUS succeed
// once the SRBs in flight have completed.
//
// Sub-channels are declined: QUERY_PROPERTIES does not set
// STORAGE_CHANNEL_SUPPORTS_MULTI_CHANNEL, so Linux (which asks only when
// that flag is set and max_channel_cnt > 0) never sends
// CREATE_SUB_CHANNELS and runs all I/O on the primary channel; its queue
// depth is still sized from its CPU count. A CREATE_SUB_CHANNELS that comes
// anyway, and FCHBA_DATA (this is not a Fibre Channel HBA), get
// STATUS_INVALID_DEVICE_REQUEST.
//
// EXECUTE_SRB, once ready: REPORT LUNS is the target's and is answered
// for any LUN with the configured LUNs of that path/target; a configured
// address runs its LogicalUnit; any other is absent (scsi.NotPresent: a
// standard INQUIRY gets a real 36-byte answer whose byte 0 is 0x7F, since
// storvsc forces INQUIRY and MODE SENSE(6) completions to success — trap 8;
// other commands get LOGICAL UNIT NOT SUPPORTED). The completion's SRB:
//
//	outcome                            srb_status  scsi_status       status (NTSTATUS)
//	GOOD                               0x01        0x00              SUCCESS; data_transfer_length = bytes moved
//	CHECK CONDITION, ILLEGAL REQUEST   0x86        0x02 + 18 B sense IO_DEVICE_ERROR
//	(also: longer than max_transfer_bytes, a page outside RAM: 05/24/00)
//	CHECK CONDITION, other sense keys  0x84        0x02 + 18 B sense IO_DEVICE_ERROR
//	absent LUN (not INQUIRY/REQUEST    0xA0        0x02 + 05/25/00   DEVICE_DOES_NOT_EXIST (Linux: DID_NO_CONNECT,
//	SENSE/REPORT LUNS)                                               LUN removed)
//
// On CHECK CONDITION the sense is fixed-format, sense_info_length = 18
// (cut to the guest's sense_info_length, AUTOSENSE_VALID only when
// something is left), data_transfer_length 0. Path, target, LUN, port,
// cdb_length and data_in are echoed; length is 0x34. Every completion is
// a full 64-byte vstor_packet (trap 7).
//
// # Invariants
//
// Every call of HandlePacket that returns nil has sent exactly one
// completion, with the packet's transaction ID; one that returns an error
// has sent none (unless sending was what failed). A request's data is
// reached only through its GuestBuffers, cut to its data_transfer_length,
// and NewGPADirect derives the page count from byte_offset + byte_count,
// never from the PFN array (trap 9). No field of a guest packet sizes an
// allocation.
//
// An EXECUTE_SRB is refused before any logical unit sees it, so it
// changes neither the disk nor the guest's memory, when its
// data_transfer_length or its GPA range's byte_count exceeds
// Config.MaxTransferBytes (what QUERY_PROPERTIES advertised; nothing of
// the range is read), or when any page under its data_transfer_length is
// not the partition's RAM (GuestBuffers.Check probes every page first): a
// WRITE never lands in part because a later page was bad.
//
// # Failure
//
// Everything in a Packet is guest-controlled. A packet the VSP cannot
// answer — shorter than its operation needs, an operation only a host
// sends (COMPLETE_IO, REMOVE_DEVICE, ENUMERATE_BUS, EVENT_NOTIFICATION) or
// unknown, an SRB with cdb_length above 16 or a data_transfer_length
// beyond its buffer or without one — makes HandlePacket return an error
// wrapping ErrMalformed without answering; a failed Send returns its
// error. Either way the caller closes (or resets) the channel and logs the
// error; the VSP answers every later call with ErrClosed. A guest's SCSI
// mistakes (a transfer beyond max_transfer_bytes among them), a disk's
// failure and guest pages outside its RAM are not errors: they are CHECK
// CONDITION completions (the last two also logged).
//
// The VSP does not recover panics: a panic here is a gohv bug. The caller
// that runs HandlePacket — the partition worker's goroutine that drains
// the storage channel's ring — defers a recover around it, closes the
// channel and ends that partition with the panic reported, so neither the
// root nor another partition goes down (issue 12).
//
// # Concurrency
//
// HandlePacket may be called from several goroutines at once: the
// initialisation packets are answered one at a time under a lock (Linux
// sends each only after the previous one's completion), EXECUTE_SRBs run
// in parallel, and a reset waits for those in flight. Channel.Send must
// then be safe for concurrent use, and completions leave in completion
// order, as VMBus allows. One VSP serves one channel open; logical units
// may be shared.
package storvsp
