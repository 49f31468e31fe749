package vcpu

import "gohv/x86"

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
	ExitCRWrite                  // a write to a control register: Exit.CR = Exit.Value
	ExitUnexpected               // anything else: Exit.Code, Info1, Info2 say what

	// NumExitKinds bounds per-kind counters.
	NumExitKinds
)

var exitNames = [...]string{"none", "interrupt", "cpuid", "msr-read", "msr-write", "io", "nested-fault",
	"hlt", "hypercall", "interrupt-window", "shutdown", "invalid-state", "instruction", "exception",
	"cr-write", "unexpected"}

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
	// Shadow: the guest was in an STI or MOV SS interrupt shadow at the
	// exit (what InterruptShadow answered then). The core looks here
	// rather than asking on every exit, and ends the shadow only when
	// there was one (ClearInterruptShadow).
	Shadow bool

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

	// Control-register write (MOV to CR0/CR3/CR4, CLTS, LMSW): the value
	// the guest asked for, which the core checks against the architecture
	// before it takes effect.
	CR    uint8
	Value uint64
	// ValueFromInstruction: the hardware did not say which register the
	// guest wrote from (SVM without decode assists); the core decodes the
	// MOV to CR at RIP for it.
	ValueFromInstruction bool

	// Raw vendor exit, for reports.
	Code, Info1, Info2 uint64
	// Detail explains an invalid-state or unexpected exit in the vendor's
	// terms (for VMX, the VMCS field that failed the entry checks). Only
	// set on exits that end the partition.
	Detail string
}

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

// Exception builds the event for exception vector v, with the error code
// when the architecture delivers one for v.
func Exception(v uint8, code uint32) Event {
	return Event{Vector: v, Type: EventException, HasError: x86.ExceptionHasErrorCode(v), ErrorCode: code}
}
