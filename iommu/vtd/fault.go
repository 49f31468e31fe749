package vtd

import (
	"fmt"

	"gohv/iommu"
)

// Fault reasons of DMA remapping in legacy mode and of interrupt
// remapping (VT-d Appendix A, Non-Recoverable Fault Reason Encodings).
var faultReasons = map[uint8]string{
	0x01: "root entry not present",
	0x02: "context entry not present",
	0x03: "invalid context entry",
	0x04: "address beyond the guest address width",
	0x05: "write to a page without write permission",
	0x06: "read of a page without read permission",
	0x07: "error reading a paging entry",
	0x08: "error reading the root table",
	0x09: "error reading a context table",
	0x0a: "reserved field set in a root entry",
	0x0b: "reserved field set in a context entry",
	0x0c: "reserved field set in a paging entry",
	0x0d: "translation type blocked by the context entry",
	0x20: "interrupt request with a reserved field set",
	0x21: "interrupt index beyond the remapping table",
	0x22: "interrupt remapping entry not present",
	0x23: "error reading the interrupt remapping table",
	0x24: "reserved field set in an interrupt remapping entry",
	0x25: "compatibility-format interrupt blocked",
	0x26: "interrupt source-id check failed",
}

// FaultReason spells out a fault reason code.
func FaultReason(code uint8) string {
	if s, ok := faultReasons[code]; ok {
		return fmt.Sprintf("%s (%#x)", s, code)
	}
	return fmt.Sprintf("fault reason %#x", code)
}

// DecodeFault decodes one fault recording register (10.4.14) from its low
// and high qwords; ok is false when its F bit is clear (no fault held).
// An interrupt remapping fault (reasons 20h-26h) is an interrupt Fault
// whose Addr is the interrupt index.
// The hardware writes these: every value decodes to something.
func DecodeFault(lo, hi uint64) (f iommu.Fault, ok bool) {
	if hi&FRCD_F == 0 {
		return iommu.Fault{}, false
	}
	if r := uint8(hi >> FRCD_FR_Shift & FRCD_FR_Mask); r >= faultReasonIRFirst && r <= faultReasonIRLast {
		// An interrupt request: FI holds the interrupt index in bits
		// 63:48 (10.4.14); T is undefined for it.
		return iommu.Fault{
			Source:    uint16(hi & FRCD_SID_Mask),
			Addr:      lo >> frcdIndexShift,
			Write:     true,
			Interrupt: true,
			Reason:    FaultReason(r),
		}, true
	}
	return iommu.Fault{
		Source: uint16(hi & FRCD_SID_Mask),
		Addr:   lo & FRCD_FI,
		Write:  hi&FRCD_T == 0,
		Reason: FaultReason(uint8(hi >> FRCD_FR_Shift & FRCD_FR_Mask)),
	}, true
}
