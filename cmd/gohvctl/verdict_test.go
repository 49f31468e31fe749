package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestVerdictReadsStdinOrFile(t *testing.T) {
	pass := "noise\ngohv: check heap PASS\ngohv: verdict PASS\n"
	fail := "gohv: check heap FAIL lost 3 pages\ngohv: verdict PASS\n"
	file := filepath.Join(t.TempDir(), "serial.log")
	if err := os.WriteFile(file, []byte(fail), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, stdin string
		args        []string
		code        int
		want        string
	}{
		{"stdin pass", pass, nil, 0, "verdict PASS"},
		{"stdin empty", "", nil, 1, "no verdict line"},
		{"file with a failed check", pass, []string{file}, 1, "check heap failed"},
		{"missing file", pass, []string{file + ".missing"}, 2, ""},
	} {
		f := newFakeHost(t)
		f.stdin = tc.stdin
		code := f.gohvctl(append([]string{"verdict"}, tc.args...)...)
		if code != tc.code || !strings.Contains(f.stdout.String(), tc.want) {
			t.Errorf("%s: exit %d, stdout %q; want %d with %q", tc.name, code, f.stdout.String(), tc.code, tc.want)
		}
	}
}
