// Package storvsc is the guest end of the VSTOR protocol: a storage
// Virtualization Service Client that opens a synthetic SCSI controller's
// VMBus channel with vmbus/client and sends it SCSI commands, as Linux
// 6.1's hv_storvsc does (linux-guest-hyperv-facts.md §5–§6; Linux
// drivers/scsi/storvsc_drv.c is the driver whose packets it reproduces).
// It serves two users: the host tests, which drive the real VMBus server
// and storage VSP with it (through vmbus/vmbustest's loopback, and through
// a partition's root/worker), and Go programs running as child
// partitions, which get their disks through it.
//
// It imports vmbus/client (and the vmbus/proto it speaks) and the wire
// format in root/storvsp/protocol, nothing else of gohv: not the VSP, not
// the SCSI logical unit, not the server (tools/layers keeps it so). It
// sits under root/storvsp beside the wire format it shares with the VSP.
//
// # The protocol as spoken
//
//   - Open: the channel with two rings of RingPages (128 KiB each way,
//     control page included) and 24 zero bytes of user data (an empty
//     vmstorage_channel_properties). Then Linux's storvsc_channel_init,
//     every request in-band with completion requested, vstor flags
//     REQUEST_COMPLETION and trans_id TransactionInit, each waiting at
//     most Config.StepTimeout (5 s, as Linux): BEGIN_INITIALIZATION;
//     QUERY_PROTOCOL_VERSION with 6.2, 6.0, 5.1 in turn until one succeeds
//     (a refusal is a COMPLETE_IO with a failure status; none accepted is
//     ErrNoVersion); QUERY_PROPERTIES, whose max_transfer_bytes must be at
//     least a page; END_INITIALIZATION. Every vstor_packet sent is the
//     64-byte form of protocol 5.1 and later. Sub-channels are never
//     asked for (vmbus/client opens none), whatever the properties say.
//   - EXECUTE_SRB: vmscsi_request as storvsc_queuecommand fills it —
//     length 0x34, sense_info_length 0x14, data_in WRITE/READ/UNKNOWN,
//     data_transfer_length the buffer's length, the CDB, time_out_value
//     60, queue_tag 0xFF and queue_action 0x20 (tagged), srb_flags
//     DISABLE_SYNCH_TRANSFER | QUEUE_ACTION_ENABLE | NO_QUEUE_FREEZE and
//     DATA_IN or DATA_OUT. Without data it goes in-band; with data as a
//     GPA-direct packet of one range naming the buffer's own frames, laid
//     out as Linux lays it out: up to 32 pages in a fixed 32-slot array
//     (a 288-byte descriptor region), the slots past the range holding
//     StalePFN where Linux leaves stale frames (trap 9: the host must
//     count pages from byte_offset and byte_count), more than 32 pages in
//     exactly as many slots. Transaction IDs are small numbers from 1,
//     reused once completed (Linux's blk-mq tag + 1).
//   - RESET_BUS with TransactionReset (ResetBus), as Linux's host reset.
//   - Completions are matched by transaction ID. The host's packet must
//     be what Linux reads right: a completion packet (type 0xB) of exactly
//     80 bytes, a 64-byte vstor_packet after the descriptor (trap 7), with
//     operation COMPLETE_IO and, for an SRB, no more data_transfer_length
//     than was sent. One that is not fails its request with
//     ErrBadCompletion (Linux would drop it or lose its ring) and the
//     channel goes on; one that matches no request is dropped. A packet
//     with trans_id 0 is the host's own: ENUMERATE_BUS and REMOVE_DEVICE
//     call Config.OnRescan, anything else is dropped.
//   - The commands: Execute sends any CDB and returns the completion as
//     the host sent it (statuses, transferred length, sense); the helpers
//     build Linux's commands (CDB… functions) and turn anything but SRB
//     SUCCESS with GOOD into a *CommandError carrying the decoded sense:
//     TestUnitReady, Inquiry (36 bytes, then the whole answer), InquiryVPD
//     (the header, then the page), ReadCapacity (16, then 10 on ILLEGAL
//     REQUEST), Read and Write (10, or 16 when sd would use it),
//     SynchronizeCache, ReportLUNs, and Discover, which scans paths 0..7
//     and targets 0..1 as the SCSI midlayer scans storvsc's host.
//   - Unlike Linux, the client reports INQUIRY and MODE SENSE completions
//     as the host sent them (storvsc forces them to success, trap 8), and
//     a sender that finds the ring full waits for the host to make room
//     (vmbus/client) rather than failing with -EAGAIN. It retries nothing:
//     what to do with a CHECK CONDITION is the caller's business, as it is
//     the SCSI midlayer's.
//
// # Buffers
//
// Data moves by GPA-direct: a Buffer is whole pages the client's Memory
// allocated, and the host reads or writes them in place. A request holds
// its buffer's pages until the host answers it: a request abandoned by its
// context keeps them until its completion comes, Buffer.Free of a held
// buffer frees the pages when the last request lets go, and the requests
// a stopped controller failed keep theirs until the host is known to have
// dropped the channel (a rescind, an unload, a Close the host confirmed).
// Request.Pages and Request.TransferLength send ranges and lengths as
// given, for tests that play a guest breaking the rules.
//
// # Invariants
//
//   - Every request is registered under its transaction ID before it is
//     sent, so a completion the host sends at once is not missed; every
//     wait takes a context.
//   - A page is given back to the Memory only when no request the host
//     may still serve names it.
//   - When the controller stops — Close, a rescind, a corrupt ring — every
//     request in flight fails with ErrStopped wrapping the cause, and
//     every later one fails at once.
//
// # Failure
//
// The host is untrusted, as the guest is to the host: nothing it sends
// makes the client panic (FuzzDispatch) or touch memory outside its own
// pages. Errors say the controller's relid or the request's address and
// command, and wrap one of the package's sentinels, a *CommandError, a
// vmbus/client error or the context's.
//
// # Concurrency
//
// A Controller's methods may be called from any number of goroutines:
// requests are pipelined, up to what the ring holds and beyond (senders
// wait for room), and complete in whatever order the host answers. One
// goroutine per controller takes the host's packets; OnRescan runs on it
// and must not block. Initialisation requests and resets go one at a
// time.
package storvsc
