package ring

import (
	"encoding/binary"
	"errors"
	"fmt"

	"gohv/vmbus/proto"
)

// The control page (linux-guest-hyperv-facts.md §5.2; Linux struct
// hv_ring_buffer). Every field is a u32 written by one side only.
const (
	PageSize = 4096
	// WriteIndexOffset is write_index: the byte offset in the data area
	// where the producer writes next. Written by the producer.
	WriteIndexOffset = 0
	// ReadIndexOffset is read_index: where the consumer reads next.
	// Written by the consumer.
	ReadIndexOffset = 4
	// InterruptMaskOffset is interrupt_mask: 1 while the consumer does not
	// want a signal for new data (it is draining). Written by the
	// consumer.
	InterruptMaskOffset = 8
	// PendingSendSizeOffset is pending_send_sz: set by a producer that
	// found no room, the free space it waits for; the consumer signals it
	// when the free space grows past it. Written by the producer.
	PendingSendSizeOffset = 12
	// FeatureBitsOffset is feature_bits, after 12 reserved words.
	FeatureBitsOffset = 64
	// FeatPendingSendSize (feat_pending_send_sz, bit 0) says the
	// producer may use pending_send_sz. Linux sets it in both its rings,
	// and a consumer signals for pending_send_sz only when it is set.
	FeatPendingSendSize = 1 << 0
	// DataOffset is where the data area starts.
	DataOffset = PageSize
	// MaxDataSize bounds the data area so that index arithmetic stays in
	// 32 bits.
	MaxDataSize = 1 << 30
)

// Errors. ErrEmpty and ErrFull are the ring's ordinary states and are
// returned without allocating; ErrCorrupt means the peer broke the ring
// (a bad index or packet length) and the caller must close the channel:
// the ring does not recover.
var (
	ErrEmpty       = errors.New("ring: empty")
	ErrFull        = errors.New("ring: not enough free space for the packet")
	ErrTooLarge    = errors.New("ring: packet larger than the ring can ever hold")
	ErrShortBuffer = errors.New("ring: buffer shorter than the packet")
	ErrFraming     = errors.New("ring: header does not frame the packet")
	ErrCorrupt     = errors.New("ring: corrupt")
	ErrMemory      = errors.New("ring: memory is not a control page and a data area of whole pages")
)

// PacketSize is the ring space a packet of n bytes (descriptor, extension
// and payload) takes: n padded to 8 bytes, then the 8-byte trailer.
func PacketSize(n int) int { return (n+7)&^7 + proto.TrailerSize }

// Init prepares fresh ring memory, as the side that allocates a ring (the
// guest) does before offering it: indices, interrupt mask and
// pending-send size zero, and FeatPendingSendSize set. A host never calls
// it on a guest's ring.
func Init(m Memory) error {
	if err := checkSize(m.Len()); err != nil {
		return err
	}
	for off := 0; off < PageSize; off += 4 {
		m.StoreU32(off, 0)
	}
	m.StoreU32(FeatureBitsOffset, FeatPendingSendSize)
	return nil
}

// ring is what both ends share: the memory and the data area's size.
type ring struct {
	m    Memory
	size uint32 // bytes in the data area
}

func newRing(m Memory) (ring, error) {
	if err := checkSize(m.Len()); err != nil {
		return ring{}, err
	}
	return ring{m: m, size: uint32(m.Len() - PageSize)}, nil
}

// index loads the index at off and checks it: inside the data area and
// 8-byte aligned. guest-controlled when the peer is a guest.
func (r *ring) index(off int) (uint32, error) {
	v := r.m.LoadU32(off)
	if !r.valid(v) {
		name := "write"
		if off == ReadIndexOffset {
			name = "read"
		}
		return 0, fmt.Errorf("%w: %s index %#x in a data area of %#x bytes", ErrCorrupt, name, v, r.size)
	}
	return v, nil
}

func (r *ring) valid(i uint32) bool { return i < r.size && i%8 == 0 }

// used is the number of bytes between read index rd and write index w.
func (r *ring) used(w, rd uint32) uint32 {
	if w >= rd {
		return w - rd
	}
	return r.size - rd + w
}

// copyIn writes p at data offset off, wrapping at the end of the data
// area, and returns the offset after it. len(p) < size.
func (r *ring) copyIn(off uint32, p []byte) uint32 {
	n := min(uint32(len(p)), r.size-off)
	r.m.WriteAt(p[:n], DataOffset+int(off))
	if n < uint32(len(p)) {
		r.m.WriteAt(p[n:], DataOffset)
		return uint32(len(p)) - n
	}
	if off += n; off == r.size {
		off = 0
	}
	return off
}

// copyOut reads len(p) bytes from data offset off, wrapping.
func (r *ring) copyOut(off uint32, p []byte) {
	n := min(uint32(len(p)), r.size-off)
	r.m.ReadAt(p[:n], DataOffset+int(off))
	if n < uint32(len(p)) {
		r.m.ReadAt(p[n:], DataOffset)
	}
}

// advance is index i moved n bytes on (n < size).
func (r *ring) advance(i, n uint32) uint32 {
	if i += n; i >= r.size {
		i -= r.size
	}
	return i
}

var le = binary.LittleEndian
