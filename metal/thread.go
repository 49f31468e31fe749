package metal

import "gohv/x86"

// Threads: one per Go runtime M (created by clone), plus an idle thread per
// CPU in the first maxCPUs slots (CPU n's is slot n), which the loops over
// the table skip: an idle thread never blocks or exits. The kernel runs with interrupts off; a thread's registers live in its
// CPU's entry frame while it runs and in its slot otherwise. All state is
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
	altOn    bool  // executing a signal handler on the alternate stack
	woken    bool  // queued after a wake (or new), not after a preemption
	queuedAt int64 // when it last entered the run queue (starve.go)
	// starveReported: the watchdog has reported this wait (starve.go).
	starveReported bool
	alarm          int64 // SetAlarm: interrupt this thread at this monotonic time while it runs; 0 = none
	affinity       int32 // 1 + the index of the CPU it must run on (PinThread); 0: any CPU
	timerCPU       int32 // the CPU whose timer ends its timed block: the one it blocked on
	fsBase         uint64
	frame          TrapFrame
	fx             [fxAreaSize]byte
}

// bootIdleThread is the boot CPU's idle thread; firstThread is the first
// slot that is not an idle thread's.
const (
	bootIdleThread       = 0
	firstThread    int32 = maxCPUs
)

// The thread table and what the CPUs share about threads. What each CPU is
// running, and its run queue, are in its cpu.
var (
	threads     [maxThreads]thread
	nextTID     int32 = 1
	waitSeq     uint64
	threadCount int
	threadsHigh int32 // every slot in use is below it: the loops over threads stop here

	// initialFXBuf holds a clean FPU/SSE image (FCW 0x37f, MXCSR 0x1f80)
	// for new contexts, 16-byte aligned inside it (initialFX).
	initialFXBuf [fxAreaSize + 16]byte
)

// newThread takes a free slot and gives it a TID. Returns -1 if the table is
// full. Runs with interrupts off; must not allocate.
func newThread() int32 {
	for i := firstThread; i < maxThreads; i++ {
		t := &threads[i]
		if t.state == tsFree {
			*t = thread{state: tsBlocked} // not yet runnable, but taken
			t.tid = nextTID
			nextTID++
			threadCount++
			threadsHigh = max(threadsHigh, i+1)
			return i
		}
	}
	return -1
}

// exitCurrent frees the current thread's slot; the scheduler switches away
// at the end of the trap. Runs with interrupts off.
func exitCurrent() {
	currentThread().state = tsFree
	threadCount--
	thisCPU().needResched = true
}

// setupIdleThread makes slot idle c's idle thread, bound to c: ring 0, interrupts on,
// halting forever on c's idle stack.
func (c *cpu) setupIdleThread(idle int32) {
	c.idle = idle
	t := &threads[idle]
	t.state = tsRunnable
	t.tid = 0
	t.affinity = c.index + 1
	t.frame = TrapFrame{
		RIP:    uint64(idleLoopAddr()),
		CS:     selKernelCode,
		RFLAGS: x86.RFLAGSIF | x86.RFLAGSFixed,
		RSP:    stackTop(c.idleStack[:]),
		SS:     selKernelData,
	}
	t.fx = *initialFX()
}
