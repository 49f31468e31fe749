package protocol

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// TestFieldOffsetsMatchFactSheet pins every offset against §6.2's tables:
// the union's offsets there are relative to the union, which starts at 12.
func TestFieldOffsetsMatchFactSheet(t *testing.T) {
	const union = 12
	for _, c := range []struct {
		name      string
		got, want int
	}{
		{"operation", offOperation, 0},
		{"flags", offFlags, 4},
		{"status", offStatus, 8},
		{"union", offUnion, 12},
		{"vm_srb.length", offSRBLength, union + 0},
		{"vm_srb.srb_status", offSRBStatus, union + 2},
		{"vm_srb.scsi_status", offSCSIStatus, union + 3},
		{"vm_srb.port_number", offPortNumber, union + 4},
		{"vm_srb.path_id", offPathID, union + 5},
		{"vm_srb.target_id", offTargetID, union + 6},
		{"vm_srb.lun", offLUN, union + 7},
		{"vm_srb.cdb_length", offCDBLength, union + 8},
		{"vm_srb.sense_info_length", offSenseInfoLength, union + 9},
		{"vm_srb.data_in", offDataIn, union + 10},
		{"vm_srb.reserved", offSRBReserved, union + 11},
		{"vm_srb.data_transfer_length", offDataTransferLength, union + 12},
		{"vm_srb.cdb/sense_data", offCDB, union + 16},
		{"vm_srb.reserve", offReserve, union + 36},
		{"vm_srb.queue_tag", offQueueTag, union + 38},
		{"vm_srb.queue_action", offQueueAction, union + 39},
		{"vm_srb.srb_flags", offSRBFlags, union + 40},
		{"vm_srb.time_out_value", offTimeOutValue, union + 44},
		{"vm_srb.queue_sort_key", offQueueSortKey, union + 48},
		{"version.major_minor", offMajorMinor, union + 0},
		{"version.revision", offRevision, union + 2},
		{"properties.reserved", offPropReserved, union + 0},
		{"properties.max_channel_cnt", offMaxChannelCount, union + 4},
		{"properties.reserved1", offPropReserved1, union + 6},
		{"properties.flags", offPropFlags, union + 8},
		{"properties.max_transfer_bytes", offMaxTransferBytes, union + 12},
		{"properties.reserved2", offPropReserved2, union + 16},
		{"sub_channel_count", offSubChannelCount, union + 0},
	} {
		if c.got != c.want {
			t.Errorf("%s at %d, §6.2 says %d", c.name, c.got, c.want)
		}
	}
	for _, c := range []struct {
		name      string
		got, want int
	}{
		{"vstor_packet", PacketSize, 64},
		{"header", HeaderSize, 12},
		{"union", UnionSize, 52},
		{"vmscsi_request", SCSIRequestSize, 52},
		{"vmscsi_request without the WIN8 extension", SCSIRequestSizeV1, 36},
		{"cdb", CDBSize, 16},
		{"sense buffer", SenseBufferSize, 20},
		{"channel properties", ChannelPropsSize, 24},
		{"protocol version", VersionSize, 4},
		{"the WIN8 extension ends the packet", offQueueSortKey + 4, PacketSize},
		{"sense ends where the extension starts", offCDB + SenseBufferSize, offReserve},
		{"properties end", offPropReserved2 + 8, offUnion + ChannelPropsSize},
	} {
		if c.got != c.want {
			t.Errorf("%s: %d, want %d", c.name, c.got, c.want)
		}
	}
}

func TestNumbersMatchFactSheet(t *testing.T) {
	ops := map[Operation]uint32{
		OpCompleteIO: 1, OpRemoveDevice: 2, OpExecuteSRB: 3, OpResetLUN: 4, OpResetAdapter: 5,
		OpResetBus: 6, OpBeginInitialization: 7, OpEndInitialization: 8, OpQueryProtocolVersion: 9,
		OpQueryProperties: 10, OpEnumerateBus: 11, OpFCHBAData: 12, OpCreateSubChannels: 13,
		OpEventNotification: 14,
	}
	for op, want := range ops {
		if uint32(op) != want {
			t.Errorf("%v = %d, want %d", op, op, want)
		}
	}
	if LinuxVersions != [3]Version{0x0602, 0x0600, 0x0501} {
		t.Errorf("Linux 6.1 offers 6.2, 6.0, 5.1 in that order: %v", LinuxVersions)
	}
	if VersionWin8_1.String() != "6.0" || VersionWin8.Major() != 5 || VersionWin8.Minor() != 1 {
		t.Error("version arithmetic")
	}
	srb := map[SRBStatus]uint8{
		SRBStatusPending: 0, SRBStatusSuccess: 1, SRBStatusAborted: 2, SRBStatusError: 4,
		SRBStatusBusy: 5, SRBStatusInvalidRequest: 6, SRBStatusInvalidPathID: 7, SRBStatusNoDevice: 8,
		SRBStatusTimeout: 9, SRBStatusSelectionTimeout: 0xA, SRBStatusCommandTimeout: 0xB,
		SRBStatusDataOverrun: 0x12, SRBStatusInvalidLUN: 0x20, SRBStatusInvalidTargetID: 0x21,
		SRBStatusQueueFrozen: 0x40, SRBStatusAutosenseValid: 0x80,
	}
	for s, want := range srb {
		if uint8(s) != want {
			t.Errorf("SRB status %#x, want %#x", uint8(s), want)
		}
	}
	if (SRBStatusError | SRBStatusAutosenseValid | SRBStatusQueueFrozen).Code() != SRBStatusError {
		t.Error("Code keeps a flag")
	}
	if StatusRevisionMismatch != 0xC0000059 || StatusDeviceDoesNotExist != 0xC00000C0 || StatusIODeviceError != 0xC0000185 {
		t.Error("NTSTATUS values")
	}
	if DataOut != 0 || DataIn != 1 || DataUnspecified != 2 || SRBFlagsDataIn != 0x40 || SRBFlagsDataOut != 0x80 {
		t.Error("data direction numbers")
	}
	if OpExecuteSRB.String() != "EXECUTE_SRB" || Operation(99).String() != "OPERATION_99" || NTStatus(1).String() != "NTSTATUS_0x00000001" {
		t.Errorf("names: %v %v %v", OpExecuteSRB, Operation(99), NTStatus(1))
	}
}

// linuxRead10 is an EXECUTE_SRB as Linux 6.1's storvsc_queuecommand
// builds it for READ(10) of 8 blocks at LBA 0x12345 on 0:1:3, written
// field by field at §6.2's offsets independently of the package.
func linuxRead10() []byte {
	b := make([]byte, 64)
	le := binary.LittleEndian
	le.PutUint32(b[0:], 3)     // EXECUTE_SRB
	le.PutUint32(b[4:], 1)     // REQUEST_COMPLETION_FLAG
	le.PutUint16(b[12:], 0x34) // length
	b[16] = 2                  // port_number (scsi host 2)
	b[17], b[18], b[19] = 0, 1, 3
	b[20] = 10                 // cdb_length
	b[21] = 0x14               // sense_info_length
	b[22] = 1                  // READ_TYPE
	le.PutUint32(b[24:], 4096) // data_transfer_length
	copy(b[28:], []byte{0x28, 0, 0, 1, 0x23, 0x45, 0, 0, 8, 0})
	b[50], b[51] = 0xFF, 0x20 // tagged
	le.PutUint32(b[52:], 0x40|0x8|0x2|0x100)
	le.PutUint32(b[56:], 60)
	return b
}

func TestParseLinuxExecuteSRB(t *testing.T) {
	p, err := ParsePacket(linuxRead10())
	if err != nil {
		t.Fatal(err)
	}
	if p.Operation != OpExecuteSRB || p.Flags != FlagRequestCompletion || p.Status != 0 || p.UnionLen != UnionSize {
		t.Fatalf("header %+v", p)
	}
	r, err := p.SCSIRequest()
	if err != nil {
		t.Fatal(err)
	}
	want := SCSIRequest{
		Length: 0x34, PortNumber: 2, TargetID: 1, LUN: 3, CDBLength: 10, SenseInfoLength: 0x14,
		DataIn: DataIn, DataTransferLength: 4096, QueueTag: 0xFF, QueueAction: 0x20,
		SRBFlags:     SRBFlagsDataIn | SRBFlagsDisableSynchTransfer | SRBFlagsQueueActionEnable | SRBFlagsNoQueueFreeze,
		TimeOutValue: 60,
	}
	copy(want.CDBOrSense[:], []byte{0x28, 0, 0, 1, 0x23, 0x45, 0, 0, 8, 0})
	if r != want {
		t.Fatalf("got  %+v\nwant %+v", r, want)
	}
	if cdb := r.CDB(); len(cdb) != 10 || cdb[0] != 0x28 || cdb[8] != 8 {
		t.Fatalf("cdb % x", cdb)
	}
	r.CDBLength = 17
	if r.CDB() != nil {
		t.Fatal("a CDB longer than 16 bytes")
	}
	// Re-encoded it is the same 64 bytes.
	var q Packet
	q.Operation, q.Flags = OpExecuteSRB, FlagRequestCompletion
	q.SetSCSIRequest(want)
	if b := q.Marshal(); string(b[:]) != string(linuxRead10()) {
		t.Fatalf("marshal\n% x\n% x", b, linuxRead10())
	}
}

func TestCompletionLayout(t *testing.T) {
	p := Packet{Operation: OpCompleteIO, Status: StatusRevisionMismatch}
	p.SetProtocolVersion(ProtocolVersion{MajorMinor: VersionWin10})
	b := p.Marshal()
	if len(b) != 64 || binary.LittleEndian.Uint32(b[0:]) != 1 || binary.LittleEndian.Uint32(b[4:]) != 0 ||
		binary.LittleEndian.Uint32(b[8:]) != 0xC0000059 || binary.LittleEndian.Uint16(b[12:]) != 0x0602 {
		t.Fatalf("% x", b)
	}
	p = Packet{Operation: OpCompleteIO}
	p.SetChannelProperties(ChannelProperties{MaxChannelCount: 3, Flags: ChannelSupportsMultiChannel, MaxTransferBytes: 0x40000})
	b = p.Marshal()
	if binary.LittleEndian.Uint16(b[16:]) != 3 || binary.LittleEndian.Uint32(b[20:]) != 1 || binary.LittleEndian.Uint32(b[24:]) != 0x40000 {
		t.Fatalf("% x", b)
	}
	for i := 28; i < 64; i++ {
		if b[i] != 0 {
			t.Fatalf("byte %d of properties is %#x", i, b[i])
		}
	}
	q, _ := ParsePacket(b[:])
	if c, err := q.ChannelProperties(); err != nil || c.MaxTransferBytes != 0x40000 || c.MaxChannelCount != 3 {
		t.Fatalf("%+v %v", c, err)
	}
	p.SetSubChannelCount(7)
	b = p.Marshal()
	if binary.LittleEndian.Uint16(b[12:]) != 7 {
		t.Fatalf("% x", b)
	}
	q, _ = ParsePacket(b[:])
	if n, err := q.SubChannelCount(); n != 7 || err != nil {
		t.Fatal(n, err)
	}
}

func TestShortPackets(t *testing.T) {
	if _, err := ParsePacket(make([]byte, 11)); !errors.Is(err, ErrShort) {
		t.Fatalf("11 bytes: %v", err)
	}
	// A pre-WIN8 packet (48 bytes) parses; its SRB does not, its version does.
	b := make([]byte, 48)
	binary.LittleEndian.PutUint32(b, uint32(OpQueryProtocolVersion))
	binary.LittleEndian.PutUint16(b[12:], 0x0402)
	p, err := ParsePacket(b)
	if err != nil || p.UnionLen != 36 {
		t.Fatalf("%+v %v", p, err)
	}
	if v, err := p.ProtocolVersion(); err != nil || v.MajorMinor != VersionWin7 {
		t.Fatal(v, err)
	}
	if _, err := p.SCSIRequest(); !errors.Is(err, ErrShort) {
		t.Fatalf("a 36-byte SRB: %v", err)
	}
	p, _ = ParsePacket(b[:13])
	if _, err := p.ProtocolVersion(); !errors.Is(err, ErrShort) {
		t.Fatal(err)
	}
	if _, err := p.SubChannelCount(); !errors.Is(err, ErrShort) {
		t.Fatal(err)
	}
	if _, err := p.ChannelProperties(); !errors.Is(err, ErrShort) {
		t.Fatal(err)
	}
	// Longer than 64: the tail is ignored.
	long := append(linuxRead10(), 0xAA, 0xBB)
	if p, err := ParsePacket(long); err != nil || p.UnionLen != UnionSize {
		t.Fatal(p, err)
	}
}

// FuzzParsePacket: any bytes parse or fail with ErrShort, never panic; a
// parsed packet re-encodes to its first 64 bytes (zero-padded), and every
// union view that succeeds survives a Set/decode round trip.
func FuzzParsePacket(f *testing.F) {
	for _, b := range packetSeeds() {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := ParsePacket(b)
		if err != nil {
			if !errors.Is(err, ErrShort) || len(b) >= HeaderSize {
				t.Fatalf("%d bytes: %v", len(b), err)
			}
			return
		}
		m := p.Marshal()
		var want [PacketSize]byte
		copy(want[:], b)
		if m != want {
			t.Fatalf("re-encoded\n% x\n% x", m, want)
		}
		if r, err := p.SCSIRequest(); err == nil {
			var q Packet
			q.SetSCSIRequest(r)
			if r2, _ := q.SCSIRequest(); r2 != r || q.Union != p.Union {
				t.Fatalf("SRB round trip %+v %+v", r, r2)
			}
			_ = r.CDB()
		} else if p.UnionLen >= SCSIRequestSize {
			t.Fatal(err)
		}
		if v, err := p.ProtocolVersion(); err == nil {
			var q Packet
			q.SetProtocolVersion(v)
			if v2, _ := q.ProtocolVersion(); v2 != v {
				t.Fatal(v, v2)
			}
		}
		if c, err := p.ChannelProperties(); err == nil {
			var q Packet
			q.SetChannelProperties(c)
			if c2, _ := q.ChannelProperties(); c2 != c {
				t.Fatal(c, c2)
			}
		}
		if n, err := p.SubChannelCount(); err == nil {
			var q Packet
			q.SetSubChannelCount(n)
			if n2, _ := q.SubChannelCount(); n2 != n {
				t.Fatal(n, n2)
			}
		}
	})
}

// packetSeeds are FuzzParsePacket's seeds and committed corpus: each
// packet Linux 6.1 sends, a completion, a pre-WIN8 packet, short ones.
func packetSeeds() map[string][]byte {
	req := func(op Operation, set func(*Packet)) []byte {
		p := Packet{Operation: op, Flags: FlagRequestCompletion, UnionLen: UnionSize}
		if set != nil {
			set(&p)
		}
		b := p.Marshal()
		return b[:]
	}
	done := Packet{Operation: OpCompleteIO}
	done.SetChannelProperties(ChannelProperties{MaxTransferBytes: 0x40000})
	props := done.Marshal()
	old := req(OpQueryProtocolVersion, func(p *Packet) { p.SetProtocolVersion(ProtocolVersion{MajorMinor: VersionWin7}) })[:48]
	return map[string][]byte{
		"execute_srb_read10":    linuxRead10(),
		"begin_initialization":  req(OpBeginInitialization, nil),
		"query_version_6_2":     req(OpQueryProtocolVersion, func(p *Packet) { p.SetProtocolVersion(ProtocolVersion{MajorMinor: VersionWin10}) }),
		"query_properties":      req(OpQueryProperties, nil),
		"end_initialization":    req(OpEndInitialization, nil),
		"create_sub_channels":   req(OpCreateSubChannels, func(p *Packet) { p.SetSubChannelCount(3) }),
		"properties_completion": props[:],
		"pre_win8_48_bytes":     old,
		"header_only":           make([]byte, 12),
		"too_short":             make([]byte, 11),
	}
}

// TestWriteFuzzCorpus writes the seeds under testdata/fuzz when
// GOHV_WRITE_CORPUS is set (the committed corpus comes from here).
func TestWriteFuzzCorpus(t *testing.T) {
	if os.Getenv("GOHV_WRITE_CORPUS") == "" {
		t.Skip("set GOHV_WRITE_CORPUS=1 to rewrite testdata/fuzz/FuzzParsePacket")
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzParsePacket")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, b := range packetSeeds() {
		if err := os.WriteFile(filepath.Join(dir, name), fmt.Appendf(nil, "go test fuzz v1\n[]byte(%q)\n", b), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
