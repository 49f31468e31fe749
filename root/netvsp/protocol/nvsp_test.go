package protocol

import (
	"encoding/binary"
	"errors"
	"reflect"
	"testing"
)

var le = binary.LittleEndian

// TestNVSPNumbersMatchFactSheet pins the message types, versions and
// statuses against netvsc-facts §3 (hyperv_net.h's enums and
// NVSP_PROTOCOL_VERSION_*) and §4 (netvsc_connect_vsp's version list).
func TestNVSPNumbersMatchFactSheet(t *testing.T) {
	types := map[MessageType]uint32{
		TypeNone: 0, TypeInit: 1, TypeInitComplete: 2, TypeSendNDISVersion: 100, TypeSendRecvBuf: 101,
		TypeSendRecvBufComplete: 102, TypeRevokeRecvBuf: 103, TypeSendSendBuf: 104, TypeSendSendBufComplete: 105,
		TypeRevokeSendBuf: 106, TypeSendRNDISPacket: 107, TypeSendRNDISPacketComplete: 108, TypeSendNDISConfig: 125,
		TypeSendVFAssociation: 128, TypeSwitchDataPath: 129, TypeOIDQueryEx: 131, TypeOIDQueryExComplete: 132,
		TypeSubchannel: 133, TypeSendIndirectionTable: 134,
	}
	for ty, want := range types {
		if uint32(ty) != want {
			t.Errorf("%v = %d, §3 says %d", ty, uint32(ty), want)
		}
	}
	if LinuxVersions != [6]Version{0x60001, 0x60000, 0x50000, 0x40000, 0x30002, 0x2} {
		t.Errorf("Linux 6.1 offers 6.1, 6, 5, 4, 2, 1 in that order: %v", LinuxVersions)
	}
	for s, want := range map[Status]uint32{
		StatusNone: 0, StatusSuccess: 1, StatusFail: 2, StatusProtocolTooNew: 3, StatusProtocolTooOld: 4,
		StatusInvalidRNDISPacket: 5, StatusBusy: 6, StatusProtocolUnsupported: 7,
	} {
		if uint32(s) != want {
			t.Errorf("%v = %d, want %d", s, uint32(s), want)
		}
	}
	if ReceiveBufferID != 0xCAFE || SendBufferID != 0 || NoSection != 0xFFFFFFFF || VersionInvalid != 0xFFFFFFFF {
		t.Error("buffer ids / NETVSC_INVALID_INDEX / NVSP_INVALID_PROTOCOL_VERSION")
	}
	if CapVMQ != 1 || CapSRIOV != 4 || CapIEEE8021Q != 8 || CapTeaming != 0x20 || CapRSC != 0x80 {
		t.Error("nvsp_2_vsc_capability bits")
	}
	if TypeSendRecvBuf.String() != "SEND_RECV_BUF" || MessageType(7).String() != "NVSP_TYPE_7" ||
		StatusSuccess.String() != "SUCCESS" || Status(9).String() != "NVSP_STAT_9" || Version61.String() != "6.1" {
		t.Error("names")
	}
}

// TestNVSPLayoutMatchesFactSheet pins sizes and offsets against §3 (the
// 6.1 structs compiled with gcc, x86-64).
func TestNVSPLayoutMatchesFactSheet(t *testing.T) {
	for _, c := range []struct {
		name      string
		got, want int
	}{
		{"sizeof(struct nvsp_message)", MessageSize, 40},
		{"nvsp_message_header", HeaderSize, 4},
		{"nvsp_1_receive_buffer_section", RecvBufSectionSize, 16},
		{"SEND_RECV_BUF_COMPLETE with one section (Linux's ≥ 28 check)", offSections + RecvBufSectionSize, 28},
		{"union field 1", offField1, 4},
		{"union field 2", offField2, 8},
		{"union field 3", offField3, 12},
		{"VRSS_SEND_TAB_SIZE", IndirectionTableSize, 16},
	} {
		if c.got != c.want {
			t.Errorf("%s: %d, want %d", c.name, c.got, c.want)
		}
	}
}

// linuxGuestMessages are the NVSP messages Linux 6.1 sends, written byte
// by byte at §3's offsets independently of the package, with what they
// decode to.
func linuxGuestMessages() []struct {
	name string
	b    []byte
	want Message
} {
	msg := func(ty uint32, fill func(b []byte)) []byte {
		b := make([]byte, 40)
		le.PutUint32(b, ty)
		fill(b)
		return b
	}
	return []struct {
		name string
		b    []byte
		want Message
	}{
		{"init_6_1", msg(1, func(b []byte) { le.PutUint32(b[4:], 0x60001); le.PutUint32(b[8:], 0x60001) }),
			Init{Version61, Version61}},
		{"ndis_config", msg(125, func(b []byte) { le.PutUint32(b[4:], 1514); le.PutUint64(b[12:], 0x8|0x4|0x20|0x80) }),
			SendNDISConfig{MTU: 1514, Capabilities: CapIEEE8021Q | CapSRIOV | CapTeaming | CapRSC}},
		{"ndis_version_6_30", msg(100, func(b []byte) { le.PutUint32(b[4:], 6); le.PutUint32(b[8:], 30) }),
			SendNDISVersion{6, 30}},
		{"recv_buf", msg(101, func(b []byte) { le.PutUint32(b[4:], 0x1234); le.PutUint16(b[8:], 0xCAFE) }),
			SendRecvBuf{0x1234, ReceiveBufferID}},
		{"send_buf", msg(104, func(b []byte) { le.PutUint32(b[4:], 0x1235) }), SendSendBuf{0x1235, SendBufferID}},
		{"rndis_control", msg(107, func(b []byte) { le.PutUint32(b[4:], 1); le.PutUint32(b[8:], 0xFFFFFFFF) }),
			SendRNDISPacket{ChannelControl, NoSection, 0}},
		{"rndis_data_in_section", msg(107, func(b []byte) { le.PutUint32(b[8:], 5); le.PutUint32(b[12:], 98) }),
			SendRNDISPacket{ChannelData, 5, 98}},
		{"rx_completion", msg(108, func(b []byte) { le.PutUint32(b[4:], 1) }), SendRNDISPacketComplete{StatusSuccess}},
		{"subchannel", msg(133, func(b []byte) { le.PutUint32(b[4:], 1); le.PutUint32(b[8:], 3) }), Subchannel{SubchannelAllocate, 3}},
		{"revoke_recv", msg(103, func(b []byte) { le.PutUint16(b[4:], 0xCAFE) }), RevokeRecvBuf{0xCAFE}},
		{"revoke_send", msg(106, func(b []byte) {}), RevokeSendBuf{0}},
		{"switch_data_path", msg(129, func(b []byte) { le.PutUint32(b[4:], 1) }), SwitchDataPath{DataPathVF}},
	}
}

func TestParseLinuxGuestMessages(t *testing.T) {
	for _, c := range linuxGuestMessages() {
		m, err := ParseFromGuest(c.b)
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if m != c.want {
			t.Errorf("%s: %#v, want %#v", c.name, m, c.want)
		}
		if b := m.Append(nil); string(b) != string(c.b) {
			t.Errorf("%s re-encoded\n% x\n% x", c.name, b, c.b)
		}
	}
}

// TestHostMessagesLayout checks the builders' bytes at §3's offsets: what
// Linux's netvsc_send_completion and netvsc_receive read.
func TestHostMessagesLayout(t *testing.T) {
	check := func(name string, b []byte, ty uint32, fields map[int]uint32) {
		t.Helper()
		if len(b) != 40 {
			t.Errorf("%s: %d bytes, Linux copies 40", name, len(b))
			return
		}
		if le.Uint32(b) != ty {
			t.Errorf("%s: type %d", name, le.Uint32(b))
		}
		for off := 4; off < 40; off += 4 {
			if got := le.Uint32(b[off:]); got != fields[off] {
				t.Errorf("%s: u32 at %d is %#x, want %#x", name, off, got, fields[off])
			}
		}
	}
	check("INIT_COMPLETE", InitComplete{VersionInvalid, 34, StatusSuccess}.Append(nil), 2,
		map[int]uint32{4: 0xFFFFFFFF, 8: 34, 12: 1})
	check("SEND_RECV_BUF_COMPLETE", SendRecvBufComplete{StatusSuccess, 1, RecvBufSection{0, 1806, 9289, 1806 * 9289}}.Append(nil), 102,
		map[int]uint32{4: 1, 8: 1, 12: 0, 16: 1806, 20: 9289, 24: 1806 * 9289})
	if s := OneSection(16<<20, 1806); s != (RecvBufSection{0, 1806, 9289, 1806 * 9289}) || OneSection(1, 0) != (RecvBufSection{}) {
		t.Errorf("OneSection: %+v", s)
	}
	check("SEND_SEND_BUF_COMPLETE", SendSendBufComplete{StatusSuccess, 6144}.Append(nil), 105, map[int]uint32{4: 1, 8: 6144})
	check("SEND_RNDIS_PKT to the guest", SendRNDISPacket{ChannelData, NoSection, 0}.Append(nil), 107, map[int]uint32{8: 0xFFFFFFFF})
	check("SEND_RNDIS_PKT_COMPLETE", SendRNDISPacketComplete{StatusSuccess}.Append(nil), 108, map[int]uint32{4: 1})
	check("SUBCHANNEL completion", SubchannelComplete{StatusFail, 0}.Append(nil), 133, map[int]uint32{4: 2})

	// Appending to a buffer keeps what was there.
	b := SendRNDISPacketComplete{StatusSuccess}.Append([]byte{0xAA})
	if len(b) != 41 || b[0] != 0xAA || le.Uint32(b[1:]) != 108 {
		t.Fatalf("append: % x", b)
	}

	// SEND_INDIRECTION_TABLE: count at 4, offset 40 at 8, the table at 40.
	tab := make([]uint32, IndirectionTableSize)
	for i := range tab {
		tab[i] = uint32(i % 3)
	}
	b = SendIndirectionTable{tab}.Append(nil)
	if len(b) != 40+64 || le.Uint32(b) != 134 || le.Uint32(b[4:]) != 16 || le.Uint32(b[8:]) != 40 || le.Uint32(b[40+4*5:]) != 2 {
		t.Fatalf("indirection table % x", b)
	}
	m, err := ParseFromHost(b)
	if err != nil || !reflect.DeepEqual(m, SendIndirectionTable{tab}) {
		t.Fatalf("%#v %v", m, err)
	}
}

// TestNVSPRoundTrips: every message survives Append and its direction's
// parser.
func TestNVSPRoundTrips(t *testing.T) {
	fromGuest := []Message{
		Init{Version1, Version61}, SendNDISVersion{6, 1}, SendNDISConfig{9000, 7, CapRSC | CapVMQ},
		SendRecvBuf{9, 0xCAFE}, RevokeRecvBuf{0xCAFE}, SendSendBuf{10, 0}, RevokeSendBuf{3},
		SendRNDISPacket{1, 2, 3}, SendRNDISPacketComplete{StatusFail}, SwitchDataPath{1}, Subchannel{1, 7},
	}
	fromHost := []Message{
		InitComplete{Version2, 34, StatusProtocolTooNew}, SendRecvBufComplete{StatusSuccess, 1, RecvBufSection{1, 2, 3, 4}},
		SendSendBufComplete{StatusSuccess, 6144}, SendRNDISPacket{0, NoSection, 0}, SendRNDISPacketComplete{StatusSuccess},
		SendVFAssociation{1, 42}, SubchannelComplete{StatusSuccess, 3}, SendIndirectionTable{[]uint32{1, 2, 3}},
		SendIndirectionTable{[]uint32{}},
	}
	for _, m := range fromGuest {
		got, err := ParseFromGuest(m.Append(nil))
		if err != nil || got != m {
			t.Errorf("from guest %#v: %#v %v", m, got, err)
		}
	}
	for _, m := range fromHost {
		got, err := ParseFromHost(m.Append(nil))
		if err != nil || !reflect.DeepEqual(got, m) {
			t.Errorf("from host %#v: %#v %v", m, got, err)
		}
		if got.Type() != m.Type() {
			t.Errorf("%v", got.Type())
		}
	}
}

// TestNVSPShortMessages: every truncation of every message is an error
// naming the first field it cuts.
func TestNVSPShortMessages(t *testing.T) {
	type field struct {
		end  int
		name string
	}
	for _, c := range []struct {
		m      Message
		host   bool
		fields []field // in order: the end offset of each field
	}{
		{Init{}, false, []field{{8, "min_protocol_ver"}, {12, "max_protocol_ver"}}},
		{SendNDISVersion{}, false, []field{{8, "ndis_major_ver"}, {12, "ndis_minor_ver"}}},
		{SendNDISConfig{}, false, []field{{8, "mtu"}, {12, "reserved"}, {20, "capability"}}},
		{SendRecvBuf{}, false, []field{{8, "gpadl_handle"}, {10, "id"}}},
		{RevokeRecvBuf{}, false, []field{{6, "id"}}},
		{SendSendBuf{}, false, []field{{8, "gpadl_handle"}, {10, "id"}}},
		{RevokeSendBuf{}, false, []field{{6, "id"}}},
		{SendRNDISPacket{}, false, []field{{8, "channel_type"}, {12, "send_buf_section_index"}, {16, "send_buf_section_size"}}},
		{SendRNDISPacketComplete{}, false, []field{{8, "status"}}},
		{SwitchDataPath{}, false, []field{{8, "active_datapath"}}},
		{Subchannel{}, false, []field{{8, "op"}, {12, "num_subchannels"}}},
		{InitComplete{}, true, []field{{8, "negotiated_protocol_ver"}, {12, "max_mdl_chain_len"}, {16, "status"}}},
		{SendRecvBufComplete{}, true, []field{{8, "status"}, {12, "num_sections"}, {16, "sections[0].offset"},
			{20, "sections[0].sub_alloc_size"}, {24, "sections[0].num_sub_allocs"}, {28, "sections[0].end_offset"}}},
		{SendSendBufComplete{}, true, []field{{8, "status"}, {12, "section_size"}}},
		{SendVFAssociation{}, true, []field{{8, "allocated"}, {12, "serial"}}},
		{SubchannelComplete{}, true, []field{{8, "status"}, {12, "num_subchannels"}}},
		{SendIndirectionTable{}, true, []field{{8, "count"}, {12, "offset"}}},
	} {
		b := c.m.Append(nil)
		parse := ParseFromGuest
		if c.host {
			parse = ParseFromHost
		}
		for n := range c.fields[len(c.fields)-1].end {
			_, err := parse(b[:n])
			want := "msg_type"
			if n >= 4 {
				for _, f := range c.fields {
					if n < f.end {
						want = f.name
						break
					}
				}
			}
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Field != want || !errors.Is(err, ErrMalformed) {
				t.Errorf("%v cut to %d bytes: %v, want an error naming %s", c.m.Type(), n, err, want)
			}
		}
		if _, err := parse(b[:c.fields[len(c.fields)-1].end]); err != nil && c.m.Type() != TypeSendIndirectionTable {
			t.Errorf("%v with just its fields: %v", c.m.Type(), err)
		}
	}
}

func TestNVSPRefusals(t *testing.T) {
	for _, ty := range []MessageType{TypeNone, TypeInitComplete, TypeOIDQueryEx, 999} {
		if _, err := ParseFromGuest(le.AppendUint32(nil, uint32(ty))); !errors.Is(err, ErrUnknownType) {
			t.Errorf("from guest, %v: %v", ty, err)
		}
	}
	for _, ty := range []MessageType{TypeInit, TypeSendRecvBuf, TypeSendNDISConfig} {
		if _, err := ParseFromHost(le.AppendUint32(nil, uint32(ty))); !errors.Is(err, ErrUnknownType) {
			t.Errorf("from host, %v: %v", ty, err)
		}
	}
	table := func(count, offset uint32, n int) []byte {
		b := make([]byte, n)
		le.PutUint32(b, 134)
		le.PutUint32(b[4:], count)
		le.PutUint32(b[8:], offset)
		return b
	}
	for _, c := range []struct {
		name  string
		b     []byte
		field string
	}{
		{"offset into the fields", table(1, 8, 40), "offset"},
		{"past the end", table(16, 40, 40+63), "count"},
		{"offset past the end", table(16, 0xFFFFFFF0, 40), "offset"},
		{"empty table past the end", table(0, 41, 40), "offset"},
		{"count overflows", table(0x40000001, 40, 44), "count"},
	} {
		_, err := ParseFromHost(c.b)
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != c.field {
			t.Errorf("%s: %v, want an error naming %s", c.name, err, c.field)
		}
	}
	// An empty table right after the fields.
	if m, err := ParseFromHost(table(0, 12, 12)); err != nil || len(m.(SendIndirectionTable).Table) != 0 {
		t.Fatal(m, err)
	}
}
