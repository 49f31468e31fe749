package client

import (
	"context"
	"errors"
	"fmt"

	"gohv/vmbus/proto"
	"gohv/vmbus/ring"
)

// This file: the data path, packets through the rings.

// Range is one range of a GPA-direct packet: Len bytes starting Offset
// bytes into the first of PFNs, which must be exactly the pages the bytes
// span (proto.GPARangePages). The pages are the client's own, from its
// Memory; the host reads or writes them while it handles the packet.
type Range struct {
	Offset uint32
	Len    uint32
	PFNs   []uint64
}

// SendInband sends an in-band packet carrying payload. flags is 0 or
// proto.PacketFlagCompletionRequested (the host answers with a completion
// packet echoing tid). While the ring is full it asks the host for room
// and waits, until ctx ends.
func (ch *Channel) SendInband(ctx context.Context, flags uint16, tid uint64, payload []byte) error {
	ch.sendMu.Lock()
	defer ch.sendMu.Unlock()
	hdr, err := proto.AppendInbandHeader(ch.hdr[:0], flags, tid, len(payload))
	if err != nil {
		return ch.errorf("send", fmt.Errorf("%w: %v", ErrInvalid, err))
	}
	ch.hdr = hdr
	return ch.writeLocked(ctx, hdr, payload)
}

// SendCompletion sends a completion packet for the host's transaction
// tid, carrying payload.
func (ch *Channel) SendCompletion(ctx context.Context, tid uint64, payload []byte) error {
	ch.sendMu.Lock()
	defer ch.sendMu.Unlock()
	hdr, err := proto.AppendCompletionHeader(ch.hdr[:0], tid, len(payload))
	if err != nil {
		return ch.errorf("send completion", fmt.Errorf("%w: %v", ErrInvalid, err))
	}
	ch.hdr = hdr
	return ch.writeLocked(ctx, hdr, payload)
}

// SendGPADirect sends a GPA-direct packet naming ranges of the client's
// pages and carrying payload (storvsc's data transfers are these).
func (ch *Channel) SendGPADirect(ctx context.Context, flags uint16, tid uint64, ranges []Range, payload []byte) error {
	ch.sendMu.Lock()
	defer ch.sendMu.Unlock()
	arr := ch.ranges[:0]
	var err error
	for _, r := range ranges {
		if arr, err = proto.AppendGPARange(arr, r.Len, r.Offset, r.PFNs); err != nil {
			return ch.errorf("send GPA-direct", fmt.Errorf("%w: %v", ErrInvalid, err))
		}
	}
	ch.ranges = arr
	list, err := proto.ParseGPARanges(arr, len(ranges))
	if err != nil {
		return ch.errorf("send GPA-direct", fmt.Errorf("%w: %v", ErrInvalid, err))
	}
	hdr, err := proto.AppendGPADirectHeader(ch.hdr[:0], flags, tid, list, len(payload))
	if err != nil {
		return ch.errorf("send GPA-direct", fmt.Errorf("%w: %v", ErrInvalid, err))
	}
	ch.hdr = hdr
	return ch.writeLocked(ctx, hdr, payload)
}

// SendPacket sends a packet whose descriptor and extension the caller
// built (proto's Append…Header functions): header must frame payload.
func (ch *Channel) SendPacket(ctx context.Context, header, payload []byte) error {
	ch.sendMu.Lock()
	defer ch.sendMu.Unlock()
	return ch.writeLocked(ctx, header, payload)
}

// writeLocked writes one packet, waiting for room (pending_send_sz and
// the host's signal) while the ring is full.
func (ch *Channel) writeLocked(ctx context.Context, header, payload []byte) error {
	for {
		if err := ch.stopped(); err != nil {
			return ch.errorf("send", err)
		}
		if ch.isRescinded() {
			return ch.errorf("send", ErrRescinded)
		}
		err := ch.out.Write(header, payload)
		if err == nil {
			return nil
		}
		if err != ring.ErrFull {
			return ch.errorf("send", err)
		}
		ok, err := ch.out.RequestSpace(len(header) + len(payload))
		if err != nil {
			return ch.errorf("send", err)
		}
		if ok {
			continue
		}
		select {
		case <-ch.writable:
		case <-ch.done:
		case <-ch.rescinded:
		case <-ctx.Done():
			return ch.errorf("send: waiting for room", context.Cause(ctx))
		}
	}
}

// Receive returns the next packet from the host, parsed, waiting for one
// until ctx ends. The packet is copied into buf and its slices are views
// of buf, valid until buf is reused. A packet longer than buf stays in
// the ring: the error wraps ring.ErrShortBuffer and says its length. A
// packet that does not parse is consumed and the error wraps
// proto.ErrPacket; the channel goes on. A ring the host corrupted gives
// an error wrapping ring.ErrCorrupt for good: close the channel. After a
// rescind, Receive returns the packets still in the ring, then
// ErrRescinded.
func (ch *Channel) Receive(ctx context.Context, buf []byte) (proto.Packet, error) {
	ch.recvMu.Lock()
	defer ch.recvMu.Unlock()
	for {
		if err := ch.stopped(); err != nil {
			return proto.Packet{}, ch.errorf("receive", err)
		}
		n, err := ch.in.Read(buf)
		switch {
		case err == nil:
			p, err := proto.ParsePacket(buf[:n])
			if err != nil {
				return proto.Packet{}, ch.errorf("receive", err)
			}
			return p, nil
		case errors.Is(err, ring.ErrShortBuffer):
			return proto.Packet{}, ch.errorf("receive", fmt.Errorf("packet of %d bytes, buffer of %d: %w", n, len(buf), err))
		case err != ring.ErrEmpty:
			return proto.Packet{}, ch.errorf("receive", err)
		}
		if ch.isRescinded() {
			return proto.Packet{}, ch.errorf("receive", ErrRescinded)
		}
		// Empty: ask for a signal, look once more, and wait. The mask
		// stays set while packets keep coming (Linux's batched mode).
		if !ch.in.UnmaskInterrupts() {
			select {
			case <-ch.readable:
			case <-ch.done:
			case <-ch.rescinded:
			case <-ctx.Done():
				return proto.Packet{}, ch.errorf("receive", context.Cause(ctx))
			}
		}
		ch.in.MaskInterrupts()
	}
}

func (ch *Channel) errorf(op string, err error) error {
	return fmt.Errorf("vmbus/client: relid %d: %s: %w", ch.offer.ChildRelID, op, err)
}
