package bochstest

import (
	"strings"
	"testing"

	"gohv/tools/bochs"
)

// BenchmarkPeerExits boots the image with `bench=peer` and reports issue
// 15's peer loop on VT-x — CPUID, an unknown-code VMCALL, an OUT to a
// device model and the bare NOP loop in 32-bit protected mode — in guest
// instructions per iteration, beside KVM's figure. bochs.Config's defaults
// are the issue's: cpu model=corei7_skylake_x, ips=1000000000; clock
// sync=none.
func BenchmarkPeerExits(b *testing.B) {
	for b.Loop() {
		r := boot(b, "bench=peer", bochs.Config{})
		if !r.Passed() {
			b.Fatalf("bench=peer: %s", r.Describe())
		}
		n := 0
		for _, m := range r.Verdict.Measures {
			if strings.HasPrefix(m.Name, "peer-") {
				b.ReportMetric(m.Value, m.Name+"-"+m.Unit)
				b.Logf("%s %g %s %s", m.Name, m.Value, m.Unit, m.Detail)
				n++
			}
		}
		if n == 0 {
			b.Fatal("bench=peer: no peer-* measure lines")
		}
	}
}
