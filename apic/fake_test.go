package apic

import (
	"encoding/binary"
	"testing"
)

// fakeClock is a Clock whose time moves only in Advance, which runs the
// host-timer callbacks that come due on the way, each at its own expiry
// time. Single goroutine: the test's.
type fakeClock struct {
	now       int64
	tscHz     uint64
	timers    []*fakeTimer
	callbacks int
}

func newFakeClock() *fakeClock { return &fakeClock{now: 1_000_000, tscHz: 2_500_000_000} }

func (c *fakeClock) Now() int64    { return c.now }
func (c *fakeClock) TSC() uint64   { return mulDiv(uint64(c.now), c.tscHz, 1e9) }
func (c *fakeClock) TSCHz() uint64 { return c.tscHz }
func (c *fakeClock) NewTimer(f func()) HostTimer {
	t := &fakeTimer{f: f}
	c.timers = append(c.timers, t)
	return t
}

// Advance moves time forward by d.
func (c *fakeClock) Advance(d int64) {
	end := c.now + d
	for {
		var next *fakeTimer
		for _, t := range c.timers {
			if t.armed && t.at <= end && (next == nil || t.at < next.at) {
				next = t
			}
		}
		if next == nil {
			break
		}
		if next.at > c.now {
			c.now = next.at
		}
		next.armed = false
		c.callbacks++
		if c.callbacks > 10_000_000 {
			panic("fakeClock: runaway timer callbacks")
		}
		next.f()
	}
	c.now = end
}

type fakeTimer struct {
	f     func()
	at    int64
	armed bool
	arms  int
}

func (t *fakeTimer) Arm(at int64) { t.at, t.armed = at, true; t.arms++ }
func (t *fakeTimer) Stop()        { t.armed = false }

type fakeSink struct{ kicks int }

func (s *fakeSink) Kick() { s.kicks++ }

type fakeEOI struct{ vectors []uint8 }

func (e *fakeEOI) EOI(v uint8) { e.vectors = append(e.vectors, v) }

// rig is a partition's worth of LAPICs on one bus and one fake clock.
type rig struct {
	clock  *fakeClock
	bus    *StaticBus
	lapics []*LAPIC
	sinks  []*fakeSink
	eoi    *fakeEOI
}

// newRig makes n LAPICs with IDs 0..n-1 (VP 0 the BSP), x2APIC,
// TSC-deadline and EOI-broadcast suppression advertised; edit adjusts
// each Config.
func newRig(t testing.TB, n int, edit func(i int, c *Config)) *rig {
	t.Helper()
	r := &rig{clock: newFakeClock(), bus: &StaticBus{}, eoi: &fakeEOI{}}
	for i := 0; i < n; i++ {
		s := &fakeSink{}
		cfg := Config{
			ID: uint32(i), BSP: i == 0, X2APIC: true, TSCDeadline: true, SuppressEOIBroadcast: true,
			PhysAddrBits: 46, Clock: r.clock, Bus: r.bus, Sink: s, EOI: r.eoi,
		}
		if edit != nil {
			edit(i, &cfg)
		}
		l, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		r.bus.Add(l)
		r.lapics = append(r.lapics, l)
		r.sinks = append(r.sinks, s)
	}
	return r
}

// One-LAPIC shortcut.
func newOne(t testing.TB) (*LAPIC, *rig) {
	r := newRig(t, 1, nil)
	return r.lapics[0], r
}

func xr(l *LAPIC, off uint32) uint32 {
	var b [4]byte
	l.ReadMMIO(uint64(off), b[:])
	return binary.LittleEndian.Uint32(b[:])
}

func xw(l *LAPIC, off, v uint32) {
	var b [4]byte
	binary.LittleEndian.PutUint32(b[:], v)
	l.WriteMMIO(uint64(off), b[:])
}

// enable software-enables l with spurious vector 0xff.
func enable(l *LAPIC) { xw(l, LAPIC_SVR, 1<<SVR_ENABLE|0xff) }

// fixed sends a fixed edge interrupt to physical destination id.
func fixed(r *rig, id uint32, v uint8) { Deliver(r.bus, Message{Vector: v, Dest: id}) }

func bitsOf(s [4]uint64) (vs []int) {
	for v := 0; v < 256; v++ {
		if s[v/64]&(1<<(v%64)) != 0 {
			vs = append(vs, v)
		}
	}
	return vs
}

func (l *LAPIC) snapshot() (irr, isr, tmr [4]uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.irr, l.isr, l.tmr
}

func mustNil(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
