package svm

import (
	"testing"

	"gohv/hv/vcpu"
	"gohv/hv/vcpu/vcputest"
	"gohv/x86"
)

// testVCPU is a VCPU over a VMCB image in a Go array, as decode sees it
// after a #VMEXIT.
func testVCPU(f Features) *VCPU {
	return &VCPU{b: &Backend{feat: f}, vmcb: new(VMCB), ctx: new(runContext)}
}

func (v *VCPU) exitWith(code, info1, info2 uint64) vcpu.Exit {
	v.vmcb.SetU64(CtlExitCode, code)
	v.vmcb.SetU64(CtlExitInfo1, info1)
	v.vmcb.SetU64(CtlExitInfo2, info2)
	var e vcpu.Exit
	v.decode(&e)
	return e
}

// TestDecodeExits decodes each intercept gohv sets from a VMCB image
// written as the APM describes the exit (Vol. 2 15.7, 15.10.2, 15.25.6,
// Appendix C).
func TestDecodeExits(t *testing.T) {
	v := testVCPU(Features{NRIPSave: true})
	v.regs.RIP = 0x1000
	v.vmcb.SetU64(CtlNRIP, 0x1002)
	for _, c := range []struct {
		name         string
		code, i1, i2 uint64
		want         vcpu.Exit
	}{
		{"CPUID with NRIP", ExitCPUID, 0, 0, vcpu.Exit{Kind: vcpu.ExitCPUID, InstrLen: 2}},
		{"RDMSR", ExitMSR, 0, 0, vcpu.Exit{Kind: vcpu.ExitMSRRead, InstrLen: 2}},
		{"WRMSR", ExitMSR, 1, 0, vcpu.Exit{Kind: vcpu.ExitMSRWrite, InstrLen: 2}},
		{"HLT", ExitHLT, 0, 0, vcpu.Exit{Kind: vcpu.ExitHLT, InstrLen: 2}},
		{"VMMCALL", ExitVMMCALL, 0, 0, vcpu.Exit{Kind: vcpu.ExitHypercall, InstrLen: 2}},
		{"OUT DX, AL", ExitIOIO, 0x3f8<<16 | IOInfoSz8, 0x1001,
			vcpu.Exit{Kind: vcpu.ExitIO, Port: 0x3f8, Size: 1, InstrLen: 1}},
		{"REP INSW", ExitIOIO, 0x60<<16 | IOInfoSz16 | IOInfoIn | IOInfoString | IOInfoRep, 0x1003,
			vcpu.Exit{Kind: vcpu.ExitIO, Port: 0x60, Size: 2, In: true, String: true, Rep: true, InstrLen: 3}},
		{"IN EAX with an implausible next RIP", ExitIOIO, 0xcf8<<16 | IOInfoSz32 | IOInfoIn, 0x5000,
			vcpu.Exit{Kind: vcpu.ExitIO, Port: 0xcf8, Size: 4, In: true}},
		{"NPF write to a present page", ExitNPF, NPFPresent | NPFWrite, 0xfee0_0030,
			vcpu.Exit{Kind: vcpu.ExitNestedFault, GPA: 0xfee0_0030, Present: true, Write: true}},
		{"NPF fetch", ExitNPF, NPFFetch | NPFUser, 0x4000_0000,
			vcpu.Exit{Kind: vcpu.ExitNestedFault, GPA: 0x4000_0000, Fetch: true}},
		{"INTR", ExitINTR, 0, 0, vcpu.Exit{Kind: vcpu.ExitInterrupt}},
		{"shutdown", ExitShutdown, 0, 0, vcpu.Exit{Kind: vcpu.ExitShutdown}},
		{"VMRUN in the guest", ExitVMRUN, 0, 0, vcpu.Exit{Kind: vcpu.ExitInstruction}},
		{"XSETBV", ExitXSETBV, 0, 0, vcpu.Exit{Kind: vcpu.ExitInstruction}},
		{"an intercept gohv never set", ExitRDTSC, 0, 0, vcpu.Exit{Kind: vcpu.ExitUnexpected}},
	} {
		e := v.exitWith(c.code, c.i1, c.i2)
		c.want.Code, c.want.Info1, c.want.Info2 = c.code, c.i1, c.i2
		if e != c.want {
			t.Errorf("%s:\n got %+v\nwant %+v", c.name, e, c.want)
		}
	}
}

func TestDecodeWithoutNRIPLeavesLengthToTheCore(t *testing.T) {
	v := testVCPU(Features{NRIPSave: false})
	v.regs.RIP = 0x1000
	v.vmcb.SetU64(CtlNRIP, 0x1002) // stale: the CPU does not save it
	if e := v.exitWith(ExitCPUID, 0, 0); e.InstrLen != 0 {
		t.Fatalf("length %d from a CPU without NRIP save", e.InstrLen)
	}
}

// TestDecodeReportsTheShadow: Exit.Shadow is the VMCB's interrupt
// shadow at the exit (APM Vol. 2 15.21.5).
func TestDecodeReportsTheShadow(t *testing.T) {
	v := testVCPU(Features{NRIPSave: true})
	if e := v.exitWith(ExitCPUID, 0, 0); e.Shadow {
		t.Error("a shadow reported with INTERRUPT_SHADOW clear")
	}
	v.vmcb.SetU64(CtlInterruptShadow, InterruptShadowActive)
	if e := v.exitWith(ExitCPUID, 0, 0); !e.Shadow {
		t.Error("INTERRUPT_SHADOW set, no shadow reported")
	}
}

func TestDecodeInterruptWindowEndsTheRequest(t *testing.T) {
	v := testVCPU(Features{})
	v.RequestInterruptWindow(true)
	if e := v.exitWith(ExitVINTR, 0, 0); e.Kind != vcpu.ExitInterruptWindow || v.window {
		t.Fatalf("%v, window still requested: %v", e.Kind, v.window)
	}
}

// TestDecodeInvalidNamesTheCheck: VMEXIT_INVALID comes as -1 (QEMU reports
// its low 32 bits); the report names the failed consistency check.
func TestDecodeInvalidNamesTheCheck(t *testing.T) {
	for _, c := range []struct {
		name string
		set  func(c *VMCB)
		want string
	}{
		{"SVME", func(c *VMCB) { c.SetU64(SaveEFER, 0) }, "EFER.SVME"},
		{"EFER reserved", func(c *VMCB) { c.SetU64(SaveEFER, x86.EFERSVME|1<<20) }, "EFER: reserved"},
		{"NW without CD", func(c *VMCB) { c.SetU64(SaveCR0, x86.CR0NW|x86.CR0PE) }, "CR0: NW"},
		{"long mode without PAE", func(c *VMCB) { c.SetU64(SaveCR0, x86.CR0PG|x86.CR0PE); c.SetU64(SaveCR4, 0) }, "CR4.PAE"},
		{"CR4 reserved", func(c *VMCB) { c.SetU64(SaveCR4, 1<<30) }, "CR4: reserved"},
		{"ASID 0", func(c *VMCB) { c.SetU32(CtlGuestASID, 0) }, "ASID 0"},
	} {
		for _, code := range []uint64{ExitInvalid, ExitInvalid & 0xffff_ffff} {
			v := testVCPU(Features{})
			c1 := v.vmcb
			c1.SetU64(SaveEFER, x86.EFERSVME|x86.EFERLME)
			c1.SetU64(SaveCR4, x86.CR4PAE)
			c1.SetU32(CtlGuestASID, 1)
			c1.SetU32(CtlInterceptMisc2, InterceptVMRUN)
			c.set(c1)
			e := v.exitWith(code, 0, 0)
			if e.Kind != vcpu.ExitInvalidState || !contains(e.Detail, c.want) {
				t.Errorf("%s (code %#x): %v %q, want it named %q", c.name, code, e.Kind, e.Detail, c.want)
			}
		}
	}
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}

// TestDecodeDoesNotAllocate: decoding the exits a running guest takes is
// allocation-free.
func TestDecodeDoesNotAllocate(t *testing.T) {
	v := testVCPU(Features{NRIPSave: true})
	var e vcpu.Exit
	for _, code := range []uint64{ExitCPUID, ExitMSR, ExitIOIO, ExitHLT, ExitVMMCALL, ExitNPF, ExitINTR} {
		v.vmcb.SetU64(CtlExitCode, code)
		if n := testing.AllocsPerRun(100, func() { v.decode(&e) }); n != 0 {
			t.Errorf("exit %#x: %v allocations", code, n)
		}
	}
}

// TestLoadStoreStateRoundTrip: what loadState writes, storeState reads
// back, with EFER.SVME hidden from the guest's view.
func TestLoadStoreStateRoundTrip(t *testing.T) {
	v := testVCPU(Features{})
	r := vcpu.ResetRegs()
	r.CR0, r.CR3, r.CR4, r.EFER = x86.CR0PE|x86.CR0PG, 0x4000, x86.CR4PAE, x86.EFERLME|x86.EFERLMA
	r.CS = vcpu.Segment{Selector: 8, Attrib: x86.SegTypeCodeXR | x86.SegS | x86.SegP | x86.SegL, Limit: 0xffff_ffff}
	r.SS = vcpu.Segment{Selector: 0x13, Attrib: x86.SegTypeDataRW | x86.SegS | x86.SegP | 3<<x86.SegDPLShift}
	r.GDTR, r.IDTR = vcpu.DescTable{Base: 0x1000, Limit: 23}, vcpu.DescTable{Base: 0x2000, Limit: 0xfff}
	r.PAT = 0x0606_0606_0606_0606
	v.regs = r
	v.loadState()
	if efer := v.vmcb.U64(SaveEFER); efer&x86.EFERSVME == 0 {
		t.Error("the hardware's EFER lacks SVME")
	}
	if cpl := v.vmcb.U8(SaveCPL); cpl != 3 {
		t.Errorf("CPL %d, want SS.DPL 3", cpl)
	}
	v.regs = vcpu.Regs{}
	v.storeState()
	if v.regs.CS != r.CS || v.regs.SS != r.SS || v.regs.CR3 != r.CR3 || v.regs.EFER != r.EFER {
		t.Errorf("after an exit: CS %+v SS %+v CR3 %#x EFER %#x", v.regs.CS, v.regs.SS, v.regs.CR3, v.regs.EFER)
	}
	v.SyncState()
	r.GPR, r.RIP, r.RFLAGS = v.regs.GPR, v.regs.RIP, v.regs.RFLAGS
	if v.regs != r {
		t.Errorf("round trip:\n got %+v\nwant %+v", v.regs, r)
	}
}

// TestNewVCPUReleasesOnFailure: running out of host pages half-way leaves
// nothing taken, and Close returns everything.
func TestNewVCPUReleasesOnFailure(t *testing.T) {
	h := vcputest.NewFakeHost()
	b := &Backend{mem: h, asids: vcpu.NewIDPool(4)}
	h.Limit = 1 // the VMCB fits, the run context does not
	if _, err := b.NewVCPU(0x5000); err == nil {
		t.Fatal("NewVCPU with one page")
	}
	if len(h.Pages) != 0 {
		t.Fatalf("%d pages leaked", len(h.Pages))
	}
	if id, _ := b.asids.Alloc(); id != 1 {
		t.Fatalf("ASID %d after the failure, want 1 back in the pool", id)
	}
	b.asids.Release(1)
	h.Limit = 0
	c, err := b.NewVCPU(0x5000)
	if err != nil {
		t.Fatal(err)
	}
	v := c.(*VCPU)
	if v.vmcb.U64(CtlNCR3) != 0x5000 || v.vmcb.U32(CtlGuestASID) == 0 || v.vmcb.U32(CtlInterceptMisc2)&InterceptVMRUN == 0 {
		t.Fatalf("VMCB not set up: nCR3 %#x ASID %d", v.vmcb.U64(CtlNCR3), v.vmcb.U32(CtlGuestASID))
	}
	if err := c.Close(); err != nil || len(h.Pages) != 0 {
		t.Fatalf("Close: %v, %d pages left", err, len(h.Pages))
	}
	if err := c.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

// TestVINTRPriorityComparison: the TPR threshold rides a virtual interrupt
// of priority class; a CPU that takes it at V_TPR == priority (QEMU's TCG)
// is recognised on the first such exit and given class-1 from then on.
func TestVINTRPriorityComparison(t *testing.T) {
	v := testVCPU(Features{})
	v.SetTPRThreshold(4)
	if got := v.b.vintrPrio(4); got != 4 {
		t.Fatalf("APM semantics: priority %d", got)
	}
	v.regs.CR8 = 2 // the guest lowered CR8 below 4: a real exit
	v.exitWith(ExitVINTR, 0, 0)
	if v.b.vintrInclusive.Load() {
		t.Fatal("a VINTR below the threshold taken for the inclusive comparison")
	}
	v.regs.CR8 = 4 // taken at V_TPR == priority
	if e := v.exitWith(ExitVINTR, 0, 0); e.Kind != vcpu.ExitInterruptWindow || !v.b.vintrInclusive.Load() {
		t.Fatalf("%v inclusive %v", e.Kind, v.b.vintrInclusive.Load())
	}
	if got := v.b.vintrPrio(4); got != 3 {
		t.Fatalf("inclusive: priority %d, want 3", got)
	}
}
