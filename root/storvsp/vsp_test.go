package storvsp

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"gohv/root/storvsp/protocol"
	"gohv/root/storvsp/scsi"
)

type disks struct {
	cfg Config
	ram map[Address]*scsi.RAMDisk
}

// testDisks: a writable thin disk at 0:0:0, a read-only one at 0:0:1, and
// a disk at 2:1:5 on a target without LUN 0.
func testDisks(t testing.TB) disks {
	t.Helper()
	d := disks{cfg: Config{LUNs: map[Address]*scsi.LogicalUnit{}}, ram: map[Address]*scsi.RAMDisk{}}
	for _, c := range []struct {
		a      Address
		blocks int
		ro     bool
	}{{Address{0, 0, 0}, 8192, false}, {Address{0, 0, 1}, 256, true}, {Address{2, 1, 5}, 1024, false}} {
		data := make([]byte, c.blocks*512)
		for i := range data {
			data[i] = byte(i>>9) ^ byte(i) ^ c.a.LUN
		}
		ram, err := scsi.NewRAMDisk(data, 512, c.ro)
		if err != nil {
			t.Fatal(err)
		}
		u, err := scsi.NewLogicalUnit(ram, scsi.Options{Serial: "gohv-" + c.a.String()})
		if err != nil {
			t.Fatal(err)
		}
		d.cfg.LUNs[c.a], d.ram[c.a] = u, ram
	}
	return d
}

// TestLinuxHandshake: the versions Linux offers in order, 6.2 refused
// with REVISION_MISMATCH (the version echoed), 6.0 accepted; properties;
// every answer a 64-byte COMPLETE_IO echoing VMBUS_RQST_INIT.
func TestLinuxHandshake(t *testing.T) {
	g := newLinux(t, testDisks(t).cfg)
	if g.vsp.State() != StateWaitBegin {
		t.Fatal(g.vsp.State())
	}
	g.request(vstor(protocol.OpBeginInitialization, nil), rqstInit, nil)
	ask := func(v protocol.Version) protocol.Packet {
		return g.request(vstor(protocol.OpQueryProtocolVersion, func(p *protocol.Packet) {
			p.SetProtocolVersion(protocol.ProtocolVersion{MajorMinor: v})
		}), rqstInit, nil)
	}
	c := ask(protocol.VersionWin10)
	if v, _ := c.ProtocolVersion(); c.Status != protocol.StatusRevisionMismatch || v.MajorMinor != protocol.VersionWin10 {
		t.Fatalf("6.2: %v %v", c.Status, v)
	}
	if g.vsp.State() != StateWaitVersion {
		t.Fatal(g.vsp.State())
	}
	c = ask(protocol.VersionWin8_1)
	if v, _ := c.ProtocolVersion(); c.Status != 0 || v.MajorMinor != protocol.VersionWin8_1 {
		t.Fatalf("6.0: %v %v", c.Status, v)
	}
	if g.vsp.Version() != protocol.VersionWin8_1 || g.vsp.State() != StateWaitProperties {
		t.Fatal(g.vsp.Version(), g.vsp.State())
	}
	c = g.request(vstor(protocol.OpQueryProperties, nil), rqstInit, nil)
	props, _ := c.ChannelProperties()
	if c.Status != 0 || props != (protocol.ChannelProperties{MaxTransferBytes: 256 << 10}) {
		t.Fatalf("%v %+v", c.Status, props)
	}
	b := c.Marshal()
	if !bytes.Equal(b[12:16], []byte{0, 0, 0, 0}) || !bytes.Equal(b[28:], make([]byte, 36)) {
		t.Fatalf("reserved bytes % x", b)
	}
	g.request(vstor(protocol.OpEndInitialization, nil), rqstInit, nil)
	if g.vsp.State() != StateReady {
		t.Fatal(g.vsp.State())
	}
}

func TestVersions(t *testing.T) {
	for v, ok := range map[protocol.Version]bool{
		protocol.VersionWin10: false, protocol.VersionWin8_1: true, protocol.VersionWin8: true,
		protocol.VersionWin7: false, protocol.VersionWin6: false, 0: false, 0xFFFF: false,
	} {
		g := newLinux(t, Config{})
		g.request(vstor(protocol.OpBeginInitialization, nil), rqstInit, nil)
		c := g.request(vstor(protocol.OpQueryProtocolVersion, func(p *protocol.Packet) {
			p.SetProtocolVersion(protocol.ProtocolVersion{MajorMinor: v, Revision: 0x1234})
		}), rqstInit, nil)
		if (c.Status == 0) != ok || (!ok && c.Status != protocol.StatusRevisionMismatch) {
			t.Errorf("%v: %v", v, c.Status)
		}
	}
	// Linux settles on 6.0; with 5.1 only it would settle there.
	g := newLinux(t, Config{})
	g.init()
	if g.vsp.Version() != protocol.VersionWin8_1 {
		t.Fatal(g.vsp.Version())
	}
}

func TestConfig(t *testing.T) {
	for _, m := range []uint32{1, 4095, 4097} {
		if _, err := New(&fakeChannel{}, Config{MaxTransferBytes: m}); err == nil {
			t.Errorf("max transfer %d accepted", m)
		}
	}
	if _, err := New(nil, Config{}); err == nil {
		t.Error("nil channel")
	}
	if _, err := New(&fakeChannel{}, Config{LUNs: map[Address]*scsi.LogicalUnit{{}: nil}}); err == nil {
		t.Error("nil LUN")
	}
	g := newLinux(t, Config{MaxTransferBytes: 1 << 20})
	g.request(vstor(protocol.OpBeginInitialization, nil), rqstInit, nil)
	g.request(vstor(protocol.OpQueryProtocolVersion, func(p *protocol.Packet) {
		p.SetProtocolVersion(protocol.ProtocolVersion{MajorMinor: protocol.VersionWin8})
	}), rqstInit, nil)
	c := g.request(vstor(protocol.OpQueryProperties, nil), rqstInit, nil)
	if p, _ := c.ChannelProperties(); p.MaxTransferBytes != 1<<20 {
		t.Fatal(p)
	}
}

// TestLinuxScan walks scsi_scan_host over paths 0..7 and targets 0..1
// (INQUIRY to LUN 0, REPORT LUNS, INQUIRY per listed LUN), then
// sd_revalidate_disk's commands on every disk found.
func TestLinuxScan(t *testing.T) {
	d := testDisks(t)
	g := newLinux(t, d.cfg)
	g.init()
	var found []Address
	for path := range uint8(8) {
		for target := range uint8(2) {
			lun0 := Address{path, target, 0}
			r := g.srb(lun0, inquiryCDB(false, 0, 36), protocol.DataIn, 36, nil)
			// storvsc forces INQUIRY to success: the payload must say it.
			if r.req.DataTransferLength != 36 {
				t.Fatalf("%v: INQUIRY moved %d bytes", lun0, r.req.DataTransferLength)
			}
			_, configured := d.cfg.LUNs[lun0]
			switch {
			case r.data[0] == 0x7F && !configured:
			case r.data[0] == 0x00 && configured:
				found = append(found, lun0)
			default:
				t.Fatalf("%v: INQUIRY byte 0 %#x, configured %v", lun0, r.data[0], configured)
			}
			r = g.srb(lun0, reportLUNsCDB(8*512+8), protocol.DataIn, 8*512+8, nil)
			if r.req.SRBStatus != protocol.SRBStatusSuccess {
				t.Fatalf("%v: REPORT LUNS %+v", lun0, r.req)
			}
			n := binary.BigEndian.Uint32(r.data) / 8
			if int(r.req.DataTransferLength) != 8+8*int(n) {
				t.Fatalf("REPORT LUNS: %d bytes for %d LUNs", r.req.DataTransferLength, n)
			}
			for i := range int(n) {
				e := r.data[8+8*i:]
				if e[0] != 0 || !bytes.Equal(e[2:8], make([]byte, 6)) {
					t.Fatalf("LUN entry % x", e[:8])
				}
				a := Address{path, target, e[1]}
				if a.LUN == 0 {
					continue
				}
				ri := g.srb(a, inquiryCDB(false, 0, 36), protocol.DataIn, 36, nil)
				if ri.data[0] != 0 || string(ri.data[8:16]) != "Msft    " {
					t.Fatalf("%v: % x", a, ri.data[:16])
				}
				found = append(found, a)
			}
		}
	}
	want := slices.Collect(func(yield func(Address) bool) {
		for a := range d.cfg.LUNs {
			yield(a)
		}
	})
	cmp := func(a, b Address) int {
		return int(a.Path)<<16 | int(a.Target)<<8 | int(a.LUN) - (int(b.Path)<<16 | int(b.Target)<<8 | int(b.LUN))
	}
	slices.SortFunc(found, cmp)
	slices.SortFunc(want, cmp)
	if !slices.Equal(found, want) {
		t.Fatalf("found %v, configured %v", found, want)
	}

	for _, a := range found {
		ram := d.ram[a]
		if r := g.srb(a, []byte{0, 0, 0, 0, 0, 0}, protocol.DataUnspecified, 0, nil); r.req.SRBStatus != protocol.SRBStatusSuccess || r.req.SCSIStatus != 0 {
			t.Fatalf("%v TEST UNIT READY: %+v", a, r.req)
		}
		r := g.srb(a, readCap16CDB(), protocol.DataIn, 32, nil)
		if binary.BigEndian.Uint64(r.data) != uint64(len(ram.Bytes())/512-1) || binary.BigEndian.Uint32(r.data[8:]) != 512 ||
			(r.data[14]&0x80 != 0) == ram.ReadOnly() {
			t.Fatalf("%v READ CAPACITY(16): % x", a, r.data)
		}
		// scsi_vpd_inquiry: the header, then the page.
		r = g.srb(a, inquiryCDB(true, 0, 4), protocol.DataIn, 4, nil)
		plen := int(binary.BigEndian.Uint16(r.data[2:]))
		r = g.srb(a, inquiryCDB(true, 0, uint16(4+plen)), protocol.DataIn, 4+plen, nil)
		pages := r.data[4 : 4+plen]
		want := []byte{0x00, 0x80, 0x83, 0xB0, 0xB1, 0xB2} // RAMDisk unmaps when writable
		if ram.ReadOnly() {
			want = want[:5]
		}
		if !bytes.Equal(pages, want) {
			t.Fatalf("%v VPD pages % x", a, pages)
		}
		for _, pg := range pages {
			r := g.srb(a, inquiryCDB(true, pg, 255), protocol.DataIn, 255, nil)
			if r.req.SRBStatus != protocol.SRBStatusSuccess || r.data[1] != pg {
				t.Fatalf("%v VPD %#x: %+v", a, pg, r.req)
			}
			if pg == 0x80 && string(r.data[4:r.req.DataTransferLength]) != "gohv-"+a.String() {
				t.Fatalf("serial %q", r.data[4:r.req.DataTransferLength])
			}
		}
		// sd_read_write_protect_flag: 0x3F, 4 bytes.
		r = g.srb(a, modeSense6CDB(0x3F, 4), protocol.DataIn, 4, nil)
		if wp := r.data[2]&0x80 != 0; wp != ram.ReadOnly() || r.req.DataTransferLength != 4 {
			t.Fatalf("%v WP %v: % x", a, wp, r.data[:4])
		}
		// sd_read_cache_type: page 8, header first, then all of it.
		r = g.srb(a, modeSense6CDB(0x08, 4), protocol.DataIn, 4, nil)
		l := int(r.data[0]) + 1
		r = g.srb(a, modeSense6CDB(0x08, uint8(l)), protocol.DataIn, l, nil)
		off := 4 + int(r.data[3])
		if r.data[off]&0x3F != 8 || (r.data[off+2]&0x04 != 0) == ram.ReadOnly() || r.data[2]&0x10 == 0 {
			t.Fatalf("%v caching page % x", a, r.data[:l])
		}
	}
}

func TestLinuxReadWrite(t *testing.T) {
	d := testDisks(t)
	g := newLinux(t, d.cfg)
	g.init()
	a := Address{0, 0, 0}
	ram := d.ram[a]
	for _, c := range []struct {
		lba    uint64
		blocks uint32
		cdb16  bool
	}{{0, 1, false}, {7, 8, false}, {100, 63, true}, {1000, 512, true}, {8192 - 64, 64, false}} {
		n := int(c.blocks) * 512
		data := make([]byte, n)
		for i := range data {
			data[i] = byte(i*31) ^ byte(c.lba)
		}
		w, rd := rw10(0x2A, uint32(c.lba), uint16(c.blocks)), rw10(0x28, uint32(c.lba), uint16(c.blocks))
		if c.cdb16 {
			w, rd = rw16(0x8A, c.lba, c.blocks), rw16(0x88, c.lba, c.blocks)
		}
		r := g.srb(a, w, protocol.DataOut, n, data)
		if r.req.SRBStatus != protocol.SRBStatusSuccess || int(r.req.DataTransferLength) != n || r.status != 0 {
			t.Fatalf("write %+v: %+v", c, r.req)
		}
		if !bytes.Equal(ram.Bytes()[c.lba*512:c.lba*512+uint64(n)], data) {
			t.Fatalf("write %+v: the disk does not hold the data", c)
		}
		r = g.srb(a, rd, protocol.DataIn, n, nil)
		if r.req.SRBStatus != protocol.SRBStatusSuccess || int(r.req.DataTransferLength) != n {
			t.Fatalf("read %+v: %+v", c, r.req)
		}
		if !bytes.Equal(r.data, data) {
			t.Fatalf("read %+v: the guest buffer differs", c)
		}
	}
	// A discard: UNMAP with one descriptor, the parameter list data-out.
	list := make([]byte, 24)
	binary.BigEndian.PutUint16(list[0:], 22)
	binary.BigEndian.PutUint16(list[2:], 16)
	binary.BigEndian.PutUint64(list[8:], 100)
	binary.BigEndian.PutUint32(list[16:], 8)
	if r := g.srb(a, []byte{0x42, 0, 0, 0, 0, 0, 0, 0, 24, 0}, protocol.DataOut, 24, list); r.req.SRBStatus != protocol.SRBStatusSuccess ||
		!bytes.Equal(ram.Bytes()[100*512:108*512], make([]byte, 8*512)) {
		t.Fatalf("UNMAP: %+v", r.req)
	}
	// SYNCHRONIZE CACHE reaches the disk.
	before := ram.Flushes()
	if r := g.srb(a, []byte{0x35, 0, 0, 0, 0, 0, 0, 0, 0, 0}, protocol.DataUnspecified, 0, nil); r.req.SRBStatus != protocol.SRBStatusSuccess || ram.Flushes() != before+1 {
		t.Fatalf("%+v, %d flushes", r.req, ram.Flushes())
	}
}

func TestReadOnlyAndRangeRefusals(t *testing.T) {
	d := testDisks(t)
	g := newLinux(t, d.cfg)
	g.init()
	roAddr := Address{0, 0, 1}
	before := bytes.Clone(d.ram[roAddr].Bytes())
	for _, c := range []struct {
		name   string
		a      Address
		cdb    []byte
		dir    uint8
		n      int
		srb    protocol.SRBStatus
		status protocol.NTStatus
		sense  scsi.Sense
	}{
		{"write to a read-only disk", roAddr, rw10(0x2A, 0, 1), protocol.DataOut, 512,
			protocol.SRBStatusError, protocol.StatusIODeviceError, scsi.Sense{Key: scsi.KeyDataProtect, Code: scsi.ASCWriteProtected}},
		{"read past the end", Address{0, 0, 0}, rw16(0x88, 8191, 2), protocol.DataIn, 1024,
			protocol.SRBStatusInvalidRequest, protocol.StatusIODeviceError, scsi.Sense{Key: scsi.KeyIllegalRequest, Code: scsi.ASCLBAOutOfRange}},
		{"write beyond capacity", Address{2, 1, 5}, rw16(0x8A, 1<<40, 1), protocol.DataOut, 512,
			protocol.SRBStatusInvalidRequest, protocol.StatusIODeviceError, scsi.Sense{Key: scsi.KeyIllegalRequest, Code: scsi.ASCLBAOutOfRange}},
		{"unknown opcode", Address{0, 0, 0}, []byte{0x93, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0}, protocol.DataOut, 512,
			protocol.SRBStatusInvalidRequest, protocol.StatusIODeviceError, scsi.Sense{Key: scsi.KeyIllegalRequest, Code: scsi.ASCInvalidCommandOperationCode}},
		{"absent LUN", Address{3, 0, 0}, []byte{0, 0, 0, 0, 0, 0}, protocol.DataUnspecified, 0,
			protocol.SRBStatusInvalidLUN, protocol.StatusDeviceDoesNotExist, scsi.Sense{Key: scsi.KeyIllegalRequest, Code: scsi.ASCLogicalUnitNotSupported}},
		{"absent LUN beside present ones", Address{0, 0, 9}, rw10(0x28, 0, 1), protocol.DataIn, 512,
			protocol.SRBStatusInvalidLUN, protocol.StatusDeviceDoesNotExist, scsi.Sense{Key: scsi.KeyIllegalRequest, Code: scsi.ASCLogicalUnitNotSupported}},
	} {
		r := g.srb(c.a, c.cdb, c.dir, c.n, bytes.Repeat([]byte{0xEE}, c.n))
		s, ok := r.sense()
		if r.req.SRBStatus != c.srb|protocol.SRBStatusAutosenseValid || r.req.SCSIStatus != 2 || r.status != c.status ||
			!ok || s != c.sense || r.req.SenseInfoLength != 18 || r.req.DataTransferLength != 0 {
			t.Errorf("%s: srb %#x scsi %#x status %v sense %v (%d bytes)", c.name, r.req.SRBStatus, r.req.SCSIStatus, r.status, s, r.req.SenseInfoLength)
		}
	}
	if !bytes.Equal(before, d.ram[roAddr].Bytes()) {
		t.Fatal("the read-only disk changed")
	}
	// A guest with a small sense buffer gets what fits; none: no autosense.
	for _, n := range []uint8{8, 0} {
		req := protocol.SCSIRequest{Length: 0x34, LUN: 1, CDBLength: 10, SenseInfoLength: n, DataIn: protocol.DataUnspecified}
		copy(req.CDBOrSense[:], rw10(0x2A, 0, 0))
		req.CDBOrSense[0] = 0x2A
		c := g.request(vstor(protocol.OpExecuteSRB, func(p *protocol.Packet) { p.SetSCSIRequest(req) }), 77, nil)
		got, _ := c.SCSIRequest()
		if got.SenseInfoLength != n || (n == 0) != (got.SRBStatus&protocol.SRBStatusAutosenseValid == 0) || got.SCSIStatus != 2 {
			t.Errorf("sense buffer %d: %+v", n, got)
		}
	}
}

// TestOutOfOrder: packets of the right kind in the wrong state are
// refused with a completion, and the VSP keeps going.
func TestOutOfOrder(t *testing.T) {
	g := newLinux(t, testDisks(t).cfg)
	srb := func() []byte {
		req := protocol.SCSIRequest{Length: 0x34, CDBLength: 6, SenseInfoLength: 20, DataIn: protocol.DataUnspecified}
		return vstor(protocol.OpExecuteSRB, func(p *protocol.Packet) { p.SetSCSIRequest(req) })
	}
	ver := vstor(protocol.OpQueryProtocolVersion, func(p *protocol.Packet) {
		p.SetProtocolVersion(protocol.ProtocolVersion{MajorMinor: protocol.VersionWin8_1})
	})
	steps := []struct {
		payload []byte
		status  protocol.NTStatus
		state   State
	}{
		{vstor(protocol.OpQueryProperties, nil), protocol.StatusInvalidDeviceState, StateWaitBegin},
		{srb(), protocol.StatusInvalidDeviceState, StateWaitBegin},
		{vstor(protocol.OpEndInitialization, nil), protocol.StatusInvalidDeviceState, StateWaitBegin},
		{vstor(protocol.OpResetBus, nil), protocol.StatusSuccess, StateWaitBegin},
		{vstor(protocol.OpBeginInitialization, nil), protocol.StatusSuccess, StateWaitVersion},
		{vstor(protocol.OpQueryProperties, nil), protocol.StatusInvalidDeviceState, StateWaitVersion},
		{vstor(protocol.OpBeginInitialization, nil), protocol.StatusSuccess, StateWaitVersion},
		{ver, protocol.StatusSuccess, StateWaitProperties},
		{ver, protocol.StatusInvalidDeviceState, StateWaitProperties},
		{vstor(protocol.OpEndInitialization, nil), protocol.StatusInvalidDeviceState, StateWaitProperties},
		{vstor(protocol.OpQueryProperties, nil), protocol.StatusSuccess, StateWaitEnd},
		{vstor(protocol.OpCreateSubChannels, func(p *protocol.Packet) { p.SetSubChannelCount(1) }), protocol.StatusInvalidDeviceRequest, StateWaitEnd},
		{vstor(protocol.OpFCHBAData, nil), protocol.StatusInvalidDeviceRequest, StateWaitEnd},
		{srb(), protocol.StatusInvalidDeviceState, StateWaitEnd},
		{vstor(protocol.OpEndInitialization, nil), protocol.StatusSuccess, StateReady},
		{vstor(protocol.OpBeginInitialization, nil), protocol.StatusInvalidDeviceState, StateReady},
		{ver, protocol.StatusInvalidDeviceState, StateReady},
		{vstor(protocol.OpEndInitialization, nil), protocol.StatusInvalidDeviceState, StateReady},
		{vstor(protocol.OpCreateSubChannels, func(p *protocol.Packet) { p.SetSubChannelCount(3) }), protocol.StatusInvalidDeviceRequest, StateReady},
		{vstor(protocol.OpResetLUN, nil), protocol.StatusSuccess, StateReady},
		{vstor(protocol.OpResetAdapter, nil), protocol.StatusSuccess, StateReady},
		{srb(), protocol.StatusSuccess, StateReady},
	}
	for i, s := range steps {
		c := g.request(s.payload, uint64(i+1), nil)
		if c.Status != s.status || g.vsp.State() != s.state {
			t.Fatalf("step %d: status %v state %v, want %v %v", i, c.Status, g.vsp.State(), s.status, s.state)
		}
		if op, _ := protocol.ParsePacket(s.payload); op.Operation == protocol.OpExecuteSRB && s.status != 0 {
			if r, _ := c.SCSIRequest(); r.SRBStatus != protocol.SRBStatusError {
				t.Fatalf("step %d: SRB status %#x", i, r.SRBStatus)
			}
		}
	}
}

// TestMalformed: packets that cannot be answered close the channel with
// ErrMalformed and no completion; every later packet gets ErrClosed.
func TestMalformed(t *testing.T) {
	ram := newRAM(ramBase, ramSize)
	buf, _ := NewGPADirect(ram, []PageRange{{ByteCount: 512, PFNs: []uint64{ramBase / PageSize}}})
	srb := func(f func(*protocol.SCSIRequest)) []byte {
		req := protocol.SCSIRequest{Length: 0x34, CDBLength: 10, DataIn: protocol.DataIn, DataTransferLength: 512}
		copy(req.CDBOrSense[:], rw10(0x28, 0, 1))
		f(&req)
		return vstor(protocol.OpExecuteSRB, func(p *protocol.Packet) { p.SetSCSIRequest(req) })
	}
	for _, c := range []struct {
		name    string
		payload []byte
		data    GuestBuffers
	}{
		{"empty", nil, nil},
		{"header cut", make([]byte, 11), nil},
		{"version without a version", vstor(protocol.OpQueryProtocolVersion, nil)[:13], nil},
		{"sub-channels without a count", vstor(protocol.OpCreateSubChannels, nil)[:12], nil},
		{"pre-WIN8 SRB", srb(func(*protocol.SCSIRequest) {})[:48], buf},
		{"completion from the guest", vstor(protocol.OpCompleteIO, nil), nil},
		{"remove device from the guest", vstor(protocol.OpRemoveDevice, nil), nil},
		{"enumerate bus from the guest", vstor(protocol.OpEnumerateBus, nil), nil},
		{"event notification", vstor(protocol.OpEventNotification, nil), nil},
		{"unknown operation", vstor(0, nil), nil},
		{"operation 0xFFFFFFFF", vstor(0xFFFFFFFF, nil), nil},
		{"cdb_length 17", srb(func(r *protocol.SCSIRequest) { r.CDBLength = 17 }), buf},
		{"data longer than the buffer", srb(func(r *protocol.SCSIRequest) { r.DataTransferLength = 513 }), buf},
		{"data without a buffer", srb(func(*protocol.SCSIRequest) {}), nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			g := newLinux(t, testDisks(t).cfg)
			g.init()
			err := g.vsp.HandlePacket(Packet{TransactionID: 9, Payload: c.payload, Data: c.data})
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("%v", err)
			}
			if s := g.ch.take(); len(s) != 0 {
				t.Fatalf("%d completions", len(s))
			}
			err = g.vsp.HandlePacket(Packet{TransactionID: 10, Payload: vstor(protocol.OpResetBus, nil)})
			if !errors.Is(err, ErrClosed) || len(g.ch.take()) != 0 {
				t.Fatalf("after the failure: %v", err)
			}
		})
	}
}

func TestSendFailureCloses(t *testing.T) {
	g := newLinux(t, Config{})
	gone := errors.New("ring gone")
	g.ch.fail = gone
	if err := g.vsp.HandlePacket(Packet{TransactionID: 1, Payload: vstor(protocol.OpBeginInitialization, nil)}); !errors.Is(err, gone) {
		t.Fatal(err)
	}
	g.ch.fail = nil
	if err := g.vsp.HandlePacket(Packet{TransactionID: 1, Payload: vstor(protocol.OpBeginInitialization, nil)}); !errors.Is(err, ErrClosed) || !errors.Is(err, gone) {
		t.Fatal(err)
	}
}

func TestGPADirect(t *testing.T) {
	ram := newRAM(ramBase, 64<<10)
	first := uint64(ramBase / PageSize)
	for _, c := range []struct {
		name   string
		ranges []PageRange
	}{
		{"two ranges", []PageRange{{ByteCount: 1, PFNs: []uint64{first}}, {ByteCount: 1, PFNs: []uint64{first}}}},
		{"offset beyond the first page", []PageRange{{ByteCount: 1, ByteOffset: 4096, PFNs: []uint64{first, first}}}},
		{"too few PFNs", []PageRange{{ByteCount: 4096, ByteOffset: 1, PFNs: []uint64{first}}}},
		{"PFN beyond 52 bits", []PageRange{{ByteCount: 8, PFNs: []uint64{1 << 52}}}},
		{"a huge range", []PageRange{{ByteCount: 0xFFFFFFFF, ByteOffset: 4095, PFNs: make([]uint64, 10)}}},
	} {
		if _, err := NewGPADirect(ram, c.ranges); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v", c.name, err)
		}
	}
	if b, err := NewGPADirect(ram, nil); b != nil || err != nil {
		t.Fatal(b, err)
	}
	// 6000 bytes from offset 3000 over pages 3, 1, 2: only 3 PFNs read of 32.
	pfns := append([]uint64{first + 3, first + 1, first + 2}, make([]uint64, 29)...)
	for i := 3; i < 32; i++ {
		pfns[i] = 1<<40 + uint64(i)
	}
	r := PageRange{ByteCount: 6000, ByteOffset: 3000, PFNs: pfns}
	if r.PageCount() != 3 {
		t.Fatal(r.PageCount())
	}
	b, err := NewGPADirect(ram, []PageRange{r})
	if err != nil || b.Len() != 6000 {
		t.Fatal(b, err)
	}
	data := make([]byte, 6000)
	for i := range data {
		data[i] = byte(i)
	}
	if n, err := b.WriteAt(data, 0); n != 6000 || err != nil {
		t.Fatal(n, err)
	}
	if !bytes.Equal(ram.mem[3*4096+3000:4*4096], data[:1096]) || !bytes.Equal(ram.mem[4096:2*4096], data[1096:5192]) ||
		!bytes.Equal(ram.mem[2*4096:2*4096+808], data[5192:]) {
		t.Fatal("pages written in the wrong places")
	}
	got := make([]byte, 100)
	if _, err := b.ReadAt(got, 1050); err != nil || !bytes.Equal(got, data[1050:1150]) {
		t.Fatal(err)
	}
	for _, off := range []int64{-1, 5901, 6000, 1 << 62} {
		if _, err := b.ReadAt(got, off); !errors.Is(err, ErrOutOfRange) {
			t.Errorf("read at %d: %v", off, err)
		}
	}
	// A page outside the partition's RAM fails at access.
	out, _ := NewGPADirect(ram, []PageRange{{ByteCount: 8192, PFNs: []uint64{first, 0x7777}}})
	if _, err := out.ReadAt(make([]byte, 8192), 0); !errors.Is(err, errNotRAM) {
		t.Fatal(err)
	}
}

// TestGuestPagesOutsideRAM: an SRB whose pages are not the guest's RAM
// completes with ILLEGAL REQUEST; nothing outside RAM is touched and the
// channel stays open.
func TestGuestPagesOutsideRAM(t *testing.T) {
	d := testDisks(t)
	g := newLinux(t, d.cfg)
	g.init()
	for _, op := range []byte{0x28, 0x2A} {
		data, _ := NewGPADirect(g.ram, []PageRange{{ByteCount: 4096, PFNs: []uint64{0xFFFFF}}})
		req := protocol.SCSIRequest{Length: 0x34, CDBLength: 10, SenseInfoLength: 20, DataIn: protocol.DataIn, DataTransferLength: 4096}
		copy(req.CDBOrSense[:], rw10(op, 0, 8))
		c := g.request(vstor(protocol.OpExecuteSRB, func(p *protocol.Packet) { p.SetSCSIRequest(req) }), 5, data)
		r, _ := c.SCSIRequest()
		s, _ := scsi.ParseSense(r.CDBOrSense[:r.SenseInfoLength])
		if r.SRBStatus != protocol.SRBStatusInvalidRequest|protocol.SRBStatusAutosenseValid || s.Code != scsi.ASCInvalidFieldInCDB {
			t.Fatalf("%#x: %+v %v", op, r, s)
		}
	}
	if r := g.srb(Address{}, rw10(0x28, 0, 1), protocol.DataIn, 512, nil); r.req.SRBStatus != protocol.SRBStatusSuccess {
		t.Fatal("the channel did not survive")
	}
}

// refusedSRB sends one EXECUTE_SRB over data and checks it came back as
// the VSP's refusal: CHECK CONDITION, ILLEGAL REQUEST / INVALID FIELD IN
// CDB with autosense, SRB status INVALID_REQUEST, IO_DEVICE_ERROR, no
// data moved.
func refusedSRB(t *testing.T, g *linux, cdb []byte, dir uint8, n uint32, data GuestBuffers) {
	t.Helper()
	req := protocol.SCSIRequest{Length: 0x34, CDBLength: uint8(len(cdb)), SenseInfoLength: protocol.SenseBufferSize, DataIn: dir, DataTransferLength: n}
	copy(req.CDBOrSense[:], cdb)
	g.tag++
	c := g.request(vstor(protocol.OpExecuteSRB, func(p *protocol.Packet) { p.SetSCSIRequest(req) }), g.tag, data)
	r, _ := c.SCSIRequest()
	s, err := scsi.ParseSense(r.CDBOrSense[:r.SenseInfoLength])
	if c.Status != protocol.StatusIODeviceError || r.SRBStatus != protocol.SRBStatusInvalidRequest|protocol.SRBStatusAutosenseValid ||
		r.SCSIStatus != uint8(scsi.StatusCheckCondition) || err != nil ||
		s != (scsi.Sense{Key: scsi.KeyIllegalRequest, Code: scsi.ASCInvalidFieldInCDB}) || r.DataTransferLength != 0 {
		t.Fatalf("%x: status %v srb %#x scsi %#x sense %v (%v), %d bytes", cdb[0], c.Status, r.SRBStatus, r.SCSIStatus, s, err, r.DataTransferLength)
	}
}

// TestBadLastPageChangesNothing: a transfer whose last page is not the
// guest's RAM is refused before it starts. A WRITE of 128 KiB (more than
// the logical unit's 64 KiB step, so it would have landed in part) leaves
// the disk as it was; a READ leaves the guest's pages as they were; the
// answer is the one a bad page always got, and the channel goes on.
func TestBadLastPageChangesNothing(t *testing.T) {
	d := testDisks(t)
	g := newLinux(t, d.cfg)
	g.init()
	disk := d.ram[Address{}]
	before := bytes.Clone(disk.Bytes())
	const n = 128 << 10
	for _, offset := range []uint32{0, 512, 4088} {
		for _, c := range []struct {
			cdb []byte
			dir uint8
		}{{rw10(0x2A, 16, n/512), protocol.DataOut}, {rw16(0x8A, 16, n/512), protocol.DataOut}, {rw10(0x28, 16, n/512), protocol.DataIn}} {
			r, mem := g.buffer(n, offset)
			for i := range mem {
				mem[i] = byte(i*7) | 1
			}
			guest := bytes.Clone(mem)
			r.PFNs[r.PageCount()-1] = 0xFFFFF // the last page is nobody's RAM
			data, err := NewGPADirect(g.ram, []PageRange{r})
			if err != nil {
				t.Fatal(err)
			}
			refusedSRB(t, g, c.cdb, c.dir, n, data)
			if !bytes.Equal(disk.Bytes(), before) {
				t.Fatalf("offset %d, %x: the disk changed", offset, c.cdb[0])
			}
			if !bytes.Equal(mem, guest) {
				t.Fatalf("offset %d, %x: the guest's pages changed", offset, c.cdb[0])
			}
		}
	}
	if r := g.srb(Address{}, rw10(0x2A, 16, 8), protocol.DataOut, 4096, bytes.Repeat([]byte{0x5A}, 4096)); r.req.SRBStatus != protocol.SRBStatusSuccess ||
		!bytes.Equal(disk.Bytes()[16*512:24*512], bytes.Repeat([]byte{0x5A}, 4096)) {
		t.Fatal("the channel did not survive")
	}
}

// TestCheck: GuestBuffers.Check probes exactly the pages under its n
// bytes, refuses n beyond the range, and allocates nothing.
func TestCheck(t *testing.T) {
	ram := newRAM(ramBase, 64<<10)
	first := uint64(ramBase / PageSize)
	// 8192 bytes from offset 100 over pages 0, 1 and a third outside RAM.
	b, err := NewGPADirect(ram, []PageRange{{ByteCount: 8192, ByteOffset: 100, PFNs: []uint64{first, first + 1, 0x7777}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		n  int
		ok bool
	}{{0, true}, {1, true}, {4096 - 100, true}, {8192 - 100, true}, {8192 - 99, false}, {8192, false}} {
		if err := b.Check(c.n); (err == nil) != c.ok || (err != nil && !errors.Is(err, errNotRAM)) {
			t.Errorf("Check(%d): %v", c.n, err)
		}
	}
	for _, n := range []int{-1, 8193, 1 << 40} {
		if err := b.Check(n); !errors.Is(err, ErrOutOfRange) {
			t.Errorf("Check(%d): %v", n, err)
		}
	}
	if a := testing.AllocsPerRun(100, func() { b.Check(8192 - 100) }); a != 0 {
		t.Errorf("Check allocates %.0f times", a)
	}
}

// TestMaxTransfer: an SRB longer than the max_transfer_bytes
// QUERY_PROPERTIES advertised — by its data_transfer_length or by its GPA
// range — is refused with ILLEGAL REQUEST before the disk or the guest's
// pages are touched, whatever the length, and allocates no more than a
// command without data; one of exactly the maximum is served.
func TestMaxTransfer(t *testing.T) {
	for _, max := range []uint32{0, 8192} {
		d := testDisks(t)
		cfg := d.cfg
		cfg.MaxTransferBytes = max
		if max == 0 {
			max = DefaultMaxTransferBytes
		}
		g := newLinux(t, cfg)
		g.init()
		disk := d.ram[Address{}]
		before := bytes.Clone(disk.Bytes())
		// One past the maximum by length, with a range to match.
		for _, c := range []struct {
			cdb []byte
			dir uint8
		}{{rw10(0x2A, 0, uint16(max/512+1)), protocol.DataOut}, {rw10(0x28, 0, uint16(max/512+1)), protocol.DataIn},
			{reportLUNsCDB(max + 512), protocol.DataIn}} {
			r, mem := g.buffer(int(max)+512, 0)
			for i := range mem {
				mem[i] = 0xC3
			}
			data, _ := NewGPADirect(g.ram, []PageRange{r})
			refusedSRB(t, g, c.cdb, c.dir, max+512, data)
			if !bytes.Equal(disk.Bytes(), before) || !bytes.Equal(mem, bytes.Repeat([]byte{0xC3}, len(mem))) {
				t.Fatalf("max %d, %x: the disk or the guest changed", max, c.cdb[0])
			}
		}
		// A short transfer over a range longer than the maximum.
		r, _ := g.buffer(int(max)+1, 0)
		data, _ := NewGPADirect(g.ram, []PageRange{r})
		refusedSRB(t, g, rw10(0x2A, 0, 1), protocol.DataOut, 512, data)
		if !bytes.Equal(disk.Bytes(), before) {
			t.Fatalf("max %d: the disk changed", max)
		}
		// Exactly the maximum, from an unaligned offset: served.
		want := bytes.Repeat([]byte{0x6B}, int(max))
		if res := g.srb(Address{}, rw10(0x2A, 0, uint16(max/512)), protocol.DataOut, int(max), want); res.req.SRBStatus != protocol.SRBStatusSuccess ||
			!bytes.Equal(disk.Bytes()[:max], want) {
			t.Fatalf("max %d: a transfer of the maximum: %+v", max, res.req)
		}

		// The refusal costs the same whatever the length claims: nothing
		// of the request sizes an allocation, and no page is read.
		huge := &countingBuffers{n: 1<<32 - 1}
		tur := srbPacket(Address{}, []byte{0, 0, 0, 0, 0, 0}, protocol.DataUnspecified, 0)
		big := srbPacket(Address{}, rw16(0x8A, 0, 1<<23), protocol.DataOut, 1<<32-1)
		base := testing.AllocsPerRun(50, func() { g.vsp.HandlePacket(Packet{TransactionID: 1, Payload: tur}); g.ch.take() })
		got := testing.AllocsPerRun(50, func() { g.vsp.HandlePacket(Packet{TransactionID: 2, Payload: big, Data: huge}); g.ch.take() })
		if got > base {
			t.Errorf("max %d: an oversized SRB allocates %.0f times, TEST UNIT READY %.0f", max, got, base)
		}
		if huge.touched != 0 {
			t.Errorf("max %d: an oversized SRB touched its buffer %d times", max, huge.touched)
		}
	}
}

// countingBuffers is a GuestBuffers of any length that counts every
// access and refuses it.
type countingBuffers struct {
	n       int
	touched int
}

func (b *countingBuffers) Len() int { return b.n }
func (b *countingBuffers) ReadAt([]byte, int64) (int, error) {
	b.touched++
	return 0, errNotRAM
}
func (b *countingBuffers) WriteAt([]byte, int64) (int, error) {
	b.touched++
	return 0, errNotRAM
}
func (b *countingBuffers) Check(int) error {
	b.touched++
	return errNotRAM
}

// TestConcurrentIO: several goroutines read and write their own regions
// while resets come in; run with -race.
func TestConcurrentIO(t *testing.T) {
	d := testDisks(t)
	g := newLinux(t, d.cfg)
	g.init()
	ram := d.ram[Address{}]
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			mem := newRAM(ramBase, 64<<10)
			pfns := make([]uint64, 16)
			for i := range pfns {
				pfns[i] = ramBase/PageSize + uint64(i)
			}
			for i := range 50 {
				lba := uint32(w*1000 + i*8)
				for j := range 4096 {
					mem.mem[j] = byte(w + i + j)
				}
				for _, op := range []byte{0x2A, 0x28} {
					buf, _ := NewGPADirect(mem, []PageRange{{ByteCount: 4096, PFNs: pfns}})
					req := protocol.SCSIRequest{Length: 0x34, CDBLength: 10, SenseInfoLength: 20, DataIn: protocol.DataIn, DataTransferLength: 4096}
					copy(req.CDBOrSense[:], rw10(op, lba, 8))
					if err := g.vsp.HandlePacket(Packet{TransactionID: uint64(w<<16 | i), Payload: vstor(protocol.OpExecuteSRB, func(p *protocol.Packet) { p.SetSCSIRequest(req) }), Data: buf}); err != nil {
						errs <- err
						return
					}
				}
				if !bytes.Equal(ram.Bytes()[lba*512:lba*512+4096], mem.mem[:4096]) {
					errs <- fmt.Errorf("worker %d: disk differs", w)
					return
				}
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for range 20 {
			if err := g.vsp.HandlePacket(Packet{TransactionID: rqstReset, Payload: vstor(protocol.OpResetBus, nil)}); err != nil {
				errs <- err
			}
		}
	}()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if n := len(g.ch.take()); n != 4*50*2+20 {
		t.Fatalf("%d completions", n)
	}
}
