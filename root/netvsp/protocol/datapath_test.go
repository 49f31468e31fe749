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
	if n := testing.AllocsPerRun(100, func() { _, _ = ParseSendRNDISPacket(in.Append(make([]byte, 0, 40))) }); n > 1 {
		t.Errorf("%v allocations", n)
	}
}
