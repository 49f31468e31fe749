package netvsp

import (
	"testing"

	"gohv/root/netvsp/protocol"
	"gohv/vmbus/proto"
)

// FuzzPacket feeds a VSP that Linux's probe brought up arbitrary ring
// packets, in-band, GPA-direct and completions, with arbitrary bytes in
// its send buffer: it must never panic, never read outside the fake RAM
// (which refuses), and keep answering a well-formed packet afterwards
// unless it closed the channel.
func FuzzPacket(f *testing.F) {
	seed := func(payload []byte, t proto.PacketType) {
		var hdr []byte
		switch t {
		case proto.PktComp:
			hdr, _ = proto.AppendCompletionHeader(nil, 17, len(payload))
		case proto.PktDataUsingGPADirect:
			arr, _ := proto.AppendGPARange(nil, 200, 100, []uint64{ctrlPFN})
			r, _ := proto.ParseGPARanges(arr, 1)
			hdr, _ = proto.AppendGPADirectHeader(nil, 1, 5, r, len(payload))
		default:
			hdr, _ = proto.AppendInbandHeader(nil, 1, 3, len(payload))
		}
		f.Add(append(hdr, payload...), protocol.PacketMsg{Data: frame(otherMAC, guestMAC, 40)}.Append(nil))
	}
	seed(protocol.SendRNDISPacket{SectionIndex: 0, SectionSize: 84}.Append(nil), proto.PktDataInband)
	seed(protocol.SendRNDISPacket{SectionIndex: protocol.NoSection}.Append(nil), proto.PktDataUsingGPADirect)
	seed(protocol.SendRNDISPacketComplete{Status: 1}.Append(nil)[:8], proto.PktComp)
	seed(protocol.SendRecvBuf{GPADL: recvGPADL}.Append(nil), proto.PktDataInband)
	seed(protocol.Init{MinVersion: 2, MaxVersion: 0x60001}.Append(nil), proto.PktDataInband)
	f.Fuzz(func(t *testing.T, raw, section []byte) {
		g := newGuest(t, Config{})
		g.up()
		copy(g.ram.b[sendPFN*PageSize:], section)
		copy(g.ram.b[ctrlPFN*PageSize+100:], section)
		for len(raw)%8 != 0 {
			raw = append(raw, 0)
		}
		p, err := proto.ParsePacket(raw)
		if err != nil {
			return
		}
		if err := g.vsp.Packet(&p); err != nil {
			return
		}
		g.ch.take()
		g.port.take()
		if st := g.sendFrame(1, frame(otherMAC, guestMAC, 10)); st != protocol.StatusSuccess && g.vsp.State() == StateReady {
			t.Fatalf("a good frame after the fuzzed packet: %v", st)
		}
	})
}
