package hostnet

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"gohv/root/hostnet/diag"
)

var (
	macA  = [6]byte{0x00, 0x15, 0x5d, 0x00, 0x00, 0x01}
	macB  = [6]byte{0x00, 0x15, 0x5d, 0x00, 0x00, 0x02}
	addrA = netip.MustParsePrefix("10.0.0.1/24")
	addrB = netip.MustParsePrefix("10.0.0.2/24")
)

func newStack(t testing.TB, mac [6]byte, addr netip.Prefix) *Stack {
	t.Helper()
	s, err := New(Config{MAC: mac, Address: addr})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// pair is two stacks on one wire (a lossy one when drop is set).
func pair(t testing.TB, drop func([]byte) bool) (a, b *Stack) {
	t.Helper()
	a, b = newStack(t, macA, addrA), newStack(t, macB, addrB)
	w := Connect(a, b, 4096, drop)
	t.Cleanup(w.Disconnect) // runs before the stacks close
	return a, b
}

func ctxFor(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func TestPingResolvesWithARPAndIsAnswered(t *testing.T) {
	a, b := pair(t, nil)
	if _, ok := a.Neighbor(addrB.Addr()); ok {
		t.Fatal("a neighbour before any traffic")
	}
	rtt, err := a.Ping(ctxFor(t, 10*time.Second), addrB.Addr(), []byte("gohv ping"))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("rtt %v", rtt)
	if mac, ok := a.Neighbor(addrB.Addr()); !ok || mac != macB {
		t.Errorf("a resolved %s to %x (%v), want %x", addrB.Addr(), mac, ok, macB)
	}
	// b learnt a from a's ARP request (RFC 826's merge) or its own.
	if mac, ok := b.Neighbor(addrA.Addr()); !ok || mac != macA {
		t.Errorf("b resolved %s to %x (%v), want %x", addrA.Addr(), mac, ok, macA)
	}
	// b counts its reply after sending it: a may see the reply first.
	for i := 0; i < 100 && b.Stats().ICMPEchoReplies == 0; i++ {
		time.Sleep(10 * time.Millisecond)
	}
	if got := b.Stats().ICMPEchoReplies; got != 1 {
		t.Errorf("b sent %d echo replies, want 1", got)
	}
	// An address nobody has: ARP goes unanswered and the ping times out.
	if _, err := a.Ping(ctxFor(t, 300*time.Millisecond), netip.MustParseAddr("10.0.0.9"), nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("ping of an absent host: %v", err)
	}
}

// pattern is n deterministic pseudo-random bytes.
func pattern(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := 0; i+8 <= n; i += 8 {
		binary.LittleEndian.PutUint64(b[i:], r.Uint64())
	}
	return b
}

// exchange writes out on c while reading everything the peer sends until
// EOF, after closing its own write side; it returns the received data's
// sha256.
func exchange(c net.Conn, out []byte) ([32]byte, int64, error) {
	werr := make(chan error, 1)
	go func() {
		_, err := c.Write(out)
		if err == nil {
			err = c.(interface{ CloseWrite() error }).CloseWrite()
		}
		werr <- err
	}()
	h := sha256.New()
	n, rerr := io.Copy(h, c)
	if err := <-werr; err != nil {
		return [32]byte{}, n, err
	}
	return [32]byte(h.Sum(nil)), n, rerr
}

// transfer moves size bytes each way between a (dialling) and b
// (listening) and checks both sha256 sums.
func transfer(t *testing.T, a, b *Stack, size int) {
	t.Helper()
	l, err := b.Listen(7000)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	up, down := pattern(1, size), pattern(2, size)
	type result struct {
		sum [32]byte
		n   int64
		err error
	}
	srv := make(chan result, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			srv <- result{err: err}
			return
		}
		defer c.Close()
		sum, n, err := exchange(c, down)
		srv <- result{sum, n, err}
	}()
	c, err := a.Dial(ctxFor(t, 10*time.Second), netip.AddrPortFrom(addrB.Addr(), 7000))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(60 * time.Second))
	start := time.Now()
	sum, n, err := exchange(c, up)
	if err != nil {
		t.Fatalf("client: after %d bytes: %v", n, err)
	}
	s := <-srv
	if s.err != nil {
		t.Fatalf("server: after %d bytes: %v", s.n, s.err)
	}
	if sum != sha256.Sum256(down) || n != int64(size) {
		t.Errorf("a received %d bytes, sha256 %x; want %d, %x", n, sum, size, sha256.Sum256(down))
	}
	if s.sum != sha256.Sum256(up) || s.n != int64(size) {
		t.Errorf("b received %d bytes, sha256 %x; want %d, %x", s.n, s.sum, size, sha256.Sum256(up))
	}
	t.Logf("%d bytes each way in %v; a %+v", size, time.Since(start), a.Stats())
}

func TestTCPMovesFourMiBBothWays(t *testing.T) {
	a, b := pair(t, nil)
	transfer(t, a, b, 4<<20)
	if got := a.Stats().DroppedOut + b.Stats().DroppedOut; got > 0 {
		t.Logf("%d frames dropped on the wire's full queues", got)
	}
}

// TestRefusedFramesAreLossTCPRepairs: an uplink that refuses every 40th
// frame is a lossy wire; the stacks count the drops and TCP retransmits.
func TestRefusedFramesAreLossTCPRepairs(t *testing.T) {
	var n atomic.Uint64
	a, b := pair(t, func([]byte) bool { return n.Add(1)%40 == 0 })
	transfer(t, a, b, 512<<10)
	sa, sb := a.Stats(), b.Stats()
	if sa.DroppedOut+sb.DroppedOut == 0 {
		t.Error("no frame counted as dropped")
	}
	if sa.TCPRetransmits+sb.TCPRetransmits == 0 {
		t.Error("no TCP retransmission")
	}
}

func TestDiagnosticPageOverTheStack(t *testing.T) {
	a, b := pair(t, nil)
	want := diag.Status{
		Partitions: []diag.Partition{{Name: "linux1", State: "running", VPs: 2, MemoryMiB: 512,
			NICs: []diag.NIC{{MAC: diag.MAC{0x00, 0x15, 0x5d, 0x01, 0x02, 0x03}, Switch: "sw0"}}}},
		Switches: []diag.Switch{{Name: "sw0", Ports: []diag.Port{
			{Name: "root", MAC: diag.MAC(macB), FramesIn: 10, FramesOut: 12},
			{Name: "linux1/0", MAC: diag.MAC{0x00, 0x15, 0x5d, 0x01, 0x02, 0x03}, DroppedOut: 1}}}},
	}
	l, err := b.Listen(80)
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- diag.Serve(l, func() diag.Status { return want }) }()
	defer func() {
		l.Close()
		if err := <-served; err == nil {
			t.Error("Serve returned nil after its listener closed")
		}
	}()
	client := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			ap, err := netip.ParseAddrPort(addr)
			if err != nil {
				return nil, err
			}
			return a.Dial(ctx, ap)
		},
	}}
	defer client.CloseIdleConnections()
	get := func(path string) []byte {
		t.Helper()
		resp, err := client.Get("http://10.0.0.2:80" + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %s %v", path, resp.Status, err)
		}
		return body
	}
	page := string(get("/"))
	for _, s := range []string{"linux1", "running", "512 MiB", "00:15:5d:01:02:03@sw0", "SWITCH sw0", "linux1/0"} {
		if !strings.Contains(page, s) {
			t.Errorf("text page lacks %q:\n%s", s, page)
		}
	}
	var parts []diag.Partition
	if err := json.Unmarshal(get("/partitions"), &parts); err != nil {
		t.Fatal(err)
	}
	if len(parts) != 1 || parts[0].Name != "linux1" || parts[0].NICs[0].MAC != want.Partitions[0].NICs[0].MAC || parts[0].VPs != 2 {
		t.Errorf("/partitions = %+v", parts)
	}
}

func TestDeliverDropsRuntsAndOversizeFrames(t *testing.T) {
	s := newStack(t, macA, addrA)
	s.Attach(UplinkFunc(func([]byte) bool { return true }))
	for n := 0; n < 14; n++ {
		s.Deliver(make([]byte, n))
	}
	s.Deliver(make([]byte, 14+1500+1))
	if st := s.Stats(); st.FramesIn != 15 || st.DroppedIn != 15 {
		t.Errorf("stats %+v: want 15 frames in, 15 dropped", st)
	}
}

func TestFramesBeforeAttachAreDropped(t *testing.T) {
	s := newStack(t, macA, addrA)
	if _, err := s.Ping(ctxFor(t, 200*time.Millisecond), addrB.Addr(), nil); err == nil {
		t.Fatal("ping without an uplink succeeded")
	}
	if st := s.Stats(); st.DroppedOut == 0 || st.FramesOut != 0 {
		t.Errorf("stats %+v: want the ARP requests dropped", st)
	}
}

// TestOutboundFrames: what reaches the uplink is a whole Ethernet frame
// from the configured MAC, padded to 60 bytes (here an ARP request).
func TestOutboundFrames(t *testing.T) {
	s := newStack(t, macA, addrA)
	frames := make(chan []byte, 16)
	s.Attach(UplinkFunc(func(f []byte) bool { frames <- bytes.Clone(f); return true }))
	go func() { _, _ = s.Ping(ctxFor(t, 200*time.Millisecond), addrB.Addr(), nil) }()
	f := <-frames
	if len(f) != 60 || !bytes.Equal(f[0:6], []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}) || !bytes.Equal(f[6:12], macA[:]) || f[12] != 0x08 || f[13] != 0x06 {
		t.Fatalf("first frame % x: want a broadcast ARP request from %x, 60 bytes", f, macA)
	}
	if !bytes.Equal(f[14+24:14+28], addrB.Addr().AsSlice()) {
		t.Errorf("ARP target % x, want %s", f[14+24:14+28], addrB.Addr())
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	for _, c := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"no address", Config{MAC: macA}, "want an IPv4 prefix"},
		{"IPv6", Config{MAC: macA, Address: netip.MustParsePrefix("fd00::1/64")}, "want an IPv4 prefix"},
		{"multicast", Config{MAC: macA, Address: netip.MustParsePrefix("224.0.0.1/24")}, "not a unicast"},
		{"zero MAC", Config{Address: addrA}, "MAC"},
		{"multicast MAC", Config{MAC: [6]byte{1, 0, 0x5e, 0, 0, 1}, Address: addrA}, "MAC"},
		{"small MTU", Config{MAC: macA, Address: addrA, MTU: 100}, "MTU 100"},
	} {
		if _, err := New(c.cfg); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error with %q", c.name, err, c.want)
		}
	}
}

func TestClosedStackRefuses(t *testing.T) {
	s := newStack(t, macA, addrA)
	s.Close()
	s.Close() // twice is fine
	s.Deliver(make([]byte, 64))
	if _, err := s.Listen(1); !errors.Is(err, ErrClosed) {
		t.Errorf("Listen after Close: %v", err)
	}
	if _, err := s.Dial(context.Background(), netip.MustParseAddrPort("10.0.0.2:1")); !errors.Is(err, ErrClosed) {
		t.Errorf("Dial after Close: %v", err)
	}
	if st := s.Stats(); st.DroppedIn != 1 {
		t.Errorf("stats %+v", st)
	}
}

// TestCloseDuringTraffic: closing both stacks while frames flow in both
// directions returns (no deadlock between Deliver and the stack's
// teardown), and the transfer fails instead of hanging.
func TestCloseDuringTraffic(t *testing.T) {
	a, b := pair(t, nil)
	l, err := b.Listen(9)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		c, err := l.Accept()
		if err == nil {
			_, _, _ = exchange(c, pattern(3, 8<<20))
		}
	}()
	c, err := a.Dial(ctxFor(t, 10*time.Second), netip.AddrPortFrom(addrB.Addr(), 9))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { _, _, err := exchange(c, pattern(4, 8<<20)); done <- err }()
	time.Sleep(20 * time.Millisecond)
	closed := make(chan struct{})
	go func() { b.Close(); a.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(20 * time.Second):
		t.Fatal("Close did not return while traffic flowed")
	}
	select {
	case err := <-done:
		if err == nil {
			t.Error("transfer succeeded across Close")
		}
	case <-time.After(20 * time.Second):
		t.Fatal("transfer still blocked after Close")
	}
}
