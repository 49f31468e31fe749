package bochstest

import (
	"strings"
	"testing"
	"time"

	"gohv/tools/bochs"
)

// TestSMPVTx boots a three-processor Bochs (cpu: count=3): gohv starts the
// application processors and runs VPs on them under VT-x — VMXON there,
// the VMCS set up and entered on each — with a spinning guest on each that
// the garbage collector's pauses reach, a spinning and a halted VP that
// stop on request, IPI round trips and remote TLB flushes between a
// two-VP guest's VPs (smp-ipi-flush), a VP moving from one AP to the other (vp-migrate:
// VMCLEAR on the old CPU, VMPTRLD and the per-CPU host state on the new),
// and every page back at the end. It hung at its first check in 3 of 5
// runs while a stale timer interrupt could livelock an AP (metal's
// timerWaitOut) with its two VP threads' alarms due.
func TestSMPVTx(t *testing.T) {
	t.Parallel()
	names := []string{"gc-pause-spinning", "stop-spin-halt", "smp-ipi-flush", "vp-migrate", "overcommit", "pages-returned"}
	r := boot(t, "hvtest="+strings.Join(names, ","), bochs.Config{CPUs: 3})
	if !r.Passed() {
		t.Fatalf("on 3 processors: %s", r.Describe())
	}
	if !strings.Contains(string(r.Log), "gohv: metal: 3 cpus online") {
		t.Error("the boot report does not say 3 cpus online")
	}
	for _, name := range names {
		c, ok := r.Verdict.Check(name)
		if !ok {
			t.Errorf("check %s not reported", name)
			continue
		}
		t.Logf("%s: %s", name, c.Detail)
	}
}

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
