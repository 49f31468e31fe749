package netvsp

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"testing"

	"gohv/root/netvsp/protocol"
	"gohv/vmbus/proto"
)

// This file: a scripted guest for the VSP — its RAM, GPADLs and channel —
// that speaks NVSP and RNDIS as Linux 6.1's hv_netvsc does.

const (
	ramPages  = 512
	recvGPADL = 2
	sendGPADL = 3
	recvPages = 64 // a small receive buffer: 144 sections of 1810 bytes
	sendPages = 16
	recvPFN   = 100 // where the buffers live in the fake RAM
	sendPFN   = 200
	ctrlPFN   = 300 // where the guest writes its RNDIS control messages
	framePFN  = 310 // and frames it sends by GPA range
)

var (
	guestMAC = [6]byte{0x00, 0x15, 0x5d, 0x00, 0x00, 0x10}
	otherMAC = [6]byte{0x00, 0x15, 0x5d, 0x00, 0x00, 0x11}
)

// fakeRAM is the partition's RAM: ramPages pages from GPA 0.
type fakeRAM struct{ b []byte }

var errNotRAM = errors.New("fake: not RAM")

func (m *fakeRAM) ReadRAM(gpa uint64, b []byte) error {
	if gpa >= uint64(len(m.b)) || uint64(len(b)) > uint64(len(m.b))-gpa {
		return errNotRAM
	}
	copy(b, m.b[gpa:])
	return nil
}

func (m *fakeRAM) page(pfn int) *[PageSize]byte { return (*[PageSize]byte)(m.b[pfn*PageSize:]) }

// sent is one packet the VSP sent the guest.
type sent struct {
	pkt proto.Packet
	raw []byte
}

// fakeChannel is the VMBus channel: it lends the GPADLs in gpadls and
// records what the VSP sends.
type fakeChannel struct {
	ram *fakeRAM

	mu       sync.Mutex
	gpadls   map[uint32][2]int // handle → first PFN, pages
	lent     map[uint32]bool
	out      []sent
	closed   bool
	returned []uint32
}

func (c *fakeChannel) SendCompletion(tid uint64, payload []byte) error {
	hdr, err := proto.AppendCompletionHeader(nil, tid, len(payload))
	if err != nil {
		return err
	}
	return c.SendPacket(hdr, payload)
}

func (c *fakeChannel) SendPacket(header, payload []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return errors.New("fake: closed")
	}
	raw := append(append([]byte(nil), header...), payload...)
	for len(raw)%8 != 0 {
		raw = append(raw, 0)
	}
	p, err := proto.ParsePacket(raw)
	if err != nil {
		return fmt.Errorf("fake: the VSP sent a packet that does not parse: %w", err)
	}
	c.out = append(c.out, sent{p, raw})
	return nil
}

func (c *fakeChannel) BorrowGPADL(handle uint32) ([]*[PageSize]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	g, ok := c.gpadls[handle]
	if !ok || c.lent[handle] {
		return nil, fmt.Errorf("fake: gpadl %d cannot be lent", handle)
	}
	c.lent[handle] = true
	pages := make([]*[PageSize]byte, g[1])
	for i := range pages {
		pages[i] = c.ram.page(g[0] + i)
	}
	return pages, nil
}

func (c *fakeChannel) ReturnGPADL(handle uint32) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.lent, handle)
	c.returned = append(c.returned, handle)
}

// take returns and forgets what the VSP sent so far.
func (c *fakeChannel) take() []sent {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.out
	c.out = nil
	return out
}

// fakePort is the switch side: it records the guest's frames.
type fakePort struct {
	mu     sync.Mutex
	frames [][]byte
	refuse bool
}

func (p *fakePort) Send(frame []byte) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.refuse {
		return false
	}
	p.frames = append(p.frames, append([]byte(nil), frame...))
	return true
}

func (p *fakePort) take() [][]byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	f := p.frames
	p.frames = nil
	return f
}

// guest is the scripted hv_netvsc.
type guest struct {
	t    testing.TB
	ram  *fakeRAM
	ch   *fakeChannel
	port *fakePort
	vsp  *VSP
	tid  uint64
	req  uint32
}

func newGuest(t testing.TB, cfg Config) *guest {
	ram := &fakeRAM{b: make([]byte, ramPages*PageSize)}
	g := &guest{
		t: t, ram: ram, port: &fakePort{},
		ch: &fakeChannel{ram: ram, lent: map[uint32]bool{}, gpadls: map[uint32][2]int{
			recvGPADL: {recvPFN, recvPages},
			sendGPADL: {sendPFN, sendPages},
		}},
	}
	if cfg.MAC == [6]byte{} {
		cfg.MAC = guestMAC
	}
	cfg.Port = g.port
	v, err := New(g.ch, ram, cfg)
	if err != nil {
		t.Fatal(err)
	}
	g.vsp = v
	return g
}

// packet hands the VSP a packet built from header and payload, as the
// channel's reader would.
func (g *guest) packet(header, payload []byte) error {
	raw := append(append([]byte(nil), header...), payload...)
	for len(raw)%8 != 0 {
		raw = append(raw, 0)
	}
	p, err := proto.ParsePacket(raw)
	if err != nil {
		g.t.Fatalf("test packet does not parse: %v", err)
	}
	return g.vsp.Packet(&p)
}

// inband sends an NVSP message in-band; completion requested when tid is
// not 0.
func (g *guest) inband(m protocol.Message, tid uint64) error {
	var flags uint16
	if tid != 0 {
		flags = proto.PacketFlagCompletionRequested
	}
	payload := m.Append(nil)
	hdr, err := proto.AppendInbandHeader(nil, flags, tid, len(payload))
	if err != nil {
		g.t.Fatal(err)
	}
	return g.packet(hdr, payload)
}

// call sends an NVSP request that wants a completion and returns the
// completion's message.
func (g *guest) call(m protocol.Message) protocol.Message {
	g.t.Helper()
	g.tid++
	if err := g.inband(m, g.tid); err != nil {
		g.t.Fatalf("%v: %v", m.Type(), err)
	}
	return g.completion(g.tid)
}

// completion expects exactly one packet: the completion of tid.
func (g *guest) completion(tid uint64) protocol.Message {
	g.t.Helper()
	out := g.ch.take()
	if len(out) != 1 || out[0].pkt.Type != proto.PktComp || out[0].pkt.TransactionID != tid {
		g.t.Fatalf("want one completion of transaction %d, the VSP sent %s", tid, describe(out))
	}
	if len(out[0].pkt.Payload) < protocol.MessageSize {
		g.t.Fatalf("a %d-byte completion; Linux needs the whole 40-byte message", len(out[0].pkt.Payload))
	}
	m, err := protocol.ParseFromHost(out[0].pkt.Payload)
	if err != nil {
		g.t.Fatal(err)
	}
	return m
}

func describe(out []sent) string {
	var b bytes.Buffer
	fmt.Fprintf(&b, "%d packets", len(out))
	for _, s := range out {
		fmt.Fprintf(&b, " [%v tid %d, %d bytes]", s.pkt.Type, s.pkt.TransactionID, len(s.pkt.Payload))
	}
	return b.String()
}

// connect runs Linux 6.1's NVSP initialisation up to the buffers.
func (g *guest) connect() {
	g.t.Helper()
	for _, v := range protocol.LinuxVersions {
		c := g.call(protocol.Init{MinVersion: v, MaxVersion: v}).(protocol.InitComplete)
		if c.Status == protocol.StatusSuccess {
			break
		}
	}
	if g.vsp.Version() != protocol.Version61 {
		g.t.Fatalf("version %v, want 6.1", g.vsp.Version())
	}
	for _, m := range []protocol.Message{
		protocol.SendNDISConfig{MTU: 1514, Capabilities: protocol.CapIEEE8021Q | protocol.CapSRIOV | protocol.CapTeaming | protocol.CapRSC},
		protocol.SendNDISVersion{Major: 6, Minor: 30},
	} {
		if err := g.inband(m, 0); err != nil {
			g.t.Fatal(err)
		}
	}
	if out := g.ch.take(); len(out) != 0 {
		g.t.Fatalf("NDIS_CONFIG and NDIS_VER were answered: %s", describe(out))
	}
	rc := g.call(protocol.SendRecvBuf{GPADL: recvGPADL, ID: protocol.ReceiveBufferID}).(protocol.SendRecvBufComplete)
	if rc.Status != protocol.StatusSuccess || rc.NumSections != 1 || rc.Section.Offset != 0 || rc.Section.SubAllocSize < 68 ||
		uint64(rc.Section.SubAllocSize)*uint64(rc.Section.NumSubAllocs) > recvPages*PageSize {
		g.t.Fatalf("SEND_RECV_BUF_COMPLETE %+v", rc)
	}
	sc := g.call(protocol.SendSendBuf{GPADL: sendGPADL, ID: protocol.SendBufferID}).(protocol.SendSendBufComplete)
	if sc.Status != protocol.StatusSuccess || sc.SectionSize != SendSectionSize {
		g.t.Fatalf("SEND_SEND_BUF_COMPLETE %+v", sc)
	}
}

// gpaDirect sends SEND_RNDIS_PKT with the RNDIS bytes msg in the guest's
// RAM at pfn, as Linux sends control messages, and returns the
// completion's status.
func (g *guest) gpaDirect(channelType uint32, msg []byte, pfn int) protocol.Status {
	g.t.Helper()
	copy(g.ram.b[pfn*PageSize:], msg)
	arr, err := proto.AppendGPARange(nil, uint32(len(msg)), 0, []uint64{uint64(pfn)})
	if err != nil {
		g.t.Fatal(err)
	}
	return g.gpaDirectRanges(channelType, arr, 1)
}

func (g *guest) gpaDirectRanges(channelType uint32, arr []byte, n int) protocol.Status {
	g.t.Helper()
	ranges, err := proto.ParseGPARanges(arr, n)
	if err != nil {
		g.t.Fatal(err)
	}
	payload := protocol.SendRNDISPacket{ChannelType: channelType, SectionIndex: protocol.NoSection}.Append(nil)
	g.tid++
	hdr, err := proto.AppendGPADirectHeader(nil, proto.PacketFlagCompletionRequested, g.tid, ranges, len(payload))
	if err != nil {
		g.t.Fatal(err)
	}
	if err := g.packet(hdr, payload); err != nil {
		g.t.Fatal(err)
	}
	return g.sendComplete(g.tid)
}

// sendComplete finds the completion of SEND_RNDIS_PKT tid among what the
// VSP sent (control replies may come first) and keeps the rest.
func (g *guest) sendComplete(tid uint64) protocol.Status {
	g.t.Helper()
	out := g.ch.take()
	var rest []sent
	st := protocol.Status(0xFFFF)
	for _, s := range out {
		if s.pkt.Type == proto.PktComp && s.pkt.TransactionID == tid {
			m, err := protocol.ParseFromHost(s.pkt.Payload)
			if err != nil {
				g.t.Fatal(err)
			}
			st = m.(protocol.SendRNDISPacketComplete).Status
			continue
		}
		rest = append(rest, s)
	}
	if st == 0xFFFF {
		g.t.Fatalf("no completion of SEND_RNDIS_PKT %d: %s", tid, describe(out))
	}
	g.ch.mu.Lock()
	g.ch.out = append(rest, g.ch.out...)
	g.ch.mu.Unlock()
	return st
}

// receive reads every transfer-page packet the VSP sent: each range's
// RNDIS message, parsed from the receive buffer, with the packet's
// transaction ID. complete sends the guest's completions.
func (g *guest) receive(complete bool) (msgs []protocol.RNDISMessage, tids []uint64) {
	g.t.Helper()
	for _, s := range g.ch.take() {
		p := s.pkt
		if p.Type != proto.PktDataUsingXferPages {
			g.t.Fatalf("unexpected %v packet", p.Type)
		}
		if p.TransferPageSetID != protocol.ReceiveBufferID || !p.CompletionRequested() {
			g.t.Fatalf("transfer-page packet of set %#x, flags %#x", p.TransferPageSetID, p.Flags)
		}
		m, err := protocol.ParseFromHost(p.Payload)
		if err != nil {
			g.t.Fatal(err)
		}
		if rp, ok := m.(protocol.SendRNDISPacket); !ok || rp.SectionIndex != protocol.NoSection {
			g.t.Fatalf("transfer-page payload %#v", m)
		}
		for i := range p.TransferPages.Len() {
			r := p.TransferPages.At(i)
			if int(r.ByteOffset)+int(r.ByteCount) > recvPages*PageSize {
				g.t.Fatalf("range %+v beyond the receive buffer", r)
			}
			b := g.ram.b[recvPFN*PageSize+int(r.ByteOffset):][:r.ByteCount]
			msg, n, err := protocol.ParseRNDIS(b)
			if err != nil || n != int(r.ByteCount) {
				g.t.Fatalf("range %+v: %d bytes parsed: %v", r, n, err)
			}
			msgs = append(msgs, msg)
		}
		tids = append(tids, p.TransactionID)
		if complete {
			g.completeRx(p.TransactionID)
		}
	}
	return msgs, tids
}

// completeRx is the guest's completion of a receive packet.
func (g *guest) completeRx(tid uint64) {
	g.t.Helper()
	payload := protocol.SendRNDISPacketComplete{Status: protocol.StatusSuccess}.Append(nil)[:8]
	hdr, err := proto.AppendCompletionHeader(nil, tid, len(payload))
	if err != nil {
		g.t.Fatal(err)
	}
	if err := g.packet(hdr, payload); err != nil {
		g.t.Fatal(err)
	}
}

// rndisCall sends an RNDIS control request and returns its reply.
func (g *guest) rndisCall(m protocol.RNDISMessage) protocol.RNDISMessage {
	g.t.Helper()
	if st := g.gpaDirect(protocol.ChannelControl, m.Append(nil), ctrlPFN); st != protocol.StatusSuccess {
		g.t.Fatalf("%v: completion status %v", m.RNDISType(), st)
	}
	msgs, _ := g.receive(true)
	if len(msgs) != 1 {
		g.t.Fatalf("%v: %d replies", m.RNDISType(), len(msgs))
	}
	return msgs[0]
}

func (g *guest) query(oid protocol.OID, info []byte) protocol.QueryCmplt {
	g.t.Helper()
	g.req++
	c, ok := g.rndisCall(protocol.QueryMsg{RequestID: g.req, OID: oid, Info: info}).(protocol.QueryCmplt)
	if !ok || c.RequestID != g.req {
		g.t.Fatalf("query %v: reply %#v", oid, c)
	}
	return c
}

func (g *guest) set(oid protocol.OID, info []byte) protocol.RNDISStatus {
	g.t.Helper()
	g.req++
	c, ok := g.rndisCall(protocol.SetMsg{RequestID: g.req, OID: oid, Info: info}).(protocol.SetCmplt)
	if !ok || c.RequestID != g.req {
		g.t.Fatalf("set %v: reply %#v", oid, c)
	}
	return c.Status
}

// up runs the whole of Linux's probe and `ip link set up`.
func (g *guest) up() {
	g.t.Helper()
	g.connect()
	g.req++
	ic, ok := g.rndisCall(protocol.InitializeMsg{RequestID: g.req, Major: 1, MaxTransferSize: protocol.LinuxMaxTransferSize}).(protocol.InitializeCmplt)
	if !ok || ic.Status != protocol.RNDISStatusSuccess || ic.MaxPacketsPerMessage == 0 || ic.Medium != protocol.RNDISMedium802_3 {
		g.t.Fatalf("INITIALIZE_CMPLT %#v", ic)
	}
	if st := g.set(protocol.OIDGenCurrentPacketFilter, u32(protocol.LinuxOpenFilter)); st != protocol.RNDISStatusSuccess {
		g.t.Fatalf("packet filter: %v", st)
	}
}

// sendFrame sends frame in send section sec, in-band, as Linux sends a
// small frame, and returns the completion's status.
func (g *guest) sendFrame(sec uint32, frames ...[]byte) protocol.Status {
	g.t.Helper()
	var b []byte
	for _, f := range frames {
		start := len(b)
		b = protocol.PacketMsg{Data: f}.Append(b)
		for len(b)%8 != 0 { // Linux pads a batched message by its msg_len
			b = append(b, 0)
		}
		binary.LittleEndian.PutUint32(b[start+4:], uint32(len(b)-start))
	}
	copy(g.ram.b[sendPFN*PageSize+int(sec)*SendSectionSize:], b)
	g.tid++
	if err := g.inband(protocol.SendRNDISPacket{ChannelType: protocol.ChannelData, SectionIndex: sec, SectionSize: uint32(len(b))}, g.tid); err != nil {
		g.t.Fatal(err)
	}
	return g.sendComplete(g.tid)
}

func u32(x uint32) []byte { return binary.LittleEndian.AppendUint32(nil, x) }

// frame is an Ethernet frame from src to dst with n bytes of payload.
func frame(dst, src [6]byte, n int) []byte {
	f := append(append(dst[:], src[:]...), 0x08, 0x00)
	for i := range n {
		f = append(f, byte(i*7))
	}
	return f
}
