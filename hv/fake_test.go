package hv

import (
	"fmt"
	"testing"
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
	h.next += PageSize
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

func (h *fakeHost) Page(pa uint64) *[4096]byte { return h.pages[pa&^(PageSize-1)] }

// fakeVCPU replays exits the test sets and records what the core did.
type fakeVCPU struct {
	regs     Regs
	injected []Event
	dirty    bool
	window   bool
	shadow   bool
	next     Exit
}

func (v *fakeVCPU) Run(e *Exit) error             { *e = v.next; return nil }
func (v *fakeVCPU) Regs() *Regs                   { return &v.regs }
func (v *fakeVCPU) MarkStateDirty()               { v.dirty = true }
func (v *fakeVCPU) SyncState()                    {}
func (v *fakeVCPU) Inject(ev Event)               { v.injected = append(v.injected, ev) }
func (v *fakeVCPU) InterruptShadow() bool         { return v.shadow }
func (v *fakeVCPU) ClearInterruptShadow()         { v.shadow = false }
func (v *fakeVCPU) RequestInterruptWindow(b bool) { v.window = b }
func (v *fakeVCPU) Close() error                  { return nil }

type fakeBackend struct{ vcpus []*fakeVCPU }

func (b *fakeBackend) Name() string               { return "fake" }
func (b *fakeBackend) NestedFormat() NestedFormat { return FormatNPT }
func (b *fakeBackend) NewVCPU(uint64) (VCPU, error) {
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
	h := New(b, host)
	rec := &recorder{}
	p, err := h.NewPartition(Config{Name: "t", RAMBytes: ram, Console: rec})
	if err != nil {
		t.Fatal(err)
	}
	return p, b.vcpus[0], host, rec
}
