package tlfs

import "testing"

// TestSynICMoreMatchesTheTLFS pins the SynIC and synthetic-timer masks to
// the bit ranges the TLFS tables give, spelled out bit by bit.
func TestSynICMoreMatchesTheTLFS(t *testing.T) {
	bitsIn := func(lo, hi uint) uint64 {
		var m uint64
		for b := lo; b <= hi; b++ {
			m |= 1 << b
		}
		return m
	}
	for _, c := range []struct {
		name      string
		got, want uint64
	}{
		{"SINT valid vectors start at 16", SINTMinVector, 16},
		{"SINTx RsvdP 15:8 and 63:19", SINTReservedP, bitsIn(8, 15) | bitsIn(19, 63)},
		{"STIMERx_CONFIG RsvdZ 15:13 and 63:20", STimerReserved, bitsIn(13, 15) | bitsIn(20, 63)},
		{"SIMP/SIEFP RsvdP 11:1", OverlayReservedP, bitsIn(1, 11)},
	} {
		if c.got != c.want {
			t.Errorf("%s: %#x, want %#x", c.name, c.got, c.want)
		}
	}
	// The defined fields and the reserved bits partition each register.
	sintDefined := uint64(SINTVectorMask | SINTMasked | SINTAutoEOI | SINTPolling)
	if sintDefined&SINTReservedP != 0 || sintDefined|SINTReservedP != ^uint64(0) {
		t.Errorf("SINTx fields %#x and RsvdP %#x do not partition the register", sintDefined, SINTReservedP)
	}
	stimerDefined := uint64(STimerEnable | STimerPeriodic | STimerLazy | STimerAutoEnable | STimerVectorMask | STimerDirectMode | STimerSINTMask)
	if stimerDefined&STimerReserved != 0 || stimerDefined|STimerReserved != ^uint64(0) {
		t.Errorf("STIMERx_CONFIG fields %#x and RsvdZ %#x do not partition the register", stimerDefined, STimerReserved)
	}
	overlayDefined := uint64(OverlayEnable | ^uint64(1<<OverlayGPFNShift-1))
	if overlayDefined&OverlayReservedP != 0 || overlayDefined|OverlayReservedP != ^uint64(0) {
		t.Errorf("SIMP fields and RsvdP do not partition the register")
	}
}
