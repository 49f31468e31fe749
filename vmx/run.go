package vmx

import (
	"fmt"

	"gohv/hv/vcpu"
	"gohv/x86"
)

type segFields struct{ sel, base, limit, ar uint32 }

var segs = [...]segFields{
	{GuestESSel, GuestESBase, GuestESLimit, GuestESAR},
	{GuestCSSel, GuestCSBase, GuestCSLimit, GuestCSAR},
	{GuestSSSel, GuestSSBase, GuestSSLimit, GuestSSAR},
	{GuestDSSel, GuestDSBase, GuestDSLimit, GuestDSAR},
	{GuestFSSel, GuestFSBase, GuestFSLimit, GuestFSAR},
	{GuestGSSel, GuestGSBase, GuestGSLimit, GuestGSAR},
	{GuestLDTRSel, GuestLDTRBase, GuestLDTRLimit, GuestLDTRAR},
	{GuestTRSel, GuestTRBase, GuestTRLimit, GuestTRAR},
}

// trIndex is TR's place in segs (BreakGuestStateForTest corrupts it).
const trIndex = 7

func (v *VCPU) segPtrs() [8]*vcpu.Segment {
	r := v.regs
	return [8]*vcpu.Segment{&r.ES, &r.CS, &r.SS, &r.DS, &r.FS, &r.GS, &r.LDTR, &r.TR}
}

// writeState loads the whole of Regs into the VMCS.
func (v *VCPU) writeState(w *writer) {
	r := v.regs
	v.cr0Shadow, v.cr4Shadow = r.CR0, r.CR4
	w.set(CR0ReadShadow, r.CR0)
	w.set(CR4ReadShadow, r.CR4)
	w.set(GuestCR0, v.hwCR0(r.CR0))
	w.set(GuestCR3, r.CR3)
	w.set(GuestCR4, v.hwCR4(r.CR4))
	w.set(GuestEFER, r.EFER)
	w.set(GuestPAT, r.PAT)
	for i, s := range v.segPtrs() {
		f := segs[i]
		w.set(f.sel, uint64(s.Selector))
		w.set(f.base, s.Base)
		w.set(f.limit, uint64(s.Limit))
		ar := toAR(s.Attrib)
		if i == trIndex && v.broken != "" {
			ar |= 0x3 << 17 // reserved bits 31:17 must be zero
		}
		w.set(f.ar, ar)
	}
	w.set(GuestGDTRBase, r.GDTR.Base)
	w.set(GuestGDTRLimit, uint64(r.GDTR.Limit))
	w.set(GuestIDTRBase, r.IDTR.Base)
	w.set(GuestIDTRLimit, uint64(r.IDTR.Limit))
	w.set(GuestDR7, x86.DR7Reset)
	w.set(GuestDebugCtl, 0)
	w.set(GuestActivityState, 0)
	w.set(GuestPendingDbg, 0)
	v.intrDirty = true // written by the entry loop from v.intr
	entry := uint64(v.b.ctl.Entry)
	if r.LongMode() {
		entry |= entryIA32e
	}
	w.set(EntryControls, entry)
}

// hwCR0 and hwCR4 are the values the CPU runs with: the guest's, plus the
// bits VMX fixes.
func (v *VCPU) hwCR0(c uint64) uint64 {
	return (c | v.b.cr0Fixed0&^(x86.CR0PE|x86.CR0PG)) & (v.b.cr0Fixed1 | 0xffff_ffff_0000_0000)
}

func (v *VCPU) hwCR4(c uint64) uint64 { return c | v.b.cr4Fixed0 }

// Run enters the guest once (more than once when an exit is the backend's
// own business: INVLPG, INVD, MOV from CR3, or one the core's FastExit
// took). Interrupts are off from VMPTRLD to the last VMREAD, so the VMCS
// stays current; they are on while FastExit handles an exit that may
// block (one it did not take bounded), and the VMCS is made current again
// after it (ensure). Run returns with the state vcpu.VCPU.Run promises
// (fillState). Must not allocate.
func (v *VCPU) Run(e *vcpu.Exit) error {
	f := x86.CLI()
	err := v.run(e, &f)
	x86.RestoreFlags(f)
	return err
}

// SetFastExit sets the core's handler for the exits vcpu.FastKind names.
func (v *VCPU) SetFastExit(f vcpu.FastExit) { v.fast = f }

func (v *VCPU) run(e *vcpu.Exit, flags *uint64) error {
	if err := v.load(); err != nil {
		return err
	}
	// The VP's thread, hence its FS base, is the same for the whole Run:
	// looked at once, not at every entry of the loop.
	if fs := x86.RDMSR(x86.MsrFSBase); fs != v.hostFS {
		w := writer{v: v}
		if w.set(HostFSBase, fs); w.err != nil {
			return w.err
		}
		v.hostFS = fs
	}
	for {
		if v.entryCalledOff(e) {
			return nil
		}
		if v.quickEntry() {
			if v.vapic != nil {
				v.vapic[vtprOffset] = uint8(v.regs.CR8 << 4) // VTPR (SDM Vol. 3C 30.1.1)
			}
			v.ensure() // the last call before the entry: no preemption point follows
		} else if err := v.prepareEntry(); err != nil {
			return err
		}
		vmenter(v.ctx)

		if fl := v.ctx.fail; fl != 0 {
			if fl&x86.RFLAGSCF != 0 {
				return fmt.Errorf("vmx: VM entry failed: VMfailInvalid (no current VMCS)")
			}
			return fmt.Errorf("vmx: VM entry failed: %s", VMInstrErrorName(v.rd(VMInstrError)))
		}
		if v.exited(e, flags) {
			return nil
		}
	}
}

// entryCalledOff is the entry loop's look at the exit request
// (vcpu.ExitRequester), its last before the entry: host interrupts are
// off from here on, so a request after the look comes with a kick that
// is pending when the guest starts, and the guest exits at once. When
// the request is set, e is ExitNone and Regs holds what Run promises (an
// exit FastExit handled may have left only the fast fields current).
// Must not allocate.
func (v *VCPU) entryCalledOff(e *vcpu.Exit) bool {
	if !v.exitReq.Load() {
		return false
	}
	v.fillState(stateMode | stateRest)
	*e = vcpu.Exit{Kind: vcpu.ExitNone}
	return true
}

// exited reads and decodes the exit vmenter came back with and offers
// the kinds the core's FastExit takes to it: true when Run returns e to
// the core, with Regs filled as vcpu.VCPU.Run promises; false when the
// guest is entered again (the backend's own exit, or one FastExit
// handled). flags are the host's RFLAGS from before Run disabled
// interrupts. Must not allocate.
func (v *VCPU) exited(e *vcpu.Exit, flags *uint64) bool {
	v.readExit()
	if !v.decode(e) {
		return false
	}
	if v.fast == nil || !vcpu.FastKind(e.Kind) {
		v.fillState(stateMode | stateRest)
		return true
	}
	v.fillState(fastState(e.Kind))
	// Host interrupts wait for a bounded handling, as they do for the
	// decoding; anything else is handled with them on.
	res := v.fast(e, true)
	if res == vcpu.FastUnbounded {
		res = v.fastUnmasked(e, flags)
	}
	switch res {
	case vcpu.FastHandled:
		return false
	case vcpu.FastHandledReturn:
		*e = vcpu.Exit{Kind: vcpu.ExitNone}
	}
	v.fillState(stateMode | stateRest)
	return true
}

// fastUnmasked offers e to the core's FastExit again, unbounded, with
// host interrupts as they were before Run, and disables them again after
// it. Over a host test's VMCS image there are no interrupts to manage.
func (v *VCPU) fastUnmasked(e *vcpu.Exit, flags *uint64) vcpu.FastResult {
	if v.image != nil {
		return v.fast(e, false)
	}
	x86.RestoreFlags(*flags)
	res := v.fast(e, false)
	*flags = x86.CLI()
	return res
}

// quickEntry reports whether the next entry needs no VMWRITE beyond
// vmenter's own — what prepareEntry would find, looked at in one
// expression: nothing to load after MarkStateDirty, RSP and RFLAGS as the
// VMCS holds them, the timer written, no interruptibility state, event,
// TPR threshold or window request to write, no flush. Then the entry
// needs only the VTPR, which the caller writes. A fast exit's re-entry is
// usually quick; small enough to inline. Must not allocate.
func (v *VCPU) quickEntry() bool {
	r := v.regs
	return !(v.dirty || v.intrDirty || v.pending != 0 || v.flush || !v.timerWritten || !v.vmcsKnown ||
		r.GPR[x86.RSP] != v.vmcsRSP || r.RFLAGS != v.vmcsRFLAGS || v.tprThreshold != v.tprThresholdWritten ||
		v.window != (v.procWritten&procIntWindowExiting != 0) || v.flushRequested.Load())
}

// prepareEntry writes what the next entry needs beyond what vmenter
// writes itself (RIP, from the run context): the whole state after
// MarkStateDirty, and otherwise only fields whose value changed — RSP and
// RFLAGS when the core changed them, the preemption timer once, the
// interruptibility state when the core ended a shadow, an event to
// deliver, the TPR threshold and the window request. A fast exit's
// re-entry usually writes none of them. Interrupts off; must not
// allocate.
func (v *VCPU) prepareEntry() error {
	w := writer{v: v}
	r := v.regs
	if v.dirty {
		v.fillState(stateAll) // the core wrote what it read; the rest is the CPU's
		v.writeState(&w)
		v.dirty = false
	}
	// The VMCS holds vmcsRSP and vmcsRFLAGS (the last exit read them or
	// the last entry wrote them); Regs holds them too while stateRest is
	// stale, so only a change by the core is written.
	if !v.vmcsKnown || r.GPR[x86.RSP] != v.vmcsRSP {
		w.set(GuestRSP, r.GPR[x86.RSP])
		v.vmcsRSP = r.GPR[x86.RSP]
	}
	if !v.vmcsKnown || r.RFLAGS != v.vmcsRFLAGS {
		w.set(GuestRFLAGS, r.RFLAGS)
		v.vmcsRFLAGS = r.RFLAGS
	}
	v.vmcsKnown = true
	// The timer's field keeps its value across exits (gohv does not set
	// "save VMX-preemption timer value", SDM Vol. 3C 27.3): written once
	// (never without the timer).
	if !v.timerWritten {
		if v.b.preemptTicks != 0 {
			w.set(PreemptionTimer, v.b.preemptTicks)
		}
		v.timerWritten = true
	}
	if v.intrDirty {
		w.set(GuestInterruptibility, v.intr)
		v.intrDirty = false
	}
	// A VM exit clears the valid bit of the entry interruption
	// information (SDM Vol. 3C 28.2, updating the VM-entry control
	// fields): only an event to deliver is written.
	if v.pending != 0 {
		w.set(EntryIntrInfo, uint64(v.pending))
		w.set(EntryExcErrorCode, uint64(v.pendErr))
		w.set(EntryInstrLen, uint64(v.pendLen))
		v.pending = 0
	}
	if v.vapic != nil {
		// VTPR (SDM Vol. 3C 30.1.1): CR8 in bits 7:4 of offset 0x80.
		v.vapic[vtprOffset] = uint8(r.CR8 << 4)
		if v.tprThreshold != v.tprThresholdWritten {
			w.set(TPRThreshold, uint64(v.tprThreshold))
			v.tprThresholdWritten = v.tprThreshold
		}
	}
	proc := uint64(v.b.ctl.Proc)
	if v.window {
		proc |= procIntWindowExiting
	}
	if proc != v.procWritten {
		w.set(ProcControls, proc)
		v.procWritten = proc
	}
	if w.err != nil {
		return w.err
	}
	if v.flushRequested.Load() {
		v.flushRequested.Store(false)
		v.flush = true
	}
	if v.flush {
		v.invalidate()
		v.flush = false
	}
	v.ensure() // the last call before the entry: no preemption point follows
	return nil
}

// invalidate flushes the VP's cached translations: EPT-derived ones by
// INVEPT, linear ones by INVVPID (or the entry itself without VPID).
func (v *VCPU) invalidate() {
	desc := [2]uint64{v.eptp, 0}
	if v.b.eptCap&capINVEPTSingle != 0 {
		invept(inveptSingleContext, &desc)
	} else {
		invept(inveptAllContexts, &desc)
	}
	if v.vpid != 0 && v.b.eptCap&capINVVPID != 0 {
		d := [2]uint64{uint64(v.vpid), 0}
		if v.b.eptCap&capINVVPIDSingle != 0 {
			invvpid(invvpidSingleContext, &d)
		} else {
			invvpid(invvpidAllContexts, &d)
		}
	}
}

// vtprOffset is the virtual TPR's place in the virtual-APIC page.
const vtprOffset = 0x80

// INVEPT and INVVPID types (SDM Vol. 3C 30.3).
const (
	inveptSingleContext  = 1
	inveptAllContexts    = 2
	invvpidSingleContext = 1
	invvpidAllContexts   = 2
)

// What an exit reads of the guest's state, and when. vmexitPoint reads
// what every exit needs into the run context (readExit takes it from
// there): the exit reason, qualification, instruction length and
// IDT-vectoring information, the interruptibility state, RIP and CS's
// access rights (the code size for RIP's wrap-around); and at a VMCALL
// exit the mode group too. The rest is read by fillState, in groups, when
// something needs it:
//
//   - stateMode: CR0, EFER and SS's access rights, the mode and CPL
//     (a hypercall's checks: fastState);
//   - stateRest: RSP, RFLAGS, CR3, CR4, PAT and CS's base;
//   - stateSegs: the other segment registers and GDTR/IDTR.
//
// Run fills stateMode and stateRest before it returns, so the core's run
// loop sees what vcpu.VCPU.Run promises; a FastExit sees only what
// vcpu.FastState names for its kind until it calls SyncState, which
// fills everything; an entry after MarkStateDirty fills everything
// before it writes the state back. CPUID and port I/O exits handled
// through FastExit read no field beyond vmexitPoint's.
const (
	stateMode = 1 << iota
	stateRest
	stateSegs
	stateAll = stateMode | stateRest | stateSegs
)

// fastState is what the backend reads before it offers an exit of kind k
// to FastExit: vcpu.FastState(k) in this backend's groups.
func fastState(k vcpu.ExitKind) uint8 {
	if vcpu.FastState(k)&vcpu.FastMode != 0 {
		return stateMode
	}
	return 0
}

// readExit takes what vmexitPoint read at the exit from the run context
// (a host test's VMCS image stands in: imageExit) — the GPRs, RIP and CR2
// are in Regs already — and marks the rest of the state stale. Must not
// allocate.
func (v *VCPU) readExit() {
	if v.image != nil {
		v.imageExit()
	}
	r, c := v.regs, v.ctx
	r.CS.Attrib = fromAR(c.csAR)
	if v.vapic != nil {
		r.CR8 = uint64(v.vapic[vtprOffset] >> 4)
	}
	v.intr = c.intr
	v.stale = stateAll
	if c.reason == reasonVMCALL {
		v.modeFromContext() // vmexitPoint read it
	}
}

// imageExit is vmexitPoint's reads of the exit, from a host test's VMCS
// image into the run context (the GPRs are the test's).
func (v *VCPU) imageExit() {
	c, m := v.ctx, v.image
	c.reason, c.qual, c.instrLen, c.idtVect = m.read(ExitReason), m.read(ExitQualification), m.read(ExitInstrLen), m.read(IDTVectInfo)
	c.intr, c.regs.RIP, c.csAR = m.read(GuestInterruptibility), m.read(GuestRIP), m.read(GuestCSAR)
	if c.reason == reasonVMCALL {
		for i, f := range modeFields {
			c.mode[i] = m.read(f)
		}
	}
}

// modeFromContext fills stateMode from the run context's mode fields.
func (v *VCPU) modeFromContext() {
	r, m := v.regs, &v.ctx.mode
	r.CR0 = m[modeCR0]&^v.cr0Mask | v.cr0Shadow&v.cr0Mask
	r.EFER = m[modeEFER]
	r.SS.Attrib = fromAR(m[modeSSAR])
	v.stale &^= stateMode
}

// fillState reads the groups of want that are stale since the last exit
// into Regs (fill). Interrupts off on hardware (every VMREAD); must not
// allocate. Small enough to inline: an exit that needs nothing more
// costs a test.
func (v *VCPU) fillState(want uint8) {
	if want&v.stale != 0 {
		v.fill(want & v.stale)
	}
}

func (v *VCPU) fill(want uint8) {
	r := v.regs
	if want&stateMode != 0 {
		v.readFields(modeFields[:], v.ctx.mode[:])
		v.modeFromContext()
	}
	if want&stateRest != 0 {
		x := &v.exitVals
		v.readFields(restFields[:], x[:])
		r.GPR[x86.RSP], r.RFLAGS = x[restRSP], x[restRFLAGS]
		v.vmcsRSP, v.vmcsRFLAGS, v.vmcsKnown = x[restRSP], x[restRFLAGS], true
		r.CR3 = x[restCR3]
		r.CR4 = x[restCR4]&^v.cr4Mask | v.cr4Shadow&v.cr4Mask
		r.PAT = x[restPAT]
		r.CS.Base = x[restCSBase]
	}
	if want&stateSegs != 0 {
		v.readSegments()
	}
	v.stale &^= want
}

// modeFields are stateMode's VMCS fields, as the run context's mode holds
// them (vmexitPoint reads the same three for a VMCALL).
var modeFields = [numModeFields]uint32{modeCR0: GuestCR0, modeEFER: GuestEFER, modeSSAR: GuestSSAR}

const (
	modeCR0 = iota
	modeEFER
	modeSSAR
	numModeFields
)

// restFields are stateRest's VMCS fields; exitVals holds them, indexed by
// the rest* constants.
var restFields = [numRestFields]uint32{
	restRSP: GuestRSP, restRFLAGS: GuestRFLAGS, restCR3: GuestCR3, restCR4: GuestCR4, restPAT: GuestPAT, restCSBase: GuestCSBase,
}

const (
	restRSP = iota
	restRFLAGS
	restCR3
	restCR4
	restPAT
	restCSBase
	numRestFields
)

// readFields reads fields into out (the same length: 3 or 6, fillState's
// batches): one unrolled VMREAD batch on the hardware, field by field
// from a test's VMCS image. Must not allocate.
func (v *VCPU) readFields(fields []uint32, out []uint64) {
	if v.image != nil {
		for i, f := range fields {
			out[i] = v.image.read(f)
		}
		return
	}
	v.ensure()
	switch len(fields) {
	case 3:
		vmread3((*[3]uint32)(fields), (*[3]uint64)(out))
	case 6:
		vmread6((*[6]uint32)(fields), (*[6]uint64)(out))
	default:
		panic("vmx: readFields of a batch fillState does not make")
	}
}

// readSegments fills every segment register and GDTR/IDTR from the VMCS.
func (v *VCPU) readSegments() {
	r := v.regs
	for i, s := range v.segPtrs() {
		f := segs[i]
		*s = vcpu.Segment{Selector: uint16(v.rd(f.sel)), Base: v.rd(f.base), Limit: uint32(v.rd(f.limit)), Attrib: fromAR(v.rd(f.ar))}
	}
	r.GDTR = vcpu.DescTable{Base: v.rd(GuestGDTRBase), Limit: uint32(v.rd(GuestGDTRLimit))}
	r.IDTR = vcpu.DescTable{Base: v.rd(GuestIDTRBase), Limit: uint32(v.rd(GuestIDTRLimit))}
}

// SyncState makes all of Regs current (fillState).
func (v *VCPU) SyncState() {
	if v.stale == 0 {
		return
	}
	f := x86.CLI()
	v.fillState(stateAll)
	x86.RestoreFlags(f)
}
