package svm

import (
	"testing"

	"gohv/hv/vcpu"
	"gohv/x86"
)

// TestExternalInterruptRidesVIRQ: an external interrupt enters as a
// virtual interrupt (V_IRQ, V_IGN_TPR, V_INTR_VECTOR) with the VINTR
// intercept off and EVENTINJ empty, and stays pending until an exit finds
// V_IRQ cleared, which is how the CPU reports that the guest took it.
func TestExternalInterruptRidesVIRQ(t *testing.T) {
	v := testVCPU(Features{})
	v.vmcb.SetU64(CtlVIntr, VIntrMasking)
	v.regs.CR8 = 3
	v.Inject(vcpu.Event{Vector: 0xed, Type: vcpu.EventExternal})
	v.RequestInterruptWindow(true) // the core wants more: it must wait for the next exit
	v.enter()
	vi := v.vmcb.U64(CtlVIntr)
	if want := uint64(VIntrMasking | VIntrIRQ | VIntrIgnTPR | 0xed<<VIntrVectorShift | 3); vi != want {
		t.Fatalf("V_INTR %#x, want %#x", vi, want)
	}
	if ev := v.vmcb.U64(CtlEventInj); ev != 0 {
		t.Fatalf("EVENTINJ %#x, want empty: QEMU delivers an injected interrupt twice", ev)
	}
	if v.vmcb.U32(CtlInterceptMisc1)&InterceptVINTR != 0 {
		t.Fatal("VINTR intercepted: the guest would exit instead of taking the vector")
	}
	if v.vmcb.U32(CtlInterceptCR)&InterceptCR8Write == 0 {
		t.Fatal("CR8 writes not intercepted while a virtual interrupt is armed")
	}

	// A host interrupt preempted it: V_IRQ still set.
	v.exitWith(ExitINTR, 0, 0)
	v.complete(new(vcpu.Exit))
	if !v.EventPending() {
		t.Fatal("an interrupt the guest has not taken is no longer pending")
	}
	v.enter()
	if vi := v.vmcb.U64(CtlVIntr); vi&VIntrIRQ == 0 || vi&VIntrVectorMask != 0xed<<VIntrVectorShift {
		t.Fatalf("not re-armed: V_INTR %#x", vi)
	}

	// The guest took it: the CPU cleared V_IRQ.
	v.vmcb.SetU64(CtlVIntr, v.vmcb.U64(CtlVIntr)&^VIntrIRQ)
	v.vmcb.SetU64(CtlExitCode, ExitMSR)
	v.complete(new(vcpu.Exit))
	if v.EventPending() {
		t.Fatal("still pending after the guest took it")
	}
	v.enter()
	if v.vmcb.U32(CtlInterceptMisc1)&InterceptVINTR == 0 || v.vmcb.U64(CtlVIntr)&VIntrVectorMask != 0 {
		t.Fatalf("the window the core asked for is not armed: V_INTR %#x", v.vmcb.U64(CtlVIntr))
	}
}

// TestExitIntInfoReinjection: an event whose delivery an exit cut short
// goes back in the way it first went: exceptions and NMIs through
// EVENTINJ, external interrupts through V_IRQ, including the ones QEMU's
// TCG reports with the exception type (vectors 32-255).
func TestExitIntInfoReinjection(t *testing.T) {
	for _, c := range []struct {
		name     string
		ii       uint64
		eventInj uint64 // what the next entry's EVENTINJ holds
		virq     uint8  // and V_INTR_VECTOR, with V_IRQ set, if not 0
	}{
		{"#PF with its error code", EventValid | EventTypeExc | EventErrValid | 14 | 2<<32, EventValid | EventTypeExc | EventErrValid | 14 | 2<<32, 0},
		{"NMI", EventValid | EventTypeNMI | 2, EventValid | EventTypeNMI | 2, 0},
		{"external interrupt", EventValid | EventTypeINTR | 0x30, 0, 0x30},
		{"external interrupt QEMU calls an exception", EventValid | EventTypeExc | 0xec, 0, 0xec},
		{"nothing", 0, 0, 0},
	} {
		v := testVCPU(Features{})
		v.vmcb.SetU64(CtlExitIntInfo, c.ii)
		v.vmcb.SetU64(CtlExitCode, ExitNPF)
		v.complete(new(vcpu.Exit))
		if got := v.EventPending(); got != (c.ii != 0) {
			t.Errorf("%s: pending %v", c.name, got)
		}
		v.enter()
		if got := v.vmcb.U64(CtlEventInj); got != c.eventInj {
			t.Errorf("%s: EVENTINJ %#x, want %#x", c.name, got, c.eventInj)
		}
		vi := v.vmcb.U64(CtlVIntr)
		switch {
		case c.virq == 0 && vi&VIntrIRQ != 0:
			t.Errorf("%s: V_IRQ armed (%#x)", c.name, vi)
		case c.virq != 0 && (vi&VIntrIRQ == 0 || uint8(vi>>VIntrVectorShift) != c.virq):
			t.Errorf("%s: V_INTR %#x, want V_IRQ with vector %#x", c.name, vi, c.virq)
		}
	}
}

// TestExceptionsStayOnEVENTINJ: the core's exceptions enter through
// EVENTINJ once, and leave nothing pending behind them once the VMRUN
// that took them has exited.
func TestExceptionsStayOnEVENTINJ(t *testing.T) {
	v := testVCPU(Features{})
	v.Inject(vcpu.Exception(x86.VectorGP, 0))
	v.enter()
	if got := v.vmcb.U64(CtlEventInj); got != EventValid|EventTypeExc|EventErrValid|x86.VectorGP {
		t.Fatalf("EVENTINJ %#x", got)
	}
	v.exitWith(ExitCPUID, 0, 0)
	v.complete(new(vcpu.Exit))
	if v.vmcb.U64(CtlVIntr)&VIntrIRQ != 0 || v.EventPending() {
		t.Fatal("a #GP left a virtual interrupt or a pending event")
	}
	v.enter()
	if got := v.vmcb.U64(CtlEventInj); got != 0 {
		t.Fatalf("EVENTINJ %#x at the entry after the one that took the #GP", got)
	}
}

// TestHeldEntryKeepsWhatItOwes: an entry vmrun declined (an exit request)
// consumed nothing: the next entry injects the same event and flushes
// the TLB, and only a VMRUN's exit retires them.
func TestHeldEntryKeepsWhatItOwes(t *testing.T) {
	v := testVCPU(Features{})
	v.Inject(vcpu.Exception(x86.VectorGP, 0))
	v.FlushGuestTLB()
	want := uint64(EventValid | EventTypeExc | EventErrValid | x86.VectorGP)
	for i := range 2 { // the first entry is held back, the second runs
		v.enter()
		if got := v.vmcb.U64(CtlEventInj); got != want {
			t.Fatalf("entry %d: EVENTINJ %#x, want %#x", i, got, want)
		}
		if got := v.vmcb.U32(CtlTLBControl); got != TLBControlFlushASID {
			t.Fatalf("entry %d: TLB_CONTROL %#x, want a flush", i, got)
		}
		if !v.EventPending() {
			t.Fatalf("entry %d: the #GP is not pending before a VMRUN took it", i)
		}
	}
	v.exitWith(ExitCPUID, 0, 0)
	v.complete(new(vcpu.Exit))
	v.enter()
	if v.vmcb.U64(CtlEventInj) != 0 || v.vmcb.U32(CtlTLBControl) != TLBControlNothing || v.EventPending() {
		t.Fatalf("after the exit: EVENTINJ %#x, TLB_CONTROL %#x, pending %v", v.vmcb.U64(CtlEventInj), v.vmcb.U32(CtlTLBControl), v.EventPending())
	}
}

// TestExitRequestReachesVMRUN: RequestExit sets the word vmrun looks at
// with GIF clear (CTX_EXITREQ) and ClearExitRequest clears it.
func TestExitRequestReachesVMRUN(t *testing.T) {
	v := testVCPU(Features{})
	v.RequestExit()
	if v.ctx.exitReq.Load() == 0 {
		t.Fatal("RequestExit left the run context's request clear")
	}
	v.ClearExitRequest()
	if v.ctx.exitReq.Load() != 0 {
		t.Fatal("ClearExitRequest left it set")
	}
}

// TestEntryAndExitDoNotAllocate: the VMRUN path around the instruction.
func TestEntryAndExitDoNotAllocate(t *testing.T) {
	v := testVCPU(Features{NRIPSave: true})
	var e vcpu.Exit
	v.vmcb.SetU64(CtlExitCode, ExitCPUID)
	if n := testing.AllocsPerRun(100, func() {
		v.Inject(vcpu.Event{Vector: 0x40, Type: vcpu.EventExternal})
		v.enter()
		v.complete(&e)
	}); n != 0 {
		t.Fatalf("%v allocations", n)
	}
}

// TestDropEvents: what INIT discards, the virtual interrupt and EVENTINJ,
// is neither pending nor armed at the next entry.
func TestDropEvents(t *testing.T) {
	v := testVCPU(Features{})
	v.Inject(vcpu.Event{Vector: 0x40, Type: vcpu.EventExternal})
	v.Inject(vcpu.Exception(x86.VectorGP, 0))
	v.DropEvents()
	v.enter()
	if v.EventPending() || v.vmcb.U64(CtlEventInj) != 0 || v.vmcb.U64(CtlVIntr)&VIntrIRQ != 0 {
		t.Fatalf("after DropEvents: pending %v EVENTINJ %#x V_INTR %#x", v.EventPending(), v.vmcb.U64(CtlEventInj), v.vmcb.U64(CtlVIntr))
	}
}
