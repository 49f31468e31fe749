package ring

import (
	"errors"
	"testing"
)

// Every index and length the peer writes is checked; a bad one is an
// error wrapping ErrCorrupt and nothing outside the ring is touched.
func TestCorruptRingsAreErrors(t *testing.T) {
	for _, c := range []struct {
		name  string
		setup func(tr *testRing)
	}{
		{"write index past the data area", func(tr *testRing) { tr.mem.StoreU32(WriteIndexOffset, PageSize) }},
		{"write index unaligned", func(tr *testRing) { tr.mem.StoreU32(WriteIndexOffset, 12) }},
		{"write index far out", func(tr *testRing) { tr.mem.StoreU32(WriteIndexOffset, 0xfffffff8) }},
		{"published data shorter than a packet", func(tr *testRing) { tr.mem.StoreU32(WriteIndexOffset, 16) }},
		{"len8 zero", func(tr *testRing) {
			tr.mem.StoreU32(WriteIndexOffset, 64)
		}},
		{"len8 one", func(tr *testRing) {
			tr.raw[DataOffset+4] = 1
			tr.mem.StoreU32(WriteIndexOffset, 64)
		}},
		{"len8 past the published data", func(tr *testRing) {
			tr.raw[DataOffset+4] = 8 // 64 bytes + trailer > 64 published
			tr.mem.StoreU32(WriteIndexOffset, 64)
		}},
		{"len8 as large as it goes", func(tr *testRing) {
			tr.raw[DataOffset+4], tr.raw[DataOffset+5] = 0xff, 0xff
			tr.mem.StoreU32(WriteIndexOffset, PageSize-8)
		}},
	} {
		tr := newTestRing(t, PageSize)
		c.setup(tr)
		buf := make([]byte, 1<<20)
		if _, err := tr.r.Read(buf); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: Read: %v", c.name, err)
		}
		if _, err := tr.r.Peek(); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: Peek: %v", c.name, err)
		}
		if tr.ctl(ReadIndexOffset) != 0 {
			t.Errorf("%s: read index moved", c.name)
		}
	}
}

func TestCorruptReadIndexStopsTheSender(t *testing.T) {
	tr := newTestRing(t, PageSize)
	for tr.s.Write(inband(t, 0, 100), make([]byte, 100)) == nil {
	}
	tr.mem.StoreU32(ReadIndexOffset, 3)
	if err := tr.s.Write(inband(t, 0, 100), make([]byte, 100)); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Write: %v", err)
	}
	if _, err := tr.s.RequestSpace(116); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("RequestSpace: %v", err)
	}
}

func TestAttachingToACorruptRingFails(t *testing.T) {
	raw := make([]byte, 2*PageSize)
	m, _ := NewFlatMemory(raw)
	m.StoreU32(ReadIndexOffset, 5)
	if _, err := NewSender(m, nil); !errors.Is(err, ErrCorrupt) {
		t.Errorf("NewSender: %v", err)
	}
	if _, err := NewReceiver(m, nil); !errors.Is(err, ErrCorrupt) {
		t.Errorf("NewReceiver: %v", err)
	}
	m.StoreU32(ReadIndexOffset, 0)
	m.StoreU32(WriteIndexOffset, 1<<20)
	if _, err := NewSender(m, nil); !errors.Is(err, ErrCorrupt) {
		t.Errorf("NewSender: %v", err)
	}
	if _, err := NewReceiver(m, nil); !errors.Is(err, ErrCorrupt) {
		t.Errorf("NewReceiver: %v", err)
	}
}

// The peer's writes to our own index do not move us: each end keeps its
// index privately.
func TestOwnIndexIsNotReadBack(t *testing.T) {
	tr := newTestRing(t, PageSize)
	tr.s.Write(inband(t, 1, 8), make([]byte, 8))
	tr.mem.StoreU32(WriteIndexOffset, 800) // the consumer scribbles on the producer's index
	tr.s.Write(inband(t, 2, 8), make([]byte, 8))
	if tr.ctl(WriteIndexOffset) != 64 {
		t.Fatalf("write index %d", tr.ctl(WriteIndexOffset))
	}
	buf := make([]byte, 64)
	tr.r.Read(buf)
	tr.mem.StoreU32(ReadIndexOffset, 640) // the producer scribbles on the consumer's
	n, err := tr.r.Read(buf)
	if err != nil || le.Uint64(buf[8:n]) != 2 {
		t.Fatalf("%v", err)
	}
	if tr.ctl(ReadIndexOffset) != 64 {
		t.Fatalf("read index %d", tr.ctl(ReadIndexOffset))
	}
}
