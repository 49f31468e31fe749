package server

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"

	"gohv/hv/tlfs"
	"gohv/vmbus/proto"
	"gohv/vmbus/ring"
)

// FuzzHandleMessage plays a hostile guest against a real server (Run on
// its own goroutine, the fakeHost of harness_test.go): a script of
// channel-management messages — raw bytes, or well-formed ones built from
// a few fields so the fuzzer reaches deep states — interleaved with
// HvCallSignalEvents, with writes to the rings of the channels it opened,
// and with the host rescinding and adding devices under it. After every
// step the server must still be running (no panic, OnPanic never called)
// and, checked on Run's goroutine once it has handled the step:
//
//   - its bookkeeping holds together: a GPADL is pending (its array
//     partly in, no pages) or established (pages, no array), never both;
//     at most MaxPendingGPADLs pending and MaxGPADLs in all; the pages
//     they reserve add up to the server's count, which stays within its
//     limit (fuzzGPADLPageLimit here, so scripts reach it), and an
//     established one maps exactly what it reserved; every GPADL
//     belongs to a device that exists; an open channel is its device's,
//     on an established GPADL of its relid that names it as user, and in
//     the HandleEvent table, and nothing else is; a rescinded device has
//     no channel; without a connection there is no GPADL, no channel and
//     no offer (INITIATE_CONTACT and UNLOAD freed them); every device's
//     connection is bound and no other; the devices saw exactly one Close
//     per Open and no packet after it;
//   - every message it posted parses, is host-to-guest and goes to one of
//     the partition's VPs, and a request the guest waits for got exactly
//     its one reply (VERSION_RESPONSE, GPADL_CREATED once the array is in
//     or refused, OPENCHANNEL_RESULT, GPADL_TORNDOWN, UNLOAD_RESPONSE,
//     MODIFYCHANNEL_RESPONSE from 5.3, TL_CONNECT_RESULT); nothing is
//     posted to a guest that has not made contact;
//   - it touched no memory outside the guest's RAM (guard bytes on both
//     sides stay as they were) and, inside it, wrote only pages the guest
//     handed over in a GPADL, and none of those once no GPADL held them
//     (after GPADL_TORNDOWN, UNLOAD_RESPONSE or a new contact).
//
// At the end a well-behaved guest reconnects and every surviving device
// still opens and echoes a packet: whatever came before cost the guest
// channels or its connection, never the server.
func FuzzHandleMessage(f *testing.F) {
	for _, s := range fuzzScripts() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, script []byte) {
		r := newFuzzRun(t)
		defer r.stop()
		r.play(script)
		r.checkMemory()
		r.liveness()
	})
}

// The script: a run of steps, each an opcode byte (op % 8 selects the
// step; missing argument bytes end the script) and its arguments.
const (
	opRaw     = iota // vp, n, n bytes: any message bytes (n % 241)
	opContact        // version index, target VP, flags (bit 0: another SINT)
	opOffers         // REQUESTOFFERS
	opGPADL          // relid, handle, first page (mod 128), pages, flags: a GPADL as header and bodies
	opOpen           // relid, handle, downstream offset, target VP, flags: OPENCHANNEL
	opMisc           // kind, a, b: close, teardown, relid released, modify, unload, TL connect; the host's rescind, add
	opEvent          // relid: HvCallSignalEvent on its connection
	opRing           // relid, kind, n, n bytes: the guest's side of an open channel's rings
	opCount
)

// GPADL step flags.
const (
	gpadlDropLast  = 1 << iota // leave the last body out: the GPADL stays pending
	gpadlOutside               // one PFN outside the guest's RAM
	gpadlPartial               // a range that is not whole pages
	gpadlExtraBody             // one body more than range_buflen holds
	gpadlNoHeader              // bodies without their header
)

// Open step flags.
const (
	openInitRings = 1 << iota // the guest initialises both rings first, as Linux does
	openNoIRQ                 // target VP VPIndexDisableInterrupt
)

// Fuzz geometry: three devices to start with (relid 3's refuses every
// open), relids and handles drawn from small sets so that they collide,
// and the script's pages below livenessPage.
const (
	fuzzDevices  = 3
	fuzzRelids   = fuzzDevices + 3 // 0 is nobody's, 4 and 5 only devices the script adds
	fuzzHandles  = 8
	fuzzPages    = 256
	firstPage    = 16  // the script's GPADLs start at firstPage + 0..127 …
	livenessPage = 208 // … and end below livenessPage
	guardBytes   = 4096
	guardByte    = 0xA5
	maxGPADLPgs  = 64
	// fuzzGPADLPageLimit stands in for MaxGPADLPages: five of the
	// script's largest GPADLs cross it, the pending_unload seed's eight
	// pending ones do not.
	fuzzGPADLPageLimit = 4 * maxGPADLPgs
	fuzzVPs            = 2
	// maxFuzzDevices bounds the devices one script adds.
	maxFuzzDevices = 8
)

// fuzzScript builds scripts for the seeds.
type fuzzScript []byte

func (s *fuzzScript) raw(vp byte, b []byte) *fuzzScript {
	*s = append(append(*s, opRaw, vp, byte(len(b))), b...)
	return s
}

func (s *fuzzScript) msg(m proto.Message) *fuzzScript {
	b, err := proto.Marshal(m)
	if err != nil {
		panic(err)
	}
	return s.raw(0, b)
}

func (s *fuzzScript) contact(version, vp, flags byte) *fuzzScript {
	*s = append(*s, opContact, version, vp, flags)
	return s
}

func (s *fuzzScript) offers() *fuzzScript { *s = append(*s, opOffers); return s }

func (s *fuzzScript) gpadl(relid, handle, first, pages, flags byte) *fuzzScript {
	*s = append(*s, opGPADL, relid, handle, first, pages, flags)
	return s
}

func (s *fuzzScript) open(relid, handle, offset, vp, flags byte) *fuzzScript {
	*s = append(*s, opOpen, relid, handle, offset, vp, flags)
	return s
}

func (s *fuzzScript) misc(kind, a, b byte) *fuzzScript { *s = append(*s, opMisc, kind, a, b); return s }

func (s *fuzzScript) event(relid byte) *fuzzScript { *s = append(*s, opEvent, relid); return s }

func (s *fuzzScript) ring(relid, kind byte, b []byte) *fuzzScript {
	*s = append(append(*s, opRing, relid, kind, byte(len(b))), b...)
	return s
}

// Misc kinds.
const (
	miscClose = iota
	miscTeardown
	miscReleased
	miscModify
	miscUnload
	miscTLConnect
	miscRescind // the host takes relid's offer back
	miscAdd     // the host adds a device (at the lowest free relid)
	miscCount
)

// Ring kinds.
const (
	ringSend    = iota // an in-band packet with the bytes as payload
	ringRaw            // a packet whose descriptor is the bytes (padded to frame it)
	ringControl        // bytes 0: word (0..4: indices, mask, pending size, features), 1..4: value, for either ring (bit 7 of byte 0)
	ringRead           // the guest drains the host's completions
	ringCount
)

// fuzzScripts are the seeds (and the committed corpus): a Linux session
// and the ways a guest can get it wrong.
func fuzzScripts() map[string][]byte {
	linux := func() *fuzzScript {
		s := &fuzzScript{}
		return s.contact(0, 0, 0).offers()
	}
	session := linux().gpadl(1, 1, 0, 4, 0).open(1, 1, 2, 1, openInitRings).
		ring(1, ringSend, []byte("hello...")).ring(1, ringRead, nil).
		misc(miscClose, 1, 0).misc(miscTeardown, 1, 1).misc(miscUnload, 0, 0)
	big := linux().gpadl(2, 3, 40, 60, 0).open(2, 3, 30, 0, openInitRings).
		ring(2, ringSend, bytes.Repeat([]byte("x"), 200)).event(2).ring(2, ringRead, nil).
		misc(miscModify, 2, 1).misc(miscModify, 2, 7)
	teardownOpen := linux().gpadl(1, 2, 0, 4, 0).open(1, 2, 2, 0, openInitRings).
		misc(miscTeardown, 1, 2).ring(1, ringSend, []byte("late....")).event(1)
	reconnectOpen := linux().gpadl(1, 1, 0, 4, 0).gpadl(2, 2, 8, 6, gpadlDropLast).open(1, 1, 2, 0, openInitRings).
		contact(0, 1, 0).offers().gpadl(1, 1, 0, 4, 0).open(1, 1, 2, 1, openInitRings)
	failing := linux().gpadl(1, 1, 0, 4, 0).open(1, 1, 2, 0, openInitRings).
		ring(1, ringSend, []byte("fail....")).event(1).
		misc(miscClose, 1, 0).misc(miscReleased, 1, 0).offers()
	corrupt := linux().gpadl(2, 4, 0, 4, 0).open(2, 4, 2, 0, openInitRings|openNoIRQ).
		ring(2, ringControl, []byte{0, 0xF8, 0xFF, 0xFF, 0}).event(2).
		ring(2, ringRaw, []byte{0x77, 0, 2, 0, 4, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8}).event(2)
	refusals := linux().gpadl(0, 1, 0, 2, 0).gpadl(4, 1, 0, 2, 0).gpadl(1, 1, 250, 30, gpadlOutside).
		gpadl(1, 2, 0, 40, gpadlExtraBody).gpadl(1, 3, 0, 40, gpadlNoHeader).gpadl(1, 5, 0, 5, gpadlPartial).
		open(1, 5, 2, 0, openInitRings).open(3, 6, 2, 0, 0).gpadl(3, 6, 0, 4, 0).open(3, 6, 2, 0, openInitRings).
		open(1, 6, 2, 0, 0).open(1, 7, 2, 2, 0).misc(miscTLConnect, 0, 0).misc(miscTeardown, 0, 99)
	pending := linux()
	for h := range byte(fuzzMaxPendingSeed) {
		pending.gpadl(1+h%2, h, 4*h, 30, gpadlDropLast)
	}
	pending.misc(miscUnload, 0, 0).contact(0, 0, 0).offers().gpadl(1, 0, 0, 4, 0)
	oldVersion := (&fuzzScript{}).contact(7, 1, 0).offers().gpadl(1, 1, 0, 4, 0).open(1, 1, 2, 1, openInitRings).misc(miscModify, 1, 0)
	hostRescind := linux().gpadl(1, 1, 0, 4, 0).gpadl(1, 2, 8, 4, gpadlDropLast).open(1, 1, 2, 0, openInitRings).
		misc(miscRescind, 1, 0).misc(miscClose, 1, 0).misc(miscTeardown, 1, 1).misc(miscReleased, 1, 0).
		misc(miscAdd, 0, 0).gpadl(1, 1, 0, 4, 0).open(1, 1, 2, 1, openInitRings).ring(1, ringSend, []byte("again...")).
		misc(miscRescind, 2, 0).misc(miscAdd, 0, 0).offers()
	// The page limit (fuzzGPADLPageLimit): a script GPADL of n pages is
	// gpadl(…, n-1, …). Four GPADLs, one pending, hold 252 pages; 5 more
	// are refused, 4 fit; teardown of an established and of a pending
	// one, and the release of a rescinded relid, each make room again.
	pageLimit := linux().gpadl(1, 1, 0, 63, 0).gpadl(1, 2, 0, 63, 0).gpadl(2, 3, 0, 63, 0).gpadl(1, 4, 64, 59, gpadlDropLast).
		gpadl(1, 5, 0, 4, 0).gpadl(1, 5, 0, 3, 0).
		misc(miscTeardown, 1, 1).gpadl(1, 6, 0, 63, 0).open(1, 6, 2, 0, openInitRings).ring(1, ringSend, []byte("limit...")).
		misc(miscTeardown, 1, 4).gpadl(1, 7, 64, 59, 0).gpadl(1, 1, 0, 0, 0).
		misc(miscRescind, 2, 0).misc(miscReleased, 2, 0).gpadl(1, 0, 0, 63, 0).gpadl(1, 1, 0, 0, 0).
		misc(miscUnload, 0, 0).contact(0, 0, 0).offers().gpadl(1, 1, 0, 63, 0)
	badContact := (&fuzzScript{}).contact(8, 0, 0).contact(0, 5, 0).contact(0, 0, 1).offers().
		msg(proto.RequestOffers{}).raw(1, []byte{1, 0, 0, 0, 0, 0, 0, 0})
	return map[string][]byte{
		"linux_session":    *session,
		"big_gpadl":        *big,
		"teardown_open":    *teardownOpen,
		"reconnect_open":   *reconnectOpen,
		"handler_fails":    *failing,
		"corrupt_ring":     *corrupt,
		"refusals":         *refusals,
		"pending_unload":   *pending,
		"old_version":      *oldVersion,
		"bad_contact":      *badContact,
		"host_rescind":     *hostRescind,
		"page_limit":       *pageLimit,
		"garbage":          {opRaw, 0, 9, 0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0, 1},
		"empty":            {},
		"offers_unconnect": {opOffers, opMisc, miscUnload, 0, 0},
	}
}

// fuzzMaxPendingSeed is how many pending GPADLs the pending_unload seed
// leaves: below MaxPendingGPADLs, which the fuzzer is left to cross.
const fuzzMaxPendingSeed = 8

// fuzzDevice is an echo device that checks the server's use of it: one
// Close per Open, no packet after Close. Relid 3's refuses every open.
type fuzzDevice struct {
	typ    proto.GUID
	refuse bool

	mu      sync.Mutex
	opens   int
	closes  int
	misuses []string
}

func (d *fuzzDevice) Offer() Offer {
	return Offer{InterfaceType: d.typ, InterfaceInstance: d.typ}
}

func (d *fuzzDevice) Open(ch *Channel) (Handler, error) {
	if d.refuse {
		return nil, errors.New("fuzz: this device refuses every open")
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.opens++
	return &fuzzHandler{d: d, ch: ch}, nil
}

func (d *fuzzDevice) misuse(format string, args ...any) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.misuses = append(d.misuses, fmt.Sprintf(format, args...))
}

// open is how many opens the device has not seen closed, and what went
// wrong.
func (d *fuzzDevice) open() (int, []string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.opens - d.closes, append([]string(nil), d.misuses...)
}

type fuzzHandler struct {
	d      *fuzzDevice
	ch     *Channel
	closed atomic.Bool
}

// Packet echoes the payload as a completion; one starting "fail" fails
// the channel. Guest-controlled: p.
func (h *fuzzHandler) Packet(p *proto.Packet) error {
	if h.closed.Load() {
		h.d.misuse("relid %d: a packet after Close", h.ch.RelID())
	}
	if bytes.HasPrefix(p.Payload, []byte("fail")) {
		return errors.New("fuzz: asked to fail")
	}
	return h.ch.SendCompletion(p.TransactionID, p.Payload)
}

func (h *fuzzHandler) Close(error) {
	if h.closed.Swap(true) {
		h.d.misuse("relid %d: closed twice", h.ch.RelID())
		return
	}
	h.d.mu.Lock()
	h.d.closes++
	h.d.mu.Unlock()
}

// fuzzRun is one iteration: the server, its guest, and what the checks
// remember between steps.
type fuzzRun struct {
	t       *testing.T
	g       *guest
	s       *Server
	h       *fakeHost
	devs    map[uint32]*fuzzDevice // by relid: the device added last there
	all     []*fuzzDevice          // every device ever added
	backing []byte                 // guard, RAM, guard
	cancel  context.CancelFunc

	panicMu sync.Mutex
	panics  []error

	pfnOf   map[*[proto.PageSize]byte]uint64 // a RAM page's PFN
	handed  [fuzzPages]bool                  // pages some established GPADL held
	held    [fuzzPages]bool                  // pages an established GPADL holds now
	wasHeld [fuzzPages]bool                  // … and at the step before
	shadow  []byte                           // RAM as the checks last saw it
	gpadls  map[uint32][2]int                // handle → first page and count of the latest GPADL the script built
	rings   map[uint32]*fuzzRings            // relid → the guest's side of its rings
	scratch []byte
}

// fuzzRings is the guest's side of an open channel's rings, over the
// pages the script built its GPADL from.
type fuzzRings struct {
	outMem, inMem *ring.FlatMemory
	out           *ring.Sender   // guest to host
	in            *ring.Receiver // host to guest
	pages         [2]int         // first page, count: both rings
}

func newFuzzRun(t *testing.T) *fuzzRun {
	r := &fuzzRun{
		t:       t,
		backing: bytes.Repeat([]byte{guardByte}, 2*guardBytes+fuzzPages*proto.PageSize),
		pfnOf:   map[*[proto.PageSize]byte]uint64{},
		devs:    map[uint32]*fuzzDevice{},
		gpadls:  map[uint32][2]int{},
		rings:   map[uint32]*fuzzRings{},
		scratch: make([]byte, MaxInboundPacket),
	}
	h := newFakeHost(0)
	h.ram = r.backing[guardBytes : guardBytes+fuzzPages*proto.PageSize : guardBytes+fuzzPages*proto.PageSize]
	clear(h.ram)
	h.vps = fuzzVPs
	for pfn := range uint64(fuzzPages) {
		pg, _ := h.Page(pfn)
		r.pfnOf[pg] = pfn
	}
	r.shadow = bytes.Clone(h.ram)
	s := New(h, Config{OnPanic: func(err error) {
		r.panicMu.Lock()
		defer r.panicMu.Unlock()
		r.panics = append(r.panics, err)
	}})
	s.gpadlPageLimit = fuzzGPADLPageLimit
	for i, typ := range []proto.GUID{proto.SCSIGUID, proto.ShutdownGUID, proto.HeartbeatGUID} {
		d := &fuzzDevice{typ: typ, refuse: i == 2}
		relid, err := s.AddDevice(d)
		if err != nil || relid != uint32(i+1) {
			t.Fatalf("device %d: relid %d, %v", i, relid, err)
		}
		r.devs[relid] = d
		r.all = append(r.all, d)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go s.Run(ctx)
	r.s, r.h, r.cancel = s, h, cancel
	r.g = &guest{t: t, s: s, h: h, next: livenessPage}
	return r
}

// stop closes the server and checks it let go of everything.
func (r *fuzzRun) stop() {
	r.cancel()
	r.s.Close()
	for i, d := range r.all {
		if n, misuses := d.open(); n != 0 || len(misuses) != 0 {
			r.t.Errorf("after Close, device %d has %d opens not closed, misuses %q", i, n, misuses)
		}
	}
	r.h.mu.Lock()
	if len(r.h.bound) != 0 {
		r.t.Errorf("after Close, connections still bound: %v", r.h.bound)
	}
	r.h.mu.Unlock()
	r.checkPanics()
}

func (r *fuzzRun) checkPanics() {
	r.panicMu.Lock()
	defer r.panicMu.Unlock()
	if len(r.panics) != 0 {
		r.t.Fatalf("the server recovered a panic: %v", r.panics[0])
	}
}

// onRun runs fn on Run's goroutine once every message posted so far has
// been handled (the server's in queue is empty there), so fn sees the
// state the messages left.
func (r *fuzzRun) onRun(fn func()) {
	for {
		done := make(chan bool, 1)
		r.s.do(func() {
			if len(r.s.in) > 0 {
				done <- false
				return
			}
			fn()
			done <- true
		})
		select {
		case ok := <-done:
			if ok {
				return
			}
			runtime.Gosched()
		case <-r.s.stopped:
			r.checkPanics()
			r.t.Fatal("the server stopped")
		}
	}
}

// before is what a reply check needs of the state before a message.
type before struct {
	connected bool
	version   proto.Version
	exists    bool // the message's GPADL handle was known
	pending   bool // … and waiting for bodies
}

// post sends one message and checks the server's answer and state.
func (r *fuzzRun) post(vp uint32, payload []byte) {
	msg, perr := proto.ParseChannelMessage(payload)
	var b before
	r.onRun(func() {
		b.connected, b.version = r.s.conn.connected, r.s.conn.version
		if h, ok := gpadlHandle(msg); ok && perr == nil {
			g := r.s.gpadls[h]
			b.exists, b.pending = g != nil, g != nil && !g.complete
		}
	})
	if st := r.s.HandleMessage(vp, proto.SynICMessageType, payload); st != tlfs.StatusSuccess {
		r.t.Fatalf("HandleMessage: %v", st)
	}
	var after before
	r.check(func() {
		if h, ok := gpadlHandle(msg); ok && perr == nil {
			g := r.s.gpadls[h]
			after.exists, after.pending = g != nil, g != nil && !g.complete
		}
		after.connected = r.s.conn.connected
	})
	replies := r.replies()
	if perr != nil || !msg.Type().FromGuest() {
		if n := countReplies(replies, nil); n != 0 {
			r.t.Fatalf("%d replies to a message the server drops (%v)", n, perr)
		}
		return
	}
	if _, ok := msg.(proto.InitiateContact); !ok && !b.connected {
		if n := countReplies(replies, nil); n != 0 {
			r.t.Fatalf("%d replies to %v before contact", n, msg.Type())
		}
		return
	}
	want := func(typ proto.MessageType, n int, match func(proto.Message) bool) {
		r.t.Helper()
		if got := countReplies(replies, func(m proto.Message) bool { return m.Type() == typ && (match == nil || match(m)) }); got != n {
			r.t.Fatalf("%v (state before %+v, after %+v): %d %v replies, want %d; all: %v", msg.Type(), b, after, got, typ, n, replies)
		}
	}
	switch m := msg.(type) {
	case proto.InitiateContact:
		want(proto.ChannelMsgVersionResponse, 1, nil)
	case proto.RequestOffers:
		want(proto.ChannelMsgAllOffersDelivered, 1, nil)
	case proto.GPADLHeader:
		n := 1
		if !b.exists && after.pending {
			n = 0
		}
		want(proto.ChannelMsgGPADLCreated, n, func(c proto.Message) bool { return c.(proto.GPADLCreated).GPADL == m.GPADL })
	case proto.GPADLBody:
		n := 0
		if b.pending && !after.pending {
			n = 1
		}
		want(proto.ChannelMsgGPADLCreated, n, func(c proto.Message) bool { return c.(proto.GPADLCreated).GPADL == m.GPADL })
	case proto.GPADLTeardown:
		want(proto.ChannelMsgGPADLTorndown, 1, func(c proto.Message) bool { return c.(proto.GPADLTorndown).GPADL == m.GPADL })
	case proto.OpenChannel:
		want(proto.ChannelMsgOpenChannelResult, 1, func(c proto.Message) bool {
			res := c.(proto.OpenChannelResult)
			return res.ChildRelID == m.ChildRelID && res.OpenID == m.OpenID
		})
	case proto.Unload:
		want(proto.ChannelMsgUnloadResponse, 1, nil)
		if after.connected {
			r.t.Fatal("still connected after UNLOAD")
		}
	case proto.ModifyChannel:
		n := 0
		if b.version >= proto.VersionWin10V5_3 {
			n = 1
		}
		want(proto.ChannelMsgModifyChannelResponse, n, nil)
	case proto.TLConnectRequest:
		want(proto.ChannelMsgTLConnectResult, 1, nil)
	}
}

func gpadlHandle(m proto.Message) (uint32, bool) {
	switch m := m.(type) {
	case proto.GPADLHeader:
		return m.GPADL, true
	case proto.GPADLBody:
		return m.GPADL, true
	}
	return 0, false
}

// replies takes what the server posted: every message must parse, be one
// a host sends, and go to one of the partition's VPs.
func (r *fuzzRun) replies() []proto.Message {
	var out []proto.Message
	for {
		select {
		case p := <-r.h.msgs:
			m, err := proto.ParseChannelMessage(p.payload)
			if err != nil {
				r.t.Fatalf("the server posted a malformed message: %v", err)
			}
			if m.Type().FromGuest() {
				r.t.Fatalf("the server posted %v, a guest's message", m.Type())
			}
			if p.vp >= fuzzVPs {
				r.t.Fatalf("the server posted %v to VP %d of %d", m.Type(), p.vp, fuzzVPs)
			}
			out = append(out, m)
		default:
			return out
		}
	}
}

// countReplies counts the replies match accepts (nil: all but the
// RESCIND_CHANNELOFFERs a failing channel sends whenever it fails).
func countReplies(ms []proto.Message, match func(proto.Message) bool) int {
	n := 0
	for _, m := range ms {
		if match == nil && m.Type() == proto.ChannelMsgRescindChannelOffer {
			continue
		}
		if match == nil || match(m) {
			n++
		}
	}
	return n
}

// check runs the bookkeeping invariants (and extra) on Run's goroutine.
// The memory checks run at the end of the script and of the liveness
// check: a page the server wrote stays changed until then, and the pages
// GPADLs held are gathered here at every step.
func (r *fuzzRun) check(extra func()) {
	var err error
	r.onRun(func() {
		err = r.invariants()
		if extra != nil {
			extra()
		}
	})
	r.checkPanics()
	if err != nil {
		r.t.Fatal(err)
	}
	r.checkReleased()
}

// checkReleased: a page the server was given and has since let go of (no
// established GPADL holds it since the step before) has not changed since
// that step — GPADL_TORNDOWN, UNLOAD or a new contact meant nothing of
// the host touches it any more. Held pages are the server's to write.
func (r *fuzzRun) checkReleased() {
	for pfn := range fuzzPages {
		now, was := r.page(pfn)
		switch {
		case r.held[pfn]:
			// The server's to write, and maybe being written: not read.
		case r.wasHeld[pfn]:
			copy(was, now) // let go of at this step: written while held
		case r.handed[pfn] && !bytes.Equal(now, was):
			r.t.Fatalf("the server wrote page %d after the last GPADL holding it was gone", pfn)
		}
	}
}

// invariants is the server's bookkeeping as the package documents it.
// Run's goroutine.
func (r *fuzzRun) invariants() error {
	s := r.s
	r.wasHeld, r.held = r.held, [fuzzPages]bool{}
	pending, reserved := 0, 0
	for h, g := range s.gpadls {
		reserved += g.npages
		switch {
		case g.handle != h:
			return fmt.Errorf("GPADL %d filed under %d", g.handle, h)
		case g.complete && g.data != nil:
			return fmt.Errorf("GPADL %d established with %d bytes of array still held", h, len(g.data))
		case !g.complete && (g.pages != nil || g.user != nil):
			return fmt.Errorf("GPADL %d pending with %d pages mapped, user %v", h, len(g.pages), g.user)
		case !g.complete && len(g.data) >= g.want:
			return fmt.Errorf("GPADL %d pending with %d of %d bytes", h, len(g.data), g.want)
		case s.device(g.relid) == nil:
			return fmt.Errorf("GPADL %d of relid %d, which has no device", h, g.relid)
		case g.complete && len(g.pages) != g.npages:
			return fmt.Errorf("GPADL %d maps %d pages, reserved %d", h, len(g.pages), g.npages)
		}
		if !g.complete {
			pending++
			continue
		}
		for _, pg := range g.pages {
			pfn, ok := r.pfnOf[pg]
			if !ok {
				return fmt.Errorf("GPADL %d maps a page that is not the guest's RAM", h)
			}
			r.handed[pfn], r.held[pfn] = true, true
		}
		if c := g.user; c != nil && (c.gpadl != g || c.dev.ch != c || c.closed.Load() || c.relid != g.relid) {
			return fmt.Errorf("GPADL %d's user relid %d: gpadl %p (want %p), its device's channel %p, closed %v",
				h, c.relid, c.gpadl, g, c.dev.ch, c.closed.Load())
		}
	}
	if pending > MaxPendingGPADLs || len(s.gpadls) > MaxGPADLs {
		return fmt.Errorf("%d GPADLs, %d pending", len(s.gpadls), pending)
	}
	if reserved != s.gpadlPages || s.gpadlPages > s.gpadlPageLimit {
		return fmt.Errorf("the GPADLs reserve %d pages, the server counts %d, limit %d", reserved, s.gpadlPages, s.gpadlPageLimit)
	}
	if !s.conn.connected && len(s.gpadls) != 0 {
		return fmt.Errorf("not connected, yet %d GPADLs", len(s.gpadls))
	}
	channels := 0
	r.h.mu.Lock()
	bound := len(r.h.bound)
	r.h.mu.Unlock()
	devices := 0
	for relid := uint32(0); relid <= MaxChannels; relid++ {
		d := s.device(relid)
		c := s.chans[relid].Load()
		if d == nil {
			if c != nil {
				return fmt.Errorf("relid %d: an event target without a device", relid)
			}
			continue
		}
		devices++
		if !r.h.isBound(d.conn()) {
			return fmt.Errorf("relid %d: connection %#x not bound", relid, d.conn())
		}
		switch {
		case d.relid != relid:
			return fmt.Errorf("relid %d: device of relid %d", relid, d.relid)
		case d.rescinded && (!d.offered || d.ch != nil):
			return fmt.Errorf("relid %d: rescinded, offered %v, channel %v", relid, d.offered, d.ch)
		case !s.conn.connected && (d.offered || d.rescinded || d.ch != nil):
			return fmt.Errorf("relid %d: not connected, yet offered %v rescinded %v channel %v", relid, d.offered, d.rescinded, d.ch)
		case c != d.ch:
			return fmt.Errorf("relid %d: event target %p, channel %p", relid, c, d.ch)
		}
		if d.ch == nil {
			continue
		}
		channels++
		if g := s.gpadls[d.ch.gpadl.handle]; g != d.ch.gpadl || !g.complete || g.user != d.ch || g.relid != relid || d.ch.dev != d || !d.offered {
			return fmt.Errorf("relid %d: open on GPADL %d, which the server holds as %p (user %v)", relid, d.ch.gpadl.handle, g, g)
		}
	}
	if bound != devices {
		return fmt.Errorf("%d connections bound for %d devices", bound, devices)
	}
	open := 0
	for i, d := range r.all {
		n, misuses := d.open()
		if len(misuses) != 0 {
			return fmt.Errorf("device %d: %q", i, misuses)
		}
		open += n
	}
	if open != channels {
		return fmt.Errorf("the devices have %d opens not closed, the server %d open channels", open, channels)
	}
	return nil
}

// checkMemory: the guard bytes around the RAM are intact, and no page
// that no GPADL ever held changed, but for the script's own writes.
func (r *fuzzRun) checkMemory() {
	for i, b := range r.backing[:guardBytes] {
		if b != guardByte {
			r.t.Fatalf("the guard below the guest's RAM changed at %d", i)
		}
	}
	for i, b := range r.backing[guardBytes+fuzzPages*proto.PageSize:] {
		if b != guardByte {
			r.t.Fatalf("the guard above the guest's RAM changed at %d", i)
		}
	}
	for pfn := range fuzzPages {
		if now, was := r.page(pfn); !r.handed[pfn] && !bytes.Equal(now, was) {
			r.t.Fatalf("the server wrote page %d, which no GPADL held", pfn)
		}
	}
}

// page is guest page pfn now and as the checks last saw it.
func (r *fuzzRun) page(pfn int) (now, was []byte) {
	return r.h.ram[pfn*proto.PageSize : (pfn+1)*proto.PageSize], r.shadow[pfn*proto.PageSize : (pfn+1)*proto.PageSize]
}

// guestWrote takes the pages the script itself wrote into the shadow, but
// for those an established GPADL holds: the checks do not read them (a
// channel's goroutine may be writing them), and take them in when the
// server lets go of them.
func (r *fuzzRun) guestWrote(first, n int) {
	for pfn := first; pfn < first+n; pfn++ {
		if now, was := r.page(pfn); !r.held[pfn] {
			copy(was, now)
		}
	}
}

// play runs the script.
func (r *fuzzRun) play(b []byte) {
	take := func(n int) ([]byte, bool) {
		if len(b) < n {
			return nil, false
		}
		a := b[:n]
		b = b[n:]
		return a, true
	}
	for len(b) > 0 {
		op := b[0] % opCount
		b = b[1:]
		switch op {
		case opRaw:
			a, ok := take(2)
			if !ok {
				return
			}
			p, ok := take(min(int(a[1])%(proto.MaxMessageSize+1), len(b)))
			if !ok {
				return
			}
			r.post(uint32(a[0]%fuzzVPs), p)
		case opContact:
			a, ok := take(3)
			if !ok {
				return
			}
			v := proto.Version(0xFFFF_0000) // no such version
			if i := int(a[0]) % (len(proto.Linux61Versions) + 1); i < len(proto.Linux61Versions) {
				v = proto.Linux61Versions[i]
			}
			sint := uint8(proto.MessageSINT)
			if a[2]&1 != 0 {
				sint = 5
			}
			r.postMsg(proto.InitiateContact{VersionRequested: v, TargetVCPU: uint32(a[1] % (fuzzVPs + 1)), MessageSINT: sint})
		case opOffers:
			r.postMsg(proto.RequestOffers{})
		case opGPADL:
			a, ok := take(5)
			if !ok {
				return
			}
			r.gpadl(uint32(a[0]%fuzzRelids), uint32(a[1]%fuzzHandles), firstPage+int(a[2]%128), 1+int(a[3])%maxGPADLPgs, a[4])
		case opOpen:
			a, ok := take(5)
			if !ok {
				return
			}
			r.open(uint32(a[0]%fuzzRelids), uint32(a[1]%fuzzHandles), uint32(a[2]%(maxGPADLPgs+2)), uint32(a[3]%(fuzzVPs+1)), a[4])
		case opMisc:
			a, ok := take(3)
			if !ok {
				return
			}
			relid := uint32(a[1] % fuzzRelids)
			switch a[0] % miscCount {
			case miscClose:
				r.postMsg(proto.CloseChannel{ChildRelID: relid})
			case miscTeardown:
				r.postMsg(proto.GPADLTeardown{ChildRelID: relid, GPADL: uint32(a[2] % fuzzHandles)})
			case miscReleased:
				r.postMsg(proto.RelIDReleased{ChildRelID: relid})
			case miscModify:
				r.postMsg(proto.ModifyChannel{ChildRelID: relid, TargetVP: uint32(a[2])})
			case miscUnload:
				r.postMsg(proto.Unload{})
			case miscTLConnect:
				r.postMsg(proto.TLConnectRequest{})
			case miscRescind:
				r.s.Rescind(relid)
				r.check(nil)
				r.replies()
			case miscAdd:
				if len(r.all) < maxFuzzDevices {
					d := &fuzzDevice{typ: proto.NICGUID}
					relid, err := r.s.AddDevice(d)
					if err != nil {
						r.t.Fatal(err)
					}
					r.devs[relid] = d
					r.all = append(r.all, d)
					r.check(nil)
					r.replies()
				}
			}
		case opEvent:
			a, ok := take(1)
			if !ok {
				return
			}
			r.event(uint32(a[0] % (fuzzRelids + 1)))
		case opRing:
			a, ok := take(3)
			if !ok {
				return
			}
			p, ok := take(min(int(a[2]), len(b)))
			if !ok {
				return
			}
			r.ringStep(uint32(a[0]%fuzzRelids), a[1]%ringCount, p)
		}
	}
}

func (r *fuzzRun) postMsg(m proto.Message) {
	b, err := proto.Marshal(m)
	if err != nil {
		r.t.Fatal(err)
	}
	r.post(0, b)
}

// event is the guest's HvCallSignalEvent on relid's connection (relid
// fuzzRelids: a connection below the channels').
func (r *fuzzRun) event(relid uint32) {
	conn := ConnectionIDBase + relid
	if relid == fuzzRelids {
		conn = proto.MessageConnectionID4
	}
	r.s.HandleEvent(conn)
	r.check(nil)
	r.replies()
}

// gpadl describes pages first.. as one range and sends it as Linux cuts
// it, spoilt as flags say.
func (r *fuzzRun) gpadl(relid, handle uint32, first, pages int, flags byte) {
	pfns := make([]uint64, pages)
	for i := range pfns {
		pfns[i] = uint64(first + i)
	}
	count, offset := uint32(pages)*proto.PageSize, uint32(0)
	if flags&gpadlOutside != 0 {
		pfns[pages/2] = fuzzPages + 7
	}
	if flags&gpadlPartial != 0 {
		count, offset = count-100, 8
	}
	arr, err := proto.AppendGPARange(nil, count, offset, pfns)
	if err != nil {
		r.t.Fatal(err)
	}
	hdr, bodies, err := proto.SplitGPADL(relid, handle, 1, arr)
	if err != nil {
		r.t.Fatal(err)
	}
	if flags&gpadlDropLast != 0 && len(bodies) > 0 {
		bodies = bodies[:len(bodies)-1]
	}
	if flags&gpadlExtraBody != 0 {
		bodies = append(bodies, proto.GPADLBody{GPADL: handle, Data: make([]byte, 8)})
	}
	if flags&gpadlNoHeader == 0 {
		r.postMsg(hdr)
	}
	for _, b := range bodies {
		r.postMsg(b)
	}
	r.gpadls[handle] = [2]int{first, pages}
}

// open sends OPENCHANNEL, after laying out both rings in the GPADL's
// pages as the guest does when asked to.
func (r *fuzzRun) open(relid, handle, offset, vp uint32, flags byte) {
	if flags&openNoIRQ != 0 {
		vp = proto.VPIndexDisableInterrupt
	}
	if geo, ok := r.gpadls[handle]; ok && flags&openInitRings != 0 && !raceEnabled && offset >= 2 && geo[1]-int(offset) >= 2 && geo[0]+geo[1] <= fuzzPages {
		fr := &fuzzRings{pages: geo}
		mem := func(from, n int) *ring.FlatMemory {
			m, err := ring.NewFlatMemory(r.h.ram[from*proto.PageSize : (from+n)*proto.PageSize])
			if err != nil {
				r.t.Fatal(err)
			}
			if err := ring.Init(m); err != nil {
				r.t.Fatal(err)
			}
			return m
		}
		fr.outMem, fr.inMem = mem(geo[0], int(offset)), mem(geo[0]+int(offset), geo[1]-int(offset))
		r.guestWrote(geo[0], geo[1])
		conn := ConnectionIDBase + relid
		signal := func() { r.s.HandleEvent(conn) }
		var err error
		if fr.out, err = ring.NewSender(fr.outMem, signal); err != nil {
			r.t.Fatal(err)
		}
		if fr.in, err = ring.NewReceiver(fr.inMem, signal); err != nil {
			r.t.Fatal(err)
		}
		r.rings[relid] = fr
	}
	r.postMsg(proto.OpenChannel{ChildRelID: relid, OpenID: relid + 0x100, RingBufferGPADL: handle, TargetVP: vp,
		DownstreamRingBufferPageOffset: offset})
}

// ringStep is the guest's side of relid's rings: it sends, corrupts or
// reads, then checks. Nothing happens for a relid the script opened no
// rings for.
func (r *fuzzRun) ringStep(relid uint32, kind byte, p []byte) {
	fr := r.rings[relid]
	if fr == nil { // none under the race detector
		return
	}
	switch kind {
	case ringSend:
		hdr, err := proto.AppendInbandHeader(nil, proto.PacketFlagCompletionRequested, uint64(len(p)), len(p))
		if err != nil {
			r.t.Fatal(err)
		}
		fr.out.Write(hdr, p) // full, too large or corrupt: the guest's problem
	case ringRaw:
		// The bytes as a descriptor, its lengths made to frame it.
		n := max(proto.DescriptorSize, (len(p)+7)&^7)
		hdr := make([]byte, n)
		copy(hdr, p)
		binary.LittleEndian.PutUint16(hdr[2:], uint16(n/8))
		binary.LittleEndian.PutUint16(hdr[4:], uint16(n/8))
		fr.out.Write(hdr, nil)
	case ringControl:
		if len(p) < 5 {
			return
		}
		m := fr.outMem
		if p[0]&0x80 != 0 {
			m = fr.inMem
		}
		off := []int{ring.WriteIndexOffset, ring.ReadIndexOffset, ring.InterruptMaskOffset,
			ring.PendingSendSizeOffset, ring.FeatureBitsOffset}[int(p[0]&0x7F)%5]
		m.StoreU32(off, binary.LittleEndian.Uint32(p[1:]))
	case ringRead:
		for range 64 {
			if _, err := fr.in.Read(r.scratch); err != nil {
				break
			}
		}
	}
	r.guestWrote(fr.pages[0], fr.pages[1])
	r.check(nil)
	r.replies()
}

// liveness: a well-behaved guest reconnects, and every device the script
// left (a failed channel's device is gone once the guest reconnects) opens
// and echoes.
func (r *fuzzRun) liveness() {
	// A channel the script broke may be rescinded until the contact
	// resets the connection: its RESCIND_CHANNELOFFER is skipped.
	g := r.g
	next := func() proto.Message {
		for {
			if m := g.recv(); m.Type() != proto.ChannelMsgRescindChannelOffer {
				return m
			}
		}
	}
	r.replies() // what the host's last steps had the server post
	g.post(proto.InitiateContact{VersionRequested: proto.VersionWin10V5_3, MessageSINT: proto.MessageSINT})
	if m := next(); m.Type() != proto.ChannelMsgVersionResponse || !m.(proto.VersionResponse).VersionSupported {
		r.t.Fatalf("a Linux contact after the script: %#v", m)
	}
	g.post(proto.RequestOffers{})
	var offers []proto.OfferChannel
	for m := next(); m.Type() != proto.ChannelMsgAllOffersDelivered; m = next() {
		off, ok := m.(proto.OfferChannel)
		if !ok {
			r.t.Fatalf("%#v among the offers", m)
		}
		offers = append(offers, off)
	}
	for _, off := range offers {
		d := r.devs[off.ChildRelID]
		if d == nil || d.refuse {
			continue
		}
		handle := 0x1000 + off.ChildRelID
		st, rings := g.open(off, handle, 2, 2)
		if st != 0 {
			r.t.Fatalf("relid %d: a well-formed open after the script: status %#x", off.ChildRelID, st)
		}
		rings.sendInband(r.t, 7, []byte("alive..."))
		if p := rings.read(r.t); p.TransactionID != 7 || string(p.Payload) != "alive..." {
			r.t.Fatalf("relid %d: echo %+v", off.ChildRelID, p)
		}
	}
	r.check(nil)
	r.checkMemory()
}

// TestWriteHandleMessageCorpus writes FuzzHandleMessage's seeds under
// testdata/fuzz when GOHV_WRITE_CORPUS is set (the committed corpus comes
// from here).
func TestWriteHandleMessageCorpus(t *testing.T) {
	if os.Getenv("GOHV_WRITE_CORPUS") == "" {
		t.Skip("set GOHV_WRITE_CORPUS=1 to rewrite testdata/fuzz/FuzzHandleMessage")
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzHandleMessage")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, s := range fuzzScripts() {
		body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", s)
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
