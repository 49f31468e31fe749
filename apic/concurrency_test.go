package apic

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// realClock is a Clock on the Go runtime's timers, with a 1 GHz TSC.
type realClock struct{ start time.Time }

func (c *realClock) Now() int64    { return int64(time.Since(c.start)) }
func (c *realClock) TSC() uint64   { return uint64(c.Now()) }
func (c *realClock) TSCHz() uint64 { return 1e9 }
func (c *realClock) NewTimer(f func()) HostTimer {
	t := &realTimer{c: c, t: time.AfterFunc(time.Hour, f)}
	t.t.Stop()
	return t
}

type realTimer struct {
	c *realClock
	t *time.Timer
}

func (t *realTimer) Arm(at int64) { t.t.Reset(time.Duration(at - t.c.Now())) }
func (t *realTimer) Stop()        { t.t.Stop() }

// chanSink wakes a VP goroutine.
type chanSink chan struct{}

func (s chanSink) Kick() {
	select {
	case s <- struct{}{}:
	default:
	}
}

// TestConcurrentVPs runs two VPs on their own goroutines, each with a
// periodic timer, sending each other IPIs and taking device messages from
// a third goroutine, as the hypervisor will. Under -race it checks the
// locking; it also checks that nothing deadlocks and that every kind of
// interrupt arrives.
func TestConcurrentVPs(t *testing.T) {
	clock := &realClock{start: time.Now()}
	bus := &StaticBus{}
	var lapics [2]*LAPIC
	var sinks [2]chanSink
	for i := range lapics {
		sinks[i] = make(chanSink, 1)
		l, err := New(Config{ID: uint32(i), BSP: i == 0, X2APIC: true, TSCDeadline: true,
			MinTimerPeriod: 50_000, Clock: clock, Bus: bus, Sink: sinks[i], EOI: &countEOI{}})
		if err != nil {
			t.Fatal(err)
		}
		lapics[i] = l
		bus.Add(l)
	}
	for _, l := range lapics {
		enable(l)
	}
	var stop atomic.Bool
	var seen [2][256]atomic.Uint64
	var wg sync.WaitGroup
	for i, l := range lapics {
		wg.Add(1)
		go func() { // the VP thread
			defer wg.Done()
			xw(l, LAPIC_LVT_TIMER, TIMER_MODE_PERIODIC<<TIMER_MODE|0x30)
			xw(l, LAPIC_TIMER_DIVIDE, 0b1011)
			xw(l, LAPIC_TIMER_INITIAL, 200_000)
			xw(l, LAPIC_ICRH, uint32(1-i)<<24)
			for n := 0; !stop.Load(); n++ {
				l.TakeEvents()
				if v, ok := l.PendingVector(); ok {
					if a, ok := l.Ack(); ok {
						seen[i][a].Add(1)
						if a < v {
							t.Errorf("vp %d: acked %#x below the pending %#x", i, a, v)
						}
						xw(l, LAPIC_EOI, 0)
					}
					continue
				}
				if n%16 == 0 {
					xw(l, LAPIC_ICRL, 0x50) // IPI to the other VP
					xw(l, LAPIC_ICRL, ICR_DST_SELF|0x51)
					continue
				}
				select { // "HLT"
				case <-sinks[i]:
				case <-time.After(time.Millisecond):
				}
			}
		}()
	}
	wg.Add(1)
	go func() { // a device raising level interrupts and NMIs
		defer wg.Done()
		for !stop.Load() {
			Deliver(bus, Message{Vector: 0x70, Dest: 0xff, Level: true})
			Deliver(bus, Message{Mode: DeliveryNMI, Dest: 1})
			time.Sleep(20 * time.Microsecond)
		}
	}()
	time.Sleep(300 * time.Millisecond)
	stop.Store(true)
	wg.Wait()
	for i := range lapics {
		for _, v := range []int{0x30, 0x50, 0x51, 0x70} {
			if seen[i][v].Load() == 0 {
				t.Errorf("vp %d never took vector %#x", i, v)
			}
		}
	}
}
