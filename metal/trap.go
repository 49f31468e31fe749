package metal

import "gohv/x86"

// Trap dispatch: every exception, interrupt and system call from a thread
// arrives here (trap_amd64.s) on the kernel stack, interrupts off, with the
// thread's registers in f. Must not allocate.

// Vectors metal chooses; the exception vectors are x86's.
const (
	vecTimer    = 0x20
	vecPICBase  = 0x30 // legacy 8259 remapped here and masked
	vecSpurious = 0xff

	// vectorStubs is how many entry stubs trap_amd64.s has: vectors 0-63,
	// then vecSpurious last.
	vectorStubs = 65
)

var exceptionNames = [x86.FirstExternalVector]string{
	"#DE divide error", "#DB debug", "NMI", "#BP breakpoint", "#OF overflow",
	"#BR bound range", "#UD invalid opcode", "#NM device not available",
	"#DF double fault", "coprocessor overrun", "#TS invalid TSS",
	"#NP segment not present", "#SS stack fault", "#GP general protection",
	"#PF page fault", "reserved 15", "#MF x87 error", "#AC alignment check",
	"#MC machine check", "#XM SIMD exception", "#VE virtualization",
	"#CP control protection", "reserved 22", "reserved 23", "reserved 24",
	"reserved 25", "reserved 26", "reserved 27", "#HV hypervisor injection",
	"#VC VMM communication", "#SX security", "reserved 31",
}

var pageFaults uint64

// trap is every entry's Go half: f is the interrupted thread's frame, on
// this CPU's kernel stack, with interrupts off. It holds the kernel lock
// (smp.go) from after the entry checks to the return. Must not allocate.
func trap(f *TrapFrame) {
	c := thisCPU()
	if c.inKernel || (f.Vector < x86.FirstExternalVector && !c.isEntryFrame(f)) {
		kernelFault(f)
	}
	v := f.Vector
	if v == vecShootdown {
		// Without the lock: the CPU that asked holds it while it waits.
		c.trapCount[v]++
		c.serviceShootdown()
		lapicEOI()
		return
	}
	if v == vecTimer {
		c.timerWaitOut()
	}
	c.lockKernel()
	c.inKernel = true
	switch {
	case v == vectorSyscall:
		doSyscall(f)
	case v == vecResched:
		c.trapCount[v]++
		c.countIdleWakeup()
		lapicEOI() // schedule, below, looks at the run queue
	case v == vecTimer:
		c.trapCount[v]++
		c.countIdleWakeup()
		timerInterrupt()
		lapicEOI()
	case v < x86.FirstExternalVector:
		c.trapCount[v]++
		exception(f)
	case v >= vecDeviceFirst && v <= vecDeviceLast: // devirq.go
		c.trapCount[v]++
		c.countIdleWakeup()
		deviceInterrupt(v)
		lapicEOI()
	case v >= vecPICBase && v < vecPICBase+16, v == vecSpurious:
		c.trapCount[v&0xff]++ // spurious: no EOI
		c.countIdleWakeup()
	default:
		c.trapCount[v&0xff]++
		c.countIdleWakeup()
		lapicEOI()
	}
	schedule()
	c.armTimer()
	c.inKernel = false
	unlockKernel()
}

// exception handles a fault raised by a thread's code: a page fault in the
// mmap window is backed, anything else becomes a signal to the runtime, or
// stops the machine if no handler can take it. Runs with interrupts off;
// must not allocate.
func exception(f *TrapFrame) {
	switch f.Vector {
	case x86.VectorPF:
		addr := x86.ReadCR2()
		write := f.ErrorCode&x86.PFErrWrite != 0
		present := f.ErrorCode&x86.PFErrPresent != 0
		if !present {
			switch handleUserFault(addr, write) {
			case faultFixed:
				pageFaults++
				return
			case faultNoMem:
				kputs("gohv: out of memory backing page ")
				kputhex(addr)
				kputs("\n")
				dumpFrame(f, addr)
				fatal("out of physical memory")
			}
		}
		code := segvMapErr
		if present {
			code = segvAccErr
		}
		if addr >= nullGuard {
			// A wild access, not a nil dereference: show the machine state
			// before the runtime prints the goroutine's trace.
			kputs("gohv: page fault in Go code\n")
			dumpFrame(f, addr)
		}
		signalOrDie(f, SIGSEGV, code, addr)
	case x86.VectorGP:
		kputs("gohv: general protection fault in Go code\n")
		dumpFrame(f, 0)
		signalOrDie(f, SIGSEGV, siKernel, 0) // as Linux reports #GP
	case x86.VectorUD:
		kputs("gohv: invalid opcode in Go code\n")
		dumpFrame(f, 0)
		signalOrDie(f, SIGILL, ill_ILLOPN, f.RIP)
	case x86.VectorDE:
		signalOrDie(f, SIGFPE, fpe_INTDIV, f.RIP)
	case x86.VectorBP:
		kputs("gohv: breakpoint (INT3) in Go code\n")
		dumpFrame(f, 0)
		signalOrDie(f, SIGTRAP, siKernel, f.RIP)
	default:
		kputs("gohv: unexpected exception in Go code\n")
		dumpFrame(f, 0)
		fatal("unexpected exception")
	}
}

func signalOrDie(f *TrapFrame, sig, code int, addr uint64) {
	if deliverSignal(f, sig, code, addr) {
		return
	}
	dumpFrame(f, addr)
	fatal("fault with no signal handler to report it")
}

// kernelFault reports a fault in the kernel itself and stops the machine.
// Runs with interrupts off; never returns.
func kernelFault(f *TrapFrame) {
	thisCPU().inKernel = true
	kputs("\ngohv: KERNEL FAULT (bug in metal)\n")
	dumpFrame(f, x86.ReadCR2())
	fatal("kernel fault")
}

func dumpFrame(f *TrapFrame, cr2 uint64) {
	v := f.Vector
	kputs("gohv:   vector ")
	kputdec(v)
	if v < x86.FirstExternalVector {
		kputs(" (")
		kputs(exceptionNames[v])
		kputs(")")
	}
	kputs(" error ")
	kputhex(f.ErrorCode)
	kputs(" thread ")
	kputdec(uint64(currentThread().tid))
	kputs("\ngohv:   rip ")
	kputhex(f.RIP)
	kputs(" rsp ")
	kputhex(f.RSP)
	kputs(" rflags ")
	kputhex(f.RFLAGS)
	kputs(" cr2 ")
	kputhex(cr2)
	kputs("\ngohv:   rax ")
	kputhex(f.RAX)
	kputs(" rbx ")
	kputhex(f.RBX)
	kputs(" rcx ")
	kputhex(f.RCX)
	kputs(" rdx ")
	kputhex(f.RDX)
	kputs("\ngohv:   rsi ")
	kputhex(f.RSI)
	kputs(" rdi ")
	kputhex(f.RDI)
	kputs(" rbp ")
	kputhex(f.RBP)
	kputs(" r8 ")
	kputhex(f.R8)
	kputs("\ngohv:   r9 ")
	kputhex(f.R9)
	kputs(" r10 ")
	kputhex(f.R10)
	kputs(" r11 ")
	kputhex(f.R11)
	kputs(" r12 ")
	kputhex(f.R12)
	kputs("\ngohv:   r13 ")
	kputhex(f.R13)
	kputs(" r14 ")
	kputhex(f.R14)
	kputs(" r15 ")
	kputhex(f.R15)
	kputs("\n")
}

// countIdleWakeup counts an interrupt that found the CPU idle.
func (c *cpu) countIdleWakeup() {
	if c.current == c.idle {
		c.idleWakeups++
	}
}
