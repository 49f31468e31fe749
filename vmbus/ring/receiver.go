package ring

import (
	"errors"
	"fmt"

	"gohv/vmbus/proto"
)

// Receiver is the consumer end of one ring: the host reading a guest's
// outbound ring, or a guest reading its inbound one. Its methods are for
// one goroutine at a time; the Sender at the other end runs concurrently.
type Receiver struct {
	ring
	// read is the read index: the Receiver's own, stored to the control
	// page but never read back from it.
	read uint32
	// write is the producer's write index as last loaded and checked: the
	// data it implies stays readable until the next load.
	write  uint32
	signal func()
	desc   [8]byte
}

// NewReceiver attaches a consumer to ring memory whose indices the ring's
// owner initialised. It starts reading at the current read index and
// leaves the interrupt mask as it finds it. signal wakes the producer;
// it is called from Read and Skip when the producer asked for space
// (pending_send_sz) and now has it, on the caller's goroutine, and must
// not block or call back into the ring. A nil signal is a producer that
// polls.
func NewReceiver(m Memory, signal func()) (*Receiver, error) {
	r, err := newRing(m)
	if err != nil {
		return nil, err
	}
	rc := &Receiver{ring: r, signal: signal}
	if rc.signal == nil {
		rc.signal = func() {}
	}
	if rc.read, err = r.index(ReadIndexOffset); err != nil {
		return nil, err
	}
	if rc.write, err = r.index(WriteIndexOffset); err != nil {
		return nil, err
	}
	return rc, nil
}

// next returns the length of the packet at the read index (its len8 × 8
// bytes: descriptor through padding, without the trailer).
// guest-controlled: the write index and the packet's len8 are checked
// against the data the producer published.
func (r *Receiver) next() (uint32, error) {
	if r.write == r.read {
		w, err := r.index(WriteIndexOffset)
		if err != nil {
			return 0, err
		}
		if r.write = w; w == r.read {
			return 0, ErrEmpty
		}
	}
	avail := r.used(r.write, r.read)
	if avail < proto.DescriptorSize+proto.TrailerSize {
		return 0, fmt.Errorf("%w: %d bytes published at %#x, less than a packet", ErrCorrupt, avail, r.read)
	}
	// The descriptor's first 8 bytes start 8-aligned and never wrap.
	r.m.ReadAt(r.desc[:], DataOffset+int(r.read))
	n := uint32(le.Uint16(r.desc[4:])) * 8
	if n < proto.DescriptorSize || n+proto.TrailerSize > avail {
		return 0, fmt.Errorf("%w: packet at %#x of len8 %d with %d bytes published", ErrCorrupt, r.read, n/8, avail)
	}
	return n, nil
}

// consume moves the read index over n bytes and publishes it, then
// signals the producer if it set pending_send_sz (and the ring has
// FeatPendingSendSize) and the free space just grew from at most that
// many bytes to more (Linux hv_pkt_iter_close): a signal only on the
// transition, so a producer is woken once.
func (r *Receiver) consume(n uint32) {
	old := r.read
	r.read = r.advance(old, n)
	r.m.StoreU32(ReadIndexOffset, r.read) // frees the space
	if r.m.LoadU32(FeatureBitsOffset)&FeatPendingSendSize == 0 {
		return
	}
	want := r.m.LoadU32(PendingSendSizeOffset)
	if want == 0 {
		return
	}
	w := r.m.LoadU32(WriteIndexOffset)
	if !r.valid(w) {
		return // the next read reports it
	}
	before, after := r.size-r.used(w, old), r.size-r.used(w, r.read)
	if before <= want && after > want {
		r.signal()
	}
}

// Peek returns the length of the next packet (descriptor through padding,
// as Read would copy it) without consuming it, ErrEmpty if there is none,
// or an error wrapping ErrCorrupt.
func (r *Receiver) Peek() (int, error) {
	n, err := r.next()
	return int(n), err
}

// Read copies the next packet, descriptor through padding (len8 × 8 bytes,
// no trailer), into p, consumes it and returns its length: hand p[:n] to
// proto.ParsePacket. It returns ErrEmpty when there is no packet, the
// packet's length and ErrShortBuffer (consuming nothing) when p is too
// short, and an error wrapping ErrCorrupt when the producer broke the ring;
// the caller then closes the channel. The copy is private: the producer
// cannot change it after the checks. It does not allocate.
func (r *Receiver) Read(p []byte) (int, error) {
	n, err := r.next()
	if err != nil {
		return 0, err
	}
	if len(p) < int(n) {
		return int(n), ErrShortBuffer
	}
	r.copyOut(r.read, p[:n])
	r.consume(n + proto.TrailerSize)
	return int(n), nil
}

// Skip consumes the next packet without copying it.
func (r *Receiver) Skip() error {
	n, err := r.next()
	if err != nil {
		return err
	}
	r.consume(n + proto.TrailerSize)
	return nil
}

// MaskInterrupts sets the interrupt mask: the producer stops signalling
// new data. A consumer sets it when it starts draining (Linux
// hv_begin_read).
func (r *Receiver) MaskInterrupts() { r.m.StoreU32(InterruptMaskOffset, 1) }

// UnmaskInterrupts clears the interrupt mask and then looks at the write
// index again, reporting whether a packet is waiting (Linux hv_end_read).
// A producer that wrote while the mask was set did not signal; if that
// packet is here, the consumer must drain again instead of waiting for a
// signal that will not come. A corrupt write index reports true, so the
// next Read returns the error.
func (r *Receiver) UnmaskInterrupts() bool {
	r.m.StoreU32(InterruptMaskOffset, 0)
	return r.m.LoadU32(WriteIndexOffset) != r.read
}

// Drain reads every packet into buf and hands each to fn (p is buf[:n],
// valid until fn returns), with the interrupt mask set while it reads, and
// returns once the ring is empty with the mask clear: after Drain returns
// nil, the producer signals the next packet. It stops with fn's error or
// the ring's (ErrShortBuffer for a packet longer than buf, ErrCorrupt),
// leaving the mask clear. A producer that never stops keeps Drain
// reading.
func (r *Receiver) Drain(buf []byte, fn func(p []byte) error) error {
	r.MaskInterrupts()
	for {
		n, err := r.Read(buf)
		if err == nil {
			err = fn(buf[:n])
		} else if errors.Is(err, ErrEmpty) {
			if !r.UnmaskInterrupts() {
				return nil
			}
			r.MaskInterrupts()
			continue
		}
		if err != nil {
			r.UnmaskInterrupts()
			return err
		}
	}
}
