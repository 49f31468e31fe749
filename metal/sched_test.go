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

// asCPU makes the host tests run as CPU i of n online ones: its entry
// state and idle thread set up as apMain would, running its idle thread.
func asCPU(t *testing.T, i, n int) *cpu {
	t.Helper()
	cpuSlots = int32(n)
	for k := range n {
		cpus[k].online.Store(true)
	}
	hostCPU = i
	c := thisCPU()
	c.index = int32(i)
	if threads[c.idle].affinity != int32(i)+1 || c.idle != int32(i) {
		c.initEntryState()
		c.setupIdleThread(int32(i))
		c.current = c.idle
		threads[c.idle].state = tsRunning
	}
	return c
}

// TestPinnedThreadRunsOnlyOnItsCPU: two CPUs share the run queue; a thread
// bound to CPU 1 is never taken by CPU 0 (which runs the unbound one
// queued behind it), waking it sends CPU 1 a reschedule IPI, and PinThread
// of a running thread moves it off a CPU it may not run on.
func TestPinnedThreadRunsOnlyOnItsCPU(t *testing.T) {
	setupKernel(t)
	t.Cleanup(func() { hostCPU, cpuSlots = 0, 1 })
	c1 := asCPU(t, 1, 2)
	c0 := asCPU(t, 0, 2)
	main := c0.current
	pinned, free := newThread(), newThread()
	threads[pinned].affinity = 2 // CPU 1
	makeRunnable(pinned)
	if hostIPIs[vecResched] != 1 || !c1.kicked {
		t.Fatalf("waking a thread bound to CPU 1 sent %d reschedule IPIs, kicked %v", hostIPIs[vecResched], c1.kicked)
	}
	makeRunnable(free)
	if c0.queued() != true || runqAny != 1 || c1.pinnedQueued != 1 || c0.pinnedQueued != 0 {
		t.Fatalf("queue counts: any %d, pinned to 0: %d, to 1: %d", runqAny, c0.pinnedQueued, c1.pinnedQueued)
	}
	// CPU 0's thread blocks: CPU 0 takes the unbound thread, not the first.
	threads[main].state = tsBlocked
	c0.needResched = true
	schedule()
	if c0.current != free {
		t.Fatalf("CPU 0 runs %d, want the unbound %d", c0.current, free)
	}
	// CPU 1 takes its bound thread at its next trap.
	asCPU(t, 1, 2)
	schedule()
	if c1.current != pinned || c1.kicked {
		t.Fatalf("CPU 1 runs %d (kicked %v), want its bound %d", c1.current, c1.kicked, pinned)
	}
	if runqLen != 0 || runqAny != 0 || c1.pinnedQueued != 0 {
		t.Fatalf("queue not empty: len %d any %d pinned %d", runqLen, runqAny, c1.pinnedQueued)
	}
	// The bound thread asks for CPU 0 (PinThread): CPU 1 puts it back in
	// the queue and idles, and CPU 0 is told.
	ipis := hostIPIs[vecResched]
	if r := sysPinImpl(1); r != 0 {
		t.Fatalf("pin to CPU 0 = %d", int64(r))
	}
	schedule()
	if c1.current != c1.idle || c0.pinnedQueued != 1 || hostIPIs[vecResched] != ipis+1 {
		t.Fatalf("after PinThread(0): CPU 1 runs %d, CPU 0 has %d bound queued, %d IPIs more",
			c1.current, c0.pinnedQueued, hostIPIs[vecResched]-ipis)
	}
	if r := sysPinImpl(3); r != errno(EINVAL) {
		t.Errorf("pin to a CPU that is not online = %d, want EINVAL", int64(r))
	}
}
