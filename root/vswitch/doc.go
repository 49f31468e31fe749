// Package vswitch is the root partition's virtual Ethernet switch: a
// learning layer-2 switch whose ports are the partitions' synthetic NICs
// (each NIC's network VSP holds one Port) and the root's own TCP/IP stack
// (one more Port). A port can later be backed by a physical NIC's driver:
// the uplink is a port with AllowSpoofing, since the frames it brings in
// carry the addresses of machines outside. The package is standard library
// only; it knows nothing of VMBus, NVSP or RNDIS.
//
// # Forwarding
//
// The switch learns source address → port from every frame that passes
// the source check, and pre-learns each port's configured MAC at Connect,
// so a port that never sent still receives its unicast. A unicast frame to
// a known address goes to that port only (or nowhere, when that is the
// port it came from); an unknown unicast, a broadcast or a multicast frame
// floods to every other port. A frame never goes back to its sender.
// A learned address moves when it appears on another port (only a port
// with AllowSpoofing can make it appear twice); a configured address never
// moves: a frame from another port with it as source is dropped. Learned
// entries age out after AgingTime without a frame from them (they then
// flood until learned again); at most MaxLearned are kept.
//
// # Design: one forwarder, two bounded queues per port
//
// Send copies the frame into the port's ingress queue and returns. One
// forwarding goroutine per switch round-robins over the ingress queues,
// one frame per port per round, looks up the destination and copies the
// frame into each destination port's egress queue. Each port has a
// delivery goroutine that calls its Endpoint's Deliver with the frames of
// its egress queue, in order. So:
//   - a port that sends faster than the switch forwards fills only its own
//     ingress queue: Send returns false and counts TxDropped; every other
//     port still gets one frame forwarded per round;
//   - an Endpoint that is slow or blocked fills only its own egress queue:
//     the forwarder never waits for it, and the frames it cannot take are
//     counted in its RxDropped;
//   - nothing in the path blocks on another port, and Send never blocks
//     (it takes the ingress queue's lock for one copy).
//
// # Memory
//
// A queue holds at most QueueLen frames (DefaultQueueLen when 0, at most
// MaxQueueLen). Each queue slot keeps its buffer: 1536 bytes at first use,
// MaxFrameSize once a longer frame has passed through it. A queue thus
// never holds more than QueueLen × MaxFrameSize bytes, a port twice that,
// and after warm-up Send, forwarding and delivery allocate nothing per
// frame (TestSteadyStateAllocatesNothing). The learning table is a map
// sized for MaxLearned entries at New.
//
// # Drop counters (PortStats)
//
// Send refuses a frame shorter than MinFrameSize or longer than
// MaxFrameSize (MalformedDropped); with a group source address, or,
// without AllowSpoofing, a source other than the port's MAC
// (SpoofDropped); on a full ingress queue or a closed port (TxDropped).
// The forwarder drops a frame whose source is another port's configured
// MAC (SpoofDropped) and counts a full egress queue on the receiving port
// (RxDropped).
//
// # Concurrency
//
// Send may be called from any goroutine, several at once (in gohv: the
// VSP's VMBus channel goroutine, the root stack's transmit path). Deliver
// is called only on the receiving port's delivery goroutine, one frame at
// a time; the frame is valid until it returns. The forwarder goroutine
// owns the forwarding and the learning table under the switch's mutex,
// which Connect, Port.Close and Ports also take. Port.Close and
// Switch.Close wait for a Deliver in progress: after they return, the
// port's Endpoint is never called again. Neither may be called from that
// port's own Deliver.
package vswitch
