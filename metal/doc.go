// Package metal is gohv's freestanding runtime: the layer that boots an x86-64
// machine and hosts the stock linux/amd64 Go runtime on it, in ring 0, by
// giving the runtime the small Linux system-call surface it uses.
//
// # What it provides
//
// To the Go runtime, from below: a Multiboot/Multiboot2 entry that reaches
// long mode (boot_amd64.s, boot.go); physical memory from the boot loader's
// map (physmem) and the kernel's page tables (pagetable, memory.go); the
// GDT, TSS and IDT (desc.go); exceptions and interrupts (trap.go); the
// Linux system calls the runtime makes, trapped with SYSCALL (syscall.go and
// sys_*.go): a demand-paged mmap window for its heap, threads for its Ms on
// a preemptive scheduler (thread.go, sched.go), futexes, epoll on its
// eventfd, a PIT-calibrated TSC clock (clock.go), a tickless local APIC
// timer armed one-shot for what is due (timer.go, lapic.go), the serial
// console as fd 1 and 2; and faults in Go
// code delivered as Linux signals (signal.go), so a nil dereference is a
// recoverable panic.
//
// To the hypervisor's Go code, from above (api.go, pages.go): what metal
// found (GetInfo, GetStats, BootRSDP), the files the boot loader loaded
// beside the image (BootModules, modules.go), physical pages for control blocks
// and guest memory (AllocPage, FreePage, PhysPage, PhysMemory), time (TSC,
// Nanotime, and SetAlarm, a timer interrupt for the calling thread), and
// ending the run (Verdict, which powers the machine off).
// FaultInjection and UnknownSyscall exist for the image tests only
// (faultinject.go).
//
// # Invariants
//
// Kernel code is everything that runs from the boot entry to the runtime's
// entry point, and in trap and system-call handlers after it. It:
//
//   - runs with interrupts off, on its CPU's kernel stack, with a goroutine
//     descriptor of its own (cpu.kernG) that the runtime does not know;
//   - must not allocate, and must not rely on package initialisers (kmain
//     runs before they do): TestSyscallPathDoesNotAllocate checks the
//     system-call path;
//   - keeps its state pointer-free (integers and fixed arrays), because it
//     writes that state without write barriers: TestKernelStateIsPointerFree
//     checks the types;
//   - treats every address a thread passes in as hostile: pointers go
//     through userAccess before use.
//
// The exported functions run on ordinary Go threads with interrupts on. They
// read state that is fixed after boot, or single aligned words, and change
// kernel state only with interrupts off (x86.CLI).
//
// # Layout
//
// Per-processor state (the running thread, timer, stacks, descriptor
// tables, entry scratch) is in a cpu, one per processor (cpu.go). The
// assembly reaches it through GS at offsets that cpu_unsafe.go checks.
//
// # Several processors
//
// StartCPUs (smp_start.go) starts the application processors the MADT
// lists: INIT and SIPIs into a real-mode trampoline (smp_trampoline.go)
// that reaches apEntry64 on the kernel's page tables; each takes its own
// descriptor tables, local APIC, timer and idle thread (apMain). Kernel
// code runs on any CPU under one kernel lock, taken by every trap
// (smp.go); the exported functions change kernel state through metal's own
// system calls, never under the lock on a goroutine's stack. One run queue
// serves every CPU; a thread may be bound to one (PinThread). Waking a
// thread sends an idle CPU a reschedule IPI; a thread's timed block is
// ended by the CPU it blocked on; unmapping kernel pages flushes the other
// CPUs' TLBs (a shootdown IPI, answered while they wait for the lock) before
// the frames or emptied tables are reused. Architectural numbers and the privileged
// instructions are package x86's; device registers are named beside the code
// that drives them. Code that needs package unsafe is in *_unsafe.go files.
package metal
