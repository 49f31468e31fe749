package metal

// futex(2): FUTEX_WAIT and FUTEX_WAKE, the runtime's only blocking
// primitive besides sleeping and epoll. Runs with interrupts off; must not
// allocate.

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
		t := currentThread()
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
			for i := firstThread; i < threadsHigh; i++ {
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
