package checks

import (
	"math"
	"slices"
	"testing"
	"time"

	"gohv/hv/tlfs"
	"gohv/testguests"
)

// TestRefRate: a counter at exactly 10 MHz against a 2.5 GHz TSC, read at
// known points inside its brackets, is bounded on both sides; brackets
// out of order are refused.
func TestRefRate(t *testing.T) {
	const hz = 2_500_000_000
	// Reads at TSC 1,000,000 and 51,000,000 (20 ms apart): counts 4,000 and
	// 204,000. Brackets of 500 ticks around each.
	lo, hi, mid, err := refRate(999_800, 4_000, 1_000_300, 50_999_700, 204_000, 51_000_200, hz)
	if err != nil {
		t.Fatal(err)
	}
	if !(lo <= tlfs.ReferenceHz && tlfs.ReferenceHz <= hi) {
		t.Errorf("10 MHz outside [%f, %f]", lo, hi)
	}
	if math.Abs(mid-tlfs.ReferenceHz) > 200 {
		t.Errorf("mid %f", mid)
	}
	// A counter at 11 MHz is outside the bounds.
	lo, hi, _, _ = refRate(999_800, 4_000, 1_000_300, 50_999_700, 224_000, 51_000_200, hz)
	if lo <= tlfs.ReferenceHz*1.05 {
		t.Errorf("an 11 MHz counter reads [%f, %f]", lo, hi)
	}
	for _, bad := range [][6]uint64{
		{10, 1, 5, 20, 2, 30},  // a bracket backwards
		{10, 1, 20, 15, 2, 30}, // the reads overlap
		{10, 5, 12, 20, 5, 30}, // the counter stood still
	} {
		if _, _, _, err := refRate(bad[0], bad[1], bad[2], bad[3], bad[4], bad[5], hz); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
}

// TestRefPageInverse: tscAt is the first TSC at which the page reaches a
// reference time, for the TSC rates gohv meets and offsets of both signs.
func TestRefPageInverse(t *testing.T) {
	for _, hz := range []uint64{1_000_000_000, 2_599_999_000, 3_481_167_300} {
		scale := tlfs.RefTSCScale(hz)
		for _, offset := range []int64{0, -8_409_606, 12_345} {
			g := refPage{scale, offset}
			for _, ref := range []uint64{uint64(max(offset, 0)) + 1, 794_077, 1_000_000_007, 1 << 40} {
				tsc, ok := g.tscAt(ref)
				if !ok {
					t.Fatalf("hz %d offset %d: no TSC for %d", hz, offset, ref)
				}
				if g.ref(tsc) < ref || tsc > 0 && g.ref(tsc-1) >= ref {
					t.Errorf("hz %d offset %d ref %d: TSC %d gives %d, the one before %d", hz, offset, ref, tsc, g.ref(tsc), g.ref(tsc-1))
				}
			}
		}
	}
	if _, ok := (refPage{}).tscAt(5); ok {
		t.Error("a page with scale 0 gave a TSC")
	}
	// A time the page reaches only past 2^64 TSC ticks.
	g := refPage{tlfs.RefTSCScale(1_000_000_000), 0}
	if _, ok := g.tscAt(1 << 62); ok {
		t.Error("a reference time past the TSC's range gave a TSC")
	}
}

func TestPeriodicExpirations(t *testing.T) {
	const p = 100_000
	if n, err := periodicExpirations([]uint64{5 * p, 6 * p, 7 * p}, p); err != nil || n != 0 {
		t.Errorf("consecutive: %d, %v", n, err)
	}
	if n, err := periodicExpirations([]uint64{5 * p, 6 * p, 9 * p}, p); err != nil || n != 2 {
		t.Errorf("two skipped: %d, %v", n, err)
	}
	for _, bad := range [][]uint64{{5 * p, 5 * p}, {5 * p, 6*p + 1}, {6 * p, 5 * p}} {
		if _, err := periodicExpirations(bad, p); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
}

// TestTimerLatencies: a handler TSC after the expiry's TSC is its latency;
// one a rounding tick early counts as 0; one before the expiry fails.
func TestTimerLatencies(t *testing.T) {
	g := refPage{tlfs.RefTSCScale(1_000_000_000), 0} // 100 TSC ticks per reference tick
	at, _ := g.tscAt(5000)
	d, err := timerLatencies([][]uint64{{5000, at + 700}, {5000, at + 300}, {5000, at - 1}}, g)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(d, []uint64{0, 300, 700}) {
		t.Errorf("latencies %v", d)
	}
	if _, err := timerLatencies([][]uint64{{5000, at - 500}}, g); err == nil {
		t.Error("a handler 5 reference ticks before its expiry passed")
	}
}

func TestRefLate(t *testing.T) {
	if d := refLate(1_000_010, 1_000_000); d != time.Microsecond {
		t.Errorf("10 ticks late: %v", d)
	}
	if d := refLate(999_990, 1_000_000); d != -time.Microsecond {
		t.Errorf("10 ticks early: %v", d)
	}
}

// TestHostileTablesFit: the hostile tables fit the guests' tables and
// results, and each case has a name of its own (a failure names its case).
func TestHostileTablesFit(t *testing.T) {
	calls, msrs := hostileCalls(), hostileMSRs()
	if len(calls) > testguests.HVTableResults || len(msrs) > testguests.HVTableResults {
		t.Fatalf("%d hypercall and %d MSR cases, room for %d", len(calls), len(msrs), testguests.HVTableResults)
	}
	names := map[string]bool{}
	for _, c := range calls {
		if names[c.Name] {
			t.Errorf("hypercall case %q twice", c.Name)
		}
		names[c.Name] = true
		if tlfs.Status(c.Want) == tlfs.StatusSuccess {
			t.Errorf("hypercall case %q expects success: not hostile", c.Name)
		}
	}
	names = map[string]bool{}
	for _, c := range msrs {
		if names[c.Name] {
			t.Errorf("MSR case %q twice", c.Name)
		}
		names[c.Name] = true
		if c.MSR < tlfs.MsrRangeFirst || c.MSR > tlfs.MsrRangeLast {
			t.Errorf("MSR case %q: %#x is not a synthetic MSR", c.Name, c.MSR)
		}
	}
	// The guest relies on the table leaving the hypercall page in RAM and
	// SINT2 unmasked on its vector (its post and signal afterwards).
	var hc, sint2 uint64
	for _, c := range msrs {
		if c.Op != testguests.MSRWriteReadOK {
			continue
		}
		switch c.MSR {
		case tlfs.MsrHypercall:
			hc = c.Value
		case tlfs.MsrSINT0 + 2:
			sint2 = c.Value
		}
	}
	if hc != testguests.HVHypercallPage|tlfs.OverlayEnable || sint2 != testguests.HVSINT2Vector {
		t.Errorf("the table leaves HYPERCALL %#x and SINT2 %#x", hc, sint2)
	}
}

// TestCrashCasesDistinct: each crash case expects a distinct report.
func TestCrashCasesDistinct(t *testing.T) {
	seen := map[uint64]bool{}
	for _, c := range crashCases {
		if seen[c.p[0]] {
			t.Errorf("two crash cases with P0 %#x", c.p[0])
		}
		seen[c.p[0]] = true
		if c.ctl&tlfs.CrashNotify == 0 {
			t.Errorf("%s: no CrashNotify", c.name)
		}
	}
}

func TestWorstTickAndStormPhase(t *testing.T) {
	// Period 100 from 1000: ticks 2 late, 30 late, 5 late.
	if got := worstTick([]uint64{1102, 1230, 1305}, 1000, 100); got != 1230 {
		t.Errorf("worst tick %d, want 1230", got)
	}
	var s testguests.APICState
	s.Results[2], s.Results[3], s.Results[6], s.Results[7] = 100, 200, 201, 300
	for _, c := range []struct {
		t    uint64
		want string
	}{{50, "flood and EOM storm"}, {150, "period-1 direct timer"}, {250, "period-1 message timer"}, {400, "end"}} {
		if got := stormPhase(s, c.t); got != c.want {
			t.Errorf("TSC %d: %q, want %q", c.t, got, c.want)
		}
	}
}
