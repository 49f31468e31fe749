package imagetest

import (
	"cmp"
	"regexp"
	"strings"
	"testing"
	"time"

	"gohv/tools/linuxtest"
	"gohv/tools/qemu"
)

// TestLinuxSMP boots Debian's unmodified kernel in partitions of 2 and 4
// VPs on AMD-V: it starts its application processors through its local
// APIC (INIT and SIPI to each APIC ID the MADT lists), runs a job pinned
// to each CPU and sees every CPU do some of the work
// (linuxtest.SMP.Check); tools/bochstest's TestLinuxSMPVTx does the same
// on Intel VT-x. The VPs take turns on the host's one CPU; TestLinuxSMPHost
// spreads them over four.
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

// TestLinuxSMPHost is TestLinuxSMP on a host of 4 CPUs (QEMU -smp 4,
// multi-threaded TCG, no -icount: QEMU runs the CPUs in parallel): gohv
// starts them all, spreads the six VPs over the three application
// processors (each to the least loaded, moving when a CPU is free and
// theirs is shared), and Linux's checks pass as on one CPU, with VPs of
// one guest running at once on different host CPUs.
func TestLinuxSMPHost(t *testing.T) {
	img, g := linuxGuest(t)
	t.Parallel()
	s := g.SMP(t, 256, 2, 4)
	mods := linuxtest.ConfigModules(t, t.TempDir(), linuxtest.Config(s.Partitions...), s.Files...)
	hostQuiet.Lock() // four emulated CPUs want the host's cores
	defer hostQuiet.Unlock()
	r := boot(t, qemu.Config{Kernel: img, Modules: qemuModules(mods), MemMiB: 1024, Extra: []string{"-smp", "4"},
		Timeout: 5 * time.Minute})
	t.Logf("QEMU ran %.1f s wall", r.Elapsed.Seconds())
	if !r.Passed() {
		t.Errorf("want verdict PASS: %s", r.Describe())
	}
	if !strings.Contains(string(r.Log), "gohv: metal: 4 cpus online") {
		t.Errorf("the boot report does not say 4 cpus online")
	}
	for name, ticks := range s.Check(t, r.Log) {
		t.Logf("%s: ticks per CPU %v", name, ticks)
	}
	// Where each partition's VPs ended: "host-cpus=a,b,..." in its end
	// line, and "vp-moves=N" if they moved. Only the application
	// processors run VPs while they are online (hv/placement.go).
	vps := 0
	for _, m := range regexp.MustCompile(`partition ended partition=(\S+) .* host-cpus=(\S+)(?: vp-moves=(\d+))?`).FindAllStringSubmatch(string(r.Log), -1) {
		cpus := strings.Split(m[2], ",")
		t.Logf("%s: VPs ended on host CPUs %v, %s moves", m[1], cpus, cmp.Or(m[3], "no"))
		for _, c := range cpus {
			vps++
			if c != "1" && c != "2" && c != "3" {
				t.Errorf("%s: a VP ran on host CPU %s, want an application processor (1 to 3)", m[1], c)
			}
		}
	}
	if vps != 6 {
		t.Errorf("the end lines place %d VPs, want 6", vps)
	}
}

// TestBootCPUUnderTCG: a partition that names host CPU 0 on a 2-CPU QEMU
// is refused, saying why: under QEMU's TCG another CPU's thread races the
// first CPU's SVM state and crashes the machine (hv/placement.go, README
// "Host CPUs"). On real processors the same configuration runs.
func TestBootCPUUnderTCG(t *testing.T) {
	img, g := linuxGuest(t)
	t.Parallel()
	s := g.SMP(t, 256, 2)
	config := strings.Replace(linuxtest.Config(s.Partitions[0]), "\nmemory_mib =", "\nhost_cpus = [0]\nmemory_mib =", 1)
	mods := linuxtest.ConfigModules(t, t.TempDir(), config, s.Files...)
	hostQuiet.RLock()
	defer hostQuiet.RUnlock()
	r := boot(t, qemu.Config{Kernel: img, Modules: qemuModules(mods), MemMiB: 1024, Extra: []string{"-smp", "2"},
		Timeout: 2 * time.Minute})
	if r.Passed() {
		t.Fatalf("a partition on host CPU 0 ran under QEMU TCG with 2 CPUs: %s", r.Describe())
	}
	if !strings.Contains(string(r.Log), "host CPU 0 (the boot CPU) runs no VP under QEMU TCG") {
		t.Errorf("the refusal does not say why: %s", r.Describe())
	}
}
