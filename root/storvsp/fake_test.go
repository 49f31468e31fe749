package storvsp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"testing"

	"gohv/root/storvsp/protocol"
	"gohv/root/storvsp/scsi"
)

// fakeRAM is a partition's RAM: size bytes from GPA base, nothing else.
type fakeRAM struct {
	base uint64
	mem  []byte
}

var errNotRAM = errors.New("not RAM")

func newRAM(base uint64, size int) *fakeRAM { return &fakeRAM{base: base, mem: make([]byte, size)} }

func (m *fakeRAM) slice(gpa uint64, n int) ([]byte, error) {
	if gpa < m.base || gpa-m.base > uint64(len(m.mem)) || uint64(n) > uint64(len(m.mem))-(gpa-m.base) {
		return nil, fmt.Errorf("gpa %#x+%d: %w", gpa, n, errNotRAM)
	}
	if gpa/PageSize != (gpa+uint64(n)-1)/PageSize && n > 0 {
		return nil, fmt.Errorf("gpa %#x+%d crosses a page", gpa, n)
	}
	return m.mem[gpa-m.base : gpa-m.base+uint64(n)], nil
}

func (m *fakeRAM) ReadRAM(gpa uint64, b []byte) error {
	s, err := m.slice(gpa, len(b))
	if err == nil {
		copy(b, s)
	}
	return err
}

func (m *fakeRAM) WriteRAM(gpa uint64, b []byte) error {
	s, err := m.slice(gpa, len(b))
	if err == nil {
		copy(s, b)
	}
	return err
}

// sent is one completion the VSP sent.
type sent struct {
	packet []byte
	id     uint64
}

// fakeChannel records completions; fail makes Send fail.
type fakeChannel struct {
	mu   sync.Mutex
	sent []sent
	fail error
}

func (c *fakeChannel) Send(packet []byte, id uint64) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.fail != nil {
		return c.fail
	}
	c.sent = append(c.sent, sent{append([]byte(nil), packet...), id})
	return nil
}

func (c *fakeChannel) take() []sent {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.sent
	c.sent = nil
	return s
}

// Linux 6.1's storvsc constants (§5.3, §6.3).
const (
	rqstInit   = 0xFFFF_FFFF_FFFF_FFFD // VMBUS_RQST_INIT
	rqstReset  = 0xFFFF_FFFF_FFFF_FFFC // VMBUS_RQST_RESET
	ramBase    = 0x10_0000
	ramSize    = 8 << 20
	bufferArea = 1 << 20 // guest buffers are carved from here on
)

// linux plays Linux 6.1's hv_storvsc against a VSP: it builds packets as
// storvsc_drv.c does and checks every completion's form.
type linux struct {
	t    testing.TB
	vsp  *VSP
	ch   *fakeChannel
	ram  *fakeRAM
	tag  uint64
	next uint64 // next free guest buffer offset in ram
}

func newLinux(t testing.TB, cfg Config) *linux {
	t.Helper()
	ch := &fakeChannel{}
	v, err := New(ch, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &linux{t: t, vsp: v, ch: ch, ram: newRAM(ramBase, ramSize), next: bufferArea}
}

// request sends one packet and returns its single completion.
func (g *linux) request(payload []byte, id uint64, data GuestBuffers) protocol.Packet {
	g.t.Helper()
	if err := g.vsp.HandlePacket(Packet{TransactionID: id, Payload: payload, Data: data}); err != nil {
		g.t.Fatalf("HandlePacket: %v", err)
	}
	s := g.ch.take()
	if len(s) != 1 {
		g.t.Fatalf("%d completions for one request", len(s))
	}
	if len(s[0].packet) != protocol.PacketSize {
		g.t.Fatalf("completion of %d bytes (trap 7: exactly 64)", len(s[0].packet))
	}
	if s[0].id != id {
		g.t.Fatalf("completion for transaction %#x, sent %#x", s[0].id, id)
	}
	c, err := protocol.ParsePacket(s[0].packet)
	if err != nil {
		g.t.Fatal(err)
	}
	if c.Operation != protocol.OpCompleteIO || c.Flags != 0 {
		g.t.Fatalf("completion operation %v flags %#x", c.Operation, c.Flags)
	}
	return c
}

// vstor builds a 64-byte request as storvsc_execute_vstor_op does.
func vstor(op protocol.Operation, set func(*protocol.Packet)) []byte {
	p := protocol.Packet{Operation: op, Flags: protocol.FlagRequestCompletion}
	if set != nil {
		set(&p)
	} else {
		p.UnionLen = protocol.UnionSize
	}
	b := p.Marshal()
	return b[:]
}

// init walks storvsc_channel_init (§6.3) and checks each answer.
func (g *linux) init() {
	g.t.Helper()
	if c := g.request(vstor(protocol.OpBeginInitialization, nil), rqstInit, nil); c.Status != 0 {
		g.t.Fatalf("BEGIN_INITIALIZATION: %v", c.Status)
	}
	var got protocol.Version
	for _, v := range protocol.LinuxVersions {
		c := g.request(vstor(protocol.OpQueryProtocolVersion, func(p *protocol.Packet) {
			p.SetProtocolVersion(protocol.ProtocolVersion{MajorMinor: v})
		}), rqstInit, nil)
		if c.Status == 0 {
			got = v
			break
		}
	}
	if got == 0 {
		g.t.Fatal("Obsolete Hyper-V version: every version refused")
	}
	c := g.request(vstor(protocol.OpQueryProperties, nil), rqstInit, nil)
	props, err := c.ChannelProperties()
	if c.Status != 0 || err != nil || props.MaxTransferBytes == 0 {
		g.t.Fatalf("QUERY_PROPERTIES: %v %+v %v", c.Status, props, err)
	}
	if c := g.request(vstor(protocol.OpEndInitialization, nil), rqstInit, nil); c.Status != 0 {
		g.t.Fatalf("END_INITIALIZATION: %v", c.Status)
	}
}

// buffer places n bytes in guest RAM at the given page offset and
// returns the range as Linux sends it: for at most 32 pages, a 32-slot
// PFN array whose unused slots hold stale PFNs outside RAM (trap 9).
func (g *linux) buffer(n int, offset uint32) (PageRange, []byte) {
	g.t.Helper()
	start := g.next + uint64(offset)
	pages := int((uint64(offset) + uint64(n) + PageSize - 1) / PageSize)
	g.next += uint64(pages+1) * PageSize
	if g.next > ramSize {
		g.next = bufferArea
		start = g.next + uint64(offset)
		g.next += uint64(pages+1) * PageSize
	}
	r := PageRange{ByteCount: uint32(n), ByteOffset: offset}
	first := (ramBase + start - uint64(offset)) / PageSize
	slots := max(pages, 32)
	for i := range slots {
		if i < pages {
			r.PFNs = append(r.PFNs, first+uint64(i))
		} else {
			r.PFNs = append(r.PFNs, 0xBAD00+uint64(i)) // stale: outside RAM
		}
	}
	return r, g.ram.mem[start : start+uint64(n)]
}

// srbResult is what storvsc_on_io_completion reads.
type srbResult struct {
	status protocol.NTStatus
	req    protocol.SCSIRequest
	data   []byte // the guest buffer (DataIn: what the VSP wrote)
}

// sense decodes the completion's sense when Linux would copy it.
func (r srbResult) sense() (scsi.Sense, bool) {
	if r.req.SCSIStatus != uint8(scsi.StatusCheckCondition) || r.req.SRBStatus&protocol.SRBStatusAutosenseValid == 0 {
		return scsi.Sense{}, false
	}
	s, err := scsi.ParseSense(r.req.CDBOrSense[:r.req.SenseInfoLength])
	return s, err == nil
}

// srb sends an EXECUTE_SRB as storvsc_queuecommand does: dir is
// protocol.DataIn/DataOut/DataUnspecified, n the buffer length, out the
// data-out bytes.
func (g *linux) srb(a Address, cdb []byte, dir uint8, n int, out []byte) srbResult {
	g.t.Helper()
	g.tag++
	req := protocol.SCSIRequest{
		Length: protocol.SCSIRequestSize, PortNumber: 2, PathID: a.Path, TargetID: a.Target, LUN: a.LUN,
		CDBLength: uint8(len(cdb)), SenseInfoLength: protocol.SenseBufferSize, DataIn: dir,
		QueueTag: 0xFF, QueueAction: 0x20, TimeOutValue: 60,
		SRBFlags: protocol.SRBFlagsDisableSynchTransfer | protocol.SRBFlagsQueueActionEnable | protocol.SRBFlagsNoQueueFreeze,
	}
	copy(req.CDBOrSense[:], cdb)
	var data GuestBuffers
	var mem []byte
	if dir != protocol.DataUnspecified && n > 0 {
		r, m := g.buffer(n, uint32(g.tag*0x208)%PageSize&^7)
		mem = m
		copy(mem, out)
		var err error
		if data, err = NewGPADirect(g.ram, []PageRange{r}); err != nil {
			g.t.Fatal(err)
		}
		req.DataTransferLength = uint32(n)
		if dir == protocol.DataIn {
			req.SRBFlags |= protocol.SRBFlagsDataIn
		} else {
			req.SRBFlags |= protocol.SRBFlagsDataOut
		}
	}
	c := g.request(vstor(protocol.OpExecuteSRB, func(p *protocol.Packet) { p.SetSCSIRequest(req) }), g.tag+1, data)
	got, err := c.SCSIRequest()
	if err != nil {
		g.t.Fatal(err)
	}
	if got.Length != protocol.SCSIRequestSize || got.PathID != a.Path || got.TargetID != a.Target || got.LUN != a.LUN {
		g.t.Fatalf("completion SRB %+v", got)
	}
	if got.SRBStatus.Code() != protocol.SRBStatusSuccess && got.DataTransferLength != 0 {
		g.t.Fatalf("failed SRB with data_transfer_length %d", got.DataTransferLength)
	}
	if got.DataTransferLength > req.DataTransferLength {
		g.t.Fatalf("transferred %d of %d", got.DataTransferLength, req.DataTransferLength)
	}
	return srbResult{status: c.Status, req: got, data: mem}
}

// Commands as Linux's midlayer and sd build them.
func inquiryCDB(evpd bool, page uint8, alloc uint16) []byte {
	var f byte
	if evpd {
		f = 1
	}
	return []byte{0x12, f, page, byte(alloc >> 8), byte(alloc), 0}
}

func reportLUNsCDB(alloc uint32) []byte {
	b := []byte{0xA0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}
	binary.BigEndian.PutUint32(b[6:], alloc)
	return b
}

func rw16(op byte, lba uint64, blocks uint32) []byte {
	b := make([]byte, 16)
	b[0] = op
	binary.BigEndian.PutUint64(b[2:], lba)
	binary.BigEndian.PutUint32(b[10:], blocks)
	return b
}

func rw10(op byte, lba uint32, blocks uint16) []byte {
	b := make([]byte, 10)
	b[0] = op
	binary.BigEndian.PutUint32(b[2:], lba)
	binary.BigEndian.PutUint16(b[7:], blocks)
	return b
}

func readCap16CDB() []byte {
	b := make([]byte, 16)
	b[0], b[1] = 0x9E, 0x10
	binary.BigEndian.PutUint32(b[10:], 32)
	return b
}

func modeSense6CDB(page, alloc uint8) []byte { return []byte{0x1A, 0, page, 0, alloc, 0} }
