package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"gohv/tools/bochs"
	"gohv/tools/media/bootmedia"
	"gohv/tools/qemu"
)

// fakeHost is a host whose emulators and builders record what they were
// asked to do and do nothing else. A test that does not expect a call
// leaves the hook as it is: it fails the test.
type fakeHost struct {
	t              *testing.T
	stdin          string
	stdout, stderr bytes.Buffer
	h              *host

	qemuCalls  []qemu.Config
	bochsCalls []bochs.Config
	isoCalls   []isoCall
	media      []mediumCall
}

type isoCall struct {
	kernel, cmdline, out string
	modules              []string // names, in order
}

type mediumCall struct {
	b      *bootmedia.Builder
	medium string
	out    string
	disk   bootmedia.DiskOptions
}

func newFakeHost(t *testing.T) *fakeHost {
	f := &fakeHost{t: t}
	f.h = &host{
		stdin:  strings.NewReader(""),
		stdout: &f.stdout, stderr: &f.stderr,
		qemu: func(_ context.Context, c qemu.Config) (*qemu.Result, error) {
			t.Errorf("unexpected QEMU boot %+v", c)
			return nil, context.Canceled
		},
		bochs: func(_ context.Context, c bochs.Config) (*bochs.Result, error) {
			t.Errorf("unexpected Bochs boot %+v", c)
			return nil, context.Canceled
		},
		bochsISO: func(_ context.Context, kernel, cmdline, out string, _ []*bootmedia.Module) error {
			t.Errorf("unexpected ISO build %q %q %q", kernel, cmdline, out)
			return context.Canceled
		},
		medium: func(_ context.Context, _ *bootmedia.Builder, medium, out string, _ bootmedia.DiskOptions) error {
			t.Errorf("unexpected %s build at %s", medium, out)
			return context.Canceled
		},
	}
	return f
}

// gohvctl runs the command line args (without "gohvctl") and returns its
// exit status.
func (f *fakeHost) gohvctl(args ...string) int {
	f.stdout.Reset()
	f.stderr.Reset()
	f.h.stdin = strings.NewReader(f.stdin)
	return f.h.main(context.Background(), args)
}

// The names every usage text must list: a dropped table entry shows here.
var commandNames = []string{"run", "bochs", "media", "verdict", "help"}

func wantUsage(t *testing.T, where, text string) {
	t.Helper()
	if !strings.HasPrefix(text, "usage: gohvctl <command>") && !strings.Contains(text, "\nusage: gohvctl <command>") {
		t.Errorf("%s holds no usage line:\n%s", where, text)
	}
	for _, n := range commandNames {
		if !strings.Contains(text, "\n  "+n+" ") {
			t.Errorf("%s does not list command %q:\n%s", where, n, text)
		}
	}
}

func TestUnknownCommandIsUsageError(t *testing.T) {
	for _, args := range [][]string{{"floppy"}, {"bochsrun", "-append", "selftest"}, {"-append"}, {"Run"}} {
		f := newFakeHost(t)
		if code := f.gohvctl(args...); code != 2 {
			t.Errorf("gohvctl %q: exit %d, want 2", args, code)
		}
		if want := `unknown command "` + args[0] + `"`; !strings.Contains(f.stderr.String(), want) {
			t.Errorf("gohvctl %q: stderr %q does not say %s", args, f.stderr.String(), want)
		}
		wantUsage(t, "stderr", f.stderr.String())
		if f.stdout.Len() != 0 {
			t.Errorf("gohvctl %q wrote to stdout: %q", args, f.stdout.String())
		}
	}
}

func TestNoCommandIsUsageError(t *testing.T) {
	f := newFakeHost(t)
	if code := f.gohvctl(); code != 2 {
		t.Errorf("gohvctl: exit %d, want 2", code)
	}
	wantUsage(t, "stderr", f.stderr.String())
}

func TestHelpListsCommands(t *testing.T) {
	for _, w := range []string{"help", "-h", "-help", "--help"} {
		f := newFakeHost(t)
		if code := f.gohvctl(w); code != 0 {
			t.Errorf("gohvctl %s: exit %d, want 0; stderr %q", w, code, f.stderr.String())
		}
		wantUsage(t, "gohvctl "+w+" stdout", f.stdout.String())
	}
	f := newFakeHost(t)
	if code := f.gohvctl("help", "floppy"); code != 2 || !strings.Contains(f.stderr.String(), "floppy") {
		t.Errorf("gohvctl help floppy: exit %d, stderr %q; want 2 naming floppy", code, f.stderr.String())
	}
}

// Each command's -h prints that command's synopsis and flags on stdout,
// exits 0 and boots or builds nothing; `help <command>` prints the same.
func TestSubcommandHelp(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want []string // its synopsis and flags only it has
		not  []string // flags of other commands
	}{
		{[]string{"run"}, []string{"usage: gohvctl run", "-icount", "-qemu", "-M ", "-append", "-kernel"}, []string{"-keep", "-size-mib"}},
		{[]string{"bochs"}, []string{"usage: gohvctl bochs", "-keep", "-iso", "-ips", "-cpu", "-append", "-m "}, []string{"-icount", "-size-mib"}},
		{[]string{"media"}, []string{"usage: gohvctl media iso|pxe|disk|all|grub-cfg", "-size-mib", "-serial-unit", "-baud", "-default", "-args", "-grub-dir", "-medium"}, []string{"-icount", "-keep"}},
		{[]string{"media", "iso"}, []string{"usage: gohvctl media", "-out", "-size-mib"}, []string{"-keep"}},
		{[]string{"verdict"}, []string{"usage: gohvctl verdict [log]"}, []string{"-kernel"}},
	} {
		f := newFakeHost(t)
		args := append(append([]string{}, tc.args...), "-h")
		code := f.gohvctl(args...)
		out := f.stdout.String()
		if code != 0 {
			t.Errorf("gohvctl %q: exit %d, want 0; stderr %q", args, code, f.stderr.String())
		}
		for _, w := range tc.want {
			if !strings.Contains(out, w) {
				t.Errorf("gohvctl %q: stdout lacks %q:\n%s", args, w, out)
			}
		}
		for _, w := range tc.not {
			if strings.Contains(out, w) {
				t.Errorf("gohvctl %q: stdout has another command's %q:\n%s", args, w, out)
			}
		}
		if len(tc.args) == 1 {
			if code := f.gohvctl("help", tc.args[0]); code != 0 || f.stdout.String() != out {
				t.Errorf("gohvctl help %s: exit %d, stdout\n%s\nwant %s -h's\n%s", tc.args[0], code, f.stdout.String(), tc.args[0], out)
			}
		}
	}
}

// A flag a command does not have, or arguments it does not take, are a
// usage error naming them, with the command's flags on stderr.
func TestBadArgumentsAreUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"run", "-bogus"}, "flag provided but not defined: -bogus"},
		{[]string{"run", "-keep", "x"}, "flag provided but not defined: -keep"},
		{[]string{"run", "-m", "lots"}, `invalid value "lots" for flag -m`},
		{[]string{"run", "selftest"}, `unexpected arguments ["selftest"]`},
		{[]string{"bochs", "-icount"}, "flag provided but not defined: -icount"},
		{[]string{"bochs", "hvtest"}, `unexpected arguments ["hvtest"]`},
		{[]string{"bochs", "-iso", "x.iso", "-append", "selftest"}, "-append does not apply"},
		{[]string{"bochs", "-kernel", "k", "-iso", "x.iso"}, "-kernel does not apply"},
		{[]string{"media", "iso", "-keep", "x"}, "flag provided but not defined: -keep"},
		{[]string{"verdict", "a.log", "b.log"}, "at most one log file"},
	} {
		f := newFakeHost(t)
		if code := f.gohvctl(tc.args...); code != 2 || !strings.Contains(f.stderr.String(), tc.want) {
			t.Errorf("gohvctl %q: exit %d, stderr %q; want 2 mentioning %q", tc.args, code, f.stderr.String(), tc.want)
		}
		if f.stdout.Len() != 0 {
			t.Errorf("gohvctl %q wrote to stdout: %q", tc.args, f.stdout.String())
		}
	}
}
