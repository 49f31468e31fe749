// Package protocol is the VSTOR wire format: the vstor_packet that a
// storage Virtualization Service Client (Linux's hv_storvsc, Windows'
// storvsc) and the root's storage VSP exchange over a VMBus channel, in
// the 64-byte form of protocol 5.1 ("WIN8") and later. Names follow Linux's
// drivers/scsi/storvsc_drv.c and OpenVMM's storvsp_protocol
// (VSTOR_OPERATION_EXECUTE_SRB → OpExecuteSRB, vmscsi_request →
// SCSIRequest); numbers are pinned by tests against the fact sheet's §6
// (research/linux-guest-hyperv-facts.md).
//
// A vstor_packet is a 12-byte header (operation, flags, status) and a
// 52-byte union whose meaning the operation selects: a protocol version
// (QUERY_PROTOCOL_VERSION), channel properties (QUERY_PROPERTIES'
// completion), a SCSI request block (EXECUTE_SRB and its COMPLETE_IO) or a
// sub-channel count (CREATE_SUB_CHANNELS). Packet keeps the union as bytes
// and its typed views decode and encode it; multi-byte fields are
// little-endian.
//
// # Invariants
//
// Packet.Marshal always yields PacketSize (64) bytes: the host's packets
// to a Linux guest must be exactly that long (Linux drops a completion
// shorter than 64 bytes and clips one longer than 80 with its VMBus
// descriptor, desynchronising its ring). The package imports only the
// standard library, so a guest-side client can use it too.
//
// # Failure
//
// Everything ParsePacket reads is guest-controlled. It and the union views
// never panic on any input (FuzzParsePacket); a packet too short for what
// is asked of it is an error wrapping ErrShort. Field values are returned
// as sent: whether an operation, a version or a CDB length is acceptable is
// the VSP's decision, not the parser's.
//
// # Concurrency
//
// None needed: every function works on values its caller owns.
package protocol

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Sizes of the vstor_packet and its parts (§6.2).
const (
	PacketSize        = 64 // the whole vstor_packet for protocol ≥ 5.1
	HeaderSize        = 12 // operation, flags, status
	UnionSize         = 52 // PacketSize - HeaderSize
	SCSIRequestSize   = 0x34
	SCSIRequestSizeV1 = 0x24 // vmscsi_request without the WIN8 extension (protocols before 5.1)
	CDBSize           = 16   // CDB16GENERIC_LENGTH
	SenseBufferSize   = 0x14 // VMSCSI_SENSE_BUFFER_SIZE: the cdb/sense union
	ChannelPropsSize  = 24
	VersionSize       = 4
)

// ErrShort is wrapped by every error about a packet too short for what it
// must hold.
var ErrShort = errors.New("vstor packet too short")

// Operation is vstor_packet.operation (Linux enum vstor_packet_operation).
type Operation uint32

// Operations (§6.2). The guest sends BEGIN_INITIALIZATION,
// QUERY_PROTOCOL_VERSION, QUERY_PROPERTIES, END_INITIALIZATION,
// EXECUTE_SRB, the resets, CREATE_SUB_CHANNELS and (for Fibre Channel)
// FCHBA_DATA; the host sends COMPLETE_IO, and unsolicited REMOVE_DEVICE or
// ENUMERATE_BUS to make the guest rescan.
const (
	OpCompleteIO           Operation = 1
	OpRemoveDevice         Operation = 2
	OpExecuteSRB           Operation = 3
	OpResetLUN             Operation = 4
	OpResetAdapter         Operation = 5
	OpResetBus             Operation = 6
	OpBeginInitialization  Operation = 7
	OpEndInitialization    Operation = 8
	OpQueryProtocolVersion Operation = 9
	OpQueryProperties      Operation = 10
	OpEnumerateBus         Operation = 11
	OpFCHBAData            Operation = 12
	OpCreateSubChannels    Operation = 13
	OpEventNotification    Operation = 14 // OpenVMM's; Linux 6.1 neither sends nor handles it
)

var opNames = [...]string{
	OpCompleteIO:           "COMPLETE_IO",
	OpRemoveDevice:         "REMOVE_DEVICE",
	OpExecuteSRB:           "EXECUTE_SRB",
	OpResetLUN:             "RESET_LUN",
	OpResetAdapter:         "RESET_ADAPTER",
	OpResetBus:             "RESET_BUS",
	OpBeginInitialization:  "BEGIN_INITIALIZATION",
	OpEndInitialization:    "END_INITIALIZATION",
	OpQueryProtocolVersion: "QUERY_PROTOCOL_VERSION",
	OpQueryProperties:      "QUERY_PROPERTIES",
	OpEnumerateBus:         "ENUMERATE_BUS",
	OpFCHBAData:            "FCHBA_DATA",
	OpCreateSubChannels:    "CREATE_SUB_CHANNELS",
	OpEventNotification:    "EVENT_NOTIFICATION",
}

func (o Operation) String() string {
	if int(o) < len(opNames) && opNames[o] != "" {
		return opNames[o]
	}
	return fmt.Sprintf("OPERATION_%d", uint32(o))
}

// FlagRequestCompletion is vstor_packet.flags' REQUEST_COMPLETION_FLAG:
// the guest sets it on every request; the host's packets carry flags 0.
const FlagRequestCompletion = 0x1

// Version is a VSTOR protocol version as the wire holds it: major<<8 | minor.
type Version uint16

// Protocol versions (storvsc_drv.c VMSTOR_PROTO_VERSION_*, OpenVMM VERSION_*).
const (
	VersionWin6   Version = 0x0200 // 2.0
	VersionWin7   Version = 0x0402 // 4.2
	VersionWin8   Version = 0x0501 // 5.1: the 64-byte packet with the SRB's WIN8 extension
	VersionWin8_1 Version = 0x0600 // 6.0 ("BLUE")
	VersionWin10  Version = 0x0602 // 6.2 ("THRESHOLD")
)

// LinuxVersions are the versions Linux 6.1's storvsc_channel_init offers,
// in the order it offers them, stopping at the first the host accepts
// (§6.3).
var LinuxVersions = [...]Version{VersionWin10, VersionWin8_1, VersionWin8}

// Major is the version's major number.
func (v Version) Major() uint8 { return uint8(v >> 8) }

// Minor is the version's minor number.
func (v Version) Minor() uint8 { return uint8(v) }

func (v Version) String() string { return fmt.Sprintf("%d.%d", v.Major(), v.Minor()) }

// NTStatus is vstor_packet.status: an NTSTATUS, 0 for success. Linux reads
// it only during initialisation (non-zero refuses a version or fails the
// probe); for EXECUTE_SRB it looks at the SRB and SCSI statuses instead.
type NTStatus uint32

// The NTSTATUS values a VSP answers with (OpenVMM storvsp_protocol NtStatus).
const (
	StatusSuccess              NTStatus = 0x0000_0000
	StatusBufferOverflow       NTStatus = 0x8000_0005
	StatusDeviceBusy           NTStatus = 0x8000_0011
	StatusUnsuccessful         NTStatus = 0xC000_0001
	StatusInvalidParameter     NTStatus = 0xC000_000D
	StatusInvalidDeviceRequest NTStatus = 0xC000_0010
	StatusRevisionMismatch     NTStatus = 0xC000_0059
	StatusDeviceNotConnected   NTStatus = 0xC000_009D
	StatusIOTimeout            NTStatus = 0xC000_00B5
	StatusDeviceDoesNotExist   NTStatus = 0xC000_00C0
	StatusCancelled            NTStatus = 0xC000_0120
	StatusInvalidDeviceState   NTStatus = 0xC000_0184
	StatusIODeviceError        NTStatus = 0xC000_0185
)

var ntNames = map[NTStatus]string{
	StatusSuccess:              "STATUS_SUCCESS",
	StatusBufferOverflow:       "STATUS_BUFFER_OVERFLOW",
	StatusDeviceBusy:           "STATUS_DEVICE_BUSY",
	StatusUnsuccessful:         "STATUS_UNSUCCESSFUL",
	StatusInvalidParameter:     "STATUS_INVALID_PARAMETER",
	StatusInvalidDeviceRequest: "STATUS_INVALID_DEVICE_REQUEST",
	StatusRevisionMismatch:     "STATUS_REVISION_MISMATCH",
	StatusDeviceNotConnected:   "STATUS_DEVICE_NOT_CONNECTED",
	StatusIOTimeout:            "STATUS_IO_TIMEOUT",
	StatusDeviceDoesNotExist:   "STATUS_DEVICE_DOES_NOT_EXIST",
	StatusCancelled:            "STATUS_CANCELLED",
	StatusInvalidDeviceState:   "STATUS_INVALID_DEVICE_STATE",
	StatusIODeviceError:        "STATUS_IO_DEVICE_ERROR",
}

func (s NTStatus) String() string {
	if n, ok := ntNames[s]; ok {
		return n
	}
	return fmt.Sprintf("NTSTATUS_%#08x", uint32(s))
}

// SRBStatus is vmscsi_request.srb_status: a status code in bits 5:0 and
// two flags.
type SRBStatus uint8

// SRB status codes (OpenVMM scsi_defs srb.rs; Linux storvsc_drv.c SRB_STATUS_*).
const (
	SRBStatusPending          SRBStatus = 0x00
	SRBStatusSuccess          SRBStatus = 0x01
	SRBStatusAborted          SRBStatus = 0x02
	SRBStatusError            SRBStatus = 0x04
	SRBStatusBusy             SRBStatus = 0x05
	SRBStatusInvalidRequest   SRBStatus = 0x06
	SRBStatusInvalidPathID    SRBStatus = 0x07
	SRBStatusNoDevice         SRBStatus = 0x08
	SRBStatusTimeout          SRBStatus = 0x09
	SRBStatusSelectionTimeout SRBStatus = 0x0A
	SRBStatusCommandTimeout   SRBStatus = 0x0B
	SRBStatusDataOverrun      SRBStatus = 0x12
	SRBStatusInvalidLUN       SRBStatus = 0x20
	SRBStatusInvalidTargetID  SRBStatus = 0x21

	// SRBStatusQueueFrozen: the adapter froze its queue (never set by gohv).
	SRBStatusQueueFrozen SRBStatus = 0x40
	// SRBStatusAutosenseValid: sense_data holds sense_info_length valid
	// bytes. Linux copies the sense only when this is set and the SCSI
	// status is CHECK CONDITION.
	SRBStatusAutosenseValid SRBStatus = 0x80
)

// Code is the status without its flags (Linux's SRB_STATUS()).
func (s SRBStatus) Code() SRBStatus { return s &^ (SRBStatusQueueFrozen | SRBStatusAutosenseValid) }

// vmscsi_request.data_in (Linux SCSI_IOCTL_DATA_*, named for the
// initiator: "out" writes to the device).
const (
	DataOut         = 0 // WRITE_TYPE: data flows guest → device
	DataIn          = 1 // READ_TYPE: data flows device → guest
	DataUnspecified = 2 // UNKNOWN_TYPE: no data
)

// vmscsi_request.srb_flags as Linux sets them.
const (
	SRBFlagsQueueActionEnable    = 0x0000_0002
	SRBFlagsDisableSynchTransfer = 0x0000_0008
	SRBFlagsDataIn               = 0x0000_0040
	SRBFlagsDataOut              = 0x0000_0080
	SRBFlagsNoQueueFreeze        = 0x0000_0100
)

// ChannelSupportsMultiChannel is vmstorage_channel_properties.flags'
// STORAGE_CHANNEL_SUPPORTS_MULTI_CHANNEL: the host offers sub-channels.
const ChannelSupportsMultiChannel = 0x1

// Byte offsets of every field within the 64-byte vstor_packet (§6.2; the
// union's fields are at 12 + their offset in the union).
const (
	offOperation = 0
	offFlags     = 4
	offStatus    = 8
	offUnion     = 12

	// vmscsi_request
	offSRBLength          = 12
	offSRBStatus          = 14
	offSCSIStatus         = 15
	offPortNumber         = 16
	offPathID             = 17
	offTargetID           = 18
	offLUN                = 19
	offCDBLength          = 20
	offSenseInfoLength    = 21
	offDataIn             = 22
	offSRBReserved        = 23
	offDataTransferLength = 24
	offCDB                = 28 // cdb[16] in a request, sense_data[20] in a completion
	offReserve            = 48 // the WIN8 extension starts here
	offQueueTag           = 50
	offQueueAction        = 51
	offSRBFlags           = 52
	offTimeOutValue       = 56
	offQueueSortKey       = 60

	// vmstorage_protocol_version
	offMajorMinor = 12
	offRevision   = 14

	// vmstorage_channel_properties
	offPropReserved     = 12
	offMaxChannelCount  = 16
	offPropReserved1    = 18
	offPropFlags        = 20
	offMaxTransferBytes = 24
	offPropReserved2    = 28

	// CREATE_SUB_CHANNELS' u16 sub_channel_count
	offSubChannelCount = 12
)

// Packet is one vstor_packet: the header and the union as raw bytes.
type Packet struct {
	Operation Operation
	Flags     uint32
	Status    NTStatus
	// Union holds the 52 union bytes; bytes beyond UnionLen are zero.
	Union [UnionSize]byte
	// UnionLen is how many union bytes the sender sent (0..UnionSize);
	// the Set methods make it UnionSize.
	UnionLen int
}

// ParsePacket decodes a vstor_packet. It needs at least the 12-byte
// header; a shorter union is kept with its length (pre-WIN8 clients send
// 48-byte packets) and the union views refuse what it cannot hold. Bytes
// beyond PacketSize are ignored (VMBus pads payloads to 8 bytes).
func ParsePacket(b []byte) (Packet, error) {
	var p Packet
	if len(b) < HeaderSize {
		return p, fmt.Errorf("vstor packet: %d bytes, the header alone is %d: %w", len(b), HeaderSize, ErrShort)
	}
	p.Operation = Operation(binary.LittleEndian.Uint32(b[offOperation:]))
	p.Flags = binary.LittleEndian.Uint32(b[offFlags:])
	p.Status = NTStatus(binary.LittleEndian.Uint32(b[offStatus:]))
	p.UnionLen = copy(p.Union[:], b[offUnion:])
	return p, nil
}

// Marshal encodes the packet as the 64 bytes a host sends: the union
// zero-padded whatever UnionLen says.
func (p *Packet) Marshal() [PacketSize]byte {
	var b [PacketSize]byte
	binary.LittleEndian.PutUint32(b[offOperation:], uint32(p.Operation))
	binary.LittleEndian.PutUint32(b[offFlags:], p.Flags)
	binary.LittleEndian.PutUint32(b[offStatus:], uint32(p.Status))
	copy(b[offUnion:], p.Union[:])
	return b
}

func (p *Packet) need(n int, what string) error {
	if p.UnionLen < n {
		return fmt.Errorf("vstor packet: %s: %d union bytes, need %d: %w", what, p.UnionLen, n, ErrShort)
	}
	return nil
}

// u returns the union bytes at a packet offset.
func (p *Packet) u(off int) []byte { return p.Union[off-offUnion:] }

// ProtocolVersion is vmstorage_protocol_version.
type ProtocolVersion struct {
	MajorMinor Version
	Revision   uint16 // Windows' build; Linux sends 0
}

// ProtocolVersion decodes the union as a protocol version
// (QUERY_PROTOCOL_VERSION).
func (p *Packet) ProtocolVersion() (ProtocolVersion, error) {
	if err := p.need(VersionSize, "protocol version"); err != nil {
		return ProtocolVersion{}, err
	}
	return ProtocolVersion{
		MajorMinor: Version(binary.LittleEndian.Uint16(p.u(offMajorMinor))),
		Revision:   binary.LittleEndian.Uint16(p.u(offRevision)),
	}, nil
}

// SetProtocolVersion makes the union a protocol version (the rest zero).
func (p *Packet) SetProtocolVersion(v ProtocolVersion) {
	p.Union = [UnionSize]byte{}
	p.UnionLen = UnionSize
	binary.LittleEndian.PutUint16(p.u(offMajorMinor), uint16(v.MajorMinor))
	binary.LittleEndian.PutUint16(p.u(offRevision), v.Revision)
}

// ChannelProperties is vmstorage_channel_properties, QUERY_PROPERTIES'
// answer.
type ChannelProperties struct {
	// MaxChannelCount is the most sub-channels the host offers
	// (meaningful with ChannelSupportsMultiChannel).
	MaxChannelCount uint16
	Flags           uint32
	// MaxTransferBytes bounds one request's data. Linux sets
	// max_sectors = round_down(it, 4096)/512 and sg_tablesize =
	// it/4096 + 1; zero breaks its I/O.
	MaxTransferBytes uint32
}

// ChannelProperties decodes the union as channel properties.
func (p *Packet) ChannelProperties() (ChannelProperties, error) {
	if err := p.need(ChannelPropsSize, "channel properties"); err != nil {
		return ChannelProperties{}, err
	}
	return ChannelProperties{
		MaxChannelCount:  binary.LittleEndian.Uint16(p.u(offMaxChannelCount)),
		Flags:            binary.LittleEndian.Uint32(p.u(offPropFlags)),
		MaxTransferBytes: binary.LittleEndian.Uint32(p.u(offMaxTransferBytes)),
	}, nil
}

// SetChannelProperties makes the union channel properties, reserved fields
// zero.
func (p *Packet) SetChannelProperties(c ChannelProperties) {
	p.Union = [UnionSize]byte{}
	p.UnionLen = UnionSize
	binary.LittleEndian.PutUint16(p.u(offMaxChannelCount), c.MaxChannelCount)
	binary.LittleEndian.PutUint32(p.u(offPropFlags), c.Flags)
	binary.LittleEndian.PutUint32(p.u(offMaxTransferBytes), c.MaxTransferBytes)
}

// SubChannelCount decodes CREATE_SUB_CHANNELS' count.
func (p *Packet) SubChannelCount() (uint16, error) {
	if err := p.need(2, "sub-channel count"); err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint16(p.u(offSubChannelCount)), nil
}

// SetSubChannelCount makes the union a sub-channel count.
func (p *Packet) SetSubChannelCount(n uint16) {
	p.Union = [UnionSize]byte{}
	p.UnionLen = UnionSize
	binary.LittleEndian.PutUint16(p.u(offSubChannelCount), n)
}

// SCSIRequest is vmscsi_request with the WIN8 extension: the SCSI request
// block of EXECUTE_SRB and, with statuses, sense and the transferred
// length filled in, of its COMPLETE_IO.
type SCSIRequest struct {
	Length     uint16    // SCSIRequestSize both ways
	SRBStatus  SRBStatus // host: the SRB status
	SCSIStatus uint8     // host: the SAM status (0x00 GOOD, 0x02 CHECK CONDITION)
	PortNumber uint8     // Linux's SCSI host number: meaningless to the host
	PathID     uint8     // SCSI channel (Linux scans 0..7)
	TargetID   uint8     // Linux scans 0..1
	LUN        uint8
	CDBLength  uint8 // 6, 10, 12 or 16
	// SenseInfoLength: the guest's sense buffer size (0x14); in a
	// completion, the valid sense bytes.
	SenseInfoLength uint8
	DataIn          uint8 // DataOut, DataIn or DataUnspecified
	Reserved        uint8 // OpenVMM's "properties"
	// DataTransferLength: the guest's buffer length; in a completion, the
	// bytes actually transferred.
	DataTransferLength uint32
	// CDBOrSense is cdb[16] (padded) in a request and sense_data[20] in a
	// completion.
	CDBOrSense [SenseBufferSize]byte

	// The WIN8 extension.
	Reserve      uint16
	QueueTag     uint8 // 0xFF when tagged
	QueueAction  uint8 // 0x20 when tagged
	SRBFlags     uint32
	TimeOutValue uint32 // seconds
	QueueSortKey uint32
}

// CDB is the request's command descriptor block, CDBLength bytes of it, or
// nil when CDBLength exceeds CDBSize.
func (r *SCSIRequest) CDB() []byte {
	if int(r.CDBLength) > CDBSize {
		return nil
	}
	return r.CDBOrSense[:r.CDBLength]
}

// SCSIRequest decodes the union as a vmscsi_request. It needs all 52
// bytes: the WIN8 form, the only one protocols ≥ 5.1 use.
func (p *Packet) SCSIRequest() (SCSIRequest, error) {
	var r SCSIRequest
	if err := p.need(SCSIRequestSize, "vmscsi_request"); err != nil {
		return r, err
	}
	le := binary.LittleEndian
	r.Length = le.Uint16(p.u(offSRBLength))
	r.SRBStatus = SRBStatus(p.u(offSRBStatus)[0])
	r.SCSIStatus = p.u(offSCSIStatus)[0]
	r.PortNumber = p.u(offPortNumber)[0]
	r.PathID = p.u(offPathID)[0]
	r.TargetID = p.u(offTargetID)[0]
	r.LUN = p.u(offLUN)[0]
	r.CDBLength = p.u(offCDBLength)[0]
	r.SenseInfoLength = p.u(offSenseInfoLength)[0]
	r.DataIn = p.u(offDataIn)[0]
	r.Reserved = p.u(offSRBReserved)[0]
	r.DataTransferLength = le.Uint32(p.u(offDataTransferLength))
	copy(r.CDBOrSense[:], p.u(offCDB))
	r.Reserve = le.Uint16(p.u(offReserve))
	r.QueueTag = p.u(offQueueTag)[0]
	r.QueueAction = p.u(offQueueAction)[0]
	r.SRBFlags = le.Uint32(p.u(offSRBFlags))
	r.TimeOutValue = le.Uint32(p.u(offTimeOutValue))
	r.QueueSortKey = le.Uint32(p.u(offQueueSortKey))
	return r, nil
}

// SetSCSIRequest makes the union a vmscsi_request.
func (p *Packet) SetSCSIRequest(r SCSIRequest) {
	p.UnionLen = UnionSize
	le := binary.LittleEndian
	le.PutUint16(p.u(offSRBLength), r.Length)
	p.u(offSRBStatus)[0] = byte(r.SRBStatus)
	p.u(offSCSIStatus)[0] = r.SCSIStatus
	p.u(offPortNumber)[0] = r.PortNumber
	p.u(offPathID)[0] = r.PathID
	p.u(offTargetID)[0] = r.TargetID
	p.u(offLUN)[0] = r.LUN
	p.u(offCDBLength)[0] = r.CDBLength
	p.u(offSenseInfoLength)[0] = r.SenseInfoLength
	p.u(offDataIn)[0] = r.DataIn
	p.u(offSRBReserved)[0] = r.Reserved
	le.PutUint32(p.u(offDataTransferLength), r.DataTransferLength)
	copy(p.u(offCDB)[:SenseBufferSize], r.CDBOrSense[:])
	le.PutUint16(p.u(offReserve), r.Reserve)
	p.u(offQueueTag)[0] = r.QueueTag
	p.u(offQueueAction)[0] = r.QueueAction
	le.PutUint32(p.u(offSRBFlags), r.SRBFlags)
	le.PutUint32(p.u(offTimeOutValue), r.TimeOutValue)
	le.PutUint32(p.u(offQueueSortKey), r.QueueSortKey)
}
