package hv

import (
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"
)

// waiter is where a halted VP's thread sleeps: a futex word the LAPIC's
// kick sets, waited on with a nanosecond timeout so a guest timer wakes
// the VP on time (the Go runtime's own timers wait in whole milliseconds).
type waiter struct{ word atomic.Uint32 }

const (
	futexWaitPrivate = 0 | 128
	futexWakePrivate = 1 | 128
)

// wake makes the next or current wait return. Any goroutine; never
// blocks.
func (w *waiter) wake() {
	if w.word.Swap(1) == 0 {
		syscall.Syscall6(syscall.SYS_FUTEX, uintptr(unsafe.Pointer(&w.word)), futexWakePrivate, 1, 0, 0, 0)
	}
}

// wait sleeps until wake, or for at most d when d > 0. It returns
// whether it was woken (rather than timed out). VP thread.
func (w *waiter) wait(d time.Duration) bool {
	for w.word.Load() == 0 {
		var ts *syscall.Timespec
		if d > 0 {
			t := syscall.NsecToTimespec(int64(d))
			ts = &t
		}
		_, _, e := syscall.Syscall6(syscall.SYS_FUTEX, uintptr(unsafe.Pointer(&w.word)), futexWaitPrivate, 0,
			uintptr(unsafe.Pointer(ts)), 0, 0)
		if e == syscall.ETIMEDOUT {
			return w.word.Swap(0) == 1
		}
	}
	w.word.Store(0)
	return true
}
