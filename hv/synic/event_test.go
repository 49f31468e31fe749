package synic

import (
	"errors"
	"sync"
	"testing"

	"gohv/hv/tlfs"
)

// TestSignalSetsFlag: flag f of SINT n is bit f%8 of byte SIEFP + 256n +
// f/8 (TLFS "SIEF Page"); a newly set flag raises the SINT's vector, a flag
// already set merges without one.
func TestSignalSetsFlag(t *testing.T) {
	r := newRig(t, nil)
	r.enable(t)
	for _, c := range []struct {
		flag uint32
		byte uint64
		bit  uint8
	}{{0, 0, 0}, {5, 0, 5}, {9, 1, 1}, {31, 3, 7}, {32, 4, 0}, {2047, 255, 7}} {
		before := r.intr.n(sintVector)
		newly, err := r.s.Signal(2, c.flag)
		if err != nil || !newly {
			t.Fatalf("flag %d: %v %v", c.flag, newly, err)
		}
		b := r.ram.bytes(siefGPA+2*tlfs.EventFlagsSize+c.byte, 1)[0]
		if b&(1<<c.bit) == 0 {
			t.Fatalf("flag %d: byte %d is %#x", c.flag, c.byte, b)
		}
		if r.intr.n(sintVector) != before+1 {
			t.Fatalf("flag %d raised no interrupt", c.flag)
		}
		newly, err = r.s.Signal(2, c.flag)
		if err != nil || newly || r.intr.n(sintVector) != before+1 {
			t.Fatalf("flag %d again: newly %v err %v", c.flag, newly, err)
		}
	}
	if other := r.ram.bytes(siefGPA+3*tlfs.EventFlagsSize, 256); string(other) != string(make([]byte, 256)) {
		t.Fatal("SINT 3's flags touched")
	}
	if st := r.s.Stats(); st.EventsSet != 6 || st.EventsMerged != 6 {
		t.Fatalf("stats %+v", st)
	}
}

// TestSignalRefusals: bad arguments, a disabled SynIC or SIEF page, a masked
// SINT (TLFS "Event Flag Delivery": INVALID_SYNIC_STATE, and no flag set).
func TestSignalRefusals(t *testing.T) {
	r := newRig(t, nil)
	r.enable(t)
	for _, c := range []struct {
		sint uint8
		flag uint32
	}{{16, 0}, {2, 2048}, {2, 1 << 31}} {
		if _, err := r.s.Signal(c.sint, c.flag); !errors.Is(err, ErrBadArgument) {
			t.Fatalf("Signal(%d, %d): %v", c.sint, c.flag, err)
		}
	}
	r.wr(t, tlfs.MsrSINT0+2, tlfs.SINTMasked|sintVector)
	if _, err := r.s.Signal(2, 1); !errors.Is(err, ErrMasked) || Status(err) != tlfs.StatusInvalidSynicState {
		t.Fatalf("masked: %v", err)
	}
	if r.ram.bytes(siefGPA+2*tlfs.EventFlagsSize, 1)[0] != 0 {
		t.Fatal("flag set for a masked SINT")
	}
	r.wr(t, tlfs.MsrSINT0+2, sintVector)
	r.wr(t, tlfs.MsrSIEFP, siefGPA)
	if _, err := r.s.Signal(2, 1); !errors.Is(err, ErrDisabled) {
		t.Fatalf("SIEFP off: %v", err)
	}
	r.wr(t, tlfs.MsrSIEFP, siefGPA|1)
	r.wr(t, tlfs.MsrSControl, 0)
	if _, err := r.s.Signal(2, 1); !errors.Is(err, ErrDisabled) {
		t.Fatalf("SCONTROL off: %v", err)
	}
	if r.intr.total() != 0 || r.s.Stats().Refused != 3 {
		t.Fatalf("interrupts %d, stats %+v", r.intr.total(), r.s.Stats())
	}
}

// TestSignalPolling: a polling SINT gets its flags without interrupts.
func TestSignalPolling(t *testing.T) {
	r := newRig(t, nil)
	r.enable(t)
	r.wr(t, tlfs.MsrSINT0+2, tlfs.SINTPolling|sintVector)
	if newly, err := r.s.Signal(2, 7); !newly || err != nil {
		t.Fatal(newly, err)
	}
	if r.intr.total() != 0 || r.ram.bytes(siefGPA+2*tlfs.EventFlagsSize, 1)[0] != 0x80 {
		t.Fatal("polling SINT raised an interrupt or lost the flag")
	}
}

// TestSignalRacesGuestClear: the guest clears flags with an atomic
// test-and-clear while the root signals; every signal that newly set the
// flag is matched by one clear that saw it (or by the flag left set), so
// none is lost and none is counted twice.
func TestSignalRacesGuestClear(t *testing.T) {
	r := newRig(t, nil)
	r.enable(t)
	word := uint64(siefGPA + 2*tlfs.EventFlagsSize)
	const flag, signals = 3, 20000
	var wg sync.WaitGroup
	var newlySet int
	wg.Add(1)
	go func() {
		defer wg.Done()
		for range signals {
			if newly, err := r.s.Signal(2, flag); err != nil {
				t.Error(err)
				return
			} else if newly {
				newlySet++
			}
		}
	}()
	clears := 0
	for done := false; !done; {
		// The guest's sync_test_and_clear_bit.
		for {
			old := r.ram.u32(word)
			if old&(1<<flag) == 0 {
				break
			}
			if ok, _ := r.ram.CmpxchgU32(word, old, old&^(1<<flag)); ok {
				clears++
				break
			}
		}
		if r.s.Stats().EventsSet+r.s.Stats().EventsMerged == signals {
			done = true
		}
	}
	wg.Wait()
	left := 0
	if r.ram.u32(word)&(1<<flag) != 0 {
		left = 1
	}
	if newlySet != clears+left || r.intr.n(sintVector) != newlySet {
		t.Fatalf("newly set %d, cleared %d + left %d, interrupts %d", newlySet, clears, left, r.intr.n(sintVector))
	}
}
