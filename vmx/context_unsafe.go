package vmx

import "unsafe"

// runContext is what vmenter/vmexitPoint (insn_amd64.s) read and write;
// the offsets are fixed there (CTX_* defines, pinned by
// TestRunContextLayout). It lives at the start of a physical page the VCPU
// owns, outside the Go heap, with the FXSAVE areas and the MSR areas later
// in the same page.
type runContext struct {
	gpr      [16]uint64 // RSP unused: it lives in the VMCS
	launched uint64
	guestFX  uint64
	hostFX   uint64
	fail     uint64 // RFLAGS after a failed VMLAUNCH/VMRESUME, else 0
	// cr2 is the guest's CR2, which VMX leaves in the register across
	// entries and exits (the VMCS has no field for it): vmexitPoint saves
	// it, vmenter puts it back when the register no longer holds it.
	cr2 uint64
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
