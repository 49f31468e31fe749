package main

import (
	"context"
	"encoding/binary"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"gohv/tools/media/bootmedia"
)

// fakeKernel writes a file that passes bootmedia.ReadKernel: a Multiboot2
// header (magic, architecture i386, length, checksum) at offset 0.
func fakeKernel(t *testing.T) string {
	t.Helper()
	var magic, length uint32 = 0xe85250d6, 16
	b := make([]byte, 64)
	le := binary.LittleEndian
	le.PutUint32(b[0:], magic)
	le.PutUint32(b[4:], 0)
	le.PutUint32(b[8:], length)
	le.PutUint32(b[12:], -(magic + length))
	p := filepath.Join(t.TempDir(), "gohv")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// recordMedia makes f's host record the media it is asked to build.
func recordMedia(f *fakeHost) *[]mediumCall {
	var calls []mediumCall
	f.h.medium = func(_ context.Context, b *bootmedia.Builder, medium, out string, disk bootmedia.DiskOptions) error {
		calls = append(calls, mediumCall{b, medium, out, disk})
		return nil
	}
	return &calls
}

func TestMediaFlagsReachBuilder(t *testing.T) {
	kernel := fakeKernel(t)
	out := filepath.Join(t.TempDir(), "sub", "gohv.img")
	f := newFakeHost(t)
	calls := recordMedia(f)
	code := f.gohvctl("media", "disk", "-kernel", kernel, "-out", out, "-default", "selftest", "-timeout", "0",
		"-args", " a=1  b=2 ", "-serial-unit", "1", "-baud", "9600", "-size-mib", "128", "-grub-dir", "/opt/grub", "-v")
	if code != 0 {
		t.Fatalf("exit %d; stderr %q", code, f.stderr.String())
	}
	if len(*calls) != 1 {
		t.Fatalf("%d media built, want 1", len(*calls))
	}
	c := (*calls)[0]
	if c.medium != bootmedia.MediumDisk || c.out != out {
		t.Errorf("built %s at %s, want disk at %s", c.medium, c.out, out)
	}
	want := bootmedia.Config{Default: "selftest", Timeout: 0, SerialUnit: 1, Baud: 9600, Args: []string{"a=1", "b=2"}}
	if !reflect.DeepEqual(c.b.Config, want) {
		t.Errorf("boot configuration %+v, want %+v", c.b.Config, want)
	}
	if c.b.Kernel == nil || c.b.Kernel.Path != kernel || c.b.GrubLib != "/opt/grub" || c.b.Log != f.h.stderr {
		t.Errorf("builder: kernel %+v, GRUB %q, log to stderr %v; want %s, /opt/grub, true",
			c.b.Kernel, c.b.GrubLib, c.b.Log == f.h.stderr, kernel)
	}
	if c.disk.SizeMiB != 128 {
		t.Errorf("disk of %d MiB, want 128", c.disk.SizeMiB)
	}
	if st, err := os.Stat(filepath.Dir(out)); err != nil || !st.IsDir() {
		t.Errorf("the output's directory was not made: %v", err)
	}
}

func TestMediaDefaults(t *testing.T) {
	kernel := fakeKernel(t)
	f := newFakeHost(t)
	calls := recordMedia(f)
	out := filepath.Join(t.TempDir(), "gohv.iso")
	if code := f.gohvctl("media", "iso", "-kernel", kernel, "-out", out); code != 0 {
		t.Fatalf("exit %d; stderr %q", code, f.stderr.String())
	}
	if len(*calls) != 1 {
		t.Fatalf("%d media built, want 1", len(*calls))
	}
	c := (*calls)[0]
	if c.medium != bootmedia.MediumISO || !reflect.DeepEqual(c.b.Config, bootmedia.DefaultConfig()) ||
		c.b.GrubLib != bootmedia.DefaultGrubLib || c.b.Log != nil || c.disk.SizeMiB != bootmedia.DefaultDiskMiB {
		t.Errorf("built %s with %+v, GRUB %q, log %v, disk %+v; want the defaults", c.medium, c.b.Config, c.b.GrubLib, c.b.Log, c.disk)
	}
	if !strings.Contains(f.stdout.String(), "ISO "+out) {
		t.Errorf("stdout %q does not report the ISO", f.stdout.String())
	}
}

func TestMediaAllBuildsThreeIntoOneDirectory(t *testing.T) {
	kernel := fakeKernel(t)
	dir := filepath.Join(t.TempDir(), "media")
	f := newFakeHost(t)
	calls := recordMedia(f)
	if code := f.gohvctl("media", "all", "-kernel", kernel, "-out", dir, "-size-mib", "96"); code != 0 {
		t.Fatalf("exit %d; stderr %q", code, f.stderr.String())
	}
	var got []string
	for _, c := range *calls {
		got = append(got, c.medium+" "+c.out)
		if c.medium == bootmedia.MediumDisk && c.disk.SizeMiB != 96 {
			t.Errorf("disk of %d MiB, want 96", c.disk.SizeMiB)
		}
	}
	want := []string{"iso " + filepath.Join(dir, "gohv.iso"), "pxe " + filepath.Join(dir, "pxe"), "disk " + filepath.Join(dir, "gohv.img")}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("built %q, want %q", got, want)
	}
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		t.Errorf("-out directory was not made: %v", err)
	}
}

func TestMediaGrubCfg(t *testing.T) {
	f := newFakeHost(t) // builds nothing
	code := f.gohvctl("media", "grub-cfg", "-medium", "disk", "-default", "selftest", "-timeout", "0", "-baud", "9600", "-args", "a=1  b=2")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, f.stderr.String())
	}
	want, err := bootmedia.GrubConfig(bootmedia.Config{Default: "selftest", Timeout: 0, Baud: 9600, Args: []string{"a=1", "b=2"}}, "disk")
	if err != nil {
		t.Fatal(err)
	}
	if f.stdout.String() != string(want) {
		t.Errorf("grub-cfg printed\n%s\nwant\n%s", f.stdout.String(), want)
	}
}

func TestMediaErrors(t *testing.T) {
	dir := t.TempDir()
	notKernel := filepath.Join(dir, "notkernel")
	if err := os.WriteFile(notKernel, []byte("hello"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"media"}, 2, "which medium?"},
		{[]string{"media", "-out", "x"}, 2, "which medium?"},
		{[]string{"media", "floppy"}, 2, `unknown medium "floppy"`},
		{[]string{"media", "iso"}, 2, "-out is required"},
		{[]string{"media", "all"}, 2, "-out is required"},
		{[]string{"media", "iso", "-out", "x.iso", "extra"}, 2, "unexpected arguments"},
		{[]string{"media", "iso", "-out", "x.iso", "-default", "bench"}, 2, "default entry"},
		{[]string{"media", "pxe", "-out", "x", "-args", "a;b"}, 2, "kernel argument"},
		{[]string{"media", "disk", "-bogus"}, 2, "flag provided but not defined"},
		{[]string{"media", "grub-cfg", "-medium", "floppy"}, 2, "unknown medium"},
		{[]string{"media", "iso", "-kernel", notKernel, "-out", filepath.Join(dir, "x.iso")}, 1, "no Multiboot2 header"},
		{[]string{"media", "disk", "-kernel", filepath.Join(dir, "missing"), "-out", filepath.Join(dir, "x.img")}, 1, "kernel"},
	} {
		f := newFakeHost(t) // none of these gets as far as a build
		code := f.gohvctl(tc.args...)
		if code != tc.code || !strings.Contains(f.stderr.String(), tc.want) {
			t.Errorf("gohvctl %q: exit %d, stderr %q; want exit %d mentioning %q", tc.args, code, f.stderr.String(), tc.code, tc.want)
		}
	}
}

func TestMediaBuildFailureIsExit1(t *testing.T) {
	kernel := fakeKernel(t)
	f := newFakeHost(t)
	f.h.medium = func(context.Context, *bootmedia.Builder, string, string, bootmedia.DiskOptions) error {
		return &bootmedia.MissingError{What: []string{"grub-mknetdir"}}
	}
	if code := f.gohvctl("media", "pxe", "-kernel", kernel, "-out", filepath.Join(t.TempDir(), "pxe")); code != 1 {
		t.Errorf("exit %d, want 1; stderr %q", code, f.stderr.String())
	}
}

// buildMedium sends each medium to its builder; a name it does not know is
// an error, never a silent success.
func TestBuildMediumRefusesUnknownMedium(t *testing.T) {
	if err := buildMedium(context.Background(), &bootmedia.Builder{}, "floppy", "x", bootmedia.DiskOptions{}); err == nil {
		t.Error("buildMedium built a floppy")
	}
}
