// Package apic models the interrupt controllers a child partition programs:
// one local APIC per virtual processor, in xAPIC (MMIO page) and x2APIC
// (MSR) mode, with its timer and inter-processor interrupts, as the Intel
// SDM Vol. 3A chapter 11 describes them; the I/O APIC is the subpackage
// ioapic. Register names follow the SDM and tamago's amd64/lapic
// (LAPIC_SVR, ICR_DLV_INIT), so a reader can look each one up.
//
// The model is logic only. Time comes through a Clock and its HostTimers;
// a LAPIC tells its owner that the VP has something to act on through a
// Sink; level-triggered EOIs go to an EOIListener (the I/O APIC);
// inter-processor and device messages reach their targets through a Bus
// that lists the partition's LAPICs. The hypervisor wires these to its VP
// run loop, its calibrated clock and its MMIO and MSR exits; tests wire
// them to fakes.
//
// A VP's run loop uses a LAPIC like this (all on the VP's thread):
//
//	ev := l.TakeEvents()         // INIT, SIPI, NMI: act on them first
//	if v, ok := l.PendingVector(); ok {
//		if guest can take an external interrupt (RFLAGS.IF, no shadow,
//		   no event being injected) {
//			v, _ = l.Ack()     // IRR -> ISR; inject v as external interrupt
//		} else {
//			request an interrupt-window exit
//		}
//	}
//	enter the guest; on HLT sleep until Sink.Kick
//
// and hands MMIO accesses to the APIC page (Base, while Mode is
// ModeXAPIC) to ReadMMIO/WriteMMIO, and RDMSR/WRMSR of IA32_APIC_BASE,
// IA32_TSC_DEADLINE and 0x800-0x8ff to ReadMSR/WriteMSR, raising #GP(0)
// when they return an error wrapping ErrGP.
//
// # Timer
//
// One-shot, periodic and TSC-deadline modes (SDM Vol. 3A 11.5.4). The
// current count is computed from Clock.Now, never stepped; a host timer
// is armed only when an expiry must reach the VP (LVT unmasked, count or
// deadline armed). Periodic expiries that pass while the callback is late
// or the VP is descheduled give one interrupt (the rest are counted in
// Stats.TimerCoalesced) and the phase is kept; a vector already pending
// merges. A periodic timer costs at most one host callback and one
// interrupt per Config.MinTimerPeriod (100 µs by default) however short
// its period, even one tick; one-shot and TSC-deadline expiries need a
// guest write to re-arm, so they cost at most one callback per write.
//
// # Interrupt messages
//
// IPIs (ICR and SELF_IPI writes), I/O APIC redirections and MSIs are
// Messages that Deliver hands to the LAPICs of the partition's Bus whose
// physical ID or logical ID (flat, cluster, x2APIC cluster) matches, or
// that a shorthand names. Lowest-priority messages go to the matching,
// software-enabled LAPIC with the lowest APIC ID (the SDM leaves the
// arbitration model-specific, 11.6.2.4). For what a guest may write to the
// ICR (SDM Vol. 3A 11.6.1):
//
//   - fixed or lowest-priority with a vector below 16: ESR send-illegal at
//     the sender, and the message still goes out, so each target notes
//     receive-illegal instead of taking it (SDM Vol. 3A 11.5.3);
//   - INIT level de-assert (INIT, level 0, trigger level): only
//     synchronises arbitration IDs on old processors: nothing happens;
//   - reserved delivery modes (011, 111), the self shorthand with any mode
//     but fixed, and all-including-self with lowest priority (SDM Vol. 3A
//     Table 11-3 marks these invalid): not sent, counted in IPIsInvalid;
//   - SMI: sent, and every target drops it (no SMM in the model);
//   - the trigger-mode bit of other messages is ignored: IPIs are edge;
//   - a destination no LAPIC has: counted in IPIsNoTarget;
//   - the delivery-status bit always reads idle: delivery is immediate.
//
// # Hostile guests
//
// A guest may write anything anywhere in any order; each outcome is the
// SDM's or documented here and at the method (ReadMMIO, WriteMMIO,
// WriteMSR, SetLINT). Memory is fixed at New: IRR is a bitmap, so a
// flood of interrupts or self-IPIs leaves one pending bit per vector; a
// guest that never EOIs holds at most 15 vectors in service; an error
// raises at most one error interrupt per ESR write. IA32_APIC_BASE may
// point the page anywhere below MAXPHYADDR, the guest's RAM or another
// device included: which wins is the caller's routing decision.
//
// INIT and SIPI follow the SDM whoever sends them: an INIT to the BSP
// (IA32_APIC_BASE.BSP, which the INIT reset keeps) reports WaitForSIPI
// false, so the VP restarts at the reset vector (SDM Vol. 3A 9.1) and a
// SIPI to it is dropped; an AP's INIT arms one SIPI (9.4.4), the later
// ones are dropped until the next INIT; an INIT or SIPI to an APIC ID no
// LAPIC has counts in IPIsNoTarget and sets no ESR bit (send-accept
// errors are the P6's and the Pentium's, 11.5.3). A start-up vector may
// name any page: what the VP then fetches there is its owner's business.
//
// # Invariants
//
// Between calls a LAPIC keeps these, and the fuzz target checks them
// after every operation:
//
//   - IRR, ISR and TMR never hold a vector below 16: an interrupt with an
//     illegal vector sets an ESR bit instead (SDM Vol. 3A 11.5.3).
//   - ISR holds only vectors Ack returned and no EOI has retired yet, and
//     at most one vector per priority class: Ack moves a vector to ISR
//     only if its class is above PPR, which is at least the class of the
//     highest in-service vector (SDM Vol. 3A 11.8.3.1).
//   - Ack returns the highest vector in IRR, and only when its class is
//     above PPR's; otherwise nothing is pending.
//   - While the LAPIC is software-disabled (SVR bit 8 clear) every LVT
//     entry is masked (SDM Vol. 3A 11.4.7.2).
//
// # Failure
//
// Nothing a guest writes panics or grows memory. Each guest-visible
// failure has the SDM's outcome or a documented one:
//
//   - WRMSR/RDMSR faults (x2APIC register outside x2APIC mode, read of a
//     write-only or write to a read-only register, a reserved bit, an
//     unimplemented register, an illegal IA32_APIC_BASE transition) return
//     an error that wraps ErrGP and names the check; the caller raises
//     #GP(0) and the register is unchanged. These errors are
//     preallocated: returning one allocates nothing.
//   - MMIO accesses never fail; see ReadMMIO for narrow, wide and
//     misaligned accesses and for the page outside xAPIC mode.
//   - Reserved bits written through the xAPIC page are dropped; accesses
//     to offsets that name no register set ESR bit 7 (illegal register
//     address).
//   - Messages that reach no LAPIC, that the target cannot take (fixed
//     interrupts to a software-disabled LAPIC, SIPI outside
//     wait-for-SIPI, SMI, ExtINT without a PIC, reserved delivery modes or
//     invalid shorthand combinations) are dropped and counted in Stats.
//
// # Concurrency
//
// Each LAPIC has one mutex guarding all of its state; it is a leaf lock
// (TestConcurrentVPs exercises it under the race detector).
// Methods documented "VP thread" are meant to be called only by the VP's
// run loop (ReadMMIO, WriteMMIO, ReadMSR, WriteMSR, PendingVector, Ack,
// TakeEvents, TPR, SetTPR, PollTimer); they are still safe against the
// methods any goroutine may call: Deliver (messages from other VPs'
// IPIs, the I/O APIC, MSIs), SetLINT, Stats, Mode, Base, ID, and the
// host-timer callback. No callback (Sink.Kick, EOIListener.EOI, another
// LAPIC's delivery) runs while a LAPIC's mutex is held, so a LAPIC never
// holds two LAPIC mutexes and the I/O APIC may deliver under its own
// mutex (lock order: ioapic, then one LAPIC). HostTimer.Arm and Stop are
// called with the mutex held and must not wait for the timer's callback.
//
// # Allocation
//
// PendingVector, Ack, TakeEvents, EOI, TPR and ICR writes, Deliver, the
// timer callback and every error path allocate nothing (tested with
// testing.AllocsPerRun). New allocates the LAPIC and its HostTimer once.
package apic

import (
	"errors"
	"fmt"
	"sync/atomic"
)

// Clock is the partition's time source, with the host timers the LAPIC
// timer runs on. The hypervisor implements it over its calibrated TSC
// clock; tests use a fake whose time moves only when told.
type Clock interface {
	// Now is the current time in nanoseconds on a monotonic clock. It
	// never goes backwards.
	Now() int64
	// TSC is the VP's guest time-stamp counter now (what RDTSC returns to
	// the guest), read consistently with Now.
	TSC() uint64
	// TSCHz is the guest TSC's constant rate in ticks per second, > 0.
	TSCHz() uint64
	// NewTimer makes a host timer that calls f, on a goroutine of the
	// clock's choosing, each time an expiry set by Arm passes. New calls
	// it once per LAPIC.
	NewTimer(f func()) HostTimer
}

// HostTimer is one re-armable host timer, like time.Timer made with
// time.AfterFunc.
type HostTimer interface {
	// Arm sets the timer to call f once Now() >= at, replacing any earlier
	// expiry; an at already past fires as soon as possible. It must not
	// call f itself nor wait for a running f: the LAPIC calls it with its
	// mutex held. Must not allocate.
	Arm(at int64)
	// Stop cancels the pending expiry, if any. An f already started may
	// still run: the LAPIC re-checks the time and ignores early or stale
	// calls. Same rules as Arm.
	Stop()
}

// Sink is the LAPIC's owner: the VP run loop.
type Sink interface {
	// Kick says the VP has something to act on: a vector became
	// deliverable (IRR holds a vector whose class is above PPR), or an
	// NMI, INIT or SIPI arrived. It may be called from any goroutine,
	// including the VP's own thread during one of its LAPIC calls, never
	// with a LAPIC mutex held; it must not block (a non-blocking send on
	// a wake channel, plus forcing the VP out of guest mode if it is
	// running). Kicks may be spurious; the VP re-checks PendingVector and
	// TakeEvents.
	Kick()
}

// EOIListener learns of EOIs for level-triggered vectors: the I/O APIC,
// which clears the remote IRR of the entries that delivered the vector
// (SDM Vol. 3A 11.8.5). Called on the EOI-writing VP's thread with no
// LAPIC mutex held.
type EOIListener interface {
	EOI(vector uint8)
}

// Config describes one LAPIC. Zero values of the optional fields take the
// defaults named below.
type Config struct {
	// ID is the initial APIC ID: the x2APIC ID, and in xAPIC mode its low
	// 8 bits. By convention the VP's index.
	ID uint32
	// BSP sets IA32_APIC_BASE.BSP: the boot processor, which an INIT
	// restarts at the reset vector instead of parking in wait-for-SIPI.
	BSP bool
	// X2APIC: CPUID.1:ECX.x2APIC is advertised, so IA32_APIC_BASE.EXTD may
	// be set. Otherwise EXTD is reserved (#GP).
	X2APIC bool
	// TSCDeadline: CPUID.1:ECX.TSC_Deadline is advertised, so the LVT
	// timer's mode field has its TSC-deadline value and IA32_TSC_DEADLINE
	// exists. Otherwise that MSR raises #GP.
	TSCDeadline bool
	// SuppressEOIBroadcast: the version register advertises EOI-broadcast
	// suppression (bit 24) and SVR bit 12 is writable (SDM Vol. 3A
	// 11.8.5). Advertise it only with an I/O APIC that has an EOI
	// register (version 0x20), as ioapic's does.
	SuppressEOIBroadcast bool
	// PhysAddrBits is the guest's MAXPHYADDR: IA32_APIC_BASE bits at and
	// above it are reserved. 0 means 52.
	PhysAddrBits uint
	// TimerHz is the rate the timer counts at with divide-by-1 (the SDM's
	// bus or core crystal clock). 0 means DefaultTimerHz.
	TimerHz uint64
	// MinTimerPeriod bounds how often a periodic timer costs the host a
	// callback, in nanoseconds. 0 means DefaultMinTimerPeriod.
	MinTimerPeriod int64

	Clock Clock       // required
	Bus   Bus         // required: the partition's LAPICs, this one included
	Sink  Sink        // required
	EOI   EOIListener // may be nil: level EOIs go nowhere
}

// Defaults for Config.
const (
	// DefaultTimerHz makes one timer tick (divide by 1) a nanosecond.
	DefaultTimerHz = 1_000_000_000
	// DefaultMinTimerPeriod caps a periodic timer at 10 000 host callbacks
	// (and guest interrupts) per second per VP.
	DefaultMinTimerPeriod = 100_000
)

// ErrGP is wrapped by every error that the guest must see as #GP(0).
var ErrGP = errors.New("apic: #GP(0)")

// gpFault is one named reason for a #GP; the values are preallocated so
// the exit path allocates nothing.
type gpFault struct{ msg string }

func (f *gpFault) Error() string { return "apic: #GP(0): " + f.msg }
func (f *gpFault) Unwrap() error { return ErrGP }

// The #GP reasons. Each wraps ErrGP.
var (
	ErrNotX2APIC       error = &gpFault{"x2APIC MSR accessed while the LAPIC is not in x2APIC mode"}
	ErrNoRegister      error = &gpFault{"no x2APIC register at this MSR"}
	ErrReadOnly        error = &gpFault{"write to a read-only x2APIC register"}
	ErrWriteOnly       error = &gpFault{"read of a write-only x2APIC register"}
	ErrReservedBits    error = &gpFault{"reserved bit set in an x2APIC register write"}
	ErrBaseReserved    error = &gpFault{"reserved bit set in IA32_APIC_BASE"}
	ErrBaseTransition  error = &gpFault{"illegal IA32_APIC_BASE mode transition"}
	ErrNoTSCDeadline   error = &gpFault{"IA32_TSC_DEADLINE not advertised"}
	ErrNotAPICMSR      error = &gpFault{"not a local APIC MSR"}
	errConfig                = errors.New("apic: bad config")
	errConfigTimerRate       = fmt.Errorf("%w: TimerHz too high (at most 1e12)", errConfig)
)

// Stats counts what a LAPIC did with its interrupts, for reports and
// tests. Counters only grow (until the LAPIC is discarded).
type Stats struct {
	Accepted       uint64 // fixed and lowest-priority vectors set in IRR (or merged into a set bit)
	Acked          uint64 // vectors Ack moved to ISR
	Spurious       uint64 // Acks that found nothing deliverable
	EOIs           uint64 // EOI writes that retired an in-service vector
	Dropped        uint64 // messages this LAPIC received but could not take
	IPIsSent       uint64 // ICR and SELF_IPI writes that sent a message
	IPIsNoTarget   uint64 // of those, messages that matched no LAPIC
	IPIsInvalid    uint64 // ICR writes with a reserved delivery mode or invalid shorthand
	TimerFired     uint64 // timer expiries that set their vector in IRR (or masked)
	TimerCoalesced uint64 // expiries merged into one interrupt: periods that passed unobserved, or the vector still in IRR
	Errors         uint64 // error conditions recorded in ESR
}

type counters struct {
	accepted, acked, spurious, eois, dropped   atomic.Uint64
	ipisSent, ipisNoTarget, ipisInvalid        atomic.Uint64
	timerFired, timerCoalesced, errorsRecorded atomic.Uint64
}

// Stats returns the counters. Any goroutine.
func (l *LAPIC) Stats() Stats {
	c := &l.stats
	return Stats{
		Accepted: c.accepted.Load(), Acked: c.acked.Load(), Spurious: c.spurious.Load(),
		EOIs: c.eois.Load(), Dropped: c.dropped.Load(),
		IPIsSent: c.ipisSent.Load(), IPIsNoTarget: c.ipisNoTarget.Load(), IPIsInvalid: c.ipisInvalid.Load(),
		TimerFired: c.timerFired.Load(), TimerCoalesced: c.timerCoalesced.Load(),
		Errors: c.errorsRecorded.Load(),
	}
}
