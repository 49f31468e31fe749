package metal

import (
	"errors"
	"fmt"
	"sync/atomic"
	"syscall"
	"time"
)

// Device interrupts: the few vectors the root gives to devices whose
// interrupts it takes — an assigned device's MSI, which the IOMMU's
// interrupt remapping delivers on the boot CPU at one of these vectors.
// Metal knows nothing of the device: its handler counts the interrupt in
// the vector's word and wakes the threads waiting on that word, and a Go
// thread of the root (WaitDeviceInterrupt) does the rest — for an
// assigned device, injecting the guest's vector into its partition.
//
// Invariants:
//
//   - deviceInterrupt runs in trap with interrupts off under the kernel
//     lock: it does one atomic add and a futex wake over the thread table,
//     allocates nothing and calls no Go code of the root; trap EOIs after
//     it. Nothing here reaches the device.
//   - A vector of the range is delivered to its waiters only while it is
//     allocated (AllocDeviceVector to FreeDeviceVector); one that arrives
//     unallocated is counted in StrayInterrupts, EOI'd, and goes nowhere.
//   - The count only grows (modulo 2^32). The word is the futex: a waiter
//     passes the count it saw, and FUTEX_WAIT returns at once if the word
//     has moved since, so an interrupt between the read and the wait is
//     never missed.
//
// The range is vectors 0x23-0x2f: above metal's own (the timer 0x20, the
// reschedule and shootdown IPIs 0x21 and 0x22), below the masked 8259's
// (0x30-0x3f), inside the entry stubs trap_amd64.s has (0-63).
const (
	vecDeviceFirst = 0x23
	vecDeviceLast  = 0x2f
	deviceVectors  = vecDeviceLast - vecDeviceFirst + 1
)

type deviceVector struct {
	count atomic.Uint32 // interrupts taken while allocated; the futex word
	taken atomic.Bool
}

var (
	deviceVecs   [deviceVectors]deviceVector
	strayDevices atomic.Uint64 // device-range interrupts on a vector nobody holds
)

// ErrNoDeviceVector: every device vector is allocated.
var ErrNoDeviceVector = errors.New("metal: no free device interrupt vector")

// deviceInterrupt is the handler of vector v in the device range: count
// it and wake its waiters. Interrupts off, kernel lock held; must not
// allocate.
func deviceInterrupt(v uint64) {
	d := &deviceVecs[v-vecDeviceFirst]
	if !d.taken.Load() {
		strayDevices.Add(1)
		return
	}
	d.count.Add(1)
	futexWakeAll(d.addr())
}

// futexWakeAll wakes every thread blocked in FUTEX_WAIT on addr (the
// futex(2) wake of sys_futex.go, for all waiters). Interrupts off, kernel
// lock held; must not allocate.
func futexWakeAll(addr uint64) {
	for i := firstThread; i < threadsHigh; i++ {
		t := &threads[i]
		if t.state == tsBlocked && t.reason == blockFutex && t.futex == addr {
			wake(i, 0)
		}
	}
}

// AllocDeviceVector reserves a free device vector for the caller, who
// points a device's (remapped) interrupt at it on the CPU BootAPICID
// names.
func AllocDeviceVector() (uint8, error) {
	for i := range deviceVecs {
		if deviceVecs[i].taken.CompareAndSwap(false, true) {
			return uint8(vecDeviceFirst + i), nil
		}
	}
	return 0, ErrNoDeviceVector
}

// FreeDeviceVector gives v back; its interrupts are stray from then on.
// The device must no longer send it.
func FreeDeviceVector(v uint8) {
	if d, ok := deviceVec(v); ok {
		d.taken.Store(false)
	}
}

func deviceVec(v uint8) (*deviceVector, bool) {
	if v < vecDeviceFirst || v > vecDeviceLast {
		return nil, false
	}
	return &deviceVecs[v-vecDeviceFirst], true
}

// DeviceInterrupts is how many interrupts vector v has taken while
// allocated (modulo 2^32).
func DeviceInterrupts(v uint8) uint32 {
	if d, ok := deviceVec(v); ok {
		return d.count.Load()
	}
	return 0
}

// WaitDeviceInterrupt blocks the calling thread until vector v's count
// is no longer seen (an interrupt came since the caller read seen), or
// timeout passes, and returns the count. A vector outside the range
// returns seen at once with an error.
func WaitDeviceInterrupt(v uint8, seen uint32, timeout time.Duration) (uint32, error) {
	d, ok := deviceVec(v)
	if !ok {
		return seen, fmt.Errorf("metal: vector %#x is not a device vector (%#x-%#x)", v, vecDeviceFirst, vecDeviceLast)
	}
	if n := d.count.Load(); n != seen {
		return n, nil
	}
	ts := syscall.NsecToTimespec(max(timeout.Nanoseconds(), 1))
	futexWaitTimeout(d, seen, &ts)
	return d.count.Load(), nil
}

// BootAPICID is the boot CPU's local APIC ID: where device interrupts
// are sent.
func BootAPICID() uint32 { return cpus[0].apicID }

// StrayInterrupts is how many interrupts arrived on a device vector that
// nobody held — what a device that escaped its interrupt remapping
// would cause when its message names one.
func StrayInterrupts() uint64 { return strayDevices.Load() }
