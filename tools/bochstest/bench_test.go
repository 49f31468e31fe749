package bochstest

import (
	"testing"

	"gohv/tools/bochs"
)

// BenchmarkExits boots the image with `bench` under Bochs and reports each
// "gohv: measure" line — boot cost, trapped system calls, and the CPUID,
// VMCALL and port-OUT exit round trips on VT-x — as a benchmark metric.
// With clock sync=none and ips=10^9 the guest's TSC counts one cycle per
// emulated instruction, so the figures repeat like QEMU's -icount ones.
func BenchmarkExits(b *testing.B) {
	for b.Loop() {
		r := boot(b, "bench", bochs.Config{})
		if !r.Passed() {
			for _, m := range r.Verdict.Measures {
				b.Logf("measure %s %g %s %s", m.Name, m.Value, m.Unit, m.Detail)
			}
			b.Fatalf("bench: %s", r.Describe())
		}
		if len(r.Verdict.Measures) == 0 {
			b.Fatal("bench: no measure lines")
		}
		for _, m := range r.Verdict.Measures {
			b.ReportMetric(m.Value, m.Name+"-"+m.Unit)
		}
	}
}
