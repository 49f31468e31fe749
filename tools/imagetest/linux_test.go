package imagetest

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"gohv/testguests"
	"gohv/tools/debian/initramfs"
	"gohv/tools/linuxtest"
	"gohv/tools/qemu"
)

// The Linux partition tests boot Debian's own kernel (the current one,
// through linux-image-amd64) with a busybox initramfs in child partitions
// that the configuration module describes, under QEMU -cpu EPYC (AMD-V
// with nested paging). They need -guest-cache: `make test-image` passes
// build/guest, where tools/debian fetches the packages once (later runs
// make no network request). Each boot runs under -icount shift=0,sleep=off
// and takes about 10-20 s of wall time here; they run two at a time.

var guestCache = flag.String("guest-cache", "", "Debian guest cache (build/guest) for the Linux partition tests; they skip without it")

// scratch holds what the binary's tests build (initramfs images, gohvctl).
var scratch string

// hostQuiet keeps the Linux boots — each keeps a host core busy for 10-20
// s — off the machine while a boot whose checks time the host runs
// (hvtest's timers and bystanders count lateness in the host's time, with
// no -icount): that one takes it exclusively, Linux boots share it.
var hostQuiet sync.RWMutex

func TestMain(m *testing.M) {
	flag.Parse()
	d, err := os.MkdirTemp("", "gohv-imagetest-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	scratch = d
	code := m.Run()
	os.RemoveAll(d)
	os.Exit(code)
}

// linuxGuest is the image and the Debian guest, or a skip.
func linuxGuest(t *testing.T) (string, *linuxtest.Guest) {
	t.Helper()
	img := needImage(t)
	return img, linuxtest.FetchOrSkip(t, *guestCache, scratch, "test-image")
}

// qemuModules turns boot modules into QEMU's.
func qemuModules(ms []linuxtest.Module) []qemu.Module {
	out := make([]qemu.Module, len(ms))
	for i, m := range ms {
		out[i] = qemu.Module{Path: m.Path, Name: m.Name}
	}
	return out
}

// linuxBoot boots the image with the partitions ps and the module files
// besides the configuration, under -icount shift=0,sleep=off, with memMiB
// of host memory.
func linuxBoot(t testing.TB, img string, memMiB int, ps []linuxtest.Partition, files ...linuxtest.Module) *qemu.Result {
	t.Helper()
	return linuxBootConfig(t, img, memMiB, linuxtest.Config(ps...), files...)
}

// linuxBootConfig is linuxBoot for a configuration's text (one with
// switches: linuxtest.ConfigWithSwitches).
func linuxBootConfig(t testing.TB, img string, memMiB int, config string, files ...linuxtest.Module) *qemu.Result {
	t.Helper()
	mods := linuxtest.ConfigModules(t, t.TempDir(), config, files...)
	hostQuiet.RLock()
	defer hostQuiet.RUnlock()
	r := boot(t, qemu.Config{Kernel: img, Modules: qemuModules(mods), MemMiB: memMiB,
		Icount: true, SkipIdle: true, Timeout: 5 * time.Minute})
	t.Logf("QEMU ran %.1f s wall", r.Elapsed.Seconds())
	return r
}

// logBoot notes a Linux partition's figures: its printk time of
// "Run /init" and its whole life and exits by gohv's clock.
func logBoot(t *testing.T, name string, b initramfs.Boot, e linuxtest.Ended) {
	t.Helper()
	t.Logf("%s: \"Run /init\" at %.3f s guest time; partition ran %s; exits %s", name, b.RunInit.Seconds(), e.Ran, e.Exits)
}

// TestLinux boots the distribution's kernel in a child partition: it runs
// /init and reports its release, Microsoft Hyper-V, the Hyper-V TSC page
// clocksource, its memory and one CPU, then powers off through ACPI S5;
// gohv reports the partition powered off and passes.
func TestLinux(t *testing.T) {
	img, g := linuxGuest(t)
	t.Parallel()
	ps := []linuxtest.Partition{{Name: "linux0", MemoryMiB: 256, Kernel: "vmlinuz", Initrd: "initrd", Cmdline: linuxtest.Cmdline, OnReboot: "stop"}}
	r := linuxBoot(t, img, 512, ps, linuxtest.Module{Name: "vmlinuz", Path: g.Kernel}, linuxtest.Module{Name: "initrd", Path: g.Initrd(t, initramfs.DefaultInit)})
	if !r.Passed() {
		t.Errorf("want verdict PASS: %s", r.Describe())
	}
	b, e := g.CheckBoot(t, r.Log, "linux0", 256)
	logBoot(t, "linux0", b, e)
}

// TestLinuxTwoPartitions runs two Linux partitions at once, of different
// sizes: both report and power off, every line they print carries its
// partition's name, and the run passes.
func TestLinuxTwoPartitions(t *testing.T) {
	img, g := linuxGuest(t)
	t.Parallel()
	initrd := g.Initrd(t, initramfs.DefaultInit)
	ps := []linuxtest.Partition{
		{Name: "linux0", MemoryMiB: 256, Kernel: "vmlinuz", Initrd: "initrd", Cmdline: linuxtest.Cmdline, OnReboot: "stop"},
		{Name: "linux1", MemoryMiB: 192, Kernel: "vmlinuz", Initrd: "initrd", Cmdline: linuxtest.Cmdline, OnReboot: "stop"},
	}
	r := linuxBoot(t, img, 1024, ps, linuxtest.Module{Name: "vmlinuz", Path: g.Kernel}, linuxtest.Module{Name: "initrd", Path: initrd})
	if !r.Passed() {
		t.Errorf("want verdict PASS: %s", r.Describe())
	}
	for _, p := range ps {
		b, e := g.CheckBoot(t, r.Log, p.Name, p.MemoryMiB)
		logBoot(t, p.Name, b, e)
	}
	// Nothing a guest printed reached the console without its name.
	for _, l := range strings.Split(string(r.Log), "\n") {
		if strings.Contains(l, "guest: ") || strings.Contains(l, "Run /init") {
			if !strings.HasPrefix(l, "linux0: ") && !strings.HasPrefix(l, "linux1: ") {
				t.Errorf("a guest's line without its partition's name: %q", l)
			}
		}
	}
}

// TestLinuxPanicStopsOnlyItsPartition: a Linux partition whose kernel
// panics (SysRq "c") reports the panic through the Hyper-V crash MSRs;
// gohv ends that partition with the crash parameters and nothing else, the
// Linux partition beside it runs to its power-off, and the verdict fails
// naming the crashed partition alone.
func TestLinuxPanicStopsOnlyItsPartition(t *testing.T) {
	img, g := linuxGuest(t)
	t.Parallel()
	ps := []linuxtest.Partition{
		{Name: "linux0", MemoryMiB: 256, Kernel: "vmlinuz", Initrd: "initrd", Cmdline: linuxtest.Cmdline, OnReboot: "stop"},
		{Name: "panic1", MemoryMiB: 128, Kernel: "vmlinuz", Initrd: "panic", Cmdline: linuxtest.Cmdline, OnReboot: "stop"},
	}
	r := linuxBoot(t, img, 1024, ps, linuxtest.Module{Name: "vmlinuz", Path: g.Kernel},
		linuxtest.Module{Name: "initrd", Path: g.Initrd(t, initramfs.DefaultInit)},
		linuxtest.Module{Name: "panic", Path: g.Initrd(t, initramfs.PanicInit)})
	b, e := g.CheckBoot(t, r.Log, "linux0", 256)
	logBoot(t, "linux0", b, e)

	pb := initramfs.ParseConsole(linuxtest.Lines(r.Log, "panic1"))
	if _, ok := pb.Report["panic"]; !ok {
		t.Errorf("panic1: the init did not get to its crash")
	}
	if _, ok := pb.Report["still"]; ok {
		t.Errorf("panic1: the guest ran on after its crash")
	}
	pe, ok := linuxtest.EndOf(r.Log, "panic1")
	if !ok {
		t.Fatalf("panic1: no \"partition ended\" line")
	}
	t.Logf("panic1: %s", pe.Line)
	if pe.State != "crashed" || !strings.Contains(pe.Reason, "the guest reported a crash") {
		t.Errorf("panic1: %s; want state=crashed with the guest's crash report", pe.Line)
	}
	for _, p := range []string{"P0 0x", "P1 0x", "P2 0x", "P3 0x", "P4 0x"} {
		if !strings.Contains(pe.Reason, p) {
			t.Errorf("panic1: the crash parameter %s is not printed: %s", strings.TrimSuffix(p, " 0x"), pe.Line)
		}
	}
	v := r.Verdict
	if r.TimedOut || r.ExitCode != qemu.ExitFail || v.Verdicts != 1 || v.Pass {
		t.Errorf("want one FAIL verdict and debug-exit FAIL: %s", r.Describe())
	}
	if !strings.Contains(v.Reason, "panic1") || strings.Contains(v.Reason, "linux0") {
		t.Errorf("verdict reason %q: want panic1 named, linux0 not", v.Reason)
	}
}

// TestTripleFaultBesideLinux: a Multiboot kernel that triple-faults ends
// its own partition (crashed, triple fault) while the Linux partition
// beside it runs to its power-off; the verdict fails naming only the
// faulting partition.
func TestTripleFaultBesideLinux(t *testing.T) {
	img, g := linuxGuest(t)
	t.Parallel()
	tf := filepath.Join(t.TempDir(), "triple")
	if err := os.WriteFile(tf, testguests.MultibootTripleFault(), 0o644); err != nil {
		t.Fatal(err)
	}
	ps := []linuxtest.Partition{
		{Name: "linux0", MemoryMiB: 256, Kernel: "vmlinuz", Initrd: "initrd", Cmdline: linuxtest.Cmdline, OnReboot: "stop"},
		{Name: "triple1", MemoryMiB: 4, Kernel: "triple", Format: "multiboot", OnReboot: "stop"},
	}
	r := linuxBoot(t, img, 512, ps, linuxtest.Module{Name: "vmlinuz", Path: g.Kernel},
		linuxtest.Module{Name: "initrd", Path: g.Initrd(t, initramfs.DefaultInit)},
		linuxtest.Module{Name: "triple", Path: tf})
	b, e := g.CheckBoot(t, r.Log, "linux0", 256)
	logBoot(t, "linux0", b, e)

	if !bytes.Contains(linuxtest.Lines(r.Log, "triple1"), []byte(testguests.TripleFaultGreeting+"\n")) {
		t.Errorf("triple1 did not run up to its fault")
	}
	te, ok := linuxtest.EndOf(r.Log, "triple1")
	if !ok {
		t.Fatalf("triple1: no \"partition ended\" line")
	}
	t.Logf("triple1: %s", te.Line)
	if te.State != "crashed" || !strings.Contains(te.Reason, "triple fault") {
		t.Errorf("triple1: %s; want state=crashed by a triple fault", te.Line)
	}
	v := r.Verdict
	if r.TimedOut || r.ExitCode != qemu.ExitFail || v.Verdicts != 1 || v.Pass {
		t.Errorf("want one FAIL verdict and debug-exit FAIL: %s", r.Describe())
	}
	if !strings.Contains(v.Reason, "triple1") || strings.Contains(v.Reason, "linux0") {
		t.Errorf("verdict reason %q: want triple1 named, linux0 not", v.Reason)
	}
}

// gohvctl builds the host command once per binary, so the tests below run
// what a user runs.
var gohvctl = sync.OnceValues(func() (string, error) {
	out := filepath.Join(scratch, "gohvctl")
	b, err := exec.Command("go", "build", "-o", out, "gohv/cmd/gohvctl").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build gohv/cmd/gohvctl: %v\n%s", err, b)
	}
	return out, nil
})

// runGohvctl runs `gohvctl args...` with stdin and returns its exit
// status and output (stdout, then stderr).
func runGohvctl(t *testing.T, stdin io.Reader, stdout io.Writer, args ...string) (int, string) {
	t.Helper()
	bin, err := gohvctl()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var out, errs bytes.Buffer
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Stdin = stdin
	cmd.Stdout = &out
	if stdout != nil {
		cmd.Stdout = io.MultiWriter(&out, stdout)
	}
	cmd.Stderr = &errs
	cmd.WaitDelay = 10 * time.Second
	start := time.Now()
	err = cmd.Run()
	t.Logf("gohvctl %s: %v after %.1f s", strings.Join(args, " "), err, time.Since(start).Seconds())
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	log := out.String() + "---- stderr ----\n" + errs.String()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("---- gohvctl output ----\n%s---- end ----", log)
		}
	})
	return code, log
}

// TestDamagedKernelModule passes gohvctl run a partition configuration
// and a damaged kernel module: cut short, not a kernel at all. The image
// refuses to build the partition, and its one FAIL verdict names the
// module, the configuration's line and field, and what is wrong; no
// partition starts. A module the configuration names but the boot lacks
// (possible only past gohvctl, which refuses it on the host) fails the same
// way.
func TestDamagedKernelModule(t *testing.T) {
	img, g := linuxGuest(t)
	t.Parallel()
	kernel, err := os.ReadFile(g.Kernel)
	if err != nil {
		t.Fatal(err)
	}
	initrd := g.Initrd(t, initramfs.DefaultInit)
	for _, c := range []struct {
		name   string
		kernel []byte
		want   []string
	}{
		{"truncated", kernel[:len(kernel)/2], []string{`partition[0].kernel: module "vmlinuz": `, "truncated"}},
		{"not-a-kernel", bytes.Repeat([]byte("not a kernel "), 4096), []string{`partition[0].kernel: `, `"vmlinuz"`, "is neither a Linux bzImage"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			k := filepath.Join(dir, "vmlinuz")
			if err := os.WriteFile(k, c.kernel, 0o644); err != nil {
				t.Fatal(err)
			}
			cfg := filepath.Join(dir, "gohv.toml")
			ps := []linuxtest.Partition{{Name: "linux0", MemoryMiB: 256, Kernel: "vmlinuz", Initrd: "initrd", Cmdline: linuxtest.Cmdline}}
			if err := os.WriteFile(cfg, []byte(linuxtest.Config(ps...)), 0o644); err != nil {
				t.Fatal(err)
			}
			code, log := runGohvctl(t, nil, nil, "run", "-kernel", img, "-timeout", "2m", "-config", cfg,
				"-module", "vmlinuz="+k, "-module", "initrd="+initrd)
			if code != 1 {
				t.Errorf("gohvctl run: exit status %d, want 1", code)
			}
			wantDamageReported(t, []byte(log), c.want)
		})
	}
	t.Run("missing", func(t *testing.T) {
		t.Parallel()
		ps := []linuxtest.Partition{{Name: "linux0", MemoryMiB: 256, Kernel: "vmlinuz", Initrd: "initrd", Cmdline: linuxtest.Cmdline}}
		mods := linuxtest.Modules(t, t.TempDir(), ps, linuxtest.Module{Name: "vmlinuz", Path: g.Kernel})
		r := boot(t, qemu.Config{Kernel: img, Modules: qemuModules(mods), Timeout: 2 * time.Minute})
		if r.TimedOut || r.ExitCode != qemu.ExitFail {
			t.Errorf("want debug-exit FAIL: %s", r.Describe())
		}
		wantDamageReported(t, r.Log, []string{`partition[0].initrd: no boot module "initrd"`})
	})
}

// wantDamageReported wants one FAIL verdict holding every part of want,
// and no partition output.
func wantDamageReported(t *testing.T, log []byte, want []string) {
	t.Helper()
	var verdicts []string
	for _, l := range strings.Split(strings.ReplaceAll(string(log), "\r", ""), "\n") {
		if strings.HasPrefix(l, "gohv: verdict ") {
			verdicts = append(verdicts, l)
		}
		if strings.HasPrefix(l, "linux0: ") {
			t.Errorf("the partition ran: %q", l)
			break
		}
	}
	if len(verdicts) != 1 || !strings.HasPrefix(verdicts[0], "gohv: verdict FAIL ") {
		t.Fatalf("verdicts %q: want one FAIL", verdicts)
	}
	for _, w := range want {
		if !strings.Contains(verdicts[0], w) {
			t.Errorf("%s: lacks %q", verdicts[0], w)
		}
	}
	t.Log(verdicts[0])
}

// TestRunShell drives what `make run` runs: gohvctl run -input with the
// embedded default configuration (one Linux partition, linux0, with a
// disk) and the modules the Makefile passes: Debian's kernel, a shell
// initramfs (initramfs.ShellInit with the Makefile's modules and
// initramfs.StopperFiles) and an ext4 disk as gohvctl guest disk writes
// it. Typed lines reach the Linux shell through gohv's console input:
// Ctrl-] ? lists the partitions with linux0 selected, the disk is mounted
// on /mnt and its README.txt reads back through the shell, and Ctrl-] s
// shuts the partition down through Linux's hv_utils, which ends the run
// with a PASS.
func TestRunShell(t *testing.T) {
	mk, err := os.ReadFile("../../Makefile")
	if err != nil {
		t.Fatal(err)
	}
	if m := regexp.MustCompile(`(?m)^RUN_MODULES = (.*)$`).FindSubmatch(mk); m == nil || string(m[1]) != strings.Join(runModules, " ") {
		t.Fatalf("the Makefile's RUN_MODULES is not %q: make run and this test would differ", strings.Join(runModules, " "))
	}
	img, g := linuxGuest(t)
	t.Parallel()
	dir := t.TempDir()
	spec := initramfs.Spec{Busybox: g.Busybox, Init: initramfs.ShellInit, Files: initramfs.StopperFiles()}
	g.AddModules(t, &spec, runModules...)
	shell, disk := filepath.Join(dir, "initrd.cpio"), filepath.Join(dir, "disk.img")
	if err := spec.WriteFile(shell); err != nil {
		t.Fatal(err)
	}
	if code, log := runGohvctl(t, nil, nil, "guest", "disk", "-out", disk); code != 0 {
		t.Fatalf("gohvctl guest disk: status %d\n%s", code, log)
	}
	con := linuxtest.NewConsole()
	// An OS pipe, not io.Pipe: gohvctl gets the file itself, so no copying
	// goroutine outlives it, and its exit (a hang cut off by -timeout
	// included) ends the run even while the typist waits for a line.
	in, typist, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	failed := make(chan string, 1)
	go func() {
		defer typist.Close()
		step := func(what string, send string, ok func(string) bool) bool {
			if send != "" {
				if _, err := typist.Write([]byte(send)); err != nil {
					failed <- fmt.Sprintf("typing %q: %v", send, err)
					return false
				}
			}
			var seen bool
			if _, seen = con.WaitLine(0, ok); !seen {
				failed <- "the console ended before " + what
			}
			return seen
		}
		_ = step("the shell started", "", func(l string) bool { return strings.HasPrefix(l, "linux0: guest: shell on ") }) &&
			step("the partition list", "\x1d?", func(l string) bool { return strings.Contains(l, "gohv: console partitions: *0 linux0") }) &&
			// The answer, not the terminal's echo of the command, has 42.
			step("the shell's answer", "echo hi $((6*7))\n", func(l string) bool { return l == "linux0: hi 42" }) &&
			step("the disk's file", "cat /mnt/README.txt\n", func(l string) bool {
				return l == "linux0: This is the partition's disk: an ext4 image that gohv's root partition"
			}) &&
			// The root's diagnostic page, over the partition's eth0, the
			// switch lan0 and the root's own stack: its line for linux0.
			step("the root's diagnostic page", "wget -qO- http://10.0.0.1/\n", func(l string) bool {
				return strings.HasPrefix(l, "linux0: linux0") && strings.Contains(l, "running") && strings.Contains(l, "@lan0")
			}) &&
			step("the shutdown", "\x1ds", func(l string) bool { return strings.Contains(l, "gohv: verdict ") })
		close(failed)
	}()
	hostQuiet.RLock()
	defer hostQuiet.RUnlock()
	code, log := runGohvctl(t, in, con, "run", "-kernel", img, "-input", "-icount", "-skip-idle", "-timeout", "4m",
		"-module", "vmlinuz="+g.Kernel, "-module", "initrd="+shell, "-module", "disk="+disk)
	con.Close()
	if msg, ok := <-failed; ok {
		t.Error(msg)
	}
	if code != 0 {
		t.Errorf("gohvctl run: exit status %d, want 0 (verdict PASS)", code)
	}
	if e, ok := linuxtest.EndOf([]byte(log), "linux0"); !ok || e.Reason != linuxtest.PoweredOff {
		t.Errorf("linux0 did not power off: %s", e.Line)
	}
	for _, want := range []string{"linux0: guest: mounted /dev/sda on /mnt", "linux0: guest: eth0 is 10.0.0.2/24 (00:15:5d:00:00:00)", "gohv: ic: guest accepted a shutdown partition=linux0",
		"linux0: guest: ran /sbin/poweroff", "linux0: guest: init-signal poweroff"} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q", want)
		}
	}
}

// runModules are the modules `make run`'s shell initramfs loads (the
// Makefile's RUN_MODULES): VMBus, the disk and its ext4 (with the crc32c
// its metadata checksums need), and hv_utils.
var runModules = []string{"hv_vmbus", "hv_storvsc", "sd_mod", "crc32c_generic", "ext4", "hv_utils", "hv_netvsc"}
