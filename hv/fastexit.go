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
// would enter the guest again without doing anything first (mayStayIn).
// The kinds it sees do not arm the VP's timers (those are MSR and MMIO
// writes, which take the full path), so the host alarm set before Run
// stays right. VP thread; must not allocate.
func (vp *VP) fastExit(e *vcpu.Exit) vcpu.FastResult {
	vp.Exits[e.Kind]++
	vp.noteShadow()
	vp.handle(e)
	if !vp.mayStayIn() {
		return vcpu.FastHandledReturn
	}
	return vcpu.FastHandled
}

// mayStayIn reports whether the run loop would enter the guest again
// without doing anything first: deliver has nothing (the LAPIC idle, no
// NMI, not waiting for a SIPI, no window or TPR threshold asked), no stop
// is asked, and the time slice is not over (looked at every
// fastCheckEvery calls). VP thread; must not allocate.
func (vp *VP) mayStayIn() bool {
	if !vp.lapic.Idle() || vp.nmiPending || vp.waitSIPI || vp.asked || vp.p.stopping.Load() {
		return false
	}
	if vp.fastLeft--; vp.fastLeft > 0 {
		return true
	}
	vp.fastLeft = fastCheckEvery
	return vp.p.hv.Host.TSC() < vp.sliceEndTSC
}
