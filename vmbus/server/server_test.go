package server

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"gohv/hv/tlfs"
	"gohv/vmbus/proto"
	"gohv/vmbus/ring"
)

var scsi = proto.SCSIGUID

func TestNegotiatesLinuxOrder(t *testing.T) {
	g := start(t, Config{})
	// Linux 6.1 asks 5.3 first, on connection 4, with msg_sint 2.
	g.post(proto.InitiateContact{VersionRequested: proto.VersionCopper, MessageSINT: 2})
	if r := expect[proto.VersionResponse](g); r.VersionSupported {
		t.Fatal("6.0 accepted: the server does not speak it")
	}
	g.post(proto.InitiateContact{VersionRequested: proto.VersionWin10V5_3, TargetVCPU: 1, MessageSINT: 2})
	r := expect[proto.VersionResponse](g)
	if !r.VersionSupported || r.MessageConnectionID != proto.MessageConnectionID {
		t.Fatalf("5.3: %+v, want supported with msg_conn_id 1", r)
	}
	if v := g.s.Version(); v != proto.VersionWin10V5_3 {
		t.Fatalf("Version() = %v", v)
	}
}

func TestRepliesGoToTheTargetVP(t *testing.T) {
	g := start(t, Config{}, &echo{typ: scsi})
	g.post(proto.InitiateContact{VersionRequested: proto.VersionWin10V5_3, TargetVCPU: 1, MessageSINT: 2})
	if p := <-g.h.msgs; p.vp != 1 {
		t.Fatalf("VERSION_RESPONSE to VP %d, want the target VP 1", p.vp)
	}
	g.post(proto.RequestOffers{})
	if p := <-g.h.msgs; p.vp != 1 {
		t.Fatalf("offer to VP %d", p.vp)
	}
}

func TestMaxVersionAndOldVersions(t *testing.T) {
	g := start(t, Config{MaxVersion: proto.VersionWin10})
	for _, v := range proto.Linux61Versions {
		g.post(proto.InitiateContact{VersionRequested: v, MessageSINT: 2})
		r := expect[proto.VersionResponse](g)
		if want := v <= proto.VersionWin10; r.VersionSupported != want {
			t.Fatalf("version %v: supported %v, want %v", v, r.VersionSupported, want)
		}
		if r.VersionSupported {
			if r.MessageConnectionID != 0 {
				t.Fatalf("4.0 answered with msg_conn_id %d: only 5.0 and later carry one", r.MessageConnectionID)
			}
			break
		}
	}
	for _, v := range []proto.Version{proto.VersionWS2008, proto.VersionWin7, proto.MakeVersion(9, 9)} {
		g.post(proto.InitiateContact{VersionRequested: v})
		if expect[proto.VersionResponse](g).VersionSupported {
			t.Fatalf("version %v accepted", v)
		}
	}
}

func TestRefusesBadTargetAndSINT(t *testing.T) {
	g := start(t, Config{})
	g.post(proto.InitiateContact{VersionRequested: proto.VersionWin10V5_3, TargetVCPU: 7, MessageSINT: 2})
	if expect[proto.VersionResponse](g).VersionSupported {
		t.Fatal("accepted a target VP the partition lacks")
	}
	g.post(proto.InitiateContact{VersionRequested: proto.VersionWin10V5_3, MessageSINT: 5})
	if expect[proto.VersionResponse](g).VersionSupported {
		t.Fatal("accepted messages on SINT 5")
	}
}

func TestMessagesBeforeContactAreDropped(t *testing.T) {
	g := start(t, Config{}, &echo{typ: scsi})
	g.post(proto.RequestOffers{})
	g.post(proto.OpenChannel{ChildRelID: 1})
	g.quiet()
	// Garbage and host-only messages are dropped too.
	g.s.HandleMessage(0, 1, []byte{1, 2, 3})
	g.post(proto.AllOffersDelivered{})
	g.quiet()
}

func TestOffers(t *testing.T) {
	g := start(t, Config{}, &echo{typ: scsi}, &echo{typ: proto.ShutdownGUID})
	offers := g.connect(proto.VersionWin10V5_3)
	if len(offers) != 2 {
		t.Fatalf("%d offers", len(offers))
	}
	for i, o := range offers {
		relid := uint32(i + 1)
		if o.ChildRelID != relid || o.ConnectionID != ConnectionIDBase+relid || !o.DedicatedInterrupt || o.MonitorAllocated {
			t.Errorf("offer %d: %+v", i, o)
		}
		if !g.h.isBound(o.ConnectionID) {
			t.Errorf("connection %#x not bound", o.ConnectionID)
		}
	}
	if offers[0].InterfaceType != scsi || offers[1].InterfaceType != proto.ShutdownGUID {
		t.Error("offers out of order")
	}
	// A device added later is offered at once.
	relid, err := g.s.AddDevice(&echo{typ: proto.HeartbeatGUID})
	if err != nil {
		t.Fatal(err)
	}
	if o := expect[proto.OfferChannel](g); o.ChildRelID != relid || o.InterfaceType != proto.HeartbeatGUID {
		t.Fatalf("late offer %+v", o)
	}
}

func TestBusyGuestQueueIsRetried(t *testing.T) {
	g := start(t, Config{}, &echo{typ: scsi})
	g.h.mu.Lock()
	g.h.busy = 5
	g.h.mu.Unlock()
	if len(g.connect(proto.VersionWin10V5_3)) != 1 {
		t.Fatal("offer lost while the queue was busy")
	}
}

func TestGPADLMultiBody(t *testing.T) {
	g := start(t, Config{}, &echo{typ: scsi})
	g.connect(proto.VersionWin10V5_3)
	// 64 pages: a header with 26 PFNs and bodies of 28 and 10, as storvsc's.
	if st := g.gpadl(1, 7, g.alloc(64)); st != 0 {
		t.Fatalf("status %#x", st)
	}
	g.post(proto.GPADLTeardown{ChildRelID: 1, GPADL: 7})
	if m := expect[proto.GPADLTorndown](g); m.GPADL != 7 {
		t.Fatalf("torndown %d", m.GPADL)
	}
}

func TestGPADLRefusals(t *testing.T) {
	g := start(t, Config{}, &echo{typ: scsi})
	g.connect(proto.VersionWin10V5_3)
	if st := g.gpadl(1, 1, []uint64{20, 1 << 40}); st == 0 {
		t.Error("GPADL with a page outside RAM accepted")
	}
	if st := g.gpadl(9, 2, []uint64{20}); st == 0 {
		t.Error("GPADL for a relid never offered accepted")
	}
	if st := g.gpadl(1, 3, []uint64{20}); st != 0 {
		t.Fatalf("good GPADL refused: %#x", st)
	}
	if st := g.gpadl(1, 3, []uint64{21}); st == 0 {
		t.Error("GPADL handle reused while in use")
	}
	// A body that overflows range_buflen.
	arr, _ := proto.AppendGPARange(nil, 2*proto.PageSize, 0, []uint64{22, 23})
	g.post(proto.GPADLHeader{ChildRelID: 1, GPADL: 4, RangeBufLen: uint16(len(arr)), RangeCount: 1, Data: arr[:16]})
	g.post(proto.GPADLBody{GPADL: 4, Data: make([]byte, 64)})
	if c := expect[proto.GPADLCreated](g); c.GPADL != 4 || c.CreationStatus == 0 {
		t.Errorf("overflowing GPADL: %+v", c)
	}
	// A body for nothing is dropped; range arrays that do not parse fail.
	g.post(proto.GPADLBody{GPADL: 99, Data: make([]byte, 8)})
	g.quiet()
	bad := make([]byte, 16) // byte_count 0
	g.post(proto.GPADLHeader{ChildRelID: 1, GPADL: 5, RangeBufLen: 16, RangeCount: 1, Data: bad})
	if c := expect[proto.GPADLCreated](g); c.CreationStatus == 0 {
		t.Error("empty range accepted")
	}
}

func TestGPADLPendingBound(t *testing.T) {
	g := start(t, Config{}, &echo{typ: scsi})
	g.connect(proto.VersionWin10V5_3)
	arr, _ := proto.AppendGPARange(nil, 2*proto.PageSize, 0, []uint64{22, 23})
	for h := uint32(1); h <= MaxPendingGPADLs; h++ {
		g.post(proto.GPADLHeader{ChildRelID: 1, GPADL: h, RangeBufLen: uint16(len(arr)), RangeCount: 1, Data: arr[:16]})
	}
	g.quiet()
	g.post(proto.GPADLHeader{ChildRelID: 1, GPADL: 100, RangeBufLen: uint16(len(arr)), RangeCount: 1, Data: arr[:16]})
	if c := expect[proto.GPADLCreated](g); c.GPADL != 100 || c.CreationStatus == 0 {
		t.Fatalf("pending GPADL beyond the bound: %+v", c)
	}
}

func TestOpenEchoClose(t *testing.T) {
	dev := &echo{typ: scsi}
	g := start(t, Config{}, dev)
	offers := g.connect(proto.VersionWin10V5_3)
	st, r := g.open(offers[0], 1, 4, 4)
	if st != 0 {
		t.Fatalf("open: %#x", st)
	}
	for i := 0; i < 100; i++ {
		msg := bytes.Repeat([]byte{byte(i)}, 8+i%50)
		r.sendInband(t, uint64(i+1), msg)
		p := r.read(t)
		if p.Type != proto.PktComp || p.TransactionID != uint64(i+1) || !bytes.Equal(p.Payload[:len(msg)], msg) {
			t.Fatalf("packet %d: %+v", i, p)
		}
	}
	if g.h.signalCount(1) == 0 {
		t.Error("the host never signalled the guest")
	}
	dev.mu.Lock()
	toGuest, fromGuest := dev.last.SignalCounts()
	dev.mu.Unlock()
	if toGuest != uint64(g.h.signalCount(1)) || fromGuest == 0 {
		t.Errorf("the channel counted %d signals to the guest (the host saw %d) and %d from it", toGuest, g.h.signalCount(1), fromGuest)
	}
	g.h.mu.Lock()
	vp := g.h.sigVP[1]
	g.h.mu.Unlock()
	if vp != 1 {
		t.Errorf("signals went to VP %d, want the open's target VP 1", vp)
	}
	// A second open of an open channel fails; the first stays open.
	if st, _ := g.open(offers[0], 2, 2, 2); st == 0 {
		t.Fatal("second open of an open channel succeeded")
	}
	g.post(proto.CloseChannel{ChildRelID: 1})
	g.post(proto.GPADLTeardown{ChildRelID: 1, GPADL: 1})
	expect[proto.GPADLTorndown](g)
	if errs := dev.closeErrs(); len(errs) != 1 || errs[0] != nil {
		t.Fatalf("handler closes %v, want one orderly close", errs)
	}
	// Open again on a new GPADL: the device serves a new open.
	if st, r = g.open(offers[0], 3, 2, 2); st != 0 {
		t.Fatalf("reopen: %#x", st)
	}
	r.sendInband(t, 9, []byte("again..."))
	if p := r.read(t); p.TransactionID != 9 {
		t.Fatalf("after reopen: %+v", p)
	}
}

func TestOpenRefusals(t *testing.T) {
	dev := &echo{typ: scsi}
	g := start(t, Config{}, dev, &echo{typ: proto.ShutdownGUID, refuse: true})
	offers := g.connect(proto.VersionWin10V5_3)
	try := func(name string, m proto.OpenChannel) {
		t.Helper()
		g.post(m)
		if r := expect[proto.OpenChannelResult](g); r.Status == 0 {
			t.Errorf("%s: opened", name)
		}
	}
	try("no such GPADL", proto.OpenChannel{ChildRelID: 1, RingBufferGPADL: 50, DownstreamRingBufferPageOffset: 2})
	if st := g.gpadl(1, 50, g.alloc(4)); st != 0 {
		t.Fatal(st)
	}
	try("offset leaves one page", proto.OpenChannel{ChildRelID: 1, RingBufferGPADL: 50, DownstreamRingBufferPageOffset: 3})
	try("offset 1", proto.OpenChannel{ChildRelID: 1, RingBufferGPADL: 50, DownstreamRingBufferPageOffset: 1})
	try("bad target VP", proto.OpenChannel{ChildRelID: 1, RingBufferGPADL: 50, DownstreamRingBufferPageOffset: 2, TargetVP: 9})
	try("unknown relid", proto.OpenChannel{ChildRelID: 77, RingBufferGPADL: 50, DownstreamRingBufferPageOffset: 2})
	try("another relid's GPADL", proto.OpenChannel{ChildRelID: 2, RingBufferGPADL: 50, DownstreamRingBufferPageOffset: 2})
	if st, _ := g.open(offers[1], 51, 2, 2); st == 0 {
		t.Error("a device's refusal did not fail the open")
	}
	// A GPADL not of whole pages cannot hold rings.
	arr, _ := proto.AppendGPARange(nil, 4*proto.PageSize-8, 8, g.alloc(4))
	g.post(proto.GPADLHeader{ChildRelID: 1, GPADL: 52, RangeBufLen: uint16(len(arr)), RangeCount: 1, Data: arr})
	if c := expect[proto.GPADLCreated](g); c.CreationStatus != 0 {
		t.Fatal("partial-page GPADL refused")
	}
	try("partial pages", proto.OpenChannel{ChildRelID: 1, RingBufferGPADL: 52, DownstreamRingBufferPageOffset: 2})
	if dev.opens != 0 {
		t.Errorf("device opened %d times", dev.opens)
	}
}

func TestTeardownUnderOpenChannelClosesIt(t *testing.T) {
	dev := &echo{typ: scsi}
	g := start(t, Config{}, dev)
	offers := g.connect(proto.VersionWin10V5_3)
	if st, _ := g.open(offers[0], 1, 2, 2); st != 0 {
		t.Fatal(st)
	}
	g.post(proto.GPADLTeardown{ChildRelID: 1, GPADL: 1})
	expect[proto.GPADLTorndown](g)
	if errs := dev.closeErrs(); len(errs) != 1 || errs[0] == nil {
		t.Fatalf("handler closes %v, want one with the reason", errs)
	}
}

func TestCorruptRingRescinds(t *testing.T) {
	dev := &echo{typ: scsi}
	g := start(t, Config{}, dev)
	offers := g.connect(proto.VersionWin10V5_3)
	st, _ := g.open(offers[0], 1, 2, 2)
	if st != 0 {
		t.Fatal(st)
	}
	// The guest publishes a write index outside the data area.
	ctrl, err := ring.NewFlatMemory(g.h.ram[16*proto.PageSize : 18*proto.PageSize])
	if err != nil {
		t.Fatal(err)
	}
	ctrl.StoreU32(ring.WriteIndexOffset, 0xfffff8)
	g.s.HandleEvent(offers[0].ConnectionID)
	if m := expect[proto.RescindChannelOffer](g); m.ChildRelID != 1 {
		t.Fatalf("rescind %+v", m)
	}
	if errs := dev.closeErrs(); len(errs) != 1 || errs[0] == nil || !strings.Contains(errs[0].Error(), "corrupt") {
		t.Fatalf("handler closes %v", errs)
	}
	// Linux closes the rescinded channel and releases the relid; the
	// server tolerates the close and frees the relid.
	g.post(proto.CloseChannel{ChildRelID: 1})
	g.post(proto.RelIDReleased{ChildRelID: 1})
	waitFor(t, "the connection unbound", func() bool { return !g.h.isBound(offers[0].ConnectionID) })
	g.post(proto.RequestOffers{})
	expect[proto.AllOffersDelivered](g)
}

func TestHandlerErrorAndPanic(t *testing.T) {
	var panics atomic.Int32
	failing, panicking := &echo{typ: scsi}, &echo{typ: proto.ShutdownGUID, panicOn: "boom"}
	g := start(t, Config{OnPanic: func(error) { panics.Add(1) }}, failing, panicking)
	offers := g.connect(proto.VersionWin10V5_3)
	_, r := g.open(offers[0], 1, 2, 2)
	_, r2 := g.open(offers[1], 2, 2, 2)
	r.sendInband(t, 1, []byte("fail...."))
	if m := expect[proto.RescindChannelOffer](g); m.ChildRelID != 1 {
		t.Fatal(m)
	}
	// The other channel still serves.
	r2.sendInband(t, 1, []byte("hello..."))
	if p := r2.read(t); p.TransactionID != 1 {
		t.Fatal(p)
	}
	// A panic in a device: its channel goes, OnPanic hears of it.
	r2.sendInband(t, 2, []byte("boom...."))
	if m := expect[proto.RescindChannelOffer](g); m.ChildRelID != 2 {
		t.Fatal(m)
	}
	waitFor(t, "OnPanic", func() bool { return panics.Load() == 1 })
	if errs := panicking.closeErrs(); len(errs) != 1 || errs[0] == nil || !strings.Contains(errs[0].Error(), "panic") {
		t.Fatalf("panicking device closes %v", errs)
	}
}

func TestUnloadAndReconnect(t *testing.T) {
	dev := &echo{typ: scsi}
	g := start(t, Config{}, dev)
	offers := g.connect(proto.VersionWin10V5_3)
	g.open(offers[0], 1, 2, 2)
	g.post(proto.Unload{})
	expect[proto.UnloadResponse](g)
	if errs := dev.closeErrs(); len(errs) != 1 {
		t.Fatalf("closes %v", errs)
	}
	// After unload nothing is served until a new contact.
	g.post(proto.RequestOffers{})
	g.quiet()
	offers = g.connect(proto.VersionWin10V5_3)
	if len(offers) != 1 {
		t.Fatal("not offered again after reconnect")
	}
	// The old GPADL handle is free again.
	if st, _ := g.open(offers[0], 1, 2, 2); st != 0 {
		t.Fatalf("reopen after reconnect: %#x", st)
	}
	// A new contact while open resets too.
	g.post(proto.InitiateContact{VersionRequested: proto.VersionWin10V5_3, MessageSINT: 2})
	expect[proto.VersionResponse](g)
	if errs := dev.closeErrs(); len(errs) != 2 {
		t.Fatalf("closes %v after the second contact", errs)
	}
}

func TestRescindByHost(t *testing.T) {
	dev := &echo{typ: scsi}
	g := start(t, Config{}, dev)
	offers := g.connect(proto.VersionWin10V5_3)
	g.open(offers[0], 1, 2, 2)
	g.s.Rescind(1)
	expect[proto.RescindChannelOffer](g)
	// Open of a rescinded channel fails.
	g.post(proto.OpenChannel{ChildRelID: 1, RingBufferGPADL: 1, DownstreamRingBufferPageOffset: 2})
	if r := expect[proto.OpenChannelResult](g); r.Status == 0 {
		t.Fatal("rescinded channel opened")
	}
	g.post(proto.RelIDReleased{ChildRelID: 1})
	waitFor(t, "unbind", func() bool { return !g.h.isBound(offers[0].ConnectionID) })
	// The relid is reused for the next device.
	relid, err := g.s.AddDevice(&echo{typ: scsi})
	if err != nil || relid != 1 {
		t.Fatalf("relid %d, %v", relid, err)
	}
	expect[proto.OfferChannel](g)
}

func TestModifyChannel(t *testing.T) {
	g := start(t, Config{}, &echo{typ: scsi})
	offers := g.connect(proto.VersionWin10V5_3)
	_, r := g.open(offers[0], 1, 2, 2)
	g.post(proto.ModifyChannel{ChildRelID: 1, TargetVP: 0})
	if m := expect[proto.ModifyChannelResponse](g); m.Status != 0 {
		t.Fatal(m)
	}
	g.post(proto.ModifyChannel{ChildRelID: 1, TargetVP: 5})
	if m := expect[proto.ModifyChannelResponse](g); m.Status == 0 {
		t.Fatal("moved to a VP the partition lacks")
	}
	r.sendInband(t, 1, []byte("12345678"))
	r.read(t)
	g.h.mu.Lock()
	vp := g.h.sigVP[1]
	g.h.mu.Unlock()
	if vp != 0 {
		t.Fatalf("signal to VP %d after MODIFYCHANNEL to 0", vp)
	}
}

func TestTLConnectRefused(t *testing.T) {
	g := start(t, Config{})
	g.connect(proto.VersionWin10V5_3)
	g.post(proto.TLConnectRequest{})
	if m := expect[proto.TLConnectResult](g); m.Status >= 0 {
		t.Fatalf("hv_sock connect: %+v", m)
	}
}

func TestHotPathsDoNotAllocate(t *testing.T) {
	g := start(t, Config{}, &echo{typ: scsi})
	offers := g.connect(proto.VersionWin10V5_3)
	g.open(offers[0], 1, 2, 2)
	msg, _ := proto.Marshal(proto.RequestOffers{})
	if n := testing.AllocsPerRun(100, func() {
		g.s.HandleEvent(offers[0].ConnectionID)
	}); n != 0 {
		t.Errorf("HandleEvent allocates %v", n)
	}
	// A server nobody runs: the queue is drained here, so only
	// HandleMessage's own allocations count.
	idle := New(newFakeHost(4), Config{})
	if n := testing.AllocsPerRun(20, func() {
		if idle.HandleMessage(0, 1, msg) != tlfs.StatusSuccess {
			t.Fatal("queue full")
		}
		<-idle.in
	}); n != 0 {
		t.Errorf("HandleMessage allocates %v", n)
	}
}

func TestClosedServer(t *testing.T) {
	g := start(t, Config{}, &echo{typ: scsi})
	offers := g.connect(proto.VersionWin10V5_3)
	g.open(offers[0], 1, 2, 2)
	g.s.Close()
	if st := g.s.HandleMessage(0, 1, []byte{3, 0, 0, 0, 0, 0, 0, 0}); st == tlfs.StatusSuccess {
		t.Error("closed server took a message")
	}
	if g.h.isBound(offers[0].ConnectionID) {
		t.Error("connection still bound after Close")
	}
	if g.s.chans[1].Load() != nil {
		t.Error("channel still reachable after Close")
	}
	if _, err := g.s.AddDevice(&echo{}); !errors.Is(err, ErrClosed) {
		t.Errorf("AddDevice on a closed server: %v", err)
	}
}

// samePFN is n PFNs all naming page pfn: a GPADL may name a page more
// than once, so the fake's small RAM holds GPADLs of any size.
func samePFN(n int, pfn uint64) []uint64 {
	pfns := make([]uint64, n)
	for i := range pfns {
		pfns[i] = pfn
	}
	return pfns
}

// errorLog is a slog.Handler that keeps the "err" attributes logged.
type errorLog struct {
	mu   sync.Mutex
	errs []error
}

func (l *errorLog) Enabled(context.Context, slog.Level) bool { return true }
func (l *errorLog) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *errorLog) WithGroup(string) slog.Handler            { return l }
func (l *errorLog) Handle(_ context.Context, r slog.Record) error {
	r.Attrs(func(a slog.Attr) bool {
		if err, ok := a.Value.Any().(error); ok && a.Key == "err" {
			l.mu.Lock()
			l.errs = append(l.errs, err)
			l.mu.Unlock()
		}
		return true
	})
	return nil
}

func (l *errorLog) count(target error) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, err := range l.errs {
		if errors.Is(err, target) {
			n++
		}
	}
	return n
}

// maxGPADL is the most PFNs one GPADL of one range holds: range_buflen
// is 16 bits.
const maxGPADL = (0xFFFF - 8) / 8

// TestGPADLPageLimit: the pages a connection's GPADLs name are bounded by
// MaxGPADLPages, a pending GPADL counting from its header at what its
// range_buflen has room for; one past the bound is refused with
// GPADL_CREATED's failure status as soon as its header arrives (its
// bodies are then dropped), with an error wrapping errGPADLPages; the
// pages go back to the budget on GPADL_TEARDOWN, on a refusal, when
// the relid is released and on UNLOAD.
func TestGPADLPageLimit(t *testing.T) {
	log := &errorLog{}
	dev := &echo{typ: scsi}
	g := start(t, Config{Log: slog.New(log)}, dev, &echo{typ: proto.ShutdownGUID})
	g.connect(proto.VersionWin10V5_3)
	if g.s.gpadlPageLimit != MaxGPADLPages || MaxGPADLPages != 16384 {
		t.Fatalf("limit %d, MaxGPADLPages %d", g.s.gpadlPageLimit, MaxGPADLPages)
	}
	held := func(want int) {
		t.Helper()
		if n := g.heldPages(); n != want {
			t.Fatalf("the server counts %d pages held, want %d", n, want)
		}
	}
	refused := 0
	refuse := func(relid, handle uint32, pfns []uint64) {
		t.Helper()
		if st := g.gpadl(relid, handle, pfns); st == 0 {
			t.Fatalf("GPADL %d of %d pages accepted past the limit", handle, len(pfns))
		}
		if refused++; log.count(errGPADLPages) != refused {
			t.Fatalf("%d refusals logged wrapping errGPADLPages, want %d", log.count(errGPADLPages), refused)
		}
	}
	accept := func(relid, handle uint32, pfns []uint64) {
		t.Helper()
		if st := g.gpadl(relid, handle, pfns); st != 0 {
			t.Fatalf("GPADL %d of %d pages refused: %#x", handle, len(pfns), st)
		}
	}
	teardown := func(relid, handle uint32) {
		t.Helper()
		g.post(proto.GPADLTeardown{ChildRelID: relid, GPADL: handle})
		if m := expect[proto.GPADLTorndown](g); m.GPADL != handle {
			t.Fatalf("torndown %d, want %d", m.GPADL, handle)
		}
	}

	// Up to the limit exactly, over both channels: the bound is the
	// partition's.
	accept(1, 1, samePFN(maxGPADL, 20))
	accept(2, 2, samePFN(maxGPADL, 21))
	refuse(1, 3, samePFN(MaxGPADLPages-2*maxGPADL+1, 22))
	accept(1, 3, samePFN(MaxGPADLPages-2*maxGPADL, 22))
	held(MaxGPADLPages)
	refuse(2, 4, []uint64{23})
	held(MaxGPADLPages)

	// The refusal answers the header: the bodies that follow are for no
	// GPADL and dropped.
	arr, _ := proto.AppendGPARange(nil, 64*proto.PageSize, 0, samePFN(64, 24))
	hdr, bodies, _ := proto.SplitGPADL(1, 5, 1, arr)
	g.post(hdr)
	if c := expect[proto.GPADLCreated](g); c.GPADL != 5 || c.CreationStatus == 0 {
		t.Fatalf("header past the limit: %+v", c)
	}
	for _, b := range bodies {
		g.post(b)
	}
	g.quiet()
	refused++

	// GPADL_TEARDOWN gives the pages back.
	teardown(1, 1)
	held(MaxGPADLPages - maxGPADL)
	accept(1, 1, samePFN(maxGPADL, 25))

	// A pending GPADL holds what its range_buflen has room for.
	teardown(1, 1)
	teardown(2, 2)
	held(MaxGPADLPages - 2*maxGPADL)
	arr, _ = proto.AppendGPARange(nil, maxGPADL*proto.PageSize, 0, samePFN(maxGPADL, 26))
	for _, h := range []uint32{6, 7} {
		hdr, _, _ := proto.SplitGPADL(1, h, 1, arr)
		g.post(hdr)
	}
	g.quiet()
	held(MaxGPADLPages)
	refuse(1, 8, []uint64{27})

	// A GPADL refused once its array is in gives its pages back too.
	teardown(1, 6)
	teardown(1, 7)
	if st := g.gpadl(1, 9, append(samePFN(100, 28), 1<<40)); st == 0 {
		t.Fatal("GPADL with a page outside RAM accepted")
	}
	held(MaxGPADLPages - 2*maxGPADL)

	// Released with the relid: the host rescinds relid 2, the guest
	// releases it, and its GPADLs go.
	accept(2, 10, samePFN(maxGPADL, 29))
	held(MaxGPADLPages - maxGPADL)
	g.s.Rescind(2)
	expect[proto.RescindChannelOffer](g)
	g.post(proto.RelIDReleased{ChildRelID: 2})
	held(MaxGPADLPages - 2*maxGPADL)

	// UNLOAD drops everything; a new connection starts from nothing.
	accept(1, 11, samePFN(maxGPADL, 30))
	g.post(proto.Unload{})
	expect[proto.UnloadResponse](g)
	held(0)
	offers := g.connect(proto.VersionWin10V5_3)
	accept(1, 1, samePFN(maxGPADL, 31))
	accept(1, 2, samePFN(maxGPADL, 32))
	held(2 * maxGPADL)
	if st, _ := g.open(offers[0], 3, 2, 2); st != 0 {
		t.Fatalf("open beside %d held pages: %#x", 2*maxGPADL, st)
	}
	held(2*maxGPADL + 4)
	if n := log.count(errGPADLPages); n != refused {
		t.Fatalf("%d refusals logged wrapping errGPADLPages, want %d", n, refused)
	}
}

// TestGPADLPageLimitFitsLinux: what Linux 6.1's drivers make of GPADLs
// in one partition (netvsc-facts.md §1, §4; linux-guest-hyperv-facts.md
// §5.1) fits under MaxGPADLPages: hv_utils' three integration services
// (8-page rings), two hv_storvsc controllers (64-page rings), and either
// one hv_netvsc NIC at ethtool's largest receive buffer (31 MiB) with 8
// channels, or two NICs at the defaults (16 MiB) with 8 channels each.
func TestGPADLPageLimitFitsLinux(t *testing.T) {
	nic := func(recvPages int) []int {
		sizes := []int{recvPages, 255} // receive buffer, send buffer
		for range 8 {
			sizes = append(sizes, 256) // a channel's 2 × 512 KiB rings
		}
		return sizes
	}
	base := func() []int { return []int{8, 8, 8, 64, 64} }
	for name, sizes := range map[string][]int{
		"one NIC at the largest receive buffer": append(base(), nic(31<<20/proto.PageSize)...),
		"two NICs at the defaults":              append(append(base(), nic(16<<20/proto.PageSize)...), nic(16<<20/proto.PageSize)...),
	} {
		t.Run(name, func(t *testing.T) {
			g := start(t, Config{}, &echo{typ: scsi})
			g.connect(proto.VersionWin10V5_3)
			total := 0
			for i, n := range sizes {
				if st := g.gpadl(1, uint32(i+1), samePFN(n, 20)); st != 0 {
					t.Fatalf("GPADL %d of %d pages, after %d, refused: %#x", i+1, n, total, st)
				}
				total += n
			}
			if total > MaxGPADLPages || g.heldPages() != total {
				t.Fatalf("%d pages, the server counts %d", total, g.heldPages())
			}
			t.Logf("%d of %d pages", total, MaxGPADLPages)
		})
	}
}
