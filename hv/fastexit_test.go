package hv

import (
	"testing"

	"gohv/hv/vcpu"
	"gohv/x86"
)

// TestFastExitHandlesAsTheRunLoopDoes: a CPUID exit offered from the
// backend's loop is counted and answered as the run loop answers it; the
// backend may enter again at once while nothing waits for the core, and
// must return from Run once an interrupt is pending, a stop is asked or
// the slice is over.
func TestFastExitHandlesAsTheRunLoopDoes(t *testing.T) {
	p, vp, v, host := enabledVP(t)
	vp.newSlice()
	cpuid := func() vcpu.FastResult {
		v.regs.RIP = 0x1000
		v.regs.GPR[x86.RAX] = 0
		e := vcpu.Exit{Kind: vcpu.ExitCPUID, InstrLen: 2}
		return vp.fastExit(&e)
	}
	if r := cpuid(); r != vcpu.FastHandled {
		t.Fatalf("idle VP: %v, want FastHandled", r)
	}
	a, _, _, _ := p.hv.Model.CPUID(0, 0)
	if v.regs.RIP != 0x1002 || uint32(v.regs.GPR[x86.RAX]) != a || vp.Exits[vcpu.ExitCPUID] != 1 {
		t.Errorf("RIP %#x, EAX %#x (want %#x), %d CPUID exits counted", v.regs.RIP, v.regs.GPR[x86.RAX], a, vp.Exits[vcpu.ExitCPUID])
	}

	// The slice's end is seen within fastCheckEvery exits.
	host.now.Store(int64(vp.sliceEndTSC))
	n := 0
	for cpuid() == vcpu.FastHandled {
		if n++; n > fastCheckEvery {
			t.Fatalf("still FastHandled %d exits after the slice ended", n)
		}
	}
	vp.newSlice()

	if r := cpuid(); r != vcpu.FastHandled {
		t.Fatalf("new slice: %v, want FastHandled", r)
	}
	vp.Interrupt(0x30)
	if r := cpuid(); r != vcpu.FastHandledReturn {
		t.Errorf("interrupt pending: %v, want FastHandledReturn", r)
	}

	p2, v2, _, _ := newTestPartition(t, 1<<20)
	vp2 := p2.VP(0)
	vp2.newSlice()
	p2.Start()
	p2.Stop("test")
	p2.Wait()
	e := vcpu.Exit{Kind: vcpu.ExitCPUID, InstrLen: 2}
	if r := vp2.fastExit(&e); r != vcpu.FastHandledReturn || v2.regs.RIP == 0 {
		t.Errorf("stop asked: %v (RIP %#x), want FastHandledReturn after the CPUID", r, v2.regs.RIP)
	}
}

// TestFastExitDoesNotAllocate: the exits a backend offers to fastExit
// allocate nothing there either.
func TestFastExitDoesNotAllocate(t *testing.T) {
	p, v, _, _ := newTestPartition(t, 1<<20)
	p.console = nil
	vp := p.VP(0)
	vp.newSlice()
	for _, e := range []vcpu.Exit{
		{Kind: vcpu.ExitCPUID, InstrLen: 2},
		{Kind: vcpu.ExitHypercall, InstrLen: 3},
		{Kind: vcpu.ExitIO, Port: 0x3ff, Size: 1, InstrLen: 1},
		{Kind: vcpu.ExitIO, Port: 0x2f0, Size: 4, In: true, InstrLen: 1},
	} {
		n := testing.AllocsPerRun(1000, func() {
			v.regs.RIP = 0x1000
			vp.fastExit(&e)
		})
		if n != 0 {
			t.Errorf("%v exit: %v allocations per fast exit", e.Kind, n)
		}
	}
}
