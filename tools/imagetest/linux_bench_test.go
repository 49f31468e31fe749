package imagetest

import (
	"context"
	"testing"
	"time"

	"gohv/tools/debian/initramfs"
	"gohv/tools/linuxtest"
	"gohv/tools/qemu"
)

// BenchmarkLinuxBoot boots the same Debian kernel and test initramfs
// twice, one after the other, both under QEMU -cpu EPYC -icount
// shift=0,sleep=off: bare (QEMU's own -kernel loader and SeaBIOS, no
// hypervisor: the limit in this emulator) and in a gohv partition of the
// same size. It reports, for each, the guest's printk time of "Run /init"
// (its clock starts after the kernel decompressed itself, and idle time is
// skipped, so it counts the kernel's own work and the exits it takes) and
// the wall time to that line and to QEMU's exit; for gohv also the
// partition's whole life by gohv's clock (created and started, to its
// ACPI power-off) and, logged, its exits by kind.
func BenchmarkLinuxBoot(b *testing.B) {
	img := needImage(b)
	g := linuxtest.FetchOrSkip(b, *guestCache, scratch, "bench")
	initrd := g.Initrd(b, initramfs.DefaultInit)
	for b.Loop() {
		// Bare: what gohvctl guest run-bare boots.
		sw := initramfs.NewStopwatch()
		bare, err := qemu.Run(context.Background(), qemu.Config{
			Kernel: g.Kernel, Append: initramfs.KernelCmdline(), Machine: "pc", CPU: "EPYC", MemMiB: 256,
			NoDebugExit: true, Timeout: 5 * time.Minute, Console: sw, Icount: true, SkipIdle: true,
			Extra: []string{"-initrd", initrd, "-smp", "1"},
		})
		if err != nil {
			b.Fatal(err)
		}
		bb := initramfs.ParseConsole(bare.Log)
		if !bb.HasRunInit || !bb.PoweredOff() {
			b.Fatalf("bare boot: no \"Run /init\" or no power-off: %s\n%s", bare.Describe(), bare.Log)
		}
		bareInit, _ := sw.RunInit()

		ps := []linuxtest.Partition{{Name: "linux0", MemoryMiB: 256, Kernel: "vmlinuz", Initrd: "initrd", Cmdline: linuxtest.Cmdline, OnReboot: "stop"}}
		mods := linuxtest.Modules(b, b.TempDir(), ps, linuxtest.Module{Name: "vmlinuz", Path: g.Kernel}, linuxtest.Module{Name: "initrd", Path: initrd})
		sw = initramfs.NewStopwatch()
		r, err := qemu.Run(context.Background(), qemu.Config{Kernel: img, Modules: qemuModules(mods),
			Icount: true, SkipIdle: true, Timeout: 5 * time.Minute, Console: sw})
		if err != nil {
			b.Fatal(err)
		}
		if !r.Passed() {
			b.Fatalf("gohv: %s\n%s", r.Describe(), r.Log)
		}
		gb := initramfs.ParseConsole(linuxtest.Lines(r.Log, "linux0"))
		e, ok := linuxtest.EndOf(r.Log, "linux0")
		ran, err := time.ParseDuration(e.Ran)
		if !gb.HasRunInit || !ok || err != nil {
			b.Fatalf("gohv: no \"Run /init\" or no partition end with its run time: %q\n%s", e.Line, r.Log)
		}
		gohvInit, _ := sw.RunInit()

		b.ReportMetric(gb.RunInit.Seconds(), "gohv-run-init-guest-s")
		b.ReportMetric(bb.RunInit.Seconds(), "bare-run-init-guest-s")
		b.ReportMetric(gb.RunInit.Seconds()/bb.RunInit.Seconds(), "run-init-gohv/bare")
		b.ReportMetric(gohvInit.Seconds(), "gohv-run-init-wall-s")
		b.ReportMetric(bareInit.Seconds(), "bare-run-init-wall-s")
		b.ReportMetric(r.Elapsed.Seconds(), "gohv-qemu-wall-s")
		b.ReportMetric(bare.Elapsed.Seconds(), "bare-qemu-wall-s")
		b.ReportMetric(ran.Seconds(), "gohv-partition-life-s")
		b.ReportMetric(ran.Seconds()/7.08, "life/kvm-qemu")
		b.Logf("gohv partition linux0: exits %s", e.Exits)
		exits, err := e.ExitCounts()
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(exits[""]), "gohv-exits")
	}
}
