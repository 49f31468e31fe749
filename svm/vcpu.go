package svm

import (
	"fmt"
	"unsafe"

	"gohv/hv"
)

// runContext is what vmrun (insn_amd64.s) reads and writes; its offsets are
// fixed there. It lives at the start of a physical page owned by the VCPU,
// with the two FXSAVE areas (16-byte aligned) later in the same page, so the
// garbage collector never sees it.
type runContext struct {
	gpr     [16]uint64 // RAX and RSP unused: they live in the VMCB
	vmcbPA  uint64
	hostPA  uint64
	guestFX uint64 // virtual addresses of the FXSAVE areas
	hostFX  uint64
}

const (
	ctxGuestFX = 0x400
	ctxHostFX  = 0x600
)

func vmrun(ctx *runContext)

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
	b       *Backend
	vmcbPA  uint64
	vmcb    *VMCB
	ctxPA   uint64
	ctx     *runContext
	asid    uint32
	regs    hv.Regs
	dirty   bool
	flush   bool
	pending uint64 // EVENTINJ for the next entry
	window  bool
	closed  bool
	broken  bool // BreakGuestState: enter with EFER.SVME clear
}

// NewVCPU allocates a VMCB and run context and sets up the intercepts,
// nested paging with nCR3 = nestedRoot, and a fresh ASID.
func (b *Backend) NewVCPU(nestedRoot uint64) (hv.VCPU, error) {
	v := &VCPU{b: b, dirty: true, flush: true}
	var err error
	if v.asid, err = b.allocASID(); err != nil {
		return nil, err
	}
	if v.vmcbPA, err = b.mem.AllocPage(); err != nil {
		b.releaseASID(v.asid)
		return nil, fmt.Errorf("svm: vmcb: %w", err)
	}
	if v.ctxPA, err = b.mem.AllocPage(); err != nil {
		b.mem.FreePage(v.vmcbPA)
		b.releaseASID(v.asid)
		return nil, fmt.Errorf("svm: run context: %w", err)
	}
	v.vmcb = (*VMCB)(b.mem.Page(v.vmcbPA))
	page := b.mem.Page(v.ctxPA)
	v.ctx = (*runContext)(unsafe.Pointer(page))
	v.ctx.vmcbPA = v.vmcbPA
	v.ctx.hostPA = b.hostVMCB
	v.ctx.guestFX = uint64(uintptr(unsafe.Pointer(&page[ctxGuestFX])))
	v.ctx.hostFX = uint64(uintptr(unsafe.Pointer(&page[ctxHostFX])))
	// FXSAVE image of the reset state: FCW 037Fh, MXCSR 1F80h.
	*(*uint16)(unsafe.Pointer(&page[ctxGuestFX])) = 0x037f
	*(*uint32)(unsafe.Pointer(&page[ctxGuestFX+24])) = 0x1f80

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
	c.SetU64(SaveGPAT, 0x0007_0406_0007_0406) // the architectural reset PAT
	return v, nil
}

func (v *VCPU) Regs() *hv.Regs        { return &v.regs }
func (v *VCPU) MarkStateDirty()       { v.dirty = true }
func (v *VCPU) InterruptShadow() bool { return v.vmcb.U64(CtlInterruptShadow)&1 != 0 }

// ClearInterruptShadow clears INTERRUPT_SHADOW (VMCB offset 0x68, bit 0).
func (v *VCPU) ClearInterruptShadow() {
	v.vmcb.SetU64(CtlInterruptShadow, v.vmcb.U64(CtlInterruptShadow)&^1)
}

// SyncState: Run already stores every field of Regs from the VMCB.
func (v *VCPU) SyncState() {}

// Inject queues ev for the next VMRUN through EVENTINJ (APM 15.20).
func (v *VCPU) Inject(ev hv.Event) {
	e := uint64(ev.Vector) | EventValid
	switch ev.Type {
	case hv.EventExternal:
		e |= EventTypeINTR
	case hv.EventNMI:
		e |= EventTypeNMI
	case hv.EventException:
		e |= EventTypeExc
	case hv.EventSoftInt:
		e |= EventTypeSoft
	}
	if ev.HasError {
		e |= EventErrValid | uint64(ev.ErrorCode)<<32
	}
	v.pending = e
}

// RequestInterruptWindow uses a virtual interrupt (V_IRQ, ignoring V_TPR)
// with the VINTR intercept: the exit comes when the guest could take it.
func (v *VCPU) RequestInterruptWindow(on bool) { v.window = on }

func (v *VCPU) Close() error {
	if v.closed {
		return nil
	}
	v.closed = true
	v.b.releaseASID(v.asid)
	err1 := v.b.mem.FreePage(v.vmcbPA)
	err2 := v.b.mem.FreePage(v.ctxPA)
	if err1 != nil {
		return err1
	}
	return err2
}

// segOffsets are the state-save offsets of the registers segs returns, in
// the same order.
var segOffsets = [8]int{SaveCS, SaveDS, SaveES, SaveSS, SaveFS, SaveGS, SaveTR, SaveLDTR}

func (v *VCPU) segs() [8]*hv.Segment {
	r := &v.regs
	return [8]*hv.Segment{&r.CS, &r.DS, &r.ES, &r.SS, &r.FS, &r.GS, &r.TR, &r.LDTR}
}

func loadSeg(c *VMCB, off int, s *hv.Segment) {
	c.SetSegment(off, Segment{s.Selector, s.Attrib, s.Limit, s.Base})
}

func storeSeg(c *VMCB, off int, s *hv.Segment) {
	x := c.Segment(off)
	*s = hv.Segment{Selector: x.Selector, Attrib: x.Attrib, Limit: x.Limit, Base: x.Base}
}

// Run enters the guest once. Must not allocate: it is the exit path.
func (v *VCPU) Run(e *hv.Exit) error {
	c, r := v.vmcb, &v.regs
	if v.dirty {
		c.SetU64(SaveCR0, r.CR0)
		c.SetU64(SaveCR2, r.CR2)
		c.SetU64(SaveCR3, r.CR3)
		c.SetU64(SaveCR4, r.CR4)
		c.SetU64(SaveEFER, r.EFER|eferSVME) // the guest sees EFER without SVME (hv's MSR model)
		if v.broken {
			c.SetU64(SaveEFER, r.EFER&^eferSVME)
		}
		for i, s := range v.segs() {
			loadSeg(c, segOffsets[i], s)
		}
		c.SetU16(SaveGDTR+2, 0)
		c.SetU32(SaveGDTR+4, r.GDTR.Limit)
		c.SetU64(SaveGDTR+8, r.GDTR.Base)
		c.SetU32(SaveIDTR+4, r.IDTR.Limit)
		c.SetU64(SaveIDTR+8, r.IDTR.Base)
		c.SetU8(SaveCPL, uint8(r.SS.Attrib>>5&3))
		if r.PAT != 0 {
			c.SetU64(SaveGPAT, r.PAT)
		}
		c.SetU64(SaveDR7, 0x400)
		c.SetU64(SaveDR6, 0xffff0ff0)
		v.dirty = false
	}
	c.SetU64(SaveRAX, r.GPR[hv.RAX])
	c.SetU64(SaveRSP, r.GPR[hv.RSP])
	c.SetU64(SaveRIP, r.RIP)
	c.SetU64(SaveRFLAGS, r.RFLAGS)
	v.ctx.gpr = r.GPR
	c.SetU64(CtlEventInj, v.pending)
	v.pending = 0
	vi := c.U64(CtlVIntr) &^ (VIntrIRQ | 1<<20)
	misc := uint32(misc1)
	if v.window {
		vi |= VIntrIRQ | 1<<20 // V_IRQ with V_IGN_TPR
		misc |= InterceptVINTR
	}
	c.SetU64(CtlVIntr, vi)
	c.SetU32(CtlInterceptMisc1, misc)
	if v.flush {
		c.SetU32(CtlTLBControl, TLBControlFlushASID)
		v.flush = false
	} else {
		c.SetU32(CtlTLBControl, TLBControlNothing)
	}
	c.SetU32(CtlVMCBClean, 0)

	vmrun(v.ctx)

	r.GPR = v.ctx.gpr
	r.GPR[hv.RAX] = c.U64(SaveRAX)
	r.GPR[hv.RSP] = c.U64(SaveRSP)
	r.RIP = c.U64(SaveRIP)
	r.RFLAGS = c.U64(SaveRFLAGS)
	r.CR0 = c.U64(SaveCR0)
	r.CR2 = c.U64(SaveCR2)
	r.CR3 = c.U64(SaveCR3)
	r.CR4 = c.U64(SaveCR4)
	r.EFER = c.U64(SaveEFER) &^ eferSVME
	for i, s := range v.segs() {
		storeSeg(c, segOffsets[i], s)
	}
	r.GDTR = hv.DescTable{Base: c.U64(SaveGDTR + 8), Limit: c.U32(SaveGDTR + 4)}
	r.IDTR = hv.DescTable{Base: c.U64(SaveIDTR + 8), Limit: c.U32(SaveIDTR + 4)}

	// An event whose delivery the exit interrupted is delivered again.
	if ii := c.U64(CtlExitIntInfo); ii&EventValid != 0 {
		v.pending = ii
	}
	v.decode(e)
	return nil
}

// decode turns the VMCB's exit code into a vendor-neutral exit.
func (v *VCPU) decode(e *hv.Exit) {
	c := v.vmcb
	code, i1, i2 := c.U64(CtlExitCode), c.U64(CtlExitInfo1), c.U64(CtlExitInfo2)
	*e = hv.Exit{Code: code, Info1: i1, Info2: i2}
	nrip := func() {
		if v.b.feat.NRIPSave {
			if n := c.U64(CtlNRIP); n > v.regs.RIP && n-v.regs.RIP <= 15 {
				e.InstrLen = uint8(n - v.regs.RIP)
			}
		}
	}
	switch code {
	case ExitINTR, ExitNMI, ExitSMI, ExitINIT:
		e.Kind = hv.ExitInterrupt
	case ExitVINTR:
		e.Kind = hv.ExitInterruptWindow
		v.window = false
	case ExitCPUID:
		e.Kind = hv.ExitCPUID
		nrip()
	case ExitMSR:
		e.Kind = hv.ExitMSRRead
		if i1&1 != 0 {
			e.Kind = hv.ExitMSRWrite
		}
		nrip()
	case ExitHLT:
		e.Kind = hv.ExitHLT
		nrip()
	case ExitVMMCALL:
		e.Kind = hv.ExitHypercall
		nrip()
	case ExitIOIO:
		e.Kind = hv.ExitIO
		e.Port = uint16(i1 >> 16)
		e.In = i1&IOInfoIn != 0
		e.String = i1&IOInfoString != 0
		e.Rep = i1&IOInfoRep != 0
		switch {
		case i1&IOInfoSz8 != 0:
			e.Size = 1
		case i1&IOInfoSz16 != 0:
			e.Size = 2
		default:
			e.Size = 4
		}
		// EXITINFO2 is the next RIP for IOIO intercepts on every SVM CPU.
		if i2 > v.regs.RIP && i2-v.regs.RIP <= 15 {
			e.InstrLen = uint8(i2 - v.regs.RIP)
		}
	case ExitNPF:
		e.Kind = hv.ExitNestedFault
		e.GPA = i2
		e.Present = i1&1 != 0
		e.Write = i1&2 != 0
		e.Fetch = i1&0x10 != 0
	case ExitShutdown:
		e.Kind = hv.ExitShutdown
	case ExitInvalid, ExitInvalid & 0xffff_ffff: // -1, as a 64-bit or (QEMU) 32-bit value
		e.Kind = hv.ExitInvalidState
		e.Detail = explainInvalid(c)
	case ExitVMRUN, ExitVMLOAD, ExitVMSAVE, ExitSTGI, ExitCLGI, ExitSKINIT, ExitINVLPGA,
		ExitMONITOR, ExitMWAIT, ExitXSETBV, ExitRDTSCP, ExitICEBP:
		e.Kind = hv.ExitInstruction
	default:
		e.Kind = hv.ExitUnexpected
	}
}

// BreakGuestState makes the next VMRUN fail its consistency checks by
// clearing EFER.SVME in the guest state (APM Vol. 2, 15.5.1).
func (v *VCPU) BreakGuestState() string {
	v.broken = true
	v.dirty = true
	return "EFER.SVME"
}

// explainInvalid repeats VMRUN's guest-state consistency checks (APM
// Vol. 2, 15.5.1) to name what made it fail with VMEXIT_INVALID.
func explainInvalid(c *VMCB) string {
	efer, cr0, cr4 := c.U64(SaveEFER), c.U64(SaveCR0), c.U64(SaveCR4)
	cs := c.Segment(SaveCS)
	const eferKnown = 1 | 1<<8 | 1<<10 | 1<<11 | 1<<12 | 1<<13 | 1<<14 | 1<<15
	switch {
	case efer&eferSVME == 0:
		return "EFER.SVME clear in the guest state"
	case efer&^eferKnown != 0:
		return "EFER: reserved bits set"
	case cr0&(1<<29) != 0 && cr0&(1<<30) == 0:
		return "CR0: NW set with CD clear"
	case cr0>>32 != 0:
		return "CR0: bits 63:32 set"
	case cr4>>23 != 0 || cr4&(1<<15|1<<19) != 0:
		return "CR4: reserved bits set"
	case efer&(1<<8) != 0 && cr0&(1<<31) != 0 && cr4&(1<<5) == 0:
		return "CR4.PAE clear with EFER.LME and CR0.PG set"
	case efer&(1<<8) != 0 && cr0&(1<<31) != 0 && cr0&1 == 0:
		return "CR0.PE clear with EFER.LME and CR0.PG set"
	case efer&(1<<8) != 0 && cr0&(1<<31) != 0 && cs.Attrib&(1<<9) != 0 && cs.Attrib&(1<<10) != 0:
		return "CS: L and D both set in long mode"
	case c.U32(CtlGuestASID) == 0:
		return "guest ASID 0 (the host's)"
	case c.U32(CtlInterceptMisc2)&InterceptVMRUN == 0:
		return "VMRUN intercept clear"
	}
	return "VMRUN refused the guest state for a reason gohv's checks do not cover"
}
