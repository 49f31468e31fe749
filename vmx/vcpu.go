package vmx

import (
	"fmt"
	"sync/atomic"

	"gohv/hv/vcpu"
	"gohv/x86"
)

// swappedMSRs are switched through the MSR areas: the CPU model lets the
// guest use them without exits, and VMX (unlike SVM's VMLOAD/VMSAVE) does
// not switch them itself.
var swappedMSRs = [...]uint32{x86.MsrSTAR, x86.MsrLSTAR, x86.MsrCSTAR, x86.MsrFMASK, x86.MsrKernelGSBase}

// VCPU is one VP on VMX.
type VCPU struct {
	b       *Backend
	pages   *vcpu.Pages // VMCS and run context
	image   vmcsImage   // nil on hardware; host tests put a VMCS image here
	vmcsPA  uint64
	ctxPA   uint64
	vapicPA uint64
	ctx     *runContext
	vpid    uint16
	eptp    uint64
	regs    *vcpu.Regs    // in the run context: &ctx.regs
	fast    vcpu.FastExit // the core's handler of the hot exits; nil: none
	dirty   bool
	flush   bool
	// exitVals are stateRest's fields as fillState last read them
	// (restFields).
	exitVals [numRestFields]uint64
	// stale: the groups of Regs (stateMode, stateRest, stateSegs) not
	// read since the last exit (fillState).
	stale uint8
	// vmcsRSP and vmcsRFLAGS are the guest's RSP and RFLAGS as the VMCS
	// holds them, when vmcsKnown: as fillState read them or the last
	// entry wrote them.
	vmcsRSP, vmcsRFLAGS uint64
	vmcsKnown           bool
	// timerWritten: the VMX-preemption timer's field holds its value
	// (gohv does not set "save VMX-preemption timer value", so an exit
	// leaves it; SDM Vol. 3C 27.3).
	timerWritten bool
	// exitReq is vcpu.ExitRequester's request, from any thread: the
	// entry loop looks at it with host interrupts off.
	exitReq atomic.Bool
	// flushRequested is FlushGuestTLB's request, from any thread;
	// the entry folds it into flush.
	flushRequested       atomic.Bool
	pending              uint32 // VM-entry interruption information for the next entry
	pendErr              uint32
	pendLen              uint32
	window               bool
	intr                 uint64 // guest interruptibility state, written back on entry when intrDirty
	intrDirty            bool
	hostFS               uint64      // HOST_FS_BASE as last written
	procWritten          uint64      // the primary processor-based controls as last written
	vapic                *[4096]byte // the virtual-APIC page (TPR shadow), nil without one
	tprThreshold         uint32      // SetTPRThreshold's class
	tprThresholdWritten  uint32
	cr0Shadow, cr4Shadow uint64
	cr0Mask, cr4Mask     uint64
	cpu                  *cpuState // the host CPU it is bound to (Bind), nil between Unbind and Bind
	setUp                bool      // the VMCS has its controls: the first Bind wrote them
	closed               bool
	broken               string // a field BreakGuestStateForTest corrupted
}

// NewVCPU allocates and initialises a VMCS: controls, host state, bitmaps,
// EPT pointer, VPID and the MSR areas. On failure nothing stays allocated.
func (b *Backend) NewVCPU(nestedRoot uint64) (vcpu.VCPU, error) {
	v := &VCPU{b: b, pages: vcpu.NewPages(b.mem), dirty: true, flush: true}
	if err := v.init(nestedRoot); err != nil {
		v.Close()
		return nil, fmt.Errorf("vmx: %w", err)
	}
	return v, nil
}

func (v *VCPU) init(nestedRoot uint64) error {
	b := v.b
	if b.vpids != nil {
		if id, err := b.vpids.Alloc(); err == nil {
			v.vpid = uint16(id)
		} // else VPID 0: translations are flushed on every entry
	}
	var vmcsPage, ctxPage *[4096]byte
	var err error
	if v.vmcsPA, vmcsPage, err = v.pages.Alloc("vmcs"); err != nil {
		return err
	}
	if v.ctxPA, ctxPage, err = v.pages.Alloc("run context"); err != nil {
		return err
	}
	if b.ctl.Proc&procUseTPRShadow != 0 {
		if v.vapicPA, v.vapic, err = v.pages.Alloc("virtual-APIC page"); err != nil {
			return err
		}
	}
	putRevision(vmcsPage, b.revision)
	v.ctx = newRunContext(ctxPage)
	v.regs = &v.ctx.regs
	vcpu.ResetFXSave(ctxPage[ctxGuestFX:])
	for i, m := range swappedMSRs {
		putMSREntry(ctxPage, ctxGuestMSRs, i, m, 0)
		putMSREntry(ctxPage, ctxHostMSRs, i, m, x86.RDMSR(m))
	}
	v.eptp = nestedRoot
	if b.eptCap&capWB == 0 {
		v.eptp &^= eptpMemTypeMask // uncacheable walks when WB is not offered
	}
	// Bits the guest may not own: those VMX fixes (except PE/PG, which
	// unrestricted guest frees) and, for CR4, VMXE.
	v.cr0Mask = (b.cr0Fixed0 &^ (x86.CR0PE | x86.CR0PG)) | ^b.cr0Fixed1&0xffff_ffff
	v.cr4Mask = b.cr4Fixed0 | ^b.cr4Fixed1&0xffff_ffff

	return nil // the VMCS is set up on the CPU the VP is bound to (Bind)
}

// eptpMemTypeMask is the EPT paging-structure memory type in an EPTP
// (SDM Vol. 3C 25.6.11); 0 is uncacheable.
const eptpMemTypeMask = 7

// setup writes the VMCS's controls and host state. Runs with interrupts
// off and the VMCS current.
func (v *VCPU) setup() error {
	b, h := v.b, &v.cpu.host
	w := &writer{v: v}
	w.set(PinControls, uint64(b.ctl.Pin))
	w.set(ProcControls, uint64(b.ctl.Proc))
	v.procWritten = uint64(b.ctl.Proc)
	w.set(ProcControls2, uint64(b.ctl.Proc2))
	w.set(ExitControls, uint64(b.ctl.Exit))
	w.set(EntryControls, uint64(b.ctl.Entry))
	w.set(ExceptionBitmap, 1<<x86.VectorUD)
	w.set(PFErrorMask, 0)
	w.set(PFErrorMatch, 0)
	w.set(CR3TargetCount, 0)
	w.set(IOBitmapA, b.ioBitmaps)
	w.set(IOBitmapB, b.ioBitmaps+x86.PageSize)
	w.set(MSRBitmap, b.msrBitmap)
	w.set(EPTPointer, v.eptp)
	if v.vapic != nil {
		w.set(VirtualAPICPage, v.vapicPA)
		w.set(TPRThreshold, 0)
	}
	if v.vpid != 0 {
		w.set(VPID, uint64(v.vpid))
	}
	w.set(ExitMSRStoreAddr, v.ctxPA+ctxGuestMSRs)
	w.set(EntryMSRLoadAddr, v.ctxPA+ctxGuestMSRs)
	w.set(ExitMSRLoadAddr, v.ctxPA+ctxHostMSRs)
	w.set(ExitMSRStoreCount, uint64(len(swappedMSRs)))
	w.set(EntryMSRLoadCount, uint64(len(swappedMSRs)))
	w.set(ExitMSRLoadCount, uint64(len(swappedMSRs)))
	w.set(CR0GuestHostMask, v.cr0Mask)
	w.set(CR4GuestHostMask, v.cr4Mask)
	w.set(VMCSLinkPointer, ^uint64(0))
	w.set(TSCOffset, 0)

	w.set(HostCR0, h.cr0)
	w.set(HostCR3, h.cr3)
	w.set(HostCR4, h.cr4|x86.CR4VMXE)
	w.set(HostCSSel, uint64(h.cs&x86.SelectorIndex))
	w.set(HostSSSel, uint64(h.ss&x86.SelectorIndex))
	w.set(HostDSSel, uint64(h.ds&x86.SelectorIndex))
	w.set(HostESSel, uint64(h.es&x86.SelectorIndex))
	w.set(HostFSSel, uint64(h.fs&x86.SelectorIndex))
	w.set(HostGSSel, uint64(h.gs&x86.SelectorIndex))
	w.set(HostTRSel, uint64(h.tr&x86.SelectorIndex))
	w.set(HostTRBase, h.trBase)
	w.set(HostGDTRBase, h.gdtBase)
	w.set(HostIDTRBase, h.idtBase)
	w.set(HostGSBase, h.gsBase)
	w.set(HostEFER, h.efer)
	w.set(HostPAT, h.pat)
	w.set(HostSysenterCS, h.sysenterCS)
	w.set(HostSysenterESP, h.sysenterESP)
	w.set(HostSysenterEIP, h.sysenterEIP)
	return w.err
}

func (v *VCPU) Regs() *vcpu.Regs      { return v.regs }
func (v *VCPU) MarkStateDirty()       { v.dirty = true }
func (v *VCPU) InterruptShadow() bool { return v.intr&(intrBlockSTI|intrBlockMOVSS) != 0 }

// ClearInterruptShadow drops blocking by STI and by MOV SS at the next
// entry.
func (v *VCPU) ClearInterruptShadow() {
	if v.intr&(intrBlockSTI|intrBlockMOVSS) != 0 {
		v.intr &^= intrBlockSTI | intrBlockMOVSS
		v.intrDirty = true
	}
}
func (v *VCPU) RequestInterruptWindow(on bool) { v.window = on }

// Guest interruptibility state bits (SDM Vol. 3C 25.4.2, Table 25-3).
const (
	intrBlockSTI   = 1 << 0
	intrBlockMOVSS = 1 << 1
)

// VM-entry interruption-information field (SDM Vol. 3C 25.8.3, Table
// 25-17); the IDT-vectoring and VM-exit interruption information fields
// share the layout.
const (
	intInfoTypeShift   = 8
	intInfoTypeMask    = 7
	intInfoErrorValid  = 1 << 11
	intInfoNMIUnblock  = 1 << 12 // exit-side only: NMI unblocking due to IRET
	intInfoValid       = 1 << 31
	intTypeExternal    = 0
	intTypeNMI         = 2
	intTypeHWException = 3
	intTypeSoftInt     = 4
)

// SetTPRThreshold: with a TPR shadow the guest writes CR8 into the
// virtual-APIC page without exits; TPR_THRESHOLD makes the CPU exit when
// it drops below class (SDM Vol. 3C 30.1.2). Without one every CR8 write
// exits and the threshold is not needed.
func (v *VCPU) SetTPRThreshold(class uint8) { v.tprThreshold = uint32(class) }

// EventPending: the VM-entry interruption information for the next entry
// is v.pending.
func (v *VCPU) EventPending() bool { return v.pending != 0 }

// DropEvents clears the next entry's interruption information.
func (v *VCPU) DropEvents() { v.pending, v.pendErr = 0, 0 }

// Inject queues ev through the VM-entry interruption-information field.
func (v *VCPU) Inject(ev vcpu.Event) {
	t := uint32(intTypeExternal)
	switch ev.Type {
	case vcpu.EventNMI:
		t = intTypeNMI
	case vcpu.EventException:
		t = intTypeHWException
	case vcpu.EventSoftInt:
		t = intTypeSoftInt
	}
	v.pending = uint32(ev.Vector) | t<<intInfoTypeShift | intInfoValid
	v.pendErr = 0
	if ev.HasError {
		v.pending |= intInfoErrorValid
		v.pendErr = ev.ErrorCode
	}
}

// Close clears the VMCS from the CPU and returns its pages and VPID.
func (v *VCPU) Close() error {
	if v.closed {
		return nil
	}
	v.closed = true
	if v.cpu != nil {
		v.Unbind() // its thread did not: the VMCS is still active on v.cpu
	}
	if v.b.vpids != nil {
		v.b.vpids.Release(uint32(v.vpid))
	}
	return v.pages.Free()
}

// SVM-form attributes to VMX access rights and back (SDM Vol. 3C Table
// 25-2): bits 7:0 the same, AVL/L/DB/G move from 11:8 to 15:12, bit 16
// marks an unusable segment.
const (
	arL        = 1 << 13
	arDB       = 1 << 14
	arG        = 1 << 15
	arUnusable = 1 << 16
)

func toAR(a uint16) uint64 {
	if a&x86.SegP == 0 {
		return arUnusable
	}
	return uint64(a&0xff) | uint64(a&0xf00)<<4
}

func fromAR(ar uint64) uint16 {
	if ar&arUnusable != 0 {
		return 0
	}
	return uint16(ar&0xff) | uint16(ar>>4&0xf00)
}

// FlushGuestTLB: the next entry invalidates the VP's VPID (INVVPID) and
// its EPT-derived translations.
func (v *VCPU) FlushGuestTLB() { v.flushRequested.Store(true) }

var _ vcpu.ExitRequester = (*VCPU)(nil)

// RequestExit and ClearExitRequest: vcpu.ExitRequester. The entry loop
// (run) looks at the request before each entry, with host interrupts off.
func (v *VCPU) RequestExit()      { v.exitReq.Store(true) }
func (v *VCPU) ClearExitRequest() { v.exitReq.Store(false) }
