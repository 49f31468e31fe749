package protocol

import "fmt"

// Sizes of NVSP messages (netvsc-facts §3).
const (
	// MessageSize is sizeof(struct nvsp_message): the u32 type and the
	// 36-byte union. The host sends every message at this size.
	MessageSize = 40
	// HeaderSize is struct nvsp_message_header: the type.
	HeaderSize = 4
	// RecvBufSectionSize is struct nvsp_1_receive_buffer_section.
	RecvBufSectionSize = 16
	// IndirectionTableSize is VRSS_SEND_TAB_SIZE: the entries Linux
	// requires in SEND_INDIRECTION_TABLE.
	IndirectionTableSize = 16
)

// MessageType is nvsp_message_header.msg_type.
type MessageType uint32

// Message types (hyperv_net.h's anonymous enum: the init messages, then
// NVSP_VERSION_MSG_START = 100 and each version's messages in order).
const (
	TypeNone                    MessageType = 0
	TypeInit                    MessageType = 1   // NVSP_MSG_TYPE_INIT
	TypeInitComplete            MessageType = 2   // NVSP_MSG_TYPE_INIT_COMPLETE
	TypeSendNDISVersion         MessageType = 100 // NVSP_MSG1_TYPE_SEND_NDIS_VER
	TypeSendRecvBuf             MessageType = 101 // NVSP_MSG1_TYPE_SEND_RECV_BUF
	TypeSendRecvBufComplete     MessageType = 102 // NVSP_MSG1_TYPE_SEND_RECV_BUF_COMPLETE
	TypeRevokeRecvBuf           MessageType = 103 // NVSP_MSG1_TYPE_REVOKE_RECV_BUF
	TypeSendSendBuf             MessageType = 104 // NVSP_MSG1_TYPE_SEND_SEND_BUF
	TypeSendSendBufComplete     MessageType = 105 // NVSP_MSG1_TYPE_SEND_SEND_BUF_COMPLETE
	TypeRevokeSendBuf           MessageType = 106 // NVSP_MSG1_TYPE_REVOKE_SEND_BUF
	TypeSendRNDISPacket         MessageType = 107 // NVSP_MSG1_TYPE_SEND_RNDIS_PKT
	TypeSendRNDISPacketComplete MessageType = 108 // NVSP_MSG1_TYPE_SEND_RNDIS_PKT_COMPLETE
	TypeSendNDISConfig          MessageType = 125 // NVSP_MSG2_TYPE_SEND_NDIS_CONFIG
	TypeSendVFAssociation       MessageType = 128 // NVSP_MSG4_TYPE_SEND_VF_ASSOCIATION
	TypeSwitchDataPath          MessageType = 129 // NVSP_MSG4_TYPE_SWITCH_DATA_PATH
	TypeOIDQueryEx              MessageType = 131 // NVSP_MSG5_TYPE_OID_QUERY_EX: Linux 6.1 never sends it
	TypeOIDQueryExComplete      MessageType = 132 // NVSP_MSG5_TYPE_OID_QUERY_EX_COMP
	TypeSubchannel              MessageType = 133 // NVSP_MSG5_TYPE_SUBCHANNEL: request and completion
	TypeSendIndirectionTable    MessageType = 134 // NVSP_MSG5_TYPE_SEND_INDIRECTION_TABLE
)

var typeNames = map[MessageType]string{
	TypeNone:                    "NONE",
	TypeInit:                    "INIT",
	TypeInitComplete:            "INIT_COMPLETE",
	TypeSendNDISVersion:         "SEND_NDIS_VER",
	TypeSendRecvBuf:             "SEND_RECV_BUF",
	TypeSendRecvBufComplete:     "SEND_RECV_BUF_COMPLETE",
	TypeRevokeRecvBuf:           "REVOKE_RECV_BUF",
	TypeSendSendBuf:             "SEND_SEND_BUF",
	TypeSendSendBufComplete:     "SEND_SEND_BUF_COMPLETE",
	TypeRevokeSendBuf:           "REVOKE_SEND_BUF",
	TypeSendRNDISPacket:         "SEND_RNDIS_PKT",
	TypeSendRNDISPacketComplete: "SEND_RNDIS_PKT_COMPLETE",
	TypeSendNDISConfig:          "SEND_NDIS_CONFIG",
	TypeSendVFAssociation:       "SEND_VF_ASSOCIATION",
	TypeSwitchDataPath:          "SWITCH_DATA_PATH",
	TypeOIDQueryEx:              "OID_QUERY_EX",
	TypeOIDQueryExComplete:      "OID_QUERY_EX_COMP",
	TypeSubchannel:              "SUBCHANNEL",
	TypeSendIndirectionTable:    "SEND_INDIRECTION_TABLE",
}

func (t MessageType) String() string {
	if n, ok := typeNames[t]; ok {
		return n
	}
	return fmt.Sprintf("NVSP_TYPE_%d", uint32(t))
}

// Version is an NVSP protocol version as INIT carries it.
type Version uint32

// Protocol versions (NVSP_PROTOCOL_VERSION_*).
const (
	Version1  Version = 0x00000002
	Version2  Version = 0x00030002
	Version4  Version = 0x00040000
	Version5  Version = 0x00050000
	Version6  Version = 0x00060000
	Version61 Version = 0x00060001
	// VersionInvalid is NVSP_INVALID_PROTOCOL_VERSION, which OpenVMM
	// puts in INIT_COMPLETE's negotiated_protocol_ver (Linux ignores it).
	VersionInvalid Version = 0xFFFFFFFF
)

// LinuxVersions are the versions Linux 6.1's netvsc_connect_vsp offers,
// one INIT each (min = max), in this order, stopping at the first the
// host completes with StatusSuccess (netvsc-facts §4 step 1).
var LinuxVersions = [...]Version{Version61, Version6, Version5, Version4, Version2, Version1}

func (v Version) String() string {
	switch v {
	case Version1:
		return "1"
	case Version2:
		return "2"
	case Version4:
		return "4"
	case Version5:
		return "5"
	case Version6:
		return "6"
	case Version61:
		return "6.1"
	}
	return fmt.Sprintf("%#x", uint32(v))
}

// Status is an NVSP completion's status (Linux enum NVSP_STAT_*).
// Success is 1, not 0.
type Status uint32

// NVSP statuses.
const (
	StatusNone                Status = 0
	StatusSuccess             Status = 1
	StatusFail                Status = 2
	StatusProtocolTooNew      Status = 3
	StatusProtocolTooOld      Status = 4
	StatusInvalidRNDISPacket  Status = 5
	StatusBusy                Status = 6
	StatusProtocolUnsupported Status = 7
)

var statusNames = [...]string{
	"NONE", "SUCCESS", "FAIL", "PROTOCOL_TOO_NEW", "PROTOCOL_TOO_OLD",
	"INVALID_RNDIS_PKT", "BUSY", "PROTOCOL_UNSUPPORTED",
}

func (s Status) String() string {
	if int(s) < len(statusNames) {
		return statusNames[s]
	}
	return fmt.Sprintf("NVSP_STAT_%d", uint32(s))
}

// Buffer ids Linux uses (NETVSC_RECEIVE_BUFFER_ID, NETVSC_SEND_BUFFER_ID):
// the receive buffer's id is also the xfer_pageset_id of every
// transfer-page packet the host sends.
const (
	ReceiveBufferID = 0xCAFE
	SendBufferID    = 0
)

// NoSection is SEND_RNDIS_PKT's send_buf_section_index when the send
// buffer is not used (NETVSC_INVALID_INDEX).
const NoSection = 0xFFFFFFFF

// RNDIS channel types in SEND_RNDIS_PKT (RMC_DATA, RMC_CONTROL).
const (
	ChannelData    = 0
	ChannelControl = 1
)

// Capability is SEND_NDIS_CONFIG's struct nvsp_2_vsc_capability.
type Capability uint64

// Capability bits.
const (
	CapVMQ           Capability = 1 << 0
	CapChimney       Capability = 1 << 1
	CapSRIOV         Capability = 1 << 2
	CapIEEE8021Q     Capability = 1 << 3
	CapCorrelationID Capability = 1 << 4
	CapTeaming       Capability = 1 << 5
	CapVSubnetID     Capability = 1 << 6
	CapRSC           Capability = 1 << 7
)

// SubchannelAllocate is NVSP_SUBCHANNEL_ALLOCATE, SUBCHANNEL's only
// operation.
const SubchannelAllocate = 1

// Data paths in SWITCH_DATA_PATH (enum nvsp_vm_datapath).
const (
	DataPathSynthetic = 0
	DataPathVF        = 1
)

// Message is one decoded NVSP message. Append writes it as the sender
// puts it on the wire: MessageSize bytes, the unused union zero.
type Message interface {
	Type() MessageType
	Append(b []byte) []byte
}

// Init is INIT (guest → host): the range of versions the guest accepts.
type Init struct{ MinVersion, MaxVersion Version }

// InitComplete is INIT_COMPLETE (host → guest, a completion).
type InitComplete struct {
	NegotiatedVersion Version // Linux ignores it
	MaxMDLChainLength uint32  // Linux ignores it
	Status            Status
}

// SendNDISVersion is SEND_NDIS_VER (guest → host, no completion): 6.1
// for NVSP ≤ 4, 6.30 above.
type SendNDISVersion struct{ Major, Minor uint32 }

// SendNDISConfig is SEND_NDIS_CONFIG (guest → host for NVSP ≥ 2, no
// completion).
type SendNDISConfig struct {
	MTU          uint32 // the guest's MTU plus the 14-byte Ethernet header
	Reserved     uint32
	Capabilities Capability
}

// SendRecvBuf is SEND_RECV_BUF (guest → host): the receive buffer's GPADL.
type SendRecvBuf struct {
	GPADL uint32
	ID    uint16 // ReceiveBufferID
}

// RecvBufSection is struct nvsp_1_receive_buffer_section: how the host
// carves the receive buffer.
type RecvBufSection struct {
	Offset       uint32 // 0
	SubAllocSize uint32 // the bytes of each sub-allocation (receive section)
	NumSubAllocs uint32
	EndOffset    uint32 // Offset + SubAllocSize*NumSubAllocs
}

// OneSection is the section table Linux expects (netvsc-facts §0.1 #4,
// §5): one section from offset 0 carving a buffer of bufBytes into as many
// whole sub-allocations of subAllocSize as fit (none if subAllocSize is
// 0). Linux needs subAllocSize ≥ 68 and at least one sub-allocation.
func OneSection(bufBytes, subAllocSize uint32) RecvBufSection {
	if subAllocSize == 0 {
		return RecvBufSection{}
	}
	n := bufBytes / subAllocSize
	return RecvBufSection{Offset: 0, SubAllocSize: subAllocSize, NumSubAllocs: n, EndOffset: n * subAllocSize}
}

// SendRecvBufComplete is SEND_RECV_BUF_COMPLETE (host → guest, a
// completion). Linux reads one section and requires NumSections = 1.
type SendRecvBufComplete struct {
	Status      Status
	NumSections uint32
	Section     RecvBufSection
}

// RevokeRecvBuf is REVOKE_RECV_BUF (guest → host, no completion).
type RevokeRecvBuf struct{ ID uint16 }

// SendSendBuf is SEND_SEND_BUF (guest → host): the send buffer's GPADL.
type SendSendBuf struct {
	GPADL uint32
	ID    uint16 // SendBufferID
}

// SendSendBufComplete is SEND_SEND_BUF_COMPLETE (host → guest, a
// completion): the host chooses the send sections' size.
type SendSendBufComplete struct {
	Status      Status
	SectionSize uint32
}

// RevokeSendBuf is REVOKE_SEND_BUF (guest → host, no completion).
type RevokeSendBuf struct{ ID uint16 }

// SendRNDISPacket is SEND_RNDIS_PKT (both ways): RNDIS messages in a send
// section (SectionIndex, SectionSize bytes) and/or the packet's GPA
// ranges or transfer-page ranges.
type SendRNDISPacket struct {
	ChannelType  uint32 // ChannelData or ChannelControl
	SectionIndex uint32 // NoSection when the send buffer is not used
	SectionSize  uint32
}

// SendRNDISPacketComplete is SEND_RNDIS_PKT_COMPLETE (both ways, a
// completion).
type SendRNDISPacketComplete struct{ Status Status }

// SendVFAssociation is SEND_VF_ASSOCIATION (host → guest, NVSP ≥ 4).
type SendVFAssociation struct{ Allocated, Serial uint32 }

// SwitchDataPath is SWITCH_DATA_PATH (guest → host, NVSP ≥ 4, only with
// a VF).
type SwitchDataPath struct{ ActiveDataPath uint32 }

// Subchannel is SUBCHANNEL's request (guest → host, NVSP ≥ 5).
type Subchannel struct {
	Operation uint32 // SubchannelAllocate
	Count     uint32 // sub-channels wanted
}

// SubchannelComplete is SUBCHANNEL's completion (host → guest).
type SubchannelComplete struct {
	Status Status
	Count  uint32 // granted, at most the request's
}

// SendIndirectionTable is SEND_INDIRECTION_TABLE (host → guest in-band,
// NVSP ≥ 5): the channel for each of the guest's send queues.
type SendIndirectionTable struct {
	// Table holds the entries; Linux accepts exactly
	// IndirectionTableSize of them.
	Table []uint32
}

// Byte offsets within the NVSP message (netvsc-facts §3).
const (
	offType     = 0
	offField1   = 4  // the union's first u32
	offField2   = 8  // second
	offField3   = 12 // third
	offSections = 12 // SEND_RECV_BUF_COMPLETE sections[0]

	offIndirectionTable = MessageSize // where Append puts the table
)

func (Init) Type() MessageType                    { return TypeInit }
func (InitComplete) Type() MessageType            { return TypeInitComplete }
func (SendNDISVersion) Type() MessageType         { return TypeSendNDISVersion }
func (SendNDISConfig) Type() MessageType          { return TypeSendNDISConfig }
func (SendRecvBuf) Type() MessageType             { return TypeSendRecvBuf }
func (SendRecvBufComplete) Type() MessageType     { return TypeSendRecvBufComplete }
func (RevokeRecvBuf) Type() MessageType           { return TypeRevokeRecvBuf }
func (SendSendBuf) Type() MessageType             { return TypeSendSendBuf }
func (SendSendBufComplete) Type() MessageType     { return TypeSendSendBufComplete }
func (RevokeSendBuf) Type() MessageType           { return TypeRevokeSendBuf }
func (SendRNDISPacket) Type() MessageType         { return TypeSendRNDISPacket }
func (SendRNDISPacketComplete) Type() MessageType { return TypeSendRNDISPacketComplete }
func (SendVFAssociation) Type() MessageType       { return TypeSendVFAssociation }
func (SwitchDataPath) Type() MessageType          { return TypeSwitchDataPath }
func (Subchannel) Type() MessageType              { return TypeSubchannel }
func (SubchannelComplete) Type() MessageType      { return TypeSubchannel }
func (SendIndirectionTable) Type() MessageType    { return TypeSendIndirectionTable }

// start appends a zeroed MessageSize-byte message of type t.
func start(b []byte, t MessageType) ([]byte, []byte) {
	b, m := grow(b, MessageSize)
	put32(m, offType, uint32(t))
	return b, m
}

func (m Init) Append(b []byte) []byte {
	b, p := start(b, TypeInit)
	put32(p, offField1, uint32(m.MinVersion))
	put32(p, offField2, uint32(m.MaxVersion))
	return b
}

func (m InitComplete) Append(b []byte) []byte {
	b, p := start(b, TypeInitComplete)
	put32(p, offField1, uint32(m.NegotiatedVersion))
	put32(p, offField2, m.MaxMDLChainLength)
	put32(p, offField3, uint32(m.Status))
	return b
}

func (m SendNDISVersion) Append(b []byte) []byte {
	b, p := start(b, TypeSendNDISVersion)
	put32(p, offField1, m.Major)
	put32(p, offField2, m.Minor)
	return b
}

func (m SendNDISConfig) Append(b []byte) []byte {
	b, p := start(b, TypeSendNDISConfig)
	put32(p, offField1, m.MTU)
	put32(p, offField2, m.Reserved)
	put64(p, offField3, uint64(m.Capabilities))
	return b
}

func (m SendRecvBuf) Append(b []byte) []byte {
	b, p := start(b, TypeSendRecvBuf)
	put32(p, offField1, m.GPADL)
	put16(p, offField2, m.ID)
	return b
}

func (m SendRecvBufComplete) Append(b []byte) []byte {
	b, p := start(b, TypeSendRecvBufComplete)
	put32(p, offField1, uint32(m.Status))
	put32(p, offField2, m.NumSections)
	put32(p, offSections, m.Section.Offset)
	put32(p, offSections+4, m.Section.SubAllocSize)
	put32(p, offSections+8, m.Section.NumSubAllocs)
	put32(p, offSections+12, m.Section.EndOffset)
	return b
}

func (m RevokeRecvBuf) Append(b []byte) []byte {
	b, p := start(b, TypeRevokeRecvBuf)
	put16(p, offField1, m.ID)
	return b
}

func (m SendSendBuf) Append(b []byte) []byte {
	b, p := start(b, TypeSendSendBuf)
	put32(p, offField1, m.GPADL)
	put16(p, offField2, m.ID)
	return b
}

func (m SendSendBufComplete) Append(b []byte) []byte {
	b, p := start(b, TypeSendSendBufComplete)
	put32(p, offField1, uint32(m.Status))
	put32(p, offField2, m.SectionSize)
	return b
}

func (m RevokeSendBuf) Append(b []byte) []byte {
	b, p := start(b, TypeRevokeSendBuf)
	put16(p, offField1, m.ID)
	return b
}

func (m SendRNDISPacket) Append(b []byte) []byte {
	b, p := start(b, TypeSendRNDISPacket)
	put32(p, offField1, m.ChannelType)
	put32(p, offField2, m.SectionIndex)
	put32(p, offField3, m.SectionSize)
	return b
}

func (m SendRNDISPacketComplete) Append(b []byte) []byte {
	b, p := start(b, TypeSendRNDISPacketComplete)
	put32(p, offField1, uint32(m.Status))
	return b
}

func (m SendVFAssociation) Append(b []byte) []byte {
	b, p := start(b, TypeSendVFAssociation)
	put32(p, offField1, m.Allocated)
	put32(p, offField2, m.Serial)
	return b
}

func (m SwitchDataPath) Append(b []byte) []byte {
	b, p := start(b, TypeSwitchDataPath)
	put32(p, offField1, m.ActiveDataPath)
	return b
}

func (m Subchannel) Append(b []byte) []byte {
	b, p := start(b, TypeSubchannel)
	put32(p, offField1, m.Operation)
	put32(p, offField2, m.Count)
	return b
}

func (m SubchannelComplete) Append(b []byte) []byte {
	b, p := start(b, TypeSubchannel)
	put32(p, offField1, uint32(m.Status))
	put32(p, offField2, m.Count)
	return b
}

// Append writes the 40-byte message with the table after it: count at 4,
// offset 40 at 8. Linux reads the table at the offset for NVSP 6.1 and at
// 40 regardless of the offset for older versions (netvsc_send_table), so
// 40 serves both.
func (m SendIndirectionTable) Append(b []byte) []byte {
	b, p := start(b, TypeSendIndirectionTable)
	put32(p, offField1, uint32(len(m.Table)))
	put32(p, offField2, offIndirectionTable)
	b, t := grow(b, 4*len(m.Table))
	for i, c := range m.Table {
		put32(t, 4*i, c)
	}
	return b
}

// ParseType reads a message's type: it needs the 4-byte header.
func ParseType(b []byte) (MessageType, error) {
	r := reader{b: b, msg: "nvsp"}
	t := MessageType(r.u32(offType, "msg_type"))
	return t, r.err
}

// ParseFromGuest decodes an NVSP message a guest sent (the in-band
// payload of a VMBus packet, or the NVSP part of a GPA-direct one): INIT,
// SEND_NDIS_VER, SEND_NDIS_CONFIG, SEND_RECV_BUF, REVOKE_RECV_BUF,
// SEND_SEND_BUF, REVOKE_SEND_BUF, SEND_RNDIS_PKT, SEND_RNDIS_PKT_COMPLETE,
// SWITCH_DATA_PATH, SUBCHANNEL (a request). The payload must hold every
// field of its type; bytes after them are ignored.
func ParseFromGuest(b []byte) (Message, error) {
	t, err := ParseType(b)
	if err != nil {
		return nil, err
	}
	r := reader{b: b, msg: "nvsp " + t.String()}
	var m Message
	switch t {
	case TypeInit:
		m = Init{Version(r.u32(offField1, "min_protocol_ver")), Version(r.u32(offField2, "max_protocol_ver"))}
	case TypeSendNDISVersion:
		m = SendNDISVersion{r.u32(offField1, "ndis_major_ver"), r.u32(offField2, "ndis_minor_ver")}
	case TypeSendNDISConfig:
		m = SendNDISConfig{r.u32(offField1, "mtu"), r.u32(offField2, "reserved"), Capability(r.u64(offField3, "capability"))}
	case TypeSendRecvBuf:
		m = SendRecvBuf{r.u32(offField1, "gpadl_handle"), r.u16(offField2, "id")}
	case TypeRevokeRecvBuf:
		m = RevokeRecvBuf{r.u16(offField1, "id")}
	case TypeSendSendBuf:
		m = SendSendBuf{r.u32(offField1, "gpadl_handle"), r.u16(offField2, "id")}
	case TypeRevokeSendBuf:
		m = RevokeSendBuf{r.u16(offField1, "id")}
	case TypeSendRNDISPacket:
		m = parseSendRNDISPacket(&r)
	case TypeSendRNDISPacketComplete:
		m = SendRNDISPacketComplete{Status(r.u32(offField1, "status"))}
	case TypeSwitchDataPath:
		m = SwitchDataPath{r.u32(offField1, "active_datapath")}
	case TypeSubchannel:
		m = Subchannel{r.u32(offField1, "op"), r.u32(offField2, "num_subchannels")}
	default:
		return nil, fmt.Errorf("nvsp from a guest: type %v: %w", t, ErrUnknownType)
	}
	if r.err != nil {
		return nil, r.err
	}
	return m, nil
}

// ParseFromHost decodes an NVSP message a host sent: the completions
// INIT_COMPLETE, SEND_RECV_BUF_COMPLETE, SEND_SEND_BUF_COMPLETE,
// SEND_RNDIS_PKT_COMPLETE and SUBCHANNEL's, SEND_RNDIS_PKT (a
// transfer-page packet's payload), and the in-band SEND_VF_ASSOCIATION
// and SEND_INDIRECTION_TABLE. The table must lie inside b.
func ParseFromHost(b []byte) (Message, error) {
	t, err := ParseType(b)
	if err != nil {
		return nil, err
	}
	r := reader{b: b, msg: "nvsp " + t.String()}
	var m Message
	switch t {
	case TypeInitComplete:
		m = InitComplete{Version(r.u32(offField1, "negotiated_protocol_ver")), r.u32(offField2, "max_mdl_chain_len"), Status(r.u32(offField3, "status"))}
	case TypeSendRecvBufComplete:
		m = SendRecvBufComplete{
			Status:      Status(r.u32(offField1, "status")),
			NumSections: r.u32(offField2, "num_sections"),
			Section: RecvBufSection{
				Offset:       r.u32(offSections, "sections[0].offset"),
				SubAllocSize: r.u32(offSections+4, "sections[0].sub_alloc_size"),
				NumSubAllocs: r.u32(offSections+8, "sections[0].num_sub_allocs"),
				EndOffset:    r.u32(offSections+12, "sections[0].end_offset"),
			},
		}
	case TypeSendSendBufComplete:
		m = SendSendBufComplete{Status(r.u32(offField1, "status")), r.u32(offField2, "section_size")}
	case TypeSendRNDISPacket:
		m = parseSendRNDISPacket(&r)
	case TypeSendRNDISPacketComplete:
		m = SendRNDISPacketComplete{Status(r.u32(offField1, "status"))}
	case TypeSendVFAssociation:
		m = SendVFAssociation{r.u32(offField1, "allocated"), r.u32(offField2, "serial")}
	case TypeSubchannel:
		m = SubchannelComplete{Status(r.u32(offField1, "status")), r.u32(offField2, "num_subchannels")}
	case TypeSendIndirectionTable:
		m = parseIndirectionTable(&r)
	default:
		return nil, fmt.Errorf("nvsp from a host: type %v: %w", t, ErrUnknownType)
	}
	if r.err != nil {
		return nil, r.err
	}
	return m, nil
}

func parseSendRNDISPacket(r *reader) Message {
	return SendRNDISPacket{
		ChannelType:  r.u32(offField1, "channel_type"),
		SectionIndex: r.u32(offField2, "send_buf_section_index"),
		SectionSize:  r.u32(offField3, "send_buf_section_size"),
	}
}

func parseIndirectionTable(r *reader) Message {
	count := r.u32(offField1, "count")
	offset := r.u32(offField2, "offset")
	if r.err != nil {
		return nil
	}
	n := uint64(len(r.b))
	switch {
	case uint64(offset) < offField3:
		r.fail("offset", "%d points into the message's own fields (before %d)", offset, offField3)
	case uint64(offset) > n:
		r.fail("offset", "%d is past the message's %d bytes", offset, n)
	case uint64(offset)+4*uint64(count) > n:
		r.fail("count", "%d entries at offset %d need %d bytes, the message has %d", count, offset, uint64(offset)+4*uint64(count), n)
	}
	if r.err != nil {
		return nil
	}
	m := SendIndirectionTable{Table: make([]uint32, count)}
	for i := range m.Table {
		m.Table[i] = r.u32(int(offset)+4*i, "table")
	}
	return m
}

// ParseSendRNDISPacket decodes a SEND_RNDIS_PKT (either direction)
// without going through Message: the data path's parser, which does not
// allocate when the message is well formed.
func ParseSendRNDISPacket(b []byte) (SendRNDISPacket, error) {
	r := reader{b: b, msg: "nvsp SEND_RNDIS_PKT"}
	if t := MessageType(r.u32(offType, "msg_type")); r.err == nil && t != TypeSendRNDISPacket {
		r.fail("msg_type", "%v, not SEND_RNDIS_PKT", t)
	}
	m := SendRNDISPacket{
		ChannelType:  r.u32(offField1, "channel_type"),
		SectionIndex: r.u32(offField2, "send_buf_section_index"),
		SectionSize:  r.u32(offField3, "send_buf_section_size"),
	}
	if r.err != nil {
		return SendRNDISPacket{}, r.err
	}
	return m, nil
}
