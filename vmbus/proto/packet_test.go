package proto

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
)

func TestDescriptorLayout(t *testing.T) {
	d := PacketDescriptor{Type: PktDataInband, DataOffset8: 2, Length8: 10, Flags: 1, TransactionID: 0x0102030405060708}
	b := d.Append(nil)
	want := []byte{6, 0, 2, 0, 10, 0, 1, 0, 8, 7, 6, 5, 4, 3, 2, 1}
	if !bytes.Equal(b, want) {
		t.Fatalf("descriptor % x, want % x", b, want)
	}
	back, err := ParseDescriptor(b)
	if err != nil || back != d {
		t.Fatalf("%+v %v", back, err)
	}
	if DescriptorSize != 16 || TrailerSize != 8 || GPADirectHeaderSize != 24 || TransferPageHeaderSize != 24 || TransferPageRangeSize != 8 {
		t.Fatal("packet sizes differ from linux-guest-hyperv-facts.md §5.3")
	}
	for _, c := range []struct {
		t    PacketType
		want uint16
	}{{PktDataInband, 6}, {PktDataUsingXferPages, 7}, {PktDataUsingGPADL, 8}, {PktDataUsingGPADirect, 9}, {PktComp, 0xb}, {PktAdditionalData, 0xd}} {
		if uint16(c.t) != c.want {
			t.Errorf("%v = %#x", c.t, c.want)
		}
	}
}

// storvsc's completion: COMP, offset8 2, len8 10, a 64-byte vstor_packet
// (linux-guest-hyperv-facts.md §6.3).
func TestCompletionAsStorvscWantsIt(t *testing.T) {
	payload := make([]byte, 64)
	payload[0] = 1
	h, err := AppendCompletionHeader(nil, 0xfffffffffffffffd, len(payload))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(h[:8], []byte{0xb, 0, 2, 0, 10, 0, 0, 0}) {
		t.Fatalf("descriptor % x", h[:8])
	}
	p, err := ParsePacket(append(h, payload...))
	if err != nil || p.Type != PktComp || p.TransactionID != 0xfffffffffffffffd || len(p.Payload) != 64 || p.CompletionRequested() {
		t.Fatalf("%+v %v", p, err)
	}
}

func TestInbandPayloadIncludesPadding(t *testing.T) {
	h, _ := AppendInbandHeader(nil, PacketFlagCompletionRequested, 5, 13)
	pkt := append(h, make([]byte, 16)...) // 13 bytes padded to 16
	p, err := ParsePacket(pkt)
	if err != nil || len(p.Payload) != 16 || !p.CompletionRequested() {
		t.Fatalf("%+v %v", p, err)
	}
}

// storvsc's multi-page buffer for I/O of up to 32 pages: a descriptor
// region of 288 bytes (offset8 36) with 32 PFN slots of which only
// ceil((offset+count)/4096) are meaningful (§6.4 trap 9).
func TestGPADirectWithStaleSlots(t *testing.T) {
	pkt := make([]byte, 288+64)
	d := PacketDescriptor{Type: PktDataUsingGPADirect, DataOffset8: 36, Length8: 44, Flags: 1, TransactionID: 9}
	d.Append(pkt[:0])
	binary.LittleEndian.PutUint32(pkt[20:], 1) // rangecount
	binary.LittleEndian.PutUint32(pkt[24:], 4096+100)
	binary.LittleEndian.PutUint32(pkt[28:], 0x200)
	for i := range 32 {
		binary.LittleEndian.PutUint64(pkt[32+8*i:], 0xdead0000+uint64(i))
	}
	pkt[288] = 3 // vstor operation
	p, err := ParsePacket(pkt)
	if err != nil {
		t.Fatal(err)
	}
	if p.Ranges.Len() != 1 || len(p.Payload) != 64 || p.Payload[0] != 3 {
		t.Fatalf("%+v", p)
	}
	for r := range p.Ranges.All() {
		if r.ByteCount != 4196 || r.ByteOffset != 0x200 || r.PageCount() != 2 || r.PFN(1) != 0xdead0001 {
			t.Fatalf("range %+v, %d pages", r, r.PageCount())
		}
	}
}

// netvsc's page buffer: several ranges of one PFN each (netvsc-facts.md §2).
func TestGPADirectOfSinglePageRanges(t *testing.T) {
	var array []byte
	for i := range 3 {
		array, _ = AppendGPARange(array, 100, uint32(i*8), []uint64{uint64(0x100 + i)})
	}
	l, err := ParseGPARanges(array, 3)
	if err != nil {
		t.Fatal(err)
	}
	h, err := AppendGPADirectHeader(nil, 1, 77, l, 40)
	if err != nil {
		t.Fatal(err)
	}
	if len(h) != 24+3*16 || binary.LittleEndian.Uint32(h[20:]) != 3 || binary.LittleEndian.Uint16(h[2:]) != 9 {
		t.Fatalf("header % x", h)
	}
	p, err := ParsePacket(append(h, make([]byte, 40)...))
	if err != nil {
		t.Fatal(err)
	}
	i := 0
	for r := range p.Ranges.All() {
		if r.PageCount() != 1 || r.PFN(0) != uint64(0x100+i) || r.ByteOffset != uint32(i*8) {
			t.Fatalf("range %d: %+v", i, r)
		}
		i++
	}
	if i != 3 || p.Ranges.PageCount() != 3 {
		t.Fatalf("%d ranges", i)
	}
}

func TestTransferPagesLayout(t *testing.T) {
	ranges := []TransferPageRange{{ByteCount: 1514, ByteOffset: 0}, {ByteCount: 60, ByteOffset: 0x1000}}
	h, err := AppendTransferPagesHeader(nil, 1, 3, 0xcafe, true, ranges, 40)
	if err != nil {
		t.Fatal(err)
	}
	want := []byte{7, 0, 5, 0, 10, 0, 1, 0, 3, 0, 0, 0, 0, 0, 0, 0, // descriptor: offset8 5, len8 (40+40)/8
		0xfe, 0xca, 1, 0, 2, 0, 0, 0, // set id, sender owns, reserved, range_cnt
		0xea, 5, 0, 0, 0, 0, 0, 0, 60, 0, 0, 0, 0, 0x10, 0, 0}
	if !bytes.Equal(h, want) {
		t.Fatalf("header\n% x\nwant\n% x", h, want)
	}
	p, err := ParsePacket(append(h, make([]byte, 40)...))
	if err != nil {
		t.Fatal(err)
	}
	if p.TransferPageSetID != 0xcafe || !p.SenderOwnsSet || p.TransferPages.Len() != 2 || p.TransferPages.At(1) != ranges[1] {
		t.Fatalf("%+v", p)
	}
}

func TestParsePacketRefusesHostilePackets(t *testing.T) {
	mk := func(typ PacketType, off8, len8, flags uint16, size int, ext func(b []byte)) []byte {
		b := make([]byte, size)
		PacketDescriptor{Type: typ, DataOffset8: off8, Length8: len8, Flags: flags}.Append(b[:0])
		if ext != nil {
			ext(b)
		}
		return b
	}
	count := func(n uint32) func([]byte) { return func(b []byte) { binary.LittleEndian.PutUint32(b[20:], n) } }
	for _, c := range []struct {
		name string
		b    []byte
	}{
		{"shorter than a descriptor", make([]byte, 15)},
		{"len8 longer than the packet", mk(PktDataInband, 2, 4, 0, 24, nil)},
		{"len8 shorter than the packet", mk(PktDataInband, 2, 2, 0, 24, nil)},
		{"len8 zero", mk(PktDataInband, 0, 0, 0, 16, nil)},
		{"data offset inside the descriptor", mk(PktDataInband, 1, 3, 0, 24, nil)},
		{"data offset past the end", mk(PktDataInband, 4, 3, 0, 24, nil)},
		{"unknown flag", mk(PktDataInband, 2, 3, 2, 24, nil)},
		{"unknown type", mk(PktSynch, 2, 3, 0, 24, nil)},
		{"invalid type", mk(PktInvalid, 2, 3, 0, 24, nil)},
		{"GPA-direct data inside its extension", mk(PktDataUsingGPADirect, 2, 5, 0, 40, count(1))},
		{"GPA-direct without ranges", mk(PktDataUsingGPADirect, 5, 5, 0, 40, count(0))},
		{"GPA-direct range past the data offset", mk(PktDataUsingGPADirect, 4, 5, 0, 40, func(b []byte) {
			binary.LittleEndian.PutUint32(b[20:], 1)
			binary.LittleEndian.PutUint32(b[24:], 10)
		})},
		{"GPA-direct range count near 2^32", mk(PktDataUsingGPADirect, 5, 5, 0, 40, count(0xffffffff))},
		{"GPA-direct zero-byte range", mk(PktDataUsingGPADirect, 5, 5, 0, 40, count(1))},
		{"transfer pages inside its extension", mk(PktDataUsingXferPages, 2, 4, 0, 32, nil)},
		{"transfer-page ranges past the data offset", mk(PktDataUsingXferPages, 4, 4, 0, 32, count(2))},
		{"transfer-page range count near 2^32", mk(PktDataUsingXferPages, 4, 4, 0, 32, count(0xffffffff))},
	} {
		if _, err := ParsePacket(c.b); !errors.Is(err, ErrPacket) {
			t.Errorf("%s: %v", c.name, err)
		}
	}
}

func TestHeaderBuildersRefuseWhatCannotBeFramed(t *testing.T) {
	if _, err := AppendInbandHeader(nil, 2, 0, 8); !errors.Is(err, ErrPacket) {
		t.Error("an unknown flag was framed")
	}
	if _, err := AppendInbandHeader(nil, 0, 0, MaxPacketSize); !errors.Is(err, ErrPacket) {
		t.Error("a payload beyond len8 was framed")
	}
	if _, err := AppendInbandHeader(nil, 0, 0, -1); !errors.Is(err, ErrPacket) {
		t.Error("a negative payload was framed")
	}
	if _, err := AppendGPADirectHeader(nil, 0, 0, GPARanges{}, 8); !errors.Is(err, ErrPacket) {
		t.Error("a GPA-direct packet without ranges was framed")
	}
	h, err := AppendInbandHeader(nil, 0, 0, MaxPacketSize-DescriptorSize)
	if err != nil || binary.LittleEndian.Uint16(h[4:]) != 0xffff {
		t.Errorf("the largest packet: %v", err)
	}
}

// ParsePacket and walking its ranges are on every VSP's data path.
func TestParsePacketDoesNotAllocate(t *testing.T) {
	pkt := make([]byte, 288+64)
	PacketDescriptor{Type: PktDataUsingGPADirect, DataOffset8: 36, Length8: 44, Flags: 1}.Append(pkt[:0])
	binary.LittleEndian.PutUint32(pkt[20:], 1)
	binary.LittleEndian.PutUint32(pkt[24:], 32*4096)
	var sum uint64
	allocs := testing.AllocsPerRun(100, func() {
		p, err := ParsePacket(pkt)
		if err != nil {
			t.Fatal(err)
		}
		for r := range p.Ranges.All() {
			for i := range r.PageCount() {
				sum += r.PFN(i)
			}
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per packet", allocs)
	}
}
