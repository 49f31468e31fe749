package checks

import (
	"errors"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"gohv/apic"
	"gohv/testguests"
	"gohv/x86"
)

// TestDividerOf pins the divide configuration encoding (SDM Vol. 3A
// Figure 11-10) for every value.
func TestDividerOf(t *testing.T) {
	for dcr, want := range map[uint64]uint64{
		0b0000: 2, 0b0001: 4, 0b0010: 8, 0b0011: 16,
		0b1000: 32, 0b1001: 64, 0b1010: 128, 0b1011: 1,
	} {
		if got := dividerOf(dcr); got != want {
			t.Errorf("dividerOf(%#b) = %d, want %d", dcr, got, want)
		}
	}
	for _, d := range timerDivides {
		if dividerOf(d.dcr) != d.by {
			t.Errorf("timerDivides: %#b is not divide by %d", d.dcr, d.by)
		}
	}
}

var testClocks = testguests.APICClocks{LAPICHz: 1_000_000_000, TSCHz: 2_000_000_000}

// TestOneShotLateness: lateness is measured from the arming TSC plus the
// count's time at the TSC's rate.
func TestOneShotLateness(t *testing.T) {
	// 1000 counts at divide 16 and 1 GHz: 16 µs = 32000 TSC ticks at 2 GHz.
	r := oneShotRun{divide: 16, count: 1000, before: 1_000_000, after: 1_000_100, fired: 1_000_000 + 32_000 + 2_000}
	if got := r.lateness(testClocks); got != time.Microsecond {
		t.Errorf("lateness %v, want 1µs", got)
	}
	r.fired = 1_000_000 + 31_000
	if got := r.lateness(testClocks); got >= 0 {
		t.Errorf("an early interrupt has lateness %v", got)
	}
	if err := (&Env{}).checkLateness("x", -2*timerEarlyTolerance); err == nil {
		t.Error("early passed")
	}
	if err := (&Env{}).checkLateness("x", timerLateBound+time.Microsecond); err == nil {
		t.Error("too late passed")
	}
	if err := (&Env{}).checkLateness("x", -timerEarlyTolerance/2); err != nil {
		t.Errorf("rounding: %v", err)
	}
}

// TestOneShotRunsPairsResultsWithTheLog: one vector-0x40 interrupt per
// run, in order, after its arming; anything else is named.
func TestOneShotRunsPairsResultsWithTheLog(t *testing.T) {
	params := []uint64{2, 0b1011, 5000, 0b0011, 300}
	s := testguests.APICState{Count: 2, Log: []testguests.APICRecord{
		{TSC: 20_000, Vector: 0x40, Depth: 1}, {TSC: 60_000, Vector: 0x40, Depth: 1}}}
	copy(s.Results[:], []uint64{10_000, 10_100, 4990, 0, 50_000, 50_100, 299, 0})
	runs, err := oneShotRuns(params, s)
	if err != nil {
		t.Fatal(err)
	}
	want := []oneShotRun{{1, 5000, 10_000, 10_100, 20_000}, {16, 300, 50_000, 50_100, 60_000}}
	if !slices.Equal(runs, want) {
		t.Errorf("runs %+v, want %+v", runs, want)
	}
	bad := s
	bad.Log = []testguests.APICRecord{s.Log[0], {TSC: 60_000, Vector: 0x41, Depth: 1}}
	if _, err := oneShotRuns(params, bad); err == nil || !strings.Contains(err.Error(), "run 1") {
		t.Errorf("a wrong vector: %v", err)
	}
	bad.Log = []testguests.APICRecord{{TSC: 10_050, Vector: 0x40, Depth: 1}, s.Log[1]}
	if _, err := oneShotRuns(params, bad); err == nil {
		t.Error("an interrupt before the arming finished passed")
	}
	bad.Log = s.Log[:1]
	if _, err := oneShotRuns(params, bad); err == nil {
		t.Error("a missing interrupt passed")
	}
}

// periodicTicks makes the TSCs of a periodic timer of period p started
// at start, the interrupt for boundary k coming late[k] after it (a
// negative entry: no interrupt for that boundary).
func periodicTicks(start uint64, p float64, late []float64) []uint64 {
	var tsc []uint64
	for k, l := range late {
		if l >= 0 {
			tsc = append(tsc, start+uint64(float64(k+1)*p+l))
		}
	}
	return tsc
}

func TestFitPeriodic(t *testing.T) {
	const start, p, hz = 1_000_000, 20_000.0, 2_000_000_000
	// Jittery lateness up to 90% of a period, with a late callback
	// followed by an on-time one (a short gap, same phase).
	late := []float64{100, 18_000, 50, 300, 2_000, 0, 17_000, 10, 600, 900}
	f, err := fitPeriodic(periodicTicks(start, p, late), start, p, hz)
	if err != nil {
		t.Fatal(err)
	}
	if f.coalesced != 0 || math.Abs(f.period/p-1) > 0.05 {
		t.Errorf("period %v, coalesced %d", f.period, f.coalesced)
	}
	if f.late[0] != 0 || f.late[len(f.late)-1] != 9*time.Microsecond {
		t.Errorf("lateness %v", f.late)
	}
	// Exact ticks fit exactly.
	f, err = fitPeriodic(periodicTicks(start, p, make([]float64, 10)), start, p, hz)
	if err != nil || f.period != p {
		t.Errorf("exact ticks: period %v, %v", f.period, err)
	}
	// A handler that ran more than a period late, then the next
	// boundary's right after it: a catch-up, not a timer too fast.
	f, err = fitPeriodic(periodicTicks(start, p, []float64{100, 22_000, 2_500, 300}), start, p, hz)
	if err != nil || f.coalesced != 0 || f.late[len(f.late)-1] != 11*time.Microsecond {
		t.Errorf("catch-up: coalesced %d, lateness %v, %v", f.coalesced, f.late, err)
	}
	// Two boundaries without their own interrupt coalesce.
	f, err = fitPeriodic(periodicTicks(start, p, []float64{5, -1, -1, 5, 5}), start, p, hz)
	if err != nil || f.coalesced != 2 {
		t.Errorf("coalesced %d, %v", f.coalesced, err)
	}
}

// TestFitPeriodicRefuses: a timer too fast (two interrupts in one period,
// or one before the first period ended) is an error, as is a tick before
// the arming.
func TestFitPeriodicRefuses(t *testing.T) {
	const start, p, hz = 1_000_000, 20_000.0, 2_000_000_000
	for name, tsc := range map[string][]uint64{
		"twice in a period": periodicTicks(start, p/2, make([]float64, 6)),
		"before a period":   {start + 100, start + 20_100},
		"before arming":     {start - 1, start + 20_000},
		"one tick":          {start + 20_000},
	} {
		if _, err := fitPeriodic(tsc, start, p, hz); err == nil {
			t.Errorf("%s: passed", name)
		}
	}
}

func TestCompareRecords(t *testing.T) {
	got := slices.Clone(eoiNestingWant)
	for i := range got {
		got[i].TSC = uint64(1000 * i)
	}
	if err := compareRecords(got, eoiNestingWant); err != nil {
		t.Error(err)
	}
	got[1].ISR &^= 1 << (0x51 - 0x40) // 0x71 nested, but 0x51 no longer in service
	if err := compareRecords(got, eoiNestingWant); err == nil || !strings.Contains(err.Error(), "interrupt 1") {
		t.Errorf("a wrong ISR snapshot: %v", err)
	}
	if err := compareRecords(got[:4], eoiNestingWant); err == nil {
		t.Error("a short log passed")
	}
}

func TestBenchSpans(t *testing.T) {
	entry, round := benchSpans([][3]uint64{{100, 150, 300}, {1000, 1020, 1100}, {500, 400, 450}})
	if !slices.Equal(entry, []uint64{0, 20, 50}) || !slices.Equal(round, []uint64{0, 100, 200}) {
		t.Errorf("entry %v round %v", entry, round)
	}
}

// apicFakes is a clock, bus and sink for one LAPIC: enough to run the
// #GP table against the model.
type apicFakes struct{ bus apic.StaticBus }

type nopTimer struct{}

func (nopTimer) Arm(int64) {}
func (nopTimer) Stop()     {}

func (*apicFakes) Now() int64                     { return 0 }
func (*apicFakes) TSC() uint64                    { return 0 }
func (*apicFakes) TSCHz() uint64                  { return 1e9 }
func (*apicFakes) NewTimer(func()) apic.HostTimer { return nopTimer{} }
func (*apicFakes) Kick()                          {}
func (f *apicFakes) LAPICs() []*apic.LAPIC        { return f.bus.LAPICs() }

// lapic makes the LAPIC as hv configures VP 0's.
func (f *apicFakes) lapic(t *testing.T) *apic.LAPIC {
	l, err := apic.New(apic.Config{BSP: true, X2APIC: true, TSCDeadline: true, SuppressEOIBroadcast: true,
		PhysAddrBits: 39, Clock: f, Bus: f, Sink: f})
	if err != nil {
		t.Fatal(err)
	}
	f.bus.Add(l)
	return l
}

// TestX2APICGPCasesFaultInTheModel: every access the reserved-bits guest
// expects to #GP does so in the apic model, in x2APIC mode, with the model
// configured as hv configures it; so a guest that sees no #GP has found
// the root's wiring, not the table, wrong.
func TestX2APICGPCasesFaultInTheModel(t *testing.T) {
	f := &apicFakes{}
	l := f.lapic(t)
	if err := l.WriteMSR(x86.MsrAPICBase, x86.APICDefaultBase|x86.APICBaseEnable|x86.APICBaseEXTD); err != nil {
		t.Fatal(err)
	}
	if err := l.WriteMSR(x86.MsrX2APICSIVR, 0x1ff); err != nil {
		t.Fatal(err)
	}
	for _, c := range x2APICGPCases {
		var err error
		if c.Write {
			err = l.WriteMSR(c.MSR, c.Value)
		} else {
			_, err = l.ReadMSR(c.MSR)
		}
		if !errors.Is(err, apic.ErrGP) {
			t.Errorf("%s: %v, want #GP", c.Name, err)
		}
	}
	if len(x2APICGPCases) > testguests.APICTableCap {
		t.Errorf("%d cases, the guest's table holds %d", len(x2APICGPCases), testguests.APICTableCap)
	}
}
