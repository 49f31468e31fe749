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

// exitCurrent frees the current thread's slot.
func exitCurrent() {
	threads[current].state = tsFree
	threadCount--
	needResched = true
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
