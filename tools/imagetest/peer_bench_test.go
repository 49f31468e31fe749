package imagetest

import (
	"strings"
	"testing"
	"time"

	"gohv/tools/qemu"
	"gohv/tools/verdict"
)

// peerQEMUFlags are the emulator flags of issue 15's peer figures beyond
// what Icount and SkipIdle give (-icount shift=0,sleep=off): Linux 6.1
// KVM's round trips were measured nested under exactly these.
var peerQEMUFlags = []string{"-seed", "1", "-rtc", "base=2020-01-01T00:00:00,clock=vm"}

// BenchmarkPeerExits boots the image with `bench=peer` under the issue's
// QEMU flags and reports issue 15's peer loop — CPUID, an unknown-code
// VMMCALL, an OUT to a device model and the bare NOP loop in 32-bit
// protected mode — in guest instructions per iteration (each line also
// carries KVM's figure and the ratio).
func BenchmarkPeerExits(b *testing.B) {
	img := needImage(b)
	for b.Loop() {
		r := boot(b, qemu.Config{Kernel: img, Append: []string{"bench=peer"}, CPU: "EPYC",
			Icount: true, SkipIdle: true, Timeout: 10 * time.Minute, Extra: peerQEMUFlags})
		if !r.Passed() {
			b.Fatalf("bench=peer: %s", r.Describe())
		}
		reportPeer(b, r.Verdict.Measures)
	}
}

// reportPeer reports each peer-* measure line, and fails without any.
func reportPeer(b *testing.B, ms []verdict.Measure) {
	n := 0
	for _, m := range ms {
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
