package metal

import (
	"gohv/x86"
)

// Synchronous signals: a fault in Go code becomes a Linux-style signal
// delivered to the runtime's handler, so a nil dereference is a Go panic and
// any other fault ends in the runtime's own traceback. Layouts follow the
// Linux x86-64 ABI (arch/x86/include/uapi/asm/sigcontext.h, ucontext.h) as
// Go's runtime reads them (runtime/defs_linux_amd64.go).

const (
	SIGILL  = 4
	SIGTRAP = 5
	SIGBUS  = 7
	SIGFPE  = 8
	SIGSEGV = 11

	siKernel   = 0x80 // SI_KERNEL: sent by the kernel, not a process
	segvMapErr = 1    // SEGV_MAPERR
	segvAccErr = 2    // SEGV_ACCERR
	ill_ILLOPN = 2
	fpe_INTDIV = 1

	saOnStack = 0x08000000
	ssOnStack = 1
	ssDisable = 2

	// Offsets in the signal frame.
	ucMcontext   = 40               // uc_flags, uc_link, uc_stack{sp,flags,size}
	ucSigmask    = ucMcontext + 256 // after struct sigcontext
	ucSize       = ucSigmask + 128
	siginfoSize  = 128
	fpstateAlign = 64
)

type sigaction struct {
	handler, flags, restorer, mask uint64
}

var sigactions [65]sigaction

func sysRtSigactionImpl(sig, act, old, size uint64) uint64 {
	if sig == 0 || sig >= uint64(len(sigactions)) || size != 8 {
		return errno(EINVAL)
	}
	if old != 0 {
		if !userAccess(old, 32, true) {
			return errno(EFAULT)
		}
		*(*sigaction)(x86.Ptr(uintptr(old))) = sigactions[sig]
	}
	if act != 0 {
		if !userAccess(act, 32, false) {
			return errno(EFAULT)
		}
		sigactions[sig] = *(*sigaction)(x86.Ptr(uintptr(act)))
	}
	return 0
}

func sysRtSigprocmaskImpl(old, size uint64) uint64 {
	if old != 0 {
		if !userAccess(old, 8, true) {
			return errno(EFAULT)
		}
		*userU64(old) = 0
	}
	return 0
}

// stack_t: {ss_sp u64, ss_flags i32, pad, ss_size u64}
func sysSigaltstackImpl(ss, old uint64) uint64 {
	t := currentThread()
	if old != 0 {
		if !userAccess(old, 24, true) {
			return errno(EFAULT)
		}
		flags := uint32(0)
		if t.altSize == 0 {
			flags = ssDisable
		} else if t.altOn {
			flags = ssOnStack
		}
		*userU64(old) = t.altSP
		*userU64(old + 8) = uint64(flags)
		*userU64(old + 16) = t.altSize
	}
	if ss != 0 {
		if !userAccess(ss, 24, false) {
			return errno(EFAULT)
		}
		if t.altOn {
			return errno(EPERM)
		}
		if uint32(*userU64(ss + 8))&ssDisable != 0 {
			t.altSP, t.altSize = 0, 0
		} else {
			t.altSP, t.altSize = *userU64(ss), *userU64(ss + 16)
		}
	}
	return 0
}

// deliverSignal rewrites the current thread's entry state so that it runs
// the registered handler as Linux would. Returns false if no handler is
// registered or the frame cannot be written; the caller then stops the image.
// Runs with interrupts off; must not allocate.
func deliverSignal(f *TrapFrame, sig int, code int, addr uint64) bool {
	sa := &sigactions[sig]
	if sa.handler <= 1 || sa.restorer == 0 { // SIG_DFL, SIG_IGN
		return false
	}
	t := currentThread()
	sp := f.RSP - 128 // red zone
	onAlt := false
	if sa.flags&saOnStack != 0 && t.altSize != 0 && !t.altOn {
		sp = t.altSP + t.altSize
		onAlt = true
	}
	// fpstate, siginfo, ucontext, return address: from the top down.
	fp := (sp - fxAreaSize) &^ (fpstateAlign - 1)
	si := (fp - siginfoSize) &^ 15
	uc := (si - ucSize) &^ 15
	ret := uc - 8
	if !userAccess(ret, fp+fxAreaSize-ret, true) {
		return false
	}
	clear(userBytes(ret, fp+fxAreaSize-ret))
	*(*[fxAreaSize]byte)(x86.Ptr(uintptr(fp))) = *entryFX()

	*userU32(si) = uint32(sig)
	*userU32(si + 8) = uint32(code)
	*userU64(si + 16) = addr

	*userU64(uc + 16) = t.altSP
	*userU64(uc + 32) = t.altSize
	mc := uc + ucMcontext
	g := (*[32]uint64)(x86.Ptr(uintptr(mc)))
	g[0], g[1], g[2], g[3] = f.R8, f.R9, f.R10, f.R11
	g[4], g[5], g[6], g[7] = f.R12, f.R13, f.R14, f.R15
	g[8], g[9], g[10], g[11] = f.RDI, f.RSI, f.RBP, f.RBX
	g[12], g[13], g[14], g[15] = f.RDX, f.RAX, f.RCX, f.RSP
	g[16], g[17] = f.RIP, f.RFLAGS
	g[18] = f.CS
	g[19] = f.ErrorCode
	g[20] = f.Vector
	g[22] = addr // cr2
	g[23] = fp   // fpstate
	*userU64(ret) = sa.restorer

	if onAlt {
		t.altOn = true
	}
	f.RSP = ret
	f.RIP = sa.handler
	f.RDI = uint64(sig)
	f.RSI = si
	f.RDX = uc
	f.RAX = 0
	f.RFLAGS &^= x86.RFLAGSDF | x86.RFLAGSTF
	f.CS, f.SS = selKernelCode, selKernelData
	signalsDelivered++
	return true
}

var signalsDelivered uint64

// sysRtSigreturnImpl restores the context saved by deliverSignal (possibly
// modified by the handler: the runtime redirects RIP to sigpanic). The
// ucontext sits at the stack pointer the restorer was entered with.
func sysRtSigreturnImpl(f *TrapFrame) {
	uc := f.RSP
	t := currentThread()
	if !userAccess(uc, ucSize, false) {
		kputs("gohv: rt_sigreturn with a bad frame pointer; stopping the thread\n")
		exitGroup(139)
		return
	}
	g := (*[32]uint64)(x86.Ptr(uintptr(uc + ucMcontext)))
	f.R8, f.R9, f.R10, f.R11 = g[0], g[1], g[2], g[3]
	f.R12, f.R13, f.R14, f.R15 = g[4], g[5], g[6], g[7]
	f.RDI, f.RSI, f.RBP, f.RBX = g[8], g[9], g[10], g[11]
	f.RDX, f.RAX, f.RCX, f.RSP = g[12], g[13], g[14], g[15]
	f.RIP = g[16]
	// Keep ring 0 and interrupts on whatever the context says.
	f.RFLAGS = g[17]&^(x86.RFLAGSDF|x86.RFLAGSTF|x86.RFLAGSIOPL) | x86.RFLAGSIF | x86.RFLAGSFixed
	f.CS, f.SS = selKernelCode, selKernelData
	if fp := g[23]; fp != 0 && userAccess(fp, fxAreaSize, false) {
		*entryFX() = *(*[fxAreaSize]byte)(x86.Ptr(uintptr(fp)))
		// MXCSR's reserved upper half must stay clear or FXRSTOR faults.
		fx := entryFX()
		fx[x86.FXSaveMXCSROffset+2], fx[x86.FXSaveMXCSROffset+3] = 0, 0
	}
	t.altOn = false
}
