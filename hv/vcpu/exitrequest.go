package vcpu

// ExitRequester is a VCPU whose next entry the core can call off;
// optional. It closes the window between the core's last look at what
// the guest is owed (its local APIC) and the entry: an interrupt posted
// there by another thread kicks the VP's host CPU, but a CPU that still
// takes host interrupts takes the kick in host mode, and the guest would
// run without it until its next exit (the end of its time slice).
type ExitRequester interface {
	// RequestExit asks that the guest not be entered until
	// ClearExitRequest. The backend looks at the request as the last
	// thing before each entry, with host interrupts held (VMX: IF clear;
	// SVM: GIF clear), and while it is set Run returns ExitNone without
	// entering. A request made after that look must come with a host
	// interrupt to the VP's CPU (the core's kick), which the held
	// interrupts turn into an exit as soon as the guest runs. Any
	// goroutine; never blocks, must not allocate.
	RequestExit()
	// ClearExitRequest ends the request. The core calls it on the VP's
	// thread before it looks at what the guest is owed, so that a
	// request made after the look holds the entry back.
	ClearExitRequest()
}
