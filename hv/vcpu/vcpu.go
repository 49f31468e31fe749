// Package vcpu is the contract between gohv's vendor-neutral hypervisor
// core (package hv) and the hardware backends (svm for AMD-V, vmx for Intel
// VT-x): the register file a VP exposes, the exits and events that cross
// the boundary, the VCPU and Backend interfaces, and the plumbing both
// backends share (host pages with rollback, ASID/VPID pools, the FXSAVE
// reset image, the MSR pass-through policy).
//
// It is a leaf: it imports only the standard library and package x86, so
// svm and vmx depend on it and never on the rest of hv.
//
// Invariants: the core calls a VCPU only from the VP's own locked thread.
// Run and everything the core calls between two Runs on a running guest's
// path must not allocate. An error from a backend means the backend or the
// hardware failed; nothing a guest does is reported as an error — it is
// described by the Exit.
package vcpu

// VCPU is one virtual processor on a vendor's hardware extension. All
// methods are called from the VP's own thread (the goroutine is locked to
// it).
type VCPU interface {
	// Run enters the guest and returns at the next exit, with e filled and
	// Regs synchronised. The error is for backend failures, never for
	// anything the guest did. Must not allocate.
	Run(e *Exit) error
	// Regs is the register file Run loads from and stores to: the same
	// pointer for the VCPU's life (the core keeps it).
	Regs() *Regs
	// MarkStateDirty makes the next Run load all of Regs, not only the
	// general-purpose registers, RIP and RFLAGS.
	MarkStateDirty()
	// SyncState makes every field of Regs current. After an exit a backend
	// may fill only RIP, RSP, RFLAGS, the control registers, EFER, PAT, CS
	// (attributes and base), SS attributes and the GPRs; callers that read
	// other segment registers or GDTR/IDTR call SyncState first.
	SyncState()
	// Inject delivers ev at the next entry. The caller has checked that the
	// guest can take it (IF and the interrupt shadow for external ones)
	// and that no event is pending (EventPending). An external interrupt
	// that an exit preempts before the guest takes it stays pending, and
	// is taken once IF allows.
	Inject(ev Event)
	// EventPending reports whether an event waits for the next entry: one
	// the core injected, or one whose delivery an exit interrupted and the
	// backend delivers again (its vector is already in the local APIC's
	// ISR, so the core must not take another in its place).
	EventPending() bool
	// FlushGuestTLB asks that the guest's linear-address translations
	// cached for this VCPU (its VPID or ASID) be flushed before its next
	// entry. Unlike the other methods it may be called from any thread
	// (another VP's hypercall asks it); it does not block or allocate.
	FlushGuestTLB()
	// DropEvents discards what waits for the next entry (the INIT
	// reset's: an interrupt acknowledged but not yet taken, an exception
	// to re-deliver), so it is not delivered into the reset state.
	DropEvents()
	// InterruptShadow reports whether the guest is in an STI/MOV SS shadow.
	InterruptShadow() bool
	// ClearInterruptShadow ends the shadow: the core emulated (skipped) the
	// instruction after STI or MOV SS.
	ClearInterruptShadow()
	// RequestInterruptWindow asks for ExitInterruptWindow as soon as the
	// guest can take an external interrupt.
	RequestInterruptWindow(on bool)
	// SetTPRThreshold gives, before an entry, the priority class (1-15)
	// of the highest interrupt the guest's task priority holds back, or 0.
	// A backend that lets the guest write CR8 without an exit (SVM's
	// V_TPR, VMX's TPR shadow) must exit (ExitInterruptWindow) once the
	// guest lowers CR8 below it with interrupts enabled; one that exits on
	// every CR8 write may ignore it.
	SetTPRThreshold(class uint8)
	// Bind makes host CPU cpu this VP's. The VP's thread calls it once it
	// runs bound to that CPU, before its first Run there, and stays there
	// until Unbind. The backend turns its extension on for that CPU if no
	// VP did before, and makes the VP's hardware state that CPU's (VMX:
	// the VMCS is set up or loaded there, with that CPU's host state;
	// SVM: VMRUN saves the host in that CPU's areas).
	Bind(cpu int) error
	// Unbind gives the CPU up, on the same thread before it leaves it
	// (VMX: VMCLEAR writes the VMCS back), so that Close may run on any
	// thread and Bind on another CPU.
	Unbind()
	// Close releases the backend's pages and IDs. Safe to call twice.
	Close() error
}

// MaxHostCPUs is how many host CPUs a backend keeps state for: metal's
// limit.
const MaxHostCPUs = 16

// Backend is a vendor's hardware extension, enabled on this CPU.
type Backend interface {
	// Name is the extension's name ("AMD-V", "Intel VT-x").
	Name() string
	// Report describes what was enabled, one line per fact, for the
	// startup report on the console.
	Report() []string
	// NestedFormat says which table format the nested page tables use.
	NestedFormat() NestedFormat
	// HypercallInstruction is how a guest enters the hypervisor on this
	// vendor (VMCALL 0F 01 C1, VMMCALL 0F 01 D9): what the hypercall
	// page holds before its RET.
	HypercallInstruction() [3]byte
	// NewVCPU creates a VP whose guest-physical space is translated by the
	// nested tables at nestedRoot (the nCR3 or EPTP value). Which ports and
	// MSRs exit is the backend's policy, set when it was enabled. A failure
	// releases whatever the backend had taken for the VP.
	NewVCPU(nestedRoot uint64) (VCPU, error)
}

// NestedFormat is the second-level table format.
type NestedFormat uint8

const (
	FormatNPT NestedFormat = iota // AMD nested page tables (long-mode format)
	FormatEPT                     // Intel extended page tables
)

// MSRPolicy says which MSRs the guest may read or write without an exit.
type MSRPolicy interface {
	PassThroughMSR(msr uint32, write bool) bool
}

// StateBreaker is the one test seam a backend offers: it deliberately
// corrupts one field of a VP's hardware guest state so that the image's
// checks can prove an entry failure is reported by name and stops only
// that partition. It returns the name the failure report must contain.
// Production code never calls it.
type StateBreaker interface {
	BreakGuestStateForTest() string
}
