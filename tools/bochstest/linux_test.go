package bochstest

import (
	"context"
	"flag"
	"path/filepath"
	"testing"
	"time"

	"gohv/tools/bochs"
	"gohv/tools/debian/initramfs"
	"gohv/tools/linuxtest"
	"gohv/tools/media/bootmedia"
)

var guestCache = flag.String("guest-cache", "", "Debian guest cache (build/guest) for the Linux partition test; it skips without it")

// TestLinuxVTx boots Debian's current kernel (the distribution's own
// vmlinuz, fetched into -guest-cache by tools/debian) with the busybox
// test init in a child partition on Intel VT-x: it runs /init and reports
// its release, Microsoft Hyper-V, the Hyper-V TSC page clocksource, its
// memory and one CPU, powers off through ACPI S5, and gohv passes.
//
// Bochs emulates slowly: it takes about 2 minutes of wall time on a 2-core
// machine (the QEMU tests in tools/imagetest cover the other Linux cases
// on AMD-V in seconds; TestLinuxStorageVTx is the other Linux boot here).
func TestLinuxVTx(t *testing.T) {
	img, g := linuxGuest(t)
	t.Parallel()
	ps := []linuxtest.Partition{{Name: "linux0", MemoryMiB: 256, Kernel: "vmlinuz", Initrd: "initrd", Cmdline: linuxtest.Cmdline, OnReboot: "stop"}}
	r := bootLinux(t, img, "linux.iso", 6*time.Minute, ps,
		linuxtest.Module{Name: "vmlinuz", Path: g.Kernel},
		linuxtest.Module{Name: "initrd", Path: g.Initrd(t, initramfs.DefaultInit)})
	if !r.Passed() {
		t.Errorf("want verdict PASS and a power-off: %s", r.Describe())
	}
	b, e := g.CheckBoot(t, r.Log, "linux0", 256)
	t.Logf("linux0: \"Run /init\" at %.3f s guest time; partition ran %s; exits %s", b.RunInit.Seconds(), e.Ran, e.Exits)
}

// linuxGuest is the image and the Debian guest, or a skip.
func linuxGuest(t *testing.T) (string, *linuxtest.Guest) {
	t.Helper()
	img := needImage(t)
	return img, linuxtest.FetchOrSkip(t, *guestCache, isoDir, "test-bochs")
}

// bootLinux writes the configuration of ps and the module files into an
// ISO with the image, boots it under Bochs (taking one of the slots) and
// returns the result; on a failure of the test the serial log and the tail
// of bochs.log are printed.
func bootLinux(t *testing.T, img, isoName string, timeout time.Duration, ps []linuxtest.Partition, files ...linuxtest.Module) *bochs.Result {
	t.Helper()
	return bootLinuxWith(t, img, isoName, bochs.Config{Timeout: timeout}, ps, files...)
}

// bootLinuxWith is bootLinux with c's timeout, console and input (the ISO,
// memory and work directory are bootLinux's).
func bootLinuxWith(t *testing.T, img, isoName string, c bochs.Config, ps []linuxtest.Partition, files ...linuxtest.Module) *bochs.Result {
	t.Helper()
	return bootLinuxConfig(t, img, isoName, c, linuxtest.Config(ps...), files...)
}

// bootLinuxConfig is bootLinuxWith for a configuration's text (one with
// switches: linuxtest.ConfigWithSwitches).
func bootLinuxConfig(t *testing.T, img, isoName string, c bochs.Config, config string, files ...linuxtest.Module) *bochs.Result {
	t.Helper()
	dir := t.TempDir()
	var mods []*bootmedia.Module
	for _, m := range linuxtest.ConfigModules(t, dir, config, files...) {
		bm, err := bootmedia.ReadModule(m.Name, m.Path)
		if err != nil {
			t.Fatal(err)
		}
		mods = append(mods, bm)
	}
	iso := filepath.Join(dir, isoName)
	if err := bochs.BuildISOModules(context.Background(), img, "", iso, mods); err != nil {
		t.Fatal(err)
	}
	c.ISO, c.MemMiB = iso, 512
	if *keepDir != "" {
		c.WorkDir = filepath.Join(*keepDir, t.Name())
	}
	slots <- struct{}{}
	start := time.Now()
	r, err := bochs.Run(context.Background(), c)
	<-slots
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("boot: %s (%s wall time)", r.Describe(), time.Since(start).Round(time.Second))
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("---- serial log ----\n%s\n---- end ----\n---- bochs.log (tail) ----\n%s---- end ----", printable(r.Log), printable(r.BochsLog))
		}
	})
	return r
}
