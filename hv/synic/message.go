package synic

import (
	"encoding/binary"
	"math/bits"

	"gohv/hv/tlfs"
)

// This file: messages (TLFS "SynIC Messages"). A message goes into its SINT's
// slot of the SIM page when the slot is empty (message type 0); otherwise
// it waits in the SINT's queue, the slot's MessagePending flag is set, and
// the guest's EOM (or its EOI of the SINT's vector, or the next Post)
// brings the next waiting message in.

// message is one queued message: a guest message buffer (TLFS "Guest Message
// Buffers").
type message struct {
	typ     tlfs.MessageType
	size    uint8
	origin  uint64
	payload [tlfs.MessagePayloadSize]byte
}

// queue is a SINT's ring of waiting messages, a window of the slab New
// allocated: pushing never allocates.
type queue struct {
	ring    []message
	head, n int
}

func (q *queue) full() bool       { return q.n == len(q.ring) }
func (q *queue) front() *message  { return &q.ring[q.head] }
func (q *queue) pop()             { q.head = (q.head + 1) % len(q.ring); q.n-- }
func (q *queue) push() *message   { m := &q.ring[(q.head+q.n)%len(q.ring)]; q.n++; return m }
func (q *queue) clear() (was int) { was, q.head, q.n = q.n, 0, 0; return was }

// pendingBit is HV_MESSAGE_FLAGS.MessagePending in the 32-bit word at
// slot offset 4 (PayloadSize in its low byte, MessageFlags in the next).
const pendingBit = tlfs.MessagePendingFlag << (8 * (tlfs.MessageFlagsOffset - tlfs.MessageSizeOffset))

// Post delivers a message to SINT sint (from the root, a port, or the
// hypervisor): into the SIM slot if it is free (payload and header first, the
// type last), else the slot's MessagePending flag is set and the message
// waits in the SINT's queue; then the SINT's vector is raised unless it is
// masked or polling. A masked SINT still receives messages in its slot: the
// TLFS loses only the interrupt (TLFS "SynIC Messages"), and the guest may
// drain a masked SINT with EOM.
//
// Errors: ErrDisabled when SCONTROL or SIMP is not enabled (the VP is no
// target, TLFS "SynIC Messages"; nothing queued); ErrQueueFull when the slot
// is busy and Config.QueueDepth messages wait already (nothing queued; the
// hypercall returns INSUFFICIENT_BUFFERS); ErrNoPage when the SIM page is
// outside RAM (the message, and whatever waited for the SINT, is dropped and
// counted); ErrBadArgument for sint > 15, type 0 or a payload above 240
// bytes. payload is copied before Post returns. Any goroutine; does not
// allocate.
func (s *SynIC) Post(sint uint8, typ tlfs.MessageType, origin uint64, payload []byte) error {
	if sint >= tlfs.SINTCount || typ == tlfs.MessageTypeNone || len(payload) > tlfs.MessagePayloadSize {
		return ErrBadArgument
	}
	var r raises
	s.mu.Lock()
	if _, ok := s.slotLocked(sint); !ok {
		s.mu.Unlock()
		s.stats.refused.Add(1)
		return ErrDisabled
	}
	q := &s.queues[sint]
	if q.full() {
		s.flushSINTLocked(sint, &r) // a slot the guest freed without EOM makes room
	}
	if q.full() {
		s.mu.Unlock()
		s.fire(&r)
		s.stats.queueFull.Add(1)
		return ErrQueueFull
	}
	m := q.push()
	m.typ, m.size, m.origin = typ, uint8(len(payload)), origin
	copy(m.payload[:], payload)
	s.stats.posted.Add(1)
	s.noteWaitingLocked()
	out := s.flushSINTLocked(sint, &r)
	s.mu.Unlock()
	s.fire(&r)
	if out == flushDropped {
		return ErrNoPage
	}
	return nil
}

// EOM is the guest's write of HV_X64_MSR_EOM (TLFS "EOM Register"): every SINT
// with a waiting message gets one delivery attempt. Costs at most one
// slot write per SINT, however often the guest writes.
func (s *SynIC) eomLocked(r *raises) {
	s.stats.eoms.Add(1)
	s.flushAllLocked(r)
}

// flushAllLocked tries to bring the next waiting message of every SINT
// into its slot.
func (s *SynIC) flushAllLocked(r *raises) {
	for w := s.waiting.Load(); w != 0; {
		n := bits.TrailingZeros32(w)
		w &^= 1 << n
		s.flushSINTLocked(uint8(n), r)
	}
}

// EOI tells the SynIC that the VP EOId vector at its local APIC (or that the
// APIC retired an auto-EOI vector): every unmasked SINT with that vector and
// a waiting message gets a delivery attempt, as TLFS "SynIC Messages" asks of
// an APIC EOI. Nothing waiting costs one atomic load. Any goroutine; does not
// allocate.
func (s *SynIC) EOI(vector uint8) {
	if s.waiting.Load() == 0 {
		return
	}
	var r raises
	s.mu.Lock()
	for w := s.waiting.Load(); w != 0; {
		n := bits.TrailingZeros32(w)
		w &^= 1 << n
		if v := s.sint[n]; v&tlfs.SINTMasked == 0 && uint8(v&tlfs.SINTVectorMask) == vector {
			s.flushSINTLocked(uint8(n), &r)
		}
	}
	s.mu.Unlock()
	s.fire(&r)
}

// slotLocked returns the guest-physical address of SINT n's message slot,
// or ok false while SCONTROL or SIMP is disabled.
func (s *SynIC) slotLocked(n uint8) (gpa uint64, ok bool) {
	if s.scontrol&tlfs.SControlEnable == 0 || s.simp&tlfs.OverlayEnable == 0 {
		return 0, false
	}
	return pageBase(s.simp) + uint64(n)*tlfs.MessageSize, true
}

type flushOutcome uint8

const (
	flushWaits     flushOutcome = iota // nothing delivered: the slot is busy, or nothing waits, or the SynIC or SIM page is off
	flushDelivered                     // one message went into the slot
	flushDropped                       // the SIM page is outside RAM: everything waiting for the SINT was dropped
)

// flushSINTLocked makes one delivery attempt for SINT n: a held timer
// expiration first (each timer has its own buffer, TLFS "SynIC Messages", so a
// flood of port messages cannot starve it), else the oldest queued
// message. The slot is claimed only if its type reads 0; the header and
// payload are written first and the type last, by compare-and-swap from
// 0, so a guest that writes the slot meanwhile keeps its own value and
// the message keeps waiting.
func (s *SynIC) flushSINTLocked(n uint8, r *raises) flushOutcome {
	if s.waiting.Load()&(1<<n) == 0 {
		return flushWaits
	}
	gpa, ok := s.slotLocked(n)
	if !ok {
		return flushWaits
	}
	free, err := s.claimSlotLocked(gpa)
	if err != nil {
		s.dropWaitingLocked(n)
		return flushDropped
	}
	if !free {
		return flushWaits
	}
	q := &s.queues[n]
	ti := s.heldTimerLocked(n)
	waiting := q.n + s.heldTimersLocked(n)
	var (
		typ    tlfs.MessageType
		origin uint64
		size   int
		now    uint64
	)
	if ti >= 0 {
		now = s.clock.ReferenceTime()
		typ, size = tlfs.MessageTypeTimerExpired, tlfs.TimerMessagePayloadSize
		t := &s.timers[ti]
		s.lazyCatchUpLocked(t, now)
		tlfs.TimerMessagePayload{TimerIndex: uint32(ti), ExpirationTime: t.heldExp, DeliveryTime: now}.Put(s.scratch[tlfs.MessageHeaderSize:])
	} else {
		m := q.front()
		typ, origin, size = m.typ, m.origin, int(m.size)
		copy(s.scratch[tlfs.MessageHeaderSize:], m.payload[:size])
	}
	swapped, err := s.writeSlotLocked(gpa, typ, origin, size, waiting > 1)
	if err != nil {
		s.dropWaitingLocked(n)
		return flushDropped
	}
	if !swapped {
		// The guest wrote a message type into the slot it had emptied:
		// its slot, its loss of time. Ours waits, MessagePending set, for
		// the next EOM, EOI or Post.
		if _, err := s.mem.OrU32(gpa+tlfs.MessageSizeOffset, pendingBit); err != nil {
			s.dropWaitingLocked(n)
			return flushDropped
		}
		return flushWaits
	}
	if ti >= 0 {
		s.timerDeliveredLocked(ti, now)
	} else {
		q.pop()
		s.stats.delivered.Add(1)
	}
	s.noteWaitingLocked()
	s.raiseSINTLocked(n, r)
	return flushDelivered
}

// claimSlotLocked reports whether the slot at gpa is empty. A busy slot
// gets its MessagePending flag set, and then its type is read again: a
// guest that emptied the slot between the two reads may have looked at
// the flag before it was set and so will not write EOM, so the SynIC
// delivers now instead (setting the flag and then looking again closes
// the race).
func (s *SynIC) claimSlotLocked(gpa uint64) (free bool, err error) {
	typ, err := s.mem.OrU32(gpa+tlfs.MessageTypeOffset, 0)
	if err != nil || typ == 0 {
		return err == nil, err
	}
	if _, err := s.mem.OrU32(gpa+tlfs.MessageSizeOffset, pendingBit); err != nil {
		return false, err
	}
	typ, err = s.mem.OrU32(gpa+tlfs.MessageTypeOffset, 0)
	return err == nil && typ == 0, err
}

// writeSlotLocked writes a message whose payload is in s.scratch[16:] into
// the (empty) slot at gpa: PayloadSize, MessageFlags, the reserved field,
// the origin and the payload, then the type by compare-and-swap from 0.
// Only the payload's own bytes are written (TLFS "SynIC Messages").
func (s *SynIC) writeSlotLocked(gpa uint64, typ tlfs.MessageType, origin uint64, size int, pending bool) (bool, error) {
	b := s.scratch[:]
	b[tlfs.MessageSizeOffset] = uint8(size)
	b[tlfs.MessageFlagsOffset] = 0
	if pending {
		b[tlfs.MessageFlagsOffset] = tlfs.MessagePendingFlag
	}
	binary.LittleEndian.PutUint16(b[6:], 0)
	binary.LittleEndian.PutUint64(b[tlfs.MessageOriginOffset:], origin)
	if err := s.mem.WriteRAM(gpa+tlfs.MessageSizeOffset, b[tlfs.MessageSizeOffset:tlfs.MessageHeaderSize+size]); err != nil {
		return false, err
	}
	return s.mem.CmpxchgU32(gpa+tlfs.MessageTypeOffset, 0, uint32(typ))
}

// dropWaitingLocked drops everything waiting for SINT n because its slot
// cannot be reached (the SIM page is outside RAM), and counts it.
func (s *SynIC) dropWaitingLocked(n uint8) {
	s.stats.dropped.Add(uint64(s.queues[n].clear()))
	for i := range s.timers {
		if t := &s.timers[i]; t.held && t.sint() == n {
			now := s.clock.ReferenceTime()
			s.stats.timerDropped.Add(1)
			t.held = false
			s.resumeLocked(t, now)
		}
	}
	s.noteWaitingLocked()
}
