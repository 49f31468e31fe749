package synic

import (
	"encoding/binary"
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gohv/hv/tlfs"
)

// TestConcurrentRootGuestAndTimer runs what a Linux guest in legacy timer
// mode lives with, under the race detector: the root posts numbered
// messages to SINT 2 and signals events from one goroutine, a periodic
// message-mode timer on the same SINT expires from another, and the VP
// consumes the slot as vmbus_signal_eom does (swap the type to 0, write
// EOM only when MessagePending was set). Every message arrives once and
// in order, nothing is stuck, and the books balance.
func TestConcurrentRootGuestAndTimer(t *testing.T) {
	r := newRig(t, func(c *Config) { c.QueueDepth = 4 })
	r.enable(t)
	r.wr(t, count0, 2000)
	r.wr(t, cfg0, msgPeriod)
	const messages = 1000
	var stop atomic.Bool
	var wg sync.WaitGroup
	wg.Add(3)
	go func() { // root: messages
		defer wg.Done()
		var b [8]byte
		for i := uint64(1); i <= messages; {
			binary.LittleEndian.PutUint64(b[:], i)
			switch err := r.s.Post(2, 1, 0, b[:]); {
			case err == nil:
				i++
			case errors.Is(err, ErrQueueFull):
				runtime.Gosched()
			default:
				t.Error(err)
				return
			}
		}
	}()
	go func() { // root: events
		defer wg.Done()
		for f := uint32(0); !stop.Load(); f = (f + 1) % 2048 {
			if _, err := r.s.Signal(2, f); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	go func() { // host timers
		defer wg.Done()
		for !stop.Load() {
			r.clock.Advance(500)
			runtime.Gosched()
		}
	}()

	deadline := time.Now().Add(20 * time.Second)
	next, timers := uint64(1), 0
	for next <= messages {
		if time.Now().After(deadline) {
			stop.Store(true)
			wg.Wait()
			t.Fatalf("stuck at message %d (queued %d, stats %+v)", next, r.s.Queued(2), r.s.Stats())
		}
		h, p, ok := r.ram.consume(simpGPA, 2)
		if !ok {
			runtime.Gosched()
			continue
		}
		switch h.Type {
		case 1:
			if got := binary.LittleEndian.Uint64(p); got != next {
				t.Fatalf("message %d arrived, want %d", got, next)
			}
			next++
		case tlfs.MessageTypeTimerExpired:
			timers++
		default:
			t.Fatalf("slot %+v", h)
		}
		if h.Flags&tlfs.MessagePendingFlag != 0 {
			r.wr(t, tlfs.MsrEOM, 0)
		}
		if next%64 == 0 {
			r.s.EOI(sintVector)
		}
	}
	stop.Store(true)
	wg.Wait()
	checkConservation(t, r.s)
	if st := r.s.Stats(); st.Delivered != messages || st.Dropped != 0 {
		t.Fatalf("stats %+v", st)
	}
	t.Logf("%d timer messages among %d", timers, messages)
}
