package checks

import (
	"sync"
	"sync/atomic"
	"time"
)

// stallProbe is how often the stall meter's goroutine asks to be woken.
const stallProbe = 5 * time.Millisecond

// stallMeter measures how late the root's own timers run while a check
// runs: a goroutine sleeps stallProbe over and over and keeps the worst
// oversleep. Under TCG guest time is the host's wall time, so when the
// emulator's process is descheduled on a busy machine (CI runs several
// emulators on two cores) every timer inside the image, the root's and the
// guests' alike, comes late by the same stall. The timer checks allow a
// guest interrupt that much beyond their bounds and say so; a guest later
// than the root itself was is still a failure.
type stallMeter struct {
	worst atomic.Int64 // nanoseconds

	mu     sync.Mutex
	stalls []time.Duration // the oversleeps of stallProbe or more, the first maxStalls
	more   time.Duration   // the others added up
	stop   chan struct{}
	done   chan struct{}
}

func startStallMeter() *stallMeter {
	m := &stallMeter{stop: make(chan struct{}), done: make(chan struct{})}
	go m.run()
	return m
}

func (m *stallMeter) run() {
	defer close(m.done)
	t := time.NewTimer(stallProbe)
	defer t.Stop()
	for {
		asked := time.Now()
		t.Reset(stallProbe)
		select {
		case <-m.stop:
			return
		case <-t.C:
		}
		late := int64(time.Since(asked) - stallProbe)
		if late > m.worst.Load() {
			m.worst.Store(late)
		}
		if d := time.Duration(late); d >= stallProbe {
			m.mu.Lock()
			if len(m.stalls) < maxStalls {
				m.stalls = append(m.stalls, d)
			} else {
				m.more += d
			}
			m.mu.Unlock()
		}
	}
}

// Worst is the root's worst timer lateness so far; 0 on a nil meter.
func (m *stallMeter) Worst() time.Duration {
	if m == nil {
		return 0
	}
	return time.Duration(m.worst.Load())
}

// maxStalls bounds the stalls a meter keeps one by one.
const maxStalls = 1024

// PeriodsLost is how many whole periods of a guest timer all the
// root's stalls so far (oversleeps of stallProbe or more) can account
// for, each stall on its own: the machine stood still for the root that
// long, in several stalls or one, and the guest's timer with it. 0 on a
// nil meter.
func (m *stallMeter) PeriodsLost(period time.Duration) uint64 {
	if m == nil {
		return 0
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	n := uint64(m.more / period)
	for _, d := range m.stalls {
		n += uint64(d / period)
	}
	return n
}

// Stop ends the meter's goroutine.
func (m *stallMeter) Stop() {
	if m == nil {
		return
	}
	close(m.stop)
	<-m.done
}
