package imagetest

import (
	"testing"
)

// TestLinuxSMP boots Debian's unmodified kernel in partitions of 2 and 4
// VPs on AMD-V: it starts its application processors through its local
// APIC (INIT and SIPI to each APIC ID the MADT lists), runs a job pinned
// to each CPU and sees every CPU do some of the work
// (linuxtest.SMP.Check); tools/bochstest's TestLinuxSMPVTx does the same
// on Intel VT-x. The VPs take turns on the host's one CPU.
func TestLinuxSMP(t *testing.T) {
	img, g := linuxGuest(t)
	t.Parallel()
	s := g.SMP(t, 256, 2, 4)
	r := linuxBoot(t, img, 1024, s.Partitions, s.Files...)
	if !r.Passed() {
		t.Errorf("want verdict PASS: %s", r.Describe())
	}
	for name, ticks := range s.Check(t, r.Log) {
		t.Logf("%s: ticks per CPU %v", name, ticks)
	}
}
