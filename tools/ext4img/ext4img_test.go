package ext4img

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// needMke2fs skips where e2fsprogs is missing (CI installs it).
func needMke2fs(t *testing.T) {
	t.Helper()
	if _, err := lookMke2fs(); err != nil {
		t.Skip(err)
	}
}

// The same files give the same image, and debugfs (e2fsprogs) finds the
// files in it with their contents and modes.
func TestBuildIsReproducibleAndHoldsTheFiles(t *testing.T) {
	needMke2fs(t)
	dir := t.TempDir()
	files := []File{{Name: "hello.txt", Data: []byte("hello\n")}, {Name: "bin/tool", Data: []byte("#!/bin/sh\n"), Mode: 0o755}}
	a, b := filepath.Join(dir, "a.img"), filepath.Join(dir, "b.img")
	for _, p := range []string{a, b} {
		if err := Build(context.Background(), p, 8, files); err != nil {
			t.Fatal(err)
		}
	}
	da, _ := os.ReadFile(a)
	db, _ := os.ReadFile(b)
	if len(da) != 8<<20 || !bytes.Equal(da, db) {
		t.Fatalf("two builds: %d and %d bytes, equal %v", len(da), len(db), bytes.Equal(da, db))
	}
	if _, err := exec.LookPath("debugfs"); err != nil {
		t.Skip("no debugfs to look inside")
	}
	out, err := exec.Command("debugfs", "-R", "cat /hello.txt", a).Output()
	if err != nil || string(out) != "hello\n" {
		t.Fatalf("debugfs cat /hello.txt: %q %v", out, err)
	}
	stats, err := exec.Command("debugfs", "-R", "stats", a).Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Filesystem UUID:          " + uuid, "metadata_csum", "has_journal", "Block size:               4096"} {
		if !strings.Contains(string(stats), want) {
			t.Errorf("debugfs stats has no %q", want)
		}
	}
	out, err = exec.Command("debugfs", "-R", "stat /bin/tool", a).Output()
	if err != nil || !strings.Contains(string(out), "Mode:  0755") {
		t.Fatalf("debugfs stat /bin/tool: %v\n%s", err, out)
	}
}

// Names that leave the file system and a size of nothing are refused; a
// missing mke2fs is named with its package.
func TestBuildRefuses(t *testing.T) {
	needMke2fs(t)
	out := filepath.Join(t.TempDir(), "x.img")
	for _, f := range []File{{Name: "../x"}, {Name: "/etc/x"}, {Name: "."}, {Name: ""}} {
		if err := Build(context.Background(), out, 8, []File{f}); err == nil {
			t.Errorf("file %q accepted", f.Name)
		}
	}
	if err := Build(context.Background(), out, 0, nil); err == nil {
		t.Error("size 0 accepted")
	}
	old := Mke2fs
	Mke2fs = "no-such-mke2fs"
	defer func() { Mke2fs = old }()
	if err := Build(context.Background(), out, 8, nil); err == nil || !strings.Contains(err.Error(), "e2fsprogs") {
		t.Errorf("missing mke2fs: %v", err)
	}
}
