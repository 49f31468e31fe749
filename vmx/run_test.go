package vmx

import (
	"maps"
	"slices"
	"testing"

	"gohv/hv/vcpu"
	"gohv/x86"
)

// exitImage makes m a long-mode guest's VMCS at an exit of reason.
func exitImage(m *fakeVMCS, reason, qual, length uint64) {
	for f, x := range goodLongMode() {
		m.f[f] = x
	}
	m.f[GuestRSP], m.f[GuestCSBase], m.f[GuestRFLAGS] = 0x7000, 0, x86.RFLAGSFixed|x86.RFLAGSIF
	m.f[ExitReason], m.f[ExitQualification], m.f[ExitInstrLen] = reason, qual, length
	m.f[ExitIntrInfo] = x86.VectorUD | intTypeHWException<<intInfoTypeShift | intInfoValid
}

// checkRunState: Regs holds what vcpu.VCPU.Run promises after an exit —
// RIP, RSP, RFLAGS, the control registers, EFER, PAT, CS's attributes and
// base, SS's attributes — as the VMCS image holds them.
func checkRunState(t *testing.T, what string, v *VCPU, m *fakeVMCS) {
	t.Helper()
	r := v.regs
	for _, c := range []struct {
		name      string
		got, want uint64
	}{
		{"RIP", r.RIP, m.f[GuestRIP]}, {"RSP", r.GPR[x86.RSP], m.f[GuestRSP]}, {"RFLAGS", r.RFLAGS, m.f[GuestRFLAGS]},
		{"CR0", r.CR0, m.f[GuestCR0]&^v.cr0Mask | v.cr0Shadow&v.cr0Mask}, {"CR3", r.CR3, m.f[GuestCR3]},
		{"CR4", r.CR4, m.f[GuestCR4]&^v.cr4Mask | v.cr4Shadow&v.cr4Mask}, {"EFER", r.EFER, m.f[GuestEFER]},
		{"PAT", r.PAT, m.f[GuestPAT]}, {"CS attributes", uint64(r.CS.Attrib), uint64(fromAR(m.f[GuestCSAR]))},
		{"CS base", r.CS.Base, m.f[GuestCSBase]}, {"SS attributes", uint64(r.SS.Attrib), uint64(fromAR(m.f[GuestSSAR]))},
	} {
		if c.got != c.want {
			t.Errorf("%s: %s %#x, the VMCS holds %#x", what, c.name, c.got, c.want)
		}
	}
}

// TestExitForTheCoreHasTheWholeState: every exit Run returns to the core —
// one FastExit does not take, one it handed back (FastHandledReturn) —
// comes with the whole state vcpu.VCPU.Run promises, however little the
// exit itself needed; and the backend's own exits that read state (MOV
// from CR3) read it first.
func TestExitForTheCoreHasTheWholeState(t *testing.T) {
	for _, c := range []struct {
		name              string
		reason, qual, len uint64
	}{
		{"RDMSR", reasonRDMSR, 0, 2}, {"WRMSR", reasonWRMSR, 0, 2}, {"HLT", reasonHLT, 0, 1},
		{"EPT violation", reasonEPTViolation, eptQualWrite, 0}, {"external interrupt", reasonExtInt, 0, 0},
		{"preemption timer", reasonPreemptTimer, 0, 0}, {"interrupt window", reasonIntWindow, 0, 0},
		{"MOV to CR0", reasonCRAccess, 0 | crAccessMovTo<<crQualTypeShift, 3}, {"#UD", reasonException, 0, 0},
		{"triple fault", reasonTripleFault, 0, 0}, {"string OUT", reasonIO, ioQualString | 0x80<<ioQualPortShift, 1},
	} {
		v, m := testVCPU()
		exitImage(m, c.reason, c.qual, c.len)
		v.fast = func(e *vcpu.Exit, bounded bool) vcpu.FastResult {
			if c.reason != reasonIO {
				t.Errorf("%s offered to FastExit as %v", c.name, e.Kind)
			}
			return vcpu.FastDeclined
		}
		var e vcpu.Exit
		var flags uint64
		if !v.exited(&e, &flags) {
			t.Errorf("%s: not returned to the core", c.name)
			continue
		}
		checkRunState(t, c.name, v, m)
	}

	v, m := testVCPU()
	exitImage(m, reasonCRAccess, 3|crAccessMovFrom<<crQualTypeShift|uint64(x86.RBX)<<crQualRegShift, 3)
	var e vcpu.Exit
	var flags uint64
	if v.exited(&e, &flags) || v.regs.GPR[x86.RBX] != m.f[GuestCR3] {
		t.Errorf("MOV RBX, CR3: RBX %#x, want CR3 %#x answered by the backend", v.regs.GPR[x86.RBX], m.f[GuestCR3])
	}

	v, m = testVCPU()
	exitImage(m, reasonCPUID, 0, 2)
	v.fast = func(e *vcpu.Exit, bounded bool) vcpu.FastResult { return vcpu.FastHandledReturn }
	if !v.exited(&e, &flags) || e.Kind != vcpu.ExitNone {
		t.Fatalf("FastHandledReturn: %v, want ExitNone for the core", e.Kind)
	}
	checkRunState(t, "after FastHandledReturn", v, m)
}

// TestFastExitReadsWhatItNeeds: a CPUID, port I/O or VMCALL exit offered
// to FastExit costs the VMREADs vmexitPoint does and, for VMCALL, the
// mode group (vcpu.FastState); the fields the core reads are current
// when FastExit runs; and the re-entry writes RIP but not RSP and RFLAGS,
// which the core did not touch and which Regs holds only stale.
func TestFastExitReadsWhatItNeeds(t *testing.T) {
	hot := []uint32{ExitReason, ExitQualification, ExitInstrLen, IDTVectInfo, GuestInterruptibility, GuestRIP, GuestCSAR}
	mode := []uint32{GuestCR0, GuestEFER, GuestSSAR}
	for _, c := range []struct {
		name              string
		reason, qual, len uint64
		want              []uint32
	}{
		{"CPUID", reasonCPUID, 0, 2, hot},
		{"OUT", reasonIO, 0x10 << ioQualPortShift, 2, hot},
		{"VMCALL", reasonVMCALL, 0, 3, append(slices.Clone(hot), mode...)},
	} {
		v, m := testVCPU()
		exitImage(m, c.reason, c.qual, c.len)
		// An earlier entry wrote what the VMCS holds.
		v.regs.RIP, v.regs.GPR[x86.RSP], v.regs.RFLAGS = m.f[GuestRIP], m.f[GuestRSP], m.f[GuestRFLAGS]
		if err := v.prepareEntry(); err != nil {
			t.Fatal(err)
		}
		// The guest ran: RIP, RSP and RFLAGS moved.
		m.f[GuestRIP] += 0x40
		m.f[GuestRSP] -= 8
		m.f[GuestRFLAGS] &^= x86.RFLAGSIF
		v.regs.GPR[x86.RAX] = 0x77 // vmexitPoint stores the GPRs
		m.reads = map[uint32]int{}
		called := false
		v.fast = func(e *vcpu.Exit, bounded bool) vcpu.FastResult {
			if bounded && e.Kind == vcpu.ExitIO {
				return vcpu.FastUnbounded // offered again unbounded
			}
			called = true
			r := v.regs
			if r.RIP != m.f[GuestRIP] || r.CS.Attrib != fromAR(m.f[GuestCSAR]) || r.GPR[x86.RAX] != 0x77 || e.InstrLen != uint8(c.len) {
				t.Errorf("%s: FastExit sees RIP %#x CS %#x RAX %#x length %d", c.name, r.RIP, r.CS.Attrib, r.GPR[x86.RAX], e.InstrLen)
			}
			if vcpu.FastState(e.Kind)&vcpu.FastMode != 0 &&
				(r.CR0 != m.f[GuestCR0]&^v.cr0Mask || r.EFER != m.f[GuestEFER] || r.SS.Attrib != fromAR(m.f[GuestSSAR])) {
				t.Errorf("%s: FastExit sees CR0 %#x EFER %#x SS %#x", c.name, r.CR0, r.EFER, r.SS.Attrib)
			}
			r.RIP += uint64(e.InstrLen)
			return vcpu.FastHandled
		}
		var e vcpu.Exit
		var flags uint64
		if v.exited(&e, &flags) || !called {
			t.Fatalf("%s: returned to the core (FastExit called: %v)", c.name, called)
		}
		slices.Sort(c.want)
		if got := slices.Sorted(maps.Keys(m.reads)); !slices.Equal(got, c.want) {
			t.Errorf("%s: read %v, want %v", c.name, namesOf(got), namesOf(c.want))
		}
		rsp, rflags := m.f[GuestRSP], m.f[GuestRFLAGS]
		if err := v.prepareEntry(); err != nil {
			t.Fatal(err)
		}
		if m.f[GuestRSP] != rsp || m.f[GuestRFLAGS] != rflags {
			t.Errorf("%s: re-entry wrote RSP %#x RFLAGS %#x over the guest's %#x %#x", c.name, m.f[GuestRSP], m.f[GuestRFLAGS], rsp, rflags)
		}
		if v.regs.RIP != m.f[GuestRIP]+c.len {
			t.Errorf("%s: re-entry at %#x, want past the instruction at %#x", c.name, v.regs.RIP, m.f[GuestRIP]+c.len)
		}
		// A change the core makes after SyncState is written.
		v.fillState(stateAll)
		v.regs.RFLAGS |= x86.RFLAGSTF
		if err := v.prepareEntry(); err != nil || m.f[GuestRFLAGS] != rflags|x86.RFLAGSTF {
			t.Errorf("%s: RFLAGS the core set not written: %#x (%v)", c.name, m.f[GuestRFLAGS], err)
		}
	}
}

func namesOf(fs []uint32) []string {
	var s []string
	for _, f := range fs {
		s = append(s, FieldName(f))
	}
	return s
}

// TestQuickEntryIsWhenNothingIsWritten: quickEntry lets an entry skip
// prepareEntry exactly when prepareEntry would write nothing: after an
// entry that wrote everything, and after none of the changes that need a
// VMWRITE (or a flush).
func TestQuickEntryIsWhenNothingIsWritten(t *testing.T) {
	settled := func() (*VCPU, *fakeVMCS) {
		v, m := testVCPU()
		v.b.preemptTicks = 1000
		v.vapic = new([4096]byte)
		exitImage(m, reasonCPUID, 0, 2)
		if err := v.prepareEntry(); err != nil {
			t.Fatal(err)
		}
		return v, m
	}
	v, m := settled()
	if !v.quickEntry() {
		t.Fatal("not quick after an entry that wrote everything")
	}
	m.writes = 0
	v.regs.CR8 = 5
	if err := v.prepareEntry(); err != nil || m.writes != 0 || v.flush {
		t.Fatalf("prepareEntry wrote %d fields (%v), flush %v, where quickEntry saw nothing to do", m.writes, err, v.flush)
	}
	if !v.quickEntry() || v.vapic[vtprOffset] != 5<<4 {
		t.Errorf("prepareEntry left VTPR %#x for CR8 5", v.vapic[vtprOffset])
	}
	for _, c := range []struct {
		name   string
		change func(v *VCPU)
	}{
		{"MarkStateDirty", func(v *VCPU) { v.MarkStateDirty() }},
		{"the shadow ended", func(v *VCPU) { v.intr = intrBlockSTI; v.ClearInterruptShadow() }},
		{"an event injected", func(v *VCPU) { v.Inject(vcpu.Exception(x86.VectorGP, 0)) }},
		{"a window asked", func(v *VCPU) { v.RequestInterruptWindow(true) }},
		{"a TPR threshold", func(v *VCPU) { v.SetTPRThreshold(3) }},
		{"RSP changed", func(v *VCPU) { v.regs.GPR[x86.RSP] -= 8 }},
		{"RFLAGS changed", func(v *VCPU) { v.regs.RFLAGS |= x86.RFLAGSTF }},
		{"the timer not written", func(v *VCPU) { v.timerWritten = false }},
		{"a flush asked", func(v *VCPU) { v.FlushGuestTLB() }},
		{"a flush pending", func(v *VCPU) { v.flush = true }},
	} {
		v, _ := settled()
		c.change(v)
		if v.quickEntry() {
			t.Errorf("%s: quick entry", c.name)
		}
	}
	v, m = settled()
	v.RequestInterruptWindow(true)
	if err := v.prepareEntry(); err != nil || !v.quickEntry() || m.f[ProcControls]&procIntWindowExiting == 0 {
		t.Errorf("window: controls %#x after prepareEntry (%v), quick %v", m.f[ProcControls], err, v.quickEntry())
	}
	v.RequestInterruptWindow(false)
	if v.quickEntry() {
		t.Error("window dropped: quick entry")
	}
}

// TestEntryCalledOffByAnExitRequest: with an exit request set, the entry
// loop's last look returns ExitNone to the core with the whole state
// Run promises, though the exit before it (one FastExit handled) left
// only the fast fields current; ClearExitRequest lets the entry go on.
func TestEntryCalledOffByAnExitRequest(t *testing.T) {
	v, m := testVCPU()
	exitImage(m, reasonCPUID, 0, 2)
	v.fast = func(e *vcpu.Exit, bounded bool) vcpu.FastResult { return vcpu.FastHandled }
	var e vcpu.Exit
	var flags uint64
	if v.exited(&e, &flags) {
		t.Fatal("a CPUID FastExit handled went back to the core")
	}
	if v.entryCalledOff(&e) {
		t.Fatal("the entry was called off with no request")
	}
	v.RequestExit()
	if !v.entryCalledOff(&e) || e.Kind != vcpu.ExitNone {
		t.Fatalf("with a request: called off false or exit %v, want ExitNone", e.Kind)
	}
	checkRunState(t, "an entry called off", v, m)
	v.ClearExitRequest()
	if v.entryCalledOff(&e) {
		t.Fatal("the entry was still called off after ClearExitRequest")
	}
}
