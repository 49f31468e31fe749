package proto

import "fmt"

// OfferChannel is CHANNELMSG_OFFERCHANNEL (vmbus_channel_offer_channel,
// 196 bytes): the host offers one channel. Offsets: 8 if_type, 24
// if_instance, 40 and 48 reserved, 56 chn_flags, 58 mmio_megabytes, 60
// user_def, 180 sub_channel_index, 182 reserved3, 184 child_relid, 188
// monitorid, 189 monitor_allocated (bit 0), 190 is_dedicated_interrupt
// (bit 0), 192 connection_id.
type OfferChannel struct {
	InterfaceType     GUID   // if_type: the device class (SCSIGUID …)
	InterfaceInstance GUID   // if_instance: unique per device
	ChannelFlags      uint16 // chn_flags: Channel… bits
	MMIOMegabytes     uint16 // mmio_megabytes (vPCI, frame buffer)
	// UserDefined is user_def; a named pipe's begins with its pipe mode
	// (PipeTypeMessage for the integration services).
	UserDefined     [UserDefinedSize]byte
	SubChannelIndex uint16 // 0 for a primary channel
	// MMIOMegabytesOptional is Linux's reserved3 (OpenVMM's name).
	MMIOMegabytesOptional uint16
	ChildRelID            uint32 // the channel's ID: below MaxChannelRelIDs, its event flag
	MonitorID             uint8
	// MonitorAllocated makes Linux signal through the monitor page
	// instead of HvSignalEvent; gohv offers with false (facts §3.6).
	MonitorAllocated bool
	// DedicatedInterrupt is is_dedicated_interrupt; gohv offers with
	// true, so Linux ignores the shared interrupt page.
	DedicatedInterrupt bool
	// ConnectionID is what the guest passes to HvSignalEvent to kick the
	// host on this channel.
	ConnectionID uint32
}

func (OfferChannel) Type() MessageType { return ChannelMsgOfferChannel }

func (m OfferChannel) AppendBinary(b []byte) ([]byte, error) {
	b = header(b, ChannelMsgOfferChannel)
	b = append(b, m.InterfaceType[:]...)
	b = append(b, m.InterfaceInstance[:]...)
	b = u64(b, 0)
	b = u64(b, 0)
	b = u16(b, m.ChannelFlags)
	b = u16(b, m.MMIOMegabytes)
	b = append(b, m.UserDefined[:]...)
	b = u16(b, m.SubChannelIndex)
	b = u16(b, m.MMIOMegabytesOptional)
	b = u32(b, m.ChildRelID)
	b = append(b, m.MonitorID, bit(m.MonitorAllocated))
	b = u16(b, uint16(bit(m.DedicatedInterrupt)))
	return u32(b, m.ConnectionID), nil
}

func parseOfferChannel(b []byte) OfferChannel {
	m := OfferChannel{
		InterfaceType:         GUID(b[8:24]),
		InterfaceInstance:     GUID(b[24:40]),
		ChannelFlags:          le.Uint16(b[56:]),
		MMIOMegabytes:         le.Uint16(b[58:]),
		SubChannelIndex:       le.Uint16(b[180:]),
		MMIOMegabytesOptional: le.Uint16(b[182:]),
		ChildRelID:            le.Uint32(b[184:]),
		MonitorID:             b[188],
		MonitorAllocated:      b[189]&1 != 0,
		DedicatedInterrupt:    le.Uint16(b[190:])&1 != 0,
		ConnectionID:          le.Uint32(b[192:]),
	}
	copy(m.UserDefined[:], b[60:180])
	return m
}

// RescindChannelOffer is CHANNELMSG_RESCIND_CHANNELOFFER (12 bytes): 8
// child_relid.
type RescindChannelOffer struct{ ChildRelID uint32 }

func (RescindChannelOffer) Type() MessageType { return ChannelMsgRescindChannelOffer }

func (m RescindChannelOffer) AppendBinary(b []byte) ([]byte, error) {
	return u32(header(b, ChannelMsgRescindChannelOffer), m.ChildRelID), nil
}

// RequestOffers is CHANNELMSG_REQUESTOFFERS (header only).
type RequestOffers struct{}

func (RequestOffers) Type() MessageType { return ChannelMsgRequestOffers }

func (RequestOffers) AppendBinary(b []byte) ([]byte, error) {
	return header(b, ChannelMsgRequestOffers), nil
}

// AllOffersDelivered is CHANNELMSG_ALLOFFERS_DELIVERED (header only).
type AllOffersDelivered struct{}

func (AllOffersDelivered) Type() MessageType { return ChannelMsgAllOffersDelivered }

func (AllOffersDelivered) AppendBinary(b []byte) ([]byte, error) {
	return header(b, ChannelMsgAllOffersDelivered), nil
}

// OpenChannel is CHANNELMSG_OPENCHANNEL (148 bytes): 8 child_relid, 12
// openid, 16 ringbuffer_gpadlhandle, 20 target_vp, 24
// downstream_ringbuffer_pageoffset, 28 userdata.
type OpenChannel struct {
	ChildRelID uint32
	OpenID     uint32 // echoed in the result; Linux uses the child_relid
	// RingBufferGPADL is the GPADL holding both rings.
	RingBufferGPADL uint32
	// TargetVP is the VP index host-to-guest interrupts go to
	// (VPIndexDisableInterrupt: none).
	TargetVP uint32
	// DownstreamRingBufferPageOffset is, in 4 KiB pages, where the
	// host-to-guest ring starts in the GPADL: the guest-to-host ring (its
	// control page included) is the pages before it.
	DownstreamRingBufferPageOffset uint32
	UserData                       [UserDefinedSize]byte
}

func (OpenChannel) Type() MessageType { return ChannelMsgOpenChannel }

func (m OpenChannel) AppendBinary(b []byte) ([]byte, error) {
	b = header(b, ChannelMsgOpenChannel)
	b = u32(b, m.ChildRelID)
	b = u32(b, m.OpenID)
	b = u32(b, m.RingBufferGPADL)
	b = u32(b, m.TargetVP)
	b = u32(b, m.DownstreamRingBufferPageOffset)
	return append(b, m.UserData[:]...), nil
}

func parseOpenChannel(b []byte) OpenChannel {
	m := OpenChannel{
		ChildRelID:                     le.Uint32(b[8:]),
		OpenID:                         le.Uint32(b[12:]),
		RingBufferGPADL:                le.Uint32(b[16:]),
		TargetVP:                       le.Uint32(b[20:]),
		DownstreamRingBufferPageOffset: le.Uint32(b[24:]),
	}
	copy(m.UserData[:], b[28:148])
	return m
}

// OpenChannelResult is CHANNELMSG_OPENCHANNEL_RESULT (20 bytes): 8
// child_relid, 12 openid, 16 status (0 success; Linux fails the open with
// -EAGAIN otherwise).
type OpenChannelResult struct {
	ChildRelID uint32
	OpenID     uint32
	Status     uint32
}

func (OpenChannelResult) Type() MessageType { return ChannelMsgOpenChannelResult }

func (m OpenChannelResult) AppendBinary(b []byte) ([]byte, error) {
	b = header(b, ChannelMsgOpenChannelResult)
	return u32(u32(u32(b, m.ChildRelID), m.OpenID), m.Status), nil
}

// CloseChannel is CHANNELMSG_CLOSECHANNEL (12 bytes): 8 child_relid. No
// reply.
type CloseChannel struct{ ChildRelID uint32 }

func (CloseChannel) Type() MessageType { return ChannelMsgCloseChannel }

func (m CloseChannel) AppendBinary(b []byte) ([]byte, error) {
	return u32(header(b, ChannelMsgCloseChannel), m.ChildRelID), nil
}

// GPADLHeader is CHANNELMSG_GPADL_HEADER (20 bytes + range data): 8
// child_relid, 12 gpadl, 16 range_buflen, 18 rangecount, 20 the start of
// the GPA range array. The array (RangeBufLen bytes, RangeCount ranges
// in the ParseGPARanges format) continues in GPADL_BODY messages.
type GPADLHeader struct {
	ChildRelID  uint32
	GPADL       uint32 // the handle, chosen by the guest
	RangeBufLen uint16 // bytes of the whole range array
	RangeCount  uint16
	// Data is the part of the range array this message carries: a
	// multiple of 8 bytes, at most GPADLHeaderMaxData and RangeBufLen.
	Data []byte
}

// GPADLHeaderMaxData and GPADLBodyMaxData are the range-array bytes one
// message can carry: Linux puts a range header and 26 PFNs in the header
// message and 28 PFNs in each body.
const (
	GPADLHeaderMaxData = (MaxMessageSize - GPADLHeaderSize) / 8 * 8 // 216
	GPADLBodyMaxData   = (MaxMessageSize - GPADLBodySize) / 8 * 8   // 224
)

func (GPADLHeader) Type() MessageType { return ChannelMsgGPADLHeader }

func (m GPADLHeader) AppendBinary(b []byte) ([]byte, error) {
	if len(m.Data)%8 != 0 || len(m.Data) > GPADLHeaderMaxData || len(m.Data) > int(m.RangeBufLen) ||
		m.RangeBufLen%8 != 0 || m.RangeCount == 0 {
		return b, fmt.Errorf("%w: GPADL header with %d data bytes of %d, %d ranges", ErrMessage, len(m.Data), m.RangeBufLen, m.RangeCount)
	}
	b = header(b, ChannelMsgGPADLHeader)
	b = u32(u32(b, m.ChildRelID), m.GPADL)
	b = u16(u16(b, m.RangeBufLen), m.RangeCount)
	return append(b, m.Data...), nil
}

func parseGPADLHeader(b []byte) (GPADLHeader, error) {
	m := GPADLHeader{
		ChildRelID:  le.Uint32(b[8:]),
		GPADL:       le.Uint32(b[12:]),
		RangeBufLen: le.Uint16(b[16:]),
		RangeCount:  le.Uint16(b[18:]),
	}
	data := b[GPADLHeaderSize:]
	switch {
	case len(data)%8 != 0:
		return GPADLHeader{}, fmt.Errorf("%w: GPADL header data of %d bytes, not whole u64s", ErrMessage, len(data))
	case m.RangeBufLen%8 != 0:
		return GPADLHeader{}, fmt.Errorf("%w: GPADL range_buflen %d, not whole u64s", ErrMessage, m.RangeBufLen)
	case len(data) > int(m.RangeBufLen):
		return GPADLHeader{}, fmt.Errorf("%w: GPADL header carries %d bytes of a %d-byte range array", ErrMessage, len(data), m.RangeBufLen)
	case m.RangeCount == 0:
		return GPADLHeader{}, fmt.Errorf("%w: GPADL with no ranges", ErrMessage)
	}
	m.Data = append([]byte(nil), data...)
	return m, nil
}

// GPADLBody is CHANNELMSG_GPADL_BODY (16 bytes + range data): 8
// msgnumber, 12 gpadl, 16 more of the range array.
type GPADLBody struct {
	// MsgNumber is msgnumber; Linux leaves it 0, so a host must not rely
	// on it: bodies arrive in order on the one message connection.
	MsgNumber uint32
	GPADL     uint32
	// Data continues the range array: a multiple of 8 bytes, at most
	// GPADLBodyMaxData.
	Data []byte
}

func (GPADLBody) Type() MessageType { return ChannelMsgGPADLBody }

func (m GPADLBody) AppendBinary(b []byte) ([]byte, error) {
	if len(m.Data)%8 != 0 || len(m.Data) > GPADLBodyMaxData {
		return b, fmt.Errorf("%w: GPADL body with %d data bytes", ErrMessage, len(m.Data))
	}
	b = u32(u32(header(b, ChannelMsgGPADLBody), m.MsgNumber), m.GPADL)
	return append(b, m.Data...), nil
}

func parseGPADLBody(b []byte) (GPADLBody, error) {
	data := b[GPADLBodySize:]
	if len(data)%8 != 0 {
		return GPADLBody{}, fmt.Errorf("%w: GPADL body data of %d bytes, not whole u64s", ErrMessage, len(data))
	}
	return GPADLBody{MsgNumber: le.Uint32(b[8:]), GPADL: le.Uint32(b[12:]), Data: append([]byte(nil), data...)}, nil
}

// GPADLCreated is CHANNELMSG_GPADL_CREATED (20 bytes): 8 child_relid, 12
// gpadl, 16 creation_status (0 success; Linux fails with -EDQUOT
// otherwise).
type GPADLCreated struct {
	ChildRelID     uint32
	GPADL          uint32
	CreationStatus uint32
}

func (GPADLCreated) Type() MessageType { return ChannelMsgGPADLCreated }

func (m GPADLCreated) AppendBinary(b []byte) ([]byte, error) {
	b = header(b, ChannelMsgGPADLCreated)
	return u32(u32(u32(b, m.ChildRelID), m.GPADL), m.CreationStatus), nil
}

// GPADLTeardown is CHANNELMSG_GPADL_TEARDOWN (16 bytes): 8 child_relid, 12
// gpadl.
type GPADLTeardown struct {
	ChildRelID uint32
	GPADL      uint32
}

func (GPADLTeardown) Type() MessageType { return ChannelMsgGPADLTeardown }

func (m GPADLTeardown) AppendBinary(b []byte) ([]byte, error) {
	return u32(u32(header(b, ChannelMsgGPADLTeardown), m.ChildRelID), m.GPADL), nil
}

// GPADLTorndown is CHANNELMSG_GPADL_TORNDOWN (12 bytes): 8 gpadl. Send it
// only once the host no longer touches the GPADL's pages.
type GPADLTorndown struct{ GPADL uint32 }

func (GPADLTorndown) Type() MessageType { return ChannelMsgGPADLTorndown }

func (m GPADLTorndown) AppendBinary(b []byte) ([]byte, error) {
	return u32(header(b, ChannelMsgGPADLTorndown), m.GPADL), nil
}

// RelIDReleased is CHANNELMSG_RELID_RELEASED (12 bytes): 8 child_relid.
// After it, the host may reuse the relid.
type RelIDReleased struct{ ChildRelID uint32 }

func (RelIDReleased) Type() MessageType { return ChannelMsgRelIDReleased }

func (m RelIDReleased) AppendBinary(b []byte) ([]byte, error) {
	return u32(header(b, ChannelMsgRelIDReleased), m.ChildRelID), nil
}

// InitiateContact is CHANNELMSG_INITIATE_CONTACT (40 bytes): 8
// vmbus_version_requested, 12 target_vcpu, 16 the interrupt page's GPA
// (versions below 5.0) or {16 msg_sint, 17 msg_vtl, 18 padding, 20 feature
// flags} (5.0 and later; the flags from 6.0), 24 monitor_page1 (parent to
// child), 32 monitor_page2 (child to parent).
type InitiateContact struct {
	VersionRequested Version
	// TargetVCPU is the VP index the host sends messages to.
	TargetVCPU uint32
	// InterruptPage is the shared interrupt page's GPA: versions below
	// 5.0 only.
	InterruptPage uint64
	// MessageSINT, MessageVTL and FeatureFlags: 5.0 and later only.
	MessageSINT  uint8
	MessageVTL   uint8
	FeatureFlags uint32
	MonitorPage1 uint64
	MonitorPage2 uint64
}

func (InitiateContact) Type() MessageType { return ChannelMsgInitiateContact }

func (m InitiateContact) AppendBinary(b []byte) ([]byte, error) {
	b = header(b, ChannelMsgInitiateContact)
	b = u32(u32(b, uint32(m.VersionRequested)), m.TargetVCPU)
	if m.VersionRequested >= VersionWin10V5 {
		b = append(b, m.MessageSINT, m.MessageVTL, 0, 0)
		b = u32(b, m.FeatureFlags)
	} else {
		b = u64(b, m.InterruptPage)
	}
	return u64(u64(b, m.MonitorPage1), m.MonitorPage2), nil
}

func parseInitiateContact(b []byte) InitiateContact {
	m := InitiateContact{
		VersionRequested: Version(le.Uint32(b[8:])),
		TargetVCPU:       le.Uint32(b[12:]),
		MonitorPage1:     le.Uint64(b[24:]),
		MonitorPage2:     le.Uint64(b[32:]),
	}
	if m.VersionRequested >= VersionWin10V5 {
		m.MessageSINT, m.MessageVTL, m.FeatureFlags = b[16], b[17], le.Uint32(b[20:])
	} else {
		m.InterruptPage = le.Uint64(b[16:])
	}
	return m
}

// VersionResponse is CHANNELMSG_VERSION_RESPONSE (16 bytes): 8
// version_supported, 9 connection_state, 10 padding, 12 msg_conn_id.
type VersionResponse struct {
	VersionSupported bool
	ConnectionState  uint8 // ConnectionState…; Linux ignores it
	// MessageConnectionID is, from 5.0, the connection the guest posts
	// every later message to. Linux uses it as given: never 0.
	MessageConnectionID uint32
}

func (VersionResponse) Type() MessageType { return ChannelMsgVersionResponse }

func (m VersionResponse) AppendBinary(b []byte) ([]byte, error) {
	b = header(b, ChannelMsgVersionResponse)
	b = append(b, bit(m.VersionSupported), m.ConnectionState, 0, 0)
	return u32(b, m.MessageConnectionID), nil
}

// Unload is CHANNELMSG_UNLOAD (header only).
type Unload struct{}

func (Unload) Type() MessageType { return ChannelMsgUnload }

func (Unload) AppendBinary(b []byte) ([]byte, error) { return header(b, ChannelMsgUnload), nil }

// UnloadResponse is CHANNELMSG_UNLOAD_RESPONSE (header only).
type UnloadResponse struct{}

func (UnloadResponse) Type() MessageType { return ChannelMsgUnloadResponse }

func (UnloadResponse) AppendBinary(b []byte) ([]byte, error) {
	return header(b, ChannelMsgUnloadResponse), nil
}

// TLConnectRequest is CHANNELMSG_TL_CONNECT_REQUEST (40 bytes): 8
// guest_endpoint_id, 24 host_service_id (hv_sock).
type TLConnectRequest struct {
	GuestEndpointID GUID
	HostServiceID   GUID
}

func (TLConnectRequest) Type() MessageType { return ChannelMsgTLConnectRequest }

func (m TLConnectRequest) AppendBinary(b []byte) ([]byte, error) {
	b = header(b, ChannelMsgTLConnectRequest)
	return append(append(b, m.GuestEndpointID[:]...), m.HostServiceID[:]...), nil
}

// ModifyChannel is CHANNELMSG_MODIFYCHANNEL (16 bytes): 8 child_relid, 12
// target_vp.
type ModifyChannel struct {
	ChildRelID uint32
	TargetVP   uint32
}

func (ModifyChannel) Type() MessageType { return ChannelMsgModifyChannel }

func (m ModifyChannel) AppendBinary(b []byte) ([]byte, error) {
	return u32(u32(header(b, ChannelMsgModifyChannel), m.ChildRelID), m.TargetVP), nil
}

// TLConnectResult is CHANNELMSG_TL_CONNECT_RESULT (44 bytes, OpenVMM's
// layout; Linux does not handle it): 8 endpoint ID, 24 service ID, 40
// status (an NTSTATUS).
type TLConnectResult struct {
	GuestEndpointID GUID
	HostServiceID   GUID
	Status          int32
}

func (TLConnectResult) Type() MessageType { return ChannelMsgTLConnectResult }

func (m TLConnectResult) AppendBinary(b []byte) ([]byte, error) {
	b = header(b, ChannelMsgTLConnectResult)
	b = append(append(b, m.GuestEndpointID[:]...), m.HostServiceID[:]...)
	return u32(b, uint32(m.Status)), nil
}

// ModifyChannelResponse is CHANNELMSG_MODIFYCHANNEL_RESPONSE (16 bytes): 8
// child_relid, 12 status. Linux waits for it from 5.3.
type ModifyChannelResponse struct {
	ChildRelID uint32
	Status     int32
}

func (ModifyChannelResponse) Type() MessageType { return ChannelMsgModifyChannelResponse }

func (m ModifyChannelResponse) AppendBinary(b []byte) ([]byte, error) {
	return u32(u32(header(b, ChannelMsgModifyChannelResponse), m.ChildRelID), uint32(m.Status)), nil
}
