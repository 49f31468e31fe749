package hv

import (
	"sync/atomic"
	"time"

	"gohv/hv/synic"
	"gohv/hv/tlfs"
)

// The SynIC and synthetic timers of package synic, wired to a VP: its
// guest memory, its local APIC, the partition's reference time; and the
// partition's ports, which the hypercalls HvCallPostMessage and
// HvCallSignalEvent reach and the root's services (VMBus) register on.

// newSynIC gives vp its SynIC.
func (vp *VP) newSynIC() {
	vp.synic = synic.New(synic.Config{
		VP:           uint32(vp.index),
		Memory:       vp.p.Mem,
		Interrupter:  sintSink{vp},
		Clock:        synicClock{vp},
		DirectTimers: hvFeatures&tlfs.FeatureDirectSyntheticTimers != 0,
	})
}

// SynIC is the VP's synthetic interrupt controller: the root posts
// messages to its SINTs and signals its event flags through it.
func (vp *VP) SynIC() *synic.SynIC { return vp.synic }

// Ports are the partition's message and event ports: connection IDs a
// guest's HvCallPostMessage and HvCallSignalEvent name. The root's
// services add theirs before the partition starts or while it runs.
func (p *Partition) Ports() *synic.Ports { return &p.hvPorts }

// sintSink raises SINT vectors through the VP's local APIC.
type sintSink struct{ vp *VP }

func (s sintSink) Interrupt(vector uint8)           { s.vp.Interrupt(vector) }
func (s sintSink) SetAutoEOI(vector uint8, on bool) { s.vp.lapic.SetAutoEOI(vector, on) }

// synicClock is the partition's reference time, with host timers the VP
// also watches itself (refTimer).
type synicClock struct{ vp *VP }

func (c synicClock) ReferenceTime() uint64 { return c.vp.p.ReferenceTime() }

func (c synicClock) NewTimer(f func()) synic.HostTimer {
	t := &refTimer{vp: c.vp, f: f}
	t.t = time.AfterFunc(time.Hour, f)
	t.t.Stop()
	c.vp.stimers = append(c.vp.stimers, t)
	return t
}

// refTimer is a synthetic timer's host timer: a Go runtime timer, and the
// deadline in host nanoseconds, which the VP's run loop also sets its host
// alarm and its HLT sleep by, calling f itself when it is due (the runtime
// timer's callback then finds nothing to do: the SynIC ignores early or
// stale calls).
type refTimer struct {
	vp *VP
	f  func()
	t  *time.Timer
	at atomic.Int64 // host Nanotime deadline; 0 when stopped
}

// Arm converts the reference time (100 ns since partition creation) to a
// host deadline. Called with the SynIC's mutex held; never calls f.
func (t *refTimer) Arm(ref uint64) {
	host := t.vp.p.hv.Host
	now := host.Nanotime()
	d := int64(0)
	if cur := t.vp.p.ReferenceTime(); ref > cur {
		d = int64(ref-cur) * 100
	}
	t.at.Store(max(now+d, 1))
	t.t.Reset(time.Duration(d))
}

func (t *refTimer) Stop() {
	t.at.Store(0)
	t.t.Stop()
}

// nextDeadline is the earliest host time a timer of the VP (its LAPIC's,
// its synthetic timers') needs it, 0 for none. VP thread; no lock.
func (vp *VP) nextDeadline() int64 {
	next := vp.lapic.TimerExpiry()
	for _, t := range vp.stimers {
		if at := t.at.Load(); at != 0 && (next == 0 || at < next) {
			next = at
		}
	}
	return next
}

// pollTimers processes the VP's timers that are due, without waiting for
// their host callbacks. VP thread.
func (vp *VP) pollTimers() {
	vp.lapic.PollTimer()
	now := vp.p.hv.Host.Nanotime()
	for _, t := range vp.stimers {
		if at := t.at.Load(); at != 0 && at <= now && t.at.CompareAndSwap(at, 0) {
			t.f()
		}
	}
}

// PostMessage and SignalEvent are the hypercalls that reach the
// partition's ports.
func (c *partitionCalls) PostMessage(vp uint32, in tlfs.PostMessageInput) tlfs.Status {
	return c.p.hvPorts.PostMessage(vp, in)
}

func (c *partitionCalls) SignalEvent(vp uint32, in tlfs.SignalEventInput) tlfs.Status {
	return c.p.hvPorts.SignalEvent(vp, in)
}
