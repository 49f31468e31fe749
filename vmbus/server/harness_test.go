package server

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"gohv/hv/tlfs"
	"gohv/vmbus/proto"
	"gohv/vmbus/ring"
)

// fakeHost is a partition of ramPages pages whose guest the test plays.
type fakeHost struct {
	ram  []byte
	vps  uint32
	msgs chan posted

	mu      sync.Mutex
	bound   map[uint32]bool
	busy    int // PostMessage says ErrBusy this many more times
	signals map[uint32]int
	sigVP   map[uint32]uint32
	sig     chan uint32
}

type posted struct {
	vp      uint32
	payload []byte
}

func newFakeHost(pages int) *fakeHost {
	return &fakeHost{
		ram:     make([]byte, pages*proto.PageSize),
		vps:     2,
		msgs:    make(chan posted, 1024),
		bound:   map[uint32]bool{},
		signals: map[uint32]int{},
		sigVP:   map[uint32]uint32{},
		sig:     make(chan uint32, 1<<16),
	}
}

func (h *fakeHost) PostMessage(vp uint32, payload []byte) error {
	h.mu.Lock()
	if h.busy > 0 {
		h.busy--
		h.mu.Unlock()
		return fmt.Errorf("fake: %w", ErrBusy)
	}
	h.mu.Unlock()
	h.msgs <- posted{vp, append([]byte(nil), payload...)}
	return nil
}

func (h *fakeHost) Signal(vp, relid uint32) error {
	h.mu.Lock()
	h.signals[relid]++
	h.sigVP[relid] = vp
	h.mu.Unlock()
	select {
	case h.sig <- relid:
	default:
	}
	return nil
}

var errNotRAM = errors.New("fake: not RAM")

func (h *fakeHost) Page(pfn uint64) (*[proto.PageSize]byte, error) {
	if pfn >= uint64(len(h.ram)/proto.PageSize) {
		return nil, errNotRAM
	}
	return (*[proto.PageSize]byte)(h.ram[pfn*proto.PageSize:]), nil
}

func (h *fakeHost) VPCount() uint32 { return h.vps }

func (h *fakeHost) BindEvent(conn uint32) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.bound[conn] {
		return errors.New("fake: bound twice")
	}
	h.bound[conn] = true
	return nil
}

func (h *fakeHost) UnbindEvent(conn uint32) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.bound, conn)
}

func (h *fakeHost) isBound(conn uint32) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.bound[conn]
}

func (h *fakeHost) signalCount(relid uint32) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.signals[relid]
}

// guest plays the guest's VMBus driver by hand.
type guest struct {
	t    *testing.T
	s    *Server
	h    *fakeHost
	next uint64 // next free page
}

// start runs a server with the given devices over a fresh fake host.
func start(t *testing.T, cfg Config, devs ...Device) *guest {
	t.Helper()
	h := newFakeHost(512)
	s := New(h, cfg)
	for _, d := range devs {
		if _, err := s.AddDevice(d); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	go s.Run(ctx)
	t.Cleanup(func() { cancel(); s.Close() })
	return &guest{t: t, s: s, h: h, next: 16}
}

func (g *guest) post(m proto.Message) {
	g.t.Helper()
	b, err := proto.Marshal(m)
	if err != nil {
		g.t.Fatal(err)
	}
	if st := g.s.HandleMessage(0, proto.SynICMessageType, b); st != tlfs.StatusSuccess {
		g.t.Fatalf("post %v: status %v", m.Type(), st)
	}
}

// postWaiting posts m, retrying while the server's queue is full, as
// Linux does on HV_STATUS_INSUFFICIENT_BUFFERS: for the hundreds of
// GPADL_BODYs of a large GPADL.
func (g *guest) postWaiting(m proto.Message) {
	g.t.Helper()
	b, err := proto.Marshal(m)
	if err != nil {
		g.t.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Second); ; {
		switch st := g.s.HandleMessage(0, proto.SynICMessageType, b); {
		case st == tlfs.StatusSuccess:
			return
		case st != tlfs.StatusInsufficientBuffers || time.Now().After(deadline):
			g.t.Fatalf("post %v: status %v", m.Type(), st)
		}
		time.Sleep(50 * time.Microsecond)
	}
}

// recv is the next message the server posted.
func (g *guest) recv() proto.Message {
	g.t.Helper()
	select {
	case p := <-g.h.msgs:
		m, err := proto.ParseChannelMessage(p.payload)
		if err != nil {
			g.t.Fatalf("server posted a malformed message: %v", err)
		}
		return m
	case <-time.After(5 * time.Second):
		g.t.Fatal("no message from the server in 5 s")
		return nil
	}
}

// quiet checks the server posts nothing more for a while.
func (g *guest) quiet() {
	g.t.Helper()
	select {
	case p := <-g.h.msgs:
		m, _ := proto.ParseChannelMessage(p.payload)
		g.t.Fatalf("unexpected message %#v", m)
	case <-time.After(50 * time.Millisecond):
	}
}

func expect[T proto.Message](g *guest) T {
	g.t.Helper()
	m := g.recv()
	v, ok := m.(T)
	if !ok {
		var want T
		g.t.Fatalf("got %T %+v, want %T", m, m, want)
	}
	return v
}

// connect negotiates v and collects the offers.
func (g *guest) connect(v proto.Version) []proto.OfferChannel {
	g.t.Helper()
	g.post(proto.InitiateContact{VersionRequested: v, TargetVCPU: 0, MessageSINT: proto.MessageSINT})
	if r := expect[proto.VersionResponse](g); !r.VersionSupported {
		g.t.Fatalf("version %v refused", v)
	}
	g.post(proto.RequestOffers{})
	var offers []proto.OfferChannel
	for {
		switch m := g.recv().(type) {
		case proto.OfferChannel:
			offers = append(offers, m)
		case proto.AllOffersDelivered:
			return offers
		default:
			g.t.Fatalf("unexpected %T during offers", m)
		}
	}
}

// alloc takes n contiguous pages of guest RAM.
func (g *guest) alloc(n int) (pfns []uint64) {
	for i := 0; i < n; i++ {
		pfns = append(pfns, g.next)
		g.next++
	}
	return pfns
}

// gpadl creates a GPADL of one whole-page range over pfns, split into
// header and bodies as Linux does, and returns GPADL_CREATED's status.
func (g *guest) gpadl(relid, handle uint32, pfns []uint64) uint32 {
	g.t.Helper()
	arr, err := proto.AppendGPARange(nil, uint32(len(pfns))*proto.PageSize, 0, pfns)
	if err != nil {
		g.t.Fatal(err)
	}
	hdr, bodies, err := proto.SplitGPADL(relid, handle, 1, arr)
	if err != nil {
		g.t.Fatal(err)
	}
	g.post(hdr)
	for _, b := range bodies {
		g.postWaiting(b)
	}
	c := expect[proto.GPADLCreated](g)
	if c.ChildRelID != relid || c.GPADL != handle {
		g.t.Fatalf("GPADL_CREATED for %d/%d, want %d/%d", c.ChildRelID, c.GPADL, relid, handle)
	}
	return c.CreationStatus
}

// heldPages is the server's count of the pages its GPADLs name, read on
// Run's goroutine once the messages posted so far are handled.
func (g *guest) heldPages() int {
	g.t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		ch := make(chan int, 1)
		g.s.do(func() {
			if len(g.s.in) > 0 {
				ch <- -1
				return
			}
			ch <- g.s.gpadlPages
		})
		select {
		case n := <-ch:
			if n >= 0 {
				return n
			}
		case <-g.s.stopped:
			g.t.Fatal("the server stopped")
		}
	}
	g.t.Fatal("the server did not drain its queue in 5 s")
	return 0
}

// guestRings are the guest's ends of an open channel's rings.
type guestRings struct {
	out *ring.Sender   // guest to host
	in  *ring.Receiver // host to guest
}

// open makes a GPADL of sendPages+recvPages pages for relid, opens the
// channel on it and returns OPENCHANNEL_RESULT's status and the rings.
func (g *guest) open(off proto.OfferChannel, handle uint32, sendPages, recvPages int) (uint32, *guestRings) {
	g.t.Helper()
	pfns := g.alloc(sendPages + recvPages)
	mem := func(p []uint64) *ring.FlatMemory {
		m, err := ring.NewFlatMemory(g.h.ram[p[0]*proto.PageSize : (p[len(p)-1]+1)*proto.PageSize])
		if err != nil {
			g.t.Fatal(err)
		}
		if err := ring.Init(m); err != nil {
			g.t.Fatal(err)
		}
		return m
	}
	outMem, inMem := mem(pfns[:sendPages]), mem(pfns[sendPages:])
	if st := g.gpadl(off.ChildRelID, handle, pfns); st != 0 {
		g.t.Fatalf("GPADL refused: %#x", st)
	}
	g.post(proto.OpenChannel{ChildRelID: off.ChildRelID, OpenID: off.ChildRelID, RingBufferGPADL: handle,
		TargetVP: 1, DownstreamRingBufferPageOffset: uint32(sendPages)})
	r := expect[proto.OpenChannelResult](g)
	if r.ChildRelID != off.ChildRelID || r.OpenID != off.ChildRelID {
		g.t.Fatalf("OPENCHANNEL_RESULT for %d/%d", r.ChildRelID, r.OpenID)
	}
	if r.Status != 0 {
		return r.Status, nil
	}
	conn := off.ConnectionID
	out, err := ring.NewSender(outMem, func() { g.s.HandleEvent(conn) })
	if err != nil {
		g.t.Fatal(err)
	}
	in, err := ring.NewReceiver(inMem, func() { g.s.HandleEvent(conn) })
	if err != nil {
		g.t.Fatal(err)
	}
	return 0, &guestRings{out: out, in: in}
}

// sendInband writes one in-band packet from the guest.
func (r *guestRings) sendInband(t *testing.T, tid uint64, payload []byte) {
	t.Helper()
	hdr, err := proto.AppendInbandHeader(nil, proto.PacketFlagCompletionRequested, tid, len(payload))
	if err != nil {
		t.Fatal(err)
	}
	if err := r.out.Write(hdr, payload); err != nil {
		t.Fatal(err)
	}
}

// read waits for the next host packet.
func (r *guestRings) read(t *testing.T) proto.Packet {
	t.Helper()
	buf := make([]byte, 8192)
	deadline := time.Now().Add(5 * time.Second)
	for {
		n, err := r.in.Read(buf)
		if err == nil {
			p, err := proto.ParsePacket(buf[:n])
			if err != nil {
				t.Fatal(err)
			}
			return p
		}
		if !errors.Is(err, ring.ErrEmpty) {
			t.Fatal(err)
		}
		if time.Now().After(deadline) {
			t.Fatal("no packet from the host in 5 s")
		}
		time.Sleep(100 * time.Microsecond)
	}
}

// echo is a device that answers every packet with a completion carrying
// the same bytes.
type echo struct {
	typ     proto.GUID
	mu      sync.Mutex
	opens   int
	closes  []error
	refuse  bool
	panicOn string
	last    *Channel // the latest open's
}

func (e *echo) Offer() Offer {
	return Offer{InterfaceType: e.typ, InterfaceInstance: proto.MustParseGUID("11111111-2222-3333-4444-555555555555")}
}

func (e *echo) Open(ch *Channel) (Handler, error) {
	if e.refuse {
		return nil, errors.New("refused")
	}
	e.mu.Lock()
	e.opens++
	e.last = ch
	e.mu.Unlock()
	return &echoHandler{e: e, ch: ch}, nil
}

func (e *echo) closeErrs() []error {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]error(nil), e.closes...)
}

type echoHandler struct {
	e  *echo
	ch *Channel
}

func (h *echoHandler) Packet(p *proto.Packet) error {
	if h.e.panicOn != "" && string(p.Payload[:len(h.e.panicOn)]) == h.e.panicOn {
		panic("echo: asked to panic")
	}
	if string(p.Payload[:4]) == "fail" {
		return errors.New("echo: asked to fail")
	}
	return h.ch.SendCompletion(p.TransactionID, p.Payload)
}

func (h *echoHandler) Close(err error) {
	h.e.mu.Lock()
	h.e.closes = append(h.e.closes, err)
	h.e.mu.Unlock()
}

// waitFor polls cond for up to 5 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}
