package vmbustest

import (
	"sync"

	"gohv/vmbus/proto"
	"gohv/vmbus/server"
)

// Echo is a device that answers every packet with its payload: a
// completion echoing the transaction ID when the guest asked for one,
// else an in-band packet with the same transaction ID. A GPA-direct
// packet is answered with a completion carrying the bytes its ranges
// name, read from RAM.
type Echo struct {
	Type, Instance proto.GUID
	RAM            *RAM

	mu     sync.Mutex
	opens  int
	closes []error
}

// Offer implements server.Device.
func (e *Echo) Offer() server.Offer {
	return server.Offer{InterfaceType: e.Type, InterfaceInstance: e.Instance}
}

// Open implements server.Device.
func (e *Echo) Open(ch *server.Channel) (server.Handler, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.opens++
	return &echoHandler{e: e, ch: ch}, nil
}

// Opens is how often the channel was opened; Closes why each open ended
// (nil for the guest's close).
func (e *Echo) Opens() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.opens
}

func (e *Echo) Closes() []error {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]error(nil), e.closes...)
}

type echoHandler struct {
	e   *Echo
	ch  *server.Channel
	buf []byte
}

func (h *echoHandler) Packet(p *proto.Packet) error {
	switch p.Type {
	case proto.PktDataUsingGPADirect:
		h.buf = h.buf[:0]
		for r := range p.Ranges.All() {
			off, left := uint64(r.ByteOffset), uint64(r.ByteCount)
			for i := range r.PageCount() {
				n := min(proto.PageSize-off, left)
				pg, err := h.e.RAM.Page(r.PFN(i))
				if err != nil {
					return err
				}
				h.buf = append(h.buf, pg[off:off+n]...)
				off, left = 0, left-n
			}
		}
		return h.ch.SendCompletion(p.TransactionID, h.buf)
	case proto.PktDataInband:
		if p.CompletionRequested() {
			return h.ch.SendCompletion(p.TransactionID, p.Payload)
		}
		return h.ch.SendInband(0, p.TransactionID, p.Payload)
	}
	return nil // completions and the rest: nothing to answer
}

func (h *echoHandler) Close(err error) {
	h.e.mu.Lock()
	defer h.e.mu.Unlock()
	h.e.closes = append(h.e.closes, err)
}
