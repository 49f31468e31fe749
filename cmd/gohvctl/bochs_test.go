package main

import (
	"context"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"gohv/tools/bochs"
	"gohv/tools/media/bootmedia"
	"gohv/tools/verdict"
)

// bochsPass is a Bochs boot that reported PASS and powered off.
func bochsPass() *bochs.Result {
	log := []byte("gohv: verdict PASS\n")
	return &bochs.Result{Log: log, ExitCode: 1, PoweredOff: true, Verdict: verdict.Parse(log)}
}

// stdinMarker stands for the host's stdin in a wanted bochs.Config.
var stdinMarker = strings.NewReader("stdin")

// Without -iso the command builds an ISO from -kernel and -append and boots
// it; every other flag reaches bochs.Config.
func TestBochsFlagsReachConfig(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		iso  isoCall      // out is checked apart: a temporary file
		want bochs.Config // ISO and Console aside
	}{
		{"defaults", []string{"bochs"}, isoCall{kernel: "build/gohv"},
			bochs.Config{MemMiB: bochs.DefaultMemMiB, CPUModel: bochs.DefaultCPUModel, IPS: bochs.DefaultIPS, Timeout: bochs.DefaultTimeout}},
		{"every flag", []string{"bochs", "-kernel", "k.bin", "-append", "hvtest bench", "-m", "2048", "-cpu", "corei7_icelake_u",
			"-ips", "50000000", "-timeout", "20m", "-keep", "/tmp/keep"},
			isoCall{kernel: "k.bin", cmdline: "hvtest bench"},
			bochs.Config{MemMiB: 2048, CPUModel: "corei7_icelake_u", IPS: 50_000_000, Timeout: 20 * time.Minute, WorkDir: "/tmp/keep"}},
		{"input", []string{"bochs", "-input"}, isoCall{kernel: "build/gohv"},
			bochs.Config{MemMiB: bochs.DefaultMemMiB, CPUModel: bochs.DefaultCPUModel, IPS: bochs.DefaultIPS, Timeout: bochs.DefaultTimeout, Input: stdinMarker}},
	} {
		f := newFakeHost(t)
		var isos []isoCall
		var boots []bochs.Config
		f.h.bochsISO = func(_ context.Context, kernel, cmdline, out string, _ []*bootmedia.Module) error {
			isos = append(isos, isoCall{kernel: kernel, cmdline: cmdline, out: out})
			return nil
		}
		f.h.bochs = func(_ context.Context, c bochs.Config) (*bochs.Result, error) {
			boots = append(boots, c)
			return bochsPass(), nil
		}
		if code := f.gohvctl(tc.args...); code != 0 {
			t.Errorf("%s: exit %d, want 0; stderr %q", tc.name, code, f.stderr.String())
		}
		if len(isos) != 1 || len(boots) != 1 {
			t.Fatalf("%s: %d ISO builds and %d boots, want one each", tc.name, len(isos), len(boots))
		}
		if isos[0].kernel != tc.iso.kernel || isos[0].cmdline != tc.iso.cmdline {
			t.Errorf("%s: ISO built for kernel %q, command line %q; want %q, %q", tc.name, isos[0].kernel, isos[0].cmdline, tc.iso.kernel, tc.iso.cmdline)
		}
		got := boots[0]
		if got.ISO != isos[0].out || !filepath.IsAbs(got.ISO) {
			t.Errorf("%s: booted %q, want the ISO just built (%q)", tc.name, got.ISO, isos[0].out)
		}
		if got.Console != f.h.stdout {
			t.Errorf("%s: the serial console does not reach stdout", tc.name)
		}
		got.ISO, got.Console = "", nil
		if got.Input != nil {
			if got.Input != f.h.stdin {
				t.Errorf("%s: the console's input is not stdin", tc.name)
			}
			got.Input = stdinMarker
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: Bochs config\n%+v\nwant\n%+v", tc.name, got, tc.want)
		}
	}
}

func TestBochsISOFlagBootsThatMedium(t *testing.T) {
	f := newFakeHost(t) // an ISO build fails the test
	var boots []bochs.Config
	f.h.bochs = func(_ context.Context, c bochs.Config) (*bochs.Result, error) {
		boots = append(boots, c)
		return bochsPass(), nil
	}
	if code := f.gohvctl("bochs", "-iso", "some.iso", "-m", "256"); code != 0 {
		t.Errorf("exit %d, want 0; stderr %q", code, f.stderr.String())
	}
	if len(boots) != 1 || boots[0].ISO != "some.iso" || boots[0].MemMiB != 256 {
		t.Errorf("boots %+v, want one of some.iso with 256 MiB", boots)
	}
}

// bochs's exit status is the boot's outcome: 0 only for PASS then power-off.
func TestBochsExitStatusFollowsVerdict(t *testing.T) {
	noPowerOff := bochsPass()
	noPowerOff.PoweredOff, noPowerOff.Killed = false, true
	fail := []byte("gohv: verdict FAIL no vmx\n")
	for _, tc := range []struct {
		name string
		r    *bochs.Result
		err  error
		want int
	}{
		{"pass", bochsPass(), nil, 0},
		{"pass without power-off", noPowerOff, nil, 1},
		{"fail", &bochs.Result{Log: fail, PoweredOff: true, Verdict: verdict.Parse(fail)}, nil, 1},
		{"no bochs", nil, bochs.ErrNoBochs, 1},
	} {
		f := newFakeHost(t)
		f.h.bochs = func(context.Context, bochs.Config) (*bochs.Result, error) { return tc.r, tc.err }
		if code := f.gohvctl("bochs", "-iso", "x.iso"); code != tc.want {
			t.Errorf("%s: exit %d, want %d; stderr %q", tc.name, code, tc.want, f.stderr.String())
		}
	}
}

func TestBochsISOBuildFailureBootsNothing(t *testing.T) {
	f := newFakeHost(t) // a boot fails the test
	f.h.bochsISO = func(context.Context, string, string, string, []*bootmedia.Module) error { return bochs.ErrNoBochs }
	if code := f.gohvctl("bochs", "-append", "selftest"); code != 1 {
		t.Errorf("exit %d, want 1; stderr %q", code, f.stderr.String())
	}
}
