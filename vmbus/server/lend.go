package server

import (
	"errors"
	"fmt"

	"gohv/vmbus/proto"
)

// This file: GPADLs lent to a channel's Handler — the buffers a device
// shares with its guest beside the rings (netvsc's receive and send
// buffers, netvsc-facts §5), named by handle in the device's own protocol.

// LentGPADL is a GPADL the server lent to an open channel's Handler: the
// host views of its pages, in the order the guest listed them, and its
// byte length. The pages are the guest's RAM, checked when the GPADL was
// created; the Handler reads and writes them only until it gives the
// GPADL back (Channel.ReturnGPADL) or the channel closes, whichever is
// first. Every byte in them is guest-controlled and may change under the
// host at any time.
type LentGPADL struct {
	Handle uint32
	Pages  []*[proto.PageSize]byte
	// WholePages: every range covers whole pages, so byte i of the
	// buffer is Pages[i/PageSize][i%PageSize]. A device that indexes
	// its buffer by byte refuses a GPADL without it.
	WholePages bool
}

// Len is the buffer's length in bytes when it is of whole pages.
func (l LentGPADL) Len() int { return len(l.Pages) * proto.PageSize }

// errNotLendable is wrapped by BorrowGPADL's refusals.
var errNotLendable = errors.New("vmbus/server: GPADL cannot be lent")

// BorrowGPADL lends the channel's Handler the GPADL handle, which the
// guest created for this channel's relid and which neither holds rings
// nor is lent already. Call it from the Handler's Packet (the device's
// protocol named the handle: guest-controlled, checked here). It waits
// for the server's goroutine; it returns ErrClosed when the channel
// closes meanwhile.
//
// While lent, a GPADL_TEARDOWN of it closes the channel first (with the
// reason), as for a ring GPADL, so the guest never reuses pages the host
// still writes; a guest that revokes the buffer in its own protocol gets
// it back through ReturnGPADL. Closing the channel returns every GPADL it
// borrowed.
func (c *Channel) BorrowGPADL(handle uint32) (LentGPADL, error) {
	type answer struct {
		l   LentGPADL
		err error
	}
	reply := make(chan answer, 1)
	if err := c.request(func() {
		l, err := c.s.lend(c, handle)
		reply <- answer{l, err}
	}); err != nil {
		return LentGPADL{}, err
	}
	select {
	case a := <-reply:
		return a.l, a.err
	case <-c.stop:
		return LentGPADL{}, ErrClosed
	}
}

// ReturnGPADL gives back a GPADL BorrowGPADL lent: the Handler no longer
// touches its pages. Returning one the channel does not hold does
// nothing. It does not wait for the server's goroutine.
func (c *Channel) ReturnGPADL(handle uint32) {
	_ = c.request(func() {
		if g := c.s.gpadls[handle]; g != nil && g.borrower == c {
			g.borrower = nil
		}
	})
}

// request queues f for the server's goroutine unless the channel or the
// server stops first. From the channel's goroutine, which Run may be
// waiting for (close waits for it), so it selects on the channel's stop.
func (c *Channel) request(f func()) error {
	select {
	case c.s.requests <- f:
		return nil
	case <-c.stop:
		return ErrClosed
	case <-c.s.done:
		return ErrClosed
	}
}

// lend is BorrowGPADL on Run's goroutine. Guest-controlled: handle.
func (s *Server) lend(c *Channel, handle uint32) (LentGPADL, error) {
	if c.closed.Load() {
		return LentGPADL{}, ErrClosed
	}
	g := s.gpadls[handle]
	switch {
	case g == nil || !g.complete:
		return LentGPADL{}, fmt.Errorf("%w: relid %d: gpadl %d: no such GPADL", errNotLendable, c.relid, handle)
	case g.relid != c.relid:
		return LentGPADL{}, fmt.Errorf("%w: relid %d: gpadl %d belongs to relid %d", errNotLendable, c.relid, handle, g.relid)
	case g.user != nil:
		return LentGPADL{}, fmt.Errorf("%w: relid %d: gpadl %d holds the channel's rings", errNotLendable, c.relid, handle)
	case g.borrower != nil:
		return LentGPADL{}, fmt.Errorf("%w: relid %d: gpadl %d is lent already", errNotLendable, c.relid, handle)
	}
	g.borrower = c
	return LentGPADL{Handle: handle, Pages: g.pages, WholePages: g.wholePages}, nil
}

// returnLent takes back every GPADL c borrowed. Run's goroutine, when c
// closes.
func (s *Server) returnLent(c *Channel) {
	for _, g := range s.gpadls {
		if g.borrower == c {
			g.borrower = nil
		}
	}
}
