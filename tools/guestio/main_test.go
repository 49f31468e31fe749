package main

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"testing"
)

// On a plain file (no O_DIRECT: tmpfs refuses it) guestio reads, writes
// and reports each measure, and the write leaves its pattern.
func TestRunReportsEachMeasure(t *testing.T) {
	dev := filepath.Join(t.TempDir(), "disk")
	if err := os.WriteFile(dev, make([]byte, 4<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := run(&out, dev, 2, 64<<10, 100, true, false); err != nil {
		t.Fatal(err)
	}
	for _, re := range []string{
		`guest: io.seq-read-mibps [0-9.]+ \(2 MiB in .*, 64 KiB requests\)`,
		`guest: io.seq-write-mibps [0-9.]+ \(2 MiB`,
		`guest: io.rand-read-iops [0-9]+ \(100 reads of 4 KiB`,
	} {
		if !regexp.MustCompile(re).Match(out.Bytes()) {
			t.Errorf("no line matching %s in\n%s", re, out.String())
		}
	}
	data, _ := os.ReadFile(dev)
	if data[1] != 1 || data[2<<20] != 0 {
		t.Error("the write test did not write its pattern over exactly -mib MiB")
	}
	out.Reset()
	if err := run(&out, dev, 0, 64<<10, 10, true, false); err != nil {
		t.Fatal(err)
	}
	if regexp.MustCompile(`seq-`).Match(out.Bytes()) || !regexp.MustCompile(`rand-read-iops [0-9]+ \(10 reads`).Match(out.Bytes()) {
		t.Errorf("-mib 0 runs the random reads only:\n%s", out.String())
	}
	if err := run(&out, filepath.Join(t.TempDir(), "none"), 1, 4096, 1, false, false); err == nil {
		t.Error("a missing device is not an error")
	}
}
