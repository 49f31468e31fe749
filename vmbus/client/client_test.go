package client_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"gohv/vmbus/client"
	"gohv/vmbus/proto"
	"gohv/vmbus/ring"
)

// TestConnectNegotiatesLikeLinux: versions in Linux 6.1's order, one
// INITIATE_CONTACT at a time; 5.x on connection 4 with SINT 2, the rest
// on connection 1 with the interrupt page; after acceptance everything
// goes to connection 1 below 5.0.
func TestConnectNegotiatesLikeLinux(t *testing.T) {
	h := newFakeHost(t)
	c := client.New(h, h.ram, client.Config{VP: 1})
	done := async(func() error { return c.Connect(testContext(t)) })
	var monitor [2]uint64
	for i, v := range proto.Linux61Versions[:5] {
		p := h.expect(t, proto.ChannelMsgInitiateContact)
		m := p.msg.(proto.InitiateContact)
		if m.VersionRequested != v || m.TargetVCPU != 1 {
			t.Fatalf("contact %d: %+v, want version %v to VP 1", i, m, v)
		}
		if m.MonitorPage1 == 0 || m.MonitorPage2 == 0 || m.MonitorPage1 == m.MonitorPage2 || m.MonitorPage1%proto.PageSize != 0 {
			t.Fatalf("contact %d: monitor pages %#x %#x", i, m.MonitorPage1, m.MonitorPage2)
		}
		if i > 0 && (monitor != [2]uint64{m.MonitorPage1, m.MonitorPage2}) {
			t.Fatalf("contact %d: monitor pages moved", i)
		}
		monitor = [2]uint64{m.MonitorPage1, m.MonitorPage2}
		if v >= proto.VersionWin10V5 {
			if p.conn != proto.MessageConnectionID4 || m.MessageSINT != proto.MessageSINT || m.InterruptPage != 0 {
				t.Fatalf("contact %v: connection %d, %+v", v, p.conn, m)
			}
			h.quiet(t) // one at a time: nothing more before the response
			send(t, c, proto.VersionResponse{VersionSupported: false})
			continue
		}
		if p.conn != proto.MessageConnectionID || m.MessageSINT != 0 || m.InterruptPage == 0 || m.InterruptPage%proto.PageSize != 0 {
			t.Fatalf("contact %v: connection %d, %+v", v, p.conn, m)
		}
		// Below 5.0 the response's msg_conn_id means nothing (OpenVMM
		// echoes the version there); the client must ignore it.
		send(t, c, proto.VersionResponse{VersionSupported: true, MessageConnectionID: uint32(v)})
	}
	if p := h.expect(t, proto.ChannelMsgRequestOffers); p.conn != proto.MessageConnectionID {
		t.Fatalf("REQUESTOFFERS on connection %d", p.conn)
	}
	offers := []proto.OfferChannel{testOffer(1), testOffer(2)}
	offers[1].InterfaceType = proto.ShutdownGUID
	offers[1].ChannelFlags = proto.ChannelNamedPipeMode
	for _, o := range offers {
		send(t, c, o)
	}
	select {
	case err := <-done:
		t.Fatalf("Connect returned before ALLOFFERS_DELIVERED: %v", err)
	case <-time.After(20 * time.Millisecond):
	}
	send(t, c, proto.AllOffersDelivered{})
	if err := wait(t, done); err != nil {
		t.Fatal(err)
	}
	if c.Version() != proto.VersionWin10V4_1 || c.MessageConnectionID() != proto.MessageConnectionID {
		t.Fatalf("version %v, message connection %d", c.Version(), c.MessageConnectionID())
	}
	got := c.Offers()
	if len(got) != 2 || got[0].OfferChannel != offers[0] || got[1].OfferChannel != offers[1] {
		t.Fatalf("offers %v", got)
	}
	if err := c.Connect(testContext(t)); !errors.Is(err, client.ErrAlreadyConnected) {
		t.Fatalf("second Connect: %v", err)
	}
}

// TestConnectUsesMessageConnection: from 5.0 every message after the
// contact goes to the connection VERSION_RESPONSE names.
func TestConnectUsesMessageConnection(t *testing.T) {
	h := newFakeHost(t)
	c := client.New(h, h.ram, client.Config{})
	done := async(func() error { return c.Connect(testContext(t)) })
	h.expect(t, proto.ChannelMsgInitiateContact)
	send(t, c, proto.VersionResponse{VersionSupported: true, MessageConnectionID: 0x77})
	if p := h.expect(t, proto.ChannelMsgRequestOffers); p.conn != 0x77 {
		t.Fatalf("REQUESTOFFERS on connection %#x", p.conn)
	}
	send(t, c, proto.AllOffersDelivered{})
	if err := wait(t, done); err != nil {
		t.Fatal(err)
	}
	if c.Version() != proto.VersionWin10V5_3 || c.MessageConnectionID() != 0x77 {
		t.Fatalf("version %v, connection %#x", c.Version(), c.MessageConnectionID())
	}
}

// TestConnectRefusesMessageConnectionZero: a 5.x acceptance naming
// connection 0 cannot be used (Linux would post to it); Connect fails.
func TestConnectRefusesMessageConnectionZero(t *testing.T) {
	h := newFakeHost(t)
	c := client.New(h, h.ram, client.Config{})
	done := async(func() error { return c.Connect(testContext(t)) })
	h.expect(t, proto.ChannelMsgInitiateContact)
	send(t, c, proto.VersionResponse{VersionSupported: true})
	if err := wait(t, done); !errors.Is(err, client.ErrRefused) {
		t.Fatalf("Connect: %v", err)
	}
}

// TestConnectSkipsMissingConnection4: a host without connection 4 (QEMU)
// answers INVALID_CONNECTION_ID; the client goes down to 4.1 on
// connection 1 at once, as Linux does.
func TestConnectSkipsMissingConnection4(t *testing.T) {
	h := newFakeHost(t)
	h.noConn4.Store(true)
	c := client.New(h, h.ram, client.Config{})
	done := async(func() error { return c.Connect(testContext(t)) })
	p := h.expect(t, proto.ChannelMsgInitiateContact)
	if v := p.msg.(proto.InitiateContact).VersionRequested; v != proto.VersionWin10V4_1 || p.conn != 1 {
		t.Fatalf("first contact that got through: %v on %d", v, p.conn)
	}
	send(t, c, proto.VersionResponse{VersionSupported: true})
	h.expect(t, proto.ChannelMsgRequestOffers)
	send(t, c, proto.AllOffersDelivered{})
	if err := wait(t, done); err != nil {
		t.Fatal(err)
	}
}

// TestConnectRetriesBusy: INSUFFICIENT_BUFFERS is retried.
func TestConnectRetriesBusy(t *testing.T) {
	h := newFakeHost(t)
	h.busy.Store(5)
	c := client.New(h, h.ram, client.Config{})
	connect(t, h, c)
}

// TestConnectNoVersion: the host rejects everything; the connection pages
// go back.
func TestConnectNoVersion(t *testing.T) {
	h := newFakeHost(t)
	c := client.New(h, h.ram, client.Config{Versions: []proto.Version{proto.VersionWin10V5_2, proto.VersionWin8}})
	done := async(func() error { return c.Connect(testContext(t)) })
	for range 2 {
		h.expect(t, proto.ChannelMsgInitiateContact)
		send(t, c, proto.VersionResponse{})
	}
	if err := wait(t, done); !errors.Is(err, client.ErrNoVersion) {
		t.Fatalf("Connect: %v", err)
	}
	if n := h.ram.used(); n != 0 {
		t.Fatalf("%d pages still allocated", n)
	}
	if c.Version() != 0 {
		t.Fatal("connected")
	}
}

// TestConnectTimesOut: no response, no infinite wait.
func TestConnectTimesOut(t *testing.T) {
	h := newFakeHost(t)
	c := client.New(h, h.ram, client.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	if err := c.Connect(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Connect: %v", err)
	}
	// A late response to the old contact is dropped, and a new Connect
	// starts over.
	b, _ := proto.Marshal(proto.VersionResponse{VersionSupported: true, MessageConnectionID: 1})
	if err := c.DeliverMessage(b); !errors.Is(err, client.ErrUnexpected) {
		t.Fatalf("late VERSION_RESPONSE: %v", err)
	}
	h.expect(t, proto.ChannelMsgInitiateContact)
	connect(t, h, c)
}

// TestOpenEchoClose is a channel's whole life against the scripted host:
// a 64-page GPADL (storvsc's 128 KiB rings: a header and two bodies),
// open, packets both ways through wrap-around, a GPA-direct transfer,
// close and teardown, every page freed.
func TestOpenEchoClose(t *testing.T) {
	h := newFakeHost(t)
	c := client.New(h, h.ram, client.Config{VP: 3})
	connect(t, h, c, testOffer(5))
	base := h.ram.used()
	o := c.Offers()[0]

	var ch *client.Channel
	done := async(func() (err error) {
		ch, err = c.Open(testContext(t), o, 32, 32, make([]byte, 24))
		return err
	})
	hdr, pfns, bodies := gpadlFromMessages(t, h, 5)
	// Linux's split: 26 PFNs after the range header, then 28 and 10.
	if bodies != 2 || len(hdr.Data) != 8+26*8 || hdr.RangeBufLen != 8+64*8 || len(pfns) != 64 {
		t.Fatalf("GPADL: %d bodies, %d header bytes, range_buflen %d, %d pages", bodies, len(hdr.Data), hdr.RangeBufLen, len(pfns))
	}
	if hdr.GPADL == 0 {
		t.Fatal("GPADL handle 0")
	}
	seen := map[uint64]bool{}
	for _, pfn := range pfns {
		if seen[pfn] {
			t.Fatalf("page %#x twice in the GPADL", pfn)
		}
		seen[pfn] = true
	}
	// A GPADL_CREATED for another relid or handle answers nothing.
	b, _ := proto.Marshal(proto.GPADLCreated{ChildRelID: 6, GPADL: hdr.GPADL})
	if err := c.DeliverMessage(b); !errors.Is(err, client.ErrUnexpected) {
		t.Fatalf("GPADL_CREATED for relid 6: %v", err)
	}
	send(t, c, proto.GPADLCreated{ChildRelID: 5, GPADL: hdr.GPADL})
	om := h.expect(t, proto.ChannelMsgOpenChannel).msg.(proto.OpenChannel)
	if om.ChildRelID != 5 || om.OpenID != 5 || om.RingBufferGPADL != hdr.GPADL || om.TargetVP != 3 || om.DownstreamRingBufferPageOffset != 32 {
		t.Fatalf("OPENCHANNEL %+v", om)
	}
	hc := mapChannel(t, h, c, o, hdr.GPADL, pfns, 32)
	go hc.run(t, c, nil)
	send(t, c, proto.OpenChannelResult{ChildRelID: 5, OpenID: 5})
	if err := wait(t, done); err != nil {
		t.Fatal(err)
	}
	if used := h.ram.used(); used != base+64 {
		t.Fatalf("%d pages in use, want %d", used, base+64)
	}

	// Packets of every size through the 124 KiB data area, so indices
	// wrap many times; the host echoes each.
	ctx := testContext(t)
	buf := make([]byte, 8<<10)
	for i := range 2000 {
		payload := bytes.Repeat([]byte{byte(i)}, 1+i%4000)
		flags := uint16(0)
		if i%3 == 0 {
			flags = proto.PacketFlagCompletionRequested
		}
		tid := uint64(i) + 1
		if err := ch.SendInband(ctx, flags, tid, payload); err != nil {
			t.Fatal(err)
		}
		p, err := ch.Receive(ctx, buf)
		if err != nil {
			t.Fatal(err)
		}
		wantType := proto.PktDataInband
		if flags != 0 {
			wantType = proto.PktComp
		}
		if p.Type != wantType || p.TransactionID != tid || !bytes.Equal(p.Payload[:len(payload)], payload) {
			t.Fatalf("packet %d: type %v tid %d, %d bytes", i, p.Type, p.TransactionID, len(p.Payload))
		}
	}
	// Pipelined: many sends before any receive.
	for i := range 50 {
		if err := ch.SendInband(ctx, 0, uint64(i), []byte(fmt.Sprintf("packet %d", i))); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 50 {
		p, err := ch.Receive(ctx, buf)
		if err != nil {
			t.Fatal(err)
		}
		if want := fmt.Sprintf("packet %d", i); p.TransactionID != uint64(i) || string(p.Payload[:len(want)]) != want {
			t.Fatalf("pipelined %d: %q", i, p.Payload)
		}
	}

	// GPA-direct: a buffer of the client's own pages, 6000 bytes from
	// offset 100, the host reads it by PFN.
	dpfns, dpages, err := h.ram.AllocPages(2)
	if err != nil {
		t.Fatal(err)
	}
	want := make([]byte, 6000)
	for i := range want {
		want[i] = byte(i * 7)
	}
	copy(dpages[0][100:], want)
	copy(dpages[1], want[proto.PageSize-100:])
	if err := ch.SendGPADirect(ctx, proto.PacketFlagCompletionRequested, 77, []client.Range{{Offset: 100, Len: 6000, PFNs: dpfns}}, []byte("srb")); err != nil {
		t.Fatal(err)
	}
	p, err := ch.Receive(ctx, buf)
	if err != nil {
		t.Fatal(err)
	}
	if p.Type != proto.PktComp || p.TransactionID != 77 || !bytes.Equal(p.Payload[:6000], want) {
		t.Fatalf("GPA-direct completion: %v tid %d", p.Type, p.TransactionID)
	}
	h.ram.FreePages(dpfns)
	if err := ch.SendGPADirect(ctx, 0, 1, []client.Range{{Offset: 0, Len: 5000, PFNs: dpfns[:1]}}, nil); !errors.Is(err, client.ErrInvalid) {
		t.Fatalf("a range naming too few pages: %v", err)
	}

	// Close: CLOSECHANNEL, GPADL_TEARDOWN, and only after GPADL_TORNDOWN
	// are the pages freed.
	done = async(func() error { return ch.Close(testContext(t)) })
	if m := h.expect(t, proto.ChannelMsgCloseChannel).msg.(proto.CloseChannel); m.ChildRelID != 5 {
		t.Fatalf("CLOSECHANNEL %+v", m)
	}
	hc.close(h)
	td := h.expect(t, proto.ChannelMsgGPADLTeardown).msg.(proto.GPADLTeardown)
	if td.ChildRelID != 5 || td.GPADL != hdr.GPADL {
		t.Fatalf("GPADL_TEARDOWN %+v", td)
	}
	h.quiet(t)
	if used := h.ram.used(); used != base+64 {
		t.Fatalf("pages freed before GPADL_TORNDOWN: %d in use", used)
	}
	send(t, c, proto.GPADLTorndown{GPADL: hdr.GPADL})
	if err := wait(t, done); err != nil {
		t.Fatal(err)
	}
	if used := h.ram.used(); used != base {
		t.Fatalf("%d pages in use after close, want %d", used, base)
	}
	if _, err := ch.Receive(ctx, buf); !errors.Is(err, client.ErrClosed) {
		t.Fatalf("Receive after Close: %v", err)
	}
	if err := ch.SendInband(ctx, 0, 0, nil); !errors.Is(err, client.ErrClosed) {
		t.Fatalf("Send after Close: %v", err)
	}
	if err := ch.Close(ctx); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	h.quiet(t)

	// The relid can be opened again, with a new GPADL handle.
	ch2, hc2 := open(t, h, c, o, 2, 2, nil)
	if ch2.GPADL() == hdr.GPADL {
		t.Fatal("GPADL handle reused")
	}
	closeChannel(t, h, c, ch2, hc2)
}

// closeChannel scripts an orderly Close.
func closeChannel(t testing.TB, h *fakeHost, c *client.Client, ch *client.Channel, hc *hostChannel) {
	t.Helper()
	done := async(func() error { return ch.Close(testContext(t)) })
	h.expect(t, proto.ChannelMsgCloseChannel)
	hc.close(h)
	td := h.expect(t, proto.ChannelMsgGPADLTeardown).msg.(proto.GPADLTeardown)
	send(t, c, proto.GPADLTorndown{GPADL: td.GPADL})
	if err := wait(t, done); err != nil {
		t.Fatal(err)
	}
}

// TestSendWaitsForRoom: a full guest-to-host ring makes the sender set
// pending_send_sz and wait for the host's signal, which the host's
// reader gives once it freed enough.
func TestSendWaitsForRoom(t *testing.T) {
	h := newFakeHost(t)
	c := client.New(h, h.ram, client.Config{})
	connect(t, h, c, testOffer(1))
	release := make(chan struct{})
	got := make(chan []byte, 8)
	ch, hc := open(t, h, c, c.Offers()[0], 2, 2, func(hc *hostChannel, p *proto.Packet) error {
		<-release
		got <- append([]byte(nil), p.Payload...)
		return nil
	})
	ctx := testContext(t)
	payload := make([]byte, 1000)
	// 4 KiB of data area, 1 KiB a packet: the host takes the first and
	// holds it; three more fill the ring (it never fills completely), the
	// fifth must wait.
	for i := range 4 {
		payload[0] = byte(i)
		if err := ch.SendInband(ctx, 0, uint64(i), payload); err != nil {
			t.Fatal(err)
		}
	}
	payload[0] = 4
	done := async(func() error { return ch.SendInband(ctx, 0, 4, payload) })
	select {
	case err := <-done:
		t.Fatalf("fifth packet went into a full ring: %v", err)
	case <-time.After(50 * time.Millisecond):
	}
	close(release)
	if err := wait(t, done); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		select {
		case p := <-got:
			if p[0] != byte(i) {
				t.Fatalf("packet %d is %d", i, p[0])
			}
		case <-time.After(testTimeout):
			t.Fatalf("host got %d packets", i)
		}
	}
	closeChannel(t, h, c, ch, hc)
}

// TestReceiveWaitsForSignal: Receive sleeps until the host signals, and
// the host signals because Receive unmasked the ring first.
func TestReceiveWaitsForSignal(t *testing.T) {
	h := newFakeHost(t)
	c := client.New(h, h.ram, client.Config{})
	connect(t, h, c, testOffer(1))
	ch, hc := open(t, h, c, c.Offers()[0], 2, 4, nil)
	ctx := testContext(t)
	buf := make([]byte, 4096)
	for i := range 20 {
		done := async(func() error {
			p, err := ch.Receive(ctx, buf)
			if err == nil && p.TransactionID != uint64(i) {
				err = fmt.Errorf("tid %d", p.TransactionID)
			}
			return err
		})
		time.Sleep(time.Millisecond)
		// Unsolicited host packet, written by a goroutine other than
		// the channel's: the test owns the host's sender here.
		hdr, _ := proto.AppendInbandHeader(nil, 0, uint64(i), 8)
		if err := hc.send.Write(hdr, []byte("unsolic.")); err != nil {
			t.Fatal(err)
		}
		if err := wait(t, done); err != nil {
			t.Fatal(err)
		}
	}
	// A short buffer leaves the packet in the ring and says how long it
	// is; the next Receive with room gets it.
	hdr, _ := proto.AppendInbandHeader(nil, 0, 99, 100)
	if err := hc.send.Write(hdr, make([]byte, 100)); err != nil {
		t.Fatal(err)
	}
	if _, err := ch.Receive(ctx, buf[:64]); !errors.Is(err, ring.ErrShortBuffer) {
		t.Fatalf("short buffer: %v", err)
	}
	if p, err := ch.Receive(ctx, buf); err != nil || p.TransactionID != 99 {
		t.Fatalf("after a short buffer: %v %v", p.TransactionID, err)
	}
	// A canceled context ends the wait.
	cctx, cancel := context.WithTimeout(ctx, 10*time.Millisecond)
	defer cancel()
	if _, err := ch.Receive(cctx, buf); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Receive on an empty ring: %v", err)
	}
	closeChannel(t, h, c, ch, hc)
}

// TestHostCorruptsRing: a host that breaks its ring gets errors, never a
// panic or a read outside the ring.
func TestHostCorruptsRing(t *testing.T) {
	h := newFakeHost(t)
	c := client.New(h, h.ram, client.Config{})
	connect(t, h, c, testOffer(1))
	ch, hc := open(t, h, c, c.Offers()[0], 2, 2, nil)
	ctx := testContext(t)
	// A packet that does not parse (a descriptor of type 0) is dropped
	// with an error; the channel goes on.
	bad := proto.PacketDescriptor{Type: proto.PktInvalid, DataOffset8: 2, Length8: 3}.Append(nil)
	if err := hc.send.Write(bad, make([]byte, 8)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4096)
	if _, err := ch.Receive(ctx, buf); !errors.Is(err, proto.ErrPacket) {
		t.Fatalf("unparsable packet: %v", err)
	}
	// A write index outside the data area.
	hc.inMem.StoreU32(ring.WriteIndexOffset, 0xffff)
	if _, err := ch.Receive(ctx, buf); !errors.Is(err, ring.ErrCorrupt) {
		t.Fatalf("corrupt write index: %v", err)
	}
	// A read index of the guest-to-host ring outside it, found when the
	// sender next looks for room.
	hc.close(h)
	hc.outMem.StoreU32(ring.ReadIndexOffset, 0x7f0000)
	var err error
	for i := 0; i < 3 && err == nil; i++ {
		err = ch.SendInband(ctx, 0, 1, make([]byte, 2000))
	}
	if !errors.Is(err, ring.ErrCorrupt) {
		t.Fatalf("corrupt read index: %v", err)
	}
	done := async(func() error { return ch.Close(ctx) })
	h.expect(t, proto.ChannelMsgCloseChannel)
	td := h.expect(t, proto.ChannelMsgGPADLTeardown).msg.(proto.GPADLTeardown)
	send(t, c, proto.GPADLTorndown{GPADL: td.GPADL})
	if err := wait(t, done); err != nil {
		t.Fatal(err)
	}
}

// TestOpenRefused: a GPADL the host did not create, and an open it did
// not do, fail Open; in the second case the GPADL is torn down before the
// pages go back.
func TestOpenRefused(t *testing.T) {
	h := newFakeHost(t)
	c := client.New(h, h.ram, client.Config{})
	connect(t, h, c, testOffer(1))
	base := h.ram.used()
	o := c.Offers()[0]

	done := async(func() error { _, err := c.Open(testContext(t), o, 4, 4, nil); return err })
	hdr, _, _ := gpadlFromMessages(t, h, 1)
	send(t, c, proto.GPADLCreated{ChildRelID: 1, GPADL: hdr.GPADL, CreationStatus: 0xC0000001})
	if err := wait(t, done); !errors.Is(err, client.ErrRefused) {
		t.Fatalf("Open: %v", err)
	}
	if used := h.ram.used(); used != base {
		t.Fatalf("%d pages in use, want %d", used, base)
	}

	done = async(func() error { _, err := c.Open(testContext(t), o, 4, 4, nil); return err })
	hdr, _, _ = gpadlFromMessages(t, h, 1)
	send(t, c, proto.GPADLCreated{ChildRelID: 1, GPADL: hdr.GPADL})
	h.expect(t, proto.ChannelMsgOpenChannel)
	send(t, c, proto.OpenChannelResult{ChildRelID: 1, OpenID: 1, Status: 0xC0000001})
	td := h.expect(t, proto.ChannelMsgGPADLTeardown).msg.(proto.GPADLTeardown)
	if td.GPADL != hdr.GPADL {
		t.Fatalf("teardown of %#x, want %#x", td.GPADL, hdr.GPADL)
	}
	send(t, c, proto.GPADLTorndown{GPADL: hdr.GPADL})
	if err := wait(t, done); !errors.Is(err, client.ErrRefused) {
		t.Fatalf("Open: %v", err)
	}
	if used := h.ram.used(); used != base {
		t.Fatalf("%d pages in use, want %d", used, base)
	}

	// Bad arguments fail before anything is sent.
	for _, tc := range []struct{ send, recv int }{{1, 4}, {4, 1}, {client.MaxRingPages, 1}} {
		if _, err := c.Open(testContext(t), o, tc.send, tc.recv, nil); !errors.Is(err, client.ErrInvalid) {
			t.Fatalf("Open(%d, %d): %v", tc.send, tc.recv, err)
		}
	}
	if _, err := c.Open(testContext(t), o, 2, 2, make([]byte, 121)); !errors.Is(err, client.ErrInvalid) {
		t.Fatalf("Open with 121 bytes of user data: %v", err)
	}
	other := o
	other.ChildRelID = 9
	if _, err := c.Open(testContext(t), other, 2, 2, nil); !errors.Is(err, client.ErrNoOffer) {
		t.Fatalf("Open of relid 9: %v", err)
	}
	h.quiet(t)
}

// TestOpenTimesOut: a host that never answers costs the caller its
// context, not forever; the pages stay allocated (the host may hold
// them) and the relid can be opened again.
func TestOpenTimesOut(t *testing.T) {
	h := newFakeHost(t)
	c := client.New(h, h.ram, client.Config{})
	connect(t, h, c, testOffer(1))
	base := h.ram.used()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := c.Open(ctx, c.Offers()[0], 2, 2, nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Open: %v", err)
	}
	hdr, _, _ := gpadlFromMessages(t, h, 1)
	if used := h.ram.used(); used != base+4 {
		t.Fatalf("%d pages in use, want %d: a GPADL the host may hold was freed", used, base+4)
	}
	b, _ := proto.Marshal(proto.GPADLCreated{ChildRelID: 1, GPADL: hdr.GPADL})
	if err := c.DeliverMessage(b); !errors.Is(err, client.ErrUnexpected) {
		t.Fatalf("late GPADL_CREATED: %v", err)
	}
	ch, hc := open(t, h, c, c.Offers()[0], 2, 2, nil)
	closeChannel(t, h, c, ch, hc)
	// After UNLOAD_RESPONSE the host holds nothing: the pages go back.
	done := async(func() error { return c.Unload(testContext(t)) })
	h.expect(t, proto.ChannelMsgUnload)
	send(t, c, proto.UnloadResponse{})
	if err := wait(t, done); err != nil {
		t.Fatal(err)
	}
	if used := h.ram.used(); used != 0 {
		t.Fatalf("%d pages in use after Unload", used)
	}
}

// TestRescindOpenChannel: the host rescinds an open channel. Receive
// returns what is left, then ErrRescinded; Close sends CLOSECHANNEL but
// no GPADL_TEARDOWN, frees the pages and releases the relid.
func TestRescindOpenChannel(t *testing.T) {
	h := newFakeHost(t)
	c := client.New(h, h.ram, client.Config{})
	connect(t, h, c, testOffer(1), testOffer(2))
	base := h.ram.used()
	ch, hc := open(t, h, c, c.Offers()[0], 2, 2, nil)
	ctx := testContext(t)
	hc.close(h) // the host stops serving, then rescinds
	hdr, _ := proto.AppendInbandHeader(nil, 0, 42, 4)
	if err := hc.send.Write(hdr, []byte("last")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4096)
	blocked := async(func() error {
		_, err := ch.Receive(ctx, buf)
		if err == nil {
			_, err = ch.Receive(ctx, buf)
		}
		return err
	})
	time.Sleep(10 * time.Millisecond)
	send(t, c, proto.RescindChannelOffer{ChildRelID: 1})
	if err := wait(t, blocked); !errors.Is(err, client.ErrRescinded) {
		t.Fatalf("Receive after rescind: %v", err)
	}
	select {
	case <-ch.Rescinded():
	default:
		t.Fatal("Rescinded not closed")
	}
	if err := ch.SendInband(ctx, 0, 1, nil); !errors.Is(err, client.ErrRescinded) {
		t.Fatalf("Send after rescind: %v", err)
	}
	if offers := c.Offers(); len(offers) != 1 || offers[0].ChildRelID != 2 {
		t.Fatalf("offers after rescind: %v", offers)
	}
	h.quiet(t) // nothing released while the channel is open
	if err := ch.Close(ctx); err != nil {
		t.Fatal(err)
	}
	h.expect(t, proto.ChannelMsgCloseChannel)
	if m := h.expect(t, proto.ChannelMsgRelIDReleased).msg.(proto.RelIDReleased); m.ChildRelID != 1 {
		t.Fatalf("RELID_RELEASED %+v", m)
	}
	if used := h.ram.used(); used != base {
		t.Fatalf("%d pages in use, want %d", used, base)
	}
	// The relid may now come back as a new offer.
	o := testOffer(1)
	o.InterfaceInstance = proto.MustParseGUID("11111111-2222-3333-4444-555555555555")
	send(t, c, o)
	if got, err := c.WaitOffer(ctx, func(x client.Offer) bool { return x.InterfaceInstance == o.InterfaceInstance }); err != nil || got.ChildRelID != 1 {
		t.Fatalf("re-offer: %v %v", got, err)
	}
}

// TestRescindDuringOpen: a rescind ends the waits of an Open in progress
// (here for GPADL_CREATED); the pages go back and the relid is released.
func TestRescindDuringOpen(t *testing.T) {
	h := newFakeHost(t)
	c := client.New(h, h.ram, client.Config{})
	connect(t, h, c, testOffer(3))
	base := h.ram.used()
	done := async(func() error { _, err := c.Open(testContext(t), c.Offers()[0], 32, 32, nil); return err })
	gpadlFromMessages(t, h, 3)
	send(t, c, proto.RescindChannelOffer{ChildRelID: 3})
	if err := wait(t, done); !errors.Is(err, client.ErrRescinded) {
		t.Fatalf("Open: %v", err)
	}
	if m := h.expect(t, proto.ChannelMsgRelIDReleased).msg.(proto.RelIDReleased); m.ChildRelID != 3 {
		t.Fatalf("RELID_RELEASED %+v", m)
	}
	if used := h.ram.used(); used != base {
		t.Fatalf("%d pages in use, want %d", used, base)
	}
}

// TestRescindOffer: a rescinded offer nobody opened is released at once;
// a hot-added offer shows up in WaitOffer.
func TestRescindOffer(t *testing.T) {
	h := newFakeHost(t)
	c := client.New(h, h.ram, client.Config{})
	connect(t, h, c, testOffer(1))
	ctx := testContext(t)
	got := async(func() error {
		o, err := c.WaitOffer(ctx, func(o client.Offer) bool { return o.InterfaceType == proto.HeartbeatGUID })
		if err == nil && o.ChildRelID != 7 {
			err = fmt.Errorf("offer %v", o)
		}
		return err
	})
	hot := testOffer(7)
	hot.InterfaceType = proto.HeartbeatGUID
	send(t, c, hot)
	if err := wait(t, got); err != nil {
		t.Fatal(err)
	}
	send(t, c, proto.RescindChannelOffer{ChildRelID: 1})
	if m := h.expect(t, proto.ChannelMsgRelIDReleased).msg.(proto.RelIDReleased); m.ChildRelID != 1 {
		t.Fatalf("RELID_RELEASED %+v", m)
	}
	if err := c.WaitRescind(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Open(ctx, client.Offer{OfferChannel: testOffer(1)}, 2, 2, nil); !errors.Is(err, client.ErrNoOffer) {
		t.Fatalf("Open of a rescinded offer: %v", err)
	}
	b, _ := proto.Marshal(proto.RescindChannelOffer{ChildRelID: 1})
	if err := c.DeliverMessage(b); !errors.Is(err, client.ErrUnexpected) {
		t.Fatalf("second rescind: %v", err)
	}
}

// TestUnload: UNLOAD, UNLOAD_RESPONSE; open channels end, every page goes
// back, and the client can connect again.
func TestUnload(t *testing.T) {
	h := newFakeHost(t)
	c := client.New(h, h.ram, client.Config{})
	connect(t, h, c, testOffer(1))
	ch, hc := open(t, h, c, c.Offers()[0], 4, 4, nil)
	ctx := testContext(t)
	buf := make([]byte, 4096)
	blocked := async(func() error { _, err := ch.Receive(ctx, buf); return err })
	done := async(func() error { return c.Unload(ctx) })
	if p := h.expect(t, proto.ChannelMsgUnload); p.conn != 1 {
		t.Fatalf("UNLOAD on connection %d", p.conn)
	}
	hc.close(h)
	send(t, c, proto.UnloadResponse{})
	if err := wait(t, done); err != nil {
		t.Fatal(err)
	}
	if err := wait(t, blocked); !errors.Is(err, client.ErrUnloaded) {
		t.Fatalf("Receive across Unload: %v", err)
	}
	if n := h.ram.used(); n != 0 {
		t.Fatalf("%d pages in use after Unload", n)
	}
	if c.Version() != 0 || len(c.Offers()) != 0 {
		t.Fatal("still connected")
	}
	if err := ch.Close(ctx); err != nil {
		t.Fatalf("Close after Unload: %v", err)
	}
	h.quiet(t)
	connect(t, h, c, testOffer(1))
	ch, hc = open(t, h, c, c.Offers()[0], 2, 2, nil)
	closeChannel(t, h, c, ch, hc)
}

// TestDisconnect closes the open channels in order, then unloads.
func TestDisconnect(t *testing.T) {
	h := newFakeHost(t)
	c := client.New(h, h.ram, client.Config{})
	connect(t, h, c, testOffer(1))
	ch, hc := open(t, h, c, c.Offers()[0], 2, 2, nil)
	done := async(func() error { return c.Disconnect(testContext(t)) })
	h.expect(t, proto.ChannelMsgCloseChannel)
	hc.close(h)
	td := h.expect(t, proto.ChannelMsgGPADLTeardown).msg.(proto.GPADLTeardown)
	send(t, c, proto.GPADLTorndown{GPADL: td.GPADL})
	h.expect(t, proto.ChannelMsgUnload)
	send(t, c, proto.UnloadResponse{})
	if err := wait(t, done); err != nil {
		t.Fatal(err)
	}
	if n := h.ram.used(); n != 0 {
		t.Fatalf("%d pages in use after Disconnect", n)
	}
	if err := ch.SendInband(testContext(t), 0, 0, nil); !errors.Is(err, client.ErrClosed) {
		t.Fatalf("Send after Disconnect: %v", err)
	}
	if err := c.Disconnect(testContext(t)); !errors.Is(err, client.ErrNotConnected) {
		t.Fatalf("second Disconnect: %v", err)
	}
}

// TestDisconnectOldProtocol: below 3.0 there is no UNLOAD.
func TestDisconnectOldProtocol(t *testing.T) {
	h := newFakeHost(t)
	c := client.New(h, h.ram, client.Config{Versions: []proto.Version{proto.VersionWin8}})
	done := async(func() error { return c.Connect(testContext(t)) })
	h.expect(t, proto.ChannelMsgInitiateContact)
	send(t, c, proto.VersionResponse{VersionSupported: true})
	h.expect(t, proto.ChannelMsgRequestOffers)
	send(t, c, proto.AllOffersDelivered{})
	if err := wait(t, done); err != nil {
		t.Fatal(err)
	}
	if err := c.Unload(testContext(t)); !errors.Is(err, client.ErrInvalid) {
		t.Fatalf("Unload at 2.4: %v", err)
	}
	if err := c.Disconnect(testContext(t)); err != nil {
		t.Fatal(err)
	}
	h.quiet(t)
	if n := h.ram.used(); n != 0 {
		t.Fatalf("%d pages in use", n)
	}
}

// TestHostMessagesThatFitNothing: malformed, misdirected and unexpected
// messages are refused with an error, never a panic, and change nothing.
func TestHostMessagesThatFitNothing(t *testing.T) {
	h := newFakeHost(t)
	c := client.New(h, h.ram, client.Config{})
	early, _ := proto.Marshal(testOffer(1))
	if err := c.DeliverMessage(early); !errors.Is(err, client.ErrUnexpected) {
		t.Fatalf("offer before Connect: %v", err)
	}
	connect(t, h, c, testOffer(1))
	dup := testOffer(2)
	dup.InterfaceInstance = testOffer(1).InterfaceInstance
	bigConn := testOffer(3)
	bigConn.ConnectionID = 1 << 24
	cases := []struct {
		name    string
		payload []byte
		want    error
	}{
		{"empty", nil, proto.ErrMessage},
		{"short offer", must(proto.Marshal(testOffer(4)))[:100], proto.ErrMessage},
		{"too long", make([]byte, 241), proto.ErrMessage},
		{"unknown type", []byte{99, 0, 0, 0, 0, 0, 0, 0}, proto.ErrMessage},
		{"guest's message", must(proto.Marshal(proto.RequestOffers{})), client.ErrUnexpected},
		{"relid 0", must(proto.Marshal(testOffer(0))), client.ErrUnexpected},
		{"relid 2048", must(proto.Marshal(testOffer(2048))), client.ErrUnexpected},
		{"relid twice", must(proto.Marshal(testOffer(1))), client.ErrUnexpected},
		{"same device twice", must(proto.Marshal(dup)), client.ErrUnexpected},
		{"connection above 24 bits", must(proto.Marshal(bigConn)), client.ErrUnexpected},
		{"rescind of nothing", must(proto.Marshal(proto.RescindChannelOffer{ChildRelID: 9})), client.ErrUnexpected},
		{"stray VERSION_RESPONSE", must(proto.Marshal(proto.VersionResponse{VersionSupported: true})), client.ErrUnexpected},
		{"stray OPENCHANNEL_RESULT", must(proto.Marshal(proto.OpenChannelResult{ChildRelID: 1, OpenID: 1})), client.ErrUnexpected},
		{"stray GPADL_TORNDOWN", must(proto.Marshal(proto.GPADLTorndown{GPADL: 5})), client.ErrUnexpected},
		{"stray UNLOAD_RESPONSE", must(proto.Marshal(proto.UnloadResponse{})), client.ErrUnexpected},
		{"MODIFYCHANNEL_RESPONSE", must(proto.Marshal(proto.ModifyChannelResponse{ChildRelID: 1})), client.ErrUnexpected},
	}
	for _, tc := range cases {
		if err := c.DeliverMessage(tc.payload); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
	if offers := c.Offers(); len(offers) != 1 {
		t.Fatalf("offers: %v", offers)
	}
	// Events for relids with no channel, or out of range, are ignored.
	for _, relid := range []uint32{0, 1, 2047, 2048, 1 << 31} {
		c.DeliverEvent(relid)
	}
	h.quiet(t)
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}

// TestStatusError: the transport's statuses map to the errors the client
// retries on.
func TestStatusError(t *testing.T) {
	if client.Status(0) != nil {
		t.Fatal("success is an error")
	}
	for _, tc := range []struct {
		s          uint16
		busy, conn bool
	}{{0x13, true, false}, {0x0b, true, false}, {0x12, false, true}, {0x05, false, false}} {
		err := client.StatusError(tc.s)
		if errors.Is(err, client.ErrBusy) != tc.busy || errors.Is(err, client.ErrInvalidConnection) != tc.conn {
			t.Errorf("status %#x: %v", tc.s, err)
		}
	}
}

// TestDeliverEventDoesNotAllocate: the event path runs in a guest's
// interrupt handler.
func TestDeliverEventDoesNotAllocate(t *testing.T) {
	h := newFakeHost(t)
	c := client.New(h, h.ram, client.Config{})
	connect(t, h, c, testOffer(1))
	ch, hc := open(t, h, c, c.Offers()[0], 2, 2, nil)
	if n := testing.AllocsPerRun(100, func() { c.DeliverEvent(1); c.DeliverEvent(2) }); n != 0 {
		t.Fatalf("DeliverEvent allocates %v times", n)
	}
	closeChannel(t, h, c, ch, hc)
}
