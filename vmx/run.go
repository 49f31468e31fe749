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
	r := &v.regs
	return [8]*vcpu.Segment{&r.ES, &r.CS, &r.SS, &r.DS, &r.FS, &r.GS, &r.LDTR, &r.TR}
}

// writeState loads the whole of Regs into the VMCS.
func (v *VCPU) writeState(w *writer) {
	r := &v.regs
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
// stays current; they are on while FastExit runs, and the VMCS is made
// current again after it (ensure). Must not allocate.
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
	for {
		w := writer{v: v}
		r := &v.regs
		if v.dirty {
			if v.segsStale {
				v.readSegments() // the core changed other state; segments are the CPU's
			}
			v.writeState(&w)
			v.dirty = false
		}
		// RIP, RSP, RFLAGS and the preemption timer in one VMWRITE batch,
		// each only when it differs from what the VMCS holds: usually RIP
		// alone. The timer's field keeps its value across exits (gohv
		// does not set "save VMX-preemption timer value", SDM Vol. 3C
		// 27.3), so it is written once.
		v.entryF[0], v.entryVals[0] = GuestRIP, r.RIP
		n := 1
		if !v.vmcsKnown || r.GPR[x86.RSP] != v.vmcsRSP {
			v.entryF[n], v.entryVals[n] = GuestRSP, r.GPR[x86.RSP]
			n++
		}
		if !v.vmcsKnown || r.RFLAGS != v.vmcsRFLAGS {
			v.entryF[n], v.entryVals[n] = GuestRFLAGS, r.RFLAGS
			n++
		}
		if !v.timerWritten && v.b.preemptTicks != 0 {
			v.entryF[n], v.entryVals[n] = PreemptionTimer, v.b.preemptTicks
			n++
			v.timerWritten = true
		}
		w.setMany(v.entryF[:n], v.entryVals[:n])
		// Fields written only when they change: the VP's thread (hence the
		// host FS base) is fixed, the interruptibility state changes only
		// when the core ends a shadow, the window request rarely.
		if fs := x86.RDMSR(x86.MsrFSBase); fs != v.hostFS {
			w.set(HostFSBase, fs)
			v.hostFS = fs
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
		if v.flushRequested.Swap(false) {
			v.flush = true
		}
		if v.flush {
			v.invalidate()
			v.flush = false
		}
		v.ctx.gpr, v.ctx.cr2 = r.GPR, r.CR2
		v.ensure() // the last call before the entry: no preemption point follows
		vmenter(v.ctx)

		if fl := v.ctx.fail; fl != 0 {
			if fl&x86.RFLAGSCF != 0 {
				return fmt.Errorf("vmx: VM entry failed: VMfailInvalid (no current VMCS)")
			}
			return fmt.Errorf("vmx: VM entry failed: %s", VMInstrErrorName(v.rd(VMInstrError)))
		}
		r.GPR, r.CR2 = v.ctx.gpr, v.ctx.cr2
		v.readState()
		if !v.decode(e) {
			continue // the backend's own exit
		}
		if v.fast == nil || !vcpu.FastKind(e.Kind) {
			return nil
		}
		x86.RestoreFlags(*flags)
		res := v.fast(e)
		*flags = x86.CLI()
		switch res {
		case vcpu.FastHandled:
			continue
		case vcpu.FastHandledReturn:
			*e = vcpu.Exit{Kind: vcpu.ExitNone}
		}
		return nil
	}
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

// readState fills the part of Regs the core uses on every exit: RIP, RSP,
// RFLAGS, control registers, EFER, PAT, CS attributes and base (the code
// mode), SS attributes (the CPL) and the interrupt shadow. The other
// segment registers and the descriptor tables are read on demand
// (SyncState, or before the state is written back): about 30 VMREADs fewer
// per exit.
func (v *VCPU) readState() {
	r, x := &v.regs, &v.exitVals
	v.readMany(exitFields[:], x[:])
	v.vmcsRSP, v.vmcsRFLAGS, v.vmcsKnown = x[exitRSP], x[exitRFLAGS], true
	r.RIP = x[exitRIP]
	r.GPR[x86.RSP] = x[exitRSP]
	r.RFLAGS = x[exitRFLAGS]
	r.CR0 = x[exitCR0]&^v.cr0Mask | v.cr0Shadow&v.cr0Mask
	r.CR3 = x[exitCR3]
	r.CR4 = x[exitCR4]&^v.cr4Mask | v.cr4Shadow&v.cr4Mask
	r.EFER = x[exitEFER]
	r.PAT = x[exitPAT]
	r.CS.Attrib, r.CS.Base = fromAR(x[exitCSAR]), x[exitCSBase]
	r.SS.Attrib = fromAR(x[exitSSAR])
	if v.vapic != nil {
		r.CR8 = uint64(v.vapic[vtprOffset] >> 4)
	}
	v.intr = x[exitIntr]
	v.segsStale = true
}

// entryFields are the VMCS fields every entry writes, in one VMWRITE batch
// (writer.setMany), from entryVals; the preemption timer's is last, left
// out when the CPU has none.
var entryFields = [numEntryFields]uint32{GuestRIP, GuestRSP, GuestRFLAGS, PreemptionTimer}

const numEntryFields = 4

// exitFields are the VMCS fields every exit reads, in one VMREAD batch
// (readMany); exitVals holds them, indexed by the exit* constants.
var exitFields = [numExitFields]uint32{
	exitRIP: GuestRIP, exitRSP: GuestRSP, exitRFLAGS: GuestRFLAGS, exitCR0: GuestCR0, exitCR3: GuestCR3,
	exitCR4: GuestCR4, exitEFER: GuestEFER, exitPAT: GuestPAT, exitCSAR: GuestCSAR, exitCSBase: GuestCSBase,
	exitSSAR: GuestSSAR, exitIntr: GuestInterruptibility, exitReason: ExitReason, exitQual: ExitQualification,
	exitInstrLen: ExitInstrLen, exitIDTVect: IDTVectInfo,
}

const (
	exitRIP = iota
	exitRSP
	exitRFLAGS
	exitCR0
	exitCR3
	exitCR4
	exitEFER
	exitPAT
	exitCSAR
	exitCSBase
	exitSSAR
	exitIntr
	exitReason
	exitQual
	exitInstrLen
	exitIDTVect
	numExitFields
)

// readMany reads fields into out (the same length): one VMREAD batch on
// the hardware, field by field from a test's VMCS image. Must not
// allocate.
func (v *VCPU) readMany(fields []uint32, out []uint64) {
	if v.image != nil {
		for i, f := range fields {
			out[i] = v.image.read(f)
		}
		return
	}
	v.ensure()
	if len(fields) == 16 && len(out) == 16 {
		vmread16((*[16]uint32)(fields), (*[16]uint64)(out))
		return
	}
	vmreadN(&fields[0], &out[0], uint64(len(fields)))
}

// readSegments fills every segment register and GDTR/IDTR from the VMCS.
func (v *VCPU) readSegments() {
	r := &v.regs
	for i, s := range v.segPtrs() {
		f := segs[i]
		*s = vcpu.Segment{Selector: uint16(v.rd(f.sel)), Base: v.rd(f.base), Limit: uint32(v.rd(f.limit)), Attrib: fromAR(v.rd(f.ar))}
	}
	r.GDTR = vcpu.DescTable{Base: v.rd(GuestGDTRBase), Limit: uint32(v.rd(GuestGDTRLimit))}
	r.IDTR = vcpu.DescTable{Base: v.rd(GuestIDTRBase), Limit: uint32(v.rd(GuestIDTRLimit))}
	v.segsStale = false
}

// SyncState makes all of Regs current (the segment registers are read
// lazily after an exit).
func (v *VCPU) SyncState() {
	if !v.segsStale {
		return
	}
	f := x86.CLI()
	v.readSegments()
	x86.RestoreFlags(f)
}
