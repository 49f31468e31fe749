package client_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gohv/hv/tlfs"
	"gohv/vmbus/client"
	"gohv/vmbus/proto"
	"gohv/vmbus/ring"
)

// This file: a scripted host that plays the server side as
// linux-guest-hyperv-facts.md §3–§5 describes it, one message at a time,
// over one fake guest RAM both ends see.

const (
	testTimeout = 10 * time.Second
	// ramBase is the first PFN of the fake RAM: frame 0 is never handed
	// out, so a zero PFN in a message is a bug.
	ramBase = 0x100
)

// fakeRAM is the guest's RAM: the client allocates from it through
// client.Memory, the host reaches the same bytes by PFN.
type fakeRAM struct {
	t     testing.TB
	mu    sync.Mutex
	mem   []byte
	free  []uint64 // a stack: pages come out in no particular address order
	inUse map[uint64]bool
}

func newFakeRAM(t testing.TB, pages int) *fakeRAM {
	r := &fakeRAM{t: t, mem: make([]byte, pages*proto.PageSize), inUse: make(map[uint64]bool)}
	// Interleave so that one allocation is never contiguous: the GPADL
	// must list every frame, not a base and a count.
	for i := pages - 1; i >= 0; i -= 2 {
		r.free = append(r.free, ramBase+uint64(i))
	}
	for i := pages - 2; i >= 0; i -= 2 {
		r.free = append(r.free, ramBase+uint64(i))
	}
	return r
}

func (r *fakeRAM) AllocPages(n int) ([]uint64, [][]byte, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if n <= 0 || n > len(r.free) {
		return nil, nil, fmt.Errorf("fake RAM: %d pages asked, %d free", n, len(r.free))
	}
	pfns := make([]uint64, n)
	pages := make([][]byte, n)
	for i := range pfns {
		pfn := r.free[len(r.free)-1]
		r.free = r.free[:len(r.free)-1]
		r.inUse[pfn] = true
		pfns[i] = pfn
		off := (pfn - ramBase) * proto.PageSize
		pages[i] = r.mem[off : off+proto.PageSize : off+proto.PageSize]
		// Dirty, as recycled memory is: the client must clear what
		// it needs clear.
		pages[i][0], pages[i][4], pages[i][8] = 0xa5, 0xa5, 0xa5
	}
	return pfns, pages, nil
}

func (r *fakeRAM) FreePages(pfns []uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, pfn := range pfns {
		if !r.inUse[pfn] {
			r.t.Errorf("fake RAM: page %#x freed but not allocated", pfn)
			continue
		}
		delete(r.inUse, pfn)
		r.free = append(r.free, pfn)
	}
}

// page is the host's view of guest page pfn.
func (r *fakeRAM) page(pfn uint64) ([]byte, error) {
	if pfn < ramBase || pfn-ramBase >= uint64(len(r.mem)/proto.PageSize) {
		return nil, fmt.Errorf("pfn %#x outside the guest's RAM", pfn)
	}
	r.mu.Lock()
	ok := r.inUse[pfn]
	r.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("pfn %#x not allocated by the guest", pfn)
	}
	off := (pfn - ramBase) * proto.PageSize
	return r.mem[off : off+proto.PageSize : off+proto.PageSize], nil
}

func (r *fakeRAM) used() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.inUse)
}

// posted is one message the client posted.
type posted struct {
	conn uint32
	msg  proto.Message
}

// fakeHost is the Transport: it queues what the client posts for the
// script and routes the client's signals to the channel the script
// serves.
type fakeHost struct {
	t    testing.TB
	ram  *fakeRAM
	msgs chan posted

	busy       atomic.Int32 // the next posts answer INSUFFICIENT_BUFFERS
	noConn4    atomic.Bool  // connection 4 does not exist
	postErrors atomic.Int32

	mu      sync.Mutex
	kicks   map[uint32]chan struct{} // per connection ID
	signals map[uint32]int
}

func newFakeHost(t testing.TB) *fakeHost {
	return &fakeHost{
		t: t, ram: newFakeRAM(t, 512), msgs: make(chan posted, 256),
		kicks: make(map[uint32]chan struct{}), signals: make(map[uint32]int),
	}
}

func (h *fakeHost) PostMessage(conn uint32, payload []byte) error {
	if len(payload) > proto.MaxMessageSize {
		h.t.Errorf("client posted %d bytes", len(payload))
		return client.Status(tlfs.StatusInvalidParameter)
	}
	if h.busy.Add(-1) >= 0 {
		return client.Status(tlfs.StatusInsufficientBuffers)
	}
	if conn == proto.MessageConnectionID4 && h.noConn4.Load() {
		return client.Status(tlfs.StatusInvalidConnectionID)
	}
	m, err := proto.ParseChannelMessage(payload)
	if err != nil {
		h.t.Errorf("client posted a malformed message: %v", err)
		return client.Status(tlfs.StatusInvalidParameter)
	}
	if !m.Type().FromGuest() {
		h.t.Errorf("client posted a host's message %v", m.Type())
	}
	select {
	case h.msgs <- posted{conn, m}:
		return nil
	default:
		return client.Status(tlfs.StatusInsufficientBuffers)
	}
}

func (h *fakeHost) SignalEvent(conn uint32) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.signals[conn]++
	if k := h.kicks[conn]; k != nil {
		select {
		case k <- struct{}{}:
		default:
		}
		return nil
	}
	return client.Status(tlfs.StatusInvalidConnectionID)
}

func (h *fakeHost) signalCount(conn uint32) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.signals[conn]
}

// next is the next message the client posted.
func (h *fakeHost) next(t testing.TB) posted {
	t.Helper()
	select {
	case p := <-h.msgs:
		return p
	case <-time.After(testTimeout):
		t.Fatal("host: the client posted nothing")
		panic("unreachable")
	}
}

// expect is the next message, which must be of type want.
func (h *fakeHost) expect(t testing.TB, want proto.MessageType) posted {
	t.Helper()
	p := h.next(t)
	if p.msg.Type() != want {
		t.Fatalf("host: client posted %v (%+v), want %v", p.msg.Type(), p.msg, want)
	}
	return p
}

// quiet checks that the client posts nothing for a while.
func (h *fakeHost) quiet(t testing.TB) {
	t.Helper()
	select {
	case p := <-h.msgs:
		t.Fatalf("host: client posted %v (%+v), want nothing", p.msg.Type(), p.msg)
	case <-time.After(50 * time.Millisecond):
	}
}

// send delivers m to the client as the SynIC would.
func send(t testing.TB, c *client.Client, m proto.Message) {
	t.Helper()
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.DeliverMessage(b); err != nil {
		t.Fatalf("client refused %v: %v", m.Type(), err)
	}
}

// async runs f on a goroutine; the result comes on the channel.
func async(f func() error) <-chan error {
	done := make(chan error, 1)
	go func() { done <- f() }()
	return done
}

func wait(t testing.TB, done <-chan error) error {
	t.Helper()
	select {
	case err := <-done:
		return err
	case <-time.After(testTimeout):
		t.Fatal("the client call did not return")
		return nil
	}
}

func testContext(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

// testOffer is offer relid of a SCSI controller, as gohv offers it.
func testOffer(relid uint32) proto.OfferChannel {
	return proto.OfferChannel{
		InterfaceType:      proto.SCSIGUID,
		InterfaceInstance:  proto.MustParseGUID(fmt.Sprintf("00000000-0000-0000-0000-%012x", relid)),
		ChildRelID:         relid,
		ConnectionID:       0x1_0000 + relid,
		DedicatedInterrupt: true,
	}
}

// connect scripts a connection at 5.3 with message connection 1 and the
// offers given.
func connect(t testing.TB, h *fakeHost, c *client.Client, offers ...proto.OfferChannel) {
	t.Helper()
	done := async(func() error { return c.Connect(testContext(t)) })
	p := h.expect(t, proto.ChannelMsgInitiateContact)
	if v := p.msg.(proto.InitiateContact).VersionRequested; v != proto.VersionWin10V5_3 {
		t.Fatalf("first version asked: %v", v)
	}
	send(t, c, proto.VersionResponse{VersionSupported: true, MessageConnectionID: 1})
	h.expect(t, proto.ChannelMsgRequestOffers)
	for _, o := range offers {
		send(t, c, o)
	}
	send(t, c, proto.AllOffersDelivered{})
	if err := wait(t, done); err != nil {
		t.Fatal(err)
	}
}

// hostChannel is the host's end of an open channel: the rings mapped
// from the GPADL, and a goroutine that serves them.
type hostChannel struct {
	ram         *fakeRAM
	relid, conn uint32
	gpadl       uint32
	pfns        []uint64
	offset      int
	outMem      ring.Memory    // guest to host
	inMem       ring.Memory    // host to guest
	send        *ring.Sender   // host to guest
	recv        *ring.Receiver // guest to host
	kick        chan struct{}
	stop        chan struct{}
	stopped     chan struct{}
}

// gpadlFromMessages reads a GPADL_HEADER and its bodies as a host does
// and checks them against Linux's layout.
func gpadlFromMessages(t testing.TB, h *fakeHost, relid uint32) (proto.GPADLHeader, []uint64, int) {
	t.Helper()
	hdr := h.expect(t, proto.ChannelMsgGPADLHeader).msg.(proto.GPADLHeader)
	if hdr.ChildRelID != relid || hdr.RangeCount != 1 {
		t.Fatalf("GPADL_HEADER %+v", hdr)
	}
	array := append([]byte(nil), hdr.Data...)
	bodies := 0
	for len(array) < int(hdr.RangeBufLen) {
		b := h.expect(t, proto.ChannelMsgGPADLBody).msg.(proto.GPADLBody)
		if b.GPADL != hdr.GPADL {
			t.Fatalf("GPADL_BODY for %#x inside GPADL %#x", b.GPADL, hdr.GPADL)
		}
		array = append(array, b.Data...)
		bodies++
	}
	ranges, err := proto.ParseGPADLRanges(hdr.RangeCount, array)
	if err != nil {
		t.Fatal(err)
	}
	var pfns []uint64
	for r := range ranges.All() {
		if r.ByteOffset != 0 || r.ByteCount != uint32(r.PageCount()*proto.PageSize) {
			t.Fatalf("ring GPADL range %+v is not whole pages", r)
		}
		for i := range r.PageCount() {
			pfns = append(pfns, r.PFN(i))
		}
	}
	return hdr, pfns, bodies
}

// open scripts Open of offer o with rings of send and recv pages, and
// starts serving the channel with serve (nil: echo).
func open(t testing.TB, h *fakeHost, c *client.Client, o client.Offer, sendPages, recvPages int, serve func(*hostChannel, *proto.Packet) error) (*client.Channel, *hostChannel) {
	t.Helper()
	var ch *client.Channel
	done := async(func() (err error) {
		ch, err = c.Open(testContext(t), o, sendPages, recvPages, nil)
		return err
	})
	hdr, pfns, _ := gpadlFromMessages(t, h, o.ChildRelID)
	if len(pfns) != sendPages+recvPages {
		t.Fatalf("GPADL of %d pages, want %d", len(pfns), sendPages+recvPages)
	}
	send(t, c, proto.GPADLCreated{ChildRelID: o.ChildRelID, GPADL: hdr.GPADL})
	om := h.expect(t, proto.ChannelMsgOpenChannel).msg.(proto.OpenChannel)
	want := proto.OpenChannel{ChildRelID: o.ChildRelID, OpenID: o.ChildRelID, RingBufferGPADL: hdr.GPADL, TargetVP: om.TargetVP, DownstreamRingBufferPageOffset: uint32(sendPages)}
	if om != want {
		t.Fatalf("OPENCHANNEL %+v, want %+v", om, want)
	}
	hc := mapChannel(t, h, c, o, hdr.GPADL, pfns, sendPages)
	go hc.run(t, c, serve)
	send(t, c, proto.OpenChannelResult{ChildRelID: o.ChildRelID, OpenID: om.OpenID})
	if err := wait(t, done); err != nil {
		t.Fatal(err)
	}
	if ch.GPADL() != hdr.GPADL || ch.RelID() != o.ChildRelID {
		t.Fatalf("channel: gpadl %#x relid %d", ch.GPADL(), ch.RelID())
	}
	return ch, hc
}

// mapChannel maps the rings of a GPADL as the host sees them.
func mapChannel(t testing.TB, h *fakeHost, c *client.Client, o client.Offer, gpadl uint32, pfns []uint64, offset int) *hostChannel {
	t.Helper()
	pages := make([][]byte, len(pfns))
	for i, pfn := range pfns {
		p, err := h.ram.page(pfn)
		if err != nil {
			t.Fatalf("GPADL page %d: %v", i, err)
		}
		pages[i] = p
	}
	out, err := ring.NewPageMemory(pages[:offset])
	if err != nil {
		t.Fatal(err)
	}
	in, err := ring.NewPageMemory(pages[offset:])
	if err != nil {
		t.Fatal(err)
	}
	relid := o.ChildRelID
	signal := func() { c.DeliverEvent(relid) }
	hc := &hostChannel{
		ram: h.ram, outMem: out, inMem: in, relid: relid, conn: o.ConnectionID, gpadl: gpadl, pfns: pfns, offset: offset,
		kick: make(chan struct{}, 1), stop: make(chan struct{}), stopped: make(chan struct{}),
	}
	// The guest initialised both rings before the GPADL: a host never
	// calls ring.Init.
	if out.LoadU32(ring.FeatureBitsOffset)&ring.FeatPendingSendSize == 0 || in.LoadU32(ring.FeatureBitsOffset)&ring.FeatPendingSendSize == 0 {
		t.Fatal("the client did not initialise its rings")
	}
	if hc.recv, err = ring.NewReceiver(out, signal); err != nil {
		t.Fatal(err)
	}
	if hc.send, err = ring.NewSender(in, signal); err != nil {
		t.Fatal(err)
	}
	h.mu.Lock()
	h.kicks[hc.conn] = hc.kick
	h.mu.Unlock()
	return hc
}

// run serves the guest-to-host ring until stop: each packet goes to
// serve, as a host's channel goroutine does.
func (hc *hostChannel) run(t testing.TB, c *client.Client, serve func(*hostChannel, *proto.Packet) error) {
	defer close(hc.stopped)
	if serve == nil {
		serve = echo
	}
	buf := make([]byte, 64<<10)
	for {
		n, err := hc.recv.Read(buf)
		if err == ring.ErrEmpty {
			if hc.recv.UnmaskInterrupts() {
				continue
			}
			select {
			case <-hc.kick:
			case <-hc.stop:
				return
			}
			hc.recv.MaskInterrupts()
			continue
		}
		if err != nil {
			t.Errorf("host: relid %d: %v", hc.relid, err)
			return
		}
		p, err := proto.ParsePacket(buf[:n])
		if err != nil {
			t.Errorf("host: relid %d: %v", hc.relid, err)
			return
		}
		if err := serve(hc, &p); err != nil {
			t.Errorf("host: relid %d: %v", hc.relid, err)
			return
		}
	}
}

// close stops serving: the host no longer touches the rings.
func (hc *hostChannel) close(h *fakeHost) {
	close(hc.stop)
	<-hc.stopped
	h.mu.Lock()
	delete(h.kicks, hc.conn)
	h.mu.Unlock()
}

// write sends a packet to the guest, waiting for room as a host does.
func (hc *hostChannel) write(header, payload []byte) error {
	for {
		err := hc.send.Write(header, payload)
		if err != ring.ErrFull {
			return err
		}
		ok, err := hc.send.RequestSpace(len(header) + len(payload))
		if err != nil {
			return err
		}
		if !ok {
			select {
			case <-hc.kick:
			case <-hc.stop:
				return errors.New("stopped while waiting for room")
			case <-time.After(testTimeout):
				return errors.New("no room in the guest's ring")
			}
		}
	}
}

// echo answers an in-band packet with the same payload: a completion if
// the guest asked for one, else an in-band packet with the same
// transaction ID. A GPA-direct packet is answered with a completion
// carrying the bytes of its ranges, read from guest memory.
func echo(hc *hostChannel, p *proto.Packet) error {
	payload := p.Payload
	if p.Type == proto.PktDataUsingGPADirect {
		payload = nil
		for r := range p.Ranges.All() {
			data, err := hc.readRange(r)
			if err != nil {
				return err
			}
			payload = append(payload, data...)
		}
	}
	var hdr []byte
	var err error
	if p.CompletionRequested() || p.Type == proto.PktDataUsingGPADirect {
		hdr, err = proto.AppendCompletionHeader(nil, p.TransactionID, len(payload))
	} else {
		hdr, err = proto.AppendInbandHeader(nil, 0, p.TransactionID, len(payload))
	}
	if err != nil {
		return err
	}
	return hc.write(hdr, payload)
}

// readRange reads a GPA range from guest memory.
func (hc *hostChannel) readRange(r proto.GPARange) ([]byte, error) {
	ram := hc.ram
	var out []byte
	off, left := int(r.ByteOffset), int(r.ByteCount)
	for i := range r.PageCount() {
		pg, err := ram.page(r.PFN(i))
		if err != nil {
			return nil, err
		}
		n := min(proto.PageSize-off, left)
		out = append(out, pg[off:off+n]...)
		off, left = 0, left-n
	}
	return out, nil
}
