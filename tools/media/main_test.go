package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gohv/tools/media/bootmedia"
)

func runCLI(args ...string) (code int, stdout, stderr string) {
	var o, e bytes.Buffer
	code = run(context.Background(), args, &o, &e)
	return code, o.String(), e.String()
}

func TestGrubCfgCommand(t *testing.T) {
	code, out, errs := runCLI("grub-cfg", "-medium", "disk", "-default", "selftest", "-timeout", "0", "-baud", "9600", "-args", "a=1  b=2")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	want, err := bootmedia.GrubConfig(bootmedia.Config{Default: "selftest", Timeout: 0, Baud: 9600, Args: []string{"a=1", "b=2"}}, "disk")
	if err != nil {
		t.Fatal(err)
	}
	if out != string(want) {
		t.Errorf("grub-cfg printed\n%s\nwant\n%s", out, want)
	}
}

func TestUsageErrors(t *testing.T) {
	dir := t.TempDir()
	notKernel := filepath.Join(dir, "notkernel")
	os.WriteFile(notKernel, []byte("hello"), 0o644)
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{nil, 2, "usage"},
		{[]string{"floppy"}, 2, `unknown command "floppy"`},
		{[]string{"iso"}, 2, "-out is required"},
		{[]string{"iso", "-out", "x.iso", "extra"}, 2, "unexpected arguments"},
		{[]string{"iso", "-out", "x.iso", "-default", "bench"}, 2, "default entry"},
		{[]string{"pxe", "-out", "x", "-args", "a;b"}, 2, "kernel argument"},
		{[]string{"disk", "-bogus"}, 2, "flag provided but not defined"},
		{[]string{"grub-cfg", "-medium", "floppy"}, 2, "unknown medium"},
		{[]string{"iso", "-kernel", notKernel, "-out", filepath.Join(dir, "x.iso")}, 1, "no Multiboot2 header"},
		{[]string{"disk", "-kernel", filepath.Join(dir, "missing"), "-out", filepath.Join(dir, "x.img")}, 1, "kernel"},
	} {
		code, _, errs := runCLI(tc.args...)
		if code != tc.code || !strings.Contains(errs, tc.want) {
			t.Errorf("media %q: exit %d, stderr %q; want exit %d mentioning %q", tc.args, code, errs, tc.code, tc.want)
		}
	}
	if code, _, _ := runCLI("help"); code != 0 {
		t.Errorf("help: exit %d", code)
	}
}
