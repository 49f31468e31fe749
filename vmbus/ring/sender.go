package ring

import (
	"fmt"

	"gohv/vmbus/proto"
)

// Sender is the producer end of one ring: the host writing to a guest's
// inbound ring, or a guest writing to its outbound one. Its methods are
// for one goroutine at a time; the Receiver at the other end runs
// concurrently, in this process or another partition.
type Sender struct {
	ring
	// write is the write index: the Sender's own, stored to the control
	// page but never read back from it (the peer could change it).
	write uint32
	// read is the consumer's read index as last loaded and checked: the
	// free space it implies only grows until the next load.
	read uint32
	// pending is true while this Sender has pending_send_sz set.
	pending bool
	signal  func()
	zeros   [8]byte
	trailer [8]byte
}

// NewSender attaches a producer to ring memory whose indices the ring's
// owner initialised (Init, or the guest's own driver). It starts writing
// at the current write index, sets FeatPendingSendSize (as Linux and
// OpenVMM writers do) and clears pending_send_sz. signal wakes the
// consumer; it is called from Write when the consumer needs a signal (see
// Write), on the caller's goroutine, and must not block or call back into
// the ring. A nil signal is a consumer that polls.
func NewSender(m Memory, signal func()) (*Sender, error) {
	r, err := newRing(m)
	if err != nil {
		return nil, err
	}
	s := &Sender{ring: r, signal: signal}
	if s.signal == nil {
		s.signal = func() {}
	}
	if s.write, err = r.index(WriteIndexOffset); err != nil {
		return nil, err
	}
	if s.read, err = r.index(ReadIndexOffset); err != nil {
		return nil, err
	}
	m.StoreU32(FeatureBitsOffset, m.LoadU32(FeatureBitsOffset)|FeatPendingSendSize)
	m.StoreU32(PendingSendSizeOffset, 0)
	return s, nil
}

// MaxPacketSize is the largest packet (header and payload) the ring can
// ever hold: one that, with padding and trailer, leaves exactly the 8
// bytes a ring always keeps free.
func (s *Sender) MaxPacketSize() int { return int(s.size) - 8 - proto.TrailerSize }

// fits reports whether total bytes fit beside the data not yet read: the
// free space must stay above zero, so that a full ring is not an empty
// one (Linux hv_ringbuffer_write: bytes_avail_towrite > totalbytes).
func (s *Sender) fits(total uint32) bool { return s.size-s.used(s.write, s.read) > total }

// reload loads and checks the consumer's read index.
func (s *Sender) reload() error {
	rd, err := s.index(ReadIndexOffset)
	if err != nil {
		return err
	}
	s.read = rd
	return nil
}

// Write writes one packet: header (the descriptor and any extension, from
// proto's Append…Header, whose offset8 and len8 must frame header and
// payload exactly), then payload, zero padding to 8 bytes and the trailer
// holding the packet's start offset, and publishes it by storing the new
// write index. It then signals the consumer if and only if the
// consumer's interrupt mask is clear and the ring was empty before this
// packet: the read index, loaded after the publish, equals the old write
// index (Linux hv_signal_on_write, OpenVMM commit_write). A consumer that
// was still reading older packets will see this one without a signal.
//
// Write returns ErrFull, having written nothing, when the packet does not
// fit now (see RequestSpace), ErrTooLarge when it never will, ErrFraming
// for a header that does not frame it, and an error wrapping ErrCorrupt
// when the consumer's read index is outside the data area. It does not
// allocate.
func (s *Sender) Write(header, payload []byte) error {
	n := len(header) + len(payload)
	if len(header) < proto.DescriptorSize || len(header)%8 != 0 ||
		int(le.Uint16(header[2:]))*8 != len(header) || int(le.Uint16(header[4:]))*8 != (n+7)&^7 {
		return ErrFraming
	}
	if n > s.MaxPacketSize() {
		return ErrTooLarge
	}
	total := uint32(PacketSize(n))
	if !s.fits(total) {
		if err := s.reload(); err != nil {
			return err
		}
		if !s.fits(total) {
			return ErrFull
		}
	}
	s.clearPending()
	start := s.write
	off := s.copyIn(start, header)
	off = s.copyIn(off, payload)
	if pad := (8 - n%8) % 8; pad != 0 {
		off = s.copyIn(off, s.zeros[:pad])
	}
	le.PutUint64(s.trailer[:], uint64(start)<<32)
	s.write = s.copyIn(off, s.trailer[:])
	s.m.StoreU32(WriteIndexOffset, s.write) // publishes the packet
	if s.m.LoadU32(InterruptMaskOffset) == 0 {
		rd := s.m.LoadU32(ReadIndexOffset)
		if rd == start {
			s.signal()
		}
		if s.valid(rd) {
			s.read = rd
		}
	}
	return nil
}

// RequestSpace is for a producer that got ErrFull and wants to wait
// rather than poll. n is the packet's size (header and payload); the
// request replaces any earlier one. If the packet fits now, RequestSpace
// clears pending_send_sz and returns true: write again. Otherwise it
// sets pending_send_sz to the packet's ring size, so that the consumer
// signals (the Receiver's signal, not this Sender's) when enough space is
// free, checks the space once more (the consumer may have freed it
// before it saw pending_send_sz), and returns false: wait for that
// signal, then write again. The next successful Write clears
// pending_send_sz. A consumer signals only when the ring has
// FeatPendingSendSize, which NewSender sets.
func (s *Sender) RequestSpace(n int) (bool, error) {
	if n < 0 || n > s.MaxPacketSize() {
		return false, fmt.Errorf("%w: %d bytes", ErrTooLarge, n)
	}
	total := uint32(PacketSize(n))
	if !s.fits(total) {
		s.m.StoreU32(PendingSendSizeOffset, total)
		s.pending = true
		if err := s.reload(); err != nil {
			return false, err
		}
		if !s.fits(total) {
			return false, nil
		}
	}
	s.clearPending()
	return true, nil
}

// clearPending withdraws this Sender's request for space, if any.
func (s *Sender) clearPending() {
	if s.pending {
		s.m.StoreU32(PendingSendSizeOffset, 0)
		s.pending = false
	}
}
