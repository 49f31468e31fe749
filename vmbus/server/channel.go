package server

import (
	"errors"
	"fmt"
	"runtime/debug"
	"sync"
	"sync/atomic"

	"gohv/vmbus/proto"
	"gohv/vmbus/ring"
)

// MaxInboundPacket bounds the packets a guest may send on a channel
// (descriptor through padding); a longer one closes the channel. It sizes
// the channel's receive buffer.
const MaxInboundPacket = 64 << 10

// Channel is one open channel: the host ends of its two rings in the
// guest's GPADL, and the goroutine that feeds the guest's packets to the
// Handler.
type Channel struct {
	s     *Server
	relid uint32
	dev   *device
	gpadl *gpadl

	// targetVP is where host-to-guest signals go
	// (proto.VPIndexDisableInterrupt: nowhere); MODIFYCHANNEL moves it.
	targetVP atomic.Uint32

	in       *ring.Receiver // the guest-to-host ring
	out      *ring.Sender   // the host-to-guest ring
	h        Handler
	buf      []byte
	onPacket func([]byte) error // c.packet, bound once so draining allocates nothing

	sendMu sync.Mutex // one sender at a time; held while the ring is written
	hdr    [proto.DescriptorSize]byte

	wake   chan struct{} // the guest signalled: data to read
	space  chan struct{} // the guest signalled: maybe room to write
	stop   chan struct{}
	done   chan struct{}
	closed atomic.Bool

	// Signals each way since the open: host-to-guest interrupts sent
	// (signalled) and the guest's HvCallSignalEvents on the channel
	// (kicked).
	signalled, kicked atomic.Uint64
}

// SignalCounts are how often the host interrupted the guest for the
// channel (through the SynIC event flags) and how often the guest
// signalled the host (HvCallSignalEvent), since the open.
func (c *Channel) SignalCounts() (toGuest, fromGuest uint64) {
	return c.signalled.Load(), c.kicked.Load()
}

// RelID is the channel's relid.
func (c *Channel) RelID() uint32 { return c.relid }

// Offer is the channel's offer.
func (c *Channel) Offer() Offer { return c.dev.offer }

func (c *Channel) String() string { return fmt.Sprintf("relid %d", c.relid) }

func (s *Server) openChannel(m proto.OpenChannel) {
	result := proto.OpenChannelResult{ChildRelID: m.ChildRelID, OpenID: m.OpenID, Status: statusUnsuccessful}
	c, err := s.newChannel(m)
	if err != nil {
		s.log.Warn("vmbus: open refused", "relid", m.ChildRelID, "gpadl", m.RingBufferGPADL, "err", err)
		s.send(result)
		return
	}
	h, err := c.dev.dev.Open(c)
	if err != nil {
		s.log.Warn("vmbus: device refused the open", "relid", m.ChildRelID, "err", err)
		s.send(result)
		return
	}
	c.h = h
	c.gpadl.user, c.dev.ch = c, c
	s.chans[c.relid].Store(c)
	result.Status = 0
	s.send(result)
	s.log.Debug("vmbus: channel open", "relid", c.relid, "target_vp", m.TargetVP)
	go c.run()
}

// newChannel maps the rings OPENCHANNEL describes. Guest-controlled: m.
func (s *Server) newChannel(m proto.OpenChannel) (*Channel, error) {
	d := s.usable(m.ChildRelID)
	switch {
	case d == nil:
		return nil, errors.New("no offered channel has that relid")
	case d.ch != nil:
		return nil, errors.New("the channel is open already")
	case !s.validTarget(m.TargetVP):
		return nil, fmt.Errorf("target VP %d is not the partition's", m.TargetVP)
	}
	g := s.gpadls[m.RingBufferGPADL]
	switch {
	case g == nil || !g.complete:
		return nil, errors.New("no such GPADL")
	case g.relid != m.ChildRelID:
		return nil, fmt.Errorf("the GPADL belongs to relid %d", g.relid)
	case g.user != nil:
		return nil, errors.New("the GPADL holds another open channel's rings")
	case !g.wholePages:
		return nil, errors.New("the GPADL's ranges are not whole pages")
	}
	off := int(m.DownstreamRingBufferPageOffset)
	if off < 2 || len(g.pages)-off < 2 {
		return nil, fmt.Errorf("rings of %d and %d pages in a %d-page GPADL: each needs a control page and a data page",
			off, len(g.pages)-off, len(g.pages))
	}
	c := &Channel{
		s: s, relid: d.relid, dev: d, gpadl: g,
		wake:  make(chan struct{}, 1),
		space: make(chan struct{}, 1),
		stop:  make(chan struct{}),
		done:  make(chan struct{}),
	}
	c.targetVP.Store(m.TargetVP)
	inMem, err := ring.NewPageMemory(slices(g.pages[:off]))
	if err != nil {
		return nil, fmt.Errorf("guest-to-host ring: %w", err)
	}
	outMem, err := ring.NewPageMemory(slices(g.pages[off:]))
	if err != nil {
		return nil, fmt.Errorf("host-to-guest ring: %w", err)
	}
	if c.in, err = ring.NewReceiver(inMem, c.signal); err != nil {
		return nil, fmt.Errorf("guest-to-host ring: %w", err)
	}
	if c.out, err = ring.NewSender(outMem, c.signal); err != nil {
		return nil, fmt.Errorf("host-to-guest ring: %w", err)
	}
	c.buf = make([]byte, min(MaxInboundPacket, inMem.Len()))
	c.onPacket = c.packet
	return c, nil
}

func slices(pages []*[proto.PageSize]byte) [][]byte {
	out := make([][]byte, len(pages))
	for i, p := range pages {
		out[i] = p[:]
	}
	return out
}

// signal interrupts the guest for this channel: its relid's event flag.
// Called by the rings on the goroutine that wrote or read; must not
// block or allocate.
func (c *Channel) signal() {
	vp := c.targetVP.Load()
	if vp == proto.VPIndexDisableInterrupt {
		return
	}
	if err := c.s.host.Signal(vp, c.relid); err != nil {
		c.s.signalFailed.Add(1)
		return
	}
	c.signalled.Add(1)
}

// kick wakes the channel's goroutine and any sender waiting for room.
// VP thread; must not block or allocate.
func (c *Channel) kick() {
	c.kicked.Add(1)
	select {
	case c.wake <- struct{}{}:
	default:
	}
	select {
	case c.space <- struct{}{}:
	default:
	}
}

// run drains the guest-to-host ring into the Handler until the channel
// closes or fails.
func (c *Channel) run() {
	defer close(c.done)
	defer func() {
		if r := recover(); r != nil {
			err := fmt.Errorf("vmbus/server: relid %d: panic in its device: %v\n%s", c.relid, r, debug.Stack())
			c.fail(err)
			if c.s.cfg.OnPanic != nil {
				c.s.cfg.OnPanic(err)
			}
		}
	}()
	for {
		if err := c.in.Drain(c.buf, c.onPacket); err != nil {
			if !c.closed.Load() {
				c.fail(fmt.Errorf("vmbus/server: relid %d: %w", c.relid, err))
			}
			return
		}
		select {
		case <-c.wake:
		case <-c.stop:
			return
		}
	}
}

// packet parses one guest packet and hands it to the Handler.
// Guest-controlled: p.
func (c *Channel) packet(p []byte) error {
	if c.closed.Load() {
		return ErrClosed
	}
	pkt, err := proto.ParsePacket(p)
	if err != nil {
		return err
	}
	return c.h.Packet(&pkt)
}

// fail asks Run's goroutine to rescind the channel. From the channel's
// own goroutine, which must not wait for Run (Run may be waiting for it).
func (c *Channel) fail(err error) {
	c.s.log.Warn("vmbus: channel failed; rescinding it", "relid", c.relid, "err", err)
	relid := c.relid
	go c.s.do(func() {
		if d := c.s.device(relid); d != nil && d.ch == c {
			c.s.rescind(relid, err)
		}
	})
}

// close stops the channel and closes its Handler. Run's goroutine.
func (c *Channel) close(err error) {
	if c.closed.Swap(true) {
		return
	}
	c.s.chans[c.relid].Store(nil)
	close(c.stop)
	<-c.done
	c.sendMu.Lock() // a Send in progress finishes writing; later ones see closed
	c.sendMu.Unlock()
	c.h.Close(err)
	c.gpadl.user, c.dev.ch = nil, nil
	c.s.returnLent(c)
}

// SendInband writes an in-band packet (proto.PktDataInband) to the guest.
func (c *Channel) SendInband(flags uint16, transactionID uint64, payload []byte) error {
	return c.send(proto.PktDataInband, flags, transactionID, payload)
}

// SendCompletion writes a completion packet (proto.PktComp) for the guest's
// transaction transactionID.
func (c *Channel) SendCompletion(transactionID uint64, payload []byte) error {
	return c.send(proto.PktComp, 0, transactionID, payload)
}

func (c *Channel) send(t proto.PacketType, flags uint16, tid uint64, payload []byte) error {
	c.sendMu.Lock()
	defer c.sendMu.Unlock()
	var hdr []byte
	var err error
	if t == proto.PktComp {
		hdr, err = proto.AppendCompletionHeader(c.hdr[:0], tid, len(payload))
	} else {
		hdr, err = proto.AppendInbandHeader(c.hdr[:0], flags, tid, len(payload))
	}
	if err != nil {
		return err
	}
	return c.writeLocked(hdr, payload)
}

// SendPacket writes a packet whose descriptor (and extension) header a
// proto.Append…Header function built. It waits while the guest's ring is
// full, until the guest makes room or the channel closes (ErrClosed). Safe
// for concurrent use; does not allocate.
func (c *Channel) SendPacket(header, payload []byte) error {
	c.sendMu.Lock()
	defer c.sendMu.Unlock()
	return c.writeLocked(header, payload)
}

func (c *Channel) writeLocked(header, payload []byte) error {
	for {
		if c.closed.Load() {
			return ErrClosed
		}
		err := c.out.Write(header, payload)
		if !errors.Is(err, ring.ErrFull) {
			if err != nil {
				return fmt.Errorf("vmbus/server: relid %d: send: %w", c.relid, err)
			}
			return nil
		}
		ok, err := c.out.RequestSpace(len(header) + len(payload))
		if err != nil {
			return fmt.Errorf("vmbus/server: relid %d: send: %w", c.relid, err)
		}
		if ok {
			continue
		}
		select {
		case <-c.space:
		case <-c.stop:
			return ErrClosed
		}
	}
}

// closeChannel is the guest's CLOSECHANNEL: no reply. A rescinded
// channel's close is expected and harmless.
func (s *Server) closeChannel(relid uint32) {
	d := s.device(relid)
	if d == nil || d.ch == nil {
		if d == nil || !d.rescinded {
			s.log.Warn("vmbus: CLOSECHANNEL for a channel not open", "relid", relid)
		}
		return
	}
	d.ch.close(nil)
	s.log.Debug("vmbus: channel closed", "relid", relid)
}
