package hypercall

import (
	"testing"

	"gohv/hv/tlfs"
)

// TestDispatchDoesNotAllocate: Dispatch is on the exit path. A null call
// (an unknown code, the benchmark's), a fast spin-wait notice, a message,
// an event in both forms, a flush-list chunk that yields and one that
// completes, an Ex flush and a refused input allocate nothing.
func TestDispatchDoesNotAllocate(t *testing.T) {
	m, r := &fakeMem{}, &recorder{}
	c := &Caller{VP: 1}
	m.postMessage(inputGPA, 1, 1, []byte("a message of some length"))
	m.put64(inputGPA+0x100, 7<<32|5)
	m.flushList(inputGPA+0x200, 0, 0, 1, 200)
	m.put64(inputGPA+0xc00, 0, 0, tlfs.GenericSetSparse4K, 0x5, 0x21, 0x4)
	for _, k := range []struct {
		name          string
		rcx, rdx      uint64
		wantRAX       uint64
		wantDone      bool
		resetRecorder bool
	}{
		{"null call 0xffff", 0xffff, 0, tlfs.Result(tlfs.StatusInvalidHypercallCode, 0), true, false},
		{"fast HvCallNotifyLongSpinWait", control(tlfs.HvCallNotifyLongSpinWait, true, 0, 0, 0), 100, 0, true, false},
		{"HvCallPostMessage", control(tlfs.HvCallPostMessage, false, 0, 0, 0), inputGPA, 0, true, false},
		{"fast HvCallSignalEvent", control(tlfs.HvCallSignalEvent, true, 0, 0, 0), 5, 0, true, false},
		{"slow HvCallSignalEvent", control(tlfs.HvCallSignalEvent, false, 0, 0, 0), inputGPA + 0x100, 0, true, false},
		{"flush-list chunk that yields", control(tlfs.HvCallFlushVirtualAddressList, false, 0, 200, 64), inputGPA + 0x200, 0, false, true},
		{"last flush-list chunk", control(tlfs.HvCallFlushVirtualAddressList, false, 0, 200, 192), inputGPA + 0x200, tlfs.Result(tlfs.StatusSuccess, 200), true, true},
		{"HvCallFlushVirtualAddressSpaceEx", control(tlfs.HvCallFlushVirtualAddressSpaceEx, false, 2, 0, 0), inputGPA + 0xc00, 0, true, false},
		{"misaligned input", control(tlfs.HvCallPostMessage, false, 0, 0, 0), inputGPA + 4, tlfs.Result(tlfs.StatusInvalidAlignment, 0), true, false},
		{"input outside RAM", control(tlfs.HvCallSignalEvent, false, 0, 0, 0), mmioGPA, tlfs.Result(tlfs.StatusInvalidAlignment, 0), true, false},
	} {
		var rax uint64
		var done bool
		allocs := testing.AllocsPerRun(100, func() {
			if k.resetRecorder {
				r.nranges = 0
			}
			rax, _, done = c.Dispatch(r, m, k.rcx, k.rdx, 0)
		})
		if rax != k.wantRAX || done != k.wantDone {
			t.Errorf("%s: rax %#x done %v", k.name, rax, done)
		}
		if allocs != 0 {
			t.Errorf("%s: %v allocations per call", k.name, allocs)
		}
	}
}

// BenchmarkDispatch measures the host cost of decoding and dispatching,
// the handler a recorder: a figure to compare the exit round trip with.
func BenchmarkDispatch(b *testing.B) {
	m, r := &fakeMem{}, &recorder{}
	c := &Caller{}
	m.postMessage(inputGPA, 1, 1, make([]byte, 64))
	m.flushList(inputGPA+0x200, 0, 0, 1, 64)
	for _, k := range []struct {
		name     string
		rcx, rdx uint64
	}{
		{"null", 0xffff, 0},
		{"SignalEvent/fast", control(tlfs.HvCallSignalEvent, true, 0, 0, 0), 5},
		{"PostMessage/64B", control(tlfs.HvCallPostMessage, false, 0, 0, 0), inputGPA},
		{"FlushVirtualAddressList/64", control(tlfs.HvCallFlushVirtualAddressList, false, 0, 64, 0), inputGPA + 0x200},
	} {
		b.Run(k.name, func(b *testing.B) {
			for b.Loop() {
				r.nranges = 0
				c.Dispatch(r, m, k.rcx, k.rdx, 0)
			}
		})
	}
}
