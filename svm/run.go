package svm

import (
	"gohv/hv/vcpu"
	"gohv/x86"
)

// segOffsets are the state-save offsets of the registers segs returns, in
// the same order.
var segOffsets = [8]int{SaveCS, SaveDS, SaveES, SaveSS, SaveFS, SaveGS, SaveTR, SaveLDTR}

func (v *VCPU) segs() [8]*vcpu.Segment {
	r := &v.regs
	return [8]*vcpu.Segment{&r.CS, &r.DS, &r.ES, &r.SS, &r.FS, &r.GS, &r.TR, &r.LDTR}
}

// loadState writes the whole of Regs into the VMCB's state-save area.
func (v *VCPU) loadState() {
	c, r := v.vmcb, &v.regs
	c.SetU64(SaveCR0, r.CR0)
	c.SetU64(SaveCR2, r.CR2)
	c.SetU64(SaveCR3, r.CR3)
	c.SetU64(SaveCR4, r.CR4)
	c.SetU64(SaveEFER, r.EFER|x86.EFERSVME) // the guest sees EFER without SVME (hv's MSR model)
	if v.broken {
		c.SetU64(SaveEFER, r.EFER&^x86.EFERSVME)
	}
	for i, s := range v.segs() {
		c.SetSegment(segOffsets[i], Segment{s.Selector, s.Attrib, s.Limit, s.Base})
	}
	c.SetU16(SaveGDTR+2, 0)
	c.SetU32(SaveGDTR+4, r.GDTR.Limit)
	c.SetU64(SaveGDTR+8, r.GDTR.Base)
	c.SetU32(SaveIDTR+4, r.IDTR.Limit)
	c.SetU64(SaveIDTR+8, r.IDTR.Base)
	c.SetU8(SaveCPL, r.CPL())
	c.SetU64(SaveGPAT, r.PAT)
	c.SetU64(SaveDR7, x86.DR7Reset)
	c.SetU64(SaveDR6, x86.DR6Reset)
}

// storeState reads back from the VMCB after an exit what the core uses
// on every exit: RAX, RSP, RIP, RFLAGS, the control registers, EFER, PAT,
// CR8, CS (the code mode) and SS (the CPL). The other segment registers
// and the descriptor tables are read on demand (SyncState, or before the
// state is written back): about 60 instructions fewer per exit.
func (v *VCPU) storeState() {
	c, r := v.vmcb, &v.regs
	r.GPR[x86.RAX] = c.U64(SaveRAX)
	r.GPR[x86.RSP] = c.U64(SaveRSP)
	r.RIP = c.U64(SaveRIP)
	r.RFLAGS = c.U64(SaveRFLAGS)
	r.CR0 = c.U64(SaveCR0)
	r.CR2 = c.U64(SaveCR2)
	r.CR3 = c.U64(SaveCR3)
	r.CR4 = c.U64(SaveCR4)
	r.EFER = c.U64(SaveEFER) &^ x86.EFERSVME
	r.PAT = c.U64(SaveGPAT)
	r.CR8 = c.U64(CtlVIntr) & VIntrTPRMask
	x := c.Segment(SaveCS)
	r.CS = vcpu.Segment{Selector: x.Selector, Attrib: x.Attrib, Limit: x.Limit, Base: x.Base}
	x = c.Segment(SaveSS)
	r.SS = vcpu.Segment{Selector: x.Selector, Attrib: x.Attrib, Limit: x.Limit, Base: x.Base}
	v.segsStale = true
}

// readSegments fills the segment registers storeState leaves and
// GDTR/IDTR from the VMCB.
func (v *VCPU) readSegments() {
	c, r := v.vmcb, &v.regs
	for i, s := range v.segs() {
		x := c.Segment(segOffsets[i])
		*s = vcpu.Segment{Selector: x.Selector, Attrib: x.Attrib, Limit: x.Limit, Base: x.Base}
	}
	r.GDTR = vcpu.DescTable{Base: c.U64(SaveGDTR + 8), Limit: c.U32(SaveGDTR + 4)}
	r.IDTR = vcpu.DescTable{Base: c.U64(SaveIDTR + 8), Limit: c.U32(SaveIDTR + 4)}
	v.segsStale = false
}

// Run enters the guest until an exit for the core: one the core's
// FastExit (if set) does not take. Must not allocate: it is the exit path.
func (v *VCPU) Run(e *vcpu.Exit) error {
	if v.ctx.hostPA == 0 {
		return errNotBound
	}
	for {
		v.enter()
		if !vmrun(v.ctx) { // an exit request (vcpu.ExitRequester)
			*e = vcpu.Exit{Kind: vcpu.ExitNone}
			return nil
		}
		v.complete(e)
		if v.fast == nil || !vcpu.FastKind(e.Kind) {
			return nil
		}
		switch v.fast(e, false) { // host interrupts are the core's here
		case vcpu.FastHandled:
			continue
		case vcpu.FastHandledReturn:
			*e = vcpu.Exit{Kind: vcpu.ExitNone}
		}
		return nil
	}
}

// SetFastExit sets the core's handler for the exits vcpu.FastKind names.
func (v *VCPU) SetFastExit(f vcpu.FastExit) { v.fast = f }

// enter writes what the next VMRUN needs into the VMCB: the registers,
// the event to inject, the virtual interrupt and the intercepts that
// depend on it, and the TLB flush. It consumes nothing: vmrun may decline
// to enter (an exit request), and the next enter writes the same again;
// complete, after a VMRUN, retires the event and the flush. Must not
// allocate.
func (v *VCPU) enter() {
	c, r := v.vmcb, &v.regs
	if v.dirty {
		if v.segsStale {
			v.readSegments() // the core changed other state; segments are the guest's
		}
		v.loadState()
		v.dirty = false
	}
	c.SetU64(SaveRAX, r.GPR[x86.RAX])
	c.SetU64(SaveRSP, r.GPR[x86.RSP])
	c.SetU64(SaveRIP, r.RIP)
	c.SetU64(SaveRFLAGS, r.RFLAGS)
	v.ctx.gpr = r.GPR
	c.SetU64(CtlEventInj, v.pending)
	vi := c.U64(CtlVIntr)&^(VIntrIRQ|VIntrIgnTPR|VIntrTPRMask|VIntrPrioMask|VIntrVectorMask) | r.CR8&VIntrTPRMask
	misc := uint32(misc1)
	crIntercept := uint32(0)
	switch {
	case v.virq != 0:
		// The external interrupt rides V_IRQ with the VINTR intercept
		// off: the guest takes V_INTR_VECTOR as soon as RFLAGS.IF and
		// its interrupt shadow allow (APM 15.21.4), which the core has
		// checked. Not EVENTINJ: QEMU's TCG (7.2 and later) delivers an
		// EVENTINJ interrupt but leaves its vector as the CPU's pending
		// exception, and delivers it a second time, with IF clear, the
		// next time its loop yields before anything else resets that
		// (under -icount, whenever a timer is due). A Linux guest took
		// its timer vector again inside the timer handler and hung.
		vi |= VIntrIRQ | VIntrIgnTPR | uint64(uint8(v.virq))<<VIntrVectorShift
	case v.window:
		vi |= VIntrIRQ | VIntrIgnTPR
		misc |= InterceptVINTR
	case v.tprHold != 0:
		vi |= VIntrIRQ | uint64(v.b.vintrPrio(v.tprHold))<<VIntrPrioShift
		misc |= InterceptVINTR
	}
	if vi&VIntrIRQ != 0 {
		// While a virtual interrupt is armed, CR8 writes exit: QEMU 7.2's
		// TCG raises the virtual interrupt from a guest's CR8 write without
		// its I/O-thread lock and aborts (tcg_handle_interrupt assertion).
		// The core applies the write; the VINTR exit still comes when CR8
		// is lowered by other means.
		crIntercept = InterceptCR8Write
	}
	c.SetU32(CtlInterceptCR, crIntercept)
	c.SetU64(CtlVIntr, vi)
	c.SetU32(CtlInterceptMisc1, misc)
	if v.flushRequested.Swap(false) {
		v.flush = true
	}
	if v.flush {
		c.SetU32(CtlTLBControl, TLBControlFlushASID)
	} else {
		c.SetU32(CtlTLBControl, TLBControlNothing)
	}
	c.SetU32(CtlVMCBClean, 0)
}

// complete reads the guest's state and the exit back from the VMCB after
// #VMEXIT, and retires what the entry delivered (the event, the flush).
// Must not allocate.
func (v *VCPU) complete(e *vcpu.Exit) {
	c := v.vmcb
	v.pending, v.flush = 0, false // VMRUN took EVENTINJ and TLB_CONTROL
	v.regs.GPR = v.ctx.gpr
	v.storeState()
	if v.virq != 0 && c.U64(CtlVIntr)&VIntrIRQ == 0 {
		v.virq = 0 // the guest took it
	}
	// An event whose delivery the exit interrupted is delivered again; an
	// external interrupt the same way as the first time.
	if ii := c.U64(CtlExitIntInfo); ii&EventValid != 0 {
		if external(ii) {
			v.virq = virqValid | uint16(uint8(ii))
		} else {
			v.pending = ii
		}
	}
	v.decode(e)
}

// external reports whether EXITINTINFO names an external interrupt. QEMU's
// TCG records an interrupt whose delivery a nested page fault cut short as
// an exception; an exception vector is below 32, so a larger one can only
// have been an interrupt.
func external(ii uint64) bool {
	switch ii & EventTypeMask {
	case EventTypeINTR:
		return true
	case EventTypeExc:
		return uint8(ii) >= 32
	}
	return false
}
