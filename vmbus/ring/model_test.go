package ring

import (
	"bytes"
	"math/rand/v2"
	"testing"

	"gohv/vmbus/proto"
)

// ringModel is the ring as a FIFO of packet sizes: what the signalling
// and space rules say should happen, without any index arithmetic.
type ringModel struct {
	size    int
	queue   []int // ring bytes of each unread packet
	lens    []int // its payload's length
	used    int
	masked  bool
	pending int // pending_send_sz the producer set, 0 if none
}

// TestRingMatchesModel runs random writes, reads, space requests and mask
// changes against the model: every ErrFull, every returned packet and
// every signal must be the model's.
func TestRingMatchesModel(t *testing.T) {
	var toReader, toWriter, full int
	for _, dataSize := range []int{PageSize, 2 * PageSize, 16 * PageSize} {
		for seed := range uint64(20) {
			r, w, f := runModel(t, dataSize, seed, 3000)
			toReader, toWriter, full = toReader+r, toWriter+w, full+f
		}
	}
	// The runs must reach the cases the model is for.
	if toReader < 100 || toWriter < 100 || full < 100 {
		t.Fatalf("%d signals to the reader, %d to the writer, %d full rings", toReader, toWriter, full)
	}
	t.Logf("%d signals to the reader, %d to the writer, %d full rings", toReader, toWriter, full)
}

func runModel(t *testing.T, dataSize int, seed uint64, ops int) (toReader, toWriter, full int) {
	rng := rand.New(rand.NewPCG(seed, uint64(dataSize)))
	tr := newTestRing(t, dataSize)
	m := ringModel{size: dataSize}
	buf := make([]byte, dataSize)
	payload := make([]byte, dataSize)
	tid := uint64(0)
	nextRead := uint64(0)
	fail := func(format string, args ...any) {
		t.Helper()
		t.Fatalf("size %d seed %d: "+format, append([]any{dataSize, seed}, args...)...)
	}
	writes := 5 // of 10 operations; reads are 8 - writes
	if seed%2 == 1 {
		writes = 3 // a ring that is often empty
	}
	for range ops {
		switch op := rng.IntN(10); {
		case op < writes: // write
			n := rng.IntN(min(dataSize, 600))
			if rng.IntN(20) == 0 {
				n = rng.IntN(dataSize)
			}
			total := PacketSize(16 + n)
			for i := range n {
				payload[i] = byte(tid + uint64(i))
			}
			signals := tr.toReader
			err := tr.s.Write(inband(t, tid, n), payload[:n])
			switch {
			case 16+n > dataSize-16:
				if err != ErrTooLarge {
					fail("write of %d: %v, want ErrTooLarge", n, err)
				}
				continue
			case m.size-m.used <= total:
				if err != ErrFull {
					fail("write of %d with %d used: %v, want ErrFull", total, m.used, err)
				}
				full++
				continue
			case err != nil:
				fail("write of %d with %d used: %v", total, m.used, err)
			}
			wantSignal := !m.masked && len(m.queue) == 0
			if got := tr.toReader - signals; got != map[bool]int{true: 1}[wantSignal] {
				fail("write into %d packets, masked %v: %d signals", len(m.queue), m.masked, got)
			}
			m.queue = append(m.queue, total)
			m.lens = append(m.lens, n)
			m.used += total
			m.pending = 0
			tid++
		case op < 8: // read
			signals := tr.toWriter
			n, err := tr.r.Read(buf)
			if len(m.queue) == 0 {
				if err != ErrEmpty {
					fail("read of an empty ring: %v", err)
				}
				continue
			}
			if err != nil {
				fail("read: %v", err)
			}
			p, err := proto.ParsePacket(buf[:n])
			if err != nil || p.TransactionID != nextRead || PacketSize(n) != m.queue[0] {
				fail("read packet %d of %d bytes: %+v %v", nextRead, n, p.TransactionID, err)
			}
			want := make([]byte, len(p.Payload)) // the payload, then zero padding
			for i := range m.lens[0] {
				want[i] = byte(nextRead + uint64(i))
			}
			if !bytes.Equal(p.Payload, want) {
				fail("packet %d: payload differs", nextRead)
			}
			m.lens = m.lens[1:]
			before := m.size - m.used
			m.used -= m.queue[0]
			m.queue = m.queue[1:]
			after := m.size - m.used
			wantSignal := m.pending != 0 && before <= m.pending && after > m.pending
			if got := tr.toWriter - signals; got != map[bool]int{true: 1}[wantSignal] {
				fail("read with pending %d, free %d -> %d: %d signals", m.pending, before, after, got)
			}
			nextRead++
		case op < 9: // request space
			n := 16 + rng.IntN(min(dataSize-32, 2000))
			ok, err := tr.s.RequestSpace(n)
			if err != nil {
				fail("RequestSpace(%d): %v", n, err)
			}
			if fits := m.size-m.used > PacketSize(n); ok != fits {
				fail("RequestSpace(%d) = %v with %d used", n, ok, m.used)
			}
			if ok {
				m.pending = 0 // the request replaces the earlier one, and is met
			} else {
				m.pending = PacketSize(n)
			}
		default: // mask or unmask
			if m.masked {
				if got := tr.r.UnmaskInterrupts(); got != (len(m.queue) > 0) {
					fail("UnmaskInterrupts = %v with %d packets", got, len(m.queue))
				}
			} else {
				tr.r.MaskInterrupts()
			}
			m.masked = !m.masked
		}
		if got := tr.ctl(PendingSendSizeOffset); got != uint32(m.pending) {
			fail("pending_send_sz %d, model %d", got, m.pending)
		}
	}
	return tr.toReader, tr.toWriter, full
}
