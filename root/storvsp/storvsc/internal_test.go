package storvsc

import (
	"encoding/binary"
	"log/slog"
	"testing"

	"gohv/root/storvsp/protocol"
	"gohv/vmbus/client"
	"gohv/vmbus/proto"
)

// TestGPADirectLayout: up to 32 pages go out in Linux's fixed 32-slot
// multipage buffer (descriptor region 288 bytes, offset8 36), the unused
// slots stale; more go out with exactly their pages; the VMBus parser
// reads back the range the client meant.
func TestGPADirectLayout(t *testing.T) {
	for _, tc := range []struct {
		r       client.Range
		hdrSize int
	}{
		{client.Range{Offset: 0, Len: 512, PFNs: []uint64{7}}, 288},
		{client.Range{Offset: 4000, Len: 200, PFNs: []uint64{7, 9}}, 288},
		{client.Range{Offset: 0, Len: 32 * 4096, PFNs: seq(32)}, 288},
		{client.Range{Offset: 0, Len: 256 << 10, PFNs: seq(64)}, 32 + 8*64},
		{client.Range{Offset: 100, Len: 256 << 10, PFNs: seq(65)}, 32 + 8*65},
	} {
		var payload [protocol.PacketSize]byte
		h, err := appendGPADirectHeader(nil, 42, tc.r, len(payload))
		if err != nil {
			t.Fatal(err)
		}
		if len(h) != tc.hdrSize {
			t.Errorf("%d pages: header of %d bytes, want %d", len(tc.r.PFNs), len(h), tc.hdrSize)
		}
		p, err := proto.ParsePacket(append(h, payload[:]...))
		if err != nil {
			t.Fatal(err)
		}
		if p.Type != proto.PktDataUsingGPADirect || p.TransactionID != 42 || !p.CompletionRequested() || len(p.Payload) != protocol.PacketSize || p.Ranges.Len() != 1 {
			t.Fatalf("%+v", p)
		}
		for r := range p.Ranges.All() {
			if r.ByteCount != tc.r.Len || r.ByteOffset != tc.r.Offset || r.PageCount() != len(tc.r.PFNs) {
				t.Fatalf("range %+v from %+v", r, tc.r)
			}
			for i := range r.PageCount() {
				if r.PFN(i) != tc.r.PFNs[i] {
					t.Fatalf("PFN %d: %#x", i, r.PFN(i))
				}
			}
		}
		for off := 32 + 8*len(tc.r.PFNs); off < len(h); off += 8 {
			if binary.LittleEndian.Uint64(h[off:]) != StalePFN {
				t.Fatalf("slot at %d is not stale", off)
			}
		}
	}
}

func seq(n int) []uint64 {
	out := make([]uint64, n)
	for i := range out {
		out[i] = uint64(100 + 3*i)
	}
	return out
}

// FuzzDispatch feeds arbitrary host packets to the completion path with
// requests waiting on them: nothing panics, and a request either
// completes or stays waiting.
func FuzzDispatch(f *testing.F) {
	ok := protocol.Packet{Operation: protocol.OpCompleteIO}
	ok.SetSCSIRequest(protocol.SCSIRequest{Length: protocol.SCSIRequestSize, SRBStatus: protocol.SRBStatusSuccess, DataTransferLength: 512})
	b := ok.Marshal()
	hdr, _ := proto.AppendCompletionHeader(nil, 1, len(b))
	f.Add(append(hdr, b[:]...))
	hdr, _ = proto.AppendCompletionHeader(nil, TransactionInit, len(b))
	f.Add(append(hdr, b[:]...))
	hdr, _ = proto.AppendInbandHeader(nil, 0, 0, 4)
	f.Add(append(hdr, 11, 0, 0, 0, 0, 0, 0, 0))
	f.Fuzz(func(t *testing.T, raw []byte) {
		c := &Controller{
			log: slog.New(slog.DiscardHandler), pending: make(map[uint64]*call), nextID: 1,
			done: make(chan struct{}), cfg: Config{OnRescan: func(protocol.Operation) {}},
		}
		io, err := c.register(0, nil, 512)
		if err != nil {
			t.Fatal(err)
		}
		init, err := c.register(TransactionInit, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		p, err := proto.ParsePacket(raw)
		if err != nil {
			return
		}
		c.dispatch(&p, raw)
		for _, cl := range []*call{io, init} {
			select {
			case <-cl.done:
				if cl.err == nil && cl.resp.Operation != protocol.OpCompleteIO {
					t.Fatalf("completed with operation %v", cl.resp.Operation)
				}
			default:
				if c.pending[cl.tid] != cl {
					t.Fatal("a request left the pending set without completing")
				}
			}
		}
	})
}
