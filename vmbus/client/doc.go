// Package client is the guest end of VMBus: a library a Go program
// running as a child partition uses to reach the root's VSPs, and the
// other end the host tests drive gohv's VMBus server with. It speaks the
// protocol as Linux 6.1's hv_vmbus does (linux-guest-hyperv-facts.md
// §3–§5; Linux drivers/hv/connection.c, channel_mgmt.c and channel.c are
// the driver it imitates), so a server that serves it serves Linux.
//
// It imports only vmbus/proto, vmbus/ring and hv/tlfs. Below it is a
// Transport, the two hypercalls (HvCallPostMessage, HvCallSignalEvent),
// and a Memory, the client's own guest-physical pages. What the host
// sends comes in through two calls the transport's owner makes:
// DeliverMessage with a SIM slot's payload on SINT 2, DeliverEvent with
// the relid of an event flag it found set. Package vmbus/vmbustest wires
// a Client to gohv's server in one process for host tests.
//
// # The protocol as spoken
//
//   - Connect: INITIATE_CONTACT for each version in Linux 6.1's order
//     (proto.Linux61Versions), one at a time, each waiting for its
//     VERSION_RESPONSE: from 5.0 on connection 4 with messages on SINT 2,
//     below on connection 1 naming the shared interrupt page; always
//     naming two zeroed monitor pages. A version whose post fails (a host
//     without connection 4) counts as rejected. From 5.0 every later
//     message goes to the response's msg_conn_id, below to connection 1.
//     Then REQUESTOFFERS, and every OFFERCHANNEL until
//     ALLOFFERS_DELIVERED; later offers (hot-add) and rescinds are taken
//     as they come (Offers, WaitOffer, WaitRescind).
//   - Open: the rings' pages come from Memory, zeroed and initialised
//     (ring.Init) before the host hears of them: the guest-to-host ring
//     first, the host-to-guest ring from downstream_ringbuffer_pageoffset.
//     One GPADL holds both, one range of whole pages, its handle chosen as
//     Linux chooses (0xE1E10 and up), split by proto.SplitGPADL into a
//     GPADL_HEADER and GPADL_BODYs; then GPADL_CREATED, matched by relid
//     and handle; then OPENCHANNEL (open ID = relid, interrupts to
//     Config.VP) and OPENCHANNEL_RESULT, matched by relid and open ID.
//   - Packets: in-band (with a transaction ID, completion requested or
//     not), completions, GPA-direct packets naming the client's pages, and
//     whatever proto can frame (SendPacket); received packets are parsed by
//     proto.ParsePacket. The ring's signalling rules are Linux's: the host
//     is signalled (HvSignalEvent on the offer's connection ID, flag 0)
//     when a packet lands in an empty ring whose interrupt mask is clear,
//     or when reading frees the room the host asked for; Receive keeps its
//     ring masked while packets keep coming and unmasks and looks again
//     before it sleeps. Unlike Linux 6.1, a sender that finds its ring full
//     asks for room (pending_send_sz) and waits for the host's signal
//     instead of polling.
//   - Close: CLOSECHANNEL, GPADL_TEARDOWN, GPADL_TORNDOWN (matched by
//     handle), and only then are the pages freed. A rescind ends every
//     wait on its channel with ErrRescinded; Close then sends CLOSECHANNEL
//     but no teardown (the host dropped the GPADL), and RELID_RELEASED
//     follows once nothing holds the relid — at once for an offer nobody
//     opened.
//   - Unload: UNLOAD and UNLOAD_RESPONSE (protocol 3.0 and later), after
//     which the host holds nothing and every page is freed. Disconnect
//     closes every channel first, as a guest unloading its driver does.
//   - Not spoken: monitored notification (the client signals with
//     HvSignalEvent even for an offer with monitor_allocated, and never
//     sets the shared interrupt page's send bits), MODIFYCHANNEL, hv_sock
//     and sub-channel requests.
//
// # Invariants
//
//   - Every wait takes a context: no call waits for the host forever.
//   - Every request's wait is registered before the request is posted,
//     so a reply the host sends at once is not missed; a reply is matched
//     as Linux matches it, and one that matches no wait is dropped.
//   - A page is freed only when the host no longer uses it: after
//     GPADL_TORNDOWN, a refused GPADL, a rescind, or UNLOAD_RESPONSE. A
//     wait that ends with its context while the host may hold pages, or a
//     Close that did not get its GPADL_TORNDOWN, leaves them allocated
//     (logged) until the next Unload.
//   - DeliverMessage and DeliverEvent never block; DeliverEvent does not
//     allocate.
//
// # Failure
//
// The host is untrusted too. A message that does not parse, comes from
// the wrong direction, names a relid outside 1..2047 or one already
// offered, or answers nothing the client asked, is dropped with an error
// (wrapping proto.ErrMessage or ErrUnexpected) and logged; it changes no
// state. A host-to-guest ring the host corrupted gives errors wrapping
// ring.ErrCorrupt, a packet that does not parse one wrapping
// proto.ErrPacket; no input makes the client panic or touch memory
// outside its own pages (FuzzDeliverMessage, TestHostCorruptsRing).
// Errors say the call and the relid ("vmbus/client: open relid 5: …")
// and wrap one of the package's sentinel errors or the context's.
//
// # Concurrency
//
// A Client's methods may be called from any goroutine, as may a
// Channel's: sends are serialised with each other, receives with each
// other, and a send and a receive run concurrently. DeliverMessage is
// called with the host's messages in the order they came; DeliverEvent
// from anywhere. Transport calls are made on the goroutine of the client
// call that needs them, and RELID_RELEASED after a rescind on a goroutine
// of the connection's own, which Unload and Disconnect end.
package client
