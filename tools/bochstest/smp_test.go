package bochstest

import (
	"testing"
	"time"
)

// TestLinuxSMPVTx is tools/imagetest's TestLinuxSMP on Intel VT-x, with
// one partition of 2 VPs (Bochs is slow): the application processor
// starts in wait-for-SIPI and the guest's INIT and SIPI start it in real
// mode (unrestricted guest) at the vector's page.
func TestLinuxSMPVTx(t *testing.T) {
	img, g := linuxGuest(t)
	t.Parallel()
	s := g.SMP(t, 128, 2)
	r := bootLinux(t, img, "smp.iso", 8*time.Minute, s.Partitions, s.Files...)
	if !r.Passed() {
		t.Errorf("want verdict PASS and a power-off: %s", r.Describe())
	}
	for name, ticks := range s.Check(t, r.Log) {
		t.Logf("%s: ticks per CPU %v", name, ticks)
	}
}
