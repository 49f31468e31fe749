package synic

import (
	"encoding/binary"
	"errors"
	"sync"
	"testing"

	"gohv/hv/tlfs"
)

// Test fakes: guest RAM as a byte slice with a hole (MMIO), an
// interrupter that counts, and a clock whose time moves only when told.

var errNotRAM = errors.New("fake: not RAM")

// fakeRAM is guest RAM from GPA 0 to len(b), except the hole [holeLo,
// holeHi), which is MMIO. Every operation holds the mutex, so OrU32 and
// CmpxchgU32 are atomic against a "guest" goroutine using the same
// methods. hook, if set, runs (without the mutex) before each operation:
// a test's way to play a racing guest.
type fakeRAM struct {
	mu             sync.Mutex
	b              []byte
	holeLo, holeHi uint64
	ops            int
	hook           func(op string, gpa uint64)
	// failOp, when non-empty, makes every operation of that kind fail:
	// a page that stops being RAM between two accesses.
	failOp string
}

const (
	ramSize = 16 * 4096
	holeGPA = 8 * 4096 // one page of MMIO
	simpGPA = 1 * 4096
	siefGPA = 2 * 4096
)

func newRAM() *fakeRAM {
	return &fakeRAM{b: make([]byte, ramSize), holeLo: holeGPA, holeHi: holeGPA + 4096}
}

func (m *fakeRAM) check(gpa uint64, n int) error {
	end := gpa + uint64(n)
	if end < gpa || end > uint64(len(m.b)) || gpa < m.holeHi && end > m.holeLo {
		return errNotRAM
	}
	return nil
}

func (m *fakeRAM) before(op string, gpa uint64) {
	if h := m.hook; h != nil {
		h(op, gpa)
	}
}

func (m *fakeRAM) fails(op string) bool { return m.failOp == op }

func (m *fakeRAM) ReadRAM(gpa uint64, b []byte) error {
	m.before("read", gpa)
	m.mu.Lock()
	defer m.mu.Unlock()
	m.ops++
	if err := m.check(gpa, len(b)); err != nil {
		return err
	}
	copy(b, m.b[gpa:])
	return nil
}

func (m *fakeRAM) WriteRAM(gpa uint64, b []byte) error {
	m.before("write", gpa)
	m.mu.Lock()
	defer m.mu.Unlock()
	m.ops++
	if err := m.check(gpa, len(b)); err != nil || m.fails("write") {
		return errNotRAM
	}
	copy(m.b[gpa:], b)
	return nil
}

func (m *fakeRAM) OrU32(gpa uint64, bits uint32) (uint32, error) {
	m.before("or", gpa)
	m.mu.Lock()
	defer m.mu.Unlock()
	m.ops++
	if err := m.check(gpa, 4); err != nil || gpa%4 != 0 || m.fails("or") && bits != 0 {
		return 0, errNotRAM
	}
	old := binary.LittleEndian.Uint32(m.b[gpa:])
	binary.LittleEndian.PutUint32(m.b[gpa:], old|bits)
	return old, nil
}

func (m *fakeRAM) CmpxchgU32(gpa uint64, old, new uint32) (bool, error) {
	m.before("cmpxchg", gpa)
	m.mu.Lock()
	defer m.mu.Unlock()
	m.ops++
	if err := m.check(gpa, 4); err != nil || gpa%4 != 0 || m.fails("cmpxchg") {
		return false, errNotRAM
	}
	if binary.LittleEndian.Uint32(m.b[gpa:]) != old {
		return false, nil
	}
	binary.LittleEndian.PutUint32(m.b[gpa:], new)
	return true, nil
}

// The guest's side of the RAM.

func (m *fakeRAM) u32(gpa uint64) uint32 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return binary.LittleEndian.Uint32(m.b[gpa:])
}

func (m *fakeRAM) setU32(gpa uint64, v uint32) {
	m.mu.Lock()
	defer m.mu.Unlock()
	binary.LittleEndian.PutUint32(m.b[gpa:], v)
}

func (m *fakeRAM) fill(gpa uint64, n int, v byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for i := range n {
		m.b[gpa+uint64(i)] = v
	}
}

func (m *fakeRAM) bytes(gpa uint64, n int) []byte {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]byte(nil), m.b[gpa:gpa+uint64(n)]...)
}

// slot reads a message slot of the SIM page at simp.
func (m *fakeRAM) slot(simp uint64, sint uint8) (tlfs.MessageHeader, []byte) {
	h, p, err := tlfs.ParseMessage(m.bytes(simp+uint64(sint)*tlfs.MessageSize, tlfs.MessageSize))
	if err != nil {
		panic(err)
	}
	return h, p
}

// consume is what Linux's vmbus_signal_eom does: copy the message, swap
// the type to 0, report whether MessagePending was set (the guest then
// writes EOM). ok is false for an empty slot.
func (m *fakeRAM) consume(simp uint64, sint uint8) (h tlfs.MessageHeader, payload []byte, ok bool) {
	gpa := simp + uint64(sint)*tlfs.MessageSize
	h, payload = m.slot(simp, sint)
	if h.Type == tlfs.MessageTypeNone {
		return h, nil, false
	}
	if swapped, _ := m.CmpxchgU32(gpa, uint32(h.Type), 0); !swapped {
		panic("slot changed under the test's guest")
	}
	h.Flags = m.bytes(gpa+tlfs.MessageFlagsOffset, 1)[0]
	return h, payload, true
}

// fakeIntr records raised vectors and auto-EOI marks.
type fakeIntr struct {
	mu      sync.Mutex
	raised  []uint8
	count   [256]int
	autoEOI [4]uint64
	marks   int
}

func (f *fakeIntr) Interrupt(v uint8) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.raised) < 1<<16 {
		f.raised = append(f.raised, v)
	}
	f.count[v]++
}

func (f *fakeIntr) SetAutoEOI(v uint8, on bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.marks++
	if on {
		f.autoEOI[v>>6] |= 1 << (v & 63)
	} else {
		f.autoEOI[v>>6] &^= 1 << (v & 63)
	}
}

func (f *fakeIntr) n(v uint8) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.count[v]
}

func (f *fakeIntr) total() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	t := 0
	for _, c := range f.count {
		t += c
	}
	return t
}

func (f *fakeIntr) isAutoEOI(v uint8) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.autoEOI[v>>6]&(1<<(v&63)) != 0
}

// fakeClock is a Clock whose time moves only in Advance (which runs the
// host-timer callbacks that come due on the way, each at its own expiry)
// or Jump (which does not: a host that is late). Safe for concurrent
// ReferenceTime calls; Advance and Jump belong to one goroutine.
type fakeClock struct {
	mu        sync.Mutex
	now       uint64
	timers    []*fakeTimer
	callbacks int
}

func newClock() *fakeClock { return &fakeClock{now: 1_000_000} }

func (c *fakeClock) ReferenceTime() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) NewTimer(f func()) HostTimer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTimer{c: c, f: f}
	c.timers = append(c.timers, t)
	return t
}

// Advance moves time forward by d, running due callbacks in order.
func (c *fakeClock) Advance(d uint64) {
	c.mu.Lock()
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
		c.mu.Unlock()
		next.f()
		c.mu.Lock()
	}
	c.now = end
	c.mu.Unlock()
}

// Jump moves time forward without running callbacks.
func (c *fakeClock) Jump(d uint64) {
	c.mu.Lock()
	c.now += d
	c.mu.Unlock()
}

func (c *fakeClock) Callbacks() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.callbacks
}

type fakeTimer struct {
	c     *fakeClock
	f     func()
	at    uint64
	armed bool
	arms  int
}

// Arm and Stop are called with the SynIC's mutex held, from Advance's
// callbacks (clock mutex released) or from other SynIC calls.
func (t *fakeTimer) Arm(at uint64) {
	t.c.mu.Lock()
	t.at, t.armed = at, true
	t.arms++
	t.c.mu.Unlock()
}

func (t *fakeTimer) Stop() {
	t.c.mu.Lock()
	t.armed = false
	t.c.mu.Unlock()
}

func (t *fakeTimer) state() (at uint64, armed bool, arms int) {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	return t.at, t.armed, t.arms
}

// rig is one SynIC over the fakes.
type rig struct {
	ram   *fakeRAM
	intr  *fakeIntr
	clock *fakeClock
	s     *SynIC
}

func newRig(t testing.TB, edit func(*Config)) *rig {
	t.Helper()
	r := &rig{ram: newRAM(), intr: &fakeIntr{}, clock: newClock()}
	cfg := Config{VP: 0, Memory: r.ram, Interrupter: r.intr, Clock: r.clock, DirectTimers: true}
	if edit != nil {
		edit(&cfg)
	}
	r.s = New(cfg)
	return r
}

// wr writes an MSR that must be accepted.
func (r *rig) wr(t testing.TB, msr uint32, v uint64) {
	t.Helper()
	if err := r.s.WriteMSR(msr, v); err != nil {
		t.Fatalf("WRMSR %#x = %#x: %v", msr, v, err)
	}
}

func (r *rig) rd(t testing.TB, msr uint32) uint64 {
	t.Helper()
	v, err := r.s.ReadMSR(msr)
	if err != nil {
		t.Fatalf("RDMSR %#x: %v", msr, err)
	}
	return v
}

const sintVector = 0xf3 // Linux's VMBus vector, on SINT2

// enable does what Linux's hv_synic_enable_regs does: SIMP, SIEFP,
// SINT2 = vector 0xf3 unmasked, SCONTROL.
func (r *rig) enable(t testing.TB) {
	t.Helper()
	r.wr(t, tlfs.MsrSIMP, simpGPA|tlfs.OverlayEnable)
	r.wr(t, tlfs.MsrSIEFP, siefGPA|tlfs.OverlayEnable)
	r.wr(t, tlfs.MsrSINT0+2, sintVector)
	r.wr(t, tlfs.MsrSControl, tlfs.SControlEnable)
}

// queuedTotal is the number of messages waiting in every queue.
func (s *SynIC) queuedTotal() int {
	n := 0
	for i := range tlfs.SINTCount {
		n += s.Queued(uint8(i))
	}
	return n
}

// checkConservation: every accepted message is delivered, queued or
// dropped and counted.
func checkConservation(t testing.TB, s *SynIC) {
	t.Helper()
	st := s.Stats()
	if q := uint64(s.queuedTotal()); st.Posted != st.Delivered+st.Dropped+q {
		t.Fatalf("posted %d != delivered %d + dropped %d + queued %d", st.Posted, st.Delivered, st.Dropped, q)
	}
}
