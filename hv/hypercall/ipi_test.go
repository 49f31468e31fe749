package hypercall

import (
	"testing"

	"gohv/hv/tlfs"
)

// TestSendSyntheticClusterIPI: the plain form fast (vector in RDX, mask
// in R8) and from memory, the Ex form with a sparse VP set as its
// variable header; a vector outside 16-255, a target VTL or reserved
// bytes are refused before the handler.
func TestSendSyntheticClusterIPI(t *testing.T) {
	m := &fakeMem{}
	r := &recorder{status: tlfs.StatusSuccess}
	c := &Caller{VP: 2}
	call := func(rcx, rdx, r8 uint64) tlfs.Status {
		t.Helper()
		rax, _, done := c.Dispatch(r, m, rcx, rdx, r8)
		if !done {
			t.Fatal("not done")
		}
		return tlfs.Status(rax)
	}
	fast := uint64(tlfs.HvCallSendSyntheticClusterIpi) | tlfs.ControlFast
	if st := call(fast, 0xfd, 0b1010); st != tlfs.StatusSuccess || r.ipi.Vector != 0xfd || !r.ipi.Processors.Contains(3) || r.ipi.Processors.Contains(0) || r.vp != 2 {
		t.Fatalf("fast: %v %+v", st, r.ipi)
	}
	m.put64(inputGPA, 0xfc, 0b1)
	if st := call(tlfs.HvCallSendSyntheticClusterIpi, inputGPA, 0); st != tlfs.StatusSuccess || r.ipi.Vector != 0xfc || !r.ipi.Processors.Contains(0) {
		t.Fatalf("slow: %v %+v", st, r.ipi)
	}
	m.put64(inputGPA, 0xfb, tlfs.GenericSetSparse4K, 0b10, 0b10)
	if st := call(tlfs.HvCallSendSyntheticClusterIpiEx|1<<tlfs.ControlVarHeaderShift, inputGPA, 0); st != tlfs.StatusSuccess || !r.ipi.Processors.Contains(65) || r.ipi.Processors.Contains(1) {
		t.Fatalf("Ex: %v %+v", st, r.ipi)
	}
	calls := r.calls
	for name, c := range map[string]struct {
		rcx, rdx, r8 uint64
		want         tlfs.Status
	}{
		"vector 15":             {fast, 0x0f, 1, tlfs.StatusInvalidHypercallInput},
		"vector 256":            {fast, 0x100, 1, tlfs.StatusInvalidHypercallInput},
		"target VTL 1":          {fast, 0xfd | 1<<32, 1, tlfs.StatusInvalidHypercallInput},
		"reserved":              {fast, 0xfd | 1<<56, 1, tlfs.StatusInvalidHypercallInput},
		"Ex fast (no XMM form)": {uint64(tlfs.HvCallSendSyntheticClusterIpiEx) | tlfs.ControlFast, 0xfd, 0, tlfs.StatusInvalidHypercallInput},
		"Ex banks ≠ header":     {tlfs.HvCallSendSyntheticClusterIpiEx | 2<<tlfs.ControlVarHeaderShift, inputGPA, 0, tlfs.StatusInvalidHypercallInput},
		"a rep count":           {tlfs.HvCallSendSyntheticClusterIpi | 1<<tlfs.ControlRepCountShift, inputGPA, 0, tlfs.StatusInvalidHypercallInput},
		"input outside RAM":     {tlfs.HvCallSendSyntheticClusterIpi, holeGPA, 0, tlfs.StatusInvalidAlignment},
	} {
		if st := call(c.rcx, c.rdx, c.r8); st != c.want {
			t.Errorf("%s: %v, want %v", name, st, c.want)
		}
	}
	if r.calls != calls {
		t.Errorf("the handler saw %d refused calls", r.calls-calls)
	}
}
