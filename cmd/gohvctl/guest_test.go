package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"gohv/tools/debian/initramfs"
	"gohv/tools/qemu"
)

// guestFiles writes a fake kernel and busybox (the busybox needs only an
// ELF magic to go into an initramfs).
func fakeGuestFiles(t *testing.T) (kernel, busybox string) {
	dir := t.TempDir()
	kernel, busybox = filepath.Join(dir, "vmlinuz"), filepath.Join(dir, "busybox")
	os.WriteFile(kernel, []byte("bzImage"), 0o644)
	os.WriteFile(busybox, []byte("\x7fELF busybox"), 0o755)
	return kernel, busybox
}

// noApt makes fetch find no apt-get for the test.
func noApt(t *testing.T) {
	old := guestAptGet
	guestAptGet = "/nonexistent/apt-get"
	t.Cleanup(func() { guestAptGet = old })
}

const bareConsole = "[    1.686856] Run /init as init process\r\n" +
	"guest: uname-r 6.1.0-57-amd64\r\nguest: hyperv no\r\nguest: cpus 1\r\nguest: poweroff\r\n" +
	"[    1.709109] reboot: Power down\r\n"

func TestGuestIsACommand(t *testing.T) {
	f := newFakeHost(t)
	if code := f.gohvctl("help"); code != 0 || !strings.Contains(f.stdout.String(), "  guest ") {
		t.Errorf("help (status %d) does not list guest:\n%s", code, f.stdout.String())
	}
	if code := f.gohvctl("guest", "-h"); code != 0 || !strings.Contains(f.stdout.String(), "run-bare") || !strings.Contains(f.stdout.String(), "-kernel") {
		t.Errorf("guest -h (status %d):\n%s", code, f.stdout.String())
	}
}

func TestGuestRefusesBadCommandLines(t *testing.T) {
	k, bb := fakeGuestFiles(t)
	for _, args := range [][]string{
		{"guest"},
		{"guest", "boot"},
		{"guest", "fetch", "extra"},
		{"guest", "initramfs", "-init", "x", "-shell"},
		{"guest", "run-bare", "-kernel", k, "-modules", "hv_vmbus"},
		{"guest", "run-bare", "-kernel", k, "-initrd", "x", "-gzip"},
		{"guest", "run-bare", "-kernel", k, "-busybox", bb, "-smp", "0"},
		{"guest", "run-bare", "-no-such-flag"},
		{"guest", "disk"},
		{"guest", "disk", "-out", "x.img", "-size", "8"},
	} {
		f := newFakeHost(t)
		if code := f.gohvctl(args...); code != 2 {
			t.Errorf("%q: status %d, want 2; stderr:\n%s", args, code, f.stderr.String())
		}
	}
}

func TestGuestWithoutAptGetSaysWhatToProvide(t *testing.T) {
	noApt(t)
	for _, args := range [][]string{
		{"guest", "fetch"},
		{"guest", "initramfs", "-out", filepath.Join(t.TempDir(), "i.cpio")},
		{"guest", "run-bare"},
	} {
		f := newFakeHost(t)
		code := f.gohvctl(append(args, "-cache", t.TempDir())...)
		want := "no apt-get: provide a Linux bzImage with -kernel and a busybox binary with -busybox"
		if code != 1 || !strings.Contains(f.stderr.String(), want) {
			t.Errorf("%q: status %d, stderr %q; want 1 and %q", args, code, f.stderr.String(), want)
		}
	}
}

func TestGuestInitramfsFromAGivenBusybox(t *testing.T) {
	noApt(t) // nothing to fetch: -busybox is all initramfs needs
	_, bb := fakeGuestFiles(t)
	script := filepath.Join(t.TempDir(), "init.sh")
	os.WriteFile(script, []byte("#!/bin/sh\necho mine\n"), 0o644)
	out := filepath.Join(t.TempDir(), "i.cpio")
	f := newFakeHost(t)
	if code := f.gohvctl("guest", "initramfs", "-busybox", bb, "-init", script, "-out", out); code != 0 {
		t.Fatalf("status %d: %s", code, f.stderr.String())
	}
	if got := f.stdout.String(); got != "initramfs "+out+"\n" {
		t.Errorf("stdout %q", got)
	}
	if init := archiveFile(t, out, "init"); init != "#!/bin/sh\necho mine\n" {
		t.Errorf("/init holds %q", init)
	}
}

// archiveFile returns the contents of name in the cpio archive at path.
func archiveFile(t *testing.T, path, name string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	r := initramfs.NewReader(bytes.NewReader(b))
	for {
		h, err := r.Next()
		if err != nil {
			t.Fatalf("%s: no %s: %v", path, name, err)
		}
		if h.Name == name {
			d, _ := io.ReadAll(r)
			return string(d)
		}
	}
}

func TestGuestRunBareBootsKernelAndTestInitramfs(t *testing.T) {
	noApt(t)
	k, bb := fakeGuestFiles(t)
	f := newFakeHost(t)
	var got qemu.Config
	var init string
	f.h.qemu = func(_ context.Context, c qemu.Config) (*qemu.Result, error) {
		got = c
		i := slices.Index(c.Extra, "-initrd")
		if i < 0 {
			t.Fatalf("no -initrd in %q", c.Extra)
		}
		init = archiveFile(t, c.Extra[i+1], "init") // the initramfs exists while QEMU runs
		io.WriteString(c.Console, bareConsole)
		return &qemu.Result{Log: []byte(bareConsole), ExitCode: 0}, nil
	}
	if code := f.gohvctl("guest", "run-bare", "-kernel", k, "-busybox", bb, "-append", "loglevel=7", "-m", "512"); code != 0 {
		t.Fatalf("status %d: %s", code, f.stderr.String())
	}
	if got.Kernel != k || strings.Join(got.Append, " ") != "console=ttyS0 panic=-1 loglevel=7" || got.MemMiB != 512 ||
		got.CPU != "EPYC" || got.Machine != "pc" || !got.NoDebugExit {
		t.Errorf("QEMU config %+v", got)
	}
	if a := strings.Join(got.Args(), " "); !strings.Contains(a, "-icount shift=0,sleep=off") || !strings.Contains(a, "-smp 1") {
		t.Errorf("QEMU arguments %s", a)
	}
	if init != initramfs.DefaultInit {
		t.Errorf("/init is not the test init:\n%s", init)
	}
	if !strings.Contains(f.stdout.String(), "guest: uname-r 6.1.0-57-amd64") {
		t.Errorf("the console did not reach stdout: %q", f.stdout.String())
	}
	for _, want := range []string{`"Run /init" at 1.686856 s guest time (printk)`, "QEMU exited after", "guest: uname-r 6.1.0-57-amd64", "guest: poweroff\n"} {
		if !strings.Contains(f.stderr.String(), want) {
			t.Errorf("stderr lacks %q:\n%s", want, f.stderr.String())
		}
	}
}

func TestGuestRunBareFailsOnAPanicOrNoInit(t *testing.T) {
	noApt(t)
	k, _ := fakeGuestFiles(t)
	for _, log := range []string{
		"[    0.9] Kernel panic - not syncing: No working init found.\n",
		"[    0.5] nothing\n",
	} {
		f := newFakeHost(t)
		f.h.qemu = func(_ context.Context, c qemu.Config) (*qemu.Result, error) {
			return &qemu.Result{Log: []byte(log)}, nil
		}
		// -initrd: a ready initramfs, so no busybox is needed either.
		if code := f.gohvctl("guest", "run-bare", "-kernel", k, "-initrd", k); code != 1 {
			t.Errorf("%q: status %d, want 1", log, code)
		}
	}
}

// guest disk writes an ext4 image holding README.txt.
func TestGuestDisk(t *testing.T) {
	debugfs, err := exec.LookPath("debugfs")
	if err != nil {
		if debugfs, err = exec.LookPath("/usr/sbin/debugfs"); err != nil {
			t.Skip("no debugfs (e2fsprogs)")
		}
	}
	out := filepath.Join(t.TempDir(), "disk.img")
	f := newFakeHost(t)
	if code := f.gohvctl("guest", "disk", "-out", out, "-size", "16"); code != 0 {
		t.Fatalf("status %d: %s", code, f.stderr.String())
	}
	if st, err := os.Stat(out); err != nil || st.Size() != 16<<20 {
		t.Fatalf("%v %v", st, err)
	}
	b, err := exec.Command(debugfs, "-R", "cat /README.txt", out).Output()
	if err != nil || string(b) != runDiskReadme {
		t.Fatalf("README.txt: %q %v", b, err)
	}
}
