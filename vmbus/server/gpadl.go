package server

import (
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
)

// gpadl is one GPADL the guest described.
type gpadl struct {
	handle, relid uint32
	count         uint16 // ranges
	want          int    // range_buflen: bytes of the whole range array
	data          []byte // the array so far
	complete      bool
	// pages are the host views of every page of every range, in order.
	pages []*[proto.PageSize]byte
	// wholePages is true when every range covers whole pages (offset 0,
	// a multiple of 4 KiB): the only kind a ring may live in.
	wholePages bool
	user       *Channel // the open channel whose rings these are
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

func (s *Server) gpadlHeader(m proto.GPADLHeader) {
	fail := func(why string) {
		s.log.Warn("vmbus: GPADL refused", "gpadl", m.GPADL, "relid", m.ChildRelID, "why", why)
		s.send(proto.GPADLCreated{ChildRelID: m.ChildRelID, GPADL: m.GPADL, CreationStatus: statusUnsuccessful})
	}
	switch {
	case s.usable(m.ChildRelID) == nil:
		fail("no offered channel has that relid")
		return
	case s.gpadls[m.GPADL] != nil:
		fail("the handle is in use")
		return
	case len(s.gpadls) >= MaxGPADLs:
		fail(fmt.Sprintf("more than %d GPADLs", MaxGPADLs))
		return
	case s.pendingGPADLs() >= MaxPendingGPADLs:
		fail(fmt.Sprintf("more than %d GPADLs waiting for their bodies", MaxPendingGPADLs))
		return
	}
	g := &gpadl{handle: m.GPADL, relid: m.ChildRelID, count: m.RangeCount, want: int(m.RangeBufLen)}
	g.data = append(make([]byte, 0, g.want), m.Data...)
	s.gpadls[g.handle] = g
	if len(g.data) == g.want {
		s.finishGPADL(g)
	}
}

func (s *Server) gpadlBody(m proto.GPADLBody) {
	g := s.gpadls[m.GPADL]
	if g == nil || g.complete {
		s.log.Warn("vmbus: GPADL_BODY for no GPADL waiting for one; dropped", "gpadl", m.GPADL)
		return
	}
	if len(g.data)+len(m.Data) > g.want {
		delete(s.gpadls, g.handle)
		s.log.Warn("vmbus: GPADL refused", "gpadl", g.handle, "why", fmt.Sprintf("bodies carry more than range_buflen %d bytes", g.want))
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
		delete(s.gpadls, g.handle)
		status = statusUnsuccessful
		s.log.Warn("vmbus: GPADL refused", "gpadl", g.handle, "relid", g.relid, "err", err)
	}
	s.send(proto.GPADLCreated{ChildRelID: g.relid, GPADL: g.handle, CreationStatus: status})
}

func (s *Server) mapGPADL(g *gpadl) error {
	ranges, err := proto.ParseGPADLRanges(g.count, g.data)
	if err != nil {
		return err
	}
	g.pages = make([]*[proto.PageSize]byte, 0, ranges.PageCount())
	g.wholePages = true
	for r := range ranges.All() {
		if r.ByteOffset != 0 || r.ByteCount%proto.PageSize != 0 {
			g.wholePages = false
		}
		for i := 0; i < r.PageCount(); i++ {
			pg, err := s.host.Page(r.PFN(i))
			if err != nil {
				return fmt.Errorf("page %d (pfn %#x): %w", len(g.pages), r.PFN(i), err)
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
		delete(s.gpadls, m.GPADL)
	} else {
		s.log.Warn("vmbus: GPADL_TEARDOWN of an unknown GPADL", "gpadl", m.GPADL)
	}
	s.send(proto.GPADLTorndown{GPADL: m.GPADL})
}

// dropGPADLs forgets the GPADLs of relid (its channel is closed).
func (s *Server) dropGPADLs(relid uint32) {
	for h, g := range s.gpadls {
		if g.relid == relid {
			delete(s.gpadls, h)
		}
	}
}
