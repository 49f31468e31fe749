package tlfs

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// SynIC message and event-flag pages (TLFS 11, "Inter-Partition
// Communication"): the SIM page holds one 256-byte HV_MESSAGE per SINT,
// the SIEF page one 256-byte bitmap of event flags per SINT.
const (
	MessageSize        = 256
	MessageHeaderSize  = 16
	MessagePayloadSize = 240 // HV_MESSAGE_PAYLOAD_QWORD_COUNT * 8
	EventFlagsSize     = 256 // bytes of flags per SINT
	EventFlagsPerSINT  = EventFlagsSize * 8
	MessagePendingFlag = 1 << 0 // HV_MESSAGE_FLAGS.MessagePending
	PortIDMask         = 0xff_ffff
	ConnectionIDMask   = 0xff_ffff
)

// MessageType is an HV_MESSAGE_TYPE. Types with bit 31 set are the
// hypervisor's; partitions post types below it.
type MessageType uint32

const (
	MessageTypeNone                   MessageType = 0x0000_0000
	MessageTypeHypervisorMask         MessageType = 0x8000_0000
	MessageTypeUnmappedGpa            MessageType = 0x8000_0000
	MessageTypeGpaIntercept           MessageType = 0x8000_0001
	MessageTypeTimerExpired           MessageType = 0x8000_0010
	MessageTypeInvalidVpRegisterValue MessageType = 0x8000_0020
	MessageTypeUnrecoverableException MessageType = 0x8000_0021
	MessageTypeUnsupportedFeature     MessageType = 0x8000_0022
	MessageTypeEventLogBufferComplete MessageType = 0x8000_0040
)

// MessageHeader is HV_MESSAGE_HEADER: offset 0 MessageType, 4
// PayloadSize, 5 MessageFlags, 6 reserved, 8 the sender (port ID or
// origination ID).
type MessageHeader struct {
	Type        MessageType
	PayloadSize uint8
	Flags       uint8
	Origin      uint64
}

// Offsets of MessageHeader's fields in a message slot.
const (
	MessageTypeOffset   = 0
	MessageSizeOffset   = 4
	MessageFlagsOffset  = 5
	MessageOriginOffset = 8
)

// PutMessage writes a whole message (header and payload, padded with
// zeros) into a 256-byte slot. The caller writes the type last when the
// slot is shared with a running guest (see the SynIC); this is the plain
// encoding.
func PutMessage(slot []byte, h MessageHeader, payload []byte) error {
	if len(slot) < MessageSize {
		return fmt.Errorf("tlfs: message slot of %d bytes", len(slot))
	}
	if len(payload) > MessagePayloadSize || int(h.PayloadSize) != len(payload) {
		return fmt.Errorf("tlfs: message payload of %d bytes (size field %d, at most %d)", len(payload), h.PayloadSize, MessagePayloadSize)
	}
	binary.LittleEndian.PutUint32(slot[MessageTypeOffset:], uint32(h.Type))
	slot[MessageSizeOffset] = h.PayloadSize
	slot[MessageFlagsOffset] = h.Flags
	binary.LittleEndian.PutUint16(slot[6:], 0)
	binary.LittleEndian.PutUint64(slot[MessageOriginOffset:], h.Origin)
	copy(slot[MessageHeaderSize:MessageSize], payload)
	clear(slot[MessageHeaderSize+len(payload) : MessageSize])
	return nil
}

// ParseMessage reads a message slot: its header and its payload (a view
// into slot). Guest-controlled input: the size field is checked.
func ParseMessage(slot []byte) (MessageHeader, []byte, error) {
	if len(slot) < MessageSize {
		return MessageHeader{}, nil, fmt.Errorf("tlfs: message slot of %d bytes", len(slot))
	}
	h := MessageHeader{
		Type:        MessageType(binary.LittleEndian.Uint32(slot[MessageTypeOffset:])),
		PayloadSize: slot[MessageSizeOffset],
		Flags:       slot[MessageFlagsOffset],
		Origin:      binary.LittleEndian.Uint64(slot[MessageOriginOffset:]),
	}
	if h.PayloadSize > MessagePayloadSize {
		return h, nil, fmt.Errorf("tlfs: message payload size %d above %d", h.PayloadSize, MessagePayloadSize)
	}
	return h, slot[MessageHeaderSize : MessageHeaderSize+int(h.PayloadSize)], nil
}

// PostMessageInput is HvCallPostMessage's input (TLFS 11.10.1): offset 0
// ConnectionId (23:0; 31:24 reserved), 4 reserved, 8 MessageType, 12
// PayloadSize, 16 the payload (240 bytes).
type PostMessageInput struct {
	ConnectionID uint32
	Type         MessageType
	Payload      []byte // a view into the input, PayloadSize bytes
}

// PostMessageInputSize is the size of HvCallPostMessage's input.
const PostMessageInputSize = 16 + MessagePayloadSize

// Errors the input decoders return; the hypercall layer turns them into
// HV_STATUS_INVALID_HYPERCALL_INPUT or HV_STATUS_INVALID_PARAMETER as the
// TLFS says.
var (
	ErrReservedBits = errors.New("tlfs: reserved bits set")
	ErrPayloadSize  = errors.New("tlfs: payload size above 240")
	ErrMessageType  = errors.New("tlfs: message type 0 or reserved for the hypervisor")
	ErrShortInput   = errors.New("tlfs: input shorter than its structure")
)

// ParsePostMessageInput decodes HvCallPostMessage's input.
// Guest-controlled: every field is checked; Payload is a view into in.
func ParsePostMessageInput(in []byte) (PostMessageInput, error) {
	if len(in) < PostMessageInputSize {
		return PostMessageInput{}, ErrShortInput
	}
	conn := binary.LittleEndian.Uint32(in[0:])
	if conn&^ConnectionIDMask != 0 || binary.LittleEndian.Uint32(in[4:]) != 0 {
		return PostMessageInput{}, ErrReservedBits
	}
	t := MessageType(binary.LittleEndian.Uint32(in[8:]))
	size := binary.LittleEndian.Uint32(in[12:])
	if size > MessagePayloadSize {
		return PostMessageInput{}, ErrPayloadSize
	}
	if t == MessageTypeNone || t&MessageTypeHypervisorMask != 0 {
		return PostMessageInput{}, ErrMessageType
	}
	return PostMessageInput{ConnectionID: conn, Type: t, Payload: in[16 : 16+size]}, nil
}

// PutPostMessageInput encodes HvCallPostMessage's input into in (at least
// PostMessageInputSize bytes).
func PutPostMessageInput(in []byte, m PostMessageInput) error {
	if len(in) < PostMessageInputSize || len(m.Payload) > MessagePayloadSize {
		return ErrShortInput
	}
	binary.LittleEndian.PutUint32(in[0:], m.ConnectionID)
	binary.LittleEndian.PutUint32(in[4:], 0)
	binary.LittleEndian.PutUint32(in[8:], uint32(m.Type))
	binary.LittleEndian.PutUint32(in[12:], uint32(len(m.Payload)))
	n := copy(in[16:], m.Payload)
	clear(in[16+n : PostMessageInputSize])
	return nil
}

// SignalEventInput is HvCallSignalEvent's input (TLFS 11.10.2), the fast
// form's RDX: ConnectionId in 31:0 (23:0 used), FlagNumber in 47:32,
// 63:48 reserved.
type SignalEventInput struct {
	ConnectionID uint32
	FlagNumber   uint16
}

// ParseSignalEventInput decodes the 8-byte input.
func ParseSignalEventInput(v uint64) (SignalEventInput, error) {
	if v&^(ConnectionIDMask|0xffff<<32) != 0 {
		return SignalEventInput{}, ErrReservedBits
	}
	return SignalEventInput{ConnectionID: uint32(v & ConnectionIDMask), FlagNumber: uint16(v >> 32)}, nil
}

// Encode is the fast form's RDX value.
func (s SignalEventInput) Encode() uint64 {
	return uint64(s.ConnectionID&ConnectionIDMask) | uint64(s.FlagNumber)<<32
}

// TimerMessagePayload is HV_TIMER_MESSAGE_PAYLOAD (TLFS 12.5.4), the
// payload of HvMessageTypeTimerExpired: 0 TimerIndex, 4 reserved, 8
// ExpirationTime, 16 DeliveryTime, both in 100 ns reference time.
type TimerMessagePayload struct {
	TimerIndex     uint32
	ExpirationTime uint64
	DeliveryTime   uint64
}

// TimerMessagePayloadSize is its size on the wire.
const TimerMessagePayloadSize = 24

// Put encodes the payload into b (at least TimerMessagePayloadSize bytes).
func (p TimerMessagePayload) Put(b []byte) {
	binary.LittleEndian.PutUint32(b[0:], p.TimerIndex)
	binary.LittleEndian.PutUint32(b[4:], 0)
	binary.LittleEndian.PutUint64(b[8:], p.ExpirationTime)
	binary.LittleEndian.PutUint64(b[16:], p.DeliveryTime)
}

// ParseTimerMessagePayload decodes it.
func ParseTimerMessagePayload(b []byte) (TimerMessagePayload, error) {
	if len(b) < TimerMessagePayloadSize {
		return TimerMessagePayload{}, ErrShortInput
	}
	return TimerMessagePayload{TimerIndex: binary.LittleEndian.Uint32(b), ExpirationTime: binary.LittleEndian.Uint64(b[8:]),
		DeliveryTime: binary.LittleEndian.Uint64(b[16:])}, nil
}
