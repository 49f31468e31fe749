package ring

import (
	"bytes"
	"encoding/binary"
	"testing"

	"gohv/vmbus/proto"
)

// linux-guest-hyperv-facts.md §5.2: struct hv_ring_buffer.
func TestControlPageLayout(t *testing.T) {
	for _, c := range []struct {
		name      string
		got, want int
	}{
		{"write_index", WriteIndexOffset, 0},
		{"read_index", ReadIndexOffset, 4},
		{"interrupt_mask", InterruptMaskOffset, 8},
		{"pending_send_sz", PendingSendSizeOffset, 12},
		{"feature_bits", FeatureBitsOffset, 64},
		{"feat_pending_send_sz", FeatPendingSendSize, 1},
		{"data area", DataOffset, 4096},
	} {
		if c.got != c.want {
			t.Errorf("%s at %d, want %d", c.name, c.got, c.want)
		}
	}
}

// The bytes a Sender leaves are the ones Linux's reader expects: the
// descriptor, the payload, zero padding, the trailer with the packet's
// start in its high half, and the write index after the trailer.
func TestSenderBytesOnTheWire(t *testing.T) {
	tr := newTestRing(t, PageSize)
	if tr.ctl(FeatureBitsOffset) != 1 {
		t.Fatalf("feature bits %#x", tr.ctl(FeatureBitsOffset))
	}
	tr.raw[DataOffset+29] = 0xee // garbage where the padding goes
	tr.raw[DataOffset+30] = 0xee
	payload := []byte("thirteen byte")
	if err := tr.s.Write(inband(t, 0x1122, len(payload)), payload); err != nil {
		t.Fatal(err)
	}
	want := []byte{6, 0, 2, 0, 4, 0, 0, 0, 0x22, 0x11, 0, 0, 0, 0, 0, 0}
	want = append(want, payload...)
	want = append(want, 0, 0, 0)                // padding to 32
	want = append(want, 0, 0, 0, 0, 0, 0, 0, 0) // trailer: started at 0
	if got := tr.raw[DataOffset : DataOffset+40]; !bytes.Equal(got, want) {
		t.Fatalf("data area\n% x\nwant\n% x", got, want)
	}
	if tr.ctl(WriteIndexOffset) != 40 || tr.ctl(ReadIndexOffset) != 0 {
		t.Fatalf("indices %d %d", tr.ctl(WriteIndexOffset), tr.ctl(ReadIndexOffset))
	}
	if err := tr.s.Write(inband(t, 1, 0), nil); err != nil {
		t.Fatal(err)
	}
	if trailer := binary.LittleEndian.Uint64(tr.raw[DataOffset+40+16:]); trailer != 40<<32 {
		t.Fatalf("second trailer %#x", trailer)
	}
}

// A ring as Linux's writer leaves it (hv_ringbuffer_write), built by
// hand: the Receiver reads both packets and moves read_index past the
// trailers.
func TestReceiverReadsLinuxWrittenRing(t *testing.T) {
	raw := make([]byte, 2*PageSize)
	data := raw[DataOffset:]
	// A 64-byte vstor_packet in band, completion requested, trans_id
	// VMBUS_RQST_INIT; then an empty completion.
	proto.PacketDescriptor{Type: proto.PktDataInband, DataOffset8: 2, Length8: 10, Flags: 1, TransactionID: 0xfffffffffffffffd}.Append(data[:0])
	data[16] = 7 // BEGIN_INITIALIZATION
	binary.LittleEndian.PutUint64(data[80:], 0)
	proto.PacketDescriptor{Type: proto.PktComp, DataOffset8: 2, Length8: 2, TransactionID: 5}.Append(data[88:88])
	binary.LittleEndian.PutUint64(data[104:], 88<<32)
	binary.LittleEndian.PutUint32(raw[WriteIndexOffset:], 112)
	binary.LittleEndian.PutUint32(raw[FeatureBitsOffset:], 1)
	m, _ := NewFlatMemory(raw)
	r, err := NewReceiver(m, nil)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 256)
	n, err := r.Read(buf)
	if err != nil || n != 80 {
		t.Fatalf("%d %v", n, err)
	}
	p, err := proto.ParsePacket(buf[:n])
	if err != nil || p.Payload[0] != 7 || !p.CompletionRequested() {
		t.Fatalf("%+v %v", p, err)
	}
	if got := binary.LittleEndian.Uint32(raw[ReadIndexOffset:]); got != 88 {
		t.Fatalf("read index %d after the first packet", got)
	}
	if n, err = r.Read(buf); err != nil || n != 16 {
		t.Fatalf("%d %v", n, err)
	}
	if _, err := r.Read(buf); err != ErrEmpty {
		t.Fatalf("third read: %v", err)
	}
	if got := binary.LittleEndian.Uint32(raw[ReadIndexOffset:]); got != 112 {
		t.Fatalf("read index %d at the end", got)
	}
}
