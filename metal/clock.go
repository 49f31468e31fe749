package metal

import (
	"math/bits"

	"github.com/usbarmory/tamago/amd64/lapic"

	"gohv/x86"
)

// Time: the TSC, calibrated against the PIT, is the monotonic clock; the
// local APIC timer, calibrated in the same window, drives preemption and
// timeouts at tickHz.

const (
	pitHz          = 1193182
	calibrateMS    = 20
	tickHz         = 1000
	sliceTicks     = 10 // 10 ms time slice
	lapicTimerInit = 0x380
	lapicTimerCur  = 0x390
	lapicTimerDiv  = 0x3e0
)

var (
	tscHz      uint64
	tscBase    uint64
	tscMult    uint64 // ns = (tsc-tscBase) * tscMult >> 32
	lapicHz    uint64
	wallOffset int64 // realtime = monotonic + wallOffset
	ticks      uint64

	localAPIC lapic.LAPIC
)

func lapicReg(off uint32) *uint32 {
	return (*uint32)(x86.Ptr(uintptr(localAPIC.Base + off)))
}

func lapicEOI() { localAPIC.ClearInterrupt() }

// nanotime is monotonic nanoseconds since calibration. Must not allocate.
func nanotime() int64 {
	hi, lo := bits.Mul64(x86.RDTSC()-tscBase, tscMult)
	return int64(hi<<32 | lo>>32)
}

// TSCToNanos converts a TSC delta to nanoseconds.
func TSCToNanos(d uint64) int64 {
	hi, lo := bits.Mul64(d, tscMult)
	return int64(hi<<32 | lo>>32)
}

// calibrate measures the TSC and the local APIC timer against PIT channel 2
// over calibrateMS milliseconds (the method of Intel SDM Vol. 3B 18.7.3's
// examples; the PIT is the one reference every PC and emulator has).
func calibrate() {
	*lapicReg(lapicTimerDiv) = 0xb // divide by 1
	localAPIC.SetTimer(vecTimer, lapic.TIMER_MODE_ONE_SHOT)
	*lapicReg(0x320) |= 1 << 16 // masked while counting

	latch := uint16(pitHz * calibrateMS / 1000)
	x86.OUTB(0x61, (x86.INB(0x61)&^0x02)|0x01) // gate channel 2 on, speaker off
	x86.OUTB(0x43, 0xb0)                       // channel 2, lobyte/hibyte, mode 0
	x86.OUTB(0x42, uint8(latch))
	x86.OUTB(0x42, uint8(latch>>8))
	*lapicReg(lapicTimerInit) = 0xffffffff
	t0 := x86.RDTSC()
	for x86.INB(0x61)&0x20 == 0 {
	}
	t1 := x86.RDTSC()
	left := *lapicReg(lapicTimerCur)
	tscHz = (t1 - t0) * 1000 / calibrateMS
	lapicHz = uint64(0xffffffff-left) * 1000 / calibrateMS
	if tscHz == 0 {
		tscHz = 1e9
	}
	tscBase = x86.RDTSC()
	tscMult = (uint64(1e9) << 32) / tscHz
}

// startTimer runs the local APIC timer periodically at tickHz.
func startTimer() {
	localAPIC.SetTimer(vecTimer, lapic.TIMER_MODE_PERIODIC)
	n := lapicHz / tickHz
	if n == 0 {
		n = 1
	}
	*lapicReg(lapicTimerInit) = uint32(n)
}

// timerInterrupt: wake expired sleepers, rotate the run queue every slice.
func timerInterrupt() {
	ticks++
	wakeExpired(nanotime())
	if ticks%sliceTicks == 0 {
		preempt()
	}
}
