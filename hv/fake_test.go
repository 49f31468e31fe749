package hv

import (
	"fmt"
	"sync/atomic"
	"testing"

	"gohv/hv/vcpu"
	"gohv/hv/vcpu/vcputest"
	"gohv/x86"
)

// fakeVCPU replays exits the test sets and records what the core did.
type fakeVCPU struct {
	regs      vcpu.Regs
	injected  []vcpu.Event
	dirty     bool
	window    bool
	shadow    bool
	pending   bool // EventPending's answer
	threshold uint8
	next      vcpu.Exit
	flushes   atomic.Int32 // FlushGuestTLB calls
	bound     int          // Bind's CPU; -1 after Unbind
	binds     []int        // every Bind's CPU, in order
	// unsynced, when set, makes Regs current as SyncState does on a
	// backend that fills Regs lazily (TestFastExitReadsOnlyFastState).
	unsynced func(r *vcpu.Regs)
}

func (v *fakeVCPU) Run(e *vcpu.Exit) error { *e = v.next; return nil }
func (v *fakeVCPU) Regs() *vcpu.Regs       { return &v.regs }
func (v *fakeVCPU) MarkStateDirty()        { v.dirty = true }
func (v *fakeVCPU) SyncState() {
	if v.unsynced != nil {
		v.unsynced(&v.regs)
		v.unsynced = nil
	}
}
func (v *fakeVCPU) Inject(ev vcpu.Event)          { v.injected = append(v.injected, ev) }
func (v *fakeVCPU) EventPending() bool            { return v.pending }
func (v *fakeVCPU) DropEvents()                   { v.pending = false }
func (v *fakeVCPU) FlushGuestTLB()                { v.flushes.Add(1) }
func (v *fakeVCPU) InterruptShadow() bool         { return v.shadow }
func (v *fakeVCPU) ClearInterruptShadow()         { v.shadow = false }
func (v *fakeVCPU) RequestInterruptWindow(b bool) { v.window = b }
func (v *fakeVCPU) SetTPRThreshold(c uint8)       { v.threshold = c }
func (v *fakeVCPU) Close() error                  { return nil }
func (v *fakeVCPU) Bind(c int) error {
	v.bound = c
	v.binds = append(v.binds, c)
	return nil
}
func (v *fakeVCPU) Unbind() { v.bound = -1 }

type fakeBackend struct{ vcpus []*fakeVCPU }

func (b *fakeBackend) Name() string                    { return "fake" }
func (b *fakeBackend) Report() []string                { return nil }
func (b *fakeBackend) HypercallInstruction() [3]byte   { return [3]byte{0x0f, 0x01, 0xd9} }
func (b *fakeBackend) NestedFormat() vcpu.NestedFormat { return vcpu.FormatNPT }
func (b *fakeBackend) NewVCPU(uint64) (vcpu.VCPU, error) {
	v := &fakeVCPU{}
	b.vcpus = append(b.vcpus, v)
	return v, nil
}

// testHost is the fake host memory with a clock that moves only when a
// test says so.
type testHost struct {
	*vcputest.FakeHost
	now  atomic.Int64
	cpus int // host CPUs online, 0 to cpus-1; 0 means one
	// pinned is the CPU PinThread last bound the caller to (CurrentCPU);
	// pinFail, when not -1, is a CPU PinThread refuses.
	pinned  atomic.Int32
	pinFail int
}

func (h *testHost) Nanotime() int64      { return h.now.Load() }
func (h *testHost) TSC() uint64          { return uint64(h.now.Load()) }
func (h *testHost) TSCHz() uint64        { return 1e9 }
func (h *testHost) SetAlarm(int64)       {}
func (h *testHost) CPUOnline(i int) bool { return i >= 0 && i < max(h.cpus, 1) }
func (h *testHost) PinThread(c int) error {
	if c >= 0 && c == h.pinFail {
		return fmt.Errorf("test: host CPU %d refused", c)
	}
	h.pinned.Store(int32(max(c, 0)))
	return nil
}
func (h *testHost) KickCPU(int)     {}
func (h *testHost) CurrentCPU() int { return int(h.pinned.Load()) }

func newTestHost() *testHost { return &testHost{FakeHost: vcputest.NewFakeHost(), pinFail: -1} }

// recorder collects console output.
type recorder struct{ lines []string }

func (r *recorder) Write(b []byte) (int, error) {
	r.lines = append(r.lines, string(b))
	return len(b), nil
}

func newTestPartition(t testing.TB, ram uint64) (*Partition, *fakeVCPU, *testHost, *recorder) {
	t.Helper()
	host := newTestHost()
	b := &fakeBackend{}
	h := New(b, host, NewCPUModel(), nil)
	rec := &recorder{}
	p, err := h.NewPartition(Config{Name: "t", RAMBytes: ram, Console: rec})
	if err != nil {
		t.Fatal(err)
	}
	// The tests set the registers they need on top of a blank file with
	// flat zero-based segments, not the RESET state (CS base FFFF0000h).
	b.vcpus[0].regs = vcpu.Regs{PAT: x86.PATReset}
	return p, b.vcpus[0], host, rec
}
