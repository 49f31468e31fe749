package hv

import "gohv/hv/vcpu"

// This file: the hot exits answered from inside the backend's entry loop
// (vcpu.FastExit). The profile of issue 15's peer loop put about 180
// instructions of a CPUID round trip in the core's run loop around the
// handler — delivery check, timer deadline and alarm, the Run call, the
// slice check, the way back — and on VT-x about 60 more in disabling and
// restoring interrupts around Run. A CPUID, hypercall or port I/O exit is
// handled here exactly as the run loop handles it, and the backend enters
// the guest again at once unless the core has something to do first.

// fastCheckEvery is how many exits fastExit takes between two reads of
// the clock for the slice's end: a slice overruns by at most that many
// round trips (microseconds), and the other exits read no clock.
const fastCheckEvery = 16

// fastExit is the VP's vcpu.FastExit: it counts and handles e as the run
// loop does (the exits vcpu.FastKind names), then says whether the loop
// would enter the guest again without doing anything first.
// The kinds it sees do not arm the VP's timers (those are MSR and MMIO
// writes, which take the full path), so the host alarm set before Run
// stays right. The registers are only those vcpu.FastState names for
// e.Kind: CPUID, IN/OUT and the hypercall checks read no other, and
// string I/O, which goes through the emulator, syncs the rest first
// (prepare); TestFastExitReadsOnlyFastState holds handle's fast kinds to
// that. bounded (host interrupts held off by the backend): only CPUID
// and a hypercall whose code no call has are handled, and anything else
// is FastUnbounded at once. VP thread; must not allocate.
func (vp *VP) fastExit(e *vcpu.Exit, bounded bool) vcpu.FastResult {
	// Bounded: a CPUID (the CPU model's tables) or a hypercall whose code
	// no call has (the TLFS checks and a refusal). Port I/O reaches
	// device models, which take locks.
	if bounded && e.Kind != vcpu.ExitCPUID && (e.Kind != vcpu.ExitHypercall || vp.hypercallServed()) {
		return vcpu.FastUnbounded
	}
	// Out of guest mode until the backend enters again: a VP waiting in
	// syncExit for this one (both in a TLB-flush hypercall, each
	// waiting for the other) must see it, or the two wait for ever.
	vp.inRun.Store(false)
	vp.runs.Add(1)
	vp.noteShadow(e)
	// What handle does for these kinds, without its switch over all;
	// syncCR8 written out (it does not inline).
	if vp.regs.CR8 != vp.cr8 {
		vp.cr8ToTPR()
	}
	switch e.Kind {
	case vcpu.ExitCPUID:
		vp.cpuid(e)
	case vcpu.ExitHypercall:
		vp.hypercall(e)
	case vcpu.ExitIO:
		vp.portIO(e)
	default:
		vp.handle(e)
	}
	vp.Exits[e.Kind]++
	// Would the run loop enter the guest again without doing anything
	// first? Not if deliver has something (the LAPIC not idle, an NMI,
	// a wait for SIPI, a window or TPR threshold asked), a stop is asked
	// or the slice is over (the clock read every fastCheckEvery exits).
	// inRun is set first: a Kick that comes after the LAPIC looked idle
	// then sees it and interrupts the entry.
	vp.inRun.Store(true)
	if !vp.lapic.Idle() || vp.nmiPending || vp.waitSIPI || vp.asked || vp.p.stopping.Load() {
		return vcpu.FastHandledReturn
	}
	if vp.fastLeft--; vp.fastLeft > 0 {
		return vcpu.FastHandled
	}
	vp.fastLeft = fastCheckEvery
	if vp.p.hv.Host.TSC() >= vp.sliceEndTSC {
		return vcpu.FastHandledReturn
	}
	return vcpu.FastHandled
}
