// Package protocol is the wire format of the Hyper-V integration services
// (ICs): the messages the root's IC providers and a guest's hv_utils
// exchange over the message-mode named-pipe VMBus channels of the
// shutdown, heartbeat and time-synchronisation services. Names follow
// Linux 6.1's include/linux/hyperv.h (struct icmsg_hdr → Header,
// ICMSGTYPE_SHUTDOWN → MsgShutdown, struct heartbeat_msg_data →
// HeartbeatMsg) so a reader can look them up; every size and offset is
// pinned by a test against that header.
//
// # Layout
//
// The payload of every IC packet (the bytes after the VMBus packet
// descriptor) is
//
//	offset  size  field
//	0       8     pipe header (struct vmbuspipe_hdr): u32 type (1 = DATA), u32 size of what follows
//	8       20    IC header (struct icmsg_hdr), icmsgsize = body length
//	28      n     body: icmsg_negotiate, shutdown_msg_data, heartbeat_msg_data, ictimesync_data or ictimesync_ref_data
//
// All multi-byte fields are little-endian. The host sends requests (icflags
// TRANSACTION|REQUEST); a guest answers each by sending the same bytes back
// with icflags TRANSACTION|RESPONSE, its status in the header and, for some
// messages, the body changed (Linux 6.1 drivers/hv/hv_util.c).
//
// # Invariants
//
// The Append functions produce exactly the sizes the Size constants name,
// and AppendMessage fills the pipe header's size and the IC header's
// icmsgsize from the body it is given. The package imports only the
// standard library, so a guest-side client can use it too.
//
// # Failure
//
// Everything a Parse function reads is peer-controlled. None panics on any
// input (FuzzParse); a message shorter than its layout, a pipe packet that
// is not DATA, sizes that disagree with the bytes present or version counts
// above IC_VERSION_NEGOTIATION_MAX_VER_COUNT are errors wrapping
// ErrMalformed. Field values are returned as sent: whether a message type,
// a status or a version is acceptable is the caller's decision.
//
// # Concurrency
//
// None needed: every function works on values its caller owns. Message.Body
// aliases the payload it was parsed from.
package protocol

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// ErrMalformed is wrapped by every parse error.
var ErrMalformed = errors.New("ic: malformed message")

func malformed(format string, args ...any) error {
	return fmt.Errorf("%s: %w", fmt.Sprintf(format, args...), ErrMalformed)
}

// Sizes of the framing (include/linux/hyperv.h).
const (
	PipeHeaderSize    = 8                               // sizeof(struct vmbuspipe_hdr)
	HeaderSize        = 20                              // sizeof(struct icmsg_hdr)
	MessageHeaderSize = PipeHeaderSize + HeaderSize     // ICMSG_HDR: where every body starts
	MaxBodySize       = 1<<16 - 1                       // icmsgsize is a u16
	MaxPayloadSize    = MessageHeaderSize + MaxBodySize // the largest payload AppendMessage builds
)

// PipeData is the pipe header's type for a data packet (OpenVMM
// vmbus_ring PIPE_PACKET_TYPE_DATA). Linux's struct vmbuspipe_hdr calls the
// field flags and never reads it, but echoes it in its answers.
const PipeData uint32 = 1

// PipeHeader is struct vmbuspipe_hdr: the named-pipe framing in front of
// every IC message.
type PipeHeader struct {
	Type uint32 // flags in Linux; PipeData
	Size uint32 // msgsize: bytes after the pipe header
}

// Offsets within the payload (pipe header at 0, icmsg_hdr at 8).
const (
	offPipeType      = 0
	offPipeSize      = 4
	offFrameMajor    = 8 + 0 // icverframe.major
	offFrameMinor    = 8 + 2 // icverframe.minor
	offMsgType       = 8 + 4 // icmsgtype
	offMsgMajor      = 8 + 6 // icvermsg.major
	offMsgMinor      = 8 + 8 // icvermsg.minor
	offMsgSize       = 8 + 10
	offStatus        = 8 + 12
	offTransactionID = 8 + 16 // ictransaction_id
	offFlags         = 8 + 17 // icflags
	offReserved      = 8 + 18 // reserved[2]
)

// MsgType is icmsg_hdr.icmsgtype (ICMSGTYPE_*).
type MsgType uint16

// Message types (include/linux/hyperv.h; 6 and 8 are OpenVMM's RDV and
// VM_SESSION, which Linux does not know).
const (
	MsgNegotiate   MsgType = 0 // ICMSGTYPE_NEGOTIATE: the first message on every IC
	MsgHeartbeat   MsgType = 1 // ICMSGTYPE_HEARTBEAT
	MsgKVPExchange MsgType = 2 // ICMSGTYPE_KVPEXCHANGE
	MsgShutdown    MsgType = 3 // ICMSGTYPE_SHUTDOWN
	MsgTimeSync    MsgType = 4 // ICMSGTYPE_TIMESYNC
	MsgVSS         MsgType = 5 // ICMSGTYPE_VSS
	MsgFCopy       MsgType = 7 // ICMSGTYPE_FCOPY
)

var msgNames = [...]string{
	MsgNegotiate:   "NEGOTIATE",
	MsgHeartbeat:   "HEARTBEAT",
	MsgKVPExchange: "KVPEXCHANGE",
	MsgShutdown:    "SHUTDOWN",
	MsgTimeSync:    "TIMESYNC",
	MsgVSS:         "VSS",
	MsgFCopy:       "FCOPY",
}

func (m MsgType) String() string {
	if int(m) < len(msgNames) && msgNames[m] != "" {
		return msgNames[m]
	}
	return fmt.Sprintf("ICMSGTYPE_%d", uint16(m))
}

// Flags is icmsg_hdr.icflags (ICMSGHDRFLAG_*).
type Flags uint8

// The flags. A host request carries Transaction|Request; Linux's answer
// carries Transaction|Response (it overwrites the byte).
const (
	FlagTransaction Flags = 1 // ICMSGHDRFLAG_TRANSACTION: a response is expected
	FlagRequest     Flags = 2 // ICMSGHDRFLAG_REQUEST
	FlagResponse    Flags = 4 // ICMSGHDRFLAG_RESPONSE
)

// Status is icmsg_hdr.status: an HRESULT-style code the guest sets in its
// answer (include/uapi/linux/hyperv.h "Some Hyper-V status codes").
type Status uint32

// The status codes Linux 6.1 knows. The shutdown, heartbeat and time-sync
// services answer StatusOK or StatusFail; the others belong to KVP and VSS.
const (
	StatusOK                 Status = 0x00000000 // HV_S_OK
	StatusFail               Status = 0x80004005 // HV_E_FAIL
	StatusCont               Status = 0x80070103 // HV_S_CONT
	StatusNotSupported       Status = 0x80070032 // HV_ERROR_NOT_SUPPORTED
	StatusMachineLocked      Status = 0x800704F7 // HV_ERROR_MACHINE_LOCKED
	StatusDeviceNotConnected Status = 0x8007048F // HV_ERROR_DEVICE_NOT_CONNECTED
	StatusInvalidArg         Status = 0x80070057 // HV_INVALIDARG
	StatusGUIDNotFound       Status = 0x80041002 // HV_GUID_NOTFOUND
	StatusAlreadyExists      Status = 0x80070050 // HV_ERROR_ALREADY_EXISTS
	StatusDiskFull           Status = 0x80070070 // HV_ERROR_DISK_FULL
)

var statusNames = map[Status]string{
	StatusOK:                 "HV_S_OK",
	StatusFail:               "HV_E_FAIL",
	StatusCont:               "HV_S_CONT",
	StatusNotSupported:       "HV_ERROR_NOT_SUPPORTED",
	StatusMachineLocked:      "HV_ERROR_MACHINE_LOCKED",
	StatusDeviceNotConnected: "HV_ERROR_DEVICE_NOT_CONNECTED",
	StatusInvalidArg:         "HV_INVALIDARG",
	StatusGUIDNotFound:       "HV_GUID_NOTFOUND",
	StatusAlreadyExists:      "HV_ERROR_ALREADY_EXISTS",
	StatusDiskFull:           "HV_ERROR_DISK_FULL",
}

func (s Status) String() string {
	if n, ok := statusNames[s]; ok {
		return n
	}
	return fmt.Sprintf("status %#08x", uint32(s))
}

// Version is struct ic_version: {u16 major, u16 minor}.
type Version struct {
	Major, Minor uint16
}

func (v Version) String() string { return fmt.Sprintf("%d.%d", v.Major, v.Minor) }

// Header is struct icmsg_hdr, the 20 bytes after the pipe header.
type Header struct {
	FrameworkVersion Version // icverframe: the negotiated framework version (0.0 in NEGOTIATE)
	Type             MsgType // icmsgtype
	MessageVersion   Version // icvermsg: the negotiated service version (0.0 in NEGOTIATE)
	Size             uint16  // icmsgsize: body length; AppendMessage fills it
	Status           Status  // set by the guest in its answer
	TransactionID    uint8   // ictransaction_id: echoed by the guest
	Flags            Flags   // icflags
}

// Message is one parsed IC payload.
type Message struct {
	Pipe   PipeHeader
	Header Header
	// Body is the Header.Size bytes after the IC header; it aliases the
	// payload ParseMessage was given. A guest's answer may carry more
	// bytes after it (Linux sends back the whole padded packet): they are
	// not part of the message.
	Body []byte
}

// AppendMessage appends a payload: the pipe header (DATA, size of the
// rest), h with its Size set to len(body), and body. The other fields of h
// are written as given; the reserved bytes are zero.
func AppendMessage(dst []byte, h Header, body []byte) ([]byte, error) {
	if len(body) > MaxBodySize {
		return dst, fmt.Errorf("ic: %v body of %d bytes: icmsgsize holds at most %d", h.Type, len(body), MaxBodySize)
	}
	le := binary.LittleEndian
	dst = le.AppendUint32(dst, PipeData)
	dst = le.AppendUint32(dst, uint32(HeaderSize+len(body)))
	dst = le.AppendUint16(dst, h.FrameworkVersion.Major)
	dst = le.AppendUint16(dst, h.FrameworkVersion.Minor)
	dst = le.AppendUint16(dst, uint16(h.Type))
	dst = le.AppendUint16(dst, h.MessageVersion.Major)
	dst = le.AppendUint16(dst, h.MessageVersion.Minor)
	dst = le.AppendUint16(dst, uint16(len(body)))
	dst = le.AppendUint32(dst, uint32(h.Status))
	dst = append(dst, h.TransactionID, byte(h.Flags), 0, 0)
	return append(dst, body...), nil
}

// ParseMessage decodes one IC payload. The pipe header must be a DATA
// packet whose size fits the payload and covers the IC header; icmsgsize
// must fit inside what the pipe header covers. Bytes past the pipe
// header's size (the VMBus padding to 8 bytes) are ignored.
func ParseMessage(payload []byte) (Message, error) {
	var m Message
	if len(payload) < MessageHeaderSize {
		return m, malformed("payload of %d bytes, IC header needs %d", len(payload), MessageHeaderSize)
	}
	le := binary.LittleEndian
	m.Pipe = PipeHeader{Type: le.Uint32(payload[offPipeType:]), Size: le.Uint32(payload[offPipeSize:])}
	if m.Pipe.Type != PipeData {
		return m, malformed("pipe packet type %d, want DATA (%d)", m.Pipe.Type, PipeData)
	}
	if m.Pipe.Size < HeaderSize || uint64(m.Pipe.Size) > uint64(len(payload)-PipeHeaderSize) {
		return m, malformed("pipe header size %d, payload has %d bytes after it", m.Pipe.Size, len(payload)-PipeHeaderSize)
	}
	m.Header = Header{
		FrameworkVersion: Version{le.Uint16(payload[offFrameMajor:]), le.Uint16(payload[offFrameMinor:])},
		Type:             MsgType(le.Uint16(payload[offMsgType:])),
		MessageVersion:   Version{le.Uint16(payload[offMsgMajor:]), le.Uint16(payload[offMsgMinor:])},
		Size:             le.Uint16(payload[offMsgSize:]),
		Status:           Status(le.Uint32(payload[offStatus:])),
		TransactionID:    payload[offTransactionID],
		Flags:            Flags(payload[offFlags]),
	}
	avail := int(m.Pipe.Size) - HeaderSize
	if int(m.Header.Size) > avail {
		return m, malformed("%v: icmsgsize %d, the pipe packet holds %d body bytes", m.Header.Type, m.Header.Size, avail)
	}
	m.Body = payload[MessageHeaderSize : MessageHeaderSize+int(m.Header.Size)]
	return m, nil
}
