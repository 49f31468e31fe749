package vswitch

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// three connects ports a, b, c (non-spoofing, MACs 1, 2, 3) with
// recorders.
func three(t *testing.T) (s *Switch, ports [3]*Port, recs [3]*recorder) {
	t.Helper()
	s = New("test", nil)
	t.Cleanup(s.Close)
	for i := range ports {
		recs[i] = &recorder{}
		ports[i] = connect(t, s, PortConfig{Name: fmt.Sprintf("p%d", i), MAC: mac(byte(i + 1))}, recs[i])
	}
	return s, ports, recs
}

func counts(recs ...*recorder) []int {
	out := make([]int, len(recs))
	for i, r := range recs {
		out[i] = len(r.got())
	}
	return out
}

func equal(a, b []int) bool { return fmt.Sprint(a) == fmt.Sprint(b) }

func TestUnicastToConfiguredMACBeforeItSent(t *testing.T) {
	s, p, r := three(t)
	if !p[0].Send(frame(mac(2), mac(1), 7, 60)) {
		t.Fatal("Send refused")
	}
	quiesce(t, s)
	if got := counts(r[:]...); !equal(got, []int{0, 1, 0}) {
		t.Fatalf("deliveries %v, want only to p1", got)
	}
	if f := r[1].got()[0]; seqOf(f) != 7 || len(f) != 60 {
		t.Fatalf("frame %x", f)
	}
	st := p[0].Stats()
	if st.TxFrames != 1 || st.TxBytes != 60 {
		t.Fatalf("sender stats %+v", st)
	}
	if st := p[1].Stats(); st.RxFrames != 1 || st.RxBytes != 60 {
		t.Fatalf("receiver stats %+v", st)
	}
}

func TestFloodNeverBackToSender(t *testing.T) {
	for _, d := range []MAC{
		Broadcast,
		{0x01, 0x00, 0x5e, 0x00, 0x00, 0xfb}, // IPv4 multicast
		{0x33, 0x33, 0x00, 0x00, 0x00, 0x01}, // IPv6 all-nodes
		{0x00, 0x15, 0x5d, 0x99, 0x99, 0x99}, // unknown unicast
	} {
		t.Run(d.String(), func(t *testing.T) {
			s, p, r := three(t)
			p[0].Send(frame(d, mac(1), 1, 64))
			quiesce(t, s)
			if got := counts(r[:]...); !equal(got, []int{0, 1, 1}) {
				t.Fatalf("deliveries %v, want p1 and p2", got)
			}
		})
	}
}

func TestLearnFromSpoofingPort(t *testing.T) {
	s, p, r := three(t)
	root := &recorder{}
	rp := connect(t, s, PortConfig{Name: "root", MAC: mac(10), AllowSpoofing: true}, root)
	x := MAC{0x02, 0, 0, 0, 0, 0x42} // a second address of the root's stack
	rp.Send(frame(Broadcast, x, 1, 64))
	quiesce(t, s)
	p[0].Send(frame(x, mac(1), 2, 64))
	quiesce(t, s)
	// root: the unicast only; p1, p2: the root's broadcast only.
	if got := counts(root, r[1], r[2]); !equal(got, []int{1, 1, 1}) {
		t.Fatalf("deliveries root,p1,p2 = %v, want [1 1 1]", got)
	}
}

func TestLearnedEntryMovesBetweenSpoofingPorts(t *testing.T) {
	s, p, _ := three(t)
	r1, r2 := &recorder{}, &recorder{}
	u1 := connect(t, s, PortConfig{Name: "u1", MAC: mac(11), AllowSpoofing: true}, r1)
	u2 := connect(t, s, PortConfig{Name: "u2", MAC: mac(12), AllowSpoofing: true}, r2)
	x := MAC{0x02, 0, 0, 0, 0, 0x42}
	u1.Send(frame(mac(1), x, 1, 64))
	quiesce(t, s)
	u2.Send(frame(mac(1), x, 2, 64)) // x moved behind u2
	quiesce(t, s)
	p[0].Send(frame(x, mac(1), 3, 64))
	quiesce(t, s)
	if got := counts(r1, r2); !equal(got, []int{0, 1}) {
		t.Fatalf("deliveries u1,u2 = %v, want only u2", got)
	}
}

func TestSourceFiltering(t *testing.T) {
	s, p, r := three(t)
	root := &recorder{}
	rp := connect(t, s, PortConfig{Name: "root", MAC: mac(10), AllowSpoofing: true}, root)

	// A port without AllowSpoofing sends only from its own MAC.
	if p[0].Send(frame(Broadcast, mac(9), 1, 64)) {
		t.Error("p0 sent from another address")
	}
	// A group source is refused even with AllowSpoofing.
	if rp.Send(frame(Broadcast, Broadcast, 2, 64)) || rp.Send(frame(Broadcast, MAC{0x01, 0, 0x5e, 0, 0, 1}, 3, 64)) {
		t.Error("root sent from a group address")
	}
	// AllowSpoofing does not extend to another connected port's MAC: Send
	// takes the frame, the forwarder drops it.
	rp.Send(frame(Broadcast, mac(2), 4, 64))
	quiesce(t, s)
	if got := counts(r[0], r[1], r[2], root); !equal(got, []int{0, 0, 0, 0}) {
		t.Fatalf("deliveries %v, want none", got)
	}
	if st := p[0].Stats(); st.SpoofDropped != 1 || st.TxFrames != 0 {
		t.Errorf("p0 stats %+v", st)
	}
	if st := rp.Stats(); st.SpoofDropped != 3 || st.TxFrames != 1 {
		t.Errorf("root stats %+v", st)
	}
	// p1 still owns its address.
	p[0].Send(frame(mac(2), mac(1), 5, 64))
	quiesce(t, s)
	if got := counts(r[1], root); !equal(got, []int{1, 0}) {
		t.Fatalf("deliveries p1,root = %v", got)
	}
}

func TestFrameLengthBounds(t *testing.T) {
	s, p, r := three(t)
	for _, tc := range []struct {
		size int
		ok   bool
	}{
		{0, false}, {MinFrameSize - 1, false}, {MinFrameSize, true},
		{1514, true}, {MaxFrameSize, true}, {MaxFrameSize + 1, false}, {65536, false},
	} {
		f := make([]byte, tc.size)
		if tc.size >= 12 {
			copy(f, frame(mac(2), mac(1), 0, 18)[:12])
		}
		if got := p[0].Send(f); got != tc.ok {
			t.Errorf("Send(%d bytes) = %v, want %v", tc.size, got, tc.ok)
		}
	}
	quiesce(t, s)
	if st := p[0].Stats(); st.MalformedDropped != 4 || st.TxFrames != 3 {
		t.Errorf("stats %+v", st)
	}
	var sizes []int
	for _, f := range r[1].got() {
		sizes = append(sizes, len(f))
	}
	if !equal(sizes, []int{MinFrameSize, 1514, MaxFrameSize}) {
		t.Errorf("delivered sizes %v", sizes)
	}
	if MaxFrameSize < 14+4+9216 {
		t.Errorf("MaxFrameSize %d", MaxFrameSize)
	}
}

func TestOrderPreservedPerSender(t *testing.T) {
	s, p, r := three(t)
	const n = 200
	for i := range n {
		if !p[0].Send(frame(mac(2), mac(1), uint32(i), 64)) {
			t.Fatalf("frame %d refused", i)
		}
	}
	quiesce(t, s)
	got := r[1].got()
	if len(got) != n {
		t.Fatalf("%d frames delivered", len(got))
	}
	for i, f := range got {
		if seqOf(f) != uint32(i) {
			t.Fatalf("frame %d has seq %d", i, seqOf(f))
		}
	}
}

func TestConnectRefuses(t *testing.T) {
	s, _, _ := three(t)
	ep := &recorder{}
	for _, tc := range []struct {
		cfg  PortConfig
		ep   Endpoint
		want error
	}{
		{PortConfig{Name: "dup", MAC: mac(2)}, ep, ErrDuplicateMAC},
		{PortConfig{Name: "dup-spoof", MAC: mac(2), AllowSpoofing: true}, ep, ErrDuplicateMAC},
		{PortConfig{Name: "", MAC: mac(20)}, ep, ErrBadConfig},
		{PortConfig{Name: "zero"}, ep, ErrBadConfig},
		{PortConfig{Name: "group", MAC: MAC{0x01, 0, 0x5e, 0, 0, 1}}, ep, ErrBadConfig},
		{PortConfig{Name: "neg", MAC: mac(20), QueueLen: -1}, ep, ErrBadConfig},
		{PortConfig{Name: "huge", MAC: mac(20), QueueLen: MaxQueueLen + 1}, ep, ErrBadConfig},
		{PortConfig{Name: "nil", MAC: mac(20)}, nil, ErrBadConfig},
	} {
		if _, err := s.Connect(tc.cfg, tc.ep); !errors.Is(err, tc.want) {
			t.Errorf("Connect(%+v): %v, want %v", tc.cfg, err, tc.want)
		}
	}
	if n := len(s.Ports()); n != 3 {
		t.Fatalf("%d ports after refused connects", n)
	}
	s.Close()
	if _, err := s.Connect(PortConfig{Name: "late", MAC: mac(20)}, ep); !errors.Is(err, ErrClosed) {
		t.Fatalf("Connect after Close: %v", err)
	}
}

func TestConfiguredMACOverridesLearnedEntry(t *testing.T) {
	s, p, _ := three(t)
	root := &recorder{}
	rp := connect(t, s, PortConfig{Name: "root", MAC: mac(10), AllowSpoofing: true}, root)
	rp.Send(frame(Broadcast, mac(30), 1, 64)) // learned behind root
	quiesce(t, s)
	vm := &recorder{}
	connect(t, s, PortConfig{Name: "vm", MAC: mac(30)}, vm)
	p[0].Send(frame(mac(30), mac(1), 2, 64))
	quiesce(t, s)
	if got := counts(root, vm); !equal(got, []int{0, 1}) {
		t.Fatalf("deliveries root,vm = %v", got)
	}
}

func TestPortCloseForgetsAndStopsDelivery(t *testing.T) {
	s, p, r := three(t)
	root := &recorder{}
	rp := connect(t, s, PortConfig{Name: "root", MAC: mac(10), AllowSpoofing: true}, root)
	x := MAC{0x02, 0, 0, 0, 0, 0x42}
	rp.Send(frame(Broadcast, x, 1, 64))
	quiesce(t, s)
	rp.Close()
	rp.Close() // idempotent
	if rp.Send(frame(Broadcast, x, 2, 64)) {
		t.Error("Send on a closed port")
	}
	if st := rp.Stats(); st.TxDropped != 1 {
		t.Errorf("closed port stats %+v", st)
	}
	// x and root's own MAC are forgotten: frames to them flood.
	p[0].Send(frame(x, mac(1), 3, 64))
	p[0].Send(frame(mac(10), mac(1), 4, 64))
	quiesce(t, s)
	if got := counts(root, r[1], r[2]); !equal(got, []int{0, 3, 3}) {
		t.Fatalf("deliveries root,p1,p2 = %v, want [0 3 3]", got)
	}
	// The address is free again.
	connect(t, s, PortConfig{Name: "root2", MAC: mac(10)}, &recorder{})
	if n := len(s.Ports()); n != 4 {
		t.Fatalf("%d ports", n)
	}
}

// TestCloseWaitsForDeliver: no Deliver runs after Port.Close returns, even
// when one was in progress as Close was called.
func TestCloseWaitsForDeliver(t *testing.T) {
	s, p, _ := three(t)
	b := newBlocker()
	bp := connect(t, s, PortConfig{Name: "slow", MAC: mac(10)}, b)
	p[0].Send(frame(mac(10), mac(1), 1, 64))
	p[0].Send(frame(mac(10), mac(1), 2, 64))
	<-b.entered
	var closed atomic.Bool
	go func() {
		time.Sleep(20 * time.Millisecond)
		if closed.Load() {
			t.Error("Close returned while Deliver was blocked")
		}
		close(b.release)
	}()
	bp.Close()
	closed.Store(true)
	n := b.n.Load()
	if n != 1 {
		t.Fatalf("%d Delivers returned by Close, want 1 (the second frame abandoned)", n)
	}
	time.Sleep(5 * time.Millisecond)
	if b.n.Load() != n {
		t.Fatal("Deliver after Close")
	}
}

func TestSwitchClose(t *testing.T) {
	s, p, r := three(t)
	p[0].Send(frame(mac(2), mac(1), 1, 64))
	quiesce(t, s)
	s.Close()
	s.Close()
	for i, q := range p {
		if q.Send(frame(Broadcast, mac(byte(i+1)), 2, 64)) {
			t.Errorf("p%d sent after Close", i)
		}
	}
	time.Sleep(5 * time.Millisecond)
	if got := counts(r[:]...); !equal(got, []int{0, 1, 0}) {
		t.Fatalf("deliveries %v after Close", got)
	}
	if n := len(s.Ports()); n != 0 {
		t.Fatalf("%d ports after Close", n)
	}
}

func TestPortsReport(t *testing.T) {
	s, p, _ := three(t)
	p[0].Send(frame(mac(2), mac(1), 1, 100))
	quiesce(t, s)
	infos := s.Ports()
	if len(infos) != 3 {
		t.Fatalf("%d ports", len(infos))
	}
	for i, in := range infos {
		if in.Name != fmt.Sprintf("p%d", i) || in.MAC != mac(byte(i+1)) {
			t.Errorf("port %d: %+v", i, in)
		}
	}
	if infos[0].Stats.TxBytes != 100 || infos[1].Stats.RxBytes != 100 {
		t.Errorf("stats %+v", infos)
	}
	if s.Name() != "test" || p[0].Name() != "p0" || p[0].MAC() != mac(1) {
		t.Error("names")
	}
}

// pingPong has a and b exchange n unicast frames, each side waiting for
// the other's frame before sending the next, and fails if any is lost.
func pingPong(t *testing.T, a, b *Port, ra, rb *bySource, n int) {
	t.Helper()
	for i := range n {
		if !a.Send(frame(b.MAC(), a.MAC(), uint32(i), 64)) {
			t.Fatalf("ping %d refused: %+v", i, a.Stats())
		}
		waitFor(t, fmt.Sprintf("ping %d", i), func() bool { return rb.from(a.MAC()) == i+1 })
		if !b.Send(frame(a.MAC(), b.MAC(), uint32(i), 64)) {
			t.Fatalf("pong %d refused: %+v", i, b.Stats())
		}
		waitFor(t, fmt.Sprintf("pong %d", i), func() bool { return ra.from(b.MAC()) == i+1 })
	}
}

// pair connects two ports that count what they receive by source.
func pair(t *testing.T, s *Switch) (a, b *Port, ra, rb *bySource) {
	t.Helper()
	ra, rb = &bySource{}, &bySource{}
	a = connect(t, s, PortConfig{Name: "a", MAC: mac(1)}, ra)
	b = connect(t, s, PortConfig{Name: "b", MAC: mac(2)}, rb)
	return a, b, ra, rb
}

// TestBlockedEndpointOnlyDropsItsOwnFrames: a port whose Deliver never
// returns fills its own egress queue; two other ports keep exchanging
// frames, and the blocked port's excess is counted in its RxDropped.
func TestBlockedEndpointOnlyDropsItsOwnFrames(t *testing.T) {
	s := New("test", nil)
	t.Cleanup(s.Close)
	a, b, ra, rb := pair(t, s)
	c := connect(t, s, PortConfig{Name: "c", MAC: mac(3)}, &counter{})
	blk := newBlocker()
	bp := connect(t, s, PortConfig{Name: "stuck", MAC: mac(10), QueueLen: 8}, blk)
	defer close(blk.release) // before the Cleanup's Close, which waits for Deliver
	// Broadcasts reach the blocked port: its egress queue holds 8 (the
	// one in Deliver keeps its slot until Deliver returns), the rest are
	// dropped.
	for i := range 20 {
		if !c.Send(frame(Broadcast, mac(3), uint32(i), 64)) {
			t.Fatalf("broadcast %d refused", i)
		}
	}
	<-blk.entered
	quiescePorts(t, s, a, b, c)
	// Unicast to the blocked port too: dropped at its egress, nowhere else.
	for i := range 20 {
		if !c.Send(frame(mac(10), mac(3), uint32(i), 64)) {
			t.Fatalf("unicast %d refused", i)
		}
	}
	pingPong(t, a, b, ra, rb, 500)
	quiescePorts(t, s, a, b, c)
	if st := bp.Stats(); st.RxDropped != 40-8 {
		t.Errorf("blocked port RxDropped %d, want %d (%+v)", st.RxDropped, 40-8, st)
	}
	for _, q := range []*Port{a, b, c} {
		if st := q.Stats(); st.TxDropped != 0 || st.RxDropped != 0 {
			t.Errorf("%s dropped: %+v", q.Name(), st)
		}
	}
}

// quiescePorts waits until the given ports' queues are empty.
func quiescePorts(t *testing.T, s *Switch, ports ...*Port) {
	t.Helper()
	waitFor(t, "the ports to drain", func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		for _, p := range ports {
			if p.in.len() != 0 || p.out.len() != 0 {
				return false
			}
		}
		return true
	})
}

// TestFloodingPortOnlyDropsItsOwnFrames: a port sending as fast as it can
// (to a receiver that never returns, the worst case) fills its own
// ingress queue and counts its own drops; a pair of other ports still get
// every frame through.
func TestFloodingPortOnlyDropsItsOwnFrames(t *testing.T) {
	s := New("test", nil)
	t.Cleanup(s.Close)
	a, b, ra, rb := pair(t, s)
	blk := newBlocker()
	connect(t, s, PortConfig{Name: "stuck", MAC: mac(10)}, blk)
	fp := connect(t, s, PortConfig{Name: "flooder", MAC: mac(11), QueueLen: 16}, &counter{})
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for _, d := range []MAC{mac(10), Broadcast} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f := frame(d, mac(11), 0, 1514)
			for {
				select {
				case <-stop:
					return
				default:
				}
				fp.Send(f)
			}
		}()
	}
	waitFor(t, "the flooder to drop", func() bool { return fp.Stats().TxDropped > 1000 })
	pingPong(t, a, b, ra, rb, 200)
	close(stop)
	wg.Wait()
	close(blk.release)
	st := fp.Stats()
	t.Logf("flooder: %+v; a: %+v", st, a.Stats())
	if st.TxDropped == 0 {
		t.Error("flooder never dropped")
	}
	for _, q := range []*Port{a, b} {
		if st := q.Stats(); st.TxDropped != 0 {
			t.Errorf("%s TxDropped %d", q.Name(), st.TxDropped)
		}
	}
}

// TestConcurrentSend: several goroutines send on one port and on others at
// once (run with -race); every frame Send accepted is delivered or counted
// as an egress drop.
func TestConcurrentSend(t *testing.T) {
	s, p, _ := three(t)
	sink := &counter{}
	sp := connect(t, s, PortConfig{Name: "sink", MAC: mac(10), QueueLen: MaxQueueLen}, sink)
	const senders, n = 4, 2000
	var wg sync.WaitGroup
	for g := range senders {
		for i := range 2 { // two goroutines on each of p0, p1
			wg.Add(1)
			go func() {
				defer wg.Done()
				port := p[i]
				for k := range n {
					port.Send(frame(mac(10), port.MAC(), uint32(g*n+k), 64))
				}
			}()
		}
	}
	wg.Wait()
	quiesce(t, s)
	var tx, drop uint64
	for i := range 2 {
		st := p[i].Stats()
		if st.TxFrames+st.TxDropped != senders*n {
			t.Errorf("p%d: TxFrames %d + TxDropped %d != %d", i, st.TxFrames, st.TxDropped, senders*n)
		}
		tx += st.TxFrames
		drop += st.TxDropped
	}
	st := sp.Stats()
	if st.RxFrames+st.RxDropped != tx || uint64(sink.n.Load()) != st.RxFrames {
		t.Errorf("sink: %+v, %d delivered; sent %d", st, sink.n.Load(), tx)
	}
	t.Logf("accepted %d, dropped at ingress %d, at egress %d", tx, drop, st.RxDropped)
}

// TestSteadyStateAllocatesNothing: after warm-up, Send, forwarding and
// delivery of a unicast frame allocate nothing.
func TestSteadyStateAllocatesNothing(t *testing.T) {
	s := New("alloc", nil)
	defer s.Close()
	a := connect(t, s, PortConfig{Name: "a", MAC: mac(1)}, &counter{})
	bc := &counter{}
	connect(t, s, PortConfig{Name: "b", MAC: mac(2)}, bc)
	for _, size := range []int{64, 1514, MaxFrameSize} {
		f := frame(mac(2), mac(1), 0, size)
		sendOne := func() {
			want := bc.n.Load() + 1
			for !a.Send(f) {
			}
			for bc.n.Load() != want {
				time.Sleep(time.Microsecond)
			}
		}
		for range 2 * DefaultQueueLen { // every slot's buffer grown
			sendOne()
		}
		if n := testing.AllocsPerRun(1000, sendOne); n != 0 {
			t.Errorf("%d-byte frame: %v allocations per frame", size, n)
		}
	}
}

// TestQueueMemoryBounded: a queue's buffers never exceed QueueLen ×
// MaxFrameSize, and standard frames keep them at QueueLen × 1536.
func TestQueueMemoryBounded(t *testing.T) {
	q := newQueue(8)
	for i := range 100 {
		q.push(make([]byte, 64))
		if i%3 == 0 {
			q.peek()
			q.pop()
		}
	}
	if got, max := q.bufferBytes(), 8*standardBufSize; got > max {
		t.Fatalf("standard frames: %d bytes buffered, bound %d", got, max)
	}
	for range 100 {
		q.push(make([]byte, MaxFrameSize))
		q.peek()
		q.pop()
	}
	if got, max := q.bufferBytes(), 8*MaxFrameSize; got > max {
		t.Fatalf("jumbo frames: %d bytes buffered, bound %d", got, max)
	}
	for q.push(make([]byte, 64)) {
	}
	if q.len() != 8 || q.bufferBytes() > 8*MaxFrameSize {
		t.Fatalf("queue of 8 holds %d and takes more", q.len())
	}
}

// TestAging: a learned address is forgotten after AgingTime without a
// frame from it, and learned again by the next one; a configured address
// never ages.
func TestAging(t *testing.T) {
	s, p, r := three(t)
	var now atomic.Int64
	s.mu.Lock()
	s.clock = func() time.Duration { return time.Duration(now.Load()) }
	s.mu.Unlock()
	root := &recorder{}
	rp := connect(t, s, PortConfig{Name: "root", MAC: mac(10), AllowSpoofing: true}, root)
	x := MAC{0x02, 0, 0, 0, 0, 0x42}
	rp.Send(frame(mac(1), x, 1, 64))
	quiesce(t, s)

	now.Store(int64(AgingTime - time.Second))
	p[0].Send(frame(x, mac(1), 2, 64)) // still learned: root only
	quiesce(t, s)
	if got := counts(root, r[1]); !equal(got, []int{1, 0}) {
		t.Fatalf("before aging: root,p1 = %v", got)
	}
	now.Store(int64(AgingTime + time.Second))
	p[0].Send(frame(x, mac(1), 3, 64)) // aged: floods
	p[0].Send(frame(mac(2), mac(1), 4, 64))
	quiesce(t, s)
	if got := counts(root, r[1]); !equal(got, []int{2, 2}) {
		t.Fatalf("after aging: root,p1 = %v, want [2 2]", got)
	}
	rp.Send(frame(mac(1), x, 5, 64)) // learned again
	quiesce(t, s)
	p[0].Send(frame(x, mac(1), 6, 64))
	quiesce(t, s)
	if got := counts(root, r[1]); !equal(got, []int{3, 2}) {
		t.Fatalf("relearned: root,p1 = %v, want [3 2]", got)
	}
}

// TestLearnedEntriesBounded: a spoofing port sending from ever-new
// addresses stops growing the table at MaxLearned; aged entries make room.
func TestLearnedEntriesBounded(t *testing.T) {
	s, _, _ := three(t)
	var now atomic.Int64
	s.mu.Lock()
	s.clock = func() time.Duration { return time.Duration(now.Load()) }
	s.mu.Unlock()
	rp := connect(t, s, PortConfig{Name: "root", MAC: mac(10), AllowSpoofing: true, QueueLen: MaxQueueLen}, &counter{})
	send := func(base int) {
		for i := range MaxLearned + 100 {
			x := MAC{0x02, 0, byte(base), byte(i >> 16), byte(i >> 8), byte(i)}
			for !rp.Send(frame(mac(1), x, 0, 64)) {
				time.Sleep(time.Microsecond)
			}
		}
		quiesce(t, s)
	}
	learned := func() int {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.table.learned
	}
	send(1)
	if n := learned(); n != MaxLearned {
		t.Fatalf("%d learned, want %d", n, MaxLearned)
	}
	now.Store(int64(AgingTime + sweepInterval))
	send(2)
	if n := learned(); n != MaxLearned {
		t.Fatalf("after aging: %d learned, want %d", n, MaxLearned)
	}
	s.mu.Lock()
	_, old := s.table.entries[MAC{0x02, 0, 1, 0, 0, 0}]
	_, fresh := s.table.entries[MAC{0x02, 0, 2, 0, 0, 0}]
	s.mu.Unlock()
	if old || !fresh {
		t.Fatalf("old entry kept %v, new entry learned %v", old, fresh)
	}
}
