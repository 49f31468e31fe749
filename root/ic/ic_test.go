package ic

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"gohv/root/ic/protocol"
)

// running is a service whose Run goroutine the test owns.
type running struct {
	cancel context.CancelFunc
	done   chan error
}

func start(t *testing.T, svc Service) *running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- svc.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-r.done
	})
	return r
}

// result waits for Run to return.
func (r *running) result(t *testing.T) error {
	t.Helper()
	select {
	case err := <-r.done:
		r.done <- err // for the cleanup
		return err
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return")
		return nil
	}
}

func negotiated(t *testing.T, svc Service) Versions {
	t.Helper()
	var v Versions
	waitFor(t, "negotiation", func() bool {
		var ok bool
		v, ok = svc.Versions()
		return ok
	})
	return v
}

// fakeTicks hands a test the ticks of a service's loop.
func fakeTicks(c chan time.Time) ticker {
	return func(time.Duration) (<-chan time.Time, func()) { return c, func() {} }
}

func newShutdown(t *testing.T) (*Shutdown, *linuxGuest) {
	g := newLinux(t, protocol.MsgShutdown)
	s, err := NewShutdown(g, Config{})
	if err != nil {
		t.Fatal(err)
	}
	g.svc = s
	return s, g
}

func newHeartbeat(t *testing.T, ticks chan time.Time, now func() time.Time) (*Heartbeat, *linuxGuest) {
	g := newLinux(t, protocol.MsgHeartbeat)
	h, err := NewHeartbeat(g, HeartbeatConfig{Now: now})
	if err != nil {
		t.Fatal(err)
	}
	h.tick = fakeTicks(ticks)
	g.svc = h
	return h, g
}

type fakeClock struct {
	mu  sync.Mutex
	ref uint64
	now time.Time
}

func (c *fakeClock) ReferenceTime() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ref += 10 // 1 µs per reading
	return c.ref
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(time.Second)
	return c.now
}

func newTimeSync(t *testing.T, ticks chan time.Time, clock Clock) (*TimeSync, *linuxGuest) {
	g := newLinux(t, protocol.MsgTimeSync)
	ts, err := NewTimeSync(g, TimeSyncConfig{Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	ts.tick = fakeTicks(ticks)
	g.svc = ts
	return ts, g
}

// TestNegotiationWithLinux: each service offers what Linux 6.1 accepts
// and settles on the highest version in Linux's preference.
func TestNegotiationWithLinux(t *testing.T) {
	for _, c := range []struct {
		kind   protocol.MsgType
		offer  []protocol.Version
		want   Versions
		newSvc func(*testing.T) (Service, *linuxGuest)
	}{
		{protocol.MsgShutdown, ShutdownVersions[:], Versions{protocol.Framework3, protocol.Shutdown3_2},
			func(t *testing.T) (Service, *linuxGuest) { return newShutdown(t) }},
		{protocol.MsgHeartbeat, HeartbeatVersions[:], Versions{protocol.Framework3, protocol.Heartbeat3},
			func(t *testing.T) (Service, *linuxGuest) { return newHeartbeat(t, make(chan time.Time), nil) }},
		{protocol.MsgTimeSync, TimeSyncVersions[:], Versions{protocol.Framework3, protocol.TimeSync4},
			func(t *testing.T) (Service, *linuxGuest) {
				return newTimeSync(t, make(chan time.Time), &fakeClock{now: time.Unix(0, 0)})
			}},
	} {
		t.Run(c.kind.String(), func(t *testing.T) {
			svc, g := c.newSvc(t)
			if _, ok := svc.Versions(); ok {
				t.Fatal("versions known before Run")
			}
			start(t, svc)
			if got := negotiated(t, svc); got != c.want {
				t.Fatalf("negotiated %v, want %v", got, c.want)
			}
			reqs, _, _, errs := g.snapshot()
			if len(errs) > 0 {
				t.Fatal(errs)
			}
			// The first request is NEGOTIATE: framework 3.0, 1.0, then the
			// service's versions, header versions 0.0.
			m := requestOf(t, reqs[0])
			if m.Header.Type != protocol.MsgNegotiate || m.Header.FrameworkVersion != (protocol.Version{}) || m.Header.MessageVersion != (protocol.Version{}) {
				t.Fatalf("first request header %+v", m.Header)
			}
			n, err := protocol.ParseNegotiate(m.Body)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(n.Framework, FrameworkVersions[:]) || !slices.Equal(n.Message, c.offer) {
				t.Fatalf("offered %v", n)
			}
			if int(m.Header.Size) != n.Size() || m.Pipe.Size != uint32(protocol.HeaderSize+n.Size()) {
				t.Fatalf("icmsgsize %d, pipe size %d for a %d-byte body", m.Header.Size, m.Pipe.Size, n.Size())
			}
			if reqs[0].tid == 0 {
				t.Error("request with trans_id 0")
			}
		})
	}
}

// TestNegotiationWithAnOldGuest: a guest that knows only framework 1.0
// and the 1.0 services (Linux's WS2008 lists) gets 1.0, and time sync then
// sends the pre-4.0 body that Linux checks against 25 bytes.
func TestNegotiationWithAnOldGuest(t *testing.T) {
	clock := &fakeClock{now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	ts, g := newTimeSync(t, make(chan time.Time), clock)
	g.fw, g.srv = []protocol.Version{protocol.Framework1}, []protocol.Version{protocol.TimeSync1}
	start(t, ts)
	if v := negotiated(t, ts); v != (Versions{protocol.Framework1, protocol.TimeSync1}) {
		t.Fatalf("negotiated %v", v)
	}
	waitFor(t, "the SYNC", func() bool { _, a, _, _ := g.snapshot(); return len(a) == 1 })
	reqs, actions, times, _ := g.snapshot()
	m := requestOf(t, reqs[1])
	if m.Header.FrameworkVersion != protocol.Framework1 || m.Header.MessageVersion != protocol.TimeSync1 || len(m.Body) != protocol.TimeSyncSize {
		t.Fatalf("time message header %+v, body %d bytes", m.Header, len(m.Body))
	}
	if actions[0] != "settime" || times[0].v4 || times[0].parent != protocol.FileTime(clock.now) {
		t.Fatalf("guest saw %v %+v", actions, times)
	}
}

func TestNegotiationWithoutCommonVersion(t *testing.T) {
	for _, c := range []struct {
		name    string
		fw, srv []protocol.Version
	}{
		{"framework", []protocol.Version{{Major: 2}}, protocol.LinuxHeartbeatVersions[:]},
		{"service", protocol.LinuxFrameworkVersions[:], []protocol.Version{{Major: 9}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			h, g := newHeartbeat(t, make(chan time.Time), nil)
			g.fw, g.srv = c.fw, c.srv
			r := start(t, h)
			if err := r.result(t); !errors.Is(err, ErrNoCommonVersion) {
				t.Fatalf("Run: %v", err)
			}
			g.wg.Wait()
			_, _, _, errs := g.snapshot()
			if len(errs) != 1 || !errors.Is(errs[0], ErrNoCommonVersion) {
				t.Fatalf("HandlePacket: %v", errs)
			}
			if _, ok := h.Versions(); ok {
				t.Fatal("versions known")
			}
			if err := h.HandlePacket(nil, 1); !errors.Is(err, ErrClosed) {
				t.Fatalf("HandlePacket after the failure: %v", err)
			}
		})
	}
}

func TestNegotiationTimesOut(t *testing.T) {
	g := newLinux(t, protocol.MsgShutdown)
	g.hold = true
	s, err := NewShutdown(g, Config{NegotiateTimeout: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	g.svc = s
	r := start(t, s)
	if err := r.result(t); !errors.Is(err, ErrTimeout) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Run: %v", err)
	}
	// The late answer finds the service closed.
	g.release()
	g.wg.Wait()
	if _, _, _, errs := g.snapshot(); len(errs) != 1 || !errors.Is(errs[0], ErrClosed) {
		t.Fatalf("late answer: %v", errs)
	}
	if _, err := s.RequestShutdown(context.Background(), false); !errors.Is(err, ErrClosed) || !errors.Is(err, ErrTimeout) {
		t.Fatalf("RequestShutdown after the failure: %v", err)
	}
}

// TestRunEndsWithItsContext: cancelling Run (the channel closed) returns
// nil, even mid-negotiation, and closes the service.
func TestRunEndsWithItsContext(t *testing.T) {
	s, g := newShutdown(t)
	g.hold = true
	r := start(t, s)
	waitFor(t, "the NEGOTIATE", func() bool { reqs, _, _, _ := g.snapshot(); return len(reqs) == 1 })
	waiting := make(chan error, 1)
	go func() { _, err := s.RequestShutdown(context.Background(), false); waiting <- err }()
	r.cancel()
	if err := r.result(t); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if err := <-waiting; !errors.Is(err, ErrClosed) {
		t.Fatalf("RequestShutdown: %v", err)
	}
	if err := s.HandlePacket(nil, 1); !errors.Is(err, ErrClosed) {
		t.Fatalf("HandlePacket: %v", err)
	}
	if err := s.Run(context.Background()); err == nil {
		t.Fatal("second Run succeeded")
	}
}

func TestShutdown(t *testing.T) {
	for _, reboot := range []bool{false, true} {
		t.Run(fmt.Sprint("reboot=", reboot), func(t *testing.T) {
			s, g := newShutdown(t)
			start(t, s)
			// Asked before negotiation is over: it waits for it.
			status, err := s.RequestShutdown(context.Background(), reboot)
			if err != nil || status != protocol.StatusOK {
				t.Fatalf("RequestShutdown: %v, %v", status, err)
			}
			reqs, actions, _, errs := g.snapshot()
			want := "poweroff"
			flags := protocol.ShutdownFlags(0)
			if reboot {
				want, flags = "reboot", protocol.ShutdownRestart
			}
			if len(errs) > 0 || !slices.Equal(actions, []string{want}) {
				t.Fatalf("guest did %v (errors %v)", actions, errs)
			}
			m := requestOf(t, reqs[1])
			msg, err := protocol.ParseShutdown(m.Body)
			if err != nil {
				t.Fatal(err)
			}
			if m.Header.Type != protocol.MsgShutdown || m.Header.FrameworkVersion != protocol.Framework3 || m.Header.MessageVersion != protocol.Shutdown3_2 ||
				len(m.Body) != protocol.ShutdownSize || len(reqs[1].p) != 2088 {
				t.Fatalf("request header %+v, body %d, payload %d bytes", m.Header, len(m.Body), len(reqs[1].p))
			}
			if msg.Flags != flags || msg.ReasonCode != protocol.ShutdownReasonPlanned || msg.TimeoutSeconds != 0 {
				t.Fatalf("shutdown message %+v", msg)
			}
			if reqs[1].tid <= reqs[0].tid {
				t.Fatalf("transaction IDs %d then %d", reqs[0].tid, reqs[1].tid)
			}
		})
	}
}

func TestShutdownRefused(t *testing.T) {
	s, g := newShutdown(t)
	start(t, s)
	negotiated(t, s)
	g.mu.Lock()
	g.mutate = func(p []byte, tid uint64) ([]byte, uint64) {
		binary.LittleEndian.PutUint32(p[lxStatus:], hvEFail)
		return p, tid
	}
	g.mu.Unlock()
	status, err := s.RequestShutdown(context.Background(), false)
	if status != protocol.StatusFail || !errors.Is(err, ErrRefused) {
		t.Fatalf("RequestShutdown: %v, %v", status, err)
	}
	// A refusal does not close the channel.
	g.mu.Lock()
	g.mutate = nil
	g.mu.Unlock()
	if _, err := s.RequestShutdown(context.Background(), true); err != nil {
		t.Fatal(err)
	}
}

// TestShutdownTimeoutKeepsOneRequestOutstanding: an unanswered request
// stays outstanding after its caller gave up; the next caller waits for
// its answer rather than queue a second packet (trap 12), and goes ahead
// once it comes.
func TestShutdownTimeoutKeepsOneRequestOutstanding(t *testing.T) {
	s, g := newShutdown(t)
	start(t, s)
	negotiated(t, s)
	g.mu.Lock()
	g.hold = true
	g.mu.Unlock()

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := s.RequestShutdown(ctx, false); !errors.Is(err, ErrTimeout) {
		t.Fatalf("first: %v", err)
	}
	ctx2, cancel2 := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel2()
	if _, err := s.RequestShutdown(ctx2, true); !errors.Is(err, ErrTimeout) {
		t.Fatalf("second: %v", err)
	}
	if reqs, _, _, _ := g.snapshot(); len(reqs) != 2 {
		t.Fatalf("guest received %d requests, want NEGOTIATE and one SHUTDOWN", len(reqs))
	}

	third := make(chan error, 1)
	go func() { _, err := s.RequestShutdown(context.Background(), true); third <- err }()
	g.release() // the guest reads the first request and answers it
	if err := <-third; err != nil {
		t.Fatalf("third: %v", err)
	}
	_, actions, _, errs := g.snapshot()
	if len(errs) > 0 || !slices.Equal(actions, []string{"poweroff", "reboot"}) {
		t.Fatalf("guest did %v (errors %v)", actions, errs)
	}
}

func TestHeartbeat(t *testing.T) {
	ticks := make(chan time.Time)
	var mu sync.Mutex
	clock := time.Date(2026, 5, 6, 7, 8, 9, 0, time.UTC)
	now := func() time.Time { mu.Lock(); defer mu.Unlock(); clock = clock.Add(time.Second); return clock }
	h, g := newHeartbeat(t, ticks, now)
	if st := h.Status(); st != (HeartbeatStatus{}) {
		t.Fatalf("status before Run %+v", st)
	}
	start(t, h)
	waitFor(t, "the first beat", func() bool { return h.Status().Answered == 1 })
	ticks <- time.Time{}
	waitFor(t, "the second beat", func() bool { return h.Status().Answered == 2 })

	st := h.Status()
	want := HeartbeatStatus{Sent: 2, Answered: 2, LastSeq: 3, LastAnswer: time.Date(2026, 5, 6, 7, 8, 11, 0, time.UTC)}
	if st != want {
		t.Fatalf("status %+v, want %+v", st, want)
	}
	reqs, _, _, errs := g.snapshot()
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	for i, seq := range []uint64{1, 2} {
		m := requestOf(t, reqs[1+i])
		hb, err := protocol.ParseHeartbeat(m.Body)
		if err != nil || hb.SeqNum != seq || len(m.Body) != protocol.HeartbeatSize || m.Header.MessageVersion != protocol.Heartbeat3 {
			t.Fatalf("beat %d: %+v %+v %v", i, m.Header, hb, err)
		}
	}
}

// TestHeartbeatMisses: while a beat is unanswered no other goes out; each
// period counts a miss, and the beats resume once the guest answers.
func TestHeartbeatMisses(t *testing.T) {
	ticks := make(chan time.Time)
	h, g := newHeartbeat(t, ticks, nil)
	start(t, h)
	negotiated(t, h)
	waitFor(t, "the first beat", func() bool { return h.Status().Answered == 1 })
	g.mu.Lock()
	g.hold = true
	g.mu.Unlock()
	ticks <- time.Time{} // beat 2, held
	waitFor(t, "beat 2 to be outstanding", func() bool { return h.Status().Waiting })
	ticks <- time.Time{}
	ticks <- time.Time{}
	waitFor(t, "two misses", func() bool { return h.Status().Missed == 2 })
	if st := h.Status(); st.Sent != 2 || st.Answered != 1 || !st.Waiting {
		t.Fatalf("status %+v", st)
	}
	g.release()
	waitFor(t, "beat 2's answer", func() bool { return h.Status().Answered == 2 })
	ticks <- time.Time{}
	waitFor(t, "beat 3", func() bool { return h.Status().Answered == 3 })
	if st := h.Status(); st.Sent != 3 || st.LastSeq != 4 || st.Missed != 2 || st.Waiting {
		t.Fatalf("status %+v", st)
	}
}

func TestHeartbeatWrongSequence(t *testing.T) {
	h, g := newHeartbeat(t, make(chan time.Time), nil)
	g.mutate = func(p []byte, tid uint64) ([]byte, uint64) {
		if binary.LittleEndian.Uint16(p[lxMsgType:]) == uint16(protocol.MsgHeartbeat) {
			binary.LittleEndian.PutUint64(p[lxICMsgHdr:], binary.LittleEndian.Uint64(p[lxICMsgHdr:])+1) // seq+2
		}
		return p, tid
	}
	r := start(t, h)
	if err := r.result(t); !errors.Is(err, ErrMalformed) {
		t.Fatalf("Run: %v", err)
	}
	g.wg.Wait()
	if _, _, _, errs := g.snapshot(); len(errs) != 1 || !errors.Is(errs[0], ErrMalformed) {
		t.Fatalf("HandlePacket: %v", errs)
	}
	if st := h.Status(); st.Answered != 0 {
		t.Fatalf("status %+v", st)
	}
}

func TestTimeSync(t *testing.T) {
	ticks := make(chan time.Time)
	clock := &fakeClock{ref: 5_000_000, now: time.Date(2026, 7, 8, 9, 10, 11, 0, time.UTC)}
	ts, g := newTimeSync(t, ticks, clock)
	start(t, ts)
	waitFor(t, "the SYNC", func() bool { return ts.Status().Answered == 1 })
	ticks <- time.Time{}
	waitFor(t, "a SAMPLE", func() bool { return ts.Status().Answered == 2 })
	if err := ts.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}

	reqs, actions, times, errs := g.snapshot()
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	if !slices.Equal(actions, []string{"settime", "sample", "settime"}) {
		t.Fatalf("guest did %v", actions)
	}
	// Each message: the wall clock and the reference time, read together.
	base := time.Date(2026, 7, 8, 9, 10, 11, 0, time.UTC)
	for i, ts := range times {
		want := timeSeen{
			parent: protocol.FileTime(base.Add(time.Duration(i+1) * time.Second)),
			ref:    5_000_000 + 10*uint64(i+1),
			flags:  []uint8{1, 2, 1}[i],
			v4:     true,
		}
		if ts != want {
			t.Errorf("message %d: guest saw %+v, want %+v", i, ts, want)
		}
	}
	m := requestOf(t, reqs[1])
	if len(m.Body) != protocol.TimeSyncRefSize || m.Header.MessageVersion != protocol.TimeSync4 {
		t.Fatalf("time message header %+v, body %d bytes", m.Header, len(m.Body))
	}
	if st := ts.Status(); st.Sent != 3 || st.Answered != 3 || st.Skipped != 0 || !st.LastSent.Equal(base.Add(3*time.Second)) {
		t.Fatalf("status %+v", st)
	}
}

func TestTimeSyncSkipsWhileUnanswered(t *testing.T) {
	ticks := make(chan time.Time)
	ts, g := newTimeSync(t, ticks, &fakeClock{now: time.Unix(1e9, 0)})
	g.hold = true
	start(t, ts)
	waitFor(t, "the NEGOTIATE", func() bool { return ts.Status().Waiting })
	g.release()
	waitFor(t, "the SYNC", func() bool { return ts.Status().Sent == 1 })
	// Hold the next: no SYNC answer yet means no SAMPLE.
	g.mu.Lock()
	g.hold = true
	g.mu.Unlock()
	ticks <- time.Time{}
	ticks <- time.Time{}
	waitFor(t, "skips", func() bool { return ts.Status().Skipped >= 1 })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := ts.Sync(ctx); !errors.Is(err, ErrTimeout) {
		t.Fatalf("Sync: %v", err)
	}
	g.release()
	waitFor(t, "answers", func() bool { return ts.Status().Answered >= 1 })
}

// TestBadAnswers: every answer a guest can get wrong closes the service
// with ErrMalformed (or ErrNoCommonVersion), and Run reports it too.
func TestBadAnswers(t *testing.T) {
	le := binary.LittleEndian
	type mut = func(p []byte, tid uint64) ([]byte, uint64)
	onType := func(typ protocol.MsgType, f mut) mut {
		return func(p []byte, tid uint64) ([]byte, uint64) {
			if le.Uint16(p[lxMsgType:]) == uint16(typ) {
				return f(p, tid)
			}
			return p, tid
		}
	}
	neg := func(f func(p []byte)) mut {
		return onType(protocol.MsgNegotiate, func(p []byte, tid uint64) ([]byte, uint64) { f(p); return p, tid })
	}
	for _, c := range []struct {
		name string
		m    mut
	}{
		{"another transaction", neg(func([]byte) {})}, // replaced below
		{"short", func(p []byte, tid uint64) ([]byte, uint64) { return p[:27], tid }},
		{"empty", func(p []byte, tid uint64) ([]byte, uint64) { return nil, tid }},
		{"pipe type", neg(func(p []byte) { p[0] = 2 })},
		{"pipe size", neg(func(p []byte) { le.PutUint32(p[4:], 1000) })},
		{"icmsgsize beyond the packet", neg(func(p []byte) { le.PutUint16(p[lxMsgSize:], 200) })},
		{"type changed", neg(func(p []byte) { le.PutUint16(p[lxMsgType:], uint16(protocol.MsgHeartbeat)) })},
		{"request flags echoed", neg(func(p []byte) { p[lxFlags] = 3 })},
		{"no response flag", neg(func(p []byte) { p[lxFlags] = 1 })},
		{"no transaction flag", neg(func(p []byte) { p[lxFlags] = 4 })},
		{"ictransaction_id changed", neg(func(p []byte) { p[8+16] = 7 })},
		{"negotiate counts 2/2", neg(func(p []byte) { le.PutUint32(p[lxICMsgHdr:], 2|2<<16) })},
		{"negotiate counts 1/0", neg(func(p []byte) { le.PutUint32(p[lxICMsgHdr:], 1) })},
		{"negotiate body short", neg(func(p []byte) { le.PutUint16(p[lxMsgSize:], 12) })},
		{"unoffered framework", neg(func(p []byte) { le.PutUint16(p[lxICMsgHdr+8:], 2) })},
		{"unoffered message version", neg(func(p []byte) { le.PutUint16(p[lxICMsgHdr+14:], 7) })},
		{"heartbeat body short", onType(protocol.MsgHeartbeat, func(p []byte, tid uint64) ([]byte, uint64) {
			le.PutUint16(p[lxMsgSize:], 4)
			return p, tid
		})},
		{"heartbeat from another transaction", onType(protocol.MsgHeartbeat, func(p []byte, tid uint64) ([]byte, uint64) { return p, tid + 1 })},
	} {
		t.Run(c.name, func(t *testing.T) {
			h, g := newHeartbeat(t, make(chan time.Time), nil)
			g.mutate = c.m
			if c.name == "another transaction" {
				g.mutate = func(p []byte, tid uint64) ([]byte, uint64) { return p, tid + 100 }
			}
			r := start(t, h)
			err := r.result(t)
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("Run: %v", err)
			}
			g.wg.Wait()
			_, _, _, errs := g.snapshot()
			if len(errs) != 1 || !errors.Is(errs[0], ErrMalformed) {
				t.Fatalf("HandlePacket: %v", errs)
			}
			if err := h.HandlePacket(nil, 1); !errors.Is(err, ErrClosed) || !errors.Is(err, ErrMalformed) {
				t.Fatalf("HandlePacket after: %v", err)
			}
		})
	}
}

// TestUnsolicitedPacket: a guest packet with nothing outstanding closes
// the channel (Linux only ever answers).
func TestUnsolicitedPacket(t *testing.T) {
	s, g := newShutdown(t)
	start(t, s)
	negotiated(t, s)
	g.wg.Wait()
	reqs, _, _, _ := g.snapshot()
	answer := slices.Clone(reqs[0].p)
	answer[lxFlags] = 5
	if err := s.HandlePacket(answer, reqs[0].tid); !errors.Is(err, ErrMalformed) {
		t.Fatalf("second answer: %v", err)
	}
	if _, err := s.RequestShutdown(context.Background(), false); !errors.Is(err, ErrClosed) {
		t.Fatalf("RequestShutdown: %v", err)
	}
}

// TestLinuxDropsShortRequests: the fake drops what Linux would drop, so
// a host bug that shortens a message shows up as silence, not an answer.
func TestLinuxDropsShortRequests(t *testing.T) {
	g := newLinux(t, protocol.MsgHeartbeat)
	short, err := protocol.AppendMessage(nil, protocol.Header{Type: protocol.MsgHeartbeat, Flags: 3}, make([]byte, 4))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := g.callback(short[:32]); ok {
		t.Fatal("heartbeat with a 4-byte body answered")
	}
	if _, ok := g.callback(short[:20]); ok {
		t.Fatal("20-byte packet answered")
	}
}

type failingChannel struct{ err error }

func (f failingChannel) Send([]byte, uint64) error { return f.err }

func TestSendFailure(t *testing.T) {
	boom := errors.New("ring gone")
	h, err := NewHeartbeat(failingChannel{boom}, HeartbeatConfig{})
	if err != nil {
		t.Fatal(err)
	}
	r := start(t, h)
	if err := r.result(t); !errors.Is(err, boom) {
		t.Fatalf("Run: %v", err)
	}
	if err := h.HandlePacket(nil, 1); !errors.Is(err, ErrClosed) || !errors.Is(err, boom) {
		t.Fatalf("HandlePacket: %v", err)
	}
}

func TestSendFailureMidway(t *testing.T) {
	s, g := newShutdown(t)
	start(t, s)
	negotiated(t, s)
	boom := errors.New("ring gone")
	g.mu.Lock()
	g.sendErr = boom
	g.mu.Unlock()
	if _, err := s.RequestShutdown(context.Background(), false); !errors.Is(err, boom) {
		t.Fatalf("RequestShutdown: %v", err)
	}
	if _, err := s.RequestShutdown(context.Background(), false); !errors.Is(err, ErrClosed) {
		t.Fatalf("RequestShutdown after: %v", err)
	}
}

func TestConstructorsRefuse(t *testing.T) {
	g := newLinux(t, protocol.MsgHeartbeat)
	for name, err := range map[string]error{
		"nil channel":      func() error { _, err := NewShutdown(nil, Config{}); return err }(),
		"negative timeout": func() error { _, err := NewShutdown(g, Config{NegotiateTimeout: -1}); return err }(),
		"negative period":  func() error { _, err := NewHeartbeat(g, HeartbeatConfig{Period: -1}); return err }(),
		"nil clock":        func() error { _, err := NewTimeSync(g, TimeSyncConfig{}); return err }(),
		"negative ts":      func() error { _, err := NewTimeSync(g, TimeSyncConfig{Clock: &fakeClock{}, Period: -1}); return err }(),
		"heartbeat nil ch": func() error { _, err := NewHeartbeat(nil, HeartbeatConfig{}); return err }(),
		"time sync nil ch": func() error { _, err := NewTimeSync(nil, TimeSyncConfig{Clock: &fakeClock{}}); return err }(),
	} {
		if err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	h, err := NewHeartbeat(g, HeartbeatConfig{})
	if err != nil || h.period != DefaultHeartbeatPeriod {
		t.Fatalf("defaults: %v", err)
	}
	ts, err := NewTimeSync(g, TimeSyncConfig{Clock: &fakeClock{}})
	if err != nil || ts.period != DefaultTimeSyncPeriod || ts.e.negTO != DefaultNegotiateTimeout {
		t.Fatalf("defaults: %v", err)
	}
}

func TestOffers(t *testing.T) {
	for _, o := range []Offer{ShutdownOffer, HeartbeatOffer, TimeSyncOffer} {
		if o.Instance == o.Class || o.Name == "" {
			t.Errorf("offer %+v", o)
		}
	}
	if ShutdownOffer.Class.String() != "0e0b6031-5213-4934-818b-38d90ced39db" ||
		HeartbeatOffer.Class.String() != "57164f39-9115-4e78-ab55-382f3bd5422d" ||
		TimeSyncOffer.Class.String() != "9527e630-d0ae-497b-adce-e80ab0175caf" {
		t.Error("class GUIDs are not Linux's HV_SHUTDOWN_GUID, HV_HEART_BEAT_GUID, HV_TS_GUID")
	}
}
