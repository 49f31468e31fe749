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
	// FastUnbounded: offered with bounded set, not handled, because the
	// handling may block or take a lock: the backend offers it again with
	// host interrupts on and bounded false.
	FastUnbounded
)

// FastExit handles an exit the way the core's run loop would, from the
// backend's own loop, so that the hot exits skip the way out of Run and
// back in. The core decides everything (what it handles, whether the
// guest may be entered at once); the backend only offers the exits
// FastKind names. Called on the VP's thread. bounded says the backend
// holds host interrupts off around the call (VMX: the VMCS stays current,
// and a host interrupt waits at most one bounded handling): the core then
// handles the exit only if it can without blocking, taking a lock or
// allocating (CPUID; a hypercall whose code no call has), and otherwise
// returns FastUnbounded, having done nothing a second offer would not do
// again; the backend offers it again with host interrupts as the core
// runs (the VMCS may then have to be made current again afterwards).
// Regs holds what FastState names for the exit's kind; a FastExit that
// needs any other field calls SyncState first. Must not allocate.
type FastExit func(e *Exit, bounded bool) FastResult

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

// FastFields are parts of Regs beyond those every fast exit has (FastState).
type FastFields uint8

const (
	// FastMode: CR0, EFER and SS's attributes (SS.DPL is the CPL): the
	// processor mode and privilege a hypercall's checks read (TLFS 3.13).
	FastMode FastFields = 1 << iota
)

// FastState says which parts of Regs a backend has filled when it offers
// an exit of kind k to a FastExit: always the GPRs but RSP, RIP, CR2, CR8
// and CS's attributes (whether RIP wraps at 4 GiB), which is all a CPUID or
// port I/O exit reads; for a hypercall also FastMode. Every other field
// — RSP, RFLAGS, CR3, CR4, PAT, CS's base, the other segments and
// descriptor tables, and CR0, EFER and SS's attributes where FastMode is
// not set — may hold an older exit's value until SyncState. A FastExit
// writes only fields it may read (anything after SyncState); the backend
// loads what it wrote at the next entry, as after Run.
func FastState(k ExitKind) FastFields {
	if k == ExitHypercall {
		return FastMode
	}
	return 0
}
