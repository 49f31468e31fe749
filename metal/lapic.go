package metal

import (
	"github.com/usbarmory/tamago/amd64/lapic"

	"gohv/x86"
)

// The local APIC (SDM Vol. 3A 11), in xAPIC mode at the address
// IA32_APIC_BASE names, through tamago's lapic driver and its register
// names. Everything here runs with interrupts off and does not allocate.

// The Task Priority Register, which tamago's lapic package does not name,
// by the SDM's name (Vol. 3A Table 11-1, 11.8.3.1). The timer's registers
// and fields it does not name are package x86's (timer_names.go).
const lapicTPR = 0x80 // Task Priority Register

var localAPIC lapic.LAPIC

// lapicReg is the 32-bit register at byte offset off in the local APIC's
// page.
func lapicReg(off uint32) *uint32 {
	return (*uint32)(x86.Ptr(uintptr(localAPIC.Base + off)))
}

// lapicEOI signals the end of the interrupt being handled.
func lapicEOI() { localAPIC.ClearInterrupt() }

// initLocalAPIC enables this CPU's local APIC globally (IA32_APIC_BASE) and
// in software (SVR), with vecSpurious as its spurious vector, accepts
// every priority, and records the APIC's ID in the CPU's cpu.
func initLocalAPIC() {
	apicBase := x86.RDMSR(x86.MsrAPICBase)
	x86.WRMSR(x86.MsrAPICBase, apicBase|x86.APICBaseEnable)
	localAPIC.Base = uint32(apicBase & x86.APICBaseAddrMask)
	*lapicReg(lapic.LAPIC_SVR) = 1<<lapic.SVR_ENABLE | vecSpurious
	*lapicReg(lapicTPR) = 0
	thisCPU().apicID = localAPIC.ID()
}
