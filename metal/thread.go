package metal

import (
	"unsafe"

	"gohv/x86"
)

// Threads: one per Go runtime M (created by clone), plus the idle thread.
// The kernel runs one CPU with interrupts off; a thread's registers live in
// the entry frame while it is current and in its slot otherwise. All state is
// pointer-free so kernel code never triggers a write barrier.

const maxThreads = 128

type threadState uint8

const (
	tsFree threadState = iota
	tsRunnable
	tsRunning
	tsBlocked
)

type blockReason uint8

const (
	blockNone blockReason = iota
	blockFutex
	blockSleep
	blockEpoll
)

type thread struct {
	state    threadState
	reason   blockReason
	tid      int32
	deadline int64  // monotonic ns when a timed block ends; 0 = none
	futex    uint64 // address waited on (blockFutex)
	waitSeq  uint64 // FIFO order among futex waiters
	epollBuf uint64 // epoll_pwait event buffer (blockEpoll)
	epollMax int64
	altSP    uint64 // sigaltstack
	altSize  uint64
	altOn    bool // executing a signal handler on the alternate stack
	fsBase   uint64
	frame    TrapFrame
	fx       [fxAreaSize]byte
}

const idleThread = 0

var (
	threads     [maxThreads]thread
	current     int32
	nextTID     int32 = 1
	waitSeq     uint64
	runq        [maxThreads]int32
	runqHead    int
	runqLen     int
	needResched bool
	threadCount int

	idleStack [8 << 10]byte
	// initialFX is a clean FPU/SSE image (FCW 0x37f, MXCSR 0x1f80) for new
	// contexts.
	initialFXBuf [fxAreaSize + 16]byte
)

func initialFX() *[fxAreaSize]byte {
	return (*[fxAreaSize]byte)(unsafe.Pointer((uintptr(unsafe.Pointer(&initialFXBuf[0])) + 15) &^ 15))
}

func runqPush(i int32) {
	runq[(runqHead+runqLen)%maxThreads] = i
	runqLen++
}

func runqPop() int32 {
	if runqLen == 0 {
		return -1
	}
	i := runq[runqHead]
	runqHead = (runqHead + 1) % maxThreads
	runqLen--
	return i
}

// newThread takes a free slot and gives it a TID. Returns -1 if the table is
// full.
func newThread() int32 {
	for i := int32(1); i < maxThreads; i++ {
		t := &threads[i]
		if t.state == tsFree {
			*t = thread{state: tsBlocked} // not yet runnable, but taken
			t.tid = nextTID
			nextTID++
			threadCount++
			return i
		}
	}
	return -1
}

// makeRunnable queues thread i. Runs with interrupts off.
func makeRunnable(i int32) {
	t := &threads[i]
	t.state = tsRunnable
	t.reason = blockNone
	t.deadline = 0
	if i != idleThread {
		runqPush(i)
	}
}

// block parks the current thread; the scheduler picks another at trap exit.
func block(reason blockReason, deadline int64) {
	t := &threads[current]
	t.state = tsBlocked
	t.reason = reason
	t.deadline = deadline
	needResched = true
}

// wake makes a blocked thread runnable with syscall result r in RAX.
func wake(i int32, r uint64) {
	t := &threads[i]
	t.frame.RAX = r
	makeRunnable(i)
}

// exitCurrent frees the current thread's slot.
func exitCurrent() {
	threads[current].state = tsFree
	threadCount--
	needResched = true
}

// schedule runs at the end of every trap: it switches away from the current
// thread if it blocked, exited, used up its slice, or is the idle thread and
// work arrived. Runs with interrupts off; must not allocate.
func schedule() {
	cur := &threads[current]
	if cur.state == tsRunning && !needResched && !(current == idleThread && runqLen > 0) {
		return
	}
	needResched = false
	next := runqPop()
	if next < 0 {
		if cur.state == tsRunning {
			return // nothing else to run
		}
		next = idleThread
	}
	if next == current {
		cur.state = tsRunning
		return
	}
	// Save the outgoing thread if it still exists.
	if cur.state != tsFree {
		cur.frame = *entryFrame()
		cur.fx = *entryFX()
		cur.fsBase = entryFSBase
		if cur.state == tsRunning {
			if current == idleThread {
				cur.state = tsRunnable
			} else {
				makeRunnable(current)
			}
		}
	}
	n := &threads[next]
	*entryFrame() = n.frame
	*entryFX() = n.fx
	entryFSBase = n.fsBase
	n.state = tsRunning
	current = next
	contextSwitches++
}

var contextSwitches uint64

// preempt is called from the timer: the current thread goes to the back of
// the run queue if anyone is waiting.
func preempt() {
	if runqLen > 0 && current != idleThread {
		needResched = true
	}
}

// wakeExpired ends timed blocks whose deadline has passed.
func wakeExpired(now int64) {
	for i := int32(1); i < maxThreads; i++ {
		t := &threads[i]
		if t.state != tsBlocked || t.deadline == 0 || t.deadline > now {
			continue
		}
		switch t.reason {
		case blockFutex:
			wake(i, errno(ETIMEDOUT))
		case blockSleep:
			wake(i, 0)
		case blockEpoll:
			wake(i, 0)
		}
	}
}

// setupIdleThread prepares slot 0: ring 0, interrupts on, halting forever.
func setupIdleThread() {
	t := &threads[idleThread]
	t.state = tsRunnable
	t.tid = 0
	t.frame = TrapFrame{
		RIP:    uint64(idleLoopAddr()),
		CS:     selKernelCode,
		RFLAGS: x86.RFLAGSIF | x86.RFLAGSFixed,
		RSP:    (uint64(uintptr(unsafe.Pointer(&idleStack[0]))) + uint64(len(idleStack))) &^ 15,
		SS:     selKernelData,
	}
	t.fx = *initialFX()
}
