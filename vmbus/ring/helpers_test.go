package ring

import (
	"encoding/binary"
	"testing"

	"gohv/vmbus/proto"
)

// newTestRing is fresh initialised memory with a data area of dataSize
// bytes, and a Sender and Receiver on it that count their signals.
type testRing struct {
	mem                *FlatMemory
	raw                []byte
	s                  *Sender
	r                  *Receiver
	toReader, toWriter int // signals sent to the consumer, to the producer
}

func newTestRing(t testing.TB, dataSize int) *testRing {
	t.Helper()
	tr := &testRing{raw: make([]byte, PageSize+dataSize)}
	var err error
	if tr.mem, err = NewFlatMemory(tr.raw); err != nil {
		t.Fatal(err)
	}
	if err := Init(tr.mem); err != nil {
		t.Fatal(err)
	}
	if tr.s, err = NewSender(tr.mem, func() { tr.toReader++ }); err != nil {
		t.Fatal(err)
	}
	if tr.r, err = NewReceiver(tr.mem, func() { tr.toWriter++ }); err != nil {
		t.Fatal(err)
	}
	return tr
}

func (tr *testRing) ctl(off int) uint32 { return binary.LittleEndian.Uint32(tr.raw[off:]) }

// inband is the header of an in-band packet carrying n bytes.
func inband(t testing.TB, tid uint64, n int) []byte {
	t.Helper()
	h, err := proto.AppendInbandHeader(nil, 0, tid, n)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// payloadOfTotal is the payload length whose in-band packet takes exactly
// total bytes of ring (total a multiple of 8, at least 32).
func payloadOfTotal(total int) int { return total - proto.TrailerSize - proto.DescriptorSize }
