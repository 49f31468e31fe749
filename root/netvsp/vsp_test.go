package netvsp

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"

	"gohv/root/netvsp/protocol"
	"gohv/vmbus/proto"
)

func TestLinuxProbeAndOpen(t *testing.T) {
	g := newGuest(t, Config{MTU: 1500, LinkSpeed: 10_000_000_000})
	g.up()
	if s := g.vsp.State(); s != StateReady {
		t.Fatalf("state %v", s)
	}
	// The queries of rndis_filter_device_add, in its order.
	if c := g.query(protocol.OIDGenMaximumFrameSize, nil); len(c.Info) != 4 || binary.LittleEndian.Uint32(c.Info) != 1500 {
		t.Errorf("MAXIMUM_FRAME_SIZE %#v", c)
	}
	if c := g.query(protocol.OID802_3PermanentAddress, nil); !bytes.Equal(c.Info, guestMAC[:]) {
		t.Errorf("PERMANENT_ADDRESS %x, want %x", c.Info, guestMAC)
	}
	if c := g.query(protocol.OIDGenFriendlyName, nil); len(c.Info) != 0 || c.Status == protocol.RNDISStatusSuccess {
		t.Errorf("FRIENDLY_NAME %#v, want a refusal", c)
	}
	// Linux's query carries an NDIS_OFFLOAD header of the size it takes.
	hdr := protocol.NDISObjectHeader{Type: protocol.NDISObjectTypeOffload, Revision: 3, Size: protocol.NDISOffloadSize}.Append(nil)
	c := g.query(protocol.OIDTCPOffloadHardwareCapabilities, append(hdr, make([]byte, protocol.NDISOffloadSize-4)...))
	oh, err := protocol.ParseNDISObjectHeader(c.Info)
	if err != nil || oh.Type != protocol.NDISObjectTypeOffload || oh.Revision < 1 || oh.Size < protocol.NDISOffloadSize6_0 ||
		int(oh.Size) > len(c.Info) || len(c.Info) > protocol.NDISOffloadSize {
		t.Errorf("TCP_OFFLOAD_HARDWARE_CAPABILITIES %#v (%v): Linux needs 112 <= size <= length <= 156", oh, err)
	}
	if !bytes.Equal(c.Info[4:], make([]byte, len(c.Info)-4)) {
		t.Error("offload capabilities advertised; the VSP offloads nothing")
	}
	if st := g.set(protocol.OIDTCPOffloadParameters, make([]byte, protocol.NDISOffloadParamsSize)); st != protocol.RNDISStatusSuccess {
		t.Errorf("TCP_OFFLOAD_PARAMETERS: %v; Linux's probe fails unless it succeeds", st)
	}
	if c := g.query(protocol.OIDGenMediaConnectStatus, nil); !bytes.Equal(c.Info, u32(protocol.MediaStateConnected)) {
		t.Errorf("MEDIA_CONNECT_STATUS %#v", c)
	}
	if c := g.query(protocol.OIDGenLinkSpeed, nil); !bytes.Equal(c.Info, u32(100_000_000)) {
		t.Errorf("LINK_SPEED %#v, want 10 Gbit/s in 100 bit/s units", c)
	}
	if c := g.query(protocol.OIDGenReceiveScaleCapabilities, nil); len(c.Info) != 0 {
		t.Errorf("RECEIVE_SCALE_CAPABILITIES answered %#v: Linux would ask for sub-channels", c)
	}
	if st := g.set(protocol.OIDGenRNDISConfigParameter, []byte("NetworkAddress")); st == protocol.RNDISStatusSuccess {
		t.Error("the guest changed its MAC address")
	}
	if st := g.set(protocol.OIDGenCurrentPacketFilter, []byte{1}); st != protocol.RNDISStatusInvalidData {
		t.Errorf("a 1-byte packet filter: %v", st)
	}
}

func TestRefusedVersionsAreAnswered(t *testing.T) {
	g := newGuest(t, Config{})
	for _, v := range []protocol.Version{protocol.Version1, 0x70000} {
		c := g.call(protocol.Init{MinVersion: v, MaxVersion: v}).(protocol.InitComplete)
		if c.Status == protocol.StatusSuccess {
			t.Errorf("version %v accepted", v)
		}
	}
	if c := g.call(protocol.Init{MinVersion: protocol.Version4, MaxVersion: protocol.Version4}).(protocol.InitComplete); c.Status != protocol.StatusSuccess {
		t.Fatalf("version 4: %v", c.Status)
	}
	// Buffers before INIT, or twice, are refused with an answer.
	g2 := newGuest(t, Config{})
	if c := g2.call(protocol.SendRecvBuf{GPADL: recvGPADL, ID: protocol.ReceiveBufferID}).(protocol.SendRecvBufComplete); c.Status == protocol.StatusSuccess {
		t.Error("a receive buffer before INIT")
	}
	g.connect2()
	if c := g.call(protocol.SendSendBuf{GPADL: 77}).(protocol.SendSendBufComplete); c.Status == protocol.StatusSuccess {
		t.Error("a second send buffer")
	}
}

// connect2 completes the buffers of a guest that already sent INIT.
func (g *guest) connect2() {
	g.t.Helper()
	if c := g.call(protocol.SendRecvBuf{GPADL: recvGPADL, ID: protocol.ReceiveBufferID}).(protocol.SendRecvBufComplete); c.Status != protocol.StatusSuccess {
		g.t.Fatal(c.Status)
	}
	if c := g.call(protocol.SendSendBuf{GPADL: sendGPADL}).(protocol.SendSendBufComplete); c.Status != protocol.StatusSuccess {
		g.t.Fatal(c.Status)
	}
}

func TestFramesBothWays(t *testing.T) {
	g := newGuest(t, Config{})
	g.up()

	// Guest to switch: one frame in a section, then three batched.
	f1 := frame(otherMAC, guestMAC, 100)
	if st := g.sendFrame(0, f1); st != protocol.StatusSuccess {
		t.Fatalf("send: %v", st)
	}
	batch := [][]byte{frame(otherMAC, guestMAC, 1), frame(otherMAC, guestMAC, 333), frame(otherMAC, guestMAC, 1000)}
	if st := g.sendFrame(5, batch...); st != protocol.StatusSuccess {
		t.Fatalf("batched send: %v", st)
	}
	got := g.port.take()
	want := append([][]byte{f1}, batch...)
	if len(got) != len(want) {
		t.Fatalf("the switch got %d frames, want %d", len(got), len(want))
	}
	for i := range want {
		if !bytes.Equal(got[i], want[i]) {
			t.Errorf("frame %d differs", i)
		}
	}

	// A frame by GPA range, split across two pages as an skb's
	// fragments are.
	big := frame(otherMAC, guestMAC, 1400)
	msg := protocol.PacketMsg{Data: big}.Append(nil)
	copy(g.ram.b[framePFN*PageSize+4000:], msg[:96])
	copy(g.ram.b[(framePFN+1)*PageSize:], msg[96:])
	arr, _ := proto.AppendGPARange(nil, 96, 4000, []uint64{framePFN})
	arr, _ = proto.AppendGPARange(arr, uint32(len(msg)-96), 0, []uint64{framePFN + 1})
	if st := g.gpaDirectRanges(protocol.ChannelData, arr, 2); st != protocol.StatusSuccess {
		t.Fatalf("GPA-direct send: %v", st)
	}
	if got := g.port.take(); len(got) != 1 || !bytes.Equal(got[0], big) {
		t.Fatalf("GPA-direct frame: got %d frames", len(got))
	}

	// Switch to guest: its unicast, broadcast; another's unicast is
	// filtered out.
	g.vsp.Deliver(frame(guestMAC, otherMAC, 60))
	g.vsp.Deliver(frame([6]byte{0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF}, otherMAC, 60))
	g.vsp.Deliver(frame(otherMAC, otherMAC, 60))
	g.vsp.Deliver([]byte{1, 2, 3})
	msgs, _ := g.receive(true)
	if len(msgs) != 2 {
		t.Fatalf("the guest got %d frames, want 2", len(msgs))
	}
	if p, ok := msgs[0].(protocol.PacketMsg); !ok || !bytes.Equal(p.Data, frame(guestMAC, otherMAC, 60)) || len(p.PPI) != 0 {
		t.Errorf("received %#v", msgs[0])
	}
	s := g.vsp.Stats()
	if s.TxFrames != 5 || s.RxFrames != 2 || s.RxDropped != 2 || s.TxMalformed != 0 {
		t.Errorf("stats %+v", s)
	}
}

func TestReceiveSectionsAreBounded(t *testing.T) {
	g := newGuest(t, Config{})
	g.up()
	sections := recvPages * PageSize / int(g.vsp.sectionSize())
	// The guest completes nothing: frames fill the data sections, then
	// drop; control replies still have theirs.
	for range sections + 10 {
		g.vsp.Deliver(frame(guestMAC, otherMAC, 1000))
	}
	msgs, tids := g.receive(false)
	if want := sections - controlSections; len(msgs) != want {
		t.Fatalf("%d frames in flight, want %d (every data section)", len(msgs), want)
	}
	if d := g.vsp.Stats().RxDropped; d != 10+controlSections {
		t.Errorf("%d dropped, want %d", d, 10+controlSections)
	}
	seen := map[uint64]bool{}
	for _, tid := range tids {
		if seen[tid] || tid < controlSections {
			t.Fatalf("transaction %d twice, or a control section for a frame", tid)
		}
		seen[tid] = true
	}
	if c := g.query(protocol.OIDGenMediaConnectStatus, nil); len(c.Info) != 4 {
		t.Fatal("no control reply while the guest holds every data section")
	}
	// Completions give sections back; a bogus or repeated one is
	// counted and changes nothing.
	g.completeRx(tids[0])
	g.completeRx(tids[0])
	g.completeRx(1 << 40)
	g.vsp.Deliver(frame(guestMAC, otherMAC, 1000))
	if msgs, got := g.receive(false); len(msgs) != 1 || got[0] != tids[0] {
		t.Fatalf("after one completion: %d frames in sections %v", len(msgs), got)
	}
	if b := g.vsp.Stats().RxBadCompletions; b != 2 {
		t.Errorf("%d bad completions counted, want 2", b)
	}
}

func TestHostileSends(t *testing.T) {
	g := newGuest(t, Config{})
	g.up()
	cases := []struct {
		name string
		send func() protocol.Status
	}{
		{"section past the buffer", func() protocol.Status {
			g.tid++
			if err := g.inband(protocol.SendRNDISPacket{SectionIndex: 1 << 30, SectionSize: 64}, g.tid); err != nil {
				t.Fatal(err)
			}
			return g.sendComplete(g.tid)
		}},
		{"section longer than a section", func() protocol.Status {
			g.tid++
			if err := g.inband(protocol.SendRNDISPacket{SectionIndex: 0, SectionSize: SendSectionSize + 1}, g.tid); err != nil {
				t.Fatal(err)
			}
			return g.sendComplete(g.tid)
		}},
		{"range outside RAM", func() protocol.Status {
			arr, _ := proto.AppendGPARange(nil, 100, 0, []uint64{ramPages + 5})
			return g.gpaDirectRanges(protocol.ChannelData, arr, 1)
		}},
		{"PFN beyond 52 bits", func() protocol.Status {
			arr, _ := proto.AppendGPARange(nil, 100, 0, []uint64{1 << 50})
			return g.gpaDirectRanges(protocol.ChannelData, arr, 1)
		}},
		{"garbage RNDIS", func() protocol.Status {
			return g.gpaDirect(protocol.ChannelData, []byte{1, 0, 0, 0, 200, 0, 0, 0, 9, 9, 9, 9}, ctrlPFN)
		}},
		{"data offset past msg_len", func() protocol.Status {
			m := protocol.PacketMsg{Data: frame(otherMAC, guestMAC, 20)}.Append(nil)
			binary.LittleEndian.PutUint32(m[8:], 5000)
			return g.sendFrameRaw(m)
		}},
	}
	for i, c := range cases {
		if st := c.send(); st != protocol.StatusInvalidRNDISPacket {
			t.Errorf("%s: completion status %v", c.name, st)
		}
		if m := g.vsp.Stats().TxMalformed; m != uint64(i+1) {
			t.Errorf("%s: %d malformed counted", c.name, m)
		}
	}
	if f := g.port.take(); len(f) != 0 {
		t.Errorf("%d frames reached the switch", len(f))
	}
	// The channel still works.
	if st := g.sendFrame(0, frame(otherMAC, guestMAC, 10)); st != protocol.StatusSuccess || len(g.port.take()) != 1 {
		t.Error("the channel stopped working")
	}
	// What cannot be an NVSP message closes the channel.
	for name, payload := range map[string][]byte{
		"unknown type": binary.LittleEndian.AppendUint32(nil, 999),
		"short":        {1, 0},
		"host-only":    protocol.InitComplete{}.Append(nil),
	} {
		hdr, _ := proto.AppendInbandHeader(nil, 0, 1, len(payload))
		if err := g.packet(hdr, payload); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v, want ErrMalformed", name, err)
		}
	}
}

// sendFrameRaw sends RNDIS bytes in send section 0.
func (g *guest) sendFrameRaw(b []byte) protocol.Status {
	copy(g.ram.b[sendPFN*PageSize:], b)
	g.tid++
	if err := g.inband(protocol.SendRNDISPacket{SectionIndex: 0, SectionSize: uint32(len(b))}, g.tid); err != nil {
		g.t.Fatal(err)
	}
	return g.sendComplete(g.tid)
}

func TestNothingFlowsBeforeTheFilter(t *testing.T) {
	g := newGuest(t, Config{})
	g.connect()
	// Before RNDIS INITIALIZE: the guest's frames are dropped (and
	// completed), none are delivered.
	if st := g.sendFrame(0, frame(otherMAC, guestMAC, 10)); st != protocol.StatusSuccess {
		t.Fatal(st)
	}
	g.vsp.Deliver(frame(guestMAC, otherMAC, 10))
	if f := g.port.take(); len(f) != 0 {
		t.Error("a frame left before RNDIS was initialised")
	}
	if out := g.ch.take(); len(out) != 0 {
		t.Errorf("a frame arrived before RNDIS was initialised: %s", describe(out))
	}
	// HALT stops reception until the next INITIALIZE and filter.
	g.req++
	g.rndisCall(protocol.InitializeMsg{RequestID: g.req, Major: 1})
	g.set(protocol.OIDGenCurrentPacketFilter, u32(protocol.LinuxOpenFilter))
	if st := g.gpaDirect(protocol.ChannelControl, protocol.HaltMsg{RequestID: 99}.Append(nil), ctrlPFN); st != protocol.StatusSuccess {
		t.Fatal(st)
	}
	g.vsp.Deliver(frame(guestMAC, otherMAC, 10))
	if out := g.ch.take(); len(out) != 0 {
		t.Errorf("the VSP answered HALT or delivered after it: %s", describe(out))
	}
}

func TestRevokeAndClose(t *testing.T) {
	g := newGuest(t, Config{})
	g.up()
	for _, m := range []protocol.Message{protocol.RevokeRecvBuf{ID: protocol.ReceiveBufferID}, protocol.RevokeSendBuf{}} {
		if err := g.inband(m, 0); err != nil {
			t.Fatal(err)
		}
	}
	if r := g.ch.returned; len(r) != 2 || r[0] != recvGPADL || r[1] != sendGPADL {
		t.Fatalf("returned %v", r)
	}
	g.vsp.Deliver(frame(guestMAC, otherMAC, 10))
	if out := g.ch.take(); len(out) != 0 {
		t.Errorf("a frame after the receive buffer was revoked: %s", describe(out))
	}
	g.vsp.Close(nil)
	if g.vsp.State() != StateClosed {
		t.Error(g.vsp.State())
	}
	if err := g.inband(protocol.SendNDISVersion{}, 0); !errors.Is(err, ErrClosed) {
		t.Errorf("after Close: %v", err)
	}
}

func TestDeliverDoesNotAllocate(t *testing.T) {
	g := newGuest(t, Config{})
	g.up()
	// From here the channel only notes the transaction ID it was sent:
	// whatever allocates is the VSP's.
	q := &quietChannel{Channel: g.ch}
	g.vsp.ch = q
	f := frame(guestMAC, otherMAC, 1400)
	payload := protocol.SendRNDISPacketComplete{Status: protocol.StatusSuccess}.Append(nil)[:8]
	done := proto.Packet{Type: proto.PktComp, Payload: payload}
	allocs := testing.AllocsPerRun(100, func() {
		g.vsp.Deliver(f)
		done.TransactionID = q.tid
		if err := g.vsp.Packet(&done); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("%v allocations per received frame", allocs)
	}
	if s := g.vsp.Stats(); s.RxFrames < 100 || s.RxDropped != 0 || s.RxBadCompletions != 0 {
		t.Errorf("stats %+v", s)
	}
}

// quietChannel records the transaction ID of the last packet sent.
type quietChannel struct {
	Channel
	tid         uint64
	completions int
}

func (q *quietChannel) SendCompletion(tid uint64, payload []byte) error {
	q.completions++
	return nil
}

func (q *quietChannel) SendPacket(header, payload []byte) error {
	q.tid = binary.LittleEndian.Uint64(header[8:])
	return nil
}

func TestSendDoesNotAllocate(t *testing.T) {
	g := newGuest(t, Config{})
	g.up()
	q := &quietChannel{Channel: g.ch}
	g.vsp.ch = q
	var port countingPort
	g.vsp.cfg.Port = &port
	f := frame(otherMAC, guestMAC, 1400)
	copy(g.ram.b[sendPFN*PageSize:], protocol.PacketMsg{Data: f}.Append(nil))
	payload := protocol.SendRNDISPacket{SectionIndex: 0, SectionSize: uint32(protocol.PacketMsgSize + len(f))}.Append(nil)
	hdr, _ := proto.AppendInbandHeader(nil, proto.PacketFlagCompletionRequested, 7, len(payload))
	raw := append(hdr, payload...)
	p, err := proto.ParsePacket(raw)
	if err != nil {
		t.Fatal(err)
	}
	allocs := testing.AllocsPerRun(100, func() {
		if err := g.vsp.Packet(&p); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("%v allocations per sent frame", allocs)
	}
	if port.n < 100 || q.completions < 100 {
		t.Errorf("%d frames reached the switch, %d completions", port.n, q.completions)
	}
}

type countingPort struct{ n int }

func (c *countingPort) Send([]byte) bool { c.n++; return true }
