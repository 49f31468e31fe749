// Package hv is gohv's vendor-neutral hypervisor core: partitions, their
// guest-physical memory, virtual processors and the exits they take,
// emulated devices, and the virtual CPU model (CPUID, MSRs). The vendor
// backends (svm for AMD-V, vmx for Intel VT-x) implement VCPU; hv never
// touches a VMCB or VMCS.
package hv

import "gohv/hv/emul"

// Segment is a segment register in the AMD state-save form: attributes
// packed as type 3:0, S 4, DPL 6:5, P 7, AVL 8, L 9, D/B 10, G 11 (APM Vol. 2
// B-2). The VMX backend converts to and from VMX access rights.
type Segment struct {
	Selector uint16
	Attrib   uint16
	Limit    uint32
	Base     uint64
}

// Segment attribute bits.
const (
	SegS   = 1 << 4
	SegP   = 1 << 7
	SegL   = 1 << 9
	SegDB  = 1 << 10
	SegG   = 1 << 11
	SegDPL = 3 << 5
)

// DescTable is GDTR or IDTR.
type DescTable struct {
	Base  uint64
	Limit uint32
}

// GPR indexes, in the order of the x86 instruction encoding. They are the
// instruction emulator's, so Regs.GPR and emul.State.GPR copy as a whole.
const (
	RAX, RCX, RDX, RBX = emul.RAX, emul.RCX, emul.RDX, emul.RBX
	RSP, RBP, RSI, RDI = emul.RSP, emul.RBP, emul.RSI, emul.RDI
	R8, R9, R10, R11   = emul.R8, emul.R9, emul.R10, emul.R11
	R12, R13, R14, R15 = emul.R12, emul.R13, emul.R14, emul.R15
)

// Regs is a VP's architectural state as the core sees it. After every exit
// the backend has filled GPR, RIP, RFLAGS, the control registers, EFER and
// the segment registers; before every entry it loads GPR, RIP and RFLAGS
// back. The rest is loaded only after MarkStateDirty (initial state, an
// emulated write to EFER or a control register).
type Regs struct {
	GPR                      [16]uint64
	RIP, RFLAGS              uint64
	CR0, CR2, CR3, CR4, EFER uint64
	CS, DS, ES, SS, FS, GS   Segment
	TR, LDTR                 Segment
	GDTR, IDTR               DescTable
	PAT                      uint64
}

// Architectural bits the core reasons about.
const (
	RFLAGSIF = 1 << 9
	RFLAGSDF = 1 << 10
	RFLAGS1  = 1 << 1 // reserved, always 1

	CR0PE = 1 << 0
	CR0ET = 1 << 4
	CR0NE = 1 << 5
	CR0WP = 1 << 16
	CR0PG = 1 << 31

	CR4PAE = 1 << 5

	EFERSCE   = 1 << 0
	EFERLME   = 1 << 8
	EFERLMA   = 1 << 10
	EFERNXE   = 1 << 11
	EFERSVME  = 1 << 12
	EFERFFXSR = 1 << 14
)

// EventType is how an event is delivered (the EVENTINJ/VM-entry
// interruption types).
type EventType uint8

const (
	EventExternal EventType = iota
	EventNMI
	EventException
	EventSoftInt
)

// Event is an interrupt or exception to deliver to the guest at the next
// entry.
type Event struct {
	Vector    uint8
	Type      EventType
	HasError  bool
	ErrorCode uint32
}

// Exception vectors used by the core.
const (
	VectorUD = 6
	VectorGP = 13
	VectorPF = 14
)

// ExitKind classifies an exit in vendor-neutral terms.
type ExitKind uint8

const (
	ExitNone            ExitKind = iota
	ExitInterrupt                // a host interrupt arrived; the guest did nothing
	ExitCPUID                    // leaf in RAX, subleaf in RCX
	ExitMSRRead                  // MSR number in RCX
	ExitMSRWrite                 // MSR number in RCX, value in EDX:EAX
	ExitIO                       // Exit.Port/Size/In/String/Rep
	ExitNestedFault              // guest-physical access the nested tables refused: Exit.GPA
	ExitHLT                      //
	ExitHypercall                // VMMCALL/VMCALL
	ExitInterruptWindow          // the guest can now take an external interrupt
	ExitShutdown                 // triple fault
	ExitInvalidState             // the hardware refused to enter the guest
	ExitInstruction              // an instruction the guest may not execute (VMRUN, VMLOAD, ...): inject #UD
	ExitException                // an intercepted exception: Exit.Vector (and ErrorCode)
	ExitUnexpected               // anything else: Exit.Code, Info1, Info2 say what
)

var exitNames = [...]string{"none", "interrupt", "cpuid", "msr-read", "msr-write", "io", "nested-fault",
	"hlt", "hypercall", "interrupt-window", "shutdown", "invalid-state", "instruction", "exception", "unexpected"}

func (k ExitKind) String() string {
	if int(k) < len(exitNames) {
		return exitNames[k]
	}
	return "?"
}

// Exit is one exit, filled by VCPU.Run. Guest-controlled: every field came
// from the guest's behaviour.
type Exit struct {
	Kind ExitKind
	// InstrLen is the length of the exiting instruction when the hardware
	// reported it (NRIP, VM-exit instruction length), else 0 and the core
	// decodes the instruction at RIP.
	InstrLen uint8

	// Port I/O.
	Port            uint16
	Size            uint8 // 1, 2 or 4
	In, String, Rep bool

	// Nested-page fault.
	GPA                   uint64
	Write, Fetch, Present bool

	// Intercepted exception.
	Vector    uint8
	ErrorCode uint32

	// Raw vendor exit, for reports.
	Code, Info1, Info2 uint64
	// Detail explains an invalid-state or unexpected exit in the vendor's
	// terms (for VMX, the VMCS field that failed the entry checks). Only
	// set on exits that end the partition.
	Detail string
}

// VCPU is one virtual processor on a vendor's hardware extension. All methods
// are called from the VP's own thread (the goroutine is locked to it).
type VCPU interface {
	// Run enters the guest and returns at the next exit, with e filled and
	// Regs synchronised. The error is for backend failures, never for
	// anything the guest did. Must not allocate.
	Run(e *Exit) error
	// Regs is the register file Run loads from and stores to.
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
	// guest can take it (IF and the interrupt shadow for external ones).
	Inject(ev Event)
	// InterruptShadow reports whether the guest is in an STI/MOV SS shadow.
	InterruptShadow() bool
	// ClearInterruptShadow ends the shadow: the core emulated (skipped) the
	// instruction after STI or MOV SS.
	ClearInterruptShadow()
	// RequestInterruptWindow asks for ExitInterruptWindow as soon as the
	// guest can take an external interrupt.
	RequestInterruptWindow(on bool)
	// Close releases the backend's pages.
	Close() error
}

// StateBreaker is implemented by backends that can deliberately corrupt
// one field of a VP's hardware guest state, to prove that an entry failure
// is reported by name and stops only that partition. It returns the name
// the failure report must contain.
type StateBreaker interface {
	BreakGuestState() string
}

// Backend is a vendor's hardware extension, enabled on this CPU.
type Backend interface {
	Name() string
	// NestedFormat says which table format the nested page tables use.
	NestedFormat() NestedFormat
	// NewVCPU creates a VP whose guest-physical space is translated by the
	// nested tables at nestedRoot (the nCR3 or EPTP value from
	// GuestMemory.NestedRoot). Which ports and MSRs exit is the backend's
	// policy, set when it was enabled.
	NewVCPU(nestedRoot uint64) (VCPU, error)
}

// NestedFormat is the second-level table format.
type NestedFormat uint8

const (
	FormatNPT NestedFormat = iota
	FormatEPT
)

// MSRPolicy says which MSRs the guest may read or write without an exit.
type MSRPolicy interface {
	PassThroughMSR(msr uint32, write bool) bool
}
