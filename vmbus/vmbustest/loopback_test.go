package vmbustest_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"gohv/vmbus/client"
	"gohv/vmbus/proto"
	"gohv/vmbus/server"
	"gohv/vmbus/vmbustest"
)

// These tests join gohv's VMBus client and server: each end checks the
// other against the protocol Linux 6.1 speaks.

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

var (
	echoType   = proto.MustParseGUID("f1e2d3c4-b5a6-4978-8899-aabbccddeeff")
	echoInst1  = proto.MustParseGUID("00000000-0000-0000-0000-000000000001")
	echoInst2  = proto.MustParseGUID("00000000-0000-0000-0000-000000000002")
	heartbeat  = proto.HeartbeatGUID
	heartInst1 = proto.MustParseGUID("00000000-0000-0000-0000-0000000000a1")
)

// start is a loopback serving two echo devices, its client connected.
func start(t *testing.T, cfg vmbustest.Config) (*vmbustest.Loopback, []*vmbustest.Echo) {
	t.Helper()
	l, err := vmbustest.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	devs := []*vmbustest.Echo{
		{Type: echoType, Instance: echoInst1, RAM: l.RAM},
		{Type: echoType, Instance: echoInst2, RAM: l.RAM},
	}
	for _, d := range devs {
		if _, err := l.Server.AddDevice(d); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		l.Close()
		for _, err := range l.Refused() {
			t.Errorf("the client refused a server message: %v", err)
		}
		if err := l.RAM.Err(); err != nil {
			t.Error(err)
		}
	})
	if err := l.Client.Connect(testContext(t)); err != nil {
		t.Fatal(err)
	}
	return l, devs
}

func offerOf(t *testing.T, c *client.Client, inst proto.GUID) client.Offer {
	t.Helper()
	o, err := c.WaitOffer(testContext(t), func(o client.Offer) bool { return o.InterfaceInstance == inst })
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// TestConnect: 5.3 on the first try, message connection 1, the offers
// as the server makes them (relid, connection ID, dedicated interrupt,
// no monitor), every message to the client's VP.
func TestConnect(t *testing.T) {
	l, _ := start(t, vmbustest.Config{Client: client.Config{VP: 1}})
	c := l.Client
	if c.Version() != proto.VersionWin10V5_3 || c.MessageConnectionID() != proto.MessageConnectionID {
		t.Fatalf("version %v, message connection %d", c.Version(), c.MessageConnectionID())
	}
	if v := l.Server.Version(); v != proto.VersionWin10V5_3 {
		t.Fatalf("server says version %v", v)
	}
	offers := c.Offers()
	if len(offers) != 2 {
		t.Fatalf("offers: %v", offers)
	}
	for i, o := range offers {
		if o.InterfaceType != echoType || o.ChildRelID == 0 || o.ConnectionID != server.ConnectionIDBase+o.ChildRelID ||
			!o.DedicatedInterrupt || o.MonitorAllocated || o.SubChannelIndex != 0 {
			t.Errorf("offer %d: %+v", i, o.OfferChannel)
		}
	}
	if vps := l.MessageVPs(); len(vps) != 1 || vps[1] == 0 {
		t.Fatalf("messages went to VPs %v, want only VP 1", vps)
	}
}

// TestConnectOlderServer: a server capped at 4.0 rejects 5.3 … 4.1; the
// client settles on 4.0 on connection 1, as Linux would.
func TestConnectOlderServer(t *testing.T) {
	l, _ := start(t, vmbustest.Config{Server: server.Config{MaxVersion: proto.VersionWin10}})
	if v := l.Client.Version(); v != proto.VersionWin10 || l.Client.MessageConnectionID() != proto.MessageConnectionID {
		t.Fatalf("version %v on connection %d", v, l.Client.MessageConnectionID())
	}
	ch, err := l.Client.Open(testContext(t), offerOf(t, l.Client, echoInst1), 2, 2, nil)
	if err != nil {
		t.Fatal(err)
	}
	echoOnce(t, ch, 1)
	if err := ch.Close(testContext(t)); err != nil {
		t.Fatal(err)
	}
}

// echoOnce sends one in-band packet and expects it back.
func echoOnce(t *testing.T, ch *client.Channel, tid uint64) {
	t.Helper()
	ctx := testContext(t)
	if err := ch.SendInband(ctx, proto.PacketFlagCompletionRequested, tid, []byte("hello")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4096)
	p, err := ch.Receive(ctx, buf)
	if err != nil {
		t.Fatal(err)
	}
	if p.Type != proto.PktComp || p.TransactionID != tid || string(p.Payload[:5]) != "hello" {
		t.Fatalf("echo: %v tid %d %q", p.Type, p.TransactionID, p.Payload)
	}
}

// TestEcho opens a channel with storvsc's 128 KiB rings (a GPADL in a
// header and two bodies), echoes packets of every size through it,
// moves a GPA-direct buffer, and closes it; every ring page goes back.
func TestEcho(t *testing.T) {
	l, devs := start(t, vmbustest.Config{Client: client.Config{VP: 1}})
	c := l.Client
	base := l.RAM.InUse()
	ctx := testContext(t)
	ch, err := c.Open(ctx, offerOf(t, c, echoInst1), 32, 32, make([]byte, 24))
	if err != nil {
		t.Fatal(err)
	}
	if l.RAM.InUse() != base+64 {
		t.Fatalf("%d pages in use, want %d", l.RAM.InUse(), base+64)
	}
	buf := make([]byte, 16<<10)
	for i := range 3000 {
		payload := bytes.Repeat([]byte{byte(i), byte(i >> 8)}, 1+i%3000)
		flags := uint16(0)
		if i%2 == 0 {
			flags = proto.PacketFlagCompletionRequested
		}
		if err := ch.SendInband(ctx, flags, uint64(i)+1, payload); err != nil {
			t.Fatal(err)
		}
		p, err := ch.Receive(ctx, buf)
		if err != nil {
			t.Fatal(err)
		}
		want := proto.PktDataInband
		if flags != 0 {
			want = proto.PktComp
		}
		if p.Type != want || p.TransactionID != uint64(i)+1 || !bytes.Equal(p.Payload[:len(payload)], payload) {
			t.Fatalf("packet %d: %v tid %d, %d bytes", i, p.Type, p.TransactionID, len(p.Payload))
		}
	}

	// GPA-direct: 3 pages of the client's, 9000 bytes from offset 500.
	pfns, pages, err := l.RAM.AllocPages(3)
	if err != nil {
		t.Fatal(err)
	}
	data := make([]byte, 9000)
	for i := range data {
		data[i] = byte(i * 13)
	}
	rest := data
	off := 500
	for _, pg := range pages {
		n := copy(pg[off:], rest)
		rest, off = rest[n:], 0
	}
	if err := ch.SendGPADirect(ctx, proto.PacketFlagCompletionRequested, 0xabc, []client.Range{{Offset: 500, Len: 9000, PFNs: pfns}}, []byte("request")); err != nil {
		t.Fatal(err)
	}
	p, err := ch.Receive(ctx, buf)
	if err != nil {
		t.Fatal(err)
	}
	if p.Type != proto.PktComp || p.TransactionID != 0xabc || !bytes.Equal(p.Payload[:9000], data) {
		t.Fatalf("GPA-direct: %v tid %#x", p.Type, p.TransactionID)
	}
	l.RAM.FreePages(pfns)

	if err := ch.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if l.RAM.InUse() != base {
		t.Fatalf("%d pages in use after Close, want %d", l.RAM.InUse(), base)
	}
	if closes := devs[0].Closes(); len(closes) != 1 || closes[0] != nil {
		t.Fatalf("device saw closes %v", closes)
	}
	// Opened again, it serves again.
	ch, err = c.Open(ctx, offerOf(t, c, echoInst1), 2, 2, nil)
	if err != nil {
		t.Fatal(err)
	}
	echoOnce(t, ch, 7)
	if err := ch.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if devs[0].Opens() != 2 {
		t.Fatalf("%d opens", devs[0].Opens())
	}
	// The server signalled the VP OPENCHANNEL named, and only it.
	if vps := l.SignalVPs(); len(vps) != 1 || vps[1] == 0 {
		t.Fatalf("signals went to VPs %v, want only VP 1", vps)
	}
}

// refuser is a device whose every open fails.
type refuser struct{}

func (refuser) Offer() server.Offer {
	return server.Offer{InterfaceType: echoType, InterfaceInstance: proto.MustParseGUID("00000000-0000-0000-0000-0000000000ff")}
}

func (refuser) Open(*server.Channel) (server.Handler, error) { return nil, errors.New("not today") }

// TestOpenRefusedByDevice: a failing OPENCHANNEL_RESULT, then the
// client's GPADL teardown; the pages go back and nothing is left open.
func TestOpenRefusedByDevice(t *testing.T) {
	l, _ := start(t, vmbustest.Config{})
	c := l.Client
	ctx := testContext(t)
	if _, err := l.Server.AddDevice(refuser{}); err != nil {
		t.Fatal(err)
	}
	base := l.RAM.InUse()
	o := offerOf(t, c, refuser{}.Offer().InterfaceInstance)
	for range 3 {
		if _, err := c.Open(ctx, o, 4, 4, nil); !errors.Is(err, client.ErrRefused) {
			t.Fatalf("Open: %v", err)
		}
		if l.RAM.InUse() != base {
			t.Fatalf("%d pages in use, want %d", l.RAM.InUse(), base)
		}
	}
}

// TestEchoFullRings runs packets through the smallest rings, sender and
// receiver on their own goroutines, so both ends keep finding their
// outgoing ring full: the client waits on pending_send_sz for the
// server's signal and the server for the client's.
func TestEchoFullRings(t *testing.T) {
	l, _ := start(t, vmbustest.Config{})
	c := l.Client
	ctx := testContext(t)
	// Both opened at once: their GPADL messages interleave.
	chans := make([]*client.Channel, 2)
	opened := make(chan error, 2)
	for i, inst := range []proto.GUID{echoInst1, echoInst2} {
		go func() {
			var err error
			chans[i], err = c.Open(ctx, offerOf(t, c, inst), 2, 2, nil)
			opened <- err
		}()
	}
	for range 2 {
		if err := <-opened; err != nil {
			t.Fatal(err)
		}
	}
	const n = 5000
	errs := make(chan error, 4)
	for ci, ch := range chans {
		go func() {
			payload := make([]byte, 1200)
			for i := range n {
				payload[0], payload[1] = byte(i), byte(ci)
				if err := ch.SendInband(ctx, 0, uint64(i), payload[:100+i%1100]); err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
		go func() {
			buf := make([]byte, 4096)
			for i := range n {
				p, err := ch.Receive(ctx, buf)
				if err != nil {
					errs <- err
					return
				}
				if p.TransactionID != uint64(i) || p.Payload[0] != byte(i) || p.Payload[1] != byte(ci) || len(p.Payload) < 100+i%1100 {
					errs <- fmt.Errorf("channel %d packet %d: tid %d, %d bytes", ci, i, p.TransactionID, len(p.Payload))
					return
				}
			}
			errs <- nil
		}()
	}
	for range 4 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	for _, ch := range chans {
		if ch.SignalErrors() != 0 {
			t.Errorf("relid %d: %d signals failed", ch.RelID(), ch.SignalErrors())
		}
		if err := ch.Close(ctx); err != nil {
			t.Fatal(err)
		}
	}
}

// TestRescindAndHotAdd: the server rescinds an open channel — the
// client's receive ends, its Close sends CLOSECHANNEL and RELID_RELEASED
// — and adds a device after the offers went out, which the client sees.
func TestRescindAndHotAdd(t *testing.T) {
	l, devs := start(t, vmbustest.Config{})
	c := l.Client
	ctx := testContext(t)
	base := l.RAM.InUse()
	o := offerOf(t, c, echoInst1)
	ch, err := c.Open(ctx, o, 4, 4, nil)
	if err != nil {
		t.Fatal(err)
	}
	echoOnce(t, ch, 1)
	receiving := make(chan error, 1)
	go func() {
		_, err := ch.Receive(ctx, make([]byte, 4096))
		receiving <- err
	}()
	l.Server.Rescind(o.ChildRelID)
	if err := <-receiving; !errors.Is(err, client.ErrRescinded) {
		t.Fatalf("Receive across the rescind: %v", err)
	}
	if err := c.WaitRescind(ctx, o.ChildRelID); err != nil {
		t.Fatal(err)
	}
	if err := ch.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if l.RAM.InUse() != base {
		t.Fatalf("%d pages in use, want %d", l.RAM.InUse(), base)
	}
	if closes := devs[0].Closes(); len(closes) != 1 {
		t.Fatalf("device closes %v", closes)
	}

	// Hot-add: a new device is offered at once, and can be used.
	hb := &vmbustest.Echo{Type: heartbeat, Instance: heartInst1, RAM: l.RAM}
	relid, err := l.Server.AddDevice(hb)
	if err != nil {
		t.Fatal(err)
	}
	ho := offerOf(t, c, heartInst1)
	if ho.ChildRelID != relid || ho.InterfaceType != heartbeat {
		t.Fatalf("hot-added offer %v, relid %d", ho, relid)
	}
	hch, err := c.Open(ctx, ho, 2, 2, nil)
	if err != nil {
		t.Fatal(err)
	}
	echoOnce(t, hch, 2)
	if err := hch.Close(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestUnloadAndReconnect: UNLOAD under an open channel, then a new
// connection that finds the same devices.
func TestUnloadAndReconnect(t *testing.T) {
	l, devs := start(t, vmbustest.Config{})
	c := l.Client
	ctx := testContext(t)
	ch, err := c.Open(ctx, offerOf(t, c, echoInst2), 3, 5, nil)
	if err != nil {
		t.Fatal(err)
	}
	echoOnce(t, ch, 1)
	if err := c.Unload(ctx); err != nil {
		t.Fatal(err)
	}
	if l.RAM.InUse() != 0 {
		t.Fatalf("%d pages in use after Unload", l.RAM.InUse())
	}
	if _, err := ch.Receive(ctx, make([]byte, 64)); !errors.Is(err, client.ErrUnloaded) {
		t.Fatalf("Receive after Unload: %v", err)
	}
	if closes := devs[1].Closes(); len(closes) != 1 {
		t.Fatalf("device closes %v", closes)
	}
	if err := c.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	if offers := c.Offers(); len(offers) != 2 {
		t.Fatalf("offers after reconnect: %v", offers)
	}
	ch, err = c.Open(ctx, offerOf(t, c, echoInst2), 2, 2, nil)
	if err != nil {
		t.Fatal(err)
	}
	echoOnce(t, ch, 2)
	if err := c.Disconnect(ctx); err != nil {
		t.Fatal(err)
	}
	if l.RAM.InUse() != 0 {
		t.Fatalf("%d pages in use after Disconnect", l.RAM.InUse())
	}
	if closes := devs[1].Closes(); len(closes) != 2 || closes[1] != nil {
		t.Fatalf("device closes %v", closes)
	}
}
