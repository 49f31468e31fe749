package initramfs

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"
)

// entry is one archive entry read back.
type entry struct {
	h    Header
	data string
}

func readArchive(t *testing.T, b []byte) []entry {
	t.Helper()
	if bytes.HasPrefix(b, []byte{0x1f, 0x8b}) {
		zr, err := gzip.NewReader(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		if b, err = io.ReadAll(zr); err != nil {
			t.Fatal(err)
		}
	}
	r := NewReader(bytes.NewReader(b))
	var es []entry
	for {
		h, err := r.Next()
		if err == io.EOF {
			return es
		}
		if err != nil {
			t.Fatal(err)
		}
		d, err := io.ReadAll(r)
		if err != nil {
			t.Fatal(err)
		}
		es = append(es, entry{*h, string(d)})
	}
}

func fakeBusybox(t *testing.T) string {
	p := filepath.Join(t.TempDir(), "busybox")
	if err := os.WriteFile(p, []byte("\x7fELF static busybox"), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func build(t *testing.T, s Spec) []entry {
	t.Helper()
	var b bytes.Buffer
	if err := s.Write(&b); err != nil {
		t.Fatal(err)
	}
	return readArchive(t, b.Bytes())
}

func TestInitramfsLayout(t *testing.T) {
	mod := filepath.Join(t.TempDir(), "hv_vmbus.ko")
	os.WriteFile(mod, []byte("\x7fELF module"), 0o644)
	const modPath = "lib/modules/6.1.0-57-amd64/kernel/drivers/hv/hv_vmbus.ko"
	es := build(t, Spec{
		Busybox: fakeBusybox(t),
		Files: []File{
			{Name: modPath, Source: mod},
			{Name: "etc/hostname", Data: []byte("guest\n"), Mode: 0o600},
		},
		Modules: []string{modPath},
	})
	byName := map[string]entry{}
	seen := map[string]bool{}
	for _, e := range es {
		if seen[e.h.Name] {
			t.Errorf("%s twice", e.h.Name)
		}
		seen[e.h.Name] = true
		// The kernel creates no missing parents: each comes first.
		if d := path.Dir(e.h.Name); d != "." && !seen[d] {
			t.Errorf("%s before its directory %s", e.h.Name, d)
		}
		if e.h.UID != 0 || e.h.GID != 0 || e.h.Mtime != 0 {
			t.Errorf("%s: owner %d:%d mtime %d, want root and 0", e.h.Name, e.h.UID, e.h.GID, e.h.Mtime)
		}
		byName[e.h.Name] = e
	}
	for _, tc := range []struct {
		name         string
		mode         uint32
		major, minor uint32
		data         string
	}{
		{"bin", TypeDir | 0o755, 0, 0, ""},
		{"dev", TypeDir | 0o755, 0, 0, ""},
		{"proc", TypeDir | 0o755, 0, 0, ""},
		{"sys", TypeDir | 0o755, 0, 0, ""},
		{"tmp", TypeDir | 0o755, 0, 0, ""},
		{"dev/console", TypeChar | 0o600, 5, 1, ""},
		{"dev/null", TypeChar | 0o666, 1, 3, ""},
		{"bin/busybox", TypeReg | 0o755, 0, 0, "\x7fELF static busybox"},
		{"bin/sh", TypeSymlink | 0o777, 0, 0, "busybox"},
		{"bin/poweroff", TypeSymlink | 0o777, 0, 0, "busybox"},
		{"init", TypeReg | 0o755, 0, 0, DefaultInit},
		{"lib/modules/6.1.0-57-amd64/kernel/drivers/hv", TypeDir | 0o755, 0, 0, ""},
		{modPath, TypeReg | 0o644, 0, 0, "\x7fELF module"},
		{"etc/hostname", TypeReg | 0o600, 0, 0, "guest\n"},
		{ModulesList, TypeReg | 0o644, 0, 0, modPath + "\n"},
	} {
		e, ok := byName[tc.name]
		switch {
		case !ok:
			t.Errorf("no %s", tc.name)
		case e.h.Mode != tc.mode || e.h.RdevMajor != tc.major || e.h.RdevMinor != tc.minor || e.data != tc.data:
			t.Errorf("%s: mode %#o dev %d,%d data %.40q; want %#o %d,%d %.40q",
				tc.name, e.h.Mode, e.h.RdevMajor, e.h.RdevMinor, e.data, tc.mode, tc.major, tc.minor, tc.data)
		}
	}
	// Every applet the default init calls is linked.
	for _, ap := range []string{"mount", "uname", "dmesg", "sed", "head", "cat", "grep", "insmod", "poweroff"} {
		if !strings.Contains(DefaultInit, ap+" ") {
			t.Errorf("DefaultInit does not use %s: drop it from this list", ap)
		}
		if _, ok := byName["bin/"+ap]; !ok {
			t.Errorf("no bin/%s for the default init", ap)
		}
	}
}

func TestInitramfsInitAndAppletsAreTheCallers(t *testing.T) {
	init := "#!/bin/sh\necho hello\npoweroff -f\n"
	es := build(t, Spec{Busybox: fakeBusybox(t), Init: init, Applets: []string{"sh", "echo", "poweroff"}})
	var links []string
	for _, e := range es {
		if e.h.Mode&TypeMask == TypeSymlink {
			links = append(links, e.h.Name)
		}
		if e.h.Name == "init" && e.data != init {
			t.Errorf("init holds %q", e.data)
		}
		if e.h.Name == ModulesList {
			t.Errorf("%s without modules", ModulesList)
		}
	}
	if got := strings.Join(links, " "); got != "bin/sh bin/echo bin/poweroff" {
		t.Errorf("links %s", got)
	}
}

func TestInitramfsIsReproducibleAndGzips(t *testing.T) {
	bb := fakeBusybox(t)
	var a, b, z bytes.Buffer
	for _, x := range []struct {
		buf  *bytes.Buffer
		gzip bool
	}{{&a, false}, {&b, false}, {&z, true}} {
		if err := (Spec{Busybox: bb, Gzip: x.gzip}).Write(x.buf); err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Error("two builds of the same spec differ")
	}
	if !bytes.HasPrefix(z.Bytes(), []byte{0x1f, 0x8b}) {
		t.Fatal("Gzip: no gzip magic")
	}
	if fmt.Sprint(readArchive(t, z.Bytes())) != fmt.Sprint(readArchive(t, a.Bytes())) {
		t.Error("the gzipped archive holds something else")
	}
}

func TestInitramfsWriteFile(t *testing.T) {
	out := filepath.Join(t.TempDir(), "sub", "initramfs.cpio")
	if err := (Spec{Busybox: fakeBusybox(t)}).WriteFile(out); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(out)
	if err != nil || len(readArchive(t, b)) < 10 {
		t.Fatalf("%s: %d bytes, %v", out, len(b), err)
	}
	if ents, _ := os.ReadDir(filepath.Dir(out)); len(ents) != 1 {
		t.Errorf("temporary files left: %v", ents)
	}
}

func TestInitramfsRefuses(t *testing.T) {
	bb := fakeBusybox(t)
	notELF := filepath.Join(t.TempDir(), "busybox.sh")
	os.WriteFile(notELF, []byte("#!/bin/sh\n"), 0o755)
	for name, s := range map[string]Spec{
		"no busybox":          {},
		"missing busybox":     {Busybox: "/nonexistent/busybox"},
		"busybox not ELF":     {Busybox: notELF},
		"init without #!":     {Busybox: bb, Init: "echo hi\n"},
		"applet with a slash": {Busybox: bb, Applets: []string{"../sh"}},
		"applet busybox":      {Busybox: bb, Applets: []string{"busybox"}},
		"unclean file name":   {Busybox: bb, Files: []File{{Name: "lib/../../x", Data: []byte{}}}},
		"file twice":          {Busybox: bb, Files: []File{{Name: "init", Data: []byte{}}}},
		"missing source":      {Busybox: bb, Files: []File{{Name: "x", Source: "/nonexistent"}}},
	} {
		if err := s.Write(io.Discard); err == nil {
			t.Errorf("%s: built", name)
		}
	}
}
