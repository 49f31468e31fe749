package proto

import (
	"fmt"

	"gohv/hv/tlfs"
)

// Version is a VMBus protocol version as INITIATE_CONTACT carries it:
// major in bits 31:16, minor in bits 15:0 (linux-guest-hyperv-facts.md
// §4.3).
type Version uint32

// The protocol versions (Linux VERSION_*; OpenVMM's names in brackets).
const (
	VersionWS2008    Version = 0x0000_000d // 0.13 [V1]
	VersionWin7      Version = 0x0001_0001 // 1.1
	VersionWin8      Version = 0x0002_0004 // 2.4
	VersionWin8_1    Version = 0x0003_0000 // 3.0
	VersionWin10     Version = 0x0004_0000 // 4.0
	VersionWin10V4_1 Version = 0x0004_0001 // 4.1 [Win10Rs3_0]
	VersionWin10V5   Version = 0x0005_0000 // 5.0 [Win10Rs3_1]
	VersionWin10V5_1 Version = 0x0005_0001 // 5.1 [Win10Rs4]
	VersionWin10V5_2 Version = 0x0005_0002 // 5.2 [Win10Rs5]
	VersionWin10V5_3 Version = 0x0005_0003 // 5.3 [Iron]
	VersionCopper    Version = 0x0006_0000 // 6.0 [Copper]: Linux 6.1 never asks for it
)

// Linux61Versions are the versions Linux 6.1's hv_vmbus asks for, in the
// order it asks (connection.c vmbus_versions[]), one INITIATE_CONTACT
// each until a VERSION_RESPONSE accepts one.
var Linux61Versions = [...]Version{
	VersionWin10V5_3, VersionWin10V5_2, VersionWin10V5_1, VersionWin10V5,
	VersionWin10V4_1, VersionWin10, VersionWin8_1, VersionWin8,
}

// MakeVersion is major.minor.
func MakeVersion(major, minor uint16) Version { return Version(uint32(major)<<16 | uint32(minor)) }

// Major is the version's major number.
func (v Version) Major() uint16 { return uint16(v >> 16) }

// Minor is the version's minor number.
func (v Version) Minor() uint16 { return uint16(v) }

// String is "major.minor".
func (v Version) String() string { return fmt.Sprintf("%d.%d", v.Major(), v.Minor()) }

// Connections and SINTs of the message channel (linux-guest-hyperv-facts.md
// §3.5, §4.3).
const (
	// MessageConnectionID is VMBUS_MESSAGE_CONNECTION_ID: every message
	// a guest posts when the protocol is below 5.0.
	MessageConnectionID = 1
	// MessageConnectionID4 is VMBUS_MESSAGE_CONNECTION_ID_4: the
	// connection INITIATE_CONTACT for 5.0 and later is posted to. The
	// messages after it go to VersionResponse.MessageConnectionID.
	MessageConnectionID4 = 4
	// MessageSINT is VMBUS_MESSAGE_SINT: the SINT host-to-guest messages
	// and channel events arrive on.
	MessageSINT = 2
	// SynICMessageType is the SynIC message type of every VMBus message,
	// both ways (the MessageType of HvCallPostMessage and of the SIM slot).
	SynICMessageType tlfs.MessageType = 1
	// MaxChannelRelIDs is MAX_CHANNEL_RELIDS: a child_relid names a bit
	// of the SINT's 2048 event flags, so it is below this.
	MaxChannelRelIDs = tlfs.EventFlagsPerSINT
	// VPIndexDisableInterrupt as OPENCHANNEL's target_vp asks for no
	// host-to-guest interrupts (OpenVMM VP_INDEX_DISABLE_INTERRUPT).
	VPIndexDisableInterrupt = 0xffff_ffff
)

// ConnectionState is VERSION_RESPONSE's connection_state (OpenVMM
// ConnectionState; Linux ignores it).
const (
	ConnectionStateSuccessful     = 0
	ConnectionStateLowResources   = 1
	ConnectionStateUnknownFailure = 2
)

// Offer channel flags, OFFERCHANNEL's chn_flags (Linux VMBUS_CHANNEL_*).
const (
	ChannelEnumerateDeviceInterface     = 0x0001
	ChannelServerSupportsTransferPages  = 0x0002 // OpenVMM: confidential ring buffer
	ChannelServerSupportsGPADLs         = 0x0004 // OpenVMM: confidential external memory
	ChannelNamedPipeMode                = 0x0010 // the integration services are offered so
	ChannelLoopbackOffer                = 0x0100
	ChannelParentOffer                  = 0x0200
	ChannelRequestMonitoredNotification = 0x0400
	ChannelTLNPIProviderOffer           = 0x2000 // an hv_sock offer
)

// Pipe modes: the first u32 of a named-pipe offer's user_def
// (VMBUS_PIPE_TYPE_*). The integration services are message pipes.
const (
	PipeTypeByte    = 0
	PipeTypeMessage = 4
)

// Pipe packets: a named-pipe channel's payloads begin with an 8-byte
// header {u32 type, u32 size} (OpenVMM PipeHeader; Linux vmbuspipe_hdr,
// which it ignores on receipt).
const (
	PipeHeaderSize     = 8
	PipePacketTypeData = 1
)
