// Package server is the host end of VMBus: the channel server a root
// partition runs for one child partition. It negotiates the protocol
// version with the guest's VMBus driver, offers the partition's devices as
// channels, assembles the GPADLs the guest describes, maps a channel's two
// rings when the guest opens it, and runs one goroutine per open channel
// that drains the guest's ring into the device's Handler
// (linux-guest-hyperv-facts.md §4–§5; Linux drivers/hv/connection.c and
// channel_mgmt.c are the client it serves; OpenVMM's vmbus_server is the
// reference host).
//
// It imports only vmbus/proto, vmbus/ring and hv/tlfs: the root wires it
// to the hypervisor through Host (post a SynIC message, set a SynIC event
// flag, bind a connection ID, reach a guest page) and feeds it what the
// guest sends through HandleMessage (HvCallPostMessage to connection 1 or
// 4) and HandleEvent (HvCallSignalEvent to a channel's connection).
//
// # The protocol as implemented
//
//   - Versions: every version Linux 6.1 asks for, 5.3 down to 2.4
//     (Config.MaxVersion lowers the top). INITIATE_CONTACT for 5.0 and
//     later arrives on connection 4 and is answered with
//     MessageConnectionID 1, where everything after it is posted; earlier
//     versions use connection 1 throughout. A version outside the set gets
//     version_supported 0 and the guest tries its next. Each
//     INITIATE_CONTACT resets the connection first (closes every channel,
//     drops every GPADL), as a guest that kexecs or reloads its driver
//     expects. Messages go to the contact's target VP (VP 0 below 3.0), on
//     SINT 2.
//   - Offers: REQUESTOFFERS gets one OFFERCHANNEL per device, in the order
//     they were added, then ALLOFFERS_DELIVERED. Every offer has
//     monitor_allocated 0 (the guest signals with HvCallSignalEvent) and
//     is_dedicated_interrupt 1 (the host signals the relid's flag in SINT
//     2's event flags), relid 1, 2, … in order and connection ID
//     ConnectionIDBase + relid. A device added after the offers went out
//     is offered at once; Rescind takes one back (RESCIND_CHANNELOFFER),
//     and its relid is free again only after the guest's RELID_RELEASED.
//   - GPADLs: a GPADL_HEADER starts one, GPADL_BODYs continue it in order
//     until its range_buflen bytes are in, then every page of every range
//     is checked against the guest's memory (Host.Page) and GPADL_CREATED
//     says 0 or a failure status. A connection holds at most MaxGPADLs
//     GPADLs, MaxPendingGPADLs of them waiting for bodies, and
//     MaxGPADLPages pages in all of them, a pending one counted at the
//     PFNs its range_buflen has room for; a header past a bound is
//     refused at once, before anything is allocated for it; a GPADL's
//     pages go back to the budget when it is torn down, refused, or
//     dropped with its relid or the connection.
//     GPADL_TEARDOWN of a GPADL an open channel uses closes that channel
//     first; GPADL_TORNDOWN goes out only once nothing of the host
//     touches the pages.
//   - Open: OPENCHANNEL names an offered, closed channel and a complete
//     GPADL of whole pages, at least two per ring; the guest-to-host ring
//     is the pages before downstream_ringbuffer_pageoffset and the
//     host-to-guest ring the rest. The device's Open returns the Handler;
//     OPENCHANNEL_RESULT says 0, or a failure status and nothing is
//     served. CLOSECHANNEL stops the channel's goroutine and closes the
//     Handler; it has no reply.
//   - Lent GPADLs: a device whose protocol names further GPADLs of its
//     relid (netvsc's receive and send buffers) borrows them through
//     Channel.BorrowGPADL; one that holds rings or is lent already is
//     refused. GPADL_TEARDOWN of a lent GPADL closes the borrowing
//     channel first; closing a channel returns what it borrowed.
//   - MODIFYCHANNEL moves a channel's target VP (answered from 5.3);
//     UNLOAD closes everything and answers UNLOAD_RESPONSE;
//     TL_CONNECT_REQUEST (hv_sock) is refused.
//
// # Invariants
//
//   - Every message a guest waits for without a timeout — VERSION_RESPONSE,
//     GPADL_CREATED, OPENCHANNEL_RESULT, GPADL_TORNDOWN, UNLOAD_RESPONSE,
//     MODIFYCHANNEL_RESPONSE — is sent for every well-formed request, with
//     a failure status if need be (§8.4). Replies go out in the order the
//     requests came.
//   - A Handler is called from its channel's goroutine only, one packet at
//     a time, between Open and Close; after Close returns nothing of the
//     channel is used again, its ring memory included.
//   - HandleMessage and HandleEvent run on the guest's VP thread: they do
//     not block and do not allocate.
//
// # Failure
//
// Everything the guest sends is hostile. A malformed message, one of the
// wrong state, or naming a relid or GPADL it does not own is logged and
// dropped or refused with a failure status; it costs the guest that
// request, never the server. A ring the guest corrupted, a packet that
// does not parse, or a Handler error closes that channel and rescinds its
// offer, so the guest's driver sees the device go. A panic in a Handler or
// in the server's own code is recovered, the channel (or the whole
// connection) is closed, and Config.OnPanic reports it: the root ends that
// partition, never the root or another one.
//
// # Concurrency
//
// One goroutine (Run) handles the channel-management messages in order and
// owns the connection state; each open channel has its own goroutine.
// AddDevice, Rescind and Close may be called from any goroutine.
package server
