package protocol

import "fmt"

// RNDISType is an RNDIS message's ndis_msg_type.
type RNDISType uint32

// RNDIS message types (REMOTE_NDIS_*; Linux's rndis.h RNDIS_MSG_*). A
// completion is its request's type with bit 31 set.
const (
	RNDISPacketMsg         RNDISType = 0x0000_0001
	RNDISInitializeMsg     RNDISType = 0x0000_0002
	RNDISHaltMsg           RNDISType = 0x0000_0003
	RNDISQueryMsg          RNDISType = 0x0000_0004
	RNDISSetMsg            RNDISType = 0x0000_0005
	RNDISResetMsg          RNDISType = 0x0000_0006
	RNDISIndicateStatusMsg RNDISType = 0x0000_0007
	RNDISKeepaliveMsg      RNDISType = 0x0000_0008
	RNDISInitializeCmplt   RNDISType = 0x8000_0002
	RNDISQueryCmplt        RNDISType = 0x8000_0004
	RNDISSetCmplt          RNDISType = 0x8000_0005
	RNDISResetCmplt        RNDISType = 0x8000_0006
	RNDISKeepaliveCmplt    RNDISType = 0x8000_0008

	// RNDISCompletion is the bit that makes a request's type its
	// completion's.
	RNDISCompletion RNDISType = 0x8000_0000
)

var rndisNames = map[RNDISType]string{
	RNDISPacketMsg:         "PACKET_MSG",
	RNDISInitializeMsg:     "INITIALIZE_MSG",
	RNDISHaltMsg:           "HALT_MSG",
	RNDISQueryMsg:          "QUERY_MSG",
	RNDISSetMsg:            "SET_MSG",
	RNDISResetMsg:          "RESET_MSG",
	RNDISIndicateStatusMsg: "INDICATE_STATUS_MSG",
	RNDISKeepaliveMsg:      "KEEPALIVE_MSG",
	RNDISInitializeCmplt:   "INITIALIZE_CMPLT",
	RNDISQueryCmplt:        "QUERY_CMPLT",
	RNDISSetCmplt:          "SET_CMPLT",
	RNDISResetCmplt:        "RESET_CMPLT",
	RNDISKeepaliveCmplt:    "KEEPALIVE_CMPLT",
}

// String is the type's name without the REMOTE_NDIS_ prefix.
func (t RNDISType) String() string {
	if n, ok := rndisNames[t]; ok {
		return n
	}
	return fmt.Sprintf("RNDIS_TYPE_%#08x", uint32(t))
}

// RNDISStatus is an RNDIS completion's or indication's status.
type RNDISStatus uint32

// RNDIS statuses (RNDIS_STATUS_*) the VSP answers or indicates with.
const (
	RNDISStatusSuccess         RNDISStatus = 0x0000_0000
	RNDISStatusBufferOverflow  RNDISStatus = 0x8000_0005
	RNDISStatusFailure         RNDISStatus = 0xC000_0001
	RNDISStatusNotSupported    RNDISStatus = 0xC000_00BB
	RNDISStatusInvalidLength   RNDISStatus = 0xC001_0014
	RNDISStatusInvalidData     RNDISStatus = 0xC001_0015
	RNDISStatusMediaConnect    RNDISStatus = 0x4001_000B // indication: link up
	RNDISStatusMediaDisconnect RNDISStatus = 0x4001_000C // indication: link down
	RNDISStatusLinkSpeedChange RNDISStatus = 0x4001_0013 // indication: a u32 speed follows
	RNDISStatusNetworkChange   RNDISStatus = 0x4001_0018 // indication: Linux takes the link down and up
)

var rndisStatusNames = map[RNDISStatus]string{
	RNDISStatusSuccess:         "SUCCESS",
	RNDISStatusBufferOverflow:  "BUFFER_OVERFLOW",
	RNDISStatusFailure:         "FAILURE",
	RNDISStatusNotSupported:    "NOT_SUPPORTED",
	RNDISStatusInvalidLength:   "INVALID_LENGTH",
	RNDISStatusInvalidData:     "INVALID_DATA",
	RNDISStatusMediaConnect:    "MEDIA_CONNECT",
	RNDISStatusMediaDisconnect: "MEDIA_DISCONNECT",
	RNDISStatusLinkSpeedChange: "LINK_SPEED_CHANGE",
	RNDISStatusNetworkChange:   "NETWORK_CHANGE",
}

func (s RNDISStatus) String() string {
	if n, ok := rndisStatusNames[s]; ok {
		return n
	}
	return fmt.Sprintf("RNDIS_STATUS_%#08x", uint32(s))
}

// Sizes of RNDIS messages without their variable parts (netvsc-facts §7).
const (
	RNDISHeaderSize          = 8  // ndis_msg_type, msg_len
	InitializeMsgSize        = 24 // RNDIS_MESSAGE_SIZE(struct rndis_initialize_request)
	InitializeCmpltSize      = 52
	HaltMsgSize              = 12
	QueryMsgSize             = 28 // then the information buffer
	QueryCmpltSize           = 24 // then the information buffer
	SetMsgSize               = 28 // then the information buffer
	SetCmpltSize             = 16
	ResetMsgSize             = 12
	ResetCmpltSize           = 16
	IndicateStatusSize       = 20 // then the status buffer
	KeepaliveMsgSize         = 12
	KeepaliveCmpltSize       = 16
	PacketMsgSize            = 44 // the header and struct rndis_packet: then PPIs and data
	PacketSize               = 36 // struct rndis_packet, which the packet's offsets count from
	PPIHeaderSize            = 12 // struct rndis_per_packet_info
	rndisOffsetBase          = RNDISHeaderSize
	queryInfoMinOffset       = QueryMsgSize - rndisOffsetBase
	queryCmpltInfoMinOffset  = QueryCmpltSize - rndisOffsetBase
	indicateStatusMinOffset  = IndicateStatusSize - rndisOffsetBase
	packetContentsMinOffsets = PacketSize
)

// RNDIS version and device facts in INITIALIZE (RNDIS_MAJOR_VERSION,
// RNDIS_DF_CONNECTIONLESS, RNDIS_MEDIUM_802_3).
const (
	RNDISMajorVersion     = 1
	RNDISMinorVersion     = 0
	RNDISDFConnectionless = 0x1
	RNDISMedium802_3      = 0
	LinuxMaxTransferSize  = 0x4000 // INITIALIZE_MSG.max_xfer_size from Linux
	// LinuxMaxRNDISReplyBytes is the longest completion Linux's
	// rndis_filter takes (longer ones it treats as a buffer overflow).
	LinuxMaxRNDISReplyBytes = 52 + 4096
)

// Byte offsets within RNDIS messages, from the message's start
// (netvsc-facts §7). "rel8" offsets in the messages count from byte 8.
const (
	offRNDISType = 0
	offRNDISLen  = 4
	offRequestID = 8 // every request and completion but PACKET_MSG and INDICATE_STATUS

	// INITIALIZE_MSG
	offInitMajor       = 12
	offInitMinor       = 16
	offInitMaxTransfer = 20
	// INITIALIZE_CMPLT
	offInitCStatus       = 12
	offInitCMajor        = 16
	offInitCMinor        = 20
	offInitCDeviceFlags  = 24
	offInitCMedium       = 28
	offInitCMaxPackets   = 32
	offInitCMaxTransfer  = 36
	offInitCAlignment    = 40
	offInitCAFListOffset = 44
	offInitCAFListSize   = 48
	offQueryOID          = 12 // QUERY_MSG and SET_MSG
	offQueryInfoLen      = 16
	offQueryInfoOffset   = 20
	offQueryDevVCHandle  = 24
	offCmpltStatus       = 12 // QUERY/SET/KEEPALIVE_CMPLT
	offQueryCInfoLen     = 16
	offQueryCInfoOffset  = 20
	offResetReserved     = 8
	offResetCStatus      = 8
	offResetCAddressing  = 12
	offIndicateStatus    = 8
	offIndicateBufLen    = 12
	offIndicateBufOffset = 16
	offPacketDataOffset  = 8
	offPacketDataLen     = 12
	offPacketOOBOffset   = 16
	offPacketOOBLen      = 20
	offPacketOOBCount    = 24
	offPacketPPIOffset   = 28
	offPacketPPILen      = 32
	offPacketVCHandle    = 36
	offPacketReserved    = 40
	offPPISize           = 0
	offPPIType           = 4
	offPPIOffset         = 8
	ppiInternal          = 1 << 31
)

// RNDISMessage is one decoded RNDIS message. Append writes it with its
// msg_len computed; variable parts follow the fixed fields directly.
type RNDISMessage interface {
	RNDISType() RNDISType
	Append(b []byte) []byte
}

// InitializeMsg is REMOTE_NDIS_INITIALIZE_MSG (guest → host).
type InitializeMsg struct {
	RequestID       uint32
	Major, Minor    uint32 // 1.0
	MaxTransferSize uint32 // Linux: LinuxMaxTransferSize
}

// InitializeCmplt is REMOTE_NDIS_INITIALIZE_CMPLT (host → guest).
type InitializeCmplt struct {
	RequestID    uint32
	Status       RNDISStatus
	Major, Minor uint32 // 1.0
	DeviceFlags  uint32 // RNDISDFConnectionless
	Medium       uint32 // RNDISMedium802_3
	// MaxPacketsPerMessage bounds how many PACKET_MSGs the guest batches
	// in one SEND_RNDIS_PKT (1 turns batching off).
	MaxPacketsPerMessage uint32
	MaxTransferSize      uint32
	// PacketAlignmentFactor is log2 of the alignment of batched packets.
	PacketAlignmentFactor uint32
	AFListOffset          uint32 // 0: no address families (connectionless)
	AFListSize            uint32
}

// HaltMsg is REMOTE_NDIS_HALT_MSG (guest → host): no RNDIS reply.
type HaltMsg struct{ RequestID uint32 }

// QueryMsg is REMOTE_NDIS_QUERY_MSG (guest → host).
type QueryMsg struct {
	RequestID   uint32
	OID         OID
	DevVCHandle uint32
	// Info is the information buffer (Linux sends one for
	// OID_TCP_OFFLOAD_HARDWARE_CAPABILITIES): it aliases the input.
	Info []byte
}

// QueryCmplt is REMOTE_NDIS_QUERY_CMPLT (host → guest). Linux reads the
// lengths, not the status: a refused query is a status and no Info.
type QueryCmplt struct {
	RequestID uint32
	Status    RNDISStatus
	Info      []byte
}

// SetMsg is REMOTE_NDIS_SET_MSG (guest → host).
type SetMsg struct {
	RequestID   uint32
	OID         OID
	DevVCHandle uint32
	Info        []byte // aliases the input
}

// SetCmplt is REMOTE_NDIS_SET_CMPLT (host → guest).
type SetCmplt struct {
	RequestID uint32
	Status    RNDISStatus
}

// ResetMsg is REMOTE_NDIS_RESET_MSG. Linux 6.1 never sends it.
type ResetMsg struct{ Reserved uint32 }

// ResetCmplt is REMOTE_NDIS_RESET_CMPLT.
type ResetCmplt struct {
	Status          RNDISStatus
	AddressingReset uint32
}

// IndicateStatusMsg is REMOTE_NDIS_INDICATE_STATUS_MSG (host → guest):
// a link change, with a status buffer for LINK_SPEED_CHANGE.
type IndicateStatusMsg struct {
	Status RNDISStatus
	Buffer []byte
}

// KeepaliveMsg is REMOTE_NDIS_KEEPALIVE_MSG. Linux 6.1 neither sends it
// nor handles it: a host must not send it to Linux.
type KeepaliveMsg struct{ RequestID uint32 }

// KeepaliveCmplt is REMOTE_NDIS_KEEPALIVE_CMPLT.
type KeepaliveCmplt struct {
	RequestID uint32
	Status    RNDISStatus
}

// PacketMsg is REMOTE_NDIS_PACKET_MSG: one Ethernet frame and its
// per-packet information.
type PacketMsg struct {
	// Data is the frame (data_offset, data_len); it aliases the input.
	Data []byte
	// PPI is the per-packet-info chain (per_pkt_info_offset,
	// per_pkt_info_len): records built with AppendPPI, or, parsed, a chain
	// every record of which was checked. Empty: no PPIs, and Append
	// writes per_pkt_info_offset 0, as Linux expects then.
	PPI []byte
	// The out-of-band fields Linux and OpenVMM leave zero; ParseRNDIS
	// checks that a non-empty OOB area lies inside the message.
	OOBDataOffset, OOBDataLength, NumOOBDataElements uint32
	VCHandle                                         uint32
}

func (InitializeMsg) RNDISType() RNDISType     { return RNDISInitializeMsg }
func (InitializeCmplt) RNDISType() RNDISType   { return RNDISInitializeCmplt }
func (HaltMsg) RNDISType() RNDISType           { return RNDISHaltMsg }
func (QueryMsg) RNDISType() RNDISType          { return RNDISQueryMsg }
func (QueryCmplt) RNDISType() RNDISType        { return RNDISQueryCmplt }
func (SetMsg) RNDISType() RNDISType            { return RNDISSetMsg }
func (SetCmplt) RNDISType() RNDISType          { return RNDISSetCmplt }
func (ResetMsg) RNDISType() RNDISType          { return RNDISResetMsg }
func (ResetCmplt) RNDISType() RNDISType        { return RNDISResetCmplt }
func (IndicateStatusMsg) RNDISType() RNDISType { return RNDISIndicateStatusMsg }
func (KeepaliveMsg) RNDISType() RNDISType      { return RNDISKeepaliveMsg }
func (KeepaliveCmplt) RNDISType() RNDISType    { return RNDISKeepaliveCmplt }
func (PacketMsg) RNDISType() RNDISType         { return RNDISPacketMsg }

// rstart appends a zeroed RNDIS message of type t and n bytes, msg_len n.
func rstart(b []byte, t RNDISType, n int) ([]byte, []byte) {
	b, m := grow(b, n)
	put32(m, offRNDISType, uint32(t))
	put32(m, offRNDISLen, uint32(n))
	return b, m
}

func (m InitializeMsg) Append(b []byte) []byte {
	b, p := rstart(b, RNDISInitializeMsg, InitializeMsgSize)
	put32(p, offRequestID, m.RequestID)
	put32(p, offInitMajor, m.Major)
	put32(p, offInitMinor, m.Minor)
	put32(p, offInitMaxTransfer, m.MaxTransferSize)
	return b
}

func (m InitializeCmplt) Append(b []byte) []byte {
	b, p := rstart(b, RNDISInitializeCmplt, InitializeCmpltSize)
	put32(p, offRequestID, m.RequestID)
	put32(p, offInitCStatus, uint32(m.Status))
	put32(p, offInitCMajor, m.Major)
	put32(p, offInitCMinor, m.Minor)
	put32(p, offInitCDeviceFlags, m.DeviceFlags)
	put32(p, offInitCMedium, m.Medium)
	put32(p, offInitCMaxPackets, m.MaxPacketsPerMessage)
	put32(p, offInitCMaxTransfer, m.MaxTransferSize)
	put32(p, offInitCAlignment, m.PacketAlignmentFactor)
	put32(p, offInitCAFListOffset, m.AFListOffset)
	put32(p, offInitCAFListSize, m.AFListSize)
	return b
}

func (m HaltMsg) Append(b []byte) []byte {
	b, p := rstart(b, RNDISHaltMsg, HaltMsgSize)
	put32(p, offRequestID, m.RequestID)
	return b
}

// appendRequest writes a QUERY_MSG or SET_MSG: the buffer right after the
// fixed fields, at rel8 offset 20 as Linux puts it.
func appendRequest(b []byte, t RNDISType, id uint32, oid OID, vc uint32, info []byte) []byte {
	b, p := rstart(b, t, QueryMsgSize+len(info))
	put32(p, offRequestID, id)
	put32(p, offQueryOID, uint32(oid))
	put32(p, offQueryInfoLen, uint32(len(info)))
	put32(p, offQueryInfoOffset, queryInfoMinOffset)
	put32(p, offQueryDevVCHandle, vc)
	copy(p[QueryMsgSize:], info)
	return b
}

func (m QueryMsg) Append(b []byte) []byte {
	return appendRequest(b, RNDISQueryMsg, m.RequestID, m.OID, m.DevVCHandle, m.Info)
}

func (m SetMsg) Append(b []byte) []byte {
	return appendRequest(b, RNDISSetMsg, m.RequestID, m.OID, m.DevVCHandle, m.Info)
}

// Append writes the completion with info_buf_offset 16 whether or not
// there is Info: Linux refuses an offset below 16 even with no buffer.
func (m QueryCmplt) Append(b []byte) []byte {
	b, p := rstart(b, RNDISQueryCmplt, QueryCmpltSize+len(m.Info))
	put32(p, offRequestID, m.RequestID)
	put32(p, offCmpltStatus, uint32(m.Status))
	put32(p, offQueryCInfoLen, uint32(len(m.Info)))
	put32(p, offQueryCInfoOffset, queryCmpltInfoMinOffset)
	copy(p[QueryCmpltSize:], m.Info)
	return b
}

func (m SetCmplt) Append(b []byte) []byte {
	b, p := rstart(b, RNDISSetCmplt, SetCmpltSize)
	put32(p, offRequestID, m.RequestID)
	put32(p, offCmpltStatus, uint32(m.Status))
	return b
}

func (m ResetMsg) Append(b []byte) []byte {
	b, p := rstart(b, RNDISResetMsg, ResetMsgSize)
	put32(p, offResetReserved, m.Reserved)
	return b
}

func (m ResetCmplt) Append(b []byte) []byte {
	b, p := rstart(b, RNDISResetCmplt, ResetCmpltSize)
	put32(p, offResetCStatus, uint32(m.Status))
	put32(p, offResetCAddressing, m.AddressingReset)
	return b
}

// Append writes status_buf_offset 0 when there is no Buffer, else the
// rel8 offset of the bytes right after the fixed fields.
func (m IndicateStatusMsg) Append(b []byte) []byte {
	b, p := rstart(b, RNDISIndicateStatusMsg, IndicateStatusSize+len(m.Buffer))
	put32(p, offIndicateStatus, uint32(m.Status))
	put32(p, offIndicateBufLen, uint32(len(m.Buffer)))
	if len(m.Buffer) > 0 {
		put32(p, offIndicateBufOffset, indicateStatusMinOffset)
	}
	copy(p[IndicateStatusSize:], m.Buffer)
	return b
}

func (m KeepaliveMsg) Append(b []byte) []byte {
	b, p := rstart(b, RNDISKeepaliveMsg, KeepaliveMsgSize)
	put32(p, offRequestID, m.RequestID)
	return b
}

func (m KeepaliveCmplt) Append(b []byte) []byte {
	b, p := rstart(b, RNDISKeepaliveCmplt, KeepaliveCmpltSize)
	put32(p, offRequestID, m.RequestID)
	put32(p, offCmpltStatus, uint32(m.Status))
	return b
}

// Append writes the 44-byte header, the PPI chain right after it
// (per_pkt_info_offset 36) and the frame after that (data_offset 36 +
// the chain's length): the layout Linux and OpenVMM both write. The OOB
// fields are written as they are.
func (m PacketMsg) Append(b []byte) []byte {
	n := PacketMsgSize + len(m.PPI) + len(m.Data)
	b, p := rstart(b, RNDISPacketMsg, n)
	put32(p, offPacketDataOffset, uint32(PacketSize+len(m.PPI)))
	put32(p, offPacketDataLen, uint32(len(m.Data)))
	put32(p, offPacketOOBOffset, m.OOBDataOffset)
	put32(p, offPacketOOBLen, m.OOBDataLength)
	put32(p, offPacketOOBCount, m.NumOOBDataElements)
	if len(m.PPI) > 0 {
		put32(p, offPacketPPIOffset, PacketSize)
	}
	put32(p, offPacketPPILen, uint32(len(m.PPI)))
	put32(p, offPacketVCHandle, m.VCHandle)
	copy(p[PacketMsgSize:], m.PPI)
	copy(p[PacketMsgSize+len(m.PPI):], m.Data)
	return b
}

// RNDISHeader is the 8 bytes every RNDIS message starts with.
type RNDISHeader struct {
	Type   RNDISType
	Length uint32 // msg_len: the whole message, header included
}

// ParseRNDISHeader reads the header of the message at b's start and
// checks msg_len: at least the header, at most len(b).
func ParseRNDISHeader(b []byte) (RNDISHeader, error) {
	r := reader{b: b, msg: "rndis"}
	h := RNDISHeader{RNDISType(r.u32(offRNDISType, "ndis_msg_type")), r.u32(offRNDISLen, "msg_len")}
	if r.err != nil {
		return h, r.err
	}
	r.msg = "rndis " + h.Type.String()
	if h.Length < RNDISHeaderSize {
		r.fail("msg_len", "%d is shorter than the %d-byte header", h.Length, RNDISHeaderSize)
	} else if uint64(h.Length) > uint64(len(b)) {
		r.fail("msg_len", "%d but only %d bytes were sent", h.Length, len(b))
	}
	return h, r.err
}

// ParseRNDIS decodes the RNDIS message at b's start and returns how many
// bytes it took (its msg_len, at least RNDISHeaderSize): the next message
// of a batch starts there. Every offset and length in the message is
// checked against msg_len, and a PACKET_MSG's PPI chain record by record;
// bytes beyond msg_len are not looked at.
func ParseRNDIS(b []byte) (RNDISMessage, int, error) {
	h, err := ParseRNDISHeader(b)
	if err != nil {
		return nil, 0, err
	}
	r := reader{b: b[:h.Length], msg: "rndis " + h.Type.String()}
	var m RNDISMessage
	switch h.Type {
	case RNDISInitializeMsg:
		m = InitializeMsg{
			RequestID:       r.u32(offRequestID, "req_id"),
			Major:           r.u32(offInitMajor, "major_ver"),
			Minor:           r.u32(offInitMinor, "minor_ver"),
			MaxTransferSize: r.u32(offInitMaxTransfer, "max_xfer_size"),
		}
	case RNDISInitializeCmplt:
		m = InitializeCmplt{
			RequestID:             r.u32(offRequestID, "req_id"),
			Status:                RNDISStatus(r.u32(offInitCStatus, "status")),
			Major:                 r.u32(offInitCMajor, "major_ver"),
			Minor:                 r.u32(offInitCMinor, "minor_ver"),
			DeviceFlags:           r.u32(offInitCDeviceFlags, "dev_flags"),
			Medium:                r.u32(offInitCMedium, "medium"),
			MaxPacketsPerMessage:  r.u32(offInitCMaxPackets, "max_pkt_per_msg"),
			MaxTransferSize:       r.u32(offInitCMaxTransfer, "max_xfer_size"),
			PacketAlignmentFactor: r.u32(offInitCAlignment, "pkt_alignment_factor"),
			AFListOffset:          r.u32(offInitCAFListOffset, "af_list_offset"),
			AFListSize:            r.u32(offInitCAFListSize, "af_list_size"),
		}
	case RNDISHaltMsg:
		m = HaltMsg{r.u32(offRequestID, "req_id")}
	case RNDISQueryMsg, RNDISSetMsg:
		id := r.u32(offRequestID, "req_id")
		oid := OID(r.u32(offQueryOID, "oid"))
		vc := r.u32(offQueryDevVCHandle, "dev_vc_handle")
		info := r.region(offQueryInfoOffset, offQueryInfoLen, "info_buf_offset", "info_buflen", queryInfoMinOffset)
		if h.Type == RNDISQueryMsg {
			m = QueryMsg{id, oid, vc, info}
		} else {
			m = SetMsg{id, oid, vc, info}
		}
	case RNDISQueryCmplt:
		id := r.u32(offRequestID, "req_id")
		st := RNDISStatus(r.u32(offCmpltStatus, "status"))
		m = QueryCmplt{id, st, r.region(offQueryCInfoOffset, offQueryCInfoLen, "info_buf_offset", "info_buflen", queryCmpltInfoMinOffset)}
	case RNDISSetCmplt:
		m = SetCmplt{r.u32(offRequestID, "req_id"), RNDISStatus(r.u32(offCmpltStatus, "status"))}
	case RNDISResetMsg:
		m = ResetMsg{r.u32(offResetReserved, "reserved")}
	case RNDISResetCmplt:
		m = ResetCmplt{RNDISStatus(r.u32(offResetCStatus, "status")), r.u32(offResetCAddressing, "addressing_reset")}
	case RNDISIndicateStatusMsg:
		st := RNDISStatus(r.u32(offIndicateStatus, "status"))
		m = IndicateStatusMsg{st, r.region(offIndicateBufOffset, offIndicateBufLen, "status_buf_offset", "status_buflen", indicateStatusMinOffset)}
	case RNDISKeepaliveMsg:
		m = KeepaliveMsg{r.u32(offRequestID, "req_id")}
	case RNDISKeepaliveCmplt:
		m = KeepaliveCmplt{r.u32(offRequestID, "req_id"), RNDISStatus(r.u32(offCmpltStatus, "status"))}
	case RNDISPacketMsg:
		if p, ok := parsePacket(&r); ok {
			m = p
		}
	default:
		return nil, 0, fmt.Errorf("rndis: type %v: %w", h.Type, ErrUnknownType)
	}
	if r.err != nil {
		return nil, 0, r.err
	}
	return m, int(h.Length), nil
}

// region reads a rel8 (offset, length) pair at offOff and offLen and
// returns the bytes they name. A zero length is no region whatever the
// offset; otherwise the offset must be at least minOff (past the fixed
// fields) and the region inside the message. The fields themselves must
// be present even when the region is empty.
func (r *reader) region(offOff, offLen int, offField, lenField string, minOff uint32) []byte {
	off := r.u32(offOff, offField)
	n := r.u32(offLen, lenField)
	if r.err != nil || n == 0 {
		return nil
	}
	end := uint64(rndisOffsetBase) + uint64(off) + uint64(n)
	switch {
	case off < minOff:
		r.fail(offField, "%d points into the fixed fields (the first free rel8 offset is %d)", off, minOff)
	case end > uint64(len(r.b)):
		r.fail(lenField, "%d bytes at rel8 offset %d end at %d, past msg_len %d", n, off, end, len(r.b))
	}
	if r.err != nil {
		return nil
	}
	start := rndisOffsetBase + int(off)
	return r.b[start:int(end):int(end)]
}

func parsePacket(r *reader) (PacketMsg, bool) {
	var p PacketMsg
	p.NumOOBDataElements = r.u32(offPacketOOBCount, "num_oob_data_elements")
	p.VCHandle = r.u32(offPacketVCHandle, "vc_handle")
	r.u32(offPacketReserved, "reserved") // the fixed part must be whole
	p.Data = r.region(offPacketDataOffset, offPacketDataLen, "data_offset", "data_len", packetContentsMinOffsets)
	oob := r.region(offPacketOOBOffset, offPacketOOBLen, "oob_data_offset", "oob_data_len", packetContentsMinOffsets)
	p.OOBDataOffset, p.OOBDataLength = r.u32(offPacketOOBOffset, "oob_data_offset"), uint32(len(oob))
	p.PPI = r.region(offPacketPPIOffset, offPacketPPILen, "per_pkt_info_offset", "per_pkt_info_len", packetContentsMinOffsets)
	if r.err != nil {
		return PacketMsg{}, false
	}
	if err := checkPPIChain(p.PPI); err != nil {
		r.err = err
		return PacketMsg{}, false
	}
	return p, true
}

// AppendPacketMsgHeader appends the 44-byte header of a PACKET_MSG whose
// frame of dataLen bytes follows it directly, with no per-packet info
// and msg_len covering both: the layout PacketMsg.Append writes, for a
// receive path that copies the frame straight after the header.
func AppendPacketMsgHeader(b []byte, dataLen int) []byte {
	b, p := grow(b, PacketMsgSize)
	put32(p, offRNDISType, uint32(RNDISPacketMsg))
	put32(p, offRNDISLen, uint32(PacketMsgSize+dataLen))
	put32(p, offPacketDataOffset, PacketSize)
	put32(p, offPacketDataLen, uint32(dataLen))
	return b
}

// ParsePacketMsg decodes the PACKET_MSG at b's start and returns how many
// bytes it took, with ParseRNDIS's checks, without going through
// RNDISMessage: the data path's parser, which does not allocate when the
// message is well formed. A message of another type is refused.
func ParsePacketMsg(b []byte) (PacketMsg, int, error) {
	r := reader{b: b, msg: "rndis PACKET_MSG"}
	t, n := RNDISType(r.u32(offRNDISType, "ndis_msg_type")), r.u32(offRNDISLen, "msg_len")
	switch {
	case r.err != nil:
	case t != RNDISPacketMsg:
		r.fail("ndis_msg_type", "%v, not PACKET_MSG", t)
	case n < RNDISHeaderSize:
		r.fail("msg_len", "%d is shorter than the %d-byte header", n, RNDISHeaderSize)
	case uint64(n) > uint64(len(b)):
		r.fail("msg_len", "%d but only %d bytes were sent", n, len(b))
	}
	if r.err != nil {
		return PacketMsg{}, 0, r.err
	}
	r.b = b[:n]
	p, ok := parsePacket(&r)
	if !ok {
		return PacketMsg{}, 0, r.err
	}
	return p, int(n), nil
}
