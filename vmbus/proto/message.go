package proto

import (
	"encoding/binary"
	"errors"
	"fmt"

	"gohv/hv/tlfs"
)

// MessageType is a channel-management message's type, the u32 at offset 0
// of its payload (Linux enum vmbus_channel_message_type).
type MessageType uint32

// The channel-management messages (linux-guest-hyperv-facts.md §4.1).
const (
	ChannelMsgInvalid               MessageType = 0
	ChannelMsgOfferChannel          MessageType = 1  // host → guest
	ChannelMsgRescindChannelOffer   MessageType = 2  // host → guest
	ChannelMsgRequestOffers         MessageType = 3  // guest → host
	ChannelMsgAllOffersDelivered    MessageType = 4  // host → guest
	ChannelMsgOpenChannel           MessageType = 5  // guest → host
	ChannelMsgOpenChannelResult     MessageType = 6  // host → guest
	ChannelMsgCloseChannel          MessageType = 7  // guest → host
	ChannelMsgGPADLHeader           MessageType = 8  // guest → host
	ChannelMsgGPADLBody             MessageType = 9  // guest → host
	ChannelMsgGPADLCreated          MessageType = 10 // host → guest
	ChannelMsgGPADLTeardown         MessageType = 11 // guest → host
	ChannelMsgGPADLTorndown         MessageType = 12 // host → guest
	ChannelMsgRelIDReleased         MessageType = 13 // guest → host
	ChannelMsgInitiateContact       MessageType = 14 // guest → host
	ChannelMsgVersionResponse       MessageType = 15 // host → guest
	ChannelMsgUnload                MessageType = 16 // guest → host
	ChannelMsgUnloadResponse        MessageType = 17 // host → guest
	ChannelMsg18                    MessageType = 18 // Hyper-V's reserved-channel messages: unused by Linux
	ChannelMsg19                    MessageType = 19
	ChannelMsg20                    MessageType = 20
	ChannelMsgTLConnectRequest      MessageType = 21 // guest → host (hv_sock, 4.0+)
	ChannelMsgModifyChannel         MessageType = 22 // guest → host (4.1+)
	ChannelMsgTLConnectResult       MessageType = 23 // host → guest (Linux does not handle it)
	ChannelMsgModifyChannelResponse MessageType = 24 // host → guest (5.3+)
	// ChannelMsgCount is CHANNELMSG_COUNT: Linux 6.1 drops every type
	// from here on (OpenVMM's 6.0 "Copper" messages 25-29).
	ChannelMsgCount MessageType = 25
)

// HeaderSize is the channel message header: u32 type, u32 padding.
const HeaderSize = 8

// MaxMessageSize is the largest payload, a SynIC message's.
const MaxMessageSize = tlfs.MessagePayloadSize

// Sizes of the messages as Linux 6.1 lays them out (the packed structs of
// include/linux/hyperv.h), header included (linux-guest-hyperv-facts.md
// §4.2). GPADL_HEADER and GPADL_BODY are followed by range data.
const (
	OfferChannelSize          = 196
	RescindChannelOfferSize   = 12
	OpenChannelSize           = 148
	OpenChannelResultSize     = 20
	CloseChannelSize          = 12
	GPADLHeaderSize           = 20
	GPADLBodySize             = 16
	GPADLCreatedSize          = 20
	GPADLTeardownSize         = 16
	GPADLTorndownSize         = 12
	RelIDReleasedSize         = 12
	InitiateContactSize       = 40
	VersionResponseSize       = 16
	TLConnectRequestSize      = 40
	ModifyChannelSize         = 16
	TLConnectResultSize       = 44
	ModifyChannelResponseSize = 16
	UserDefinedSize           = 120 // OFFERCHANNEL's user_def, OPENCHANNEL's userdata
)

// minPayload is the least payload ParseChannelMessage accepts per type.
// For the messages Linux 6.1 handles (host → guest) it is Linux's own
// minimum (channel_mgmt.c channel_message_table[].min_payload_len), which
// is 0 for ALLOFFERS_DELIVERED and UNLOAD_RESPONSE: those need only the
// type word. For the messages a host receives it is the size Linux sends.
// 0 marks a type there is no decoder for.
var minPayload = [ChannelMsgCount]int{
	ChannelMsgOfferChannel:          OfferChannelSize,
	ChannelMsgRescindChannelOffer:   RescindChannelOfferSize,
	ChannelMsgRequestOffers:         HeaderSize,
	ChannelMsgAllOffersDelivered:    4,
	ChannelMsgOpenChannel:           OpenChannelSize,
	ChannelMsgOpenChannelResult:     OpenChannelResultSize,
	ChannelMsgCloseChannel:          CloseChannelSize,
	ChannelMsgGPADLHeader:           GPADLHeaderSize,
	ChannelMsgGPADLBody:             GPADLBodySize,
	ChannelMsgGPADLCreated:          GPADLCreatedSize,
	ChannelMsgGPADLTeardown:         GPADLTeardownSize,
	ChannelMsgGPADLTorndown:         GPADLTorndownSize,
	ChannelMsgRelIDReleased:         RelIDReleasedSize,
	ChannelMsgInitiateContact:       InitiateContactSize,
	ChannelMsgVersionResponse:       VersionResponseSize,
	ChannelMsgUnload:                HeaderSize,
	ChannelMsgUnloadResponse:        4,
	ChannelMsgTLConnectRequest:      TLConnectRequestSize,
	ChannelMsgModifyChannel:         ModifyChannelSize,
	ChannelMsgTLConnectResult:       TLConnectResultSize,
	ChannelMsgModifyChannelResponse: ModifyChannelResponseSize,
}

// MinPayloadSize is the least payload ParseChannelMessage accepts for t,
// and false for a type it has no decoder for.
func (t MessageType) MinPayloadSize() (int, bool) {
	if t >= ChannelMsgCount || minPayload[t] == 0 {
		return 0, false
	}
	return minPayload[t], true
}

// FromGuest reports whether a guest sends t (a host receives it).
func (t MessageType) FromGuest() bool {
	switch t {
	case ChannelMsgRequestOffers, ChannelMsgOpenChannel, ChannelMsgCloseChannel,
		ChannelMsgGPADLHeader, ChannelMsgGPADLBody, ChannelMsgGPADLTeardown,
		ChannelMsgRelIDReleased, ChannelMsgInitiateContact, ChannelMsgUnload,
		ChannelMsgTLConnectRequest, ChannelMsgModifyChannel:
		return true
	}
	return false
}

// FromHost reports whether a host sends t (a guest receives it).
func (t MessageType) FromHost() bool {
	switch t {
	case ChannelMsgOfferChannel, ChannelMsgRescindChannelOffer, ChannelMsgAllOffersDelivered,
		ChannelMsgOpenChannelResult, ChannelMsgGPADLCreated, ChannelMsgGPADLTorndown,
		ChannelMsgVersionResponse, ChannelMsgUnloadResponse, ChannelMsgTLConnectResult,
		ChannelMsgModifyChannelResponse:
		return true
	}
	return false
}

var messageNames = [ChannelMsgCount]string{
	"Invalid", "OfferChannel", "RescindChannelOffer", "RequestOffers",
	"AllOffersDelivered", "OpenChannel", "OpenChannelResult", "CloseChannel",
	"GPADLHeader", "GPADLBody", "GPADLCreated", "GPADLTeardown",
	"GPADLTorndown", "RelIDReleased", "InitiateContact", "VersionResponse",
	"Unload", "UnloadResponse", "18", "19", "20", "TLConnectRequest",
	"ModifyChannel", "TLConnectResult", "ModifyChannelResponse",
}

func (t MessageType) String() string {
	if t < ChannelMsgCount {
		return "ChannelMsg" + messageNames[t]
	}
	return fmt.Sprintf("ChannelMsg(%d)", uint32(t))
}

// Message is one channel-management message. AppendBinary appends its
// payload encoding (header included) to b; it fails only for a message
// whose variable part is malformed or does not fit in 240 bytes. The
// types are values: ParseChannelMessage returns them so.
type Message interface {
	Type() MessageType
	AppendBinary(b []byte) ([]byte, error)
}

// ErrMessage is wrapped by every error ParseChannelMessage and Marshal
// return.
var ErrMessage = errors.New("vmbus/proto: bad channel message")

// Marshal encodes m as a SynIC payload (at most 240 bytes).
func Marshal(m Message) ([]byte, error) {
	return m.AppendBinary(make([]byte, 0, MaxMessageSize))
}

// ParseChannelMessage decodes a SynIC message payload (PayloadSize bytes)
// into the Message of its type, by value. Guest- or host-controlled: the
// payload must be at most 240 bytes and at least MinPayloadSize of its
// type; bytes past the type's layout are ignored, as Linux ignores them
// (a newer protocol's longer variant parses as the version Linux 6.1
// knows). The result holds no reference to payload.
func ParseChannelMessage(payload []byte) (Message, error) {
	if len(payload) > MaxMessageSize {
		return nil, fmt.Errorf("%w: %d bytes, above %d", ErrMessage, len(payload), MaxMessageSize)
	}
	if len(payload) < 4 {
		return nil, fmt.Errorf("%w: %d bytes, no type", ErrMessage, len(payload))
	}
	t := MessageType(le.Uint32(payload))
	min, ok := t.MinPayloadSize()
	if !ok {
		return nil, fmt.Errorf("%w: unknown type %v", ErrMessage, t)
	}
	if len(payload) < min {
		return nil, fmt.Errorf("%w: %v of %d bytes, below its %d", ErrMessage, t, len(payload), min)
	}
	b := payload
	switch t {
	case ChannelMsgOfferChannel:
		return parseOfferChannel(b), nil
	case ChannelMsgRescindChannelOffer:
		return RescindChannelOffer{ChildRelID: le.Uint32(b[8:])}, nil
	case ChannelMsgRequestOffers:
		return RequestOffers{}, nil
	case ChannelMsgAllOffersDelivered:
		return AllOffersDelivered{}, nil
	case ChannelMsgOpenChannel:
		return parseOpenChannel(b), nil
	case ChannelMsgOpenChannelResult:
		return OpenChannelResult{ChildRelID: le.Uint32(b[8:]), OpenID: le.Uint32(b[12:]), Status: le.Uint32(b[16:])}, nil
	case ChannelMsgCloseChannel:
		return CloseChannel{ChildRelID: le.Uint32(b[8:])}, nil
	case ChannelMsgGPADLHeader:
		return parseGPADLHeader(b)
	case ChannelMsgGPADLBody:
		return parseGPADLBody(b)
	case ChannelMsgGPADLCreated:
		return GPADLCreated{ChildRelID: le.Uint32(b[8:]), GPADL: le.Uint32(b[12:]), CreationStatus: le.Uint32(b[16:])}, nil
	case ChannelMsgGPADLTeardown:
		return GPADLTeardown{ChildRelID: le.Uint32(b[8:]), GPADL: le.Uint32(b[12:])}, nil
	case ChannelMsgGPADLTorndown:
		return GPADLTorndown{GPADL: le.Uint32(b[8:])}, nil
	case ChannelMsgRelIDReleased:
		return RelIDReleased{ChildRelID: le.Uint32(b[8:])}, nil
	case ChannelMsgInitiateContact:
		return parseInitiateContact(b), nil
	case ChannelMsgVersionResponse:
		return VersionResponse{VersionSupported: b[8] != 0, ConnectionState: b[9], MessageConnectionID: le.Uint32(b[12:])}, nil
	case ChannelMsgUnload:
		return Unload{}, nil
	case ChannelMsgUnloadResponse:
		return UnloadResponse{}, nil
	case ChannelMsgTLConnectRequest:
		return TLConnectRequest{GuestEndpointID: GUID(b[8:24]), HostServiceID: GUID(b[24:40])}, nil
	case ChannelMsgModifyChannel:
		return ModifyChannel{ChildRelID: le.Uint32(b[8:]), TargetVP: le.Uint32(b[12:])}, nil
	case ChannelMsgTLConnectResult:
		return TLConnectResult{GuestEndpointID: GUID(b[8:24]), HostServiceID: GUID(b[24:40]), Status: int32(le.Uint32(b[40:]))}, nil
	case ChannelMsgModifyChannelResponse:
		return ModifyChannelResponse{ChildRelID: le.Uint32(b[8:]), Status: int32(le.Uint32(b[12:]))}, nil
	}
	// MinPayloadSize knows exactly the types above.
	panic("vmbus/proto: no decoder for " + t.String())
}

var le = binary.LittleEndian

// header appends a message header of type t.
func header(b []byte, t MessageType) []byte {
	b = le.AppendUint32(b, uint32(t))
	return le.AppendUint32(b, 0)
}

func u32(b []byte, v uint32) []byte { return le.AppendUint32(b, v) }
func u16(b []byte, v uint16) []byte { return le.AppendUint16(b, v) }
func u64(b []byte, v uint64) []byte { return le.AppendUint64(b, v) }

func bit(v bool) uint8 {
	if v {
		return 1
	}
	return 0
}
