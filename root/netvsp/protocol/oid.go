package protocol

import "fmt"

// OID is an NDIS object identifier in a QUERY_MSG or SET_MSG.
type OID uint32

// The OIDs Linux 6.1's rndis_filter queries and sets (netvsc-facts §8),
// and the few neighbours a host answers for with them.
const (
	OIDGenMaximumFrameSize             OID = 0x0001_0106 // Q at probe: u32, the MTU without the Ethernet header
	OIDGenLinkSpeed                    OID = 0x0001_0107 // Q at probe (NVSP ≥ 5): u32 in 100 bit/s units
	OIDGenCurrentPacketFilter          OID = 0x0001_010E // S at open, close and rx-mode changes: u32 NDIS_PACKET_TYPE_*
	OIDGenMediaConnectStatus           OID = 0x0001_0114 // Q at probe: u32 MediaStateConnected or MediaStateDisconnected
	OIDGenReceiveScaleCapabilities     OID = 0x0001_0203 // Q at probe (NVSP ≥ 5): NDIS_RECEIVE_SCALE_CAPABILITIES
	OIDGenReceiveScaleParameters       OID = 0x0001_0204 // S after sub-channels: NDIS_RECEIVE_SCALE_PARAMETERS
	OIDGenFriendlyName                 OID = 0x0002_0216 // Q at probe: UCS-2 name
	OIDGenRNDISConfigParameter         OID = 0x0001_021B // S on `ip link set address`: "NetworkAddress"
	OID802_3PermanentAddress           OID = 0x0101_0101 // Q at probe: exactly 6 bytes
	OID802_3CurrentAddress             OID = 0x0101_0102 // OpenVMM answers it as the permanent address
	OIDOffloadEncapsulation            OID = 0x0101_010A
	OIDTCPOffloadCurrentConfig         OID = 0xFC01_020B
	OIDTCPOffloadParameters            OID = 0xFC01_020C // S at probe: NDIS_OFFLOAD_PARAMETERS; must succeed
	OIDTCPOffloadHardwareCapabilities  OID = 0xFC01_020D // Q at probe: NDIS_OFFLOAD; must answer
	OIDTCPConnectionOffloadCurrentCfg  OID = 0xFC01_020E
	OIDTCPConnectionOffloadHardwareCap OID = 0xFC01_020F
)

// LinuxProbeQueries are the OIDs Linux 6.1's rndis_filter_device_add
// queries (QUERY) and sets (SET, marked) during probe, in its order, each
// waited for without a timeout; the last two only for NVSP ≥ 5.
var LinuxProbeQueries = [...]OID{
	OIDGenMaximumFrameSize,
	OID802_3PermanentAddress,
	OIDGenFriendlyName,
	OIDTCPOffloadHardwareCapabilities,
	OIDTCPOffloadParameters, // a SET
	OIDGenMediaConnectStatus,
	OIDGenLinkSpeed,
	OIDGenReceiveScaleCapabilities,
}

var oidNames = map[OID]string{
	OIDGenMaximumFrameSize:             "OID_GEN_MAXIMUM_FRAME_SIZE",
	OIDGenLinkSpeed:                    "OID_GEN_LINK_SPEED",
	OIDGenCurrentPacketFilter:          "OID_GEN_CURRENT_PACKET_FILTER",
	OIDGenMediaConnectStatus:           "OID_GEN_MEDIA_CONNECT_STATUS",
	OIDGenReceiveScaleCapabilities:     "OID_GEN_RECEIVE_SCALE_CAPABILITIES",
	OIDGenReceiveScaleParameters:       "OID_GEN_RECEIVE_SCALE_PARAMETERS",
	OIDGenFriendlyName:                 "OID_GEN_FRIENDLY_NAME",
	OIDGenRNDISConfigParameter:         "OID_GEN_RNDIS_CONFIG_PARAMETER",
	OID802_3PermanentAddress:           "OID_802_3_PERMANENT_ADDRESS",
	OID802_3CurrentAddress:             "OID_802_3_CURRENT_ADDRESS",
	OIDOffloadEncapsulation:            "OID_OFFLOAD_ENCAPSULATION",
	OIDTCPOffloadCurrentConfig:         "OID_TCP_OFFLOAD_CURRENT_CONFIG",
	OIDTCPOffloadParameters:            "OID_TCP_OFFLOAD_PARAMETERS",
	OIDTCPOffloadHardwareCapabilities:  "OID_TCP_OFFLOAD_HARDWARE_CAPABILITIES",
	OIDTCPConnectionOffloadCurrentCfg:  "OID_TCP_CONNECTION_OFFLOAD_CURRENT_CONFIG",
	OIDTCPConnectionOffloadHardwareCap: "OID_TCP_CONNECTION_OFFLOAD_HARDWARE_CAPABILITIES",
}

func (o OID) String() string {
	if n, ok := oidNames[o]; ok {
		return n
	}
	return fmt.Sprintf("OID_%#08x", uint32(o))
}

// OID_GEN_MEDIA_CONNECT_STATUS values (NdisMediaState*).
const (
	MediaStateConnected    = 0
	MediaStateDisconnected = 1
)

// OID_GEN_CURRENT_PACKET_FILTER bits (NDIS_PACKET_TYPE_*).
const (
	PacketTypeDirected     = 0x0000_0001
	PacketTypeMulticast    = 0x0000_0002
	PacketTypeAllMulticast = 0x0000_0004
	PacketTypeBroadcast    = 0x0000_0008
	PacketTypePromiscuous  = 0x0000_0020

	// LinuxOpenFilter is what Linux sets when the interface comes up.
	LinuxOpenFilter = PacketTypeDirected | PacketTypeAllMulticast | PacketTypeBroadcast
)

// NDIS object types and sizes (struct ndis_object_header.type; the
// objects' sizes as Linux declares them, netvsc-facts §9).
const (
	NDISObjectTypeDefault         = 0x80 // NDIS_OFFLOAD_PARAMETERS' header
	NDISObjectTypeRSSCapabilities = 0x88
	NDISObjectTypeRSSParameters   = 0x89
	NDISObjectTypeOffload         = 0xA7

	NDISObjectHeaderSize = 4

	// NDIS_OFFLOAD: NDIS_OFFLOAD_SIZE_6_0 (revision 1), _6_1 (2),
	// NDIS_OFFLOAD_SIZE (3). Linux accepts any size from the 6.0 one to
	// its query's buffer.
	NDISOffloadSize6_0 = 112
	NDISOffloadSize6_1 = 144
	NDISOffloadSize    = 156

	// NDIS_OFFLOAD_PARAMETERS: 28 bytes, VERSION_4_OFFLOAD_SIZE for NVSP ≤ 4.
	NDISOffloadParamsSize   = 28
	NDISOffloadParamsSizeV4 = 22

	// NDIS_RECEIVE_SCALE_CAPABILITIES, packed.
	NDISRSSCapabilitiesSize = 18
)

// NDISObjectHeader is struct ndis_object_header, at the start of every
// NDIS object an information buffer carries.
type NDISObjectHeader struct {
	Type     uint8
	Revision uint8
	Size     uint16 // the whole object's bytes
}

// ParseNDISObjectHeader reads the header at b's start.
func ParseNDISObjectHeader(b []byte) (NDISObjectHeader, error) {
	r := reader{b: b, msg: "ndis object"}
	if !r.has(0, NDISObjectHeaderSize, "header") {
		return NDISObjectHeader{}, r.err
	}
	return NDISObjectHeader{b[0], b[1], r.u16(2, "size")}, nil
}

// Append writes the header.
func (h NDISObjectHeader) Append(b []byte) []byte {
	b, p := grow(b, NDISObjectHeaderSize)
	p[0], p[1] = h.Type, h.Revision
	put16(p, 2, h.Size)
	return b
}
