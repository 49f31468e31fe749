package proto

import (
	"bytes"
	"encoding/binary"
	"reflect"
	"testing"
)

// FuzzParseChannelMessage feeds arbitrary SynIC payloads to the parser.
// It must never panic; whatever it accepts must be within Linux's sizes,
// marshal again, and parse back to the same value.
func FuzzParseChannelMessage(f *testing.F) {
	for _, c := range layouts {
		b, err := Marshal(c.m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	array, _ := AppendGPARange(nil, 64*PageSize, 0, pfnsFrom(0x1000, 64))
	h, bodies, _ := SplitGPADL(1, 2, 1, array)
	for _, m := range append([]Message{h}, bodies[0], bodies[1]) {
		b, _ := Marshal(m)
		f.Add(b)
	}
	f.Add([]byte{})
	f.Add(make([]byte, 241))
	f.Fuzz(func(t *testing.T, payload []byte) {
		m, err := ParseChannelMessage(payload)
		if err != nil {
			return
		}
		min, ok := m.Type().MinPayloadSize()
		if !ok || len(payload) < min || len(payload) > MaxMessageSize {
			t.Fatalf("accepted %d bytes of %v (minimum %d)", len(payload), m.Type(), min)
		}
		if MessageType(binary.LittleEndian.Uint32(payload)) != m.Type() {
			t.Fatalf("parsed as %v", m.Type())
		}
		b, err := Marshal(m)
		if err != nil {
			t.Fatalf("%v parsed but does not marshal: %v", m.Type(), err)
		}
		if len(b) > MaxMessageSize {
			t.Fatalf("marshalled %d bytes", len(b))
		}
		back, err := ParseChannelMessage(b)
		if err != nil || !reflect.DeepEqual(back, m) {
			t.Fatalf("%+v marshalled and parsed back as %+v (%v)", m, back, err)
		}
	})
}

// FuzzParsePacket feeds arbitrary packets to ParsePacket. It must never
// panic, every view it returns must lie inside the packet, every range
// must be walkable, and a packet it accepts must rebuild, from its
// fields, into the same header and parse back alike.
func FuzzParsePacket(f *testing.F) {
	seed := func(h []byte, err error, payload int) {
		if err != nil {
			f.Fatal(err)
		}
		f.Add(append(h, make([]byte, (payload+7)/8*8)...))
	}
	h, err := AppendCompletionHeader(nil, 7, 64)
	seed(h, err, 64)
	h, err = AppendInbandHeader(nil, 1, 9, 13)
	seed(h, err, 13)
	array, _ := AppendGPARange(nil, 3*PageSize+5, 0x10, pfnsFrom(5, 4))
	array, _ = AppendGPARange(array, 10, 0, []uint64{42})
	l, _ := ParseGPARanges(array, 2)
	h, err = AppendGPADirectHeader(nil, 1, 3, l, 64)
	seed(h, err, 64)
	h, err = AppendTransferPagesHeader(nil, 1, 3, 0xcafe, false, []TransferPageRange{{1514, 0}, {60, 4096}}, 40)
	seed(h, err, 40)
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := ParsePacket(b)
		if err != nil {
			return
		}
		inside := func(name string, v []byte) {
			if len(v) == 0 {
				return
			}
			for start := 0; start+len(v) <= len(b); start++ {
				if &b[start] == &v[0] {
					return
				}
			}
			t.Fatalf("%s is not a view inside the packet", name)
		}
		inside("payload", p.Payload)
		inside("ranges", p.Ranges.Bytes())
		if len(p.Payload)%8 != 0 {
			t.Fatalf("payload of %d bytes", len(p.Payload))
		}
		n, pages := 0, 0
		for r := range p.Ranges.All() {
			if r.ByteCount == 0 || r.ByteOffset >= PageSize || r.PageCount() != GPARangePages(r.ByteOffset, r.ByteCount) {
				t.Fatalf("range %+v with %d pages", r, r.PageCount())
			}
			for i := range r.PageCount() {
				_ = r.PFN(i)
			}
			n++
			pages += r.PageCount()
		}
		if n != p.Ranges.Len() || pages != p.Ranges.PageCount() {
			t.Fatalf("walked %d ranges of %d", n, p.Ranges.Len())
		}
		for i := range p.TransferPages.Len() {
			_ = p.TransferPages.At(i)
		}
		// Rebuild the header from the fields and compare.
		var h []byte
		hdrLen := len(b) - len(p.Payload)
		switch p.Type {
		case PktDataInband:
			if hdrLen != DescriptorSize {
				return // bytes between the descriptor and the data: not rebuilt
			}
			h, err = AppendInbandHeader(nil, p.Flags, p.TransactionID, len(p.Payload))
		case PktComp:
			if hdrLen != DescriptorSize {
				return
			}
			h, err = AppendInbandHeader(nil, p.Flags, p.TransactionID, len(p.Payload))
			if err == nil {
				h[0] = byte(PktComp)
			}
		case PktDataUsingGPADirect:
			if hdrLen != GPADirectHeaderSize+len(p.Ranges.Bytes()) {
				return // stale slots after the ranges: not rebuilt
			}
			h, err = AppendGPADirectHeader(nil, p.Flags, p.TransactionID, p.Ranges, len(p.Payload))
		case PktDataUsingXferPages:
			if hdrLen != TransferPageHeaderSize+TransferPageRangeSize*p.TransferPages.Len() {
				return
			}
			rs := make([]TransferPageRange, p.TransferPages.Len())
			for i := range rs {
				rs[i] = p.TransferPages.At(i)
			}
			h, err = AppendTransferPagesHeader(nil, p.Flags, p.TransactionID, p.TransferPageSetID, p.SenderOwnsSet, rs, len(p.Payload))
		}
		if err != nil {
			t.Fatalf("accepted %v does not rebuild: %v", p.Type, err)
		}
		rebuilt := append(h, p.Payload...)
		if p.Type == PktDataUsingXferPages {
			// The reserved byte 19 and sender_owns_set's other bits are not kept.
			rebuilt[18], rebuilt[19] = b[18], b[19]
		}
		if p.Type == PktDataUsingGPADirect {
			copy(rebuilt[16:20], b[16:20]) // reserved
		}
		if !bytes.Equal(rebuilt, b) {
			t.Fatalf("rebuilt\n% x\nfrom\n% x", rebuilt, b)
		}
	})
}

// FuzzParseGPADLRanges feeds arbitrary assembled GPADL range arrays to
// the validator a host runs once the last GPADL_BODY arrives. It must
// never panic; an accepted array must walk to exactly its length, name
// no empty range, and split into messages that reassemble to it.
func FuzzParseGPADLRanges(f *testing.F) {
	array, _ := AppendGPARange(nil, 64*PageSize, 0, pfnsFrom(0x1000, 64))
	f.Add(uint16(1), array)
	two, _ := AppendGPARange(nil, 10, 0xff0, []uint64{1, 2})
	two, _ = AppendGPARange(two, 1, 0, []uint64{3})
	f.Add(uint16(2), two)
	f.Add(uint16(3), two)
	f.Fuzz(func(t *testing.T, count uint16, array []byte) {
		l, err := ParseGPADLRanges(count, array)
		if err != nil {
			return
		}
		if len(l.Bytes()) != len(array) || l.Len() != int(count) {
			t.Fatalf("%d ranges in %d of %d bytes", l.Len(), len(l.Bytes()), len(array))
		}
		n := 0
		for r := range l.All() {
			if r.ByteCount == 0 || r.ByteOffset >= PageSize || r.PageCount() == 0 {
				t.Fatalf("range %+v", r)
			}
			_ = r.PFN(r.PageCount() - 1)
			n++
		}
		if n != int(count) {
			t.Fatalf("walked %d of %d ranges", n, count)
		}
		if len(array) > 0xffff {
			return
		}
		h, bodies, err := SplitGPADL(1, 2, count, array)
		if err != nil {
			t.Fatalf("split: %v", err)
		}
		got := append([]byte(nil), h.Data...)
		for _, b := range bodies {
			m, err := Marshal(b)
			if err != nil || len(m) > MaxMessageSize {
				t.Fatalf("body: %v", err)
			}
			got = append(got, b.Data...)
		}
		if _, err := Marshal(h); err != nil {
			t.Fatalf("header: %v", err)
		}
		if !bytes.Equal(got, array) {
			t.Fatal("split does not reassemble")
		}
	})
}
