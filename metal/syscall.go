package metal

// The Linux system calls the Go runtime issues (DESIGN.md, research/
// go-runtime-freestanding-facts.md §3), served in ring 0: their numbers, the
// dispatch, and the report of calls nobody serves. The handlers live by
// concern: sys_time.go, sys_futex.go, sys_file.go, sys_epoll.go,
// sys_thread.go, sys_mem.go, signal.go, random.go. Every handler runs with
// interrupts off on the kernel stack, must not allocate, and treats its
// arguments as hostile: pointers go through userAccess before use.

// Linux x86-64 system call numbers.
const (
	sysRead             = 0
	sysWrite            = 1
	sysClose            = 3
	sysMmap             = 9
	sysMunmap           = 11
	sysRtSigaction      = 13
	sysRtSigprocmask    = 14
	sysRtSigreturn      = 15
	sysPread64          = 17
	sysSchedYield       = 24
	sysMincore          = 27
	sysMadvise          = 28
	sysNanosleep        = 35
	sysGetpid           = 39
	sysClone            = 56
	sysExit             = 60
	sysUname            = 63
	sysFcntl            = 72
	sysSigaltstack      = 131
	sysPrctl            = 157
	sysArchPrctl        = 158
	sysGettid           = 186
	sysFutex            = 202
	sysSchedGetaffinity = 204
	sysClockGettime     = 228
	sysExitGroup        = 231
	sysEpollCtl         = 233
	sysTgkill           = 234
	sysOpenat           = 257
	sysEpollPwait       = 281
	sysEventfd2         = 290
	sysEpollCreate1     = 291
	sysPrlimit64        = 302
	sysGetrandom        = 318
)

// Linux errno values.
const (
	EPERM     = 1
	ENOENT    = 2
	EINTR     = 4
	EBADF     = 9
	EAGAIN    = 11
	ENOMEM    = 12
	EFAULT    = 14
	ENODEV    = 19
	EINVAL    = 22
	EMFILE    = 24
	ENOSYS    = 38
	ETIMEDOUT = 110
)

func errno(e int) uint64 { return uint64(-int64(e)) }

// syscallCounts counts calls by number, for the benchmark report.
var syscallCounts [512]uint64

// doSyscall dispatches the call in f (RAX number, RDI RSI RDX R10 R8 R9
// arguments) and leaves the result in f.RAX unless the thread blocked.
// Runs with interrupts off on the kernel stack; must not allocate.
func doSyscall(f *TrapFrame) {
	nr := f.RAX
	if nr < uint64(len(syscallCounts)) {
		syscallCounts[nr]++
	}
	a0, a1, a2, a3, a4 := f.RDI, f.RSI, f.RDX, f.R10, f.R8
	var r uint64
	switch nr {
	case sysGetpid:
		r = 1
	case sysGettid:
		r = uint64(currentThread().tid)
	case sysClockGettime:
		r = sysClockGettimeImpl(a0, a1)
	case sysFutex:
		r = sysFutexImpl(a0, a1, a2, a3)
		if currentThread().state == tsBlocked {
			return
		}
	case sysSchedYield:
		yield()
	case sysNanosleep:
		r = sysNanosleepImpl(a0)
		if currentThread().state == tsBlocked {
			return
		}
	case sysWrite:
		r = sysWriteImpl(a0, a1, a2)
	case sysRead:
		r = sysReadImpl(a0, a1, a2)
	case sysMmap:
		r = sysMmapImpl(a0, a1, a2, a3, a4)
	case sysMunmap:
		r = sysMunmapImpl(a0, a1)
	case sysMadvise:
		r = sysMadviseImpl(a0, a1, a2)
	case sysClone:
		r = sysCloneImpl(f, a0, a1, a4)
	case sysExit:
		exitCurrent()
		return
	case sysExitGroup:
		exitGroup(int64(a0))
		return
	case sysArchPrctl:
		r = sysArchPrctlImpl(a0, a1)
	case sysRtSigaction:
		r = sysRtSigactionImpl(a0, a1, a2, a3)
	case sysRtSigprocmask:
		r = sysRtSigprocmaskImpl(a2, a3)
	case sysRtSigreturn:
		sysRtSigreturnImpl(f)
		return
	case sysSigaltstack:
		r = sysSigaltstackImpl(a0, a1)
	case sysSchedGetaffinity:
		r = sysSchedGetaffinityImpl(a1, a2)
	case sysTgkill:
		r = 0 // signals are not sent between threads (asyncpreemptoff=1)
	case sysFcntl:
		r = sysFcntlImpl(a0, a1)
	case sysOpenat:
		r = errno(ENOENT) // no file system
	case sysClose:
		r = sysCloseImpl(a0)
	case sysPread64:
		r = errno(EBADF)
	case sysPrctl:
		r = errno(EINVAL)
	case sysPrlimit64:
		r = sysPrlimitImpl(a1, a2, a3)
	case sysEpollCreate1:
		r = sysEpollCreateImpl()
	case sysEventfd2:
		r = sysEventfdImpl()
	case sysEpollCtl:
		r = sysEpollCtlImpl(a0, a1, a2, a3)
	case sysEpollPwait:
		r = sysEpollPwaitImpl(a0, a1, a2, int64(int32(a3))) // the timeout is a C int
		if currentThread().state == tsBlocked {
			return
		}
	case sysGetrandom:
		r = sysGetrandomImpl(a0, a1)
	case sysMetalAllocPage:
		r = sysAllocPageImpl()
	case sysMetalFreePage:
		r = sysFreePageImpl(a0)
	case sysMetalPin:
		r = sysPinImpl(a0)
	case sysMetalSetAlarm:
		r = sysSetAlarmImpl(a0)
	case sysMetalPrepareCPU:
		r = sysPrepareCPUImpl(a0)
	case sysMincore, sysUname:
		r = errno(ENOSYS)
	default:
		unsupportedSyscall(nr, f.RIP)
		r = errno(ENOSYS)
	}
	f.RAX = r
}

var unsupportedSeen [8]uint64

// unsupportedSyscall reports a call the kernel does not implement, once per
// number (up to a few numbers), so the log shows what the runtime wanted.
// Runs with interrupts off; must not allocate.
func unsupportedSyscall(nr, rip uint64) {
	for i := range unsupportedSeen {
		if unsupportedSeen[i] == nr+1 {
			return
		}
		if unsupportedSeen[i] == 0 {
			unsupportedSeen[i] = nr + 1
			break
		}
	}
	kputs("gohv: unsupported system call ")
	kputdec(nr)
	kputs(" at rip ")
	kputhex(rip)
	kputs(": returning ENOSYS\n")
}

// LastUnsupportedSyscall returns the most recent unsupported system call
// number reported, or -1.
func LastUnsupportedSyscall() int64 {
	last := int64(-1)
	for _, v := range unsupportedSeen {
		if v != 0 {
			last = int64(v - 1)
		}
	}
	return last
}
