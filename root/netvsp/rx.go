package netvsp

import (
	"errors"
	"fmt"
	"sync"

	"gohv/root/netvsp/protocol"
	"gohv/vmbus/proto"
)

// This file: host to guest — frames from the switch and RNDIS control
// replies, each an RNDIS message in a section of the guest's receive
// buffer, announced by a transfer-page packet; the guest's completion of
// that packet gives the section back (netvsc-facts §5, §6.2).

// rxState is the receive side of a VSP, shared by the channel's goroutine
// (control replies, completions, buffer changes) and the switch port's
// goroutine (Deliver): mu guards everything but the senders' scratch.
type rxState struct {
	v *VSP

	mu          sync.Mutex
	closed      bool
	initialized bool   // RNDIS INITIALIZE seen, HALT not since
	filter      uint32 // OID_GEN_CURRENT_PACKET_FILTER
	buf         pageBuffer
	size        int // a section's bytes
	// inFlight[s] is true from the transfer-page packet naming section
	// s until the guest's completion of it: the section is the
	// guest's. Sections below controlSections carry control replies
	// only.
	inFlight []bool
	freeCtrl []uint32 // stacks of free section indexes
	freeData []uint32

	// ctrl is used on the channel's goroutine, data on the port's: one
	// sender each, so neither needs mu.
	ctrl, data rxSender
}

// rxSender is one goroutine's scratch for announcing a section.
type rxSender struct {
	hdr     [proto.TransferPageHeaderSize + proto.TransferPageRangeSize]byte
	ranges  [1]proto.TransferPageRange
	payload []byte // SEND_RNDIS_PKT for the channel type, built once
	rndis   [protocol.PacketMsgSize]byte
}

var (
	errNoBuffer  = errors.New("no receive buffer")
	errNoSection = errors.New("every receive section is the guest's")
	errTooLong   = errors.New("longer than a receive section")
)

func (r *rxState) init(v *VSP) {
	r.v = v
	r.ctrl.payload = protocol.SendRNDISPacket{ChannelType: protocol.ChannelControl, SectionIndex: protocol.NoSection}.Append(nil)
	r.data.payload = protocol.SendRNDISPacket{ChannelType: protocol.ChannelData, SectionIndex: protocol.NoSection}.Append(nil)
}

// setBuffer takes the guest's receive buffer, carved into count sections
// of size bytes. Channel goroutine.
func (r *rxState) setBuffer(buf pageBuffer, size uint32, count int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.buf, r.size = buf, int(size)
	r.inFlight = make([]bool, count)
	r.freeCtrl = make([]uint32, 0, controlSections)
	r.freeData = make([]uint32, 0, count-controlSections)
	for s := count - 1; s >= 0; s-- {
		if s < controlSections {
			r.freeCtrl = append(r.freeCtrl, uint32(s))
		} else {
			r.freeData = append(r.freeData, uint32(s))
		}
	}
}

// revoke is REVOKE_RECV_BUF: the buffer goes back to the guest, and
// nothing is written to it from now on. Channel goroutine.
func (r *rxState) revoke() {
	r.mu.Lock()
	buf := r.buf
	r.buf, r.inFlight, r.freeCtrl, r.freeData = pageBuffer{}, nil, nil, nil
	r.mu.Unlock()
	if buf.pages != nil {
		r.v.ch.ReturnGPADL(buf.handle)
	}
}

func (r *rxState) close() {
	r.mu.Lock()
	r.closed = true
	r.mu.Unlock()
}

func (r *rxState) setInitialized(on bool) {
	r.mu.Lock()
	r.initialized = on
	if !on {
		r.filter = 0
	}
	r.mu.Unlock()
}

func (r *rxState) isInitialized() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.initialized
}

func (r *rxState) setFilter(f uint32) {
	r.mu.Lock()
	r.filter = f
	r.mu.Unlock()
}

// sendControl sends an RNDIS control reply. Channel goroutine. A guest
// that holds every control section has stopped completing its receive
// packets: the reply is dropped and logged, the channel kept.
func (r *rxState) sendControl(msg []byte) error {
	err := r.send(&r.ctrl, true, msg, nil)
	if errors.Is(err, errNoSection) || errors.Is(err, errNoBuffer) || errors.Is(err, errTooLong) {
		r.v.log.Warn("netvsp: RNDIS reply dropped", "err", err)
		return nil
	}
	return err
}

// Deliver gives the guest a frame from the switch: the port's goroutine,
// one frame at a time; frame is valid only during the call. A frame the
// guest's packet filter refuses, or for which there is no receive
// section, is dropped and counted. Must not allocate.
func (v *VSP) Deliver(frame []byte) {
	r := &v.rx
	if len(frame) < ethernetHeader || len(frame) > maxFrame || !r.accepts(frame) {
		v.st.rxDropped.Add(1)
		return
	}
	hdr := protocol.AppendPacketMsgHeader(r.data.rndis[:0], len(frame))
	if err := r.send(&r.data, false, hdr, frame); err != nil {
		v.st.rxDropped.Add(1)
		return
	}
	v.st.rxFrames.Add(1)
	v.st.rxBytes.Add(uint64(len(frame)))
}

// accepts applies the guest's packet filter (NDIS_PACKET_TYPE_*) to a
// frame's destination; nothing passes before RNDIS is initialised and the
// filter set.
func (r *rxState) accepts(frame []byte) bool {
	r.mu.Lock()
	f, ok := r.filter, r.initialized && !r.closed
	r.mu.Unlock()
	dst := [6]byte(frame[:6])
	switch {
	case !ok:
		return false
	case f&protocol.PacketTypePromiscuous != 0:
		return true
	case dst == [6]byte{0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF}:
		return f&protocol.PacketTypeBroadcast != 0
	case dst[0]&1 != 0:
		return f&(protocol.PacketTypeAllMulticast|protocol.PacketTypeMulticast) != 0
	}
	return f&protocol.PacketTypeDirected != 0 && dst == r.v.cfg.MAC
}

// send writes head and then body into a free section and announces it
// with a transfer-page packet whose transaction ID is the section's
// index. s is the calling goroutine's scratch.
func (r *rxState) send(s *rxSender, control bool, head, body []byte) error {
	n := len(head) + len(body)
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return ErrClosed
	}
	if r.buf.pages == nil {
		r.mu.Unlock()
		return errNoBuffer
	}
	if n > r.size {
		r.mu.Unlock()
		return errTooLong
	}
	free := &r.freeData
	if control {
		free = &r.freeCtrl
	}
	if len(*free) == 0 {
		r.mu.Unlock()
		return errNoSection
	}
	sec := (*free)[len(*free)-1]
	*free = (*free)[:len(*free)-1]
	off := int(sec) * r.size
	r.buf.writeAt(head, off)
	r.buf.writeAt(body, off+len(head))
	r.inFlight[sec] = true
	r.mu.Unlock()

	s.ranges[0] = proto.TransferPageRange{ByteCount: uint32(n), ByteOffset: uint32(off)}
	hdr, err := proto.AppendTransferPagesHeader(s.hdr[:0], proto.PacketFlagCompletionRequested, uint64(sec),
		protocol.ReceiveBufferID, false, s.ranges[:], len(s.payload))
	if err == nil {
		err = r.v.ch.SendPacket(hdr, s.payload)
	}
	if err != nil {
		r.release(sec)
		return fmt.Errorf("netvsp: receive section %d: %w", sec, err)
	}
	return nil
}

// completion is the guest's completion of a transfer-page packet: its
// section is free again. Channel goroutine. Guest-controlled: the
// transaction ID; one naming no section in flight is counted and ignored.
func (r *rxState) completion(p *proto.Packet) error {
	if p.TransactionID > 1<<32 || !r.release(uint32(p.TransactionID)) {
		r.v.st.rxBadCompletions.Add(1)
	}
	return nil
}

// release frees section sec if it is in flight.
func (r *rxState) release(sec uint32) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if int64(sec) >= int64(len(r.inFlight)) || !r.inFlight[sec] {
		return false
	}
	r.inFlight[sec] = false
	if sec < controlSections {
		r.freeCtrl = append(r.freeCtrl, sec)
	} else {
		r.freeData = append(r.freeData, sec)
	}
	return true
}
