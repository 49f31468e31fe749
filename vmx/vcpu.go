package vmx

import (
	"fmt"
	"unsafe"

	"gohv/hv"
	"gohv/x86"
)

// runContext is what vmenter/vmexitPoint (insn_amd64.s) read and write;
// the offsets are fixed there. It lives at the start of a physical page the
// VCPU owns, the FXSAVE areas later in the same page.
type runContext struct {
	gpr      [16]uint64 // RSP unused: it lives in the VMCS
	launched uint64
	guestFX  uint64
	hostFX   uint64
	fail     uint64 // RFLAGS after a failed VMLAUNCH/VMRESUME, else 0
}

const (
	ctxGuestFX = 0x400
	ctxHostFX  = 0x600
	// MSR areas (SDM Vol. 3, 24.7.2): the guest list is stored on exit and
	// loaded on entry; the host list is loaded on exit.
	ctxGuestMSRs = 0x800
	ctxHostMSRs  = 0xa00
)

// swappedMSRs are switched through the MSR areas: the CPU model lets the
// guest use them without exits, and VMX (unlike SVM's VMLOAD/VMSAVE) does
// not switch them itself.
var swappedMSRs = [...]uint32{hv.MSRSTAR, hv.MSRLSTAR, hv.MSRCSTAR, hv.MSRSFMASK, hv.MSRKernelGSBase}

// current is the VMCS loaded on this (the only) CPU; vmcs operations run
// with interrupts off so no other VP thread can change it in between.
var current uint64

// Exit reasons (SDM Vol. 3, Appendix C).
const (
	reasonException    = 0
	reasonExtInt       = 1
	reasonTripleFault  = 2
	reasonINIT         = 3
	reasonSIPI         = 4
	reasonIntWindow    = 7
	reasonCPUID        = 10
	reasonHLT          = 12
	reasonINVD         = 13
	reasonINVLPG       = 14
	reasonRDPMC        = 15
	reasonVMCALL       = 18
	reasonVMCLEAR      = 19
	reasonVMXOFF       = 26
	reasonVMXON        = 27
	reasonCRAccess     = 28
	reasonIO           = 30
	reasonRDMSR        = 31
	reasonWRMSR        = 32
	reasonInvalidGuest = 33
	reasonMSRLoad      = 34
	reasonMWAIT        = 36
	reasonMONITOR      = 39
	reasonMachineCheck = 41
	reasonEPTViolation = 48
	reasonEPTMisconfig = 49
	reasonINVEPT       = 50
	reasonRDTSCP       = 51
	reasonINVVPID      = 53
	reasonWBINVD       = 54
	reasonXSETBV       = 55
	reasonPreemptTimer = 52
	reasonINVPCID      = 58
	entryFailureBit    = 1 << 31
)

// VCPU is one VP on VMX.
type VCPU struct {
	b                    *Backend
	vmcsPA               uint64
	ctxPA                uint64
	ctx                  *runContext
	page                 *[4096]byte
	vpid                 uint16
	eptp                 uint64
	regs                 hv.Regs
	dirty                bool
	flush                bool
	pending              uint32 // VM-entry interruption information for the next entry
	pendErr              uint32
	pendLen              uint32
	window               bool
	intr                 uint64 // guest interruptibility state, written back on entry
	segsStale            bool   // segment registers in regs not read since the last exit
	cr0Shadow, cr4Shadow uint64
	cr0Mask, cr4Mask     uint64
	closed               bool
	broken               string // a field BreakGuestState corrupted
}

// NewVCPU allocates and initialises a VMCS: controls, host state, bitmaps,
// EPT pointer, VPID and the MSR areas.
func (b *Backend) NewVCPU(nestedRoot uint64) (hv.VCPU, error) {
	v := &VCPU{b: b, dirty: true, flush: true, vpid: b.allocVPID()}
	var err error
	if v.vmcsPA, err = b.mem.AllocPage(); err != nil {
		b.releaseVPID(v.vpid)
		return nil, fmt.Errorf("vmx: vmcs: %w", err)
	}
	if v.ctxPA, err = b.mem.AllocPage(); err != nil {
		b.mem.FreePage(v.vmcsPA)
		b.releaseVPID(v.vpid)
		return nil, fmt.Errorf("vmx: run context: %w", err)
	}
	*(*uint32)(unsafe.Pointer(b.mem.Page(v.vmcsPA))) = b.revision
	v.page = b.mem.Page(v.ctxPA)
	v.ctx = (*runContext)(unsafe.Pointer(v.page))
	v.ctx.guestFX = uint64(uintptr(unsafe.Pointer(&v.page[ctxGuestFX])))
	v.ctx.hostFX = uint64(uintptr(unsafe.Pointer(&v.page[ctxHostFX])))
	*(*uint16)(unsafe.Pointer(&v.page[ctxGuestFX])) = 0x037f
	*(*uint32)(unsafe.Pointer(&v.page[ctxGuestFX+24])) = 0x1f80
	for i, m := range swappedMSRs {
		g := (*[2]uint64)(unsafe.Pointer(&v.page[ctxGuestMSRs+16*i]))
		h := (*[2]uint64)(unsafe.Pointer(&v.page[ctxHostMSRs+16*i]))
		g[0], g[1] = uint64(m), 0
		h[0], h[1] = uint64(m), x86.RDMSR(m)
	}
	v.eptp = nestedRoot
	if b.eptCap&capWB == 0 {
		v.eptp = v.eptp&^7 | 0 // uncacheable walks when WB is not offered
	}
	// Bits the guest may not own: those VMX fixes (except PE/PG, which
	// unrestricted guest frees) and, for CR4, VMXE.
	v.cr0Mask = (b.cr0Fixed0 &^ (hv.CR0PE | hv.CR0PG)) | ^b.cr0Fixed1&0xffff_ffff
	v.cr4Mask = b.cr4Fixed0 | ^b.cr4Fixed1&0xffff_ffff

	f := x86.CLI()
	err = v.setup()
	x86.RestoreFlags(f)
	if err != nil {
		v.Close()
		return nil, err
	}
	return v, nil
}

// setup runs with interrupts off.
func (v *VCPU) setup() error {
	pa := v.vmcsPA
	if st := vmclear(&pa); st != 0 {
		return fmt.Errorf("vmx: VMCLEAR failed (%d)", st)
	}
	if err := v.load(); err != nil {
		return err
	}
	b, h := v.b, &v.b.host
	w := &writer{v: v}
	w.set(PinControls, uint64(b.ctl.Pin))
	w.set(ProcControls, uint64(b.ctl.Proc))
	w.set(ProcControls2, uint64(b.ctl.Proc2))
	w.set(ExitControls, uint64(b.ctl.Exit))
	w.set(EntryControls, uint64(b.ctl.Entry))
	w.set(ExceptionBitmap, 1<<hv.VectorUD)
	w.set(PFErrorMask, 0)
	w.set(PFErrorMatch, 0)
	w.set(CR3TargetCount, 0)
	w.set(IOBitmapA, b.ioBitmaps)
	w.set(IOBitmapB, b.ioBitmaps+hv.PageSize)
	w.set(MSRBitmap, b.msrBitmap)
	w.set(EPTPointer, v.eptp)
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
	w.set(HostCR4, h.cr4|cr4VMXE)
	w.set(HostCSSel, uint64(h.cs&^7))
	w.set(HostSSSel, uint64(h.ss&^7))
	w.set(HostDSSel, uint64(h.ds&^7))
	w.set(HostESSel, uint64(h.es&^7))
	w.set(HostFSSel, uint64(h.fs&^7))
	w.set(HostGSSel, uint64(h.gs&^7))
	w.set(HostTRSel, uint64(h.tr&^7))
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

// writer collects the first VMWRITE failure.
type writer struct {
	v   *VCPU
	err error
}

func (w *writer) set(f uint32, x uint64) {
	if w.err != nil {
		return
	}
	w.v.ensure()
	if st := vmwrite(f, x); st != 0 {
		e, _ := vmread(VMInstrError)
		w.err = fmt.Errorf("vmx: VMWRITE %s = %#x: %s", FieldName(f), x, VMInstrErrorName(e))
	}
}

// ensure makes this VCPU's VMCS current again if another VP's took its
// place. Interrupts are off around every VMCS access, but the goroutine can
// still be parked at a function call (a GC stop-the-world) and another VP
// thread run meanwhile: every VMREAD/VMWRITE and the VM entry go through
// ensure, so they always reach this VCPU's VMCS.
func (v *VCPU) ensure() {
	if current != v.vmcsPA {
		v.load()
	}
}

// load makes this VCPU's VMCS current. Interrupts must be off.
func (v *VCPU) load() error {
	if current == v.vmcsPA {
		return nil
	}
	pa := v.vmcsPA
	if st := vmptrld(&pa); st != 0 {
		return fmt.Errorf("vmx: VMPTRLD %#x failed (status %d)", pa, st)
	}
	current = v.vmcsPA
	return nil
}

// rd reads a field of this VCPU's VMCS.
func (v *VCPU) rd(f uint32) uint64 {
	v.ensure()
	x, _ := vmread(f)
	return x
}

func (v *VCPU) Regs() *hv.Regs        { return &v.regs }
func (v *VCPU) MarkStateDirty()       { v.dirty = true }
func (v *VCPU) InterruptShadow() bool { return v.intr&3 != 0 }

// ClearInterruptShadow drops blocking by STI and by MOV SS at the next
// entry (guest interruptibility state bits 1:0).
func (v *VCPU) ClearInterruptShadow() {
	v.intr &^= 3
}
func (v *VCPU) RequestInterruptWindow(on bool) { v.window = on }

// Inject queues ev through the VM-entry interruption-information field
// (SDM Vol. 3, 24.8.3).
func (v *VCPU) Inject(ev hv.Event) {
	t := uint32(0)
	switch ev.Type {
	case hv.EventNMI:
		t = 2
	case hv.EventException:
		t = 3
	case hv.EventSoftInt:
		t = 4
	}
	v.pending = uint32(ev.Vector) | t<<8 | 1<<31
	v.pendErr = 0
	if ev.HasError {
		v.pending |= 1 << 11
		v.pendErr = ev.ErrorCode
	}
}

// BreakGuestState sets reserved bits in the guest TR access rights (a
// TR that is not a busy TSS fails the VM-entry guest-state checks).
func (v *VCPU) BreakGuestState() string {
	v.broken = "GUEST_TR_AR_BYTES"
	return v.broken
}

func (v *VCPU) Close() error {
	if v.closed {
		return nil
	}
	v.closed = true
	f := x86.CLI()
	pa := v.vmcsPA
	vmclear(&pa)
	if current == v.vmcsPA {
		current = 0
	}
	x86.RestoreFlags(f)
	v.b.releaseVPID(v.vpid)
	err1 := v.b.mem.FreePage(v.vmcsPA)
	err2 := v.b.mem.FreePage(v.ctxPA)
	if err1 != nil {
		return err1
	}
	return err2
}

// SVM-form attributes to VMX access rights and back (SDM Vol. 3, Table
// 24-2): bits 7:0 the same, AVL/L/DB/G move from 11:8 to 15:12, bit 16
// marks an unusable segment.
func toAR(a uint16) uint64 {
	if a&hv.SegP == 0 {
		return 1 << 16
	}
	return uint64(a&0xff) | uint64(a&0xf00)<<4
}

func fromAR(ar uint64) uint16 {
	if ar&(1<<16) != 0 {
		return 0
	}
	return uint16(ar&0xff) | uint16(ar>>4&0xf00)
}

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

func (v *VCPU) segPtrs() [8]*hv.Segment {
	r := &v.regs
	return [8]*hv.Segment{&r.ES, &r.CS, &r.SS, &r.DS, &r.FS, &r.GS, &r.LDTR, &r.TR}
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
	pat := r.PAT
	if pat == 0 {
		pat = 0x0007_0406_0007_0406
	}
	w.set(GuestPAT, pat)
	for i, s := range v.segPtrs() {
		f := segs[i]
		w.set(f.sel, uint64(s.Selector))
		w.set(f.base, s.Base)
		w.set(f.limit, uint64(s.Limit))
		ar := toAR(s.Attrib)
		if i == 7 && v.broken != "" {
			ar |= 0x3 << 17 // reserved bits 31:17 must be zero
		}
		w.set(f.ar, ar)
	}
	w.set(GuestGDTRBase, r.GDTR.Base)
	w.set(GuestGDTRLimit, uint64(r.GDTR.Limit))
	w.set(GuestIDTRBase, r.IDTR.Base)
	w.set(GuestIDTRLimit, uint64(r.IDTR.Limit))
	w.set(GuestDR7, 0x400)
	w.set(GuestDebugCtl, 0)
	w.set(GuestActivityState, 0)
	w.set(GuestPendingDbg, 0)
	w.set(GuestInterruptibility, 0)
	entry := uint64(v.b.ctl.Entry)
	if r.EFER&hv.EFERLMA != 0 {
		entry |= entryIA32e
	}
	w.set(EntryControls, entry)
}

// hwCR0 and hwCR4 are the values the CPU runs with: the guest's, plus the
// bits VMX fixes.
func (v *VCPU) hwCR0(c uint64) uint64 {
	return (c | v.b.cr0Fixed0&^(hv.CR0PE|hv.CR0PG)) & (v.b.cr0Fixed1 | 0xffff_ffff_0000_0000)
}

func (v *VCPU) hwCR4(c uint64) uint64 { return c | v.b.cr4Fixed0 }

// Run enters the guest once (more than once when an exit is the backend's
// own business: CR0/CR4 writes, INVLPG, INVD). Interrupts are off from
// VMPTRLD to the last VMREAD, so the VMCS stays current.
func (v *VCPU) Run(e *hv.Exit) error {
	f := x86.CLI()
	err := v.run(e)
	x86.RestoreFlags(f)
	return err
}

func (v *VCPU) run(e *hv.Exit) error {
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
		w.set(GuestRIP, r.RIP)
		w.set(GuestRSP, r.GPR[hv.RSP])
		w.set(GuestRFLAGS, r.RFLAGS)
		w.set(HostFSBase, x86.RDMSR(0xc000_0100))
		w.set(GuestInterruptibility, v.intr)
		if v.b.preemptTicks != 0 {
			w.set(PreemptionTimer, v.b.preemptTicks)
		}
		w.set(EntryIntrInfo, uint64(v.pending))
		if v.pending != 0 {
			w.set(EntryExcErrorCode, uint64(v.pendErr))
			w.set(EntryInstrLen, uint64(v.pendLen))
		}
		v.pending = 0
		proc := uint64(v.b.ctl.Proc)
		if v.window {
			proc |= procIntWindowExiting
		}
		w.set(ProcControls, proc)
		if w.err != nil {
			return w.err
		}
		if v.flush {
			v.invalidate()
			v.flush = false
		}
		v.ctx.gpr = r.GPR
		v.ensure() // the last call before the entry: no preemption point follows

		vmenter(v.ctx)

		if fl := v.ctx.fail; fl != 0 {
			if fl&1 != 0 {
				return fmt.Errorf("vmx: VM entry failed: VMfailInvalid (no current VMCS)")
			}
			return fmt.Errorf("vmx: VM entry failed: %s", VMInstrErrorName(v.rd(VMInstrError)))
		}
		r.GPR = v.ctx.gpr
		v.readState()
		if v.decode(e) {
			return nil
		}
	}
}

// invalidate flushes the VP's cached translations: EPT-derived ones by
// INVEPT, linear ones by INVVPID (or the entry itself without VPID).
func (v *VCPU) invalidate() {
	desc := [2]uint64{v.eptp, 0}
	if v.b.eptCap&capINVEPTSingle != 0 {
		invept(1, &desc)
	} else {
		invept(2, &desc)
	}
	if v.vpid != 0 && v.b.eptCap&capINVVPID != 0 {
		d := [2]uint64{uint64(v.vpid), 0}
		if v.b.eptCap&capINVVPIDSingle != 0 {
			invvpid(1, &d)
		} else {
			invvpid(2, &d)
		}
	}
}

// readState fills the part of Regs the core uses on every exit: RIP, RSP,
// RFLAGS, control registers, EFER, PAT, CS attributes and base (the code
// mode), SS attributes (the CPL) and the interrupt shadow. The other
// segment registers and the descriptor tables are read on demand
// (SyncState, or before the state is written back): about 30 VMREADs fewer
// per exit.
func (v *VCPU) readState() {
	r := &v.regs
	r.RIP = v.rd(GuestRIP)
	r.GPR[hv.RSP] = v.rd(GuestRSP)
	r.RFLAGS = v.rd(GuestRFLAGS)
	r.CR0 = v.rd(GuestCR0)&^v.cr0Mask | v.cr0Shadow&v.cr0Mask
	r.CR3 = v.rd(GuestCR3)
	r.CR4 = v.rd(GuestCR4)&^v.cr4Mask | v.cr4Shadow&v.cr4Mask
	r.EFER = v.rd(GuestEFER)
	r.PAT = v.rd(GuestPAT)
	r.CS.Attrib, r.CS.Base = fromAR(v.rd(GuestCSAR)), v.rd(GuestCSBase)
	r.SS.Attrib = fromAR(v.rd(GuestSSAR))
	v.intr = v.rd(GuestInterruptibility)
	v.segsStale = true
}

// readSegments fills every segment register and GDTR/IDTR from the VMCS.
func (v *VCPU) readSegments() {
	r := &v.regs
	for i, s := range v.segPtrs() {
		f := segs[i]
		*s = hv.Segment{Selector: uint16(v.rd(f.sel)), Base: v.rd(f.base), Limit: uint32(v.rd(f.limit)), Attrib: fromAR(v.rd(f.ar))}
	}
	r.GDTR = hv.DescTable{Base: v.rd(GuestGDTRBase), Limit: uint32(v.rd(GuestGDTRLimit))}
	r.IDTR = hv.DescTable{Base: v.rd(GuestIDTRBase), Limit: uint32(v.rd(GuestIDTRLimit))}
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

// decode turns the exit into a vendor-neutral one; false means the backend
// handled it and the guest re-enters.
func (v *VCPU) decode(e *hv.Exit) bool {
	reason := v.rd(ExitReason)
	qual := v.rd(ExitQualification)
	*e = hv.Exit{Code: reason, Info1: qual}
	length := uint8(v.rd(ExitInstrLen))
	// An event whose delivery the exit interrupted is delivered again.
	if idt := uint32(v.rd(IDTVectInfo)); idt&(1<<31) != 0 {
		v.pending = idt &^ (1 << 12)
		v.pendErr = uint32(v.rd(IDTVectErrorCode))
		v.pendLen = uint32(length)
	}
	if reason&entryFailureBit != 0 {
		e.Kind = hv.ExitInvalidState
		e.Detail = v.explainEntryFailure(reason & 0xffff)
		return true
	}
	switch reason & 0xffff {
	case reasonExtInt, reasonINIT, reasonSIPI, reasonPreemptTimer:
		e.Kind = hv.ExitInterrupt
	case reasonException:
		info := uint32(v.rd(ExitIntrInfo))
		if info>>8&7 == 2 { // NMI: the host's; nothing for the guest
			e.Kind = hv.ExitInterrupt
			return true
		}
		e.Kind = hv.ExitException
		e.Vector = uint8(info)
		e.ErrorCode = uint32(v.rd(ExitIntrErrorCode))
	case reasonTripleFault:
		e.Kind = hv.ExitShutdown
	case reasonIntWindow:
		e.Kind = hv.ExitInterruptWindow
		v.window = false
	case reasonCPUID:
		e.Kind, e.InstrLen = hv.ExitCPUID, length
	case reasonHLT:
		e.Kind, e.InstrLen = hv.ExitHLT, length
	case reasonVMCALL:
		e.Kind, e.InstrLen = hv.ExitHypercall, length
	case reasonRDMSR:
		e.Kind, e.InstrLen = hv.ExitMSRRead, length
	case reasonWRMSR:
		e.Kind, e.InstrLen = hv.ExitMSRWrite, length
	case reasonIO:
		e.Kind, e.InstrLen = hv.ExitIO, length
		e.Size = uint8(qual&7) + 1
		e.In = qual&(1<<3) != 0
		e.String = qual&(1<<4) != 0
		e.Rep = qual&(1<<5) != 0
		e.Port = uint16(qual >> 16)
	case reasonEPTViolation:
		e.Kind = hv.ExitNestedFault
		e.GPA = v.rd(GuestPhysAddr)
		e.Write = qual&2 != 0
		e.Fetch = qual&4 != 0
		e.Present = qual&0x38 != 0
	case reasonCRAccess:
		return v.crAccess(qual, length)
	case reasonINVLPG:
		v.invalidate()
		v.regs.RIP += uint64(length)
		return false
	case reasonINVD, reasonWBINVD:
		v.regs.RIP += uint64(length) // caches are coherent for the guest's purposes
		return false
	case reasonVMCLEAR, 20, 21, 22, 23, 24, 25, reasonVMXOFF, reasonVMXON, reasonINVEPT, reasonINVVPID,
		reasonMWAIT, reasonMONITOR, reasonRDTSCP, reasonXSETBV, reasonINVPCID, reasonRDPMC:
		e.Kind = hv.ExitInstruction
	case reasonEPTMisconfig:
		e.Kind = hv.ExitUnexpected
		e.GPA = v.rd(GuestPhysAddr)
		e.Detail = fmt.Sprintf("EPT misconfiguration at gpa %#x (a bug in gohv's tables)", e.GPA)
	default:
		e.Kind = hv.ExitUnexpected
		e.Detail = fmt.Sprintf("VMX exit reason %d", reason&0xffff)
	}
	return true
}

// crAccess emulates MOV to CR0/CR3/CR4, CLTS and LMSW where VMX made them
// exit (SDM Vol. 3, Table 28-3). Returns false: the guest continues.
func (v *VCPU) crAccess(qual uint64, length uint8) bool {
	r := &v.regs
	cr, typ, reg := qual&15, qual>>4&3, qual>>8&15
	gpr := func() uint64 { return r.GPR[reg] }
	switch typ {
	case 0: // MOV to CR
		switch cr {
		case 0:
			if !v.setCR0(gpr()) {
				return v.gp()
			}
		case 3:
			r.CR3 = gpr()
			v.ensure()
			vmwrite(GuestCR3, r.CR3)
		case 4:
			if !v.setCR4(gpr()) {
				return v.gp()
			}
		default:
			return v.gp()
		}
	case 1: // MOV from CR (CR3 only exits)
		if cr == 3 {
			r.GPR[reg] = r.CR3
		}
	case 2: // CLTS
		v.setCR0(r.CR0 &^ (1 << 3))
	case 3: // LMSW: PE may be set, not cleared; MP, EM, TS follow the operand
		src := qual >> 16 & 0xf
		v.setCR0(r.CR0&^0xe | src&0xe | (r.CR0|src)&1)
	}
	r.RIP += uint64(length)
	return false
}

func (v *VCPU) gp() bool {
	v.Inject(hv.Event{Vector: hv.VectorGP, Type: hv.EventException, HasError: true})
	return false
}

// CR4 bits a guest may set: the CPU model's features.
const cr4Allowed = 1<<0 | 1<<1 | 1<<2 | 1<<3 | 1<<4 | 1<<5 | 1<<6 | 1<<7 | 1<<8 | 1<<9 | 1<<10 | 1<<16 | 1<<20 | 1<<21

func (v *VCPU) setCR0(c uint64) bool {
	r := &v.regs
	if c>>32 != 0 || c&hv.CR0PG != 0 && c&hv.CR0PE == 0 || c&(1<<29) != 0 && c&(1<<30) == 0 {
		return false
	}
	if c&hv.CR0PG != 0 && r.CR0&hv.CR0PG == 0 && r.EFER&hv.EFERLME != 0 {
		if r.CR4&hv.CR4PAE == 0 {
			return false
		}
		r.EFER |= hv.EFERLMA
	}
	if c&hv.CR0PG == 0 && r.EFER&hv.EFERLMA != 0 {
		r.EFER &^= hv.EFERLMA
	}
	r.CR0 = c
	v.dirty = true
	return true
}

func (v *VCPU) setCR4(c uint64) bool {
	r := &v.regs
	if c&^cr4Allowed != 0 || r.EFER&hv.EFERLMA != 0 && c&hv.CR4PAE == 0 {
		return false
	}
	r.CR4 = c
	v.dirty = true
	return true
}
