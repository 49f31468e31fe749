package qemu

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestArgsDefaults(t *testing.T) {
	a := Config{Kernel: "k", Append: []string{"selftest", "x=1"}}.Args()
	s := strings.Join(a, " ")
	for _, want := range []string{"-accel tcg", "-M q35", "-cpu EPYC", "-m 512", "-serial stdio",
		"isa-debug-exit,iobase=0xf4,iosize=0x04", "-kernel k", "-append selftest x=1", "-no-reboot"} {
		if !strings.Contains(s, want) {
			t.Errorf("args %q lack %q", s, want)
		}
	}
	if slices.Contains(a, "-icount") {
		t.Error("icount without asking")
	}
	b := Config{Machine: "pc", CPU: "max", MemMiB: 2048, Icount: true, NoDebugExit: true, Extra: []string{"-cdrom", "x.iso"}}.Args()
	s = strings.Join(b, " ")
	for _, want := range []string{"-M pc", "-cpu max", "-m 2048", "-icount shift=0", "-cdrom x.iso"} {
		if !strings.Contains(s, want) {
			t.Errorf("args %q lack %q", s, want)
		}
	}
	if strings.Contains(s, "debug-exit") || strings.Contains(s, "-kernel") {
		t.Errorf("unexpected args %q", s)
	}
}

// fakeQEMU installs a shell script as the emulator so Run's capture, exit
// status and timeout handling are tested without booting anything.
func fakeQEMU(t *testing.T, script string) {
	t.Helper()
	p := filepath.Join(t.TempDir(), "qemu")
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+script), 0o755); err != nil {
		t.Fatal(err)
	}
	old := Binary
	Binary = p
	t.Cleanup(func() { Binary = old })
}

func TestRunStatuses(t *testing.T) {
	for _, tc := range []struct {
		name, script string
		code         int
		passed       bool
		describe     string
	}{
		{"pass", "echo 'gohv: verdict PASS'; exit 1", ExitPass, true, "debug-exit PASS"},
		{"fail", "echo 'gohv: verdict FAIL broken'; exit 3", ExitFail, false, "FAIL broken"},
		{"poweroff", "echo 'gohv: verdict PASS'; exit 0", ExitPowerOff, true, "powered off"},
		{"lying", "echo 'gohv: verdict FAIL x'; exit 1", ExitPass, false, "FAIL x"},
		{"noverdict", "echo 'gohv: banner'; exit 1", ExitPass, false, "no verdict"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fakeQEMU(t, tc.script)
			r, err := Run(context.Background(), Config{})
			if err != nil {
				t.Fatal(err)
			}
			if r.ExitCode != tc.code || r.Passed() != tc.passed || !strings.Contains(r.Describe(), tc.describe) {
				t.Fatalf("code %d passed %v describe %q", r.ExitCode, r.Passed(), r.Describe())
			}
		})
	}
}

func TestRunTimeout(t *testing.T) {
	fakeQEMU(t, "echo 'gohv: banner'; exec sleep 30")
	r, err := Run(context.Background(), Config{Timeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if !r.TimedOut || r.Passed() || !strings.Contains(string(r.Log), "gohv: banner") {
		t.Fatalf("%+v %s", r, r.Describe())
	}
}

func TestRunMissingKernel(t *testing.T) {
	fakeQEMU(t, "exit 0")
	if _, err := Run(context.Background(), Config{Kernel: "/nonexistent/gohv"}); err == nil {
		t.Fatal("no error for a missing kernel")
	}
}

// Modules become one -initrd item each, "PATH NAME", commas in paths
// doubled as QEMU's option parser wants them.
func TestArgsModules(t *testing.T) {
	c := Config{Kernel: "build/gohv", Modules: []Module{
		{Path: "cfg/gohv.toml", Name: "config"},
		{Path: "/srv/a,b/vmlinuz", Name: "vmlinuz"},
	}}
	a := c.Args()
	i := slices.Index(a, "-initrd")
	if i < 0 || a[i+1] != "cfg/gohv.toml config,/srv/a,,b/vmlinuz vmlinuz" {
		t.Errorf("args %q", a)
	}
	if err := c.Check(); err != nil {
		t.Error(err)
	}
	if a := (Config{Kernel: "k"}).Args(); slices.Contains(a, "-initrd") {
		t.Errorf("-initrd without modules: %q", a)
	}
}

// The command line printed for a person can be pasted into a shell.
func TestCommandLine(t *testing.T) {
	c := Config{Kernel: "build/gohv", Append: []string{"selftest"}, Modules: []Module{{Path: "it's/a", Name: "config"}}}
	got := c.CommandLine()
	if !strings.HasPrefix(got, Binary+" -accel tcg ") || !strings.Contains(got, " -append selftest ") ||
		!strings.Contains(got, ` -initrd 'it'\''s/a config'`) {
		t.Errorf("command line %s", got)
	}
}

func TestCheckModules(t *testing.T) {
	for _, tc := range []struct {
		c    Config
		want string
	}{
		{Config{Modules: []Module{{"a", "a"}}}, "need a kernel"},
		{Config{Kernel: "k", Modules: []Module{{"my files/a", "a"}}}, "cannot carry a path with blanks"},
		{Config{Kernel: "k", Modules: []Module{{"", "a"}}}, `module "a": no file`},
		{Config{Kernel: "k", Modules: []Module{{"x", ""}}}, `name ""`},
		{Config{Kernel: "k", Modules: []Module{{"x", "a b"}}}, `name "a b"`},
	} {
		if err := tc.c.Check(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want an error about %q", tc.c, err, tc.want)
		}
	}
}

func TestRunMissingModule(t *testing.T) {
	fakeQEMU(t, "exit 0")
	kernel := filepath.Join(t.TempDir(), "gohv")
	os.WriteFile(kernel, nil, 0o644)
	_, err := Run(context.Background(), Config{Kernel: kernel, Modules: []Module{{"/nonexistent/initrd", "initrd"}}})
	if err == nil || !strings.Contains(err.Error(), "module initrd") {
		t.Fatalf("missing module: %v", err)
	}
}

// With Input the serial port shares stdio with QEMU's monitor (Ctrl-A x
// quits), and SkipIdle makes -icount skip idle time.
func TestArgsInputAndSkipIdle(t *testing.T) {
	a := strings.Join(Config{Kernel: "k", Input: strings.NewReader(""), Icount: true, SkipIdle: true}.Args(), " ")
	for _, want := range []string{"-serial mon:stdio", "-icount shift=0,sleep=off"} {
		if !strings.Contains(a, want) {
			t.Errorf("args %q lack %q", a, want)
		}
	}
	if a := strings.Join(Config{Kernel: "k", SkipIdle: true}.Args(), " "); strings.Contains(a, "icount") {
		t.Errorf("SkipIdle without Icount: %q", a)
	}
}

// Input reaches QEMU's standard input, and a reader that never ends does
// not keep Run waiting once QEMU has exited.
func TestRunInput(t *testing.T) {
	fakeQEMU(t, "read line; echo \"got $line\"; echo 'gohv: verdict PASS'; exit 1")
	pr, pw := io.Pipe()
	defer pw.Close()
	go pw.Write([]byte("echo hi\n"))
	start := time.Now()
	r, err := Run(context.Background(), Config{Input: pr, Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if !r.Passed() || !strings.Contains(string(r.Log), "got echo hi") {
		t.Fatalf("%s; log %q", r.Describe(), r.Log)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("Run took %v after QEMU exited: waiting on the input", d)
	}
}
