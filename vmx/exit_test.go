package vmx

import (
	"strings"
	"testing"

	"gohv/hv/vcpu"
	"gohv/x86"
)

// fakeVMCS is a VMCS image: fields in a map, as VMREAD/VMWRITE would see
// them, and how many times each was read. Writes to a field in refuse
// fail with VMfailValid.
type fakeVMCS struct {
	f      map[uint32]uint64
	reads  map[uint32]int
	writes int
	refuse uint32
}

func (m *fakeVMCS) read(f uint32) uint64 {
	if m.reads != nil {
		m.reads[f]++
	}
	return m.f[f]
}
func (m *fakeVMCS) write(f uint32, x uint64) uint64 {
	if f == m.refuse && f != 0 {
		m.f[VMInstrError] = 12 // VMWRITE to an unsupported VMCS component
		return 2
	}
	m.f[f] = x
	m.writes++
	return 0
}

// testVCPU is a VCPU over a VMCS image with Bochs-like fixed bits (CR0 PE,
// NE, PG fixed to 1; CR4 VMXE).
func testVCPU() (*VCPU, *fakeVMCS) {
	m := &fakeVMCS{f: map[uint32]uint64{}}
	b := &Backend{cr0Fixed0: x86.CR0PE | x86.CR0NE | x86.CR0PG, cr0Fixed1: 0xffff_ffff,
		cr4Fixed0: x86.CR4VMXE, cr4Fixed1: 0x3727ff, ctl: Controls{Entry: entryLoadEFER | entryLoadPAT}}
	ctx := new(runContext)
	v := &VCPU{b: b, image: m, ctx: ctx, regs: &ctx.regs, cpu: new(cpuState)}
	v.cr0Mask = (b.cr0Fixed0 &^ (x86.CR0PE | x86.CR0PG)) | ^b.cr0Fixed1&0xffff_ffff
	v.cr4Mask = b.cr4Fixed0 | ^b.cr4Fixed1&0xffff_ffff
	return v, m
}

func (v *VCPU) exitWith(m *fakeVMCS, reason, qual, length uint64) (vcpu.Exit, bool) {
	m.f[ExitReason], m.f[ExitQualification], m.f[ExitInstrLen] = reason, qual, length
	var e vcpu.Exit
	// What vmexitPoint would have read of the exit.
	c := v.ctx
	c.reason, c.qual, c.instrLen, c.idtVect = reason, qual, length, m.f[IDTVectInfo]
	toCore := v.decode(&e)
	return e, toCore
}

// TestDecodeExits decodes each exit reason gohv enables from a VMCS image
// written as the SDM describes the exit (Vol. 3C 28.2, Tables 28-3, 28-5,
// 28-7).
func TestDecodeExits(t *testing.T) {
	for _, c := range []struct {
		name              string
		reason, qual, len uint64
		want              vcpu.Exit
	}{
		{"CPUID", reasonCPUID, 0, 2, vcpu.Exit{Kind: vcpu.ExitCPUID, InstrLen: 2}},
		{"RDMSR", reasonRDMSR, 0, 2, vcpu.Exit{Kind: vcpu.ExitMSRRead, InstrLen: 2}},
		{"WRMSR", reasonWRMSR, 0, 2, vcpu.Exit{Kind: vcpu.ExitMSRWrite, InstrLen: 2}},
		{"HLT", reasonHLT, 0, 1, vcpu.Exit{Kind: vcpu.ExitHLT, InstrLen: 1}},
		{"VMCALL", reasonVMCALL, 0, 3, vcpu.Exit{Kind: vcpu.ExitHypercall, InstrLen: 3}},
		{"OUT DX, AL", reasonIO, 0x3f8 << ioQualPortShift, 1,
			vcpu.Exit{Kind: vcpu.ExitIO, Port: 0x3f8, Size: 1, InstrLen: 1}},
		{"REP INSD", reasonIO, 0x60<<ioQualPortShift | 3 | ioQualIn | ioQualString | ioQualRep, 2,
			vcpu.Exit{Kind: vcpu.ExitIO, Port: 0x60, Size: 4, In: true, String: true, Rep: true, InstrLen: 2}},
		{"external interrupt", reasonExtInt, 0, 0, vcpu.Exit{Kind: vcpu.ExitInterrupt}},
		{"preemption timer", reasonPreemptTimer, 0, 0, vcpu.Exit{Kind: vcpu.ExitInterrupt}},
		{"triple fault", reasonTripleFault, 0, 0, vcpu.Exit{Kind: vcpu.ExitShutdown}},
		{"VMXON in the guest", reasonVMXON, 0, 3, vcpu.Exit{Kind: vcpu.ExitInstruction}},
		{"XSETBV", reasonXSETBV, 0, 3, vcpu.Exit{Kind: vcpu.ExitInstruction}},
		{"MOV CR4, RBX", reasonCRAccess, 4 | x86.RBX<<crQualRegShift, 3,
			vcpu.Exit{Kind: vcpu.ExitCRWrite, CR: 4, Value: 0x1234, InstrLen: 3}},
	} {
		v, m := testVCPU()
		v.regs.GPR[x86.RBX] = 0x1234
		e, toCore := v.exitWith(m, c.reason, c.qual, c.len)
		c.want.Code, c.want.Info1 = c.reason, c.qual
		if !toCore || e != c.want {
			t.Errorf("%s (to core %v):\n got %+v\nwant %+v", c.name, toCore, e, c.want)
		}
	}
}

func TestDecodeEPTViolation(t *testing.T) {
	v, m := testVCPU()
	m.f[GuestPhysAddr] = 0xfee0_0300
	e, _ := v.exitWith(m, reasonEPTViolation, eptQualWrite|eptQualRead|1<<3, 0)
	if e.Kind != vcpu.ExitNestedFault || e.GPA != 0xfee0_0300 || !e.Write || e.Fetch || !e.Present {
		t.Fatalf("%+v", e)
	}
	e, _ = v.exitWith(m, reasonEPTViolation, eptQualFetch, 0)
	if !e.Fetch || e.Write || e.Present {
		t.Fatalf("fetch from a non-present page: %+v", e)
	}
}

// TestDecodeControlRegisters: MOV to CR, CLTS and LMSW go to the core as
// the value to write; MOV from CR3 is answered in the backend.
func TestDecodeControlRegisters(t *testing.T) {
	v, m := testVCPU()
	v.regs.CR0 = x86.CR0PE | x86.CR0TS | x86.CR0MP | x86.CR0PG
	v.regs.CR3 = 0x7000
	v.regs.RIP = 0x100
	e, toCore := v.exitWith(m, reasonCRAccess, 3|crAccessMovFrom<<crQualTypeShift|x86.RDX<<crQualRegShift, 3)
	if toCore || v.regs.GPR[x86.RDX] != 0x7000 || v.regs.RIP != 0x103 {
		t.Fatalf("MOV RDX, CR3: to core %v, rdx %#x rip %#x", toCore, v.regs.GPR[x86.RDX], v.regs.RIP)
	}
	e, _ = v.exitWith(m, reasonCRAccess, crAccessCLTS<<crQualTypeShift, 2)
	if e.Kind != vcpu.ExitCRWrite || e.CR != 0 || e.Value != x86.CR0PE|x86.CR0MP|x86.CR0PG {
		t.Fatalf("CLTS: %+v", e)
	}
	// LMSW with an operand that clears PE and MP and sets EM: PE stays.
	e, _ = v.exitWith(m, reasonCRAccess, crAccessLMSW<<crQualTypeShift|uint64(x86.CR0EM)<<crQualLMSWShift, 3)
	if e.Value != x86.CR0PE|x86.CR0EM|x86.CR0PG {
		t.Fatalf("LMSW: CR0 %#x", e.Value)
	}
}

func TestLMSW(t *testing.T) {
	for _, c := range []struct{ cr0, src, want uint64 }{
		{0, 1, 1},                               // sets PE
		{x86.CR0PE, 0, x86.CR0PE},               // cannot clear PE
		{x86.CR0PG | 0xe, 0x4, x86.CR0PG | 0x4}, // MP, EM, TS follow
		{x86.CR0ET, 0xfff0, x86.CR0ET},          // bits above 3 ignored
	} {
		if got := lmsw(c.cr0, c.src); got != c.want {
			t.Errorf("lmsw(%#x, %#x) = %#x, want %#x", c.cr0, c.src, got, c.want)
		}
	}
}

// TestDecodeReinjectsInterruptedDelivery: an exit during event delivery
// queues the event again, with its error code and instruction length.
func TestDecodeReinjectsInterruptedDelivery(t *testing.T) {
	v, m := testVCPU()
	m.f[IDTVectInfo] = x86.VectorPF | intTypeHWException<<intInfoTypeShift | intInfoErrorValid | intInfoValid | intInfoNMIUnblock
	m.f[IDTVectErrorCode] = 2
	m.f[GuestPhysAddr] = 0x9000
	v.exitWith(m, reasonEPTViolation, eptQualWrite, 0)
	if v.pending != x86.VectorPF|intTypeHWException<<intInfoTypeShift|intInfoErrorValid|intInfoValid || v.pendErr != 2 {
		t.Fatalf("pending %#x err %d", v.pending, v.pendErr)
	}
}

// TestDecodeHostNMI: an NMI that exits is the host's, never the guest's.
func TestDecodeHostNMI(t *testing.T) {
	v, m := testVCPU()
	m.f[ExitIntrInfo] = x86.VectorNMI | intTypeNMI<<intInfoTypeShift | intInfoValid
	if e, _ := v.exitWith(m, reasonException, 0, 0); e.Kind != vcpu.ExitInterrupt {
		t.Fatalf("%v", e.Kind)
	}
	m.f[ExitIntrInfo] = x86.VectorUD | intTypeHWException<<intInfoTypeShift | intInfoValid
	if e, _ := v.exitWith(m, reasonException, 0, 0); e.Kind != vcpu.ExitException || e.Vector != x86.VectorUD {
		t.Fatalf("#UD: %+v", e)
	}
}

// TestDecodeEntryFailureNamesTheField: an entry that fails the
// guest-state checks is explained by the field the SDM's checks name.
func TestDecodeEntryFailureNamesTheField(t *testing.T) {
	v, m := testVCPU()
	for f, x := range goodLongMode() {
		m.f[f] = x
	}
	m.f[GuestCR0] |= x86.CR0NE
	m.f[GuestTRAR] |= 3 << 17
	e, toCore := v.exitWith(m, entryFailureBit|reasonInvalidGuest, 0, 0)
	if !toCore || e.Kind != vcpu.ExitInvalidState || !strings.HasPrefix(e.Detail, "GUEST_TR_AR_BYTES") {
		t.Fatalf("%v %q", e.Kind, e.Detail)
	}
}

// TestStateRoundTrip: writeState, then an exit's reads (readExit and
// fillState) give the registers back; the CPU's forced CR0 bits stay
// hidden behind the read shadow.
func TestStateRoundTrip(t *testing.T) {
	v, m := testVCPU()
	r := vcpu.ResetRegs()
	r.RIP, r.CR0, r.CR3, r.CR4 = 0x7c00, x86.CR0ET, 0, 0 // real mode: NE and PE not set by the guest
	r.GDTR, r.IDTR = vcpu.DescTable{Base: 0x500, Limit: 0x27}, vcpu.DescTable{Limit: 0x3ff}
	r.GPR[x86.RSP], r.GPR[x86.RAX] = 0x6000, 0x1234
	*v.regs = r
	w := &writer{v: v}
	v.writeState(w)
	if w.err != nil {
		t.Fatal(w.err)
	}
	if m.f[GuestCR0] != x86.CR0ET|x86.CR0NE || m.f[CR0ReadShadow] != x86.CR0ET {
		t.Fatalf("hardware CR0 %#x shadow %#x", m.f[GuestCR0], m.f[CR0ReadShadow])
	}
	if m.f[GuestCR4]&x86.CR4VMXE == 0 || m.f[EntryControls]&entryIA32e != 0 {
		t.Fatalf("CR4 %#x entry controls %#x", m.f[GuestCR4], m.f[EntryControls])
	}
	m.f[GuestRIP], m.f[GuestRSP], m.f[GuestRFLAGS] = r.RIP, r.GPR[x86.RSP], r.RFLAGS
	*v.regs = vcpu.Regs{GPR: r.GPR} // what vmexitPoint stores
	v.readExit()
	if v.stale != stateAll {
		t.Fatalf("stale %#b after an exit, want every group", v.stale)
	}
	v.fillState(stateAll)
	if *v.regs != r {
		t.Fatalf("round trip:\n got %+v\nwant %+v", *v.regs, r)
	}
}

// TestWriteFailureNamesTheField: a refused VMWRITE is an error that names
// the field and the VM-instruction error.
func TestWriteFailureNamesTheField(t *testing.T) {
	v, m := testVCPU()
	m.refuse = GuestCR3
	w := &writer{v: v}
	v.writeState(w)
	if w.err == nil || !strings.Contains(w.err.Error(), "GUEST_CR3") {
		t.Fatalf("%v", w.err)
	}
}

func TestDecodeDoesNotAllocate(t *testing.T) {
	v, m := testVCPU()
	var e vcpu.Exit
	for _, reason := range []uint64{reasonCPUID, reasonRDMSR, reasonIO, reasonHLT, reasonVMCALL, reasonExtInt, reasonEPTViolation} {
		m.f[ExitReason] = reason
		if n := testing.AllocsPerRun(100, func() { v.readExit(); v.decode(&e); v.fillState(stateAll) }); n != 0 {
			t.Errorf("reason %d: %v allocations", reason, n)
		}
	}
}

// TestTPRShadow: with a virtual-APIC page the guest's CR8 is read from
// VTPR after an exit, and a TPR-below-threshold exit sends the core to
// look at its interrupts again.
func TestTPRShadow(t *testing.T) {
	v, m := testVCPU()
	v.vapic = new([4096]byte)
	v.vapic[vtprOffset] = 0x30
	v.readExit()
	if v.regs.CR8 != 3 {
		t.Fatalf("CR8 %d from VTPR 0x30", v.regs.CR8)
	}
	if e, toCore := v.exitWith(m, reasonTPRBelow, 0, 0); !toCore || e.Kind != vcpu.ExitInterruptWindow {
		t.Fatalf("%v %v", e.Kind, toCore)
	}
}

// TestExitBatchFeedsDecode: the exit information decode acts on is what
// vmexitPoint read into the run context (here from the image, imageExit):
// reason, length and the interrupted event come from their own VMCS
// fields; and no two of fillState's fields are the same.
func TestExitBatchFeedsDecode(t *testing.T) {
	v, m := testVCPU()
	m.f[ExitReason], m.f[ExitQualification], m.f[ExitInstrLen] = reasonCPUID, 0, 2
	m.f[IDTVectInfo] = 0x0e | intTypeHWException<<intInfoTypeShift | intInfoValid
	m.f[GuestRIP] = 0x1234
	v.readExit()
	var e vcpu.Exit
	if !v.decode(&e) || e.Kind != vcpu.ExitCPUID || e.InstrLen != 2 || v.regs.RIP != 0x1234 {
		t.Fatalf("decoded %+v at rip %#x, want CPUID of 2 bytes at 0x1234", e, v.regs.RIP)
	}
	if v.pending != 0x0e|intTypeHWException<<intInfoTypeShift|intInfoValid {
		t.Errorf("the interrupted event %#x was not kept for the next entry", v.pending)
	}
	if e.Shadow {
		t.Error("an interrupt shadow reported with none in the interruptibility state")
	}
	m.f[GuestInterruptibility] = intrBlockMOVSS
	v.readExit()
	if !v.decode(&e) || !e.Shadow || !v.InterruptShadow() {
		t.Errorf("MOV SS blocking: Shadow %v, InterruptShadow %v", e.Shadow, v.InterruptShadow())
	}
	fields := append(modeFields[:], restFields[:]...)
	for i, f := range fields {
		for j, g := range fields[:i] {
			if f == g {
				t.Errorf("fillState's fields %d and %d are both %s", i, j, FieldName(f))
			}
		}
	}
}
