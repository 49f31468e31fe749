package metal

// epoll, as far as the runtime's netpoller uses it: one instance watching
// its eventfd. Runs with interrupts off; must not allocate.

// epoll_ctl operations and event bits (Linux include/uapi/linux/eventpoll.h).
const (
	epollCtlAdd = 1
	epollCtlDel = 2
	epollCtlMod = 3
	epollIn     = 0x001
)

var (
	epollFD    = -1
	epollData  uint64 // data registered for the eventfd
	epollArmed bool
)

func sysEpollCreateImpl() uint64 {
	if epollFD >= 0 {
		return errno(EMFILE)
	}
	r := allocFD(fdEpoll)
	if int64(r) >= 0 {
		epollFD = int(r)
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
	case epollCtlAdd, epollCtlMod:
		if !userAccess(ev, 12, false) {
			return errno(EFAULT)
		}
		epollData = *userU64(ev + 4)
		epollArmed = true
	case epollCtlDel:
		epollArmed = false
	}
	return 0
}

// epollReady writes the eventfd's readiness into buf; returns events written.
func epollReady(buf uint64) uint64 {
	if !epollArmed || eventfdCount == 0 {
		return 0
	}
	*userU32(buf) = epollIn
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
	t := currentThread()
	t.epollBuf = buf
	t.epollMax = int64(maxev)
	block(blockEpoll, deadline)
	return 0
}

// wakeEpoll wakes every epoll waiter after the eventfd was written.
func wakeEpoll() {
	for i := firstThread; i < threadsHigh; i++ {
		t := &threads[i]
		if t.state == tsBlocked && t.reason == blockEpoll {
			wake(i, epollReady(t.epollBuf))
		}
	}
}
