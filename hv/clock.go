package hv

import (
	"time"

	"gohv/apic"
)

// HostClock is the root's calibrated time: metal's in the image, a fake in
// host tests. Nanotime is the clock Go's own timers run on, so durations
// computed from it are what time.AfterFunc waits.
type HostClock interface {
	Nanotime() int64 // monotonic nanoseconds
	TSC() uint64     // the host time-stamp counter
	TSCHz() uint64   // its constant rate
	// SetAlarm asks for a host interrupt on the calling thread once
	// Nanotime passes deadline (0 cancels): a VP running its guest then
	// exits on time for a guest timer, whatever the Go runtime's timer
	// latency. One alarm per thread, replaced by the next call; once due
	// it keeps interrupting the thread while it runs (metal: every
	// AlarmRepeat) until replaced or cancelled, so an entry just after it
	// fired still exits. Must not allocate.
	SetAlarm(deadline int64)
}

// LAPICTimerHz is the rate a guest's local APIC timer counts at with
// divide-by-1 (the SDM's bus clock), as a guest learns it from the
// hypervisor.
const LAPICTimerHz = apic.DefaultTimerHz

// guestClock is a partition's apic.Clock. Guests run with no TSC offset
// (both backends), so the guest TSC is the host's.
type guestClock struct{ host HostClock }

func (c guestClock) Now() int64    { return c.host.Nanotime() }
func (c guestClock) TSC() uint64   { return c.host.TSC() }
func (c guestClock) TSCHz() uint64 { return c.host.TSCHz() }

// NewTimer makes a host timer over a Go runtime timer: the callback runs
// on a goroutine of its own when the deadline passes.
func (c guestClock) NewTimer(f func()) apic.HostTimer {
	t := time.AfterFunc(time.Hour, f)
	t.Stop()
	return &hostTimer{t: t, clock: c.host}
}

type hostTimer struct {
	t     *time.Timer
	clock HostClock
}

// Arm resets the runtime timer to at; Reset neither runs f nor waits for
// it, and does not allocate.
func (h *hostTimer) Arm(at int64) { h.t.Reset(time.Duration(at - h.clock.Nanotime())) }
func (h *hostTimer) Stop()        { h.t.Stop() }
