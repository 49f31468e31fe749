// Package ring is the VMBus ring buffer, one implementation for both ends:
// the host's VSPs and the guest-side client use the same Sender and
// Receiver. A channel has two rings in one GPADL, guest-to-host and
// host-to-guest; each has one producer and one consumer
// (linux-guest-hyperv-facts.md §5; Linux drivers/hv/ring_buffer.c; OpenVMM
// vmbus_ring).
//
// A ring is a 4 KiB control page (write index, read index, interrupt
// mask, pending-send size, feature bits; offsets pinned by tests) and a
// data area of whole 4 KiB pages, reached through Memory: a FlatMemory
// over a []byte in tests, a PageMemory over the GPADL's pages in the host.
// A packet in the data area is a proto descriptor, its extension and
// payload, zero padding to 8 bytes, and an 8-byte trailer holding the
// packet's start offset; packets wrap around the end of the data area.
//
// # Signalling
//
// The producer signals the consumer after publishing a packet only if the
// consumer's interrupt mask is clear and the ring was empty before the
// packet (the read index, loaded after the publish, equals the old write
// index). The consumer sets the mask while it drains and, before it
// waits, clears it and looks again (UnmaskInterrupts, Drain): a packet
// written while the mask was set came without a signal. A producer that
// finds no room sets pending_send_sz to the space it needs and looks again
// (RequestSpace); the consumer, after freeing space, signals it once, when
// the free space grows from at most that much to more, if the ring has
// FeatPendingSendSize. Extra signals are harmless; a missing one hangs a
// channel, and the stress test runs millions of packets through Pair,
// which waits only on signals, to show there are none.
//
// # Invariants
//
//   - Indices are multiples of 8 below the data area's size; each end
//     keeps its own index privately and only stores it to the control page,
//     and checks every index it loads from the peer.
//   - The producer never fills the ring: at least 8 bytes stay free, so a
//     full ring is not an empty one (Linux needs free space strictly
//     greater than the packet).
//   - Every published packet is complete: its bytes are written before
//     the write index that covers them is stored, and the consumer copies
//     a packet out before it stores the read index past it.
//   - Write, Read, Skip, Peek, RequestSpace, Drain and the masks allocate
//     nothing (TestRingDoesNotAllocate); only the errors of a corrupt
//     ring do.
//
// # Failure
//
// The peer owns half of the control page and, if it is a guest, all of
// the memory. A write index or read index outside the data area or not
// 8-byte aligned, a packet whose len8 is below a descriptor or beyond the
// published data, or published data too short for any packet, is an error
// wrapping ErrCorrupt; the caller closes the channel, and the ring does
// not recover. A peer that rewrites packet bytes after publishing them
// only garbles its own packets: Read copies each packet once, and
// proto.ParsePacket checks the copy. No input makes the ring touch memory
// outside its own Memory or panic, and every call does bounded work
// except Drain, which reads for as long as the producer keeps writing.
//
// # Concurrency
//
// One goroutine at a time uses a Sender, and one a Receiver; the two run
// concurrently (the stress tests, under -race too). The
// control-page indices are loaded and stored with sequentially consistent
// atomics (Memory.LoadU32 and StoreU32), which order the plain copies of
// packet bytes: release on publish, acquire on load. The signal functions
// run on the goroutine that wrote or read, and must not block.
package ring
