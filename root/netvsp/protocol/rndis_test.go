package protocol

import (
	"errors"
	"reflect"
	"slices"
	"testing"
)

// TestRNDISNumbersMatchFactSheet pins types, statuses, OIDs, PPI types and
// filter bits against netvsc-facts §7–§9 (include/linux/rndis.h,
// hyperv_net.h, rndis_filter.c).
func TestRNDISNumbersMatchFactSheet(t *testing.T) {
	for ty, want := range map[RNDISType]uint32{
		RNDISPacketMsg: 1, RNDISInitializeMsg: 2, RNDISHaltMsg: 3, RNDISQueryMsg: 4, RNDISSetMsg: 5,
		RNDISResetMsg: 6, RNDISIndicateStatusMsg: 7, RNDISKeepaliveMsg: 8, RNDISInitializeCmplt: 0x80000002,
		RNDISQueryCmplt: 0x80000004, RNDISSetCmplt: 0x80000005, RNDISResetCmplt: 0x80000006, RNDISKeepaliveCmplt: 0x80000008,
	} {
		if uint32(ty) != want {
			t.Errorf("%v = %#x, want %#x", ty, uint32(ty), want)
		}
	}
	if RNDISQueryMsg|RNDISCompletion != RNDISQueryCmplt {
		t.Error("completion bit")
	}
	for s, want := range map[RNDISStatus]uint32{
		RNDISStatusSuccess: 0, RNDISStatusFailure: 0xC0000001, RNDISStatusNotSupported: 0xC00000BB,
		RNDISStatusInvalidData: 0xC0010015, RNDISStatusMediaConnect: 0x4001000B, RNDISStatusMediaDisconnect: 0x4001000C,
		RNDISStatusLinkSpeedChange: 0x40010013, RNDISStatusNetworkChange: 0x40010018,
	} {
		if uint32(s) != want {
			t.Errorf("%v = %#x, want %#x", s, uint32(s), want)
		}
	}
	for o, want := range map[OID]uint32{
		OIDGenMaximumFrameSize: 0x00010106, OID802_3PermanentAddress: 0x01010101, OIDGenFriendlyName: 0x00020216,
		OIDTCPOffloadHardwareCapabilities: 0xFC01020D, OIDTCPOffloadParameters: 0xFC01020C,
		OIDGenMediaConnectStatus: 0x00010114, OIDGenLinkSpeed: 0x00010107, OIDGenReceiveScaleCapabilities: 0x00010203,
		OIDGenReceiveScaleParameters: 0x00010204, OIDGenCurrentPacketFilter: 0x0001010E,
		OIDGenRNDISConfigParameter: 0x0001021B, OID802_3CurrentAddress: 0x01010102,
	} {
		if uint32(o) != want {
			t.Errorf("%v = %#x, want %#x", o, uint32(o), want)
		}
	}
	for p, want := range map[PPIType]uint32{
		PPIChecksum: 0, PPIIPSec: 1, PPILargeSend: 2, PPIClassificationHandle: 3, PPISGList: 5, PPIIEEE8021Q: 6,
		PPIOriginal: 7, PPIHashValue: 8, PPIShortPacketPadInfo: 11,
	} {
		if uint32(p) != want {
			t.Errorf("PPI %d, want %d", p, want)
		}
	}
	if PPIPacketInfoID != 1 {
		t.Error("RNDIS_PKTINFO_ID")
	}
	if LinuxOpenFilter != 0x0D || PacketTypePromiscuous != 0x20 || MediaStateConnected != 0 || MediaStateDisconnected != 1 {
		t.Error("filter / media state")
	}
	if NDISObjectTypeOffload != 0xA7 || NDISObjectTypeDefault != 0x80 || NDISObjectTypeRSSCapabilities != 0x88 ||
		NDISOffloadSize6_0 != 112 || NDISOffloadSize6_1 != 144 || NDISOffloadSize != 156 ||
		NDISOffloadParamsSize != 28 || NDISOffloadParamsSizeV4 != 22 || NDISRSSCapabilitiesSize != 18 {
		t.Error("NDIS object numbers")
	}
	if ChecksumRxTCPSucceeded != 8 || ChecksumRxIPSucceeded != 0x20 || ChecksumTxIPv4 != 1 || ChecksumTxTCP != 4 {
		t.Error("checksum info bits")
	}
	if v := VLANInfo(0x123, 5); v != 0x1235 || VLANID(v) != 0x123 || VLANPriority(v) != 5 {
		t.Errorf("VLAN %#x", v)
	}
	if OIDGenLinkSpeed.String() != "OID_GEN_LINK_SPEED" || RNDISQueryCmplt.String() != "QUERY_CMPLT" ||
		RNDISStatusNotSupported.String() != "NOT_SUPPORTED" || OID(1).String() != "OID_0x00000001" {
		t.Error("names")
	}
}

// TestRNDISLayoutMatchesFactSheet pins sizes and offsets against §7's
// table and §9's PPI record.
func TestRNDISLayoutMatchesFactSheet(t *testing.T) {
	for _, c := range []struct {
		name      string
		got, want int
	}{
		{"header", RNDISHeaderSize, 8},
		{"INITIALIZE_MSG", InitializeMsgSize, 24}, {"INITIALIZE_CMPLT", InitializeCmpltSize, 52},
		{"HALT_MSG", HaltMsgSize, 12}, {"QUERY_MSG", QueryMsgSize, 28}, {"QUERY_CMPLT", QueryCmpltSize, 24},
		{"SET_MSG", SetMsgSize, 28}, {"SET_CMPLT", SetCmpltSize, 16}, {"RESET_MSG", ResetMsgSize, 12},
		{"RESET_CMPLT", ResetCmpltSize, 16}, {"INDICATE_STATUS_MSG", IndicateStatusSize, 20},
		{"KEEPALIVE_MSG", KeepaliveMsgSize, 12}, {"KEEPALIVE_CMPLT", KeepaliveCmpltSize, 16},
		{"PACKET_MSG", PacketMsgSize, 44}, {"struct rndis_packet", PacketSize, 36},
		{"struct rndis_per_packet_info", PPIHeaderSize, 12},
		{"req_id", offRequestID, 8},
		{"init.major_ver", offInitMajor, 12}, {"init.minor_ver", offInitMinor, 16}, {"init.max_xfer_size", offInitMaxTransfer, 20},
		{"init_c.status", offInitCStatus, 12}, {"init_c.major_ver", offInitCMajor, 16}, {"init_c.minor_ver", offInitCMinor, 20},
		{"init_c.dev_flags", offInitCDeviceFlags, 24}, {"init_c.medium", offInitCMedium, 28},
		{"init_c.max_pkt_per_msg", offInitCMaxPackets, 32}, {"init_c.max_xfer_size", offInitCMaxTransfer, 36},
		{"init_c.pkt_alignment_factor", offInitCAlignment, 40}, {"init_c.af_list_offset", offInitCAFListOffset, 44},
		{"init_c.af_list_size", offInitCAFListSize, 48},
		{"query.oid", offQueryOID, 12}, {"query.info_buflen", offQueryInfoLen, 16},
		{"query.info_buf_offset", offQueryInfoOffset, 20}, {"query.dev_vc_handle", offQueryDevVCHandle, 24},
		{"Linux's query info_buf_offset (rel8)", queryInfoMinOffset, 20},
		{"query_c.status", offCmpltStatus, 12}, {"query_c.info_buflen", offQueryCInfoLen, 16},
		{"query_c.info_buf_offset", offQueryCInfoOffset, 20}, {"query_c minimum info_buf_offset", queryCmpltInfoMinOffset, 16},
		{"reset_c.status", offResetCStatus, 8}, {"reset_c.addressing_reset", offResetCAddressing, 12},
		{"indicate.status", offIndicateStatus, 8}, {"indicate.status_buflen", offIndicateBufLen, 12},
		{"indicate.status_buf_offset", offIndicateBufOffset, 16},
		{"pkt.data_offset", offPacketDataOffset, 8}, {"pkt.data_len", offPacketDataLen, 12},
		{"pkt.oob_data_offset", offPacketOOBOffset, 16}, {"pkt.oob_data_len", offPacketOOBLen, 20},
		{"pkt.num_oob_data_elements", offPacketOOBCount, 24}, {"pkt.per_pkt_info_offset", offPacketPPIOffset, 28},
		{"pkt.per_pkt_info_len", offPacketPPILen, 32}, {"pkt.vc_handle", offPacketVCHandle, 36},
		{"pkt.reserved", offPacketReserved, 40},
		{"ppi.size", offPPISize, 0}, {"ppi.type", offPPIType, 4}, {"ppi.ppi_offset", offPPIOffset, 8},
	} {
		if c.got != c.want {
			t.Errorf("%s: %d, want %d", c.name, c.got, c.want)
		}
	}
}

func rndisMsg(ty uint32, n int, fields map[int]uint32) []byte {
	b := make([]byte, n)
	le.PutUint32(b, ty)
	le.PutUint32(b[4:], uint32(n))
	for off, v := range fields {
		le.PutUint32(b[off:], v)
	}
	return b
}

// linuxTxFrame is a PACKET_MSG as Linux's netvsc_xmit builds it with a
// hash PPI and a checksum PPI: data_offset = 36 + PPI bytes.
func linuxTxFrame() ([]byte, []byte) {
	frame := []byte("\xff\xff\xff\xff\xff\xff\x00\x15\x5d\x01\x02\x03\x08\x06 an ARP request")
	b := rndisMsg(1, 44+32+len(frame), map[int]uint32{
		8: 36 + 32, 12: uint32(len(frame)), 28: 36, 32: 32,
		// hash PPI
		44: 16, 48: 8, 52: 12, 56: 0xDEADBEEF,
		// checksum PPI
		60: 16, 64: 0, 68: 12, 72: ChecksumTxIPv4 | ChecksumTxTCP | 34<<16,
	})
	copy(b[76:], frame)
	return b, frame
}

// TestParseLinuxRNDIS: the messages Linux 6.1's rndis_filter sends,
// written at §7's offsets independently of the package.
func TestParseLinuxRNDIS(t *testing.T) {
	offloadQuery := rndisMsg(4, 28+156, map[int]uint32{8: 4, 12: 0xFC01020D, 16: 156, 20: 20})
	offloadQuery[28], offloadQuery[29], offloadQuery[30], offloadQuery[31] = 0xA7, 3, 156, 0
	filter := rndisMsg(5, 32, map[int]uint32{8: 9, 12: 0x0001010E, 16: 4, 20: 20, 28: 0x0D})
	tx, frame := linuxTxFrame()
	for _, c := range []struct {
		name string
		b    []byte
		want RNDISMessage
	}{
		{"initialize", rndisMsg(2, 24, map[int]uint32{8: 1, 12: 1, 20: 0x4000}), InitializeMsg{1, 1, 0, LinuxMaxTransferSize}},
		{"query_mac", rndisMsg(4, 28, map[int]uint32{8: 3, 12: 0x01010101, 20: 20}), QueryMsg{RequestID: 3, OID: OID802_3PermanentAddress}},
		{"query_offload", offloadQuery, QueryMsg{RequestID: 4, OID: OIDTCPOffloadHardwareCapabilities, Info: offloadQuery[28:]}},
		{"set_filter", filter, SetMsg{RequestID: 9, OID: OIDGenCurrentPacketFilter, Info: filter[28:32]}},
		{"halt", rndisMsg(3, 12, map[int]uint32{8: 12}), HaltMsg{12}},
		{"tx_frame", tx, PacketMsg{Data: frame, PPI: tx[44:76]}},
	} {
		m, n, err := ParseRNDIS(c.b)
		if err != nil || n != len(c.b) {
			t.Errorf("%s: %d %v", c.name, n, err)
			continue
		}
		if !reflect.DeepEqual(m, c.want) {
			t.Errorf("%s: %#v\nwant %#v", c.name, m, c.want)
		}
		if b := m.Append(nil); string(b) != string(c.b) {
			t.Errorf("%s re-encoded\n% x\n% x", c.name, b, c.b)
		}
	}
	p, _, _ := ParseRNDIS(tx)
	pkt := p.(PacketMsg)
	if h, ok := pkt.PPIUint32(PPIHashValue); !ok || h != 0xDEADBEEF {
		t.Errorf("hash %#x %v", h, ok)
	}
	if c, ok := pkt.PPIUint32(PPIChecksum); !ok || c != ChecksumTxIPv4|ChecksumTxTCP|34<<16 {
		t.Errorf("checksum %#x %v", c, ok)
	}
	if _, ok := pkt.PPIUint32(PPIIEEE8021Q); ok {
		t.Error("a VLAN PPI from nowhere")
	}
	if h, _ := ParseNDISObjectHeader(offloadQuery[28:]); h != (NDISObjectHeader{0xA7, 3, 156}) {
		t.Errorf("offload header %+v", h)
	}
}

// TestHostRNDISLayout: the builders' bytes where Linux reads them.
func TestHostRNDISLayout(t *testing.T) {
	want := rndisMsg(0x80000002, 52, map[int]uint32{8: 1, 16: 1, 24: 1, 32: 1, 36: 0x4000, 40: 3})
	if b := (InitializeCmplt{RequestID: 1, Major: 1, DeviceFlags: RNDISDFConnectionless, MaxPacketsPerMessage: 1,
		MaxTransferSize: 0x4000, PacketAlignmentFactor: 3}).Append(nil); string(b) != string(want) {
		t.Errorf("INITIALIZE_CMPLT\n% x\n% x", b, want)
	}
	// A refused query: status, no buffer, info_buf_offset 16 (§7).
	want = rndisMsg(0x80000004, 24, map[int]uint32{8: 7, 12: 0xC00000BB, 20: 16})
	if b := (QueryCmplt{RequestID: 7, Status: RNDISStatusNotSupported}).Append(nil); string(b) != string(want) {
		t.Errorf("refused QUERY_CMPLT\n% x\n% x", b, want)
	}
	want = rndisMsg(0x80000004, 30, map[int]uint32{8: 2, 16: 6, 20: 16})
	copy(want[24:], "\x00\x15\x5d\x01\x02\x03")
	if b := (QueryCmplt{RequestID: 2, Info: want[24:]}).Append(nil); string(b) != string(want) {
		t.Errorf("MAC QUERY_CMPLT\n% x\n% x", b, want)
	}
	want = rndisMsg(0x80000005, 16, map[int]uint32{8: 9})
	if b := (SetCmplt{RequestID: 9}).Append(nil); string(b) != string(want) {
		t.Errorf("SET_CMPLT % x", b)
	}
	want = rndisMsg(7, 20, map[int]uint32{8: 0x4001000C})
	if b := (IndicateStatusMsg{Status: RNDISStatusMediaDisconnect}).Append(nil); string(b) != string(want) {
		t.Errorf("INDICATE_STATUS % x", b)
	}
	want = rndisMsg(7, 24, map[int]uint32{8: 0x40010013, 12: 4, 16: 12, 20: 100000})
	if b := (IndicateStatusMsg{RNDISStatusLinkSpeedChange, le.AppendUint32(nil, 100000)}).Append(nil); string(b) != string(want) {
		t.Errorf("INDICATE_STATUS speed % x", b)
	}
	// The minimal received frame (§6.2): data_offset 36, no PPIs, offset 0.
	frame := []byte("0123456789abcdef")
	want = rndisMsg(1, 44+16, map[int]uint32{8: 36, 12: 16})
	copy(want[44:], frame)
	if b := (PacketMsg{Data: frame}).Append(nil); string(b) != string(want) {
		t.Errorf("PACKET_MSG\n% x\n% x", b, want)
	}
	// With OpenVMM's checksum PPI and a VLAN PPI, each 12 + 4 bytes.
	ppi := AppendPPIUint32(nil, PPIChecksum, ChecksumRxTCPSucceeded|ChecksumRxIPSucceeded)
	ppi = AppendPPIUint32(ppi, PPIIEEE8021Q, VLANInfo(7, 0))
	want = rndisMsg(1, 44+32+16, map[int]uint32{8: 36 + 32, 12: 16, 28: 36, 32: 32,
		44: 16, 48: 0, 52: 12, 56: 0x28, 60: 16, 64: 6, 68: 12, 72: 0x70})
	copy(want[76:], frame)
	b := (PacketMsg{Data: frame, PPI: ppi}).Append(nil)
	if string(b) != string(want) {
		t.Errorf("PACKET_MSG with PPIs\n% x\n% x", b, want)
	}
	var got []PerPacketInfo
	for p := range PPIs(ppi) {
		got = append(got, p)
	}
	if len(got) != 2 || got[1].Type != PPIIEEE8021Q || VLANID(le.Uint32(got[1].Data)) != 7 {
		t.Errorf("%+v", got)
	}
	if h := (NDISObjectHeader{NDISObjectTypeOffload, 1, NDISOffloadSize6_0}).Append(nil); string(h) != "\xa7\x01\x70\x00" {
		t.Errorf("% x", h)
	}
}

func TestRNDISRoundTrips(t *testing.T) {
	for _, m := range rndisSamples() {
		b := m.Append(nil)
		got, n, err := ParseRNDIS(b)
		if err != nil || n != len(b) || !reflect.DeepEqual(got, m) {
			t.Errorf("%v: %#v %d %v", m.RNDISType(), got, n, err)
		}
	}
	// A batch: messages back to back, each padded by its msg_len.
	var batch []byte
	for _, m := range rndisSamples() {
		batch = m.Append(batch)
		le.PutUint32(batch[len(batch)-len(m.Append(nil))+4:], uint32(len(m.Append(nil))+8))
		batch = append(batch, make([]byte, 8)...)
	}
	var types []RNDISType
	for rest := batch; len(rest) > 0; {
		m, n, err := ParseRNDIS(rest)
		if err != nil {
			t.Fatal(err)
		}
		types = append(types, m.RNDISType())
		rest = rest[n:]
	}
	if len(types) != len(rndisSamples()) {
		t.Fatalf("batch: %v", types)
	}
}

func rndisSamples() []RNDISMessage {
	ppi := AppendPPIUint32(nil, PPIHashValue, 1)
	ppi = AppendPPI(ppi, PPIPacketInfoID, true, []byte{1, 3, 0x34, 0x12})
	ppi = AppendPPI(ppi, PPIOriginal, false, nil)
	return []RNDISMessage{
		InitializeMsg{1, 1, 0, 0x4000},
		InitializeCmplt{1, 0, 1, 0, 1, 0, 8, 0xEFFFFFFF, 3, 0, 0},
		HaltMsg{5},
		QueryMsg{RequestID: 2, OID: OIDGenLinkSpeed},
		QueryMsg{RequestID: 2, OID: OIDTCPOffloadHardwareCapabilities, Info: []byte{0xA7, 1, 112, 0}},
		QueryCmplt{RequestID: 2, Status: RNDISStatusSuccess, Info: []byte{1, 2, 3, 4, 5, 6}},
		QueryCmplt{RequestID: 3, Status: RNDISStatusNotSupported},
		SetMsg{RequestID: 4, OID: OIDGenCurrentPacketFilter, Info: []byte{0xD, 0, 0, 0}},
		SetCmplt{4, RNDISStatusSuccess},
		ResetMsg{0},
		ResetCmplt{RNDISStatusSuccess, 1},
		IndicateStatusMsg{Status: RNDISStatusMediaConnect},
		IndicateStatusMsg{RNDISStatusLinkSpeedChange, []byte{1, 2, 3, 4}},
		KeepaliveMsg{6},
		KeepaliveCmplt{6, RNDISStatusSuccess},
		PacketMsg{Data: []byte("frame")},
		PacketMsg{Data: []byte("frame with PPIs"), PPI: ppi, VCHandle: 3},
		PacketMsg{},
	}
}

// TestRNDISMalformed: every bad length or offset is an error naming its
// field.
func TestRNDISMalformed(t *testing.T) {
	tx, _ := linuxTxFrame()
	set := func(b []byte, off int, v uint32) []byte {
		b = slices.Clone(b)
		le.PutUint32(b[off:], v)
		return b
	}
	query := QueryMsg{RequestID: 1, OID: OIDGenFriendlyName, Info: make([]byte, 8)}.Append(nil)
	qc := QueryCmplt{RequestID: 1, Info: make([]byte, 8)}.Append(nil)
	ind := IndicateStatusMsg{RNDISStatusLinkSpeedChange, make([]byte, 4)}.Append(nil)
	for _, c := range []struct {
		name  string
		b     []byte
		field string
	}{
		{"empty", nil, "ndis_msg_type"},
		{"no msg_len", tx[:7], "msg_len"},
		{"msg_len below the header", set(tx, 4, 7), "msg_len"},
		{"msg_len past the bytes", set(tx, 4, uint32(len(tx)+1)), "msg_len"},
		{"msg_len huge", set(tx, 4, 0xFFFFFFFF), "msg_len"},
		{"initialize too short", set(InitializeMsg{}.Append(nil), 4, 20), "max_xfer_size"},
		{"initialize_cmplt too short", set(InitializeCmplt{}.Append(nil), 4, 48), "af_list_size"},
		{"halt too short", set(HaltMsg{}.Append(nil), 4, 8), "req_id"},
		{"query too short", set(query, 4, 24), "dev_vc_handle"},
		{"query buffer past msg_len", set(query, 16, 9), "info_buflen"},
		{"query offset into the fields", set(query, 20, 16), "info_buf_offset"},
		{"query offset past msg_len", set(query, 20, 0xFFFFFFF8), "info_buflen"},
		{"query buffer truncated", set(query, 4, 35), "info_buflen"},
		{"set buffer past msg_len", set(SetMsg{Info: make([]byte, 4)}.Append(nil), 16, 5), "info_buflen"},
		{"query_cmplt offset into the fields", set(qc, 20, 12), "info_buf_offset"},
		{"query_cmplt buffer past msg_len", set(qc, 16, 0x80000000), "info_buflen"},
		{"set_cmplt too short", set(SetCmplt{}.Append(nil), 4, 12), "status"},
		{"reset_cmplt too short", set(ResetCmplt{}.Append(nil), 4, 12), "addressing_reset"},
		{"keepalive_cmplt too short", set(KeepaliveCmplt{}.Append(nil), 4, 12), "status"},
		{"indicate offset into the fields", set(ind, 16, 8), "status_buf_offset"},
		{"indicate buffer past msg_len", set(ind, 12, 5), "status_buflen"},
		{"packet too short", set(tx, 4, 40), "reserved"},
		{"packet data into the header", set(tx, 8, 35), "data_offset"},
		{"packet data past msg_len", set(tx, 12, uint32(len(tx))), "data_len"},
		{"packet data_offset huge", set(tx, 8, 0xFFFFFFFF), "data_len"},
		{"packet oob past msg_len", set(set(tx, 16, 36), 20, 0x1000), "oob_data_len"},
		{"packet oob into the header", set(set(tx, 16, 4), 20, 4), "oob_data_offset"},
		{"packet ppi into the header", set(tx, 28, 20), "per_pkt_info_offset"},
		{"packet ppi past msg_len", set(tx, 32, 0xFFFFFF00), "per_pkt_info_len"},
		{"ppi chain cut in a header", set(tx, 32, 20), "per_pkt_info[1].size"},
		{"ppi size zero (Linux spins)", set(tx, 44, 0), "per_pkt_info[0].size"},
		{"ppi size past the chain", set(tx, 44, 33), "per_pkt_info[0].size"},
		{"ppi second size past the chain", set(tx, 60, 17), "per_pkt_info[1].size"},
		{"ppi offset into its header", set(tx, 52, 11), "per_pkt_info[0].ppi_offset"},
		{"ppi offset past its size", set(tx, 52, 17), "per_pkt_info[0].ppi_offset"},
		{"hash ppi without a u32", set(tx, 52, 14), "per_pkt_info[0].size"},
		{"checksum ppi without a u32", set(tx, 68, 16), "per_pkt_info[1].size"},
	} {
		_, _, err := ParseRNDIS(c.b)
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != c.field || !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v, want an error naming %s", c.name, err, c.field)
		}
	}
	if _, _, err := ParseRNDIS(rndisMsg(9, 8, nil)); !errors.Is(err, ErrUnknownType) {
		t.Errorf("type 9: %v", err)
	}
	if _, err := ParseNDISObjectHeader([]byte{1, 2, 3}); !errors.Is(err, ErrMalformed) {
		t.Error(err)
	}
	// A PPI of a type without a u32 may be empty, and an empty length
	// ignores its offset (Linux sends offset 36, length 0).
	ok := set(set(tx, 52, 16), 48, uint32(PPIOriginal))
	if _, _, err := ParseRNDIS(ok); err != nil {
		t.Errorf("an empty ORIGINAL_PKTINFO: %v", err)
	}
	if _, _, err := ParseRNDIS(set(set(tx, 32, 0), 28, 0xFFFFFFFF)); err != nil {
		t.Errorf("per_pkt_info_len 0 with a wild offset: %v", err)
	}
}
