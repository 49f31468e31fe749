package hv

import (
	"fmt"
	"testing"

	"gohv/hv/vcpu"
	"gohv/x86"
)

// fakeHost is physical memory made of Go arrays.
type fakeHost struct {
	pages map[uint64]*[4096]byte
	next  uint64
	limit int
}

func newFakeHost() *fakeHost { return &fakeHost{pages: map[uint64]*[4096]byte{}, next: 0x10_0000} }

func (h *fakeHost) AllocPage() (uint64, error) {
	if h.limit > 0 && len(h.pages) >= h.limit {
		return 0, fmt.Errorf("fake host: out of pages")
	}
	pa := h.next
	h.next += x86.PageSize
	h.pages[pa] = new([4096]byte)
	return pa, nil
}

func (h *fakeHost) FreePage(pa uint64) error {
	if h.pages[pa] == nil {
		return fmt.Errorf("fake host: double free %#x", pa)
	}
	delete(h.pages, pa)
	return nil
}

func (h *fakeHost) Page(pa uint64) *[4096]byte { return h.pages[pa&^(x86.PageSize-1)] }

// fakeVCPU replays exits the test sets and records what the core did.
type fakeVCPU struct {
	regs     vcpu.Regs
	injected []vcpu.Event
	dirty    bool
	window   bool
	shadow   bool
	next     vcpu.Exit
}

func (v *fakeVCPU) Run(e *vcpu.Exit) error        { *e = v.next; return nil }
func (v *fakeVCPU) Regs() *vcpu.Regs              { return &v.regs }
func (v *fakeVCPU) MarkStateDirty()               { v.dirty = true }
func (v *fakeVCPU) SyncState()                    {}
func (v *fakeVCPU) Inject(ev vcpu.Event)          { v.injected = append(v.injected, ev) }
func (v *fakeVCPU) InterruptShadow() bool         { return v.shadow }
func (v *fakeVCPU) ClearInterruptShadow()         { v.shadow = false }
func (v *fakeVCPU) RequestInterruptWindow(b bool) { v.window = b }
func (v *fakeVCPU) Close() error                  { return nil }

type fakeBackend struct{ vcpus []*fakeVCPU }

func (b *fakeBackend) Name() string                    { return "fake" }
func (b *fakeBackend) Report() []string                { return nil }
func (b *fakeBackend) NestedFormat() vcpu.NestedFormat { return vcpu.FormatNPT }
func (b *fakeBackend) NewVCPU(uint64) (vcpu.VCPU, error) {
	v := &fakeVCPU{}
	b.vcpus = append(b.vcpus, v)
	return v, nil
}

// recorder collects console output.
type recorder struct{ lines []string }

func (r *recorder) Write(b []byte) (int, error) {
	r.lines = append(r.lines, string(b))
	return len(b), nil
}

func newTestPartition(t testing.TB, ram uint64) (*Partition, *fakeVCPU, *fakeHost, *recorder) {
	t.Helper()
	host := newFakeHost()
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
