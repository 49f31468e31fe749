package amdvi

import (
	"fmt"

	"gohv/iommu"
)

// eventNames are the EventCodes of 2.5.
var eventNames = map[uint8]string{
	ILLEGAL_DEV_TABLE_ENTRY: "ILLEGAL_DEV_TABLE_ENTRY",
	IO_PAGE_FAULT:           "IO_PAGE_FAULT",
	DEV_TAB_HARDWARE_ERROR:  "DEV_TAB_HARDWARE_ERROR",
	PAGE_TAB_HARDWARE_ERROR: "PAGE_TAB_HARDWARE_ERROR",
	ILLEGAL_COMMAND_ERROR:   "ILLEGAL_COMMAND_ERROR",
	COMMAND_HARDWARE_ERROR:  "COMMAND_HARDWARE_ERROR",
	IOTLB_INV_TIMEOUT:       "IOTLB_INV_TIMEOUT",
	INVALID_DEVICE_REQUEST:  "INVALID_DEVICE_REQUEST",
}

// EventName spells out an EventCode.
func EventName(code uint8) string {
	if s, ok := eventNames[code]; ok {
		return fmt.Sprintf("%s (%#x)", s, code)
	}
	return fmt.Sprintf("event code %#x", code)
}

// Event is one decoded event log entry (2.5).
type Event struct {
	Code   uint8  // EventCode
	Device uint16 // DeviceID (for command errors, zero)
	Flags  uint16 // bits 59:48 of the first qword
	Domain uint16 // IO_PAGE_FAULT: DomainID
	Addr   uint64 // the address the event concerns
	// Write is the access, for IO_PAGE_FAULT: the RW flag, or where the
	// entry has QEMU 7.2's encoding (QEMU is set), its NX flag.
	Write bool
	// QEMU is set for an IO_PAGE_FAULT in QEMU 7.2's encoding
	// (hw/i386/amd_iommu.c, amdvi_page_fault): the I flag on a request
	// outside the interrupt address range, which no interrupt request
	// has, and the access in GN (read) and NX (write) instead of RW.
	QEMU bool
}

// DecodeEvent decodes one event log entry from its two qwords. The
// hardware writes these: every value decodes to something; an all-zero
// entry (code 0) is not an event, and ok is false.
func DecodeEvent(lo, hi uint64) (e Event, ok bool) {
	e = Event{
		Code:   uint8(lo >> EventCodeShift),
		Device: uint16(lo & EventDeviceMask),
		Flags:  uint16(lo >> EventFlagsShift & EventFlagsMask),
		Addr:   hi,
	}
	if e.Code == 0 {
		return Event{}, false
	}
	if e.Code == IO_PAGE_FAULT {
		e.Domain = uint16(lo >> EventDomainShift)
		e.Write = e.Flags&EvFlag_RW != 0
		if e.Flags&EvFlag_I != 0 && (e.Addr < intrAddrFirst || e.Addr > intrAddrLast) {
			e.QEMU = true
			e.Write = e.Flags&EvFlag_NX != 0
		}
	}
	return e, true
}

// Fault is the event as an iommu.Fault: the device, the page of the
// address, the access and the event spelled out.
func (e Event) Fault() iommu.Fault {
	reason := EventName(e.Code)
	if e.Code == IO_PAGE_FAULT && e.Flags&EvFlag_I != 0 && !e.QEMU {
		// An interrupt request the remapping refused (2.2.5): the
		// address is the message's, in the interrupt window.
		reason += fmt.Sprintf(" flags %#x interrupt", e.Flags)
		return iommu.Fault{Source: e.Device, Addr: e.Addr, Write: true, Interrupt: true, Reason: reason}
	}
	if e.Code == IO_PAGE_FAULT {
		reason += fmt.Sprintf(" flags %#x domain %d", e.Flags, e.Domain)
		if e.QEMU {
			reason += " (QEMU 7.2 flags encoding)"
		}
	}
	return iommu.Fault{Source: e.Device, Addr: e.Addr &^ 0xfff, Write: e.Write, Reason: reason}
}
