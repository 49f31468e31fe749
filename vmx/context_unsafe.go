package vmx

import (
	"unsafe"

	"gohv/hv/vcpu"
)

// runContext is what vmenter/vmexitPoint (insn_amd64.s) read and write;
// the offsets are fixed there (CTX_* and REGS_* defines, pinned by
// TestRunContextLayout). It lives at the start of a physical page the
// VCPU owns, outside the Go heap, with the FXSAVE areas and the MSR areas
// later in the same page.
type runContext struct {
	// regs is the VP's register file (VCPU.Regs): the assembly loads the
	// guest's GPRs and writes GUEST_RIP from it on entry and stores the
	// GPRs, RIP and CR2 into it on exit, so no copy is made either way.
	// RSP is not touched there: it lives in the VMCS. CR2: VMX leaves the
	// guest's in the register across entries and exits (the VMCS has no
	// field for it); vmexitPoint saves it, vmenter puts it back when the
	// register no longer holds it.
	regs     vcpu.Regs
	launched uint64
	guestFX  uint64
	hostFX   uint64
	fail     uint64 // RFLAGS after a failed VMLAUNCH/VMRESUME, else 0
	// What vmexitPoint reads of every exit (readExit, decode): the exit
	// reason, qualification, instruction length, IDT-vectoring
	// information, the guest's interruptibility state and CS access
	// rights.
	reason, qual, instrLen, idtVect, intr, csAR uint64
	// hostRSP is HOST_RSP as vmenter last wrote it.
	hostRSP uint64
	// mode is GUEST_CR0, GUEST_IA32_EFER and GUEST_SS_AR_BYTES
	// (modeFields): vmexitPoint reads them at a VMCALL exit, whose checks
	// need them, and fillState at any other exit that asks.
	mode [numModeFields]uint64
}

const (
	ctxGuestFX = 0x400
	ctxHostFX  = 0x600
	// MSR areas (SDM Vol. 3C 25.7.2): the guest list is stored on exit and
	// loaded on entry; the host list is loaded on exit. 16 bytes an entry.
	ctxGuestMSRs = 0x800
	ctxHostMSRs  = 0xa00
)

// newRunContext lays a run context over the page.
func newRunContext(page *[4096]byte) *runContext {
	c := (*runContext)(unsafe.Pointer(page))
	c.guestFX = uint64(uintptr(unsafe.Pointer(&page[ctxGuestFX])))
	c.hostFX = uint64(uintptr(unsafe.Pointer(&page[ctxHostFX])))
	return c
}
