package metal

import (
	"sync/atomic"

	"github.com/usbarmory/tamago/soc/intel/uart"

	"gohv/metal/acpi"
	"gohv/x86"
)

// Ending the run: a verdict line, then power off — QEMU's isa-debug-exit
// when present, ACPI S5 when the Go side found how, otherwise halt.

const debugExitPort = 0xf4

var (
	// Set by the Go side once ACPI is parsed (SetACPIPowerOff).
	acpiPM1aCnt, acpiPM1bCnt uint16
	acpiSLPTypA, acpiSLPTypB uint16
	acpiS5Known              bool

	// verdictGiven: a verdict line was printed (by Verdict, fatal or
	// exitGroup, on any CPU); the first to set it prints.
	verdictGiven atomic.Bool
)

// powerOff never returns. status 0 means success.
func powerOff(status uint8) {
	x86.CLI()
	drainConsole()
	x86.OUTB(debugExitPort, status)
	if acpiS5Known {
		x86.OUTW(acpiPM1aCnt, acpiSLPTypA<<acpi.PM1CntSlpTypShift|acpi.PM1CntSlpEn)
		if acpiPM1bCnt != 0 {
			x86.OUTW(acpiPM1bCnt, acpiSLPTypB<<acpi.PM1CntSlpTypShift|acpi.PM1CntSlpEn)
		}
	}
	kputs("gohv: halted (no power-off device answered)\n")
	x86.Halt()
}

// fatal ends the run from kernel context with a FAIL verdict. Safe with
// interrupts off and before the runtime exists; never returns.
func fatal(reason string) {
	if verdictGiven.CompareAndSwap(false, true) {
		kputs("gohv: verdict FAIL ")
		kputs(reason)
		kputs("\n")
	}
	powerOff(1)
}

// exitGroup is the Go program ending (exit_group). A program that ends
// without a verdict failed.
func exitGroup(status int64) {
	if verdictGiven.CompareAndSwap(false, true) {
		kputs("gohv: verdict FAIL Go program exited with status ")
		kputint(status)
		kputs(" before reporting a verdict\n")
		powerOff(1)
	}
	if status == 0 {
		powerOff(0)
	}
	powerOff(1)
}

// drainConsole waits, boundedly, until COM1 has sent everything (LSR.TEMT),
// so the verdict line is not cut off by the power-off.
func drainConsole() {
	if hostTest {
		return
	}
	for i := 0; i < 1_000_000 && x86.INB(com1Base+uart.LSR)&lsrTEMT == 0; i++ {
	}
}
