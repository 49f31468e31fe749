package ring

import (
	"bytes"
	"errors"
	"testing"

	"gohv/vmbus/proto"
)

func TestRoundTripAndWrapAround(t *testing.T) {
	tr := newTestRing(t, PageSize)
	buf := make([]byte, PageSize)
	// 1000-byte payloads take 1024 bytes of ring: 39 of them go round the
	// 4096-byte data area almost ten times.
	for i := range 39 {
		payload := bytes.Repeat([]byte{byte(i)}, 1000)
		if err := tr.s.Write(inband(t, uint64(i), len(payload)), payload); err != nil {
			t.Fatalf("packet %d: %v", i, err)
		}
		n, err := tr.r.Read(buf)
		if err != nil {
			t.Fatalf("packet %d: %v", i, err)
		}
		p, err := proto.ParsePacket(buf[:n])
		if err != nil || p.TransactionID != uint64(i) || !bytes.Equal(p.Payload[:1000], payload) {
			t.Fatalf("packet %d: %+v %v", i, p.TransactionID, err)
		}
	}
	if tr.ctl(WriteIndexOffset) != 39*1024%PageSize || tr.ctl(ReadIndexOffset) != 39*1024%PageSize {
		t.Fatalf("indices %d %d", tr.ctl(WriteIndexOffset), tr.ctl(ReadIndexOffset))
	}
}

func TestPacketStraddlingTheEnd(t *testing.T) {
	tr := newTestRing(t, PageSize)
	buf := make([]byte, PageSize)
	filler := make([]byte, payloadOfTotal(4000))
	if err := tr.s.Write(inband(t, 0, len(filler)), filler); err != nil {
		t.Fatal(err)
	}
	if _, err := tr.r.Read(buf); err != nil {
		t.Fatal(err)
	}
	// Write index 4000: a 200-byte packet runs 96 bytes to the end and
	// wraps 104 bytes (the trailer in the wrapped part).
	payload := make([]byte, 170)
	for i := range payload {
		payload[i] = byte(i)
	}
	if err := tr.s.Write(inband(t, 9, len(payload)), payload); err != nil {
		t.Fatal(err)
	}
	if int(tr.ctl(WriteIndexOffset)) != (4000+PacketSize(16+170))%PageSize {
		t.Fatalf("write index %d", tr.ctl(WriteIndexOffset))
	}
	if !bytes.Equal(tr.raw[DataOffset:DataOffset+8], payload[80:88]) {
		t.Fatalf("wrapped bytes % x", tr.raw[DataOffset:DataOffset+8])
	}
	n, err := tr.r.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	p, err := proto.ParsePacket(buf[:n])
	if err != nil || !bytes.Equal(p.Payload[:170], payload) || p.TransactionID != 9 {
		t.Fatalf("%v", err)
	}
}

// The producer keeps 8 bytes free (Linux: free space strictly greater
// than the packet), so the largest packet an empty 4 KiB ring takes is
// 4096 - 8 - 8 bytes, and a ring with one 8-byte hole refuses even the
// smallest packet.
func TestFullRingKeepsOneSlotFree(t *testing.T) {
	tr := newTestRing(t, PageSize)
	if tr.s.MaxPacketSize() != 4080 {
		t.Fatalf("MaxPacketSize %d", tr.s.MaxPacketSize())
	}
	big := make([]byte, 4080-16)
	if err := tr.s.Write(inband(t, 0, len(big)+1), append(big, 0)); err != ErrTooLarge {
		t.Fatalf("one byte more than the maximum: %v", err)
	}
	if err := tr.s.Write(inband(t, 0, len(big)), big); err != nil {
		t.Fatalf("the largest packet: %v", err)
	}
	if err := tr.s.Write(inband(t, 0, 0), nil); err != ErrFull {
		t.Fatalf("a packet into the last 8 bytes: %v", err)
	}
	if _, err := tr.r.Read(make([]byte, PageSize)); err != nil {
		t.Fatal(err)
	}
	// Now fill with 16-byte packets (24 bytes of ring): 170 fit in 4088.
	n := 0
	for ; tr.s.Write(inband(t, 0, 0), nil) == nil; n++ {
	}
	if n != (PageSize-8)/24 {
		t.Fatalf("%d small packets fit", n)
	}
	used := tr.s.used(tr.ctl(WriteIndexOffset), tr.ctl(ReadIndexOffset))
	if free := PageSize - int(used); free <= 0 || free > 24 {
		t.Fatalf("%d bytes free in a full ring", free)
	}
}

func TestWriteRefusesHeadersThatDoNotFrame(t *testing.T) {
	tr := newTestRing(t, PageSize)
	good := inband(t, 0, 8)
	for name, c := range map[string]struct{ h, p []byte }{
		"short header":      {good[:8], make([]byte, 8)},
		"len8 off by one":   {good, make([]byte, 9)},
		"payload too short": {good, make([]byte, 0)},
		"unaligned header":  {append(append([]byte{}, good...), 0), make([]byte, 8)},
		"offset8 elsewhere": {func() []byte { h := append([]byte{}, good...); h[2] = 3; return h }(), make([]byte, 8)},
	} {
		if err := tr.s.Write(c.h, c.p); err != ErrFraming {
			t.Errorf("%s: %v", name, err)
		}
	}
	if tr.ctl(WriteIndexOffset) != 0 {
		t.Fatal("a refused packet moved the write index")
	}
	// A padded payload frames: len8 counts the padding.
	if err := tr.s.Write(inband(t, 0, 9), make([]byte, 9)); err != nil {
		t.Fatal(err)
	}
}

func TestShortBufferPeekAndSkip(t *testing.T) {
	tr := newTestRing(t, PageSize)
	for i := range 3 {
		if err := tr.s.Write(inband(t, uint64(i), 100), make([]byte, 100)); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := tr.r.Peek(); n != 120 || err != nil {
		t.Fatalf("Peek %d %v", n, err)
	}
	small := make([]byte, 119)
	if n, err := tr.r.Read(small); n != 120 || err != ErrShortBuffer {
		t.Fatalf("short read %d %v", n, err)
	}
	if err := tr.r.Skip(); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 120)
	n, err := tr.r.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	if p, _ := proto.ParsePacket(buf[:n]); p.TransactionID != 1 {
		t.Fatalf("read packet %d after skipping 0", p.TransactionID)
	}
	if err := tr.r.Skip(); err != nil {
		t.Fatal(err)
	}
	if _, err := tr.r.Peek(); err != ErrEmpty {
		t.Fatalf("Peek of an empty ring: %v", err)
	}
	if err := tr.r.Skip(); err != ErrEmpty {
		t.Fatalf("Skip of an empty ring: %v", err)
	}
}

func TestMemoryMustBeWholePages(t *testing.T) {
	for _, n := range []int{0, PageSize, PageSize + 8, 3*PageSize - 1} {
		if _, err := NewFlatMemory(make([]byte, n)); !errors.Is(err, ErrMemory) {
			t.Errorf("%d bytes: %v", n, err)
		}
	}
	if _, err := NewFlatMemory(make([]byte, PageSize+1)[1:]); !errors.Is(err, ErrMemory) {
		t.Error("an unaligned control page was taken")
	}
	if _, err := NewPageMemory([][]byte{make([]byte, PageSize)}); !errors.Is(err, ErrMemory) {
		t.Error("a ring without a data page was taken")
	}
	if _, err := NewPageMemory([][]byte{make([]byte, PageSize), make([]byte, 100)}); !errors.Is(err, ErrMemory) {
		t.Error("a short page was taken")
	}
	if _, err := NewPair(100); !errors.Is(err, ErrMemory) {
		t.Error("NewPair took a partial page")
	}
}

// PageMemory over shuffled, separate pages behaves as FlatMemory does,
// including copies across page boundaries.
func TestPageMemoryMatchesFlat(t *testing.T) {
	const pages = 5
	flat, _ := NewFlatMemory(make([]byte, pages*PageSize))
	list := make([][]byte, pages)
	for i := range list {
		list[i] = make([]byte, PageSize)
	}
	paged, err := NewPageMemory(list)
	if err != nil {
		t.Fatal(err)
	}
	seed := uint32(1)
	rnd := func(n int) int { seed = seed*1664525 + 1013904223; return int(seed>>8) % n }
	for range 2000 {
		off := PageSize + rnd(pages*PageSize-PageSize)
		n := rnd(pages*PageSize - off + 1)
		p := make([]byte, n)
		for i := range p {
			p[i] = byte(rnd(256))
		}
		flat.WriteAt(p, off)
		paged.WriteAt(p, off)
		off2 := PageSize + rnd(pages*PageSize-PageSize)
		n2 := rnd(pages*PageSize - off2 + 1)
		a, b := make([]byte, n2), make([]byte, n2)
		flat.ReadAt(a, off2)
		paged.ReadAt(b, off2)
		if !bytes.Equal(a, b) {
			t.Fatalf("read %d at %d differs", n2, off2)
		}
		w := rnd(PageSize / 4)
		v := uint32(rnd(1 << 30))
		flat.StoreU32(4*w, v)
		paged.StoreU32(4*w, v)
		if flat.LoadU32(4*w) != v || paged.LoadU32(4*w) != v {
			t.Fatal("control word")
		}
	}
	for i := 1; i < pages; i++ {
		var fl [PageSize]byte
		flat.ReadAt(fl[:], i*PageSize)
		if !bytes.Equal(fl[:], list[i]) {
			t.Fatalf("page %d differs", i)
		}
	}
}
