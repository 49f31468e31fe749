package main

import (
	"context"
	"io"
	"reflect"
	"strings"
	"testing"
	"time"

	"gohv/tools/qemu"
	"gohv/tools/verdict"
)

// bootResult is a QEMU boot that ended with exit status code and a serial
// log holding log.
func bootResult(code int, log string) *qemu.Result {
	return &qemu.Result{Log: []byte(log), ExitCode: code, Verdict: verdict.Parse([]byte(log))}
}

func TestRunFlagsReachQEMUConfig(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want qemu.Config // Console aside: always stdout
	}{
		{"defaults", []string{"run"},
			qemu.Config{Kernel: "build/gohv", Machine: "q35", CPU: "EPYC", MemMiB: 512, Timeout: 10 * time.Minute}},
		{"every flag", []string{"run", "-kernel", "k.bin", "-append", " selftest  inject=mmap-missing ", "-M", "pc",
			"-cpu", "EPYC,-svm", "-m", "2048", "-icount", "-timeout", "90s", "-qemu", "-smp 2  -d int"},
			qemu.Config{Kernel: "k.bin", Append: []string{"selftest", "inject=mmap-missing"}, Machine: "pc",
				CPU: "EPYC,-svm", MemMiB: 2048, Icount: true, Timeout: 90 * time.Second,
				Extra: []string{"-smp", "2", "-d", "int"}}},
		{"linux measures", []string{"run", "-icount", "-skip-idle"},
			qemu.Config{Kernel: "build/gohv", Machine: "q35", CPU: "EPYC", MemMiB: 512, Icount: true, SkipIdle: true, Timeout: 10 * time.Minute}},
	} {
		f := newFakeHost(t)
		var got []qemu.Config
		f.h.qemu = func(_ context.Context, c qemu.Config) (*qemu.Result, error) {
			got = append(got, c)
			return bootResult(qemu.ExitPass, "gohv: verdict PASS\n"), nil
		}
		if code := f.gohvctl(tc.args...); code != 0 {
			t.Errorf("%s: exit %d, want 0; stderr %q", tc.name, code, f.stderr.String())
		}
		if len(got) != 1 {
			t.Fatalf("%s: %d QEMU boots, want 1", tc.name, len(got))
		}
		if got[0].Console != f.h.stdout {
			t.Errorf("%s: the serial console does not reach stdout", tc.name)
		}
		got[0].Console = nil
		if !reflect.DeepEqual(got[0], tc.want) {
			t.Errorf("%s: QEMU config\n%+v\nwant\n%+v", tc.name, got[0], tc.want)
		}
	}
}

// run's exit status is the boot's outcome: 0 only for a clean pass.
func TestRunExitStatusFollowsVerdict(t *testing.T) {
	for _, tc := range []struct {
		name string
		r    *qemu.Result
		err  error
		want int
	}{
		{"pass", bootResult(qemu.ExitPass, "gohv: verdict PASS\n"), nil, 0},
		{"pass then power-off", bootResult(qemu.ExitPowerOff, "gohv: verdict PASS\n"), nil, 0},
		{"fail", bootResult(qemu.ExitFail, "gohv: verdict FAIL no svm\n"), nil, 1},
		{"pass line but fail exit", bootResult(qemu.ExitFail, "gohv: verdict PASS\n"), nil, 1},
		{"no verdict", bootResult(qemu.ExitPowerOff, "garbage\n"), nil, 1},
		{"qemu missing", nil, qemu.ErrNoQEMU, 1},
	} {
		f := newFakeHost(t)
		f.h.qemu = func(context.Context, qemu.Config) (*qemu.Result, error) { return tc.r, tc.err }
		if code := f.gohvctl("run"); code != tc.want {
			t.Errorf("%s: exit %d, want %d; stderr %q", tc.name, code, tc.want, f.stderr.String())
		}
	}
}

// -input hands QEMU gohvctl's standard input as the serial console's;
// without it QEMU gets none.
func TestRunInput(t *testing.T) {
	for _, input := range []bool{false, true} {
		f := newFakeHost(t)
		var got qemu.Config
		f.h.qemu = func(_ context.Context, c qemu.Config) (*qemu.Result, error) {
			got = c
			return bootResult(qemu.ExitPass, "gohv: verdict PASS\n"), nil
		}
		args := []string{"run"}
		if input {
			args = append(args, "-input")
		}
		if code := f.gohvctl(args...); code != 0 {
			t.Fatalf("%v: exit %d; stderr %q", args, code, f.stderr.String())
		}
		if want := map[bool]io.Reader{false: nil, true: f.h.stdin}[input]; got.Input != want {
			t.Errorf("%v: QEMU input %v, want %v", args, got.Input, want)
		}
	}
	f := newFakeHost(t)
	if code := f.gohvctl("run", "-skip-idle"); code != 2 || !strings.Contains(f.stderr.String(), "-skip-idle goes with -icount") {
		t.Errorf("-skip-idle alone: exit %d, stderr %q", code, f.stderr.String())
	}
}
