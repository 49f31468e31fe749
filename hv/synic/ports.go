package synic

import (
	"errors"
	"fmt"
	"maps"
	"sync"
	"sync/atomic"

	"gohv/hv/tlfs"
)

// This file: ports and connections (TLFS "Ports and Connections"). A
// partition that serves something owns a port; a partition that uses it holds
// a connection to it. Ports is one partition's table of connections: the
// connection IDs its guest may name in HvCallPostMessage and
// HvCallSignalEvent, each bound to a port that the root serves with a Go
// handler or that a partition's SynIC owns (a SINT, and for events a range of
// flags). A connection ID a partition's table does not hold, another
// partition's included, is HV_STATUS_INVALID_CONNECTION_ID.

// MessageHandler serves a root-owned message port. payload is valid only
// during the call (it is the guest's input page); the returned status is
// the hypercall's, as it is: HV_STATUS_INSUFFICIENT_BUFFERS when the
// handler's own queue is full, which a Linux guest retries. Called on the
// posting VP's thread with no lock of this package held; must not block
// for long and must not allocate if the hypercall path is to stay
// allocation-free.
type MessageHandler interface {
	Message(vp uint32, typ tlfs.MessageType, payload []byte) tlfs.Status
}

// EventHandler serves a root-owned event port. A root port takes every flag
// number: flag is the guest's FlagNumber, and refusing one it does not serve
// (HV_STATUS_INVALID_PARAMETER, TLFS "HvCallSignalEvent") is the handler's
// call. Same calling rules as MessageHandler.
type EventHandler interface {
	Event(vp uint32, flag uint16) tlfs.Status
}

// Ports maps a partition's connection IDs to ports. The zero value is an
// empty table. Safe for concurrent use: lookups take no lock (the table
// is copied on Add and Remove, which are rare), so a call that looked a
// connection up just before Remove returned may still reach its port.
type Ports struct {
	mu    sync.Mutex // serialises Add and Remove
	table atomic.Pointer[map[uint32]*port]
}

// port is one port and how a connection reaches it.
type port struct {
	id uint32 // the port ID: the connection ID that names it (gohv binds one connection per port)

	message MessageHandler // root message port
	event   EventHandler   // root event port

	// A partition's SynIC port: messages to target's SINT, or events to
	// its flags [flagBase, flagBase+flagCount).
	target              *SynIC
	sint                uint8
	isEvent             bool
	flagBase, flagCount uint16
}

// Errors of Add.
var (
	ErrConnectionInUse = errors.New("synic: connection ID already bound")
	ErrConnectionID    = errors.New("synic: connection ID above 24 bits")
	ErrPort            = errors.New("synic: invalid port: no handler or target, SINT above 15, or flags outside 0-2047")
)

// AddMessagePort binds connection conn to a message port the root serves
// with h.
func (p *Ports) AddMessagePort(conn uint32, h MessageHandler) error {
	if h == nil {
		return ErrPort
	}
	return p.add(conn, &port{message: h})
}

// AddEventPort binds connection conn to an event port the root serves
// with h.
func (p *Ports) AddEventPort(conn uint32, h EventHandler) error {
	if h == nil {
		return ErrPort
	}
	return p.add(conn, &port{event: h, isEvent: true})
}

// AddSynICMessagePort binds connection conn to a message port that
// target's SINT sint owns: messages posted to it are target.Post calls
// with the port ID as the sender.
func (p *Ports) AddSynICMessagePort(conn uint32, target *SynIC, sint uint8) error {
	if target == nil || sint >= tlfs.SINTCount {
		return ErrPort
	}
	return p.add(conn, &port{target: target, sint: sint})
}

// AddSynICEventPort binds connection conn to an event port that target's SINT
// sint owns, with flagCount flags from flagBase (TLFS "Ports and
// Connections"): the guest's FlagNumber f sets flag flagBase+f, and f >=
// flagCount is HV_STATUS_INVALID_PARAMETER.
func (p *Ports) AddSynICEventPort(conn uint32, target *SynIC, sint uint8, flagBase, flagCount uint16) error {
	if target == nil || sint >= tlfs.SINTCount || flagCount == 0 || int(flagBase)+int(flagCount) > tlfs.EventFlagsPerSINT {
		return ErrPort
	}
	return p.add(conn, &port{target: target, sint: sint, isEvent: true, flagBase: flagBase, flagCount: flagCount})
}

func (p *Ports) add(conn uint32, pt *port) error {
	if conn&^tlfs.ConnectionIDMask != 0 {
		return fmt.Errorf("%w: %#x", ErrConnectionID, conn)
	}
	pt.id = conn
	p.mu.Lock()
	defer p.mu.Unlock()
	var next map[uint32]*port
	if old := p.table.Load(); old != nil {
		if _, ok := (*old)[conn]; ok {
			return fmt.Errorf("%w: %#x", ErrConnectionInUse, conn)
		}
		next = maps.Clone(*old)
	} else {
		next = map[uint32]*port{}
	}
	next[conn] = pt
	p.table.Store(&next)
	return nil
}

// Remove unbinds connection conn, if bound. Messages its port's SynIC has
// queued stay queued (TLFS "Reliability and Sequencing of Guest Message
// Buffers": breaking a connection does not affect undelivered messages).
func (p *Ports) Remove(conn uint32) {
	p.mu.Lock()
	defer p.mu.Unlock()
	old := p.table.Load()
	if old == nil {
		return
	}
	if _, ok := (*old)[conn]; !ok {
		return
	}
	next := maps.Clone(*old)
	delete(next, conn)
	p.table.Store(&next)
}

func (p *Ports) lookup(conn uint32) *port {
	t := p.table.Load()
	if t == nil {
		return nil
	}
	return (*t)[conn]
}

// PostMessage is HvCallPostMessage from VP vp of the partition (TLFS
// 11.10.1), its input already decoded by tlfs.ParsePostMessageInput: the
// status the hypercall returns. Type 0, a type with bit 31 set or a
// payload above 240 bytes is INVALID_PARAMETER; an unknown connection
// INVALID_CONNECTION_ID (what Linux expects to refuse a VMBus version);
// an event port INVALID_PORT_ID; otherwise the root handler's status, or
// for a SynIC port the outcome of Post (see Status). Any goroutine; does
// not allocate.
func (p *Ports) PostMessage(vp uint32, in tlfs.PostMessageInput) tlfs.Status {
	if in.Type == tlfs.MessageTypeNone || in.Type&tlfs.MessageTypeHypervisorMask != 0 || len(in.Payload) > tlfs.MessagePayloadSize {
		return tlfs.StatusInvalidParameter
	}
	pt := p.lookup(in.ConnectionID)
	switch {
	case pt == nil:
		return tlfs.StatusInvalidConnectionID
	case pt.isEvent:
		return tlfs.StatusInvalidPortID
	case pt.message != nil:
		return pt.message.Message(vp, in.Type, in.Payload)
	}
	return Status(pt.target.Post(pt.sint, in.Type, uint64(pt.id), in.Payload))
}

// SignalEvent is HvCallSignalEvent from VP vp of the partition (TLFS
// 11.10.2): the status the hypercall returns. An unknown connection is
// INVALID_CONNECTION_ID, a message port INVALID_PORT_ID; a root port's
// handler answers for itself; a SynIC port refuses a flag number beyond
// its count with INVALID_PARAMETER, else it is the outcome of Signal (see
// Status). Any goroutine; does not allocate.
func (p *Ports) SignalEvent(vp uint32, in tlfs.SignalEventInput) tlfs.Status {
	pt := p.lookup(in.ConnectionID)
	switch {
	case pt == nil:
		return tlfs.StatusInvalidConnectionID
	case !pt.isEvent:
		return tlfs.StatusInvalidPortID
	case pt.event != nil:
		return pt.event.Event(vp, in.FlagNumber)
	case in.FlagNumber >= pt.flagCount:
		return tlfs.StatusInvalidParameter
	}
	_, err := pt.target.Signal(pt.sint, uint32(pt.flagBase)+uint32(in.FlagNumber))
	return Status(err)
}
