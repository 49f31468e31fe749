package vcpu

// FastResult is what a core's FastExit did with an exit a backend offered
// it from inside its entry loop.
type FastResult uint8

const (
	// FastDeclined: not handled; Run returns the exit as usual.
	FastDeclined FastResult = iota
	// FastHandled: handled, and nothing waits for the core: the backend
	// enters the guest again without returning from Run.
	FastHandled
	// FastHandledReturn: handled, but the core must run before the next
	// entry (an interrupt to deliver, a stop, the end of the time slice):
	// Run returns with ExitNone.
	FastHandledReturn
)

// FastExit handles an exit the way the core's run loop would, from the
// backend's own loop, so that the hot exits skip the way out of Run and
// back in. The core decides everything (what it handles, whether the
// guest may be entered at once); the backend only offers the exits
// FastKind names. Called on the VP's thread with host interrupts as the
// core runs (a backend that disabled them restores them first), so the
// VMCS may have to be made current again afterwards. Must not allocate.
type FastExit func(e *Exit) FastResult

// FastExiter is a VCPU that can offer exits to a FastExit; optional.
type FastExiter interface {
	SetFastExit(f FastExit)
}

// FastKind reports whether a backend offers exits of kind k to its
// FastExit: CPUID, hypercalls and port I/O, the exits guests take in
// loops (issue 15's peer loop).
func FastKind(k ExitKind) bool {
	return k == ExitCPUID || k == ExitHypercall || k == ExitIO
}
