package worker

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"testing"

	"gohv/root/storvsp"
	"gohv/root/storvsp/protocol"
	"gohv/root/storvsp/scsi"
	"gohv/vmbus/proto"
	"gohv/vmbus/server"
)

// lastCompletion keeps the storage channel's last completion without
// allocating.
type lastCompletion struct {
	n   int
	tid uint64
	pkt [protocol.PacketSize]byte
}

func (c *lastCompletion) SendCompletion(tid uint64, payload []byte) error {
	c.n++
	c.tid = tid
	copy(c.pkt[:], payload)
	return nil
}

// countingRAM is a partition's RAM that counts the guest's pages the
// channel reached.
type countingRAM struct {
	ram      []byte
	accesses int
}

func (m *countingRAM) span(gpa uint64, n int) ([]byte, error) {
	m.accesses++
	if gpa >= uint64(len(m.ram)) || uint64(n) > uint64(len(m.ram))-gpa || gpa%storvsp.PageSize+uint64(n) > storvsp.PageSize {
		return nil, fmt.Errorf("test: %d bytes at %#x: not the partition's RAM", n, gpa)
	}
	return m.ram[gpa : gpa+uint64(n)], nil
}

func (m *countingRAM) ReadRAM(gpa uint64, b []byte) error {
	s, err := m.span(gpa, len(b))
	copy(b, s)
	return err
}

func (m *countingRAM) WriteRAM(gpa uint64, b []byte) error {
	s, err := m.span(gpa, len(b))
	copy(s, b)
	return err
}

// gpaDirectPacket is a storvsc EXECUTE_SRB as the ring carries it: a
// GPA-direct packet of one range, byteCount bytes from byteOffset into
// pfns[0], parsed as the server parses it.
func gpaDirectPacket(t *testing.T, tid uint64, byteCount, byteOffset uint32, pfns []uint64, payload []byte) proto.Packet {
	t.Helper()
	arr, err := proto.AppendGPARange(nil, byteCount, byteOffset, pfns)
	if err != nil {
		t.Fatal(err)
	}
	ranges, err := proto.ParseGPARanges(arr, 1)
	if err != nil {
		t.Fatal(err)
	}
	b, err := proto.AppendGPADirectHeader(nil, proto.PacketFlagCompletionRequested, tid, ranges, len(payload))
	if err != nil {
		t.Fatal(err)
	}
	b = append(b, payload...)
	b = append(b, make([]byte, -len(b)&7)...)
	p, err := proto.ParsePacket(b)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func inbandPacket(tid uint64, payload []byte) proto.Packet {
	return proto.Packet{Type: proto.PktDataInband, Flags: proto.PacketFlagCompletionRequested, TransactionID: tid, Payload: payload}
}

func vstorPacket(op protocol.Operation, set func(*protocol.Packet)) []byte {
	p := protocol.Packet{Operation: op, Flags: protocol.FlagRequestCompletion, UnionLen: protocol.UnionSize}
	if set != nil {
		set(&p)
	}
	b := p.Marshal()
	return b[:]
}

func srbPacket(cdb []byte, dir uint8, n uint32) []byte {
	req := protocol.SCSIRequest{Length: protocol.SCSIRequestSize, CDBLength: uint8(len(cdb)), SenseInfoLength: 20,
		DataIn: dir, DataTransferLength: n}
	copy(req.CDBOrSense[:], cdb)
	return vstorPacket(protocol.OpExecuteSRB, func(p *protocol.Packet) { p.SetSCSIRequest(req) })
}

func write10(lba uint32, blocks uint16) []byte {
	b := make([]byte, 10)
	b[0] = 0x2A
	binary.BigEndian.PutUint32(b[2:], lba)
	binary.BigEndian.PutUint16(b[7:], blocks)
	return b
}

// TestStorageChannelBoundsThePFNCopy: a GPA-direct packet's PFNs reach
// the root only up to the max_transfer_bytes the VSP advertises. A range
// of exactly the maximum, from the last byte of its first page (the most
// pages such a range spans), is copied into the channel's PFN buffer
// without growing it and served. A longer one — one byte longer, or the
// ~8000 pages a 64 KiB packet can name, over PFNs outside the RAM — is
// refused as the VSP refuses it (ILLEGAL REQUEST / INVALID FIELD IN CDB,
// the channel left open) without a PFN copied, a guest page reached, the
// buffer grown, or more allocation than a command without data; a range
// claiming more PFNs than its packet holds never gets past the parser.
func TestStorageChannelBoundsThePFNCopy(t *testing.T) {
	const ramPages = 256
	mem := &countingRAM{ram: make([]byte, ramPages*storvsp.PageSize)}
	disk, err := scsi.NewRAMDisk(make([]byte, 1<<20), 512, false)
	if err != nil {
		t.Fatal(err)
	}
	lu, err := scsi.NewLogicalUnit(disk, scsi.Options{})
	if err != nil {
		t.Fatal(err)
	}
	dev := &storageDevice{luns: map[storvsp.Address]*scsi.LogicalUnit{{}: lu}, mem: mem, maxXfer: storvsp.DefaultMaxTransferBytes}
	out := &lastCompletion{}
	ch, err := dev.newChannel(out)
	if err != nil {
		t.Fatal(err)
	}
	maxXfer := uint32(storvsp.DefaultMaxTransferBytes)
	maxPages := int(maxXfer/storvsp.PageSize) + 1
	if cap(ch.pfns) != maxPages {
		t.Fatalf("PFN buffer of %d, want %d", cap(ch.pfns), maxPages)
	}
	buffer := &ch.pfns[:1][0]

	tid := uint64(0)
	send := func(p proto.Packet) protocol.Packet {
		t.Helper()
		tid++
		p.TransactionID = tid
		if err := ch.Packet(&p); err != nil {
			t.Fatalf("transaction %d: %v", tid, err)
		}
		if out.n != int(tid) || out.tid != tid {
			t.Fatalf("transaction %d: %d completions, the last for %d", tid, out.n, out.tid)
		}
		c, err := protocol.ParsePacket(out.pkt[:])
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	for _, op := range []protocol.Operation{protocol.OpBeginInitialization, protocol.OpQueryProtocolVersion,
		protocol.OpQueryProperties, protocol.OpEndInitialization} {
		c := send(inbandPacket(0, vstorPacket(op, func(p *protocol.Packet) {
			if op == protocol.OpQueryProtocolVersion {
				p.SetProtocolVersion(protocol.ProtocolVersion{MajorMinor: protocol.VersionWin8_1})
			}
		})))
		if c.Status != protocol.StatusSuccess {
			t.Fatalf("%v: status %v", op, c.Status)
		}
		if props, _ := c.ChannelProperties(); op == protocol.OpQueryProperties && props.MaxTransferBytes != maxXfer {
			t.Fatalf("max_transfer_bytes %d, want %d", props.MaxTransferBytes, maxXfer)
		}
	}
	srb := func(c protocol.Packet) protocol.SCSIRequest {
		t.Helper()
		r, err := c.SCSIRequest()
		if err != nil {
			t.Fatal(err)
		}
		return r
	}

	// Exactly the maximum, from the last byte of its first page: 65 pages.
	pfns := make([]uint64, maxPages)
	for i := range pfns {
		pfns[i] = uint64(16 + i)
	}
	want := bytes.Repeat([]byte("max transfer...\n"), int(maxXfer)/16)
	copy(mem.ram[16*storvsp.PageSize+storvsp.PageSize-1:], want)
	c := send(gpaDirectPacket(t, 0, maxXfer, storvsp.PageSize-1, pfns, srbPacket(write10(0, uint16(maxXfer/512)), protocol.DataOut, maxXfer)))
	if r := srb(c); r.SRBStatus != protocol.SRBStatusSuccess || r.DataTransferLength != maxXfer || !bytes.Equal(disk.Bytes()[:maxXfer], want) {
		t.Fatalf("a transfer of the maximum: %v, %+v", c.Status, r)
	}
	if len(ch.pfns) != maxPages || cap(ch.pfns) != maxPages || &ch.pfns[0] != buffer {
		t.Fatalf("after the maximum the PFN buffer holds %d of %d, moved %v", len(ch.pfns), cap(ch.pfns), &ch.pfns[0] != buffer)
	}

	// Longer than the maximum: refused, nothing of it reached.
	before := bytes.Clone(disk.Bytes())
	huge := (server.MaxInboundPacket - 200) / 8 // PFNs: the descriptor, range header and SRB take the rest
	for _, r := range []struct {
		name          string
		count, offset uint32
	}{
		{"one byte over", maxXfer + 1, 0},
		{"one byte over, from the last byte of a page", maxXfer + 1, storvsp.PageSize - 1},
		{"what a 64 KiB packet can name", uint32(huge) * storvsp.PageSize, 0},
	} {
		far := make([]uint64, proto.GPARangePages(r.offset, r.count))
		for i := range far {
			far[i] = 1<<40 + uint64(i) // outside the RAM: any access fails
		}
		p := gpaDirectPacket(t, 0, r.count, r.offset, far, srbPacket(write10(0, 1), protocol.DataOut, 512))
		mem.accesses = 0
		c := send(p)
		rq := srb(c)
		sense := rq.CDBOrSense
		if rq.SRBStatus != protocol.SRBStatusInvalidRequest|protocol.SRBStatusAutosenseValid || sense[2]&0xF != 0x5 || sense[12] != 0x24 {
			t.Fatalf("%s: %v, %+v", r.name, c.Status, rq)
		}
		if mem.accesses != 0 || !bytes.Equal(disk.Bytes(), before) {
			t.Fatalf("%s: %d guest accesses, disk changed %v", r.name, mem.accesses, !bytes.Equal(disk.Bytes(), before))
		}
		if cap(ch.pfns) != maxPages || &ch.pfns[:1][0] != buffer {
			t.Fatalf("%s: the PFN buffer grew to %d or moved", r.name, cap(ch.pfns))
		}
		if pfn := ch.pfns[:1][0]; pfn >= 1<<40 {
			t.Fatalf("%s: PFN %#x copied", r.name, pfn)
		}

		tur := inbandPacket(0, srbPacket([]byte{0, 0, 0, 0, 0, 0}, protocol.DataUnspecified, 0))
		base := testing.AllocsPerRun(50, func() { tid++; tur.TransactionID = tid; ch.Packet(&tur) })
		got := testing.AllocsPerRun(50, func() { tid++; p.TransactionID = tid; ch.Packet(&p) })
		if got > base {
			t.Errorf("%s: the refusal allocates %.0f times, TEST UNIT READY %.0f", r.name, got, base)
		}
	}

	// A range claiming more PFNs than its packet carries does not parse:
	// the server closes the channel before the storage channel sees it.
	p := gpaDirectPacket(t, 1, storvsp.PageSize, 0, []uint64{16}, srbPacket(write10(0, 1), protocol.DataOut, 512))
	wire := make([]byte, 0, 128)
	wire, _ = proto.AppendGPADirectHeader(wire, proto.PacketFlagCompletionRequested, 1, p.Ranges, len(p.Payload))
	binary.LittleEndian.PutUint32(wire[24:], 64*storvsp.PageSize) // byte_count: 64 pages, one PFN follows
	wire = append(wire, p.Payload...)
	if _, err := proto.ParsePacket(wire); !errors.Is(err, proto.ErrPacket) {
		t.Fatalf("a range past its packet: %v", err)
	}

	// The channel still serves.
	if c := send(inbandPacket(0, srbPacket([]byte{0, 0, 0, 0, 0, 0}, protocol.DataUnspecified, 0))); srb(c).SRBStatus != protocol.SRBStatusSuccess {
		t.Fatalf("TEST UNIT READY after the refusals: %+v", srb(c))
	}
}
