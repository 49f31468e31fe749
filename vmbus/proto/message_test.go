package proto

import (
	"bytes"
	"encoding/binary"
	"errors"
	"reflect"
	"strings"
	"testing"
)

// at is one field a layout test expects: size bytes at off, little-endian.
type at struct {
	off, size int
	val       uint64
}

var (
	guidA = MustParseGUID("00112233-4455-6677-8899-aabbccddeeff")
	guidB = MustParseGUID("ffeeddcc-bbaa-9988-7766-554433221100")
)

func userData(seed byte) (u [UserDefinedSize]byte) {
	for i := range u {
		u[i] = seed + byte(i)
	}
	return u
}

// layouts pins every message against linux-guest-hyperv-facts.md §4.2:
// its size and each field's offset, with distinct values so that a field
// written at the wrong place shows.
var layouts = []struct {
	m      Message
	size   int
	fields []at
	guids  map[int]GUID   // offset → GUID
	bytes  map[int][]byte // offset → raw bytes (user data)
}{
	{m: OfferChannel{
		InterfaceType: guidA, InterfaceInstance: guidB, ChannelFlags: 0x2010, MMIOMegabytes: 0x1234,
		UserDefined: userData(7), SubChannelIndex: 0x0506, MMIOMegabytesOptional: 0x0708,
		ChildRelID: 0x0a0b0c0d, MonitorID: 0xee, MonitorAllocated: true, DedicatedInterrupt: true, ConnectionID: 0x00102030,
	}, size: 196,
		fields: []at{{0, 4, 1}, {4, 4, 0}, {40, 8, 0}, {48, 8, 0}, {56, 2, 0x2010}, {58, 2, 0x1234}, {180, 2, 0x0506}, {182, 2, 0x0708},
			{184, 4, 0x0a0b0c0d}, {188, 1, 0xee}, {189, 1, 1}, {190, 2, 1}, {192, 4, 0x00102030}},
		guids: map[int]GUID{8: guidA, 24: guidB},
		bytes: map[int][]byte{60: func() []byte { u := userData(7); return u[:] }()}},
	{m: RescindChannelOffer{ChildRelID: 0x11223344}, size: 12, fields: []at{{0, 4, 2}, {8, 4, 0x11223344}}},
	{m: RequestOffers{}, size: 8, fields: []at{{0, 4, 3}, {4, 4, 0}}},
	{m: AllOffersDelivered{}, size: 8, fields: []at{{0, 4, 4}}},
	{m: OpenChannel{ChildRelID: 0x11, OpenID: 0x22, RingBufferGPADL: 0xe1e10, TargetVP: 0x33, DownstreamRingBufferPageOffset: 32, UserData: userData(9)},
		size: 148, fields: []at{{0, 4, 5}, {8, 4, 0x11}, {12, 4, 0x22}, {16, 4, 0xe1e10}, {20, 4, 0x33}, {24, 4, 32}},
		bytes: map[int][]byte{28: func() []byte { u := userData(9); return u[:] }()}},
	{m: OpenChannelResult{ChildRelID: 0x11, OpenID: 0x22, Status: 0x33}, size: 20, fields: []at{{0, 4, 6}, {8, 4, 0x11}, {12, 4, 0x22}, {16, 4, 0x33}}},
	{m: CloseChannel{ChildRelID: 0x44}, size: 12, fields: []at{{0, 4, 7}, {8, 4, 0x44}}},
	{m: GPADLHeader{ChildRelID: 0x11, GPADL: 0xe1e10, RangeBufLen: 24, RangeCount: 1, Data: []byte{0, 0x20, 0, 0, 0, 0, 0, 0, 0xaa, 0xbb, 0, 0, 0, 0, 0, 0}},
		size: 36, fields: []at{{0, 4, 8}, {8, 4, 0x11}, {12, 4, 0xe1e10}, {16, 2, 24}, {18, 2, 1}, {20, 4, 0x2000}, {24, 4, 0}, {28, 8, 0xbbaa}}},
	{m: GPADLBody{MsgNumber: 3, GPADL: 0xe1e10, Data: []byte{1, 2, 3, 4, 5, 6, 7, 8}},
		size: 24, fields: []at{{0, 4, 9}, {8, 4, 3}, {12, 4, 0xe1e10}, {16, 8, 0x0807060504030201}}},
	{m: GPADLCreated{ChildRelID: 0x11, GPADL: 0x22, CreationStatus: 0x33}, size: 20, fields: []at{{0, 4, 10}, {8, 4, 0x11}, {12, 4, 0x22}, {16, 4, 0x33}}},
	{m: GPADLTeardown{ChildRelID: 0x11, GPADL: 0x22}, size: 16, fields: []at{{0, 4, 11}, {8, 4, 0x11}, {12, 4, 0x22}}},
	{m: GPADLTorndown{GPADL: 0x22}, size: 12, fields: []at{{0, 4, 12}, {8, 4, 0x22}}},
	{m: RelIDReleased{ChildRelID: 0x11}, size: 12, fields: []at{{0, 4, 13}, {8, 4, 0x11}}},
	// 5.0 and later: the SINT and VTL where the interrupt page was.
	{m: InitiateContact{VersionRequested: VersionWin10V5_3, TargetVCPU: 0x07, MessageSINT: 2, MessageVTL: 0x01, FeatureFlags: 0xabcd, MonitorPage1: 0x1111000, MonitorPage2: 0x2222000},
		size: 40, fields: []at{{0, 4, 14}, {8, 4, 0x50003}, {12, 4, 7}, {16, 1, 2}, {17, 1, 1}, {18, 2, 0}, {20, 4, 0xabcd}, {24, 8, 0x1111000}, {32, 8, 0x2222000}}},
	// Below 5.0: the interrupt page's GPA.
	{m: InitiateContact{VersionRequested: VersionWin10, TargetVCPU: 0, InterruptPage: 0x3333000, MonitorPage1: 0x1111000, MonitorPage2: 0x2222000},
		size: 40, fields: []at{{8, 4, 0x40000}, {12, 4, 0}, {16, 8, 0x3333000}, {24, 8, 0x1111000}, {32, 8, 0x2222000}}},
	{m: VersionResponse{VersionSupported: true, ConnectionState: ConnectionStateLowResources, MessageConnectionID: 1},
		size: 16, fields: []at{{0, 4, 15}, {8, 1, 1}, {9, 1, 1}, {10, 2, 0}, {12, 4, 1}}},
	{m: Unload{}, size: 8, fields: []at{{0, 4, 16}}},
	{m: UnloadResponse{}, size: 8, fields: []at{{0, 4, 17}}},
	{m: TLConnectRequest{GuestEndpointID: guidA, HostServiceID: guidB}, size: 40, fields: []at{{0, 4, 21}}, guids: map[int]GUID{8: guidA, 24: guidB}},
	{m: ModifyChannel{ChildRelID: 0x11, TargetVP: 0x22}, size: 16, fields: []at{{0, 4, 22}, {8, 4, 0x11}, {12, 4, 0x22}}},
	{m: TLConnectResult{GuestEndpointID: guidA, HostServiceID: guidB, Status: -1}, size: 44, fields: []at{{0, 4, 23}, {40, 4, 0xffffffff}}, guids: map[int]GUID{8: guidA, 24: guidB}},
	{m: ModifyChannelResponse{ChildRelID: 0x11, Status: 0x22}, size: 16, fields: []at{{0, 4, 24}, {8, 4, 0x11}, {12, 4, 0x22}}},
}

func TestMessageLayouts(t *testing.T) {
	seen := map[MessageType]bool{}
	for _, c := range layouts {
		name := c.m.Type().String()
		seen[c.m.Type()] = true
		b, err := Marshal(c.m)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(b) != c.size {
			t.Errorf("%s: %d bytes, want %d", name, len(b), c.size)
			continue
		}
		for _, f := range c.fields {
			var got uint64
			for i := f.size - 1; i >= 0; i-- {
				got = got<<8 | uint64(b[f.off+i])
			}
			if got != f.val {
				t.Errorf("%s: %d bytes at %d = %#x, want %#x", name, f.size, f.off, got, f.val)
			}
		}
		for off, g := range c.guids {
			if !bytes.Equal(b[off:off+16], g[:]) {
				t.Errorf("%s: GUID at %d = % x", name, off, b[off:off+16])
			}
		}
		for off, raw := range c.bytes {
			if !bytes.Equal(b[off:off+len(raw)], raw) {
				t.Errorf("%s: bytes at %d differ", name, off)
			}
		}
		back, err := ParseChannelMessage(b)
		if err != nil {
			t.Errorf("%s: parse: %v", name, err)
		} else if !reflect.DeepEqual(back, c.m) {
			t.Errorf("%s: parsed back as %+v", name, back)
		}
	}
	for typ := range ChannelMsgCount {
		if _, ok := typ.MinPayloadSize(); ok && !seen[typ] {
			t.Errorf("%v has a decoder but no layout test", typ)
		}
	}
}

// The struct sizes exported as constants are the ones pinned above.
func TestSizeConstants(t *testing.T) {
	for _, c := range []struct {
		got, want int
	}{
		{OfferChannelSize, 196}, {RescindChannelOfferSize, 12}, {OpenChannelSize, 148}, {OpenChannelResultSize, 20},
		{CloseChannelSize, 12}, {GPADLHeaderSize, 20}, {GPADLBodySize, 16}, {GPADLCreatedSize, 20},
		{GPADLTeardownSize, 16}, {GPADLTorndownSize, 12}, {RelIDReleasedSize, 12}, {InitiateContactSize, 40},
		{VersionResponseSize, 16}, {TLConnectRequestSize, 40}, {ModifyChannelSize, 16}, {ModifyChannelResponseSize, 16},
		{GPADLHeaderMaxData, 216}, {GPADLBodyMaxData, 224}, {MaxMessageSize, 240},
	} {
		if c.got != c.want {
			t.Errorf("size %d, want %d", c.got, c.want)
		}
	}
}

// Linux 6.1's channel_message_table[].min_payload_len for the messages it
// handles (linux-guest-hyperv-facts.md §4.1): the parser accepts exactly
// what Linux accepts. ALLOFFERS_DELIVERED and UNLOAD_RESPONSE have a
// minimum of 0 in Linux, which reads the type from the SynIC slot whatever
// the size; a parser of the payload needs the type word.
func TestMinimumsAreLinuxs(t *testing.T) {
	linux := map[MessageType]int{
		ChannelMsgOfferChannel: 196, ChannelMsgRescindChannelOffer: 12, ChannelMsgAllOffersDelivered: 0,
		ChannelMsgOpenChannelResult: 20, ChannelMsgGPADLCreated: 20, ChannelMsgGPADLTorndown: 12,
		ChannelMsgVersionResponse: 16, ChannelMsgUnloadResponse: 0, ChannelMsgModifyChannelResponse: 16,
	}
	for typ, min := range linux {
		got, ok := typ.MinPayloadSize()
		if !ok || got != max(min, 4) {
			t.Errorf("%v: minimum %d, Linux's is %d", typ, got, min)
		}
	}
}

func TestParseEnforcesSizes(t *testing.T) {
	for typ := range ChannelMsgCount + 3 {
		min, ok := typ.MinPayloadSize()
		buf := make([]byte, 241)
		binary.LittleEndian.PutUint32(buf, uint32(typ))
		if typ == ChannelMsgGPADLHeader { // a valid header needs a range count
			binary.LittleEndian.PutUint16(buf[18:], 1)
		}
		if !ok {
			if _, err := ParseChannelMessage(buf[:240]); !errors.Is(err, ErrMessage) {
				t.Errorf("%v: no decoder, but parsed (%v)", typ, err)
			}
			continue
		}
		if _, err := ParseChannelMessage(buf[:min]); err != nil {
			t.Errorf("%v: %d bytes refused: %v", typ, min, err)
		}
		if min > 4 {
			if _, err := ParseChannelMessage(buf[:min-1]); !errors.Is(err, ErrMessage) {
				t.Errorf("%v: %d bytes accepted", typ, min-1)
			}
		}
		if _, err := ParseChannelMessage(buf); !errors.Is(err, ErrMessage) {
			t.Errorf("%v: 241 bytes accepted", typ)
		}
	}
	for _, short := range [][]byte{nil, {1}, {1, 0, 0}} {
		if _, err := ParseChannelMessage(short); !errors.Is(err, ErrMessage) {
			t.Errorf("%d bytes accepted", len(short))
		}
	}
	big := make([]byte, 240)
	binary.LittleEndian.PutUint32(big, uint32(ChannelMsgRequestOffers))
	if m, err := ParseChannelMessage(big); err != nil || m != (RequestOffers{}) {
		t.Errorf("a long header-only message: %v %v", m, err)
	}
}

func TestDirections(t *testing.T) {
	for typ := range ChannelMsgCount + 1 {
		_, ok := typ.MinPayloadSize()
		if typ.FromGuest() && typ.FromHost() {
			t.Errorf("%v goes both ways", typ)
		}
		if ok != (typ.FromGuest() || typ.FromHost()) {
			t.Errorf("%v: decoder %v, direction guest %v host %v", typ, ok, typ.FromGuest(), typ.FromHost())
		}
	}
	if !ChannelMsgInitiateContact.FromGuest() || !ChannelMsgOfferChannel.FromHost() {
		t.Fatal("directions")
	}
	if !strings.HasPrefix(ChannelMsg(99).String(), "ChannelMsg(") || ChannelMsgGPADLBody.String() != "ChannelMsgGPADLBody" {
		t.Fatal("names")
	}
}

// ChannelMsg is a short conversion for tests.
func ChannelMsg(n uint32) MessageType { return MessageType(n) }

func TestGPADLMessagesRefuseMalformedData(t *testing.T) {
	for _, m := range []Message{
		GPADLHeader{RangeBufLen: 16, RangeCount: 1, Data: make([]byte, 12)},
		GPADLHeader{RangeBufLen: 8, RangeCount: 1, Data: make([]byte, 16)},
		GPADLHeader{RangeBufLen: 1000, RangeCount: 1, Data: make([]byte, 224)},
		GPADLHeader{RangeBufLen: 16, RangeCount: 0, Data: make([]byte, 16)},
		GPADLHeader{RangeBufLen: 17, RangeCount: 1, Data: make([]byte, 16)},
		GPADLBody{Data: make([]byte, 232)},
		GPADLBody{Data: make([]byte, 9)},
	} {
		if _, err := Marshal(m); !errors.Is(err, ErrMessage) {
			t.Errorf("%+v marshalled", m)
		}
	}
	hdr := func(buflen, count uint16, data int) []byte {
		b := make([]byte, GPADLHeaderSize+data)
		b[0] = byte(ChannelMsgGPADLHeader)
		binary.LittleEndian.PutUint16(b[16:], buflen)
		binary.LittleEndian.PutUint16(b[18:], count)
		return b
	}
	for _, b := range [][]byte{hdr(16, 1, 12), hdr(8, 1, 16), hdr(16, 0, 16), hdr(20, 1, 16)} {
		if _, err := ParseChannelMessage(b); !errors.Is(err, ErrMessage) {
			t.Errorf("GPADL header % x parsed", b[16:20])
		}
	}
	body := make([]byte, GPADLBodySize+12)
	body[0] = byte(ChannelMsgGPADLBody)
	if _, err := ParseChannelMessage(body); !errors.Is(err, ErrMessage) {
		t.Error("a GPADL body with a partial PFN parsed")
	}
}

// A parsed message keeps no reference to the payload it came from (a
// guest's hypercall input page).
func TestParseCopiesVariableData(t *testing.T) {
	b, _ := Marshal(GPADLBody{GPADL: 1, Data: []byte{1, 2, 3, 4, 5, 6, 7, 8}})
	m, err := ParseChannelMessage(b)
	if err != nil {
		t.Fatal(err)
	}
	b[16] = 0xff
	if m.(GPADLBody).Data[0] != 1 {
		t.Fatal("GPADLBody.Data aliases the payload")
	}
}
