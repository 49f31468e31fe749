package vswitch

import (
	"encoding/binary"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// recorder is an Endpoint that keeps a copy of every frame delivered.
type recorder struct {
	mu     sync.Mutex
	frames [][]byte
	n      atomic.Int64
}

func (r *recorder) Deliver(frame []byte) {
	r.mu.Lock()
	r.frames = append(r.frames, append([]byte(nil), frame...))
	r.mu.Unlock()
	r.n.Add(1)
}

func (r *recorder) got() [][]byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([][]byte(nil), r.frames...)
}

// bySource is an Endpoint that counts frames per source address without
// keeping them.
type bySource struct {
	mu sync.Mutex
	n  map[MAC]int
}

func (b *bySource) Deliver(frame []byte) {
	b.mu.Lock()
	if b.n == nil {
		b.n = map[MAC]int{}
	}
	b.n[src(frame)]++
	b.mu.Unlock()
}

func (b *bySource) from(m MAC) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.n[m]
}

// counter is an Endpoint that only counts: it allocates nothing.
type counter struct{ n atomic.Int64 }

func (c *counter) Deliver([]byte) { c.n.Add(1) }

// blocker is an Endpoint whose Deliver blocks until release is closed.
type blocker struct {
	entered chan struct{} // closed at the first Deliver
	once    sync.Once
	release chan struct{}
	n       atomic.Int64
}

func newBlocker() *blocker {
	return &blocker{entered: make(chan struct{}), release: make(chan struct{})}
}

func (b *blocker) Deliver([]byte) {
	b.once.Do(func() { close(b.entered) })
	<-b.release
	b.n.Add(1)
}

func mac(last byte) MAC { return MAC{0x00, 0x15, 0x5d, 0x00, 0x00, last} }

// frame builds dst, src, EtherType 0x88b5 (IEEE 802 local experimental),
// a 4-byte sequence number and zero padding up to size (at least 18).
func frame(d, s MAC, seq uint32, size int) []byte {
	f := make([]byte, max(size, HeaderSize+4))
	copy(f[0:6], d[:])
	copy(f[6:12], s[:])
	binary.BigEndian.PutUint16(f[12:14], 0x88b5)
	binary.BigEndian.PutUint32(f[14:18], seq)
	return f
}

func seqOf(f []byte) uint32 { return binary.BigEndian.Uint32(f[14:18]) }

// waitFor polls cond for up to ten seconds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for i := 0; !cond(); i++ {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		if i < 1000 {
			runtime.Gosched()
		} else {
			time.Sleep(100 * time.Microsecond)
		}
	}
}

// quiesce waits until every connected port's queues are empty and the
// delivery of their last frames has been counted.
func quiesce(t *testing.T, s *Switch) {
	t.Helper()
	waitFor(t, "the switch to drain", func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		for _, p := range s.ports {
			if p.in.len() != 0 || p.out.len() != 0 {
				return false
			}
		}
		return true
	})
}

// connect attaches a port or fails the test.
func connect(t *testing.T, s *Switch, cfg PortConfig, ep Endpoint) *Port {
	t.Helper()
	p, err := s.Connect(cfg, ep)
	if err != nil {
		t.Fatal(err)
	}
	return p
}
