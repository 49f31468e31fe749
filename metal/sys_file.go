package metal

// File descriptors and the calls on them: the console, the runtime's
// eventfd, read, write, close and fcntl. Run with interrupts off; must not
// allocate.

// File descriptors: 0–2 the console, then the runtime's epoll instance and
// its eventfd (the only two objects it creates).
const (
	fdNone uint8 = iota
	fdConsole
	fdEpoll
	fdEventfd
	maxFDs = 16
)

// fcntl commands and open flags (Linux include/uapi/asm-generic/fcntl.h).
const (
	fGetFD = 1
	fGetFL = 3
	oRDWR  = 2
)

var (
	fdKind = [maxFDs]uint8{fdConsole, fdConsole, fdConsole}

	eventFD      = -1
	eventfdCount uint64
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
	return errno(EMFILE)
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
	case fGetFD:
		return 0
	case fGetFL:
		return oRDWR
	}
	return 0
}

func sysEventfdImpl() uint64 {
	if eventFD >= 0 {
		return errno(EMFILE)
	}
	r := allocFD(fdEventfd)
	if int64(r) >= 0 {
		eventFD = int(r)
	}
	return r
}
