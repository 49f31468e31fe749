package metal

import (
	"math/bits"

	"github.com/usbarmory/tamago/amd64/lapic"

	"gohv/x86"
)

// Time: the TSC, calibrated against the PIT, is the monotonic clock. The
// local APIC timer, calibrated in the same window, is armed one-shot for
// what is due next (timer.go).

const calibrateMS = 20

// The 8254 programmable interval timer's channel 2, gated and read through
// the PC's port 0x61 (Intel 8254 datasheet; the PC/AT wiring).
const (
	pitHz       = 1193182 // input clock
	pitChannel2 = 0x42    // channel 2 counter
	pitCommand  = 0x43    // mode/command register

	// Command: channel 2 (SC=10), low byte then high byte (RW=11), mode 0
	// (interrupt on terminal count), binary.
	pitCmdChannel2Mode0 = 0b10<<6 | 0b11<<4 | 0<<1

	pcPortB         = 0x61   // system control port B
	portBGate2      = 1 << 0 // channel 2 gate
	portBSpeaker    = 1 << 1 // speaker data enable
	portBOut2Status = 1 << 5 // channel 2 output, read-only
)

var (
	tscHz      uint64
	tscBase    uint64
	tscMult    uint64 // ns = (tsc-tscBase) * tscMult >> 32
	lapicHz    uint64
	wallOffset int64 // realtime = monotonic + wallOffset
)

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
	*lapicReg(x86.LAPICTimerDivideConfig) = x86.LAPICTimerDivideBy1
	localAPIC.SetTimer(vecTimer, lapic.TIMER_MODE_ONE_SHOT)
	*lapicReg(lapic.LAPIC_LVT_TIMER) |= 1 << x86.LAPICLVTMask // masked while counting

	latch := uint16(pitHz * calibrateMS / 1000)
	x86.OUTB(pcPortB, x86.INB(pcPortB)&^portBSpeaker|portBGate2)
	x86.OUTB(pitCommand, pitCmdChannel2Mode0)
	x86.OUTB(pitChannel2, uint8(latch))
	x86.OUTB(pitChannel2, uint8(latch>>8))
	const countFrom = x86.LAPICTimerMaxCount
	*lapicReg(x86.LAPICTimerInitialCount) = countFrom
	t0 := x86.RDTSC()
	for x86.INB(pcPortB)&portBOut2Status == 0 {
	}
	t1 := x86.RDTSC()
	left := *lapicReg(x86.LAPICTimerCurrentCount)
	*lapicReg(x86.LAPICTimerInitialCount) = 0 // stop the count
	tscHz = (t1 - t0) * 1000 / calibrateMS
	lapicHz = uint64(countFrom-left) * 1000 / calibrateMS
	if tscHz == 0 {
		tscHz = 1e9
	}
	tscBase = x86.RDTSC()
	tscMult = (uint64(1e9) << 32) / tscHz
}
