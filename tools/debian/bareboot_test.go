package debian_test

import (
	"context"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"gohv/tools/debian/initramfs"
	"gohv/tools/qemu"
)

// TestBareBootDebian boots the fetched kernel with a busybox initramfs
// straight under QEMU TCG, without gohv — the bare reference of the Linux
// partition tests — with two real modules for the init to load (scsi_mod
// and the scsi_common it depends on load on any machine), and wants the
// test init's report and a clean power-off. It logs the guest's printk time
// of "Run /init" (-icount shift=0,sleep=off: one instruction a nanosecond,
// idle skipped) and the wall times.
func TestBareBootDebian(t *testing.T) {
	g := realGuest(t)
	if !qemu.Available() {
		t.Skip(qemu.ErrNoQEMU)
	}
	mods, err := g.Modules(context.Background(), "scsi_mod")
	if err != nil {
		t.Fatal(err)
	}
	s := initramfs.Spec{Busybox: g.Busybox}
	for _, m := range mods {
		s.Files = append(s.Files, initramfs.File{Name: m.Path, Source: m.File})
		s.Modules = append(s.Modules, m.Path)
	}
	initrd := filepath.Join(t.TempDir(), "initramfs.cpio")
	if err := s.WriteFile(initrd); err != nil {
		t.Fatal(err)
	}
	sw := initramfs.NewStopwatch()
	c := qemu.Config{
		Kernel: g.Kernel, Append: initramfs.KernelCmdline(), Machine: "pc", CPU: "EPYC", MemMiB: 256,
		NoDebugExit: true, Timeout: 5 * time.Minute, Console: sw,
		Extra: []string{"-initrd", initrd, "-smp", "1", "-icount", "shift=0,sleep=off"},
	}
	sw.Start = time.Now()
	r, err := qemu.Run(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	b := initramfs.ParseConsole(r.Log)
	fail := func(format string, args ...any) {
		t.Helper()
		t.Errorf(format, args...)
	}
	if r.TimedOut || r.ExitCode != qemu.ExitPowerOff {
		fail("QEMU: timed out %v, exit status %d; %s", r.TimedOut, r.ExitCode, r.Complaints())
	}
	if !b.HasRunInit || b.Init != "/init" {
		fail("no \"Run /init\" on the console")
	}
	if b.Panic != "" {
		fail("kernel panic: %s", b.Panic)
	}
	mem, _ := strconv.Atoi(b.Report["memtotal-kib"])
	if b.Report["uname-r"] != g.Release || b.Report["cpus"] != "1" || mem < 128*1024 || mem > 256*1024 ||
		b.Report["clocksource"] == "" || b.Report["hyperv"] != "no" {
		fail("report %q: want release %s, 1 CPU, 128-256 MiB, a clocksource, no Hyper-V", b.Report, g.Release)
	}
	for _, m := range mods {
		if got := b.Report["insmod."+m.Name]; got != "ok" {
			fail("insmod %s: %q, want ok", m.Name, got)
		}
	}
	if !b.PoweredOff() {
		fail("the init did not get to its power-off")
	}
	if t.Failed() {
		t.Logf("console:\n%s", r.Log)
		return
	}
	wall, _ := sw.RunInit()
	t.Logf("bare boot of %s: \"Run /init\" at %.6f s guest time, %.2f s wall; QEMU exited after %.2f s wall",
		g.Release, b.RunInit.Seconds(), wall.Seconds(), r.Elapsed.Seconds())
	for _, k := range b.Keys {
		t.Logf("guest: %s %s", k, b.Report[k])
	}
}
