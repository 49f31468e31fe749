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

// storeState reads every field of Regs back from the VMCB after an exit.
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
	for i, s := range v.segs() {
		x := c.Segment(segOffsets[i])
		*s = vcpu.Segment{Selector: x.Selector, Attrib: x.Attrib, Limit: x.Limit, Base: x.Base}
	}
	r.GDTR = vcpu.DescTable{Base: c.U64(SaveGDTR + 8), Limit: c.U32(SaveGDTR + 4)}
	r.IDTR = vcpu.DescTable{Base: c.U64(SaveIDTR + 8), Limit: c.U32(SaveIDTR + 4)}
}

// Run enters the guest once. Must not allocate: it is the exit path.
func (v *VCPU) Run(e *vcpu.Exit) error {
	c, r := v.vmcb, &v.regs
	if v.dirty {
		v.loadState()
		v.dirty = false
	}
	c.SetU64(SaveRAX, r.GPR[x86.RAX])
	c.SetU64(SaveRSP, r.GPR[x86.RSP])
	c.SetU64(SaveRIP, r.RIP)
	c.SetU64(SaveRFLAGS, r.RFLAGS)
	v.ctx.gpr = r.GPR
	c.SetU64(CtlEventInj, v.pending)
	v.pending = 0
	vi := c.U64(CtlVIntr)&^(VIntrIRQ|VIntrIgnTPR|VIntrTPRMask|VIntrPrioMask) | r.CR8&VIntrTPRMask
	misc := uint32(misc1)
	crIntercept := uint32(0)
	switch {
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
	if v.flush {
		c.SetU32(CtlTLBControl, TLBControlFlushASID)
		v.flush = false
	} else {
		c.SetU32(CtlTLBControl, TLBControlNothing)
	}
	c.SetU32(CtlVMCBClean, 0)

	vmrun(v.ctx)

	r.GPR = v.ctx.gpr
	v.storeState()
	// An event whose delivery the exit interrupted is delivered again.
	if ii := c.U64(CtlExitIntInfo); ii&EventValid != 0 {
		v.pending = ii
	}
	v.decode(e)
	return nil
}
