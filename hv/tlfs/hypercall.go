package tlfs

// Hypercall call codes (TLFS Appendix A, "Hypercall Code Reference").
const (
	HvCallSwitchVirtualAddressSpace  = 0x0001
	HvCallFlushVirtualAddressSpace   = 0x0002
	HvCallFlushVirtualAddressList    = 0x0003
	HvCallNotifyLongSpinWait         = 0x0008
	HvCallSendSyntheticClusterIpi    = 0x000b
	HvCallFlushVirtualAddressSpaceEx = 0x0013
	HvCallFlushVirtualAddressListEx  = 0x0014
	HvCallSendSyntheticClusterIpiEx  = 0x0015
	HvCallGetPartitionId             = 0x0046
	HvCallPostMessage                = 0x005c
	HvCallSignalEvent                = 0x005d
	HvExtCallQueryCapabilities       = 0x8001
)

// The hypercall input value (TLFS 3.7, "Hypercall Inputs"): RCX on x64.
const (
	ControlCallCodeMask   = 0xffff
	ControlFast           = 1 << 16
	ControlVarHeaderShift = 17 // variable header size in 8-byte units, bits 26:17
	ControlVarHeaderMask  = 0x3ff << ControlVarHeaderShift
	ControlNested         = 1 << 31
	ControlRepCountShift  = 32 // bits 43:32
	ControlRepCountMask   = 0xfff << ControlRepCountShift
	ControlRepStartShift  = 48 // bits 59:48
	ControlRepStartMask   = 0xfff << ControlRepStartShift
	// ControlReserved are the bits that must be zero: 30:27, 47:44, 63:60
	// (bit 31, "nested", is refused as well: gohv has no nested
	// hypervisor).
	ControlReserved = 0xf<<27 | 1<<31 | 0xf<<44 | 0xf<<60
)

// Control is a decoded hypercall input value.
type Control struct {
	Code           uint16
	Fast           bool
	VarHeaderUnits uint16 // variable header size, in 8-byte units
	RepCount       uint16
	RepStart       uint16
	Reserved       uint64 // the reserved bits that were set (0 when valid)
}

// DecodeControl splits a hypercall input value into its fields.
func DecodeControl(v uint64) Control {
	return Control{
		Code:           uint16(v & ControlCallCodeMask),
		Fast:           v&ControlFast != 0,
		VarHeaderUnits: uint16(v & ControlVarHeaderMask >> ControlVarHeaderShift),
		RepCount:       uint16(v & ControlRepCountMask >> ControlRepCountShift),
		RepStart:       uint16(v & ControlRepStartMask >> ControlRepStartShift),
		Reserved:       v & ControlReserved,
	}
}

// Encode builds the input value (Reserved is not encoded).
func (c Control) Encode() uint64 {
	v := uint64(c.Code) | uint64(c.VarHeaderUnits)<<ControlVarHeaderShift&ControlVarHeaderMask |
		uint64(c.RepCount)<<ControlRepCountShift&ControlRepCountMask | uint64(c.RepStart)<<ControlRepStartShift&ControlRepStartMask
	if c.Fast {
		v |= ControlFast
	}
	return v
}

// Result builds the hypercall result value (RAX): the status in bits 15:0
// and the number of repetitions completed in bits 43:32.
func Result(s Status, repsDone uint16) uint64 {
	return uint64(s) | uint64(repsDone&0xfff)<<32
}

// Status is an HV_STATUS code (TLFS Appendix B, "Hypercall Status Code
// Reference").
type Status uint16

const (
	StatusSuccess                 Status = 0x0000
	StatusInvalidHypercallCode    Status = 0x0002
	StatusInvalidHypercallInput   Status = 0x0003
	StatusInvalidAlignment        Status = 0x0004
	StatusInvalidParameter        Status = 0x0005
	StatusAccessDenied            Status = 0x0006
	StatusInvalidPartitionState   Status = 0x0007
	StatusOperationDenied         Status = 0x0008
	StatusUnknownProperty         Status = 0x0009
	StatusPropertyValueOutOfRange Status = 0x000a
	StatusInsufficientMemory      Status = 0x000b
	StatusPartitionTooDeep        Status = 0x000c
	StatusInvalidPartitionID      Status = 0x000d
	StatusInvalidVPIndex          Status = 0x000e
	StatusNotFound                Status = 0x0010
	StatusInvalidPortID           Status = 0x0011
	StatusInvalidConnectionID     Status = 0x0012
	StatusInsufficientBuffers     Status = 0x0013
	StatusNotAcknowledged         Status = 0x0014
	StatusInvalidVPState          Status = 0x0015
	StatusAcknowledged            Status = 0x0016
	StatusInvalidSaveRestoreState Status = 0x0017
	StatusInvalidSynicState       Status = 0x0018
	StatusObjectInUse             Status = 0x0019
	StatusInvalidProximityDomain  Status = 0x001a
	StatusNoData                  Status = 0x001b
	StatusInactive                Status = 0x001c
	StatusNoResources             Status = 0x001d
	StatusFeatureUnavailable      Status = 0x001e
	StatusPartialPacket           Status = 0x001f
)

var statusNames = map[Status]string{
	StatusSuccess: "HV_STATUS_SUCCESS", StatusInvalidHypercallCode: "HV_STATUS_INVALID_HYPERCALL_CODE",
	StatusInvalidHypercallInput: "HV_STATUS_INVALID_HYPERCALL_INPUT", StatusInvalidAlignment: "HV_STATUS_INVALID_ALIGNMENT",
	StatusInvalidParameter: "HV_STATUS_INVALID_PARAMETER", StatusAccessDenied: "HV_STATUS_ACCESS_DENIED",
	StatusInvalidPartitionState: "HV_STATUS_INVALID_PARTITION_STATE", StatusOperationDenied: "HV_STATUS_OPERATION_DENIED",
	StatusUnknownProperty: "HV_STATUS_UNKNOWN_PROPERTY", StatusPropertyValueOutOfRange: "HV_STATUS_PROPERTY_VALUE_OUT_OF_RANGE",
	StatusInsufficientMemory: "HV_STATUS_INSUFFICIENT_MEMORY", StatusPartitionTooDeep: "HV_STATUS_PARTITION_TOO_DEEP",
	StatusInvalidPartitionID: "HV_STATUS_INVALID_PARTITION_ID", StatusInvalidVPIndex: "HV_STATUS_INVALID_VP_INDEX",
	StatusNotFound: "HV_STATUS_NOT_FOUND", StatusInvalidPortID: "HV_STATUS_INVALID_PORT_ID",
	StatusInvalidConnectionID: "HV_STATUS_INVALID_CONNECTION_ID", StatusInsufficientBuffers: "HV_STATUS_INSUFFICIENT_BUFFERS",
	StatusNotAcknowledged: "HV_STATUS_NOT_ACKNOWLEDGED", StatusInvalidVPState: "HV_STATUS_INVALID_VP_STATE",
	StatusAcknowledged: "HV_STATUS_ACKNOWLEDGED", StatusInvalidSaveRestoreState: "HV_STATUS_INVALID_SAVE_RESTORE_STATE",
	StatusInvalidSynicState: "HV_STATUS_INVALID_SYNIC_STATE", StatusObjectInUse: "HV_STATUS_OBJECT_IN_USE",
	StatusInvalidProximityDomain: "HV_STATUS_INVALID_PROXIMITY_DOMAIN_INFO", StatusNoData: "HV_STATUS_NO_DATA",
	StatusInactive: "HV_STATUS_INACTIVE", StatusNoResources: "HV_STATUS_NO_RESOURCES",
	StatusFeatureUnavailable: "HV_STATUS_FEATURE_UNAVAILABLE", StatusPartialPacket: "HV_STATUS_PARTIAL_PACKET",
}

func (s Status) String() string {
	if n, ok := statusNames[s]; ok {
		return n
	}
	return "HV_STATUS_0x" + hex16(uint16(s))
}

func hex16(v uint16) string {
	const digits = "0123456789abcdef"
	return string([]byte{digits[v>>12], digits[v>>8&0xf], digits[v>>4&0xf], digits[v&0xf]})
}

// Hypercall page contents (TLFS 3.13, "Establishing the Hypercall
// Interface"): the instruction that enters the hypervisor, then RET. A
// guest CALLs offset 0 with the inputs in its registers.
var (
	HypercallPageVMCALL  = [4]byte{0x0f, 0x01, 0xc1, 0xc3} // Intel VT-x: VMCALL; RET
	HypercallPageVMMCALL = [4]byte{0x0f, 0x01, 0xd9, 0xc3} // AMD-V: VMMCALL; RET
)
