package storvsp

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"gohv/root/storvsp/protocol"
	"gohv/root/storvsp/scsi"
)

// A fuzz script is a run of packets, each encoded as
//
//	byte 0      bits 6:0 payload length (0..127); bit 7: a GPA-direct range follows
//	[range]     u16 byte_count, u16 byte_offset (mod 4096), u8: bit 0 puts
//	            the range's second page outside the partition's RAM, bit 1
//	            its last page
//	payload     the vstor_packet bytes
type fuzzPacket struct {
	payload     []byte
	data        bool
	count       uint16
	offset      uint16
	outside     bool
	lastOutside bool
}

func encodeScript(ps ...fuzzPacket) []byte {
	var b []byte
	for _, p := range ps {
		h := byte(len(p.payload)) & 0x7F
		if p.data {
			h |= 0x80
		}
		b = append(b, h)
		if p.data {
			b = binary.LittleEndian.AppendUint16(b, p.count)
			b = binary.LittleEndian.AppendUint16(b, p.offset)
			var o byte
			if p.outside {
				o |= 1
			}
			if p.lastOutside {
				o |= 2
			}
			b = append(b, o)
		}
		b = append(b, p.payload[:min(len(p.payload), 127)]...)
	}
	return b
}

func decodeScript(b []byte) []fuzzPacket {
	var ps []fuzzPacket
	for len(b) > 0 {
		var p fuzzPacket
		h := b[0]
		b = b[1:]
		if h&0x80 != 0 {
			if len(b) < 5 {
				break
			}
			p.data = true
			p.count = binary.LittleEndian.Uint16(b)
			p.offset = binary.LittleEndian.Uint16(b[2:]) % PageSize
			p.outside = b[4]&1 != 0
			p.lastOutside = b[4]&2 != 0
			b = b[5:]
		}
		n := min(int(h&0x7F), len(b))
		p.payload, b = b[:n], b[n:]
		ps = append(ps, p)
	}
	return ps
}

func srbPacket(a Address, cdb []byte, dir uint8, n uint32) []byte {
	req := protocol.SCSIRequest{Length: 0x34, PathID: a.Path, TargetID: a.Target, LUN: a.LUN, CDBLength: uint8(len(cdb)),
		SenseInfoLength: 20, DataIn: dir, DataTransferLength: n}
	copy(req.CDBOrSense[:], cdb)
	return vstor(protocol.OpExecuteSRB, func(p *protocol.Packet) { p.SetSCSIRequest(req) })
}

func handshakeScript() []fuzzPacket {
	return []fuzzPacket{
		{payload: vstor(protocol.OpBeginInitialization, nil)},
		{payload: vstor(protocol.OpQueryProtocolVersion, func(p *protocol.Packet) {
			p.SetProtocolVersion(protocol.ProtocolVersion{MajorMinor: protocol.VersionWin10})
		})},
		{payload: vstor(protocol.OpQueryProtocolVersion, func(p *protocol.Packet) {
			p.SetProtocolVersion(protocol.ProtocolVersion{MajorMinor: protocol.VersionWin8_1})
		})},
		{payload: vstor(protocol.OpQueryProperties, nil)},
		{payload: vstor(protocol.OpEndInitialization, nil)},
	}
}

// fuzzSeeds are FuzzVSP's seeds (and its committed corpus): the
// handshake, a scan, I/O, refusals and hostile packets.
type fuzzSeed struct {
	handshake bool
	script    []byte
}

func fuzzSeeds() map[string]fuzzSeed {
	io := []fuzzPacket{
		{payload: srbPacket(Address{}, inquiryCDB(false, 0, 36), protocol.DataIn, 36), data: true, count: 36, offset: 8},
		{payload: srbPacket(Address{Path: 1}, inquiryCDB(false, 0, 36), protocol.DataIn, 36), data: true, count: 36},
		{payload: srbPacket(Address{}, reportLUNsCDB(64), protocol.DataIn, 64), data: true, count: 64},
		{payload: srbPacket(Address{}, rw10(0x2A, 3, 8), protocol.DataOut, 4096), data: true, count: 4096, offset: 512},
		{payload: srbPacket(Address{}, rw10(0x28, 3, 8), protocol.DataIn, 4096), data: true, count: 4096, offset: 512},
		{payload: srbPacket(Address{LUN: 1}, rw10(0x2A, 0, 1), protocol.DataOut, 512), data: true, count: 512},
		{payload: srbPacket(Address{}, rw16(0x88, 8191, 2), protocol.DataIn, 1024), data: true, count: 1024},
		{payload: srbPacket(Address{}, rw10(0x28, 0, 16), protocol.DataIn, 8192), data: true, count: 8192, outside: true},
		{payload: srbPacket(Address{}, modeSense6CDB(0x3F, 4), protocol.DataIn, 4), data: true, count: 4},
		{payload: srbPacket(Address{}, readCap16CDB(), protocol.DataIn, 32), data: true, count: 32},
		{payload: srbPacket(Address{Path: 3}, []byte{0, 0, 0, 0, 0, 0}, protocol.DataUnspecified, 0)},
		{payload: vstor(protocol.OpResetBus, nil)},
		{payload: vstor(protocol.OpCreateSubChannels, func(p *protocol.Packet) { p.SetSubChannelCount(2) })},
	}
	return map[string]fuzzSeed{
		"handshake":          {false, encodeScript(handshakeScript()...)},
		"linux_session":      {false, encodeScript(append(handshakeScript(), io...)...)},
		"io_after_handshake": {true, encodeScript(io...)},
		"srb_before_ready":   {false, encodeScript(io[0])},
		"data_too_long":      {true, encodeScript(fuzzPacket{payload: srbPacket(Address{}, rw10(0x28, 0, 1), protocol.DataIn, 4096), data: true, count: 512})},
		"write_bad_last_page": {true, encodeScript(fuzzPacket{payload: srbPacket(Address{}, rw10(0x2A, 0, 24), protocol.DataOut, 12288),
			data: true, count: 12288, offset: 100, lastOutside: true})},
		"over_max_transfer": {true, encodeScript(
			fuzzPacket{payload: srbPacket(Address{}, rw10(0x2A, 0, 80), protocol.DataOut, fuzzMaxTransfer+512), data: true, count: fuzzMaxTransfer + 512},
			fuzzPacket{payload: srbPacket(Address{}, rw10(0x28, 0, 1), protocol.DataIn, 512), data: true, count: fuzzMaxTransfer + 1},
			fuzzPacket{payload: srbPacket(Address{}, rw10(0x2A, 0, 64), protocol.DataOut, fuzzMaxTransfer), data: true, count: fuzzMaxTransfer, offset: 4095})},
		"host_operation": {true, encodeScript(fuzzPacket{payload: vstor(protocol.OpCompleteIO, nil)})},
		"short_packet":   {false, encodeScript(fuzzPacket{payload: []byte{7, 0, 0, 0}})},
		"empty":          {false, []byte{}},
	}
}

// fuzzMaxTransfer is FuzzVSP's max_transfer_bytes: small enough that a
// fuzzed range (at most 65535 bytes) can exceed it.
const fuzzMaxTransfer = 32 << 10

// countingDisk is a RAM disk that counts the writes reaching it.
type countingDisk struct {
	*scsi.RAMDisk
	writes atomic.Int64
}

func (d *countingDisk) WriteAt(p []byte, off int64) (int, error) {
	d.writes.Add(1)
	return d.RAMDisk.WriteAt(p, off)
}

func (d *countingDisk) Unmap(off, n int64) error {
	d.writes.Add(1)
	return d.RAMDisk.Unmap(off, n)
}

// FuzzVSP feeds a script of packets (after Linux's handshake when the
// flag says so) to a VSP over testDisks' units, max_transfer_bytes 32
// KiB. Nothing may panic; every HandlePacket that returns nil sent exactly
// one 64-byte COMPLETE_IO with its transaction ID (an EXECUTE_SRB's
// carrying an SRB); one that fails sent nothing, and every later call
// returns ErrClosed; the read-only disk never changes. An SRB that did not
// succeed wrote nothing to any disk (the RAM disks never fail, so every
// refusal comes before the first write); once ready, one longer than the
// maximum (by length or by range) or with a page outside RAM under its
// transfer is refused with INVALID_REQUEST.
func FuzzVSP(f *testing.F) {
	for _, s := range fuzzSeeds() {
		f.Add(s.handshake, s.script)
	}
	d := testDisks(f)
	cfg := Config{LUNs: map[Address]*scsi.LogicalUnit{}, MaxTransferBytes: fuzzMaxTransfer}
	var counted []*countingDisk
	for a, ram := range d.ram {
		cd := &countingDisk{RAMDisk: ram}
		u, err := scsi.NewLogicalUnit(cd, scsi.Options{Serial: "gohv-" + a.String()})
		if err != nil {
			f.Fatal(err)
		}
		cfg.LUNs[a] = u
		counted = append(counted, cd)
	}
	writes := func() (n int64) {
		for _, cd := range counted {
			n += cd.writes.Load()
		}
		return n
	}
	roAddr := Address{0, 0, 1}
	roBefore := bytes.Clone(d.ram[roAddr].Bytes())
	f.Fuzz(func(t *testing.T, handshake bool, script []byte) {
		ch := &fakeChannel{}
		v, err := New(ch, cfg)
		if err != nil {
			t.Fatal(err)
		}
		mem := newRAM(ramBase, 80<<10)
		ps := decodeScript(script)
		if handshake {
			ps = append(handshakeScript(), ps...)
		}
		failed := false
		for i, p := range ps {
			pk := Packet{TransactionID: uint64(i)*0x10001 + 1, Payload: p.payload}
			var r PageRange
			if p.data {
				pfns := make([]uint64, 17)
				for j := range pfns {
					pfns[j] = ramBase/PageSize + uint64(j)
				}
				r = PageRange{ByteCount: uint32(p.count), ByteOffset: uint32(p.offset), PFNs: pfns}
				if p.outside {
					pfns[1] = 0xFFFFF
				}
				if p.lastOutside && r.PageCount() > 0 {
					pfns[r.PageCount()-1] = 0xFFFFE
				}
				pk.Data, err = NewGPADirect(mem, []PageRange{r})
				if err != nil {
					t.Fatal(err)
				}
			}
			ready := v.State() == StateReady
			wrote := writes()
			err := v.HandlePacket(pk)
			wrote = writes() - wrote
			sent := ch.take()
			if failed {
				if !errors.Is(err, ErrClosed) || len(sent) != 0 || wrote != 0 {
					t.Fatalf("packet %d after the close: %v, %d completions, %d writes", i, err, len(sent), wrote)
				}
				continue
			}
			if err != nil {
				if !errors.Is(err, ErrMalformed) || len(sent) != 0 || wrote != 0 {
					t.Fatalf("packet %d: %v with %d completions, %d writes", i, err, len(sent), wrote)
				}
				failed = true
				continue
			}
			if len(sent) != 1 || sent[0].id != pk.TransactionID || len(sent[0].packet) != protocol.PacketSize {
				t.Fatalf("packet %d: %d completions %+v", i, len(sent), sent)
			}
			c, _ := protocol.ParsePacket(sent[0].packet)
			if c.Operation != protocol.OpCompleteIO || c.Flags != 0 {
				t.Fatalf("packet %d: completion %+v", i, c)
			}
			in, _ := protocol.ParsePacket(p.payload)
			if in.Operation != protocol.OpExecuteSRB {
				if wrote != 0 {
					t.Fatalf("packet %d: %v wrote to a disk", i, in.Operation)
				}
				continue
			}
			got, _ := c.SCSIRequest()
			req, _ := in.SCSIRequest()
			if got.Length != 0x34 || got.DataTransferLength > req.DataTransferLength || got.SenseInfoLength > 18 {
				t.Fatalf("packet %d: SRB completion %+v for %+v", i, got, req)
			}
			if got.SRBStatus.Code() != protocol.SRBStatusSuccess && wrote != 0 {
				t.Fatalf("packet %d: a refused SRB (%#x) wrote to a disk %d times", i, got.SRBStatus, wrote)
			}
			// Ranges shorter than their transfer closed the channel above.
			oversized := req.DataTransferLength > fuzzMaxTransfer || (p.data && p.count > fuzzMaxTransfer)
			badPage := p.data && req.DataTransferLength > 0 &&
				((p.outside && uint32(p.offset)+req.DataTransferLength > PageSize) ||
					(p.lastOutside && (uint64(p.offset)+uint64(req.DataTransferLength)-1)/PageSize == uint64(r.PageCount()-1)))
			if ready && (oversized || badPage) &&
				(got.SRBStatus.Code() != protocol.SRBStatusInvalidRequest || got.SCSIStatus != uint8(scsi.StatusCheckCondition) || wrote != 0) {
				t.Fatalf("packet %d: oversized %v, bad page %v, yet SRB %#x SCSI %#x, %d writes", i, oversized, badPage, got.SRBStatus, got.SCSIStatus, wrote)
			}
		}
		if !bytes.Equal(roBefore, d.ram[roAddr].Bytes()) {
			t.Fatal("the read-only disk changed")
		}
	})
}

// TestWriteFuzzCorpus writes FuzzVSP's seeds under testdata/fuzz when
// GOHV_WRITE_CORPUS is set (the committed corpus comes from here).
func TestWriteFuzzCorpus(t *testing.T) {
	if os.Getenv("GOHV_WRITE_CORPUS") == "" {
		t.Skip("set GOHV_WRITE_CORPUS=1 to rewrite testdata/fuzz/FuzzVSP")
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzVSP")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, s := range fuzzSeeds() {
		body := fmt.Sprintf("go test fuzz v1\nbool(%v)\n[]byte(%q)\n", s.handshake, s.script)
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
