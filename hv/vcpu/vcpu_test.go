package vcpu

import (
	"fmt"
	"testing"

	"gohv/hv/vcpu/vcputest"
	"gohv/x86"
)

func TestPagesFreeReturnsEverything(t *testing.T) {
	h := vcputest.NewFakeHost()
	s := NewPages(h)
	if _, _, err := s.Alloc("a"); err != nil {
		t.Fatal(err)
	}
	pa, err := s.AllocContiguous(3, 0xff, "iopm")
	if err != nil {
		t.Fatal(err)
	}
	for i := uint64(0); i < 3; i++ {
		if h.Pages[pa+i*x86.PageSize] == nil {
			t.Fatalf("page %d of the run is not the host's", i)
		}
		if pg := h.Pages[pa+i*x86.PageSize]; pg[0] != 0xff || pg[x86.PageSize-1] != 0xff {
			t.Fatalf("page %d not filled", i)
		}
	}
	if s.Len() != 4 || len(h.Pages) != 4 {
		t.Fatalf("set holds %d, host %d", s.Len(), len(h.Pages))
	}
	if err := s.Free(); err != nil {
		t.Fatal(err)
	}
	if len(h.Pages) != 0 || s.Len() != 0 {
		t.Fatalf("%d pages left on the host after Free", len(h.Pages))
	}
}

// TestAllocContiguousSkipsBrokenRuns: a hole in the host's addresses breaks
// a run; the pages before it are given back and the run starts again.
func TestAllocContiguousSkipsBrokenRuns(t *testing.T) {
	h := vcputest.NewFakeHost()
	h.Holes[0x10_2000] = true
	s := NewPages(h)
	pa, err := s.AllocContiguous(3, 0, "run")
	if err != nil {
		t.Fatal(err)
	}
	if pa != 0x10_3000 {
		t.Fatalf("run at %#x, want 0x103000 (after the hole)", pa)
	}
	if len(h.Pages) != 3 {
		t.Fatalf("host holds %d pages, want the 3 of the run", len(h.Pages))
	}
}

func TestAllocContiguousOutOfMemoryRollsBack(t *testing.T) {
	h := vcputest.NewFakeHost()
	h.Limit = 2
	s := NewPages(h)
	if _, err := s.AllocContiguous(3, 0, "iopm"); err == nil {
		t.Fatal("3 pages from a host with 2")
	}
	if len(h.Pages) != 0 || s.Len() != 0 {
		t.Fatalf("%d pages leaked", len(h.Pages))
	}
}

func TestIDPool(t *testing.T) {
	p := NewIDPool(3)
	var got []uint32
	for i := 0; i < 3; i++ {
		id, err := p.Alloc()
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, id)
	}
	if fmt.Sprint(got) != "[1 2 3]" {
		t.Fatalf("IDs %v", got)
	}
	if _, err := p.Alloc(); err == nil {
		t.Fatal("a fourth ID from a pool of 3")
	}
	p.Release(2)
	p.Release(0) // the host's: ignored
	if id, err := p.Alloc(); err != nil || id != 2 {
		t.Fatalf("after release: %d, %v", id, err)
	}
	if _, err := p.Alloc(); err == nil {
		t.Fatal("ID 0 was handed out")
	}
}

func TestResetFXSave(t *testing.T) {
	a := make([]byte, 512)
	for i := range a {
		a[i] = 0xee
	}
	ResetFXSave(a)
	if a[0] != 0x7f || a[1] != 0x03 || a[24] != 0x80 || a[25] != 0x1f {
		t.Fatalf("FCW % x, MXCSR % x", a[0:2], a[24:28])
	}
	for i, b := range a {
		if i != 0 && i != 1 && i != 24 && i != 25 && b != 0 {
			t.Fatalf("byte %d = %#x, want 0", i, b)
		}
	}
}

// TestResetRegs checks the power-on state against SDM Vol. 3A Table 10-1.
func TestResetRegs(t *testing.T) {
	r := ResetRegs()
	if r.RIP != 0xfff0 || r.CS.Selector != 0xf000 || r.CS.Base != 0xffff_0000 || r.RFLAGS != 2 {
		t.Errorf("entry CS:IP %#x:%#x base %#x RFLAGS %#x", r.CS.Selector, r.RIP, r.CS.Base, r.RFLAGS)
	}
	if r.CR0 != 0x6000_0010 || r.CR4 != 0 || r.EFER != 0 {
		t.Errorf("CR0 %#x CR4 %#x EFER %#x", r.CR0, r.CR4, r.EFER)
	}
	if r.PAT != 0x0007_0406_0007_0406 {
		t.Errorf("PAT %#x", r.PAT)
	}
	if r.CPL() != 0 || r.LongMode() {
		t.Errorf("CPL %d long mode %v", r.CPL(), r.LongMode())
	}
	if r.DS.Limit != 0xffff || r.DS.Attrib&x86.SegP == 0 {
		t.Errorf("DS %+v", r.DS)
	}
}

func TestExceptionErrorCodes(t *testing.T) {
	if ev := Exception(x86.VectorGP, 0x18); !ev.HasError || ev.ErrorCode != 0x18 || ev.Type != EventException {
		t.Errorf("#GP: %+v", ev)
	}
	if ev := Exception(x86.VectorUD, 0); ev.HasError {
		t.Errorf("#UD carries an error code: %+v", ev)
	}
}

func TestExitKindNames(t *testing.T) {
	if len(exitNames) != int(NumExitKinds) {
		t.Fatalf("%d names for %d exit kinds", len(exitNames), NumExitKinds)
	}
	if ExitCRWrite.String() != "cr-write" || NumExitKinds.String() != "?" {
		t.Errorf("%v %v", ExitCRWrite, NumExitKinds)
	}
}
