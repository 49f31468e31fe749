package protocol

import (
	"bytes"
	"errors"
	"testing"
)

func TestAppendPacketMsgHeaderIsPacketMsgsLayout(t *testing.T) {
	frame := bytes.Repeat([]byte{0xAB}, 1514)
	got := append(AppendPacketMsgHeader(nil, len(frame)), frame...)
	if want := (PacketMsg{Data: frame}).Append(nil); !bytes.Equal(got, want) {
		t.Fatalf("header + frame differ from PacketMsg.Append")
	}
	m, n, err := ParseRNDIS(got)
	if err != nil || n != len(got) || !bytes.Equal(m.(PacketMsg).Data, frame) {
		t.Fatalf("parse: %v, %d bytes", err, n)
	}
}

func TestParseSendRNDISPacket(t *testing.T) {
	in := SendRNDISPacket{ChannelType: ChannelControl, SectionIndex: 7, SectionSize: 300}
	got, err := ParseSendRNDISPacket(in.Append(nil))
	if err != nil || got != in {
		t.Fatalf("%+v, %v", got, err)
	}
	if _, err := ParseSendRNDISPacket(in.Append(nil)[:15]); !errors.Is(err, ErrMalformed) {
		t.Errorf("short: %v", err)
	}
	if _, err := ParseSendRNDISPacket(Init{}.Append(nil)); !errors.Is(err, ErrMalformed) {
		t.Errorf("another type: %v", err)
	}
	b := in.Append(nil)
	if n := testing.AllocsPerRun(100, func() { _, _ = ParseSendRNDISPacket(b) }); n != 0 {
		t.Errorf("%v allocations", n)
	}
}

func TestParsePacketMsgAgreesWithParseRNDIS(t *testing.T) {
	ppi := AppendPPIUint32(nil, PPIIEEE8021Q, VLANInfo(5, 1))
	for _, b := range [][]byte{
		PacketMsg{Data: []byte("a frame of some bytes"), PPI: ppi}.Append(nil),
		append(PacketMsg{Data: make([]byte, 60)}.Append(nil), 1, 2, 3), // trailing bytes of the next message
	} {
		m, n, err := ParsePacketMsg(b)
		want, wn, werr := ParseRNDIS(b)
		if err != nil || werr != nil || n != wn || !bytes.Equal(m.Data, want.(PacketMsg).Data) || !bytes.Equal(m.PPI, want.(PacketMsg).PPI) {
			t.Errorf("ParsePacketMsg %v %d %v, ParseRNDIS %v %d %v", m, n, err, want, wn, werr)
		}
		if a := testing.AllocsPerRun(100, func() { _, _, _ = ParsePacketMsg(b) }); a != 0 {
			t.Errorf("%v allocations", a)
		}
	}
	for name, b := range map[string][]byte{
		"another type":  HaltMsg{RequestID: 1}.Append(nil),
		"short":         PacketMsg{Data: []byte{1}}.Append(nil)[:20],
		"data past end": func() []byte { b := PacketMsg{Data: []byte{1, 2}}.Append(nil); b[8] = 200; return b }(),
	} {
		if _, _, err := ParsePacketMsg(b); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v", name, err)
		}
	}
}
