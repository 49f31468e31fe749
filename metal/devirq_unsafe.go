package metal

import (
	"syscall"
	"unsafe"
)

// addr is the vector's futex word's address, as futex(2) takes it.
func (d *deviceVector) addr() uint64 { return uint64(uintptr(unsafe.Pointer(&d.count))) }

// futexWaitTimeout is FUTEX_WAIT (private) on d's word while it holds
// seen, for at most ts: metal's own futex, through the system call as the
// Go runtime makes it. The word lives in the kernel image, which
// userAccess admits.
func futexWaitTimeout(d *deviceVector, seen uint32, ts *syscall.Timespec) {
	syscall.Syscall6(syscall.SYS_FUTEX, uintptr(d.addr()), futexWait|futexPrivate, uintptr(seen), uintptr(unsafe.Pointer(ts)), 0, 0)
}
