package metal

import "testing"

func TestFutexWaitBlocksAndWakeResumesInFIFOOrder(t *testing.T) {
	setupKernel(t)
	word := userAddr(256)
	*userU32(word) = 7
	a := thisCPU().current
	b, c := newThread(), newThread()
	makeRunnable(b)
	makeRunnable(c)

	if r := sys(sysFutex, word, futexWait|futexPrivate, 8, 0); r != errno(EAGAIN) {
		t.Fatalf("wait on changed value = %d, want EAGAIN", int64(r))
	}
	sys(sysFutex, word, futexWait|futexPrivate, 7, 0)
	if threads[a].state != tsBlocked {
		t.Fatal("waiter did not block")
	}
	schedule()
	if thisCPU().current != b {
		t.Fatalf("scheduler ran %d, want %d", thisCPU().current, b)
	}
	sys(sysFutex, word, futexWait|futexPrivate, 7, 0)
	schedule()
	if thisCPU().current != c {
		t.Fatalf("scheduler ran %d, want %d", thisCPU().current, c)
	}
	// Wake one: the first waiter (a) goes first.
	if r := sys(sysFutex, word, futexWake|futexPrivate, 1, 0); r != 1 {
		t.Fatalf("wake = %d", r)
	}
	if threads[a].state != tsRunnable || threads[b].state != tsBlocked {
		t.Fatalf("woke the wrong waiter: a=%d b=%d", threads[a].state, threads[b].state)
	}
	if threads[a].frame.RAX != 0 {
		t.Errorf("woken waiter's result %d", threads[a].frame.RAX)
	}
	if r := sys(sysFutex, word, futexWake|futexPrivate, 10, 0); r != 1 {
		t.Errorf("second wake = %d, want 1", r)
	}
	if r := sys(sysFutex, word+1, futexWait, 7, 0); r != errno(EFAULT) {
		t.Errorf("unaligned futex = %d, want EFAULT", int64(r))
	}
}

func TestFutexTimeoutReturnsETIMEDOUT(t *testing.T) {
	setupKernel(t)
	word, ts := userAddr(256), userAddr(512)
	*userU32(word) = 1
	*userU64(ts), *userU64(ts + 8) = 0, 1000 // 1 µs
	a := thisCPU().current
	sys(sysFutex, word, futexWait, 1, ts)
	if threads[a].state != tsBlocked {
		t.Fatal("did not block")
	}
	schedule()
	wakeExpired(nanotime() + 1e6)
	if threads[a].state != tsRunnable || threads[a].frame.RAX != errno(ETIMEDOUT) {
		t.Errorf("after deadline: state %d result %d", threads[a].state, int64(threads[a].frame.RAX))
	}
}

func TestCloneStartsThreadAfterSyscall(t *testing.T) {
	setupKernel(t)
	f := entryFrame()
	*f = TrapFrame{RAX: sysClone, RDI: 0xd0f00, RSI: 0x5000, R8: 0x7000, RIP: 0x1234, R13: 42}
	doSyscall(f)
	tid := f.RAX
	var child *thread
	for i := range threads {
		if threads[i].tid == int32(tid) && i != int(thisCPU().current) {
			child = &threads[i]
		}
	}
	if child == nil || child.state != tsRunnable {
		t.Fatalf("no runnable child with tid %d", tid)
	}
	if child.frame.RAX != 0 || child.frame.RSP != 0x5000 || child.fsBase != 0x7000 || child.frame.RIP != 0x1234 || child.frame.R13 != 42 {
		t.Errorf("child frame %+v fs %#x", child.frame, child.fsBase)
	}
	if r := sys(sysClone, 0x11, 0, 0, 0, 0); r != errno(EINVAL) {
		t.Errorf("fork-style clone = %d, want EINVAL", int64(r))
	}
}
