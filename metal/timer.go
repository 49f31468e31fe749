package metal

import (
	"math/bits"

	"github.com/usbarmory/tamago/amd64/lapic"

	"gohv/x86"
)

// The timer: one-shot, armed for the earliest thing actually due on its CPU,
// never ticking when nothing is.
//
// Three things fall due. A thread blocked with a timeout (a futex wait,
// nanosleep, epoll_pwait: how the Go runtime's timers and time.Sleep reach
// metal) has a deadline; cpu.wakeAt is the earliest. The running thread
// may have asked for an alarm (SetAlarm). And while another thread waits
// for the CPU, the running thread's time slice ends (cpu.sliceEnd). At the
// end of every trap armTimer programs the hardware for the earliest of them
// — the slice only while another thread is runnable — if that is not what
// it is already armed for; when none is due the timer is disarmed and an
// idle CPU halts until an interrupt. The interrupt wakes exactly the
// threads whose deadline passed, and the trap's end arms the next. The
// hardware is armed a little ahead of the deadline, by the interrupt's
// measured latency (the advance, below).
//
// The hardware is the local APIC timer, in TSC-deadline mode when the CPU
// has it (CPUID.1:ECX[24]: IA32_TSC_DEADLINE holds the TSC value to fire
// at, exact and without a range limit), else in one-shot mode (a 32-bit
// count of the calibrated LAPIC clock from now: a longer wait is armed in
// pieces, each interrupt that finds nothing due arming the rest).
//
// Everything here runs with interrupts off and must not allocate.

// How long a thread keeps the CPU while another waits for it, from when
// it was switched in. sliceNS, 10 ms as under the periodic timer this
// replaces, when the waiting threads were preempted themselves: CPU-bound
// threads take turns at that pace. wakeSliceNS, 1 ms, when a woken (or
// new) thread waits: it is what a thread that slept — the Go runtime's
// sysmon, a garbage-collector worker, a goroutine's M woken by a futex —
// waits at most for a busy CPU, say one running a spinning guest, instead
// of 10 ms; and it still gives the running thread at least 1 ms per turn.
// (A stop-the-world pause with a guest spinning on a VP thread was 10 ms
// with the one slice length.)
const (
	sliceNS     = 10_000_000
	wakeSliceNS = 1_000_000
)

// timerKind is how the local APIC timer is programmed.
type timerKind uint8

const (
	timerOneShot     timerKind = iota // LVT one-shot mode, a count of lapicHz
	timerTSCDeadline                  // LVT TSC-deadline mode, IA32_TSC_DEADLINE
)

var (
	// timerMode is chosen by startTimer at boot and fixed after.
	timerMode timerKind
	// forceOneShot is the kernel command-line word timer=oneshot: use
	// the one-shot mode even where the CPU has TSC-deadline.
	forceOneShot bool
)

// The advance: an interrupt reaches timerInterrupt some time after the
// timer fires — the interrupt's delivery, leaving a halted state or a
// guest, and under an emulator the host's own timer slack (QEMU's timers
// come tens of microseconds late). Like KVM's adaptive lapic_timer_advance,
// metal measures that latency on every interrupt that comes after the
// time it was armed for, keeps a running estimate (cpu.timerAdvance, an
// average with weight 1/8), arms the timer that much before the deadline
// and, when the interrupt comes before the deadline, spins the rest with
// interrupts off. On hardware the estimate is a microsecond or two; no
// sample and no spin is ever counted beyond maxTimerAdvanceNS.
const maxTimerAdvanceNS = 100_000

// nextAdvance folds one interrupt's latency late into the estimate adv.
// Pure.
func nextAdvance(adv, late int64) int64 {
	late = min(max(late, 0), maxTimerAdvanceNS)
	return adv + (late-adv)/8
}

// maxTSCArmNS bounds how far ahead a TSC deadline is computed (2^52 ns,
// about 52 days), which keeps the conversion in range; a later deadline is
// armed in pieces like a long one-shot count.
const maxTSCArmNS = 1 << 52

// nextExpiry is when the timer must next fire: the earliest of the timed
// blocks' deadline wakeAt, the running thread's alarm (SetAlarm), and its
// slice end when another thread is runnable (contended); 0 when nothing is
// due. A slice end of 0 or less counts as already over. Pure.
func nextExpiry(wakeAt, alarm, sliceEnd int64, contended bool) int64 {
	next := earlier(wakeAt, alarm)
	if contended {
		next = earlier(next, max(sliceEnd, 1))
	}
	return next
}

// earlier is the earlier of two times where 0 means none. Pure.
func earlier(a, b int64) int64 {
	if a == 0 || (b != 0 && b < a) {
		return b
	}
	return a
}

// lapicCount is the one-shot count that fires delta nanoseconds from now
// on a LAPIC timer counting hz: rounded up, so the interrupt does not come
// before the deadline; at least 1, since a count of 0 stops the timer; at
// most LAPICTimerMaxCount, in which case the interrupt comes early and the
// rest is armed then. Pure.
func lapicCount(delta int64, hz uint64) uint32 {
	if delta <= 0 {
		return 1
	}
	hi, lo := bits.Mul64(uint64(delta), hz)
	if hi >= 1e9 {
		return x86.LAPICTimerMaxCount // the quotient would not fit 64 bits
	}
	q, r := bits.Div64(hi, lo, 1e9)
	if r != 0 {
		q++
	}
	return uint32(min(max(q, 1), x86.LAPICTimerMaxCount))
}

// tscDeadline is the IA32_TSC_DEADLINE value for monotonic time at: the
// first TSC value at which nanotime (ns = (tsc-base)*mult>>32) reads at
// least at, so the interrupt finds the deadline passed. Beyond maxTSCArmNS
// it is the value for that bound. Never TSCDeadlineDisarm. Pure.
func tscDeadline(at int64, base, mult uint64) uint64 {
	at = min(max(at, 0), maxTSCArmNS)
	if mult == 0 {
		return base + 1
	}
	// ceil(at<<32 / mult). The high word of the dividend, below 2^20,
	// is below mult for any TSC slower than 4000 GHz; were it not, the
	// division would not fit: fire as late as can be said instead.
	hi := uint64(at) >> 32
	if hi >= mult {
		return base + 1<<62
	}
	q, r := bits.Div64(hi, uint64(at)<<32, mult)
	if r != 0 {
		q++
	}
	if v := base + q; v != x86.TSCDeadlineDisarm {
		return v
	}
	return 1
}

// contended reports whether another thread that may run here waits while
// a thread other than the idle thread runs: only then does a slice end.
func (c *cpu) contended() bool { return c.queued() && c.current != c.idle }

// noteDeadline records that a thread blocked until deadline (0: no timeout).
func (c *cpu) noteDeadline(deadline int64) {
	if deadline != 0 && (c.wakeAt == 0 || deadline < c.wakeAt) {
		c.wakeAt = deadline
		c.timerDirty = true
	}
}

// forgetDeadline records that a thread blocked until deadline woke before
// it: if it held the earliest deadline, the next one must be looked up
// (armTimer does, once per trap).
func (c *cpu) forgetDeadline(deadline int64) {
	if deadline != 0 && deadline == c.wakeAt {
		c.wakeStale = true
		c.timerDirty = true
	}
}

// earliestDeadline scans the threads for the earliest timed block that
// CPU c ends.
func earliestDeadline(c *cpu) int64 {
	var next int64
	for i := firstThread; i < threadsHigh; i++ {
		t := &threads[i]
		if t.state == tsBlocked && t.deadline != 0 && t.timerCPU == c.index && (next == 0 || t.deadline < next) {
			next = t.deadline
		}
	}
	return next
}

// armTimer programs this CPU's timer for nextExpiry unless it is armed for
// exactly that already; disarms it when nothing is due. Runs at the end of
// every trap, after schedule; interrupts off; must not allocate.
//
// Whatever changes what nextExpiry reads — a timed block, an early wake of
// the earliest, the run queue, a switch, the interrupt itself — sets
// timerDirty, so the trap path, a system call that changes none of it,
// pays one test (TestTimerIsArmedForWhatIsDue checks that nothing is
// missed).
func (c *cpu) armTimer() {
	if c.timerDirty {
		c.rearmTimer()
	}
}

func (c *cpu) rearmTimer() {
	c.timerDirty = false
	if c.wakeStale {
		c.wakeAt = earliestDeadline(c)
		c.wakeStale = false
	}
	next := nextExpiry(c.wakeAt, threads[c.current].alarm, c.sliceEnd(), c.contended())
	if next == c.timerArmed {
		return
	}
	c.timerArmed = next
	c.timerFire = 0
	if next != 0 {
		c.timerFire = max(next-c.timerAdvance, 1)
	}
	c.timerPrograms++
	c.timerTSC = programTimer(c.timerFire).value
}

// timerWrite is a value programTimer writes: to IA32_TSC_DEADLINE in
// TSC-deadline mode, else to the Initial Count Register. 0 disarms either.
type timerWrite struct {
	tscDeadline bool
	value       uint64
}

// hostTimer is the last timerWrite in the host tests (hostTest), which
// have no local APIC; hostCountEnd is when a one-shot count written then
// runs down (0: none runs).
var (
	hostTimer    timerWrite
	hostCountEnd int64
)

// timerValue is what arms the timer for monotonic time at (0: disarm),
// now being the monotonic time. Pure.
func timerValue(mode timerKind, at, now int64) timerWrite {
	w := timerWrite{tscDeadline: mode == timerTSCDeadline}
	switch {
	case at == 0:
		w.value = x86.TSCDeadlineDisarm // and a count of 0 stops a one-shot count
	case w.tscDeadline:
		w.value = tscDeadline(at, tscBase, tscMult)
	default:
		w.value = uint64(lapicCount(at-now, lapicHz))
	}
	return w
}

// programTimer arms the local APIC timer to fire at monotonic time at, or
// disarms it (at = 0), and returns what it wrote.
func programTimer(at int64) timerWrite {
	var now int64
	if timerMode == timerOneShot && at != 0 {
		now = nanotime()
	}
	w := timerValue(timerMode, at, now)
	switch {
	case hostTest:
		hostTimer, hostCountEnd = w, 0
		if !w.tscDeadline && w.value != 0 && lapicHz != 0 {
			hostCountEnd = now + int64(w.value*1e9/lapicHz)
		}
	case w.tscDeadline:
		x86.WRMSR(x86.MsrTSCDeadline, w.value)
	default:
		*lapicReg(x86.LAPICTimerInitialCount) = uint32(w.value)
	}
	return w
}

// startTimer chooses the mode metal programs the local APIC timer in and
// starts the boot CPU's, disarmed; the first trap's end arms it. Runs at
// boot, interrupts off.
func startTimer() {
	timerMode = timerOneShot
	if hasTSCDeadline && !forceOneShot {
		timerMode = timerTSCDeadline
	} else if lapicHz == 0 {
		fatal("clock: the local APIC timer did not count during calibration, and the CPU has no TSC-deadline mode")
	}
	startLocalTimer()
}

// startLocalTimer puts this CPU's local APIC timer in timerMode, disarmed.
// Runs with interrupts off, on each CPU as it starts.
func startLocalTimer() {
	if timerMode == timerTSCDeadline {
		localAPIC.SetTimer(vecTimer, lapic.TIMER_MODE_TSC_DEADLINE)
		// In xAPIC mode the LVT write must reach the APIC before any
		// WRMSR to IA32_TSC_DEADLINE (SDM Vol. 3A 11.5.4.1 asks for an
		// MFENCE); CPUID is serializing, which is stronger.
		x86.CPUID(x86.CPUIDVendor, 0)
		x86.WRMSR(x86.MsrTSCDeadline, x86.TSCDeadlineDisarm)
	} else {
		*lapicReg(x86.LAPICTimerDivideConfig) = x86.LAPICTimerDivideBy1 // as calibrate counted it
		*lapicReg(x86.LAPICTimerInitialCount) = 0
		localAPIC.SetTimer(vecTimer, lapic.TIMER_MODE_ONE_SHOT)
	}
	c := thisCPU()
	c.timerArmed, c.timerDirty = 0, true
}

// timerInterrupt: the one-shot timer fired. It wakes the threads whose
// deadline passed; schedule then ends the running thread's slice if it is
// over and another thread waits, and armTimer arms what is due next. Runs
// in the trap handler with interrupts off; must not allocate.
func timerInterrupt() {
	c := thisCPU()
	c.timerInterrupts++
	if c.timerStale {
		// An older deadline's interrupt (timerWaitOut): the one armed is
		// still ahead and its own interrupt will come. Nothing is due —
		// whatever was due at the older deadline would have kept the
		// timer armed that early. In TSC-deadline mode the deadline is
		// written again: on a timer that fired it a little before its
		// TSC value, it was this interrupt after all, and would be lost.
		c.timerStale = false
		c.timerEarly++
		if timerMode == timerTSCDeadline {
			c.timerTSC = programTimer(c.timerFire).value
		}
		return
	}
	target, fire := c.timerArmed, c.timerFire
	c.timerArmed, c.timerFire, c.timerDirty = 0, 0, true // one-shot: the hardware is disarmed now
	now := nanotime()
	arrival := now
	if c.timerArrival != 0 { // timerWaitOut saw it come
		arrival, c.timerArrival = c.timerArrival, 0
	}
	if target != 0 && arrival >= fire {
		c.timerAdvance = nextAdvance(c.timerAdvance, arrival-fire)
	}
	if target != 0 && now < target && target-now <= maxTimerAdvanceNS {
		// Armed early by the advance (or a LAPIC count a little fast):
		// wait out the last stretch here rather than take another
		// interrupt with the same latency.
		t0 := now
		for now < target {
			now = nanotime()
		}
		c.timerSpinNS += uint64(now - t0)
	}
	alarmed := false
	if cur := &threads[c.current]; cur.alarm != 0 && cur.alarm <= now {
		// This interrupt is the alarm. It stays due until its thread
		// replaces or cancels it: a thread that enters its guest after
		// the alarm fired (between SetAlarm and the entry) still exits.
		// The next one is armed AlarmRepeat from now at the earliest,
		// advance included: with the advance as long as AlarmRepeat (an
		// emulator's latency, seen with several CPUs under -icount) the
		// repeat would fire at once and its thread never run.
		cur.alarm, alarmed = now+AlarmRepeat.Nanoseconds()+c.timerAdvance, true
	}
	checkStarvation(now)
	if wakeExpired(now) == 0 && !(c.contended() && now >= c.sliceEnd()) && !alarmed {
		// Nothing due: a piece of a long one-shot count, or a deadline
		// that moved after the timer fired.
		c.timerEarly++
	}
}

// timerWaitOut is the timer interrupt's first step, in trap before the
// kernel lock: it notes when the interrupt came and waits out what is left
// of the advance, so that no other CPU waits for the lock meanwhile. It
// reads only this CPU's timer fields, which no other CPU writes.
// Interrupts off; must not allocate.
//
// An interrupt taken while the armed timer is still counting is not that
// timer's: it is the interrupt of a deadline that fired while this CPU
// had interrupts off (a trap, a VP thread's entry path) and that the same
// stretch then replaced with a later one. It is marked stale and not
// waited out. Waiting it out would spin until the new deadline, past its
// fire time, and leave that deadline's interrupt pending in turn: with a
// thread whose alarm repeats every AlarmRepeat, every interrupt was
// another stale one taken at once, each spinning the better part of 100
// µs with interrupts off, and the thread never ran again (VT-x VPs on a
// two-processor Bochs: 5.9 of 6.4 s spun).
func (c *cpu) timerWaitOut() {
	now := nanotime()
	if c.timerArmed != 0 && c.timerCounting() {
		c.timerStale = true
		return
	}
	c.timerArrival = now
	if target := c.timerArmed; target != 0 && now < target && target-now <= maxTimerAdvanceNS {
		t0 := now
		for now < target {
			now = nanotime()
		}
		c.timerSpinNS += uint64(now - t0)
	}
}

// timerCounting reports whether the armed timer has yet to fire: the TSC
// is short of the IA32_TSC_DEADLINE value written (the timer fires once
// the TSC reaches it), or the one-shot count has not run down to 0 (the
// Current Count Register, which reads 0 once it has). In the host tests,
// which have no local APIC, a one-shot count runs down at hostCountEnd.
// Interrupts off; must not allocate.
func (c *cpu) timerCounting() bool {
	switch {
	case timerMode == timerTSCDeadline:
		return x86.RDTSC() < c.timerTSC
	case hostTest:
		return nanotime() < hostCountEnd
	default:
		return *lapicReg(x86.LAPICTimerCurrentCount) != 0
	}
}

// timerModeName names the mode for the boot report.
func timerModeName() string {
	if timerMode == timerTSCDeadline {
		return "TSC-deadline"
	}
	return "one-shot"
}
