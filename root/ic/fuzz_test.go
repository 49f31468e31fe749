package ic

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"gohv/root/ic/protocol"
)

// recorder is a Channel that keeps the last packet: the fuzz target drives
// the services by hand, without goroutines.
type recorder struct {
	mu   sync.Mutex
	last []byte
	tid  uint64
}

func (r *recorder) Send(p []byte, tid uint64) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.last, r.tid = slices.Clone(p), tid
	return nil
}

// The fuzz target's situations: which request is outstanding.
const (
	fuzzNegotiate = iota // NEGOTIATE on the shutdown channel
	fuzzHeartbeat        // a heartbeat, after negotiation
	fuzzShutdown         // a shutdown request, after negotiation
	fuzzTimeSync         // a SYNC, after negotiation (v4 body)
	fuzzKinds
)

// outstanding builds a service with one request outstanding, negotiated
// with Linux's answer first where the situation needs it. It returns the
// service, the request as sent, and its transaction ID.
func outstanding(tb testing.TB, kind int) (Service, *linuxGuest, []byte, uint64) {
	tb.Helper()
	rec := &recorder{}
	var svc Service
	var e *endpoint
	var g *linuxGuest
	switch kind {
	case fuzzNegotiate, fuzzShutdown:
		s, err := NewShutdown(rec, Config{})
		if err != nil {
			tb.Fatal(err)
		}
		svc, e, g = s, s.e, newLinux(tb, protocol.MsgShutdown)
	case fuzzHeartbeat:
		h, err := NewHeartbeat(rec, HeartbeatConfig{})
		if err != nil {
			tb.Fatal(err)
		}
		svc, e, g = h, h.e, newLinux(tb, protocol.MsgHeartbeat)
	case fuzzTimeSync:
		ts, err := NewTimeSync(rec, TimeSyncConfig{Clock: &fakeClock{now: time.Unix(1e9, 0)}})
		if err != nil {
			tb.Fatal(err)
		}
		svc, e, g = ts, ts.e, newLinux(tb, protocol.MsgTimeSync)
	}
	if !e.tryAcquire() {
		tb.Fatal("slot taken")
	}
	if _, err := e.sendNegotiate(); err != nil {
		tb.Fatal(err)
	}
	if kind != fuzzNegotiate {
		reply, ok := g.callback(slices.Clone(rec.last))
		if !ok {
			tb.Fatal("Linux dropped the NEGOTIATE")
		}
		if err := svc.HandlePacket(reply, rec.tid); err != nil {
			tb.Fatal(err)
		}
		switch s := svc.(type) {
		case *Heartbeat:
			if err := s.beat(); err != nil {
				tb.Fatal(err)
			}
		case *Shutdown:
			if !e.tryAcquire() {
				tb.Fatal("slot taken")
			}
			if _, err := e.send(protocol.MsgShutdown, (&protocol.ShutdownMsg{}).Append(nil), nil); err != nil {
				tb.Fatal(err)
			}
		case *TimeSync:
			if !e.tryAcquire() {
				tb.Fatal("slot taken")
			}
			if _, err := s.sendLocked(protocol.TimeSyncSync); err != nil {
				tb.Fatal(err)
			}
		}
	}
	if !e.outstanding() {
		tb.Fatal("no request outstanding")
	}
	return svc, g, rec.last, rec.tid
}

// FuzzHandlePacket feeds a guest's answer to each kind of outstanding
// request. Input: byte 0 picks the situation, byte 1 is added to the
// transaction ID, the rest is the packet's payload. HandlePacket never
// panics; it either accepts the answer — the request is then settled and
// the service's record agrees with Linux's rules — or fails with
// ErrMalformed or ErrNoCommonVersion, after which the service is closed.
func FuzzHandlePacket(f *testing.F) {
	for _, s := range handleSeeds(f) {
		f.Add(s.b)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) < 2 {
			return
		}
		kind, delta, p := int(in[0])%fuzzKinds, uint64(in[1]), in[2:]
		svc, _, _, tid := outstanding(t, kind)
		err := svc.HandlePacket(p, tid+delta)
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrNoCommonVersion) {
				t.Fatalf("error wraps neither ErrMalformed nor ErrNoCommonVersion: %v", err)
			}
			if err := svc.HandlePacket(p, tid+delta); !errors.Is(err, ErrClosed) {
				t.Fatalf("service not closed after a failure: %v", err)
			}
			return
		}
		if delta != 0 {
			t.Fatal("answer with another transaction ID accepted")
		}
		switch s := svc.(type) {
		case *Heartbeat:
			if kind == fuzzHeartbeat {
				if st := s.Status(); st.Answered != 1 || st.LastSeq != 2 || st.Waiting {
					t.Fatalf("status %+v after an accepted answer", st)
				}
			}
		case *TimeSync:
			if st := s.Status(); st.Answered != 1 || st.Waiting {
				t.Fatalf("status %+v after an accepted answer", st)
			}
		}
		v, ok := svc.Versions()
		if !ok {
			t.Fatal("accepted a NEGOTIATE answer without versions")
		}
		if !slices.Contains(FrameworkVersions[:], v.Framework) {
			t.Fatalf("framework %v", v.Framework)
		}
		// A second copy answers nothing: it is unsolicited now.
		if err := svc.HandlePacket(p, tid); !errors.Is(err, ErrMalformed) {
			t.Fatalf("second copy: %v", err)
		}
	})
}

type handleSeed struct {
	name string
	b    []byte
}

// handleSeeds: Linux 6.1's answer to each kind of request, and some
// answers it would never send.
func handleSeeds(tb testing.TB) []handleSeed {
	var out []handleSeed
	for kind, name := range []string{"negotiate", "heartbeat", "shutdown", "timesync"} {
		_, g, req, _ := outstanding(tb, kind)
		reply, ok := g.callback(slices.Clone(req))
		if !ok {
			tb.Fatalf("Linux dropped the %s request", name)
		}
		in := append([]byte{byte(kind), 0}, reply...)
		out = append(out,
			handleSeed{name + "_linux_answer", in},
			handleSeed{name + "_request_echoed", append([]byte{byte(kind), 0}, req...)},
			handleSeed{name + "_other_transaction", append([]byte{byte(kind), 1}, reply...)},
			handleSeed{name + "_truncated", in[:2+protocol.MessageHeaderSize+4]},
		)
	}
	// A NEGOTIATE answer with no common version (counts 0/0).
	_, g, req, _ := outstanding(tb, fuzzNegotiate)
	g.fw = []protocol.Version{{Major: 2}}
	reply, _ := g.callback(slices.Clone(req))
	out = append(out, handleSeed{"negotiate_no_common_version", append([]byte{fuzzNegotiate, 0}, reply...)})
	return out
}

func TestHandleSeedsAreLinuxAnswers(t *testing.T) {
	for _, s := range handleSeeds(t) {
		svc, _, _, tid := outstanding(t, int(s.b[0]))
		err := svc.HandlePacket(s.b[2:], tid+uint64(s.b[1]))
		if accepted := bytes.HasSuffix([]byte(s.name), []byte("_linux_answer")); accepted != (err == nil) {
			t.Errorf("%s: %v", s.name, err)
		}
	}
}

// TestWriteFuzzCorpus writes the seeds to testdata/fuzz/FuzzHandlePacket
// when GOHV_WRITE_CORPUS is set (the committed corpus comes from here).
func TestWriteFuzzCorpus(t *testing.T) {
	if os.Getenv("GOHV_WRITE_CORPUS") == "" {
		t.Skip("set GOHV_WRITE_CORPUS=1 to rewrite testdata/fuzz/FuzzHandlePacket")
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzHandlePacket")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, s := range handleSeeds(t) {
		if err := os.WriteFile(filepath.Join(dir, s.name), fmt.Appendf(nil, "go test fuzz v1\n[]byte(%q)\n", s.b), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
