package metal

// The Linux system calls the Go runtime issues (DESIGN.md, research/
// go-runtime-freestanding-facts.md §3), served in ring 0. Every handler runs
// with interrupts off on the kernel stack, must not allocate, and treats its
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
	EINVAL    = 22
	ENOSYS    = 38
	ETIMEDOUT = 110
)

func errno(e int) uint64 { return uint64(-int64(e)) }

// syscallCounts counts calls by number, for the benchmark report.
var syscallCounts [512]uint64

// doSyscall dispatches the call in f (RAX number, RDI RSI RDX R10 R8 R9
// arguments) and leaves the result in f.RAX unless the thread blocked.
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
		r = uint64(threads[current].tid)
	case sysClockGettime:
		r = sysClockGettimeImpl(a0, a1)
	case sysFutex:
		r = sysFutexImpl(a0, a1, a2, a3)
		if threads[current].state == tsBlocked {
			return
		}
	case sysSchedYield:
		if runqLen > 0 {
			needResched = true
		}
	case sysNanosleep:
		r = sysNanosleepImpl(a0)
		if threads[current].state == tsBlocked {
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
		r = sysEpollPwaitImpl(a0, a1, a2, int64(a3))
		if threads[current].state == tsBlocked {
			return
		}
	case sysGetrandom:
		r = sysGetrandomImpl(a0, a1)
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

func sysClockGettimeImpl(clk, ts uint64) uint64 {
	if !userAccess(ts, 16, true) {
		return errno(EFAULT)
	}
	var ns int64
	switch clk {
	case 0, 5, 8: // REALTIME, REALTIME_COARSE, REALTIME_ALARM
		ns = nanotime() + wallOffset
	case 1, 4, 6, 7, 9: // MONOTONIC, _RAW, _COARSE, BOOTTIME, BOOTTIME_ALARM
		ns = nanotime()
	case 2, 3: // process/thread CPU time: approximate by uptime
		ns = nanotime()
	default:
		return errno(EINVAL)
	}
	*userU64(ts) = uint64(ns / 1e9)
	*userU64(ts + 8) = uint64(ns % 1e9)
	return 0
}

// readTimespec reads a relative timeout; ok=false on a bad pointer or value.
func readTimespec(p uint64) (int64, bool) {
	if !userAccess(p, 16, false) {
		return 0, false
	}
	sec, nsec := int64(*userU64(p)), int64(*userU64(p + 8))
	if sec < 0 || nsec < 0 || nsec >= 1e9 {
		return 0, false
	}
	if sec > 1<<32 {
		sec = 1 << 32
	}
	return sec*1e9 + nsec, true
}

const (
	futexWait    = 0
	futexWake    = 1
	futexPrivate = 128
)

func sysFutexImpl(addr, op, val, timeout uint64) uint64 {
	if addr&3 != 0 || !userAccess(addr, 4, false) {
		return errno(EFAULT)
	}
	switch op &^ futexPrivate {
	case futexWait:
		if *userU32(addr) != uint32(val) {
			return errno(EAGAIN)
		}
		var deadline int64
		if timeout != 0 {
			d, ok := readTimespec(timeout)
			if !ok {
				return errno(EINVAL)
			}
			deadline = nanotime() + d
			if d == 0 {
				return errno(ETIMEDOUT)
			}
		}
		t := &threads[current]
		waitSeq++
		t.futex = addr
		t.waitSeq = waitSeq
		block(blockFutex, deadline)
		return 0
	case futexWake:
		n := uint64(0)
		for n < val {
			// Wake in FIFO order.
			best := int32(-1)
			for i := int32(1); i < maxThreads; i++ {
				t := &threads[i]
				if t.state == tsBlocked && t.reason == blockFutex && t.futex == addr &&
					(best < 0 || t.waitSeq < threads[best].waitSeq) {
					best = i
				}
			}
			if best < 0 {
				break
			}
			wake(best, 0)
			n++
		}
		return n
	}
	return errno(ENOSYS)
}

func sysNanosleepImpl(req uint64) uint64 {
	d, ok := readTimespec(req)
	if !ok {
		return errno(EINVAL)
	}
	if d == 0 {
		if runqLen > 0 {
			needResched = true
		}
		return 0
	}
	block(blockSleep, nanotime()+d)
	return 0
}

// File descriptors: 0–2 the console, then the runtime's epoll instance and
// its eventfd (the only two objects it creates).
const (
	fdNone uint8 = iota
	fdConsole
	fdEpoll
	fdEventfd
	maxFDs = 16
)

var (
	fdKind = [maxFDs]uint8{fdConsole, fdConsole, fdConsole}

	eventfdCount uint64
	epollFD      = -1
	eventFD      = -1
	epollData    uint64 // data registered for the eventfd
	epollArmed   bool
)

func fdOf(fd uint64) uint8 {
	if fd >= maxFDs {
		return fdNone
	}
	return fdKind[fd]
}

func allocFD(kind uint8) uint64 {
	for i := 3; i < maxFDs; i++ {
		if fdKind[i] == fdNone {
			fdKind[i] = kind
			return uint64(i)
		}
	}
	return errno(24) // EMFILE
}

func sysWriteImpl(fd, buf, n uint64) uint64 {
	switch fdOf(fd) {
	case fdConsole:
		if n > 1<<20 {
			n = 1 << 20
		}
		if !userAccess(buf, n, false) {
			return errno(EFAULT)
		}
		consoleWrite(userBytes(buf, n))
		return n
	case fdEventfd:
		if n < 8 || !userAccess(buf, 8, false) {
			return errno(EINVAL)
		}
		eventfdCount += *userU64(buf)
		wakeEpoll()
		return 8
	}
	return errno(EBADF)
}

func sysReadImpl(fd, buf, n uint64) uint64 {
	switch fdOf(fd) {
	case fdEventfd:
		if n < 8 || !userAccess(buf, 8, true) {
			return errno(EINVAL)
		}
		if eventfdCount == 0 {
			return errno(EAGAIN)
		}
		*userU64(buf) = eventfdCount
		eventfdCount = 0
		return 8
	case fdConsole:
		return 0 // no console input yet: end of file
	}
	return errno(EBADF)
}

func sysCloseImpl(fd uint64) uint64 {
	if fdOf(fd) == fdNone {
		return errno(EBADF)
	}
	if fd > 2 {
		fdKind[fd] = fdNone
	}
	return 0
}

func sysFcntlImpl(fd, cmd uint64) uint64 {
	if fdOf(fd) == fdNone {
		return errno(EBADF)
	}
	switch cmd {
	case 1: // F_GETFD
		return 0
	case 3: // F_GETFL
		return 2 // O_RDWR
	}
	return 0
}

func sysEpollCreateImpl() uint64 {
	if epollFD >= 0 {
		return errno(24)
	}
	r := allocFD(fdEpoll)
	if int64(r) >= 0 {
		epollFD = int(r)
	}
	return r
}

func sysEventfdImpl() uint64 {
	if eventFD >= 0 {
		return errno(24)
	}
	r := allocFD(fdEventfd)
	if int64(r) >= 0 {
		eventFD = int(r)
	}
	return r
}

// epoll_ctl: only the eventfd can be registered (the runtime's netpoll break
// descriptor); the event struct is {u32 events; u64 data} packed.
func sysEpollCtlImpl(epfd, op, fd, ev uint64) uint64 {
	if fdOf(epfd) != fdEpoll {
		return errno(EBADF)
	}
	if fdOf(fd) != fdEventfd {
		return errno(EPERM)
	}
	switch op {
	case 1, 3: // ADD, MOD
		if !userAccess(ev, 12, false) {
			return errno(EFAULT)
		}
		epollData = *userU64(ev + 4)
		epollArmed = true
	case 2: // DEL
		epollArmed = false
	}
	return 0
}

// epollReady writes the eventfd's readiness into buf; returns events written.
func epollReady(buf uint64) uint64 {
	if !epollArmed || eventfdCount == 0 {
		return 0
	}
	*userU32(buf) = 1 // EPOLLIN
	*userU64(buf + 4) = epollData
	return 1
}

func sysEpollPwaitImpl(epfd, buf, maxev uint64, timeoutMS int64) uint64 {
	if fdOf(epfd) != fdEpoll {
		return errno(EBADF)
	}
	if int64(maxev) <= 0 || !userAccess(buf, 12, true) {
		return errno(EINVAL)
	}
	if n := epollReady(buf); n > 0 || timeoutMS == 0 {
		return n
	}
	var deadline int64
	if timeoutMS > 0 {
		deadline = nanotime() + timeoutMS*1e6
	}
	t := &threads[current]
	t.epollBuf = buf
	t.epollMax = int64(maxev)
	block(blockEpoll, deadline)
	return 0
}

// wakeEpoll wakes every epoll waiter after the eventfd was written.
func wakeEpoll() {
	for i := int32(1); i < maxThreads; i++ {
		t := &threads[i]
		if t.state == tsBlocked && t.reason == blockEpoll {
			wake(i, epollReady(t.epollBuf))
		}
	}
}

func sysSchedGetaffinityImpl(n, buf uint64) uint64 {
	if n < 8 || !userAccess(buf, 8, true) {
		return errno(EINVAL)
	}
	*userU64(buf) = 1 // one CPU runs Go threads
	return 8
}

func sysPrlimitImpl(resource, newp, oldp uint64) uint64 {
	if oldp != 0 {
		if !userAccess(oldp, 16, true) {
			return errno(EFAULT)
		}
		*userU64(oldp) = 1024
		*userU64(oldp + 8) = 1024
	}
	if newp != 0 {
		return errno(EPERM)
	}
	return 0
}

func sysArchPrctlImpl(code, addr uint64) uint64 {
	const archSetFS, archGetFS = 0x1002, 0x1003
	switch code {
	case archSetFS:
		entryFSBase = addr
		return 0
	case archGetFS:
		if !userAccess(addr, 8, true) {
			return errno(EFAULT)
		}
		*userU64(addr) = entryFSBase
		return 0
	}
	return errno(EINVAL)
}

// clone: new thread sharing everything; the child resumes after SYSCALL with
// RAX=0 on the given stack and TLS (CLONE_SETTLS).
func sysCloneImpl(f *TrapFrame, flags, stack, tls uint64) uint64 {
	const cloneVM, cloneThread, cloneSetTLS = 0x100, 0x10000, 0x80000
	if flags&cloneVM == 0 || flags&cloneThread == 0 {
		return errno(EINVAL) // no processes, only threads
	}
	i := newThread()
	if i < 0 {
		return errno(EAGAIN)
	}
	t := &threads[i]
	t.frame = *f
	t.frame.RAX = 0
	if stack != 0 {
		t.frame.RSP = stack
	}
	t.fx = *entryFX()
	t.fsBase = entryFSBase
	if flags&cloneSetTLS != 0 {
		t.fsBase = tls
	}
	makeRunnable(i)
	return uint64(t.tid)
}

func sysGetrandomImpl(buf, n uint64) uint64 {
	if n > 1<<16 {
		n = 1 << 16
	}
	if !userAccess(buf, n, true) {
		return errno(EFAULT)
	}
	fillRandom(userBytes(buf, n))
	return n
}
