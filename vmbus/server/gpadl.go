package server

import (
	"errors"
	"fmt"

	"gohv/vmbus/proto"
)

// This file: GPADLs (guest physical address descriptor lists), the guest
// memory a channel's rings and buffers live in. Run's goroutine only.

// Bounds on what one guest may make the server hold.
const (
	// MaxGPADLs is how many GPADLs a connection may have at once.
	MaxGPADLs = 1024
	// MaxPendingGPADLs is how many may be incomplete (waiting for
	// bodies) at once.
	MaxPendingGPADLs = 16
	// MaxGPADLPages is how many pages a connection's GPADLs may name
	// together, established and pending: 16384 pages, 64 MiB of guest
	// memory. The root holds a host view (8 bytes) per page, so at most
	// 128 KiB per partition, where without it 1024 GPADLs of up to 8190
	// PFNs each (range_buflen is 16 bits) could make it hold 64 MiB.
	//
	// The bound is the partition's, not a channel's: the GPADLs live in
	// one table per connection, the guest picks any offered relid for
	// each, and a per-channel bound would let it multiply the budget by
	// MaxChannels. One channel's GPADLs can crowd out another's only
	// within the same guest.
	//
	// What Linux 6.1 makes, in pages (netvsc-facts.md §1, §4;
	// linux-guest-hyperv-facts.md §5.1): hv_netvsc a 256-page ring, a
	// receive buffer of 4096 (16 MiB; 7936 at ethtool's 31 MiB maximum)
	// and a send buffer of 255, and with vRSS a 256-page ring per
	// sub-channel (8 channels by default); hv_storvsc a 64-page ring per
	// controller; hv_utils 8 per integration service. One NIC at its
	// maximum receive buffer with 8 channels, 10239 pages, or two at
	// their defaults with 8 channels each, 12798, fit with the SCSI
	// controllers and the integration services beside them.
	MaxGPADLPages = 16384
)

// errGPADLPages is wrapped by the refusal of a GPADL that would take the
// connection's GPADLs past their page limit.
var errGPADLPages = errors.New("vmbus/server: GPADL page limit reached")

// gpadl is one GPADL the guest described.
type gpadl struct {
	handle, relid uint32
	count         uint16 // ranges
	want          int    // range_buflen: bytes of the whole range array
	data          []byte // the array so far
	complete      bool
	// npages is the number of PFNs range_buflen leaves room for after
	// count range headers, taken from the connection's budget when the
	// header arrives and given back when the GPADL goes. A range array
	// that parses uses every byte, 8 per range header and 8 per PFN, so
	// an established GPADL's len(pages) is exactly npages.
	npages int
	// pages are the host views of every page of every range, in order.
	pages []*[proto.PageSize]byte
	// wholePages is true when every range covers whole pages (offset 0,
	// a multiple of 4 KiB): the only kind a ring may live in.
	wholePages bool
	user       *Channel // the open channel whose rings these are
	// borrower is the open channel whose Handler holds the GPADL as a
	// buffer (BorrowGPADL); nil when none does.
	borrower *Channel
}

func (s *Server) pendingGPADLs() int {
	n := 0
	for _, g := range s.gpadls {
		if !g.complete {
			n++
		}
	}
	return n
}

// arrayPages is the number of PFNs a range array of count ranges in
// buflen bytes holds, if it parses: an upper bound on what it can map.
// Guest-controlled: count, buflen (16 bits each, so no overflow).
func arrayPages(count, buflen uint16) int {
	return max(0, int(buflen)-8*int(count)) / 8
}

func (s *Server) gpadlHeader(m proto.GPADLHeader) {
	fail := func(err error) {
		s.log.Warn("vmbus: GPADL refused", "gpadl", m.GPADL, "relid", m.ChildRelID, "err", err)
		s.send(proto.GPADLCreated{ChildRelID: m.ChildRelID, GPADL: m.GPADL, CreationStatus: statusUnsuccessful})
	}
	if err := s.admitGPADL(m); err != nil {
		fail(err)
		return
	}
	g := &gpadl{handle: m.GPADL, relid: m.ChildRelID, count: m.RangeCount, want: int(m.RangeBufLen),
		npages: arrayPages(m.RangeCount, m.RangeBufLen)}
	s.gpadlPages += g.npages
	g.data = append(make([]byte, 0, g.want), m.Data...)
	s.gpadls[g.handle] = g
	if len(g.data) == g.want {
		s.finishGPADL(g)
	}
}

// admitGPADL checks a GPADL_HEADER against the connection's bounds
// before anything is allocated for it. Guest-controlled: m.
func (s *Server) admitGPADL(m proto.GPADLHeader) error {
	switch {
	case s.usable(m.ChildRelID) == nil:
		return fmt.Errorf("vmbus/server: gpadl %d: no offered channel has relid %d", m.GPADL, m.ChildRelID)
	case s.gpadls[m.GPADL] != nil:
		return fmt.Errorf("vmbus/server: gpadl %d: the handle is in use", m.GPADL)
	case len(s.gpadls) >= MaxGPADLs:
		return fmt.Errorf("vmbus/server: gpadl %d: more than %d GPADLs", m.GPADL, MaxGPADLs)
	case s.pendingGPADLs() >= MaxPendingGPADLs:
		return fmt.Errorf("vmbus/server: gpadl %d: more than %d GPADLs waiting for their bodies", m.GPADL, MaxPendingGPADLs)
	}
	if n := arrayPages(m.RangeCount, m.RangeBufLen); n > s.gpadlPageLimit-s.gpadlPages {
		return fmt.Errorf("vmbus/server: gpadl %d: %d pages with %d of %d held: %w",
			m.GPADL, n, s.gpadlPages, s.gpadlPageLimit, errGPADLPages)
	}
	return nil
}

func (s *Server) gpadlBody(m proto.GPADLBody) {
	g := s.gpadls[m.GPADL]
	if g == nil || g.complete {
		s.log.Warn("vmbus: GPADL_BODY for no GPADL waiting for one; dropped", "gpadl", m.GPADL)
		return
	}
	if len(g.data)+len(m.Data) > g.want {
		s.forgetGPADL(g)
		s.log.Warn("vmbus: GPADL refused", "gpadl", g.handle, "relid", g.relid,
			"err", fmt.Errorf("vmbus/server: gpadl %d: bodies carry more than range_buflen %d bytes", g.handle, g.want))
		s.send(proto.GPADLCreated{ChildRelID: g.relid, GPADL: g.handle, CreationStatus: statusUnsuccessful})
		return
	}
	g.data = append(g.data, m.Data...)
	if len(g.data) == g.want {
		s.finishGPADL(g)
	}
}

// finishGPADL validates a complete range array against the guest's
// memory and answers GPADL_CREATED.
func (s *Server) finishGPADL(g *gpadl) {
	err := s.mapGPADL(g)
	status := uint32(0)
	if err != nil {
		s.forgetGPADL(g)
		status = statusUnsuccessful
		s.log.Warn("vmbus: GPADL refused", "gpadl", g.handle, "relid", g.relid, "err", err)
	}
	s.send(proto.GPADLCreated{ChildRelID: g.relid, GPADL: g.handle, CreationStatus: status})
}

func (s *Server) mapGPADL(g *gpadl) error {
	ranges, err := proto.ParseGPADLRanges(g.count, g.data)
	if err != nil {
		return fmt.Errorf("vmbus/server: gpadl %d: %w", g.handle, err)
	}
	// An array that parses names exactly npages PFNs; checked so that
	// nothing but the budget sizes the allocation below.
	if n := ranges.PageCount(); n > g.npages {
		return fmt.Errorf("vmbus/server: gpadl %d: %d pages, %d reserved: %w", g.handle, n, g.npages, errGPADLPages)
	}
	g.pages = make([]*[proto.PageSize]byte, 0, g.npages)
	g.wholePages = true
	for r := range ranges.All() {
		if r.ByteOffset != 0 || r.ByteCount%proto.PageSize != 0 {
			g.wholePages = false
		}
		for i := 0; i < r.PageCount(); i++ {
			pg, err := s.host.Page(r.PFN(i))
			if err != nil {
				return fmt.Errorf("vmbus/server: gpadl %d: page %d (pfn %#x): %w", g.handle, len(g.pages), r.PFN(i), err)
			}
			g.pages = append(g.pages, pg)
		}
	}
	g.data, g.complete = nil, true
	return nil
}

func (s *Server) gpadlTeardown(m proto.GPADLTeardown) {
	if g := s.gpadls[m.GPADL]; g != nil {
		if g.user != nil {
			s.log.Warn("vmbus: GPADL torn down under an open channel; closing it", "gpadl", g.handle, "relid", g.user.relid)
			g.user.close(fmt.Errorf("vmbus/server: relid %d: its ring GPADL %d was torn down while open", g.user.relid, g.handle))
		}
		if b := g.borrower; b != nil {
			s.log.Warn("vmbus: GPADL torn down while its channel's device uses it; closing the channel", "gpadl", g.handle, "relid", b.relid)
			b.close(fmt.Errorf("vmbus/server: relid %d: gpadl %d was torn down while its device used it", b.relid, g.handle))
		}
		s.forgetGPADL(g)
	} else {
		s.log.Warn("vmbus: GPADL_TEARDOWN of an unknown GPADL", "gpadl", m.GPADL)
	}
	s.send(proto.GPADLTorndown{GPADL: m.GPADL})
}

// dropGPADLs forgets the GPADLs of relid (its channel is closed).
func (s *Server) dropGPADLs(relid uint32) {
	for _, g := range s.gpadls {
		if g.relid == relid {
			s.forgetGPADL(g)
		}
	}
}

// forgetGPADL removes g from the table and gives its pages back to the
// connection's budget. Every GPADL leaves the table through here, but for
// reset's, which empties the table and the budget at once.
func (s *Server) forgetGPADL(g *gpadl) {
	delete(s.gpadls, g.handle)
	s.gpadlPages -= g.npages
}
