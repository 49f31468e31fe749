package metal

import (
	"sync/atomic"

	"gohv/x86"
)

// Per-CPU state, in the manner of gVisor's ring0.CPU and TamaGo's amd64.CPU:
// everything that belongs to one processor rather than to the kernel as a
// whole (what it runs, its run queue, its stacks, descriptor tables and TSS,
// the scratch its entry paths use) lives in a cpu, one per processor in
// cpus: cpus[0] is the boot CPU, and StartCPUs (smp.go) fills in one more
// for each application processor it brings up.
//
// Two ways lead to the running CPU's cpu, and nothing else may assume which
// one it is: the assembly entry paths address its fields as off(GS), since
// entry64 and apEntry64 point IA32_GS_BASE at it (nothing else in the image
// uses GS: the Go runtime's TLS is FS, and the VM backends restore the
// host's GS base on every exit); Go code calls thisCPU, which reads
// cpu.self through GS.
//
// Like all kernel state it is pointer-free: kernel code writes it with the
// kernel goroutine descriptor and no write barriers.

// maxCPUs is how many processors metal runs at most; the MADT may list more,
// and the kernel command-line word cpus=N asks for fewer.
const maxCPUs = 16

// Sizes of the per-CPU stacks besides the kernel stack.
const (
	istStackSize  = 8 << 10 // each of the #DF, NMI and #MC stacks
	idleStackSize = 8 << 10
)

// cpu is one processor's kernel state. The assembly (trap_amd64.s,
// boot_amd64.s) reads and writes kstack and the fields from kstackTop to
// kernG at the offsets cpuOff* below: keep kstack first and those fields
// right after it, in this order.
type cpu struct {
	kstack [kstackSize]byte // every trap's and system call's stack

	kstackTop   uintptr // 16-byte aligned top of kstack: IST1 and the SYSCALL stack
	kframe      uintptr // kstackTop - trapFrameSize: where every entry's TrapFrame lands
	fxArea      uintptr // 16-byte aligned FXSAVE image of the interrupted thread, in fxAreaBuf
	entryFSBase uint64  // FS base of the interrupted thread
	kernelFS    uintptr // FS base while kernel code runs: &tls[1]
	syscallSP   uint64  // SYSCALL entry scratch: the caller's RSP
	syscallRIP  uint64  // SYSCALL entry scratch: the caller's return RIP

	// The kernel's thread-local block and goroutine descriptor: Go code
	// finds its g at -8(FS), that is tls[0] = &kernG, and function
	// prologues compare SP with the g's stack guard. Of the runtime's g
	// only the first four words are read: stack.lo, stack.hi,
	// stackguard0, stackguard1 (the guard leaves kstackGuard bytes, so an
	// overflow faults instead of growing the stack).
	tls   [2]uint64
	kernG [32]uint64
	self  uintptr // this cpu's own address: thisCPU reads it through GS

	index  int32  // in cpus
	apicID uint32 // its local APIC's ID, the destination of its IPIs
	// online is set once the CPU runs its idle thread and takes work; read
	// by other CPUs without the kernel lock (StartCPUs waits on it).
	online atomic.Bool
	// shootdownReq is another CPU's request that this one flush its TLB
	// (shootdown in smp.go); cleared by this CPU once it has.
	shootdownReq atomic.Bool

	// Scheduling (sched.go), touched with interrupts off.
	current      int32 // the thread running on this CPU
	idle         int32 // this CPU's idle thread
	inKernel     bool  // kernel code is running: a trap now is a kernel bug
	needResched  bool  // switch threads at the end of this trap
	kicked       bool  // sent a reschedule IPI that it has not taken yet
	pinnedQueued int   // threads in the run queue bound to this CPU

	// The one-shot timer (timer.go), touched with interrupts off. Times
	// are the monotonic clock's nanoseconds. A thread's timed block is
	// ended by the CPU it blocked on (thread.timerCPU).
	timerArmed   int64  // the deadline the hardware timer is armed for; 0: disarmed
	timerFire    int64  // when it is programmed to fire: timerArmed less the advance
	timerArrival int64  // when timerWaitOut saw the interrupt come; 0: it did not
	timerTSC     uint64 // the IA32_TSC_DEADLINE value armed for timerFire (TSC-deadline mode)
	timerStale   bool   // timerWaitOut found the timer still counting: the interrupt is an older deadline's
	timerAdvance int64  // estimate of the interrupt's latency, armed ahead by
	wakeAt       int64  // earliest deadline of a timed block, never later than the truth; 0: none
	wakeStale    bool   // wakeAt may be early: the thread that held it woke before it
	timerDirty   bool   // what nextExpiry depends on may have changed since armTimer looked
	sliceStart   int64  // when the running thread was switched in (its slice: sliceEnd)

	// Counters.
	timerInterrupts uint64 // one-shot timer interrupts taken
	timerEarly      uint64 // of which found nothing due (a piece of a long count, a moved deadline)
	timerPrograms   uint64 // times the timer was armed, re-armed or disarmed
	timerSpinNS     uint64 // time spun in the interrupt, waiting out the advance
	idleWakeups     uint64 // interrupts that found this CPU idle
	contextSwitches uint64
	trapCount       [256]uint64 // by vector

	// Descriptor tables (desc.go): null, kernel code and data, and this
	// CPU's TSS, whose IST slots point at the stacks below.
	gdt  [gdtEntries]uint64
	gdtr [10]byte
	tss  [x86.TSS64Size]byte

	fxAreaBuf   [fxAreaSize + 16]byte
	istDFStack  [istStackSize]byte
	istNMIStack [istStackSize]byte
	istMCStack  [istStackSize]byte
	idleStack   [idleStackSize]byte
}

// Byte offsets of the cpu fields the assembly uses, as go_asm.h gives them
// to it (const_cpuOff...). TestCPUOffsetsMatchTheAssembly checks them, and
// cpu_unsafe.go refuses to compile if they drift.
const (
	cpuOffKstack      = 0
	cpuOffKstackTop   = kstackSize
	cpuOffKframe      = kstackSize + 8
	cpuOffFXArea      = kstackSize + 16
	cpuOffEntryFSBase = kstackSize + 24
	cpuOffKernelFS    = kstackSize + 32
	cpuOffSyscallSP   = kstackSize + 40
	cpuOffSyscallRIP  = kstackSize + 48
	cpuOffTLS         = kstackSize + 56
	cpuOffKernG       = kstackSize + 72
	cpuOffSelf        = kstackSize + 72 + 32*8
)

// cpus holds every processor's state; cpus[0] is the boot CPU, whose
// address entry64 loads into GS base.
var cpus [maxCPUs]cpu

// thisCPU returns the state of the processor running the caller: cpu.self
// read through GS (in the host tests, which have no GS of metal's,
// cpus[hostCPU]). Must not allocate; runs with interrupts off (with them
// on, the caller could move to another CPU).
//
//go:nosplit
func thisCPU() *cpu {
	if hostTest {
		return &cpus[hostCPU]
	}
	return (*cpu)(x86.Ptr(cpuSelf()))
}

// hostCPU is the CPU the host tests run as.
var hostCPU int

// currentThread is the thread running on this CPU.
//
//go:nosplit
func currentThread() *thread { return &threads[thisCPU().current] }

// entryFrame is where this CPU's entry paths saved the interrupted thread's
// registers, and where trapReturn restores them from.
func entryFrame() *TrapFrame { return (*TrapFrame)(x86.Ptr(thisCPU().kframe)) }

// entryFX is the interrupted thread's FPU/SSE state, likewise.
func entryFX() *[fxAreaSize]byte { return (*[fxAreaSize]byte)(x86.Ptr(thisCPU().fxArea)) }
