package proto

import (
	"fmt"

	"github.com/google/uuid"
)

// GUID is a GUID as Hyper-V puts it on the wire: Windows' GUID structure
// in memory, so the first three fields (Data1 u32, Data2 u16, Data3 u16)
// are little-endian and the last eight bytes are in order. uuid.UUID holds
// the same value in RFC 4122 (big-endian) byte order; convert at the
// boundary with GUIDFromUUID and GUID.UUID, never by copying bytes.
//
// {ba6163d9-04a1-4d29-b605-72e2ffb1dc7f} is, on the wire,
// d9 63 61 ba a1 04 29 4d b6 05 72 e2 ff b1 dc 7f.
type GUID [16]byte

// GUIDFromUUID is u in Hyper-V's wire order.
func GUIDFromUUID(u uuid.UUID) GUID {
	return GUID{
		u[3], u[2], u[1], u[0], // Data1
		u[5], u[4], // Data2
		u[7], u[6], // Data3
		u[8], u[9], u[10], u[11], u[12], u[13], u[14], u[15],
	}
}

// UUID is g in RFC 4122 byte order.
func (g GUID) UUID() uuid.UUID {
	return uuid.UUID{
		g[3], g[2], g[1], g[0],
		g[5], g[4],
		g[7], g[6],
		g[8], g[9], g[10], g[11], g[12], g[13], g[14], g[15],
	}
}

// String is the canonical lower-case form, xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx.
func (g GUID) String() string { return g.UUID().String() }

// ParseGUID reads a GUID in any form uuid.Parse accepts (with or without
// braces or the urn:uuid: prefix).
func ParseGUID(s string) (GUID, error) {
	u, err := uuid.Parse(s)
	if err != nil {
		return GUID{}, fmt.Errorf("vmbus/proto: guid %q: %w", s, err)
	}
	return GUIDFromUUID(u), nil
}

// MustParseGUID is ParseGUID for constants; it panics on a malformed
// string.
func MustParseGUID(s string) GUID {
	g, err := ParseGUID(s)
	if err != nil {
		panic(err)
	}
	return g
}

// Device classes: the interface type (if_type) of an offer, which picks the
// guest's driver. Linux's names (HV_SCSI_GUID …) in include/linux/hyperv.h;
// values from linux-guest-hyperv-facts.md §6.1, §7.1 and netvsc-facts.md §1.
var (
	// Storage (hv_storvsc).
	SCSIGUID    = MustParseGUID("ba6163d9-04a1-4d29-b605-72e2ffb1dc7f") // HV_SCSI_GUID
	IDEGUID     = MustParseGUID("32412632-86cb-44a2-9b5c-50d1417354f5") // HV_IDE_GUID (the IDE accelerator)
	SynthFCGUID = MustParseGUID("2f9bcc4a-0069-4af3-b76b-6fd0be528cda") // HV_SYNTHFC_GUID

	// Network (hv_netvsc).
	NICGUID = MustParseGUID("f8615163-df3e-46c5-913f-f2d2f965ed0e") // HV_NIC_GUID

	// Integration services (hv_utils). KVP, VSS and file copy need a
	// daemon in the guest's user space to answer at all.
	ShutdownGUID  = MustParseGUID("0e0b6031-5213-4934-818b-38d90ced39db") // HV_SHUTDOWN_GUID
	TimeSyncGUID  = MustParseGUID("9527e630-d0ae-497b-adce-e80ab0175caf") // HV_TS_GUID
	HeartbeatGUID = MustParseGUID("57164f39-9115-4e78-ab55-382f3bd5422d") // HV_HEART_BEAT_GUID
	KVPGUID       = MustParseGUID("a9a0f4e7-5a45-4d96-b827-8a841e8c03e6") // HV_KVP_GUID
	VSSGUID       = MustParseGUID("35fa2e29-ea23-4236-96ae-3a6ebacba440") // HV_VSS_GUID
	FileCopyGUID  = MustParseGUID("34d14be3-dee4-41c8-9ae7-6b174977c192") // HV_FCOPY_GUID
)
