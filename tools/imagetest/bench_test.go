package imagetest

import (
	"testing"
	"time"

	"gohv/tools/qemu"
)

// BenchmarkBoot boots the image with `bench` under -icount shift=0 (one
// guest instruction per TSC tick, so cycle counts are repeatable) and
// reports each "gohv: measure" line as a benchmark metric.
func BenchmarkBoot(b *testing.B) {
	img := needImage(b)
	for b.Loop() {
		r := boot(b, qemu.Config{Kernel: img, Append: []string{"bench"}, Icount: true, Timeout: 5 * time.Minute})
		if !r.Passed() {
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
