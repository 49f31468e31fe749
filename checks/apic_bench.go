package checks

import (
	"fmt"
	"sort"
	"time"

	"gohv/hv"
	"gohv/testguests"
)

// apicBenchKind is one interrupt path APICBench measures (its parameter 1).
type apicBenchKind struct {
	kind  uint64
	name  string
	n     int    // iterations
	what  string // what the median is of
	timer bool   // a TSC-deadline: latency from the deadline, no round trip
}

var apicBenchKinds = []apicBenchKind{
	{1, "apic-self-ipi-xapic", 2000, "ICR write to the handler's first instruction, EOI through the page, back to the interrupted code", false},
	{2, "apic-self-ipi-x2apic", 2000, "SELF_IPI write to the handler's first instruction, EOI through the MSR, back to the interrupted code", false},
	{3, "apic-timer-halted", 200, "TSC deadline to the handler's first instruction, the VP halted", true},
	{4, "apic-timer-spinning", 200, "TSC deadline to the handler's first instruction, the VP running guest code", true},
}

// apicBenchDeadline is how far ahead each timer iteration sets its TSC
// deadline: longer than the exits that arm it.
const apicBenchDeadline = 100 * time.Microsecond

// benchAPIC measures the interrupt paths of the local APIC in guest TSC
// cycles: a self-IPI's round trip (and its delivery to the handler) and a
// timer's latency from expiry to the handler, as medians over many
// iterations. The handler's entry is its first RDTSC, a few instructions
// in (the vector's stub and two pushes).
func benchAPIC(env *Env) error {
	if env.hv == nil {
		if err := openHypervisor(env); err != nil {
			return err
		}
	}
	c := apicClocks()
	fmt.Fprintf(env.Out, "gohv: bench apic measured on %s\n", env.hv.Backend.Name())
	for _, k := range apicBenchKinds {
		d := uint64(apicBenchDeadline) * c.TSCHz / 1e9
		p, r, s, err := env.runAPIC("apicbench", testguests.APICBench, func(p *hv.Partition) error {
			return testguests.SetAPICParams(p.Mem, uint64(k.n), k.kind, d)
		}, 5*time.Minute)
		if err != nil {
			destroy(p)
			return err
		}
		if err := apicPassed(r, s, k.name); err != nil {
			p.Destroy()
			return err
		}
		it, err := testguests.ReadAPICBench(p.Mem, k.n)
		st := p.VP(0).LAPIC().Stats()
		p.Destroy()
		if err != nil {
			return err
		}
		entry, round := benchSpans(it)
		if k.timer {
			fmt.Fprintf(env.Out, "gohv: measure %s %d tsc-cycles median %s over %d iterations (p10 %d, p90 %d; %v at the TSC's rate; %d timer expiries)\n",
				k.name, entry[k.n/2], k.what, k.n, entry[k.n/10], entry[k.n*9/10],
				ticksToDuration(int64(entry[k.n/2]), c.TSCHz).Round(time.Microsecond), st.TimerFired)
			continue
		}
		fmt.Fprintf(env.Out, "gohv: measure %s %d tsc-cycles median round trip, %s, over %d iterations (p10 %d, p90 %d)\n",
			k.name, round[k.n/2], k.what, k.n, round[k.n/10], round[k.n*9/10])
		fmt.Fprintf(env.Out, "gohv: measure %s-delivery %d tsc-cycles median from the write to the handler's first instruction (p10 %d, p90 %d)\n",
			k.name, entry[k.n/2], entry[k.n/10], entry[k.n*9/10])
	}
	return nil
}

// benchSpans turns APICBench's (trigger, handler entry, return) TSCs into
// sorted spans: trigger to entry, and trigger to return. A span the guest
// wrote backwards counts as 0 (the guest's numbers are not trusted).
func benchSpans(it [][3]uint64) (entry, round []uint64) {
	entry, round = make([]uint64, len(it)), make([]uint64, len(it))
	for i, t := range it {
		if t[1] >= t[0] {
			entry[i] = t[1] - t[0]
		}
		if t[2] >= t[0] {
			round[i] = t[2] - t[0]
		}
	}
	sort.Slice(entry, func(a, b int) bool { return entry[a] < entry[b] })
	sort.Slice(round, func(a, b int) bool { return round[a] < round[b] })
	return entry, round
}
