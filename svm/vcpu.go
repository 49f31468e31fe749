package svm

import (
	"errors"
	"fmt"
	"sync/atomic"

	"gohv/hv/vcpu"
)

func vmrun(ctx *runContext) (entered bool)

// Intercepts every VP gets. VMRUN must be intercepted (APM 15.5.1); the
// other SVM instructions, MONITOR/MWAIT and XSETBV would let the guest
// reach host state or instructions the CPU model hides, so they exit and
// the core injects #UD.
const (
	misc1 = InterceptINTR | InterceptNMI | InterceptSMI | InterceptINIT |
		InterceptCPUID | InterceptINVD | InterceptHLT | InterceptINVLPGA |
		InterceptIOIOProt | InterceptMSRProt | InterceptTaskSwitch | InterceptShutdown
	misc2 = InterceptVMRUN | InterceptVMMCALL | InterceptVMLOAD | InterceptVMSAVE |
		InterceptSTGI | InterceptCLGI | InterceptSKINIT | InterceptMONITOR |
		InterceptMWAIT | InterceptXSETBV | InterceptRDTSCP | InterceptICEBP
)

// VCPU is one VP on SVM.
type VCPU struct {
	b      *Backend
	pages  *vcpu.Pages // VMCB and run context
	vmcbPA uint64
	vmcb   *VMCB
	ctx    *runContext
	asid   uint32
	regs   vcpu.Regs
	dirty  bool
	flush  bool
	fast   vcpu.FastExit // the core's handler of the hot exits; nil: none
	// segsStale: the segment registers other than CS and SS, and GDTR/IDTR,
	// were not read back since the last exit (readSegments).
	segsStale bool
	// flushRequested is FlushGuestTLB's request, from any thread;
	// the entry folds it into flush.
	flushRequested atomic.Bool
	pending        uint64 // EVENTINJ for the next entry: exceptions, NMIs, software interrupts
	virq           uint16 // the external interrupt for the guest to take through V_IRQ: virqValid | vector
	window         bool
	tprHold        uint8 // SetTPRThreshold's class
	closed         bool
	broken         bool // BreakGuestStateForTest: enter with EFER.SVME clear
}

// NewVCPU allocates a VMCB and run context and sets up the intercepts,
// nested paging with nCR3 = nestedRoot, and a fresh ASID. On failure
// nothing stays allocated.
func (b *Backend) NewVCPU(nestedRoot uint64) (vcpu.VCPU, error) {
	v := &VCPU{b: b, pages: vcpu.NewPages(b.mem), dirty: true, flush: true}
	if err := v.init(nestedRoot); err != nil {
		v.Close()
		return nil, fmt.Errorf("svm: %w", err)
	}
	return v, nil
}

func (v *VCPU) init(nestedRoot uint64) error {
	b := v.b
	var err error
	if v.asid, err = b.asids.Alloc(); err != nil {
		return fmt.Errorf("ASID: %w", err)
	}
	var page *[4096]byte
	if v.vmcbPA, page, err = v.pages.Alloc("vmcb"); err != nil {
		return err
	}
	v.vmcb = vmcbAt(page)
	_, ctxPage, err := v.pages.Alloc("run context")
	if err != nil {
		return err
	}
	v.ctx = newRunContext(ctxPage, v.vmcbPA, 0) // the host's area comes with Bind
	vcpu.ResetFXSave(ctxPage[ctxGuestFX:])

	c := v.vmcb
	c.SetU32(CtlInterceptException, 0)
	c.SetU32(CtlInterceptMisc1, misc1)
	c.SetU32(CtlInterceptMisc2, misc2)
	c.SetU64(CtlIOPMBasePA, b.iopm)
	c.SetU64(CtlMSRPMBasePA, b.msrpm)
	c.SetU32(CtlGuestASID, v.asid)
	c.SetU64(CtlVIntr, VIntrMasking) // host interrupts are not masked by the guest's IF
	c.SetU64(CtlNPEnable, 1)
	c.SetU64(CtlNCR3, nestedRoot)
	return nil
}

func (v *VCPU) Regs() *vcpu.Regs { return &v.regs }
func (v *VCPU) MarkStateDirty()  { v.dirty = true }
func (v *VCPU) InterruptShadow() bool {
	return v.vmcb.U64(CtlInterruptShadow)&InterruptShadowActive != 0
}

// ClearInterruptShadow clears INTERRUPT_SHADOW.
func (v *VCPU) ClearInterruptShadow() {
	v.vmcb.SetU64(CtlInterruptShadow, v.vmcb.U64(CtlInterruptShadow)&^InterruptShadowActive)
}

// SyncState: Run already stores every field of Regs from the VMCB.
// SyncState reads the segment registers and descriptor tables storeState
// left in the VMCB.
func (v *VCPU) SyncState() {
	if v.segsStale {
		v.readSegments()
	}
}

// virqValid marks VCPU.virq as holding a vector.
const virqValid = 1 << 8

// Inject queues ev for the next VMRUN: an external interrupt as a virtual
// interrupt (V_IRQ with V_INTR_VECTOR, APM 15.21.4), which the guest takes
// before its first instruction because the core injects only when
// RFLAGS.IF and the interrupt shadow allow; anything else through EVENTINJ
// (APM 15.20). An external interrupt the guest has not yet taken stays
// queued across exits (EventPending).
func (v *VCPU) Inject(ev vcpu.Event) {
	if ev.Type == vcpu.EventExternal {
		v.virq = virqValid | uint16(ev.Vector)
		return
	}
	e := uint64(ev.Vector) | EventValid
	switch ev.Type {
	case vcpu.EventNMI:
		e |= EventTypeNMI
	case vcpu.EventException:
		e |= EventTypeExc
	case vcpu.EventSoftInt:
		e |= EventTypeSoft
	}
	if ev.HasError {
		e |= EventErrValid | uint64(ev.ErrorCode)<<32
	}
	v.pending = e
}

// EventPending: EVENTINJ is loaded from v.pending at the next VMRUN, and
// an external interrupt waits in v.virq until the guest takes it.
func (v *VCPU) EventPending() bool { return v.pending != 0 || v.virq != 0 }

// DropEvents clears EVENTINJ's next value and the virtual interrupt.
func (v *VCPU) DropEvents() { v.pending, v.virq = 0, 0 }

// RequestInterruptWindow uses a virtual interrupt (V_IRQ, ignoring V_TPR)
// with the VINTR intercept: the exit comes when the guest could take it.
func (v *VCPU) RequestInterruptWindow(on bool) { v.window = on }

// SetTPRThreshold: the guest writes CR8 into V_TPR without exits, so a
// virtual interrupt of priority class (V_INTR_PRIO, honouring V_TPR) makes
// the VINTR exit come when it lowers CR8 below class with IF set.
func (v *VCPU) SetTPRThreshold(class uint8) { v.tprHold = class }

// Close returns the VMCB, the run context and the ASID.
// errNotBound is Run before Bind: a bug in the caller.
var errNotBound = errors.New("svm: Run on a VP not bound to a host CPU (Bind)")

// Bind makes host CPU cpu, which runs the caller, this VP's: VMRUN saves
// the host's state in that CPU's areas (SVM turned on there first if need
// be), and the VP's ASID is flushed before its first entry there, since
// another VP with the same ASID may have left translations behind.
func (v *VCPU) Bind(cpu int) error {
	if cpu < 0 || cpu >= len(v.b.cpus) {
		return fmt.Errorf("svm: bind to host CPU %d: beyond the %d a backend keeps", cpu, len(v.b.cpus))
	}
	c, err := v.b.enableCPU(cpu)
	if err != nil {
		return err
	}
	v.ctx.hostPA = c.hostSavePA
	v.flush = true
	return nil
}

// Unbind: nothing of a VP stays in a CPU between VMRUNs on SVM; Run
// refuses until the next Bind.
func (v *VCPU) Unbind() { v.ctx.hostPA = 0 }

func (v *VCPU) Close() error {
	if v.closed {
		return nil
	}
	v.closed = true
	v.b.asids.Release(v.asid)
	return v.pages.Free()
}

// FlushGuestTLB: the next entry flushes the guest's ASID (TLB_CONTROL).
func (v *VCPU) FlushGuestTLB() { v.flushRequested.Store(true) }

var _ vcpu.ExitRequester = (*VCPU)(nil)

// RequestExit and ClearExitRequest: vcpu.ExitRequester, through the run
// context, where vmrun looks at the request with GIF clear.
func (v *VCPU) RequestExit()      { v.ctx.exitReq.Store(1) }
func (v *VCPU) ClearExitRequest() { v.ctx.exitReq.Store(0) }
