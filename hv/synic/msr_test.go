package synic

import (
	"errors"
	"testing"

	"gohv/hv/tlfs"
)

// TestResetValues: a new SynIC reads as the TLFS says a VP starts (TLFS
// 11.8: SCONTROL, SIEFP, SIMP 0; SVERSION 1; EOM reads 0; every SINT
// 0x10000, masked; TLFS "Synthetic Timer MSRs": every timer 0).
func TestResetValues(t *testing.T) {
	r := newRig(t, nil)
	want := map[uint32]uint64{
		tlfs.MsrSControl: 0, tlfs.MsrSVersion: 1, tlfs.MsrSIEFP: 0, tlfs.MsrSIMP: 0, tlfs.MsrEOM: 0,
	}
	for i := range uint32(tlfs.SINTCount) {
		want[tlfs.MsrSINT0+i] = 0x10000
	}
	for msr := uint32(tlfs.MsrSTimer0Config); msr <= tlfs.MsrSTimer3Count; msr++ {
		want[msr] = 0
	}
	for msr, v := range want {
		if got := r.rd(t, msr); got != v {
			t.Errorf("MSR %#x reads %#x, want %#x", msr, got, v)
		}
	}
}

// TestHandlesMSR: exactly the SynIC and synthetic-timer MSRs.
func TestHandlesMSR(t *testing.T) {
	for _, c := range []struct {
		msr  uint32
		want bool
	}{
		{0x4000_007f, false}, {tlfs.MsrSControl, true}, {tlfs.MsrSVersion, true}, {tlfs.MsrSIEFP, true},
		{tlfs.MsrSIMP, true}, {tlfs.MsrEOM, true}, {0x4000_0085, false}, {0x4000_008f, false},
		{tlfs.MsrSINT0, true}, {tlfs.MsrSINT15, true}, {0x4000_00a0, false}, {0x4000_00af, false},
		{tlfs.MsrSTimer0Config, true}, {tlfs.MsrSTimer3Count, true}, {0x4000_00b8, false},
		{tlfs.MsrGuestOSID, false}, {tlfs.MsrTimeRefCount, false}, {0x800, false},
	} {
		if got := HandlesMSR(c.msr); got != c.want {
			t.Errorf("HandlesMSR(%#x) = %v, want %v", c.msr, got, c.want)
		}
		if _, err := newRig(t, nil).s.ReadMSR(c.msr); (err == nil) != c.want {
			t.Errorf("ReadMSR(%#x): %v", c.msr, err)
		}
	}
}

// TestMSRWrites is the register state machine: each write's outcome and
// what reads back. RsvdP bits are kept; RsvdZ bits, SVERSION and illegal
// vectors raise #GP and change nothing.
func TestMSRWrites(t *testing.T) {
	const stimer0, count0 = tlfs.MsrSTimer0Config, tlfs.MsrSTimer0Count
	for _, c := range []struct {
		name   string
		direct bool // Config.DirectTimers
		msr    uint32
		v      uint64
		err    error  // nil: accepted
		read   uint64 // what the MSR reads after the write
	}{
		{"SCONTROL enable", false, tlfs.MsrSControl, 1, nil, 1},
		{"SCONTROL RsvdP kept", false, tlfs.MsrSControl, ^uint64(0), nil, ^uint64(0)},
		{"SVERSION read-only", false, tlfs.MsrSVersion, 1, ErrReadOnly, 1},
		{"SIMP RsvdP kept", false, tlfs.MsrSIMP, simpGPA | tlfs.OverlayReservedP | 1, nil, simpGPA | tlfs.OverlayReservedP | 1},
		{"SIEFP disabled with a GPFN", false, tlfs.MsrSIEFP, siefGPA, nil, siefGPA},
		{"SIMP beyond any RAM", false, tlfs.MsrSIMP, 0xffff_ffff_ffff_f001, nil, 0xffff_ffff_ffff_f001},
		{"EOM 0", false, tlfs.MsrEOM, 0, nil, 0},
		{"EOM RsvdZ", false, tlfs.MsrEOM, 1, ErrEOMReserved, 0},
		{"SINT vector 0xf3", false, tlfs.MsrSINT0 + 2, 0xf3, nil, 0xf3},
		{"SINT vector 16", false, tlfs.MsrSINT0 + 2, 16, nil, 16},
		{"SINT vector 15 unmasked", false, tlfs.MsrSINT0 + 2, 15, ErrSINTVector, 0x10000},
		{"SINT vector 0 unmasked", false, tlfs.MsrSINT0 + 2, 0, ErrSINTVector, 0x10000},
		{"SINT vector 15 polling", false, tlfs.MsrSINT0 + 2, 15 | tlfs.SINTPolling, ErrSINTVector, 0x10000},
		{"SINT vector 0 masked", false, tlfs.MsrSINT0 + 2, tlfs.SINTMasked, nil, tlfs.SINTMasked},
		{"SINT masked auto-EOI polling", false, tlfs.MsrSINT0, 0x7_00f3, nil, 0x7_00f3},
		{"SINT RsvdP kept", false, tlfs.MsrSINT15, tlfs.SINTReservedP | tlfs.SINTMasked | 5, nil, tlfs.SINTReservedP | tlfs.SINTMasked | 5},
		{"STIMER config Linux direct", true, stimer0, 0x1ed9, nil, 0x1ed9},
		{"STIMER config Linux message", false, stimer0, 0x20009, nil, 0x20009},
		{"STIMER config RsvdZ 13", false, stimer0, 1 << 13, ErrTimerReserved, 0},
		{"STIMER config RsvdZ 20", false, stimer0, 1 << 20, ErrTimerReserved, 0},
		{"STIMER config RsvdZ 63", false, stimer0, 1 << 63, ErrTimerReserved, 0},
		{"STIMER direct not advertised", false, stimer0, 0x1ed0, ErrNoDirectTimers, 0},
		{"STIMER direct vector 15", true, stimer0, 0x10f0, ErrTimerVector, 0},
		{"STIMER message SINT 0 enabled: disabled", false, stimer0, tlfs.STimerEnable, nil, 0},
		{"STIMER direct SINT 0 enabled", true, stimer0, 0x1201, nil, 0x1201},
		{"STIMER count any value", false, count0, ^uint64(0), nil, ^uint64(0)},
		{"STIMER3 count", false, tlfs.MsrSTimer3Count, 42, nil, 42},
		{"not a SynIC MSR", false, 0x4000_0085, 0, ErrNotSynICMSR, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := newRig(t, func(cfg *Config) { cfg.DirectTimers = c.direct })
			err := r.s.WriteMSR(c.msr, c.v)
			if c.err == nil && err != nil || c.err != nil && !errors.Is(err, c.err) {
				t.Fatalf("WriteMSR(%#x, %#x) = %v, want %v", c.msr, c.v, err, c.err)
			}
			if err != nil && !errors.Is(err, ErrGP) {
				t.Fatalf("%v does not wrap ErrGP", err)
			}
			if c.msr == 0x4000_0085 {
				return
			}
			if got := r.rd(t, c.msr); got != c.read {
				t.Fatalf("reads %#x, want %#x", got, c.read)
			}
		})
	}
}

// TestFailedWriteChangesNothing: a #GP write leaves a programmed register
// as it was.
func TestFailedWriteChangesNothing(t *testing.T) {
	r := newRig(t, nil)
	r.wr(t, tlfs.MsrSINT0+2, 0x200f3)
	if err := r.s.WriteMSR(tlfs.MsrSINT0+2, 0x5); !errors.Is(err, ErrSINTVector) {
		t.Fatal(err)
	}
	if got := r.rd(t, tlfs.MsrSINT0+2); got != 0x200f3 {
		t.Fatalf("SINT2 %#x after a refused write", got)
	}
	if !r.intr.isAutoEOI(0xf3) {
		t.Fatal("refused write removed the auto-EOI mark")
	}
	r.wr(t, tlfs.MsrSTimer0Config, 0x20008)
	if err := r.s.WriteMSR(tlfs.MsrSTimer0Config, 0x20008|1<<40); err == nil {
		t.Fatal("RsvdZ accepted")
	}
	if got := r.rd(t, tlfs.MsrSTimer0Config); got != 0x20008 {
		t.Fatalf("STIMER0_CONFIG %#x after a refused write", got)
	}
}

// TestOverlayEnableClearsPage: enabling SIMP or SIEFP, or moving an
// enabled page, clears the page; rewriting the same enabled value does
// not (the guest's flags and messages stay).
func TestOverlayEnableClearsPage(t *testing.T) {
	for _, msr := range []uint32{tlfs.MsrSIMP, tlfs.MsrSIEFP} {
		r := newRig(t, nil)
		r.ram.fill(simpGPA, 4096, 0xaa)
		r.ram.fill(siefGPA, 4096, 0xbb)
		r.wr(t, msr, simpGPA) // disabled: nothing cleared
		if r.ram.bytes(simpGPA, 1)[0] != 0xaa {
			t.Fatalf("MSR %#x: disabled write cleared the page", msr)
		}
		r.wr(t, msr, simpGPA|1)
		for _, b := range r.ram.bytes(simpGPA, 4096) {
			if b != 0 {
				t.Fatalf("MSR %#x: page not cleared on enable", msr)
			}
		}
		r.ram.fill(simpGPA, 4096, 0xaa)
		r.wr(t, msr, simpGPA|1|0x10) // same page, RsvdP changed
		if r.ram.bytes(simpGPA, 1)[0] != 0xaa {
			t.Fatalf("MSR %#x: rewrite of the enabled page cleared it", msr)
		}
		r.wr(t, msr, siefGPA|1) // move
		if r.ram.bytes(siefGPA, 1)[0] != 0 || r.ram.bytes(simpGPA, 1)[0] != 0xaa {
			t.Fatalf("MSR %#x: move cleared the wrong page", msr)
		}
		if r.s.Stats().BadPages != 0 {
			t.Fatal("bad page counted")
		}
	}
}

// TestOverlayOutsideRAM: SIMP and SIEFP pointing at MMIO or past RAM are
// accepted and read back (TLFS "SIMP Register"); the enable counts a bad page,
// and messages and events for them are dropped, counted, and reported as
// success to a sender.
func TestOverlayOutsideRAM(t *testing.T) {
	for _, page := range []uint64{holeGPA, ramSize, 1 << 51} {
		r := newRig(t, nil)
		r.enable(t)
		r.wr(t, tlfs.MsrSIMP, page|1)
		r.wr(t, tlfs.MsrSIEFP, page|1)
		if got := r.rd(t, tlfs.MsrSIMP); got != page|1 {
			t.Fatalf("SIMP reads %#x", got)
		}
		if st := r.s.Stats(); st.BadPages != 2 {
			t.Fatalf("page %#x: bad pages %d, want 2", page, st.BadPages)
		}
		err := r.s.Post(2, 1, 0, []byte("lost"))
		if !errors.Is(err, ErrNoPage) || Status(err) != tlfs.StatusSuccess {
			t.Fatalf("Post: %v (status %v)", err, Status(err))
		}
		if _, err := r.s.Signal(2, 3); !errors.Is(err, ErrNoPage) {
			t.Fatalf("Signal: %v", err)
		}
		st := r.s.Stats()
		if st.Dropped != 1 || st.EventsDropped != 1 || r.intr.total() != 0 {
			t.Fatalf("page %#x: stats %+v, interrupts %d", page, st, r.intr.total())
		}
		checkConservation(t, r.s)
	}
}

// TestAutoEOIMarks: the Interrupter hears of exactly the vectors of unmasked,
// non-polling SINTs with AutoEOI (TLFS "SINTx Registers"), as they change,
// and Reset takes the marks back.
func TestAutoEOIMarks(t *testing.T) {
	r := newRig(t, nil)
	sint2, sint3 := uint32(tlfs.MsrSINT0+2), uint32(tlfs.MsrSINT0+3)
	r.wr(t, sint2, tlfs.SINTAutoEOI|tlfs.SINTMasked|0xf3)
	if r.intr.isAutoEOI(0xf3) {
		t.Fatal("masked SINT marked its vector auto-EOI")
	}
	r.wr(t, sint2, tlfs.SINTAutoEOI|0xf3) // Linux without the deprecate-AutoEOI hint
	if !r.intr.isAutoEOI(0xf3) {
		t.Fatal("auto-EOI SINT not marked")
	}
	r.wr(t, sint3, 0xf3) // shares the vector without AutoEOI: still auto-EOI
	r.wr(t, sint2, tlfs.SINTAutoEOI|tlfs.SINTPolling|0xf3)
	if r.intr.isAutoEOI(0xf3) {
		t.Fatal("polling SINT kept its vector auto-EOI")
	}
	r.wr(t, sint2, tlfs.SINTAutoEOI|0xf3)
	r.wr(t, sint3, tlfs.SINTAutoEOI|0x40)
	marks := r.intr.marks
	r.wr(t, sint3, tlfs.SINTAutoEOI|0x40) // no change: no call
	if r.intr.marks != marks {
		t.Fatal("unchanged SINT write re-marked")
	}
	r.s.Reset()
	if r.intr.isAutoEOI(0xf3) || r.intr.isAutoEOI(0x40) {
		t.Fatal("Reset left auto-EOI marks")
	}
}

// TestErrorsNameTheCheck: #GP errors say which rule refused the write.
func TestErrorsNameTheCheck(t *testing.T) {
	r := newRig(t, nil)
	err := r.s.WriteMSR(tlfs.MsrSINT0, 3)
	if err == nil || err.Error() != "synic: #GP(0): SINTx unmasked with a vector below 16" {
		t.Fatalf("error %q", err)
	}
	if !r.s.HandlesMSR(tlfs.MsrEOM) || r.s.HandlesMSR(tlfs.MsrHypercall) {
		t.Fatal("method HandlesMSR disagrees with the function")
	}
	if r.s.Queued(16) != 0 || r.s.VP() != 0 {
		t.Fatal("Queued(16) or VP")
	}
}

// TestNewRefusesBadConfig: a Config without its seams or with a queue
// depth out of range is a wiring bug: New panics.
func TestNewRefusesBadConfig(t *testing.T) {
	r := newRig(t, nil)
	good := Config{Memory: r.ram, Interrupter: r.intr, Clock: r.clock}
	for name, c := range map[string]Config{
		"no memory":      {Interrupter: r.intr, Clock: r.clock},
		"no interrupter": {Memory: r.ram, Clock: r.clock},
		"no clock":       {Memory: r.ram, Interrupter: r.intr},
		"depth -1":       func() Config { c := good; c.QueueDepth = -1; return c }(),
		"depth too deep": func() Config { c := good; c.QueueDepth = MaxQueueDepth + 1; return c }(),
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: New did not panic", name)
				}
			}()
			New(c)
		}()
	}
}
