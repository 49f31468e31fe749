// Package mediatest boots gohv's boot media under QEMU TCG — the hybrid ISO
// as a CD-ROM and as a USB stick, the PXE tree over QEMU's built-in TFTP, and
// the raw GPT disk image — under SeaBIOS and under OVMF (UEFI), and reads the
// verdict of the `selftest` boot off the serial port, and the boot modules
// the image reports it got: the media carry the test configuration
// (testdata/gohv.toml) and the module it names, and each must arrive whole.
// It also cuts the kernel, and a module, short on copies of the media and
// wants GRUB to say so and power off instead of hanging or jumping into it.
//
// `make test-media` builds the media with `-default selftest -timeout 0
// -config tools/mediatest/testdata/gohv.toml` into build/mediatest and runs
// this package with -media-dir pointing there. Without -media-dir (plain
// `go test ./...`) the tests skip.
package mediatest

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gohv/tools/media/bootmedia"
	"gohv/tools/qemu"
)

var (
	mediaDir = flag.String("media-dir", "", "directory with gohv.iso, pxe/ and gohv.img built with -default selftest -timeout 0 (make test-media builds build/mediatest); the tests skip without it")
	ovmfCode = flag.String("ovmf-code", "/usr/share/OVMF/OVMF_CODE.fd", "OVMF firmware code (Debian: ovmf)")
	ovmfVars = flag.String("ovmf-vars", "/usr/share/OVMF/OVMF_VARS.fd", "OVMF variable store template, copied for each boot")
	timeout  = flag.Duration("boot-timeout", 4*time.Minute, "how long one boot may take before the emulator is killed")
)

// slots bounds the emulators running at once: the machines have two cores,
// and TCG is one busy thread per emulator.
var slots = make(chan struct{}, 2)

type firmware string

const (
	seabios firmware = "SeaBIOS"
	ovmf    firmware = "OVMF"
)

// media returns the test media directory, or skips.
func media(t *testing.T) string {
	t.Helper()
	if *mediaDir == "" {
		t.Skip("no -media-dir: run `make test-media`")
	}
	if _, err := os.Stat(*mediaDir); err != nil {
		t.Skipf("media not built: %v (run `make test-media`)", err)
	}
	if !qemu.Available() {
		t.Skip(qemu.ErrNoQEMU)
	}
	return *mediaDir
}

// medium returns the path of one medium in the media directory. The media
// directory exists, so a missing medium is a build failure, not a skip.
func medium(t *testing.T, rel string) string {
	t.Helper()
	p := filepath.Join(media(t), rel)
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("medium missing: %v (`make test-media` builds all three)", err)
	}
	return p
}

func needOVMF(t *testing.T) {
	t.Helper()
	for _, f := range []string{*ovmfCode, *ovmfVars} {
		if _, err := os.Stat(f); err != nil {
			t.Skipf("OVMF not installed: %v (Debian: apt-get install ovmf)", err)
		}
	}
}

// boot runs one emulator under fw with the given devices, at most two at a
// time. On failure the whole serial log is printed.
func boot(t *testing.T, fw firmware, machine string, limit time.Duration, devices ...string) *qemu.Result {
	t.Helper()
	var extra []string
	if fw == ovmf {
		needOVMF(t)
		vars := filepath.Join(t.TempDir(), "OVMF_VARS.fd")
		if err := copyFile(*ovmfVars, vars); err != nil {
			t.Fatal(err)
		}
		extra = append(extra,
			"-drive", "if=pflash,format=raw,readonly=on,file="+*ovmfCode,
			"-drive", "if=pflash,format=raw,file="+vars)
	}
	c := qemu.Config{Machine: machine, Extra: append(extra, devices...), Timeout: limit}
	slots <- struct{}{}
	r, err := qemu.Run(context.Background(), c)
	<-slots
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s on %s: %s in %v", fw, machine, r.Describe(), r.Elapsed.Round(100*time.Millisecond))
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("qemu %s\n%s\n---- serial log ----\n%s\n---- end ----\n%s", strings.Join(c.Args(), " "), r.Describe(), r.Log, r.Describe())
		}
	})
	return r
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// checkTestConfig makes sure the media boot the selftest entry at once: the
// default configuration also ends in a PASS verdict, so a medium built with
// the wrong default would pass without testing anything.
func checkTestConfig(t *testing.T, dir string) {
	t.Helper()
	cfg, err := os.ReadFile(filepath.Join(dir, "pxe", filepath.FromSlash(bootmedia.ConfigPath)))
	if err != nil {
		t.Fatalf("reading the PXE tree's grub.cfg: %v", err)
	}
	for _, want := range []string{"set default=" + bootmedia.EntrySelftest + "\n", "set timeout=0\n"} {
		if !bytes.Contains(cfg, []byte(want)) {
			t.Fatalf("media in %s were not built for tests: grub.cfg lacks %q (build them with -default selftest -timeout 0)", dir, strings.TrimSpace(want))
		}
	}
	for _, m := range testModules {
		if !bytes.Contains(cfg, []byte("module2 --nounzip "+bootmedia.ModulePath(m)+" "+m+";")) {
			t.Fatalf("media in %s were not built for tests: grub.cfg does not load module %s (build them with -config tools/mediatest/testdata/gohv.toml)", dir, m)
		}
	}
}

// testModules are the boot modules of the test media, in order: the
// configuration and the module it names.
var testModules = []string{"config", "payload.gz"}

// requireModules wants the image's report of the boot modules GRUB handed
// over: every module of the medium, by name, in order, each exactly as long
// as its file on the medium (gzip data stays compressed).
func requireModules(t *testing.T, r *qemu.Result, dir string) {
	t.Helper()
	var want []string
	for _, m := range testModules {
		fi, err := os.Stat(filepath.Join(dir, "pxe", filepath.FromSlash(bootmedia.ModulePath(m))))
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, fmt.Sprintf("%s (%d bytes)", m, fi.Size()))
	}
	line := fmt.Sprintf("gohv: metal: %d boot modules: %s", len(want), strings.Join(want, ", "))
	if !bytes.Contains(r.Log, []byte(line+"\n")) && !bytes.Contains(r.Log, []byte(line+"\r\n")) {
		t.Errorf("the image did not report the medium's modules: want the line\n%s", line)
	}
}

// requireSelftestPass wants the single PASS verdict of a selftest run, with
// its checks reported (the default configuration reports none).
func requireSelftestPass(t *testing.T, r *qemu.Result) {
	t.Helper()
	if !r.Passed() {
		t.Fatalf("boot did not pass: %s", r.Describe())
	}
	if len(r.Verdict.Checks) == 0 {
		t.Fatalf("PASS without self-checks: the medium did not boot the selftest entry")
	}
	if !bytes.Contains(r.Log, []byte("gohv-media: loading "+bootmedia.KernelPath)) {
		t.Fatalf("the serial log does not show GRUB loading %s from the medium", bootmedia.KernelPath)
	}
}

// TestBoot boots every medium under the firmware it is meant for.
func TestBoot(t *testing.T) {
	dir := media(t)
	checkTestConfig(t, dir)
	usb := func(file string) []string {
		return []string{"-drive", "if=none,id=stick,format=raw,readonly=on,file=" + file,
			"-device", "qemu-xhci", "-device", "usb-storage,drive=stick"}
	}
	// QEMU's user network is restricted: the guest reaches its built-in DHCP
	// and TFTP servers and nothing else.
	pxe := func(tree, bootfile string) []string {
		return []string{"-netdev", "user,id=net,restrict=on,tftp=" + tree + ",bootfile=" + bootfile,
			"-device", "e1000,netdev=net"}
	}
	disk := func(file string) []string {
		return []string{"-drive", "if=ide,format=raw,snapshot=on,file=" + file}
	}
	for _, tc := range []struct {
		name    string
		fw      firmware
		machine string
		devices func(t *testing.T) []string
	}{
		{"iso-cdrom-seabios", seabios, "pc", func(t *testing.T) []string {
			return []string{"-cdrom", medium(t, "gohv.iso"), "-boot", "d"}
		}},
		{"iso-usb-seabios", seabios, "q35", func(t *testing.T) []string { return usb(medium(t, "gohv.iso")) }},
		{"iso-cdrom-ovmf", ovmf, "q35", func(t *testing.T) []string { return []string{"-cdrom", medium(t, "gohv.iso")} }},
		{"iso-usb-ovmf", ovmf, "q35", func(t *testing.T) []string { return usb(medium(t, "gohv.iso")) }},
		{"pxe-seabios", seabios, "q35", func(t *testing.T) []string {
			return append(pxe(medium(t, "pxe"), bootmedia.PXEBootFileBIOS), "-boot", "n")
		}},
		{"pxe-ovmf", ovmf, "q35", func(t *testing.T) []string { return pxe(medium(t, "pxe"), bootmedia.PXEBootFileEFI) }},
		{"disk-seabios", seabios, "q35", func(t *testing.T) []string { return disk(medium(t, "gohv.img")) }},
		{"disk-ovmf", ovmf, "q35", func(t *testing.T) []string { return disk(medium(t, "gohv.img")) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := boot(t, tc.fw, tc.machine, *timeout, tc.devices(t)...)
			requireSelftestPass(t, r)
			requireModules(t, r, dir)
		})
	}
}

// TestDamagedKernel cuts the kernel short on copies of the PXE tree and of
// the disk image. GRUB's multiboot2 loader would load the short file without
// complaint (the image's address tag says how much to load, and a short read
// is not an error there) and jump into it, so the boot configuration checks
// the kernel's SHA-256 first: GRUB must report the mismatch on the serial
// console, print one FAIL verdict and power off, well before the timeout.
func TestDamagedKernel(t *testing.T) {
	dir := media(t)
	checkTestConfig(t, dir)
	t.Run("pxe-seabios", func(t *testing.T) {
		t.Parallel()
		tree := filepath.Join(t.TempDir(), "pxe")
		if err := os.CopyFS(tree, os.DirFS(medium(t, "pxe"))); err != nil {
			t.Fatal(err)
		}
		truncateKernel(t, filepath.Join(tree, filepath.FromSlash(bootmedia.KernelPath)))
		r := boot(t, seabios, "q35", 90*time.Second,
			"-netdev", "user,id=net,restrict=on,tftp="+tree+",bootfile="+bootmedia.PXEBootFileBIOS,
			"-device", "e1000,netdev=net", "-boot", "n")
		requireDamageReported(t, r, bootmedia.KernelPath, "kernel failed its SHA-256 check")
	})
	t.Run("disk-ovmf", func(t *testing.T) {
		t.Parallel()
		needOVMF(t)
		mcopy, err := exec.LookPath("mcopy")
		if err != nil {
			t.Skip("mcopy not installed (Debian: mtools)")
		}
		img := filepath.Join(t.TempDir(), "gohv.img")
		if err := copyFile(medium(t, "gohv.img"), img); err != nil {
			t.Fatal(err)
		}
		disk, err := os.ReadFile(img)
		if err != nil {
			t.Fatal(err)
		}
		gpt, err := bootmedia.ReadGPT(disk)
		if err != nil {
			t.Fatal(err)
		}
		var espOffset uint64
		for _, p := range gpt.Partitions {
			if p.Type == bootmedia.TypeESP {
				espOffset = p.FirstLBA * bootmedia.SectorSize
			}
		}
		if espOffset == 0 {
			t.Fatal("no EFI system partition on the disk image")
		}
		// Write a short kernel over the ESP's with mtools, into the
		// partition at its byte offset in the image.
		short := filepath.Join(t.TempDir(), "kernel")
		if err := copyFile(filepath.Join(medium(t, "pxe"), filepath.FromSlash(bootmedia.KernelPath)), short); err != nil {
			t.Fatal(err)
		}
		truncateKernel(t, short)
		cmd := exec.Command(mcopy, "-o", "-i", fmt.Sprintf("%s@@%d", img, espOffset), short, "::"+bootmedia.KernelPath)
		cmd.Env = append(os.Environ(), "MTOOLS_SKIP_CHECK=1")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("mcopy: %v\n%s", err, out)
		}
		r := boot(t, ovmf, "q35", 90*time.Second, "-drive", "if=ide,format=raw,file="+img)
		requireDamageReported(t, r, bootmedia.KernelPath, "kernel failed its SHA-256 check")
	})
}

// TestDamagedModule cuts the configuration module short on a copy of the
// PXE tree: GRUB must report the mismatch, and the verdict name the module,
// before the image starts with half a configuration.
func TestDamagedModule(t *testing.T) {
	dir := media(t)
	checkTestConfig(t, dir)
	t.Parallel()
	tree := filepath.Join(t.TempDir(), "pxe")
	if err := os.CopyFS(tree, os.DirFS(medium(t, "pxe"))); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(tree, filepath.FromSlash(bootmedia.ModulePath("config")))
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data[:len(data)/2], 0o644); err != nil {
		t.Fatal(err)
	}
	r := boot(t, seabios, "q35", 90*time.Second,
		"-netdev", "user,id=net,restrict=on,tftp="+tree+",bootfile="+bootmedia.PXEBootFileBIOS,
		"-device", "e1000,netdev=net", "-boot", "n")
	requireDamageReported(t, r, bootmedia.ModulePath("config"), "module config: bad SHA-256")
}

// truncateKernel cuts a kernel file in half. Its Multiboot2 header, in the
// first 32 KiB, survives: GRUB would still take it for a kernel.
func truncateKernel(t *testing.T, path string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	data = data[:len(data)/2]
	if _, err := bootmedia.FindMultiboot2Header(data); err != nil {
		t.Fatalf("the truncated kernel lost its header, so the test would not test the loader: %v", err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// requireDamageReported wants GRUB's own report of the mismatch of file,
// the boot configuration's error (why) and a verdict giving it, and a
// power-off instead of a hang.
func requireDamageReported(t *testing.T, r *qemu.Result, file, why string) {
	t.Helper()
	if r.TimedOut {
		t.Fatalf("damaged medium hung: %s", r.Describe())
	}
	if r.ExitCode != qemu.ExitPowerOff {
		t.Errorf("QEMU exit status %d, want %d (GRUB's halt powers off)", r.ExitCode, qemu.ExitPowerOff)
	}
	for _, want := range []string{
		file + ": HASH MISMATCH",
		"gohv-media: error: " + why,
	} {
		if !bytes.Contains(r.Log, []byte(want)) {
			t.Errorf("serial log lacks %q", want)
		}
	}
	v := r.Verdict
	if v.Verdicts != 1 || v.Pass || v.Reason != "boot medium: "+why {
		t.Errorf("verdict: %d verdict lines, pass=%v, reason %q; want exactly one FAIL: boot medium: %s",
			v.Verdicts, v.Pass, v.Reason, why)
	}
	if bytes.Contains(r.Log, []byte("gohv: metal:")) {
		t.Errorf("the kernel was started from a damaged medium")
	}
}
