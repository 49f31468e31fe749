package svm

import (
	"sync/atomic"
	"unsafe"
)

// runContext is what vmrun (insn_amd64.s) reads and writes; its offsets are
// fixed there (CTX_* defines, pinned by TestRunContextLayout). It lives at
// the start of a physical page owned by the VCPU, with the two FXSAVE areas
// (16-byte aligned) later in the same page, so the garbage collector never
// sees it.
type runContext struct {
	gpr     [16]uint64 // RAX and RSP unused: they live in the VMCB
	vmcbPA  uint64
	hostPA  uint64
	guestFX uint64 // virtual addresses of the FXSAVE areas
	hostFX  uint64
	// exitReq is vcpu.ExitRequester's request, from any thread: vmrun
	// looks at it after CLGI and does not enter while it is set.
	exitReq atomic.Uint32
}

// Offsets of the FXSAVE areas in the run-context page.
const (
	ctxGuestFX = 0x400
	ctxHostFX  = 0x600
)

// newRunContext lays a run context over a page the VCPU owns: the page is
// outside the Go heap (host physical memory through the physical map), so
// the pointers never reach the collector.
func newRunContext(page *[4096]byte, vmcbPA, hostPA uint64) *runContext {
	c := (*runContext)(unsafe.Pointer(page))
	c.vmcbPA, c.hostPA = vmcbPA, hostPA
	c.guestFX = uint64(uintptr(unsafe.Pointer(&page[ctxGuestFX])))
	c.hostFX = uint64(uintptr(unsafe.Pointer(&page[ctxHostFX])))
	return c
}

// vmcbAt views a VMCB page.
func vmcbAt(page *[4096]byte) *VMCB { return (*VMCB)(page) }
