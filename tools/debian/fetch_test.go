package debian

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// The tests here run Fetch and Modules against a fake archive: .deb files
// made in the test (an ar archive of debian-binary, control.tar.gz and
// data.tar.gz, which dpkg-deb reads like Debian's xz ones) and a fake
// apt-get, a shell script that answers --print-uris from a table and
// "downloads" by copying, logging every call. They need dpkg-deb and sh.

// debFile is one file in a fake package's data archive.
type debFile struct {
	name string // without "./"
	body string
	mode int64
}

// makeDeb returns a binary package with the control paragraph and files.
func makeDeb(t *testing.T, control string, files []debFile) []byte {
	t.Helper()
	tgz := func(fs []debFile) []byte {
		var b bytes.Buffer
		zw := gzip.NewWriter(&b)
		tw := tar.NewWriter(zw)
		dirs := map[string]bool{}
		for _, f := range fs {
			// Parent directories first, as dpkg-deb -b writes them.
			parts := strings.Split(f.name, "/")
			for i := 1; i < len(parts); i++ {
				d := strings.Join(parts[:i], "/")
				if !dirs[d] {
					dirs[d] = true
					tw.WriteHeader(&tar.Header{Name: "./" + d + "/", Typeflag: tar.TypeDir, Mode: 0o755})
				}
			}
			mode := f.mode
			if mode == 0 {
				mode = 0o644
			}
			tw.WriteHeader(&tar.Header{Name: "./" + f.name, Typeflag: tar.TypeReg, Mode: mode, Size: int64(len(f.body))})
			tw.Write([]byte(f.body))
		}
		if err := tw.Close(); err != nil {
			t.Fatal(err)
		}
		zw.Close()
		return b.Bytes()
	}
	var ar bytes.Buffer
	ar.WriteString("!<arch>\n")
	for _, m := range []struct {
		name string
		data []byte
	}{
		{"debian-binary", []byte("2.0\n")},
		{"control.tar.gz", tgz([]debFile{{name: "control", body: control}})},
		{"data.tar.gz", tgz(files)},
	} {
		fmt.Fprintf(&ar, "%-16s%-12d%-6d%-6d%-8s%-10d`\n", m.name, 0, 0, 0, "100644", len(m.data))
		ar.Write(m.data)
		if len(m.data)%2 == 1 {
			ar.WriteByte('\n')
		}
	}
	return ar.Bytes()
}

// fakeArchive is a package archive and an apt-get that serves it.
type fakeArchive struct {
	t      *testing.T
	dir    string            // where the .deb files are
	aptGet string            // the fake apt-get
	calls  string            // its log, a line per call
	files  map[string]string // spec (name or name=version) -> file name
}

func newFakeArchive(t *testing.T) *fakeArchive {
	for _, tool := range []string{"dpkg-deb", "sh", "cp"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s: %v", tool, err)
		}
	}
	dir := t.TempDir()
	return &fakeArchive{t: t, dir: dir, aptGet: filepath.Join(dir, "apt-get"), calls: filepath.Join(dir, "calls"), files: map[string]string{}}
}

// add puts a package in the archive under spec (and its bare name) and
// rewrites the fake apt-get.
func (a *fakeArchive) add(file string, deb []byte, specs ...string) {
	if err := os.WriteFile(filepath.Join(a.dir, file), deb, 0o644); err != nil {
		a.t.Fatal(err)
	}
	for _, s := range specs {
		a.files[s] = file
	}
	var sh strings.Builder
	fmt.Fprintf(&sh, "#!/bin/sh\necho \"$*\" >> %q\n[ \"$1\" = -q ] && shift\n[ \"$1\" = download ] || exit 100\nshift\n", a.calls)
	sh.WriteString("if [ \"$1\" = --print-uris ]; then shift; print=1; fi\nfor spec; do\n\tcase \"$spec\" in\n")
	specs = specs[:0]
	for s := range a.files {
		specs = append(specs, s)
	}
	sort.Strings(specs)
	for _, s := range specs {
		f := a.files[s]
		b, err := os.ReadFile(filepath.Join(a.dir, f))
		if err != nil {
			a.t.Fatal(err)
		}
		sum := sha256.Sum256(b)
		fmt.Fprintf(&sh, "\t%q) if [ -n \"$print\" ]; then echo \"'file://%s/%s' %s %d SHA256:%s\"; else cp %q .; fi ;;\n",
			s, a.dir, f, f, len(b), hex.EncodeToString(sum[:]), filepath.Join(a.dir, f))
	}
	sh.WriteString("\t*) echo \"E: Unable to locate package $spec\" >&2; exit 100 ;;\n\tesac\ndone\n")
	if err := os.WriteFile(a.aptGet, []byte(sh.String()), 0o755); err != nil {
		a.t.Fatal(err)
	}
}

// downloads returns the download calls logged since the last call.
func (a *fakeArchive) downloads() []string {
	b, _ := os.ReadFile(a.calls)
	os.Remove(a.calls)
	var d []string
	for _, l := range strings.Split(string(b), "\n") {
		if l != "" && !strings.Contains(l, "--print-uris") {
			d = append(d, l)
		}
	}
	return d
}

// publishKernel adds a metapackage pointing at linux-image-<release> and
// that kernel package, with a few modules.
func (a *fakeArchive) publishKernel(release, version string) {
	pkg := "linux-image-" + release
	mods := "lib/modules/" + release + "/"
	a.add("linux-image-amd64_"+version+"_amd64.deb", makeDeb(a.t,
		fmt.Sprintf("Package: linux-image-amd64\nVersion: %s\nArchitecture: amd64\nDepends: %s (= %s)\nDescription: meta\n", version, pkg, version), nil),
		"linux-image-amd64")
	a.add(pkg+"_"+version+"_amd64.deb", makeDeb(a.t,
		fmt.Sprintf("Package: %s\nVersion: %s\nArchitecture: amd64\nDepends: kmod\nDescription: kernel\n", pkg, version),
		[]debFile{
			{name: "boot/config-" + release, body: "CONFIG_HYPERV=m\n"},
			{name: "boot/vmlinuz-" + release, body: "bzImage of " + release},
			{name: mods + "kernel/drivers/hv/hv_vmbus.ko", body: string(moduleELF(a.t, "depends=\x00name=hv_vmbus\x00"))},
			{name: mods + "kernel/drivers/scsi/scsi_common.ko", body: string(moduleELF(a.t, "depends=\x00name=scsi_common\x00"))},
			{name: mods + "kernel/drivers/scsi/scsi_mod.ko", body: string(moduleELF(a.t, "depends=scsi_common\x00name=scsi_mod\x00"))},
			{name: mods + "kernel/drivers/scsi/hv_storvsc.ko", body: string(moduleELF(a.t, "depends=scsi_mod,hv_vmbus,crc32c_generic,scsi_common\x00name=hv_storvsc\x00"))},
			{name: mods + "kernel/drivers/net/broken.ko", body: string(moduleELF(a.t, "depends=missing_mod\x00name=broken\x00"))},
			{name: mods + "modules.builtin", body: "kernel/crypto/crc32c_generic.ko\n"},
		}),
		pkg, pkg+"="+version)
}

func (a *fakeArchive) publishBusybox(version string) {
	a.add("busybox-static_"+strings.ReplaceAll(version, ":", "%3a")+"_amd64.deb", makeDeb(a.t,
		"Package: busybox-static\nVersion: "+version+"\nArchitecture: amd64\nDescription: bb\n",
		[]debFile{{name: "bin/busybox", body: "busybox " + version, mode: 0o755}, {name: "usr/share/doc/busybox-static/copyright", body: "GPL"}}),
		"busybox-static")
}

func readString(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestFetchDownloadsOnceThenServesTheCache(t *testing.T) {
	a := newFakeArchive(t)
	a.publishKernel("9.9.0-1-amd64", "9.9.9-1")
	a.publishBusybox("1:1.36.1-1")
	c := &Cache{Dir: filepath.Join(t.TempDir(), "guest"), AptGet: a.aptGet}
	ctx := context.Background()

	g, err := c.Fetch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if g.Release != "9.9.0-1-amd64" || g.Dir != filepath.Join(c.Dir, "9.9.0-1-amd64") {
		t.Errorf("release %q in %s", g.Release, g.Dir)
	}
	if got := readString(t, g.Kernel); got != "bzImage of 9.9.0-1-amd64" {
		t.Errorf("vmlinuz holds %q", got)
	}
	if got := readString(t, g.Busybox); got != "busybox 1:1.36.1-1" {
		t.Errorf("busybox holds %q", got)
	}
	if fi, err := os.Stat(g.Busybox); err != nil || fi.Mode().Perm() != 0o755 {
		t.Errorf("busybox mode: %v, %v", fi, err)
	}
	want := []string{"-q download linux-image-amd64", "-q download linux-image-9.9.0-1-amd64=9.9.9-1", "-q download busybox-static"}
	if d := a.downloads(); strings.Join(d, "|") != strings.Join(want, "|") {
		t.Errorf("downloads %q, want %q", d, want)
	}
	if len(g.Downloaded) != 3 {
		t.Errorf("Downloaded = %q", g.Downloaded)
	}
	var versions []string
	for _, p := range g.Packages {
		versions = append(versions, p.Role+" "+p.Name+" "+p.Version)
	}
	if got := strings.Join(versions, ", "); got != "kernel-metapackage linux-image-amd64 9.9.9-1, kernel linux-image-9.9.0-1-amd64 9.9.9-1, busybox busybox-static 1:1.36.1-1" {
		t.Errorf("packages: %s", got)
	}
	m, err := readManifest(g.Dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{KernelFile, BusyboxFile, ModuleIndexFile} {
		if err := m.verify(g.Dir, p); err != nil {
			t.Error(err)
		}
	}
	if f, _ := m.file(KernelFile); f.Member != "boot/vmlinuz-9.9.0-1-amd64" || f.From != "linux-image-9.9.0-1-amd64" {
		t.Errorf("manifest entry for vmlinuz: %+v", f)
	}
	if l, err := os.Readlink(filepath.Join(c.Dir, CurrentLink)); err != nil || l != "9.9.0-1-amd64" {
		t.Errorf("current -> %q, %v", l, err)
	}

	// Second run: the lists are asked, nothing is downloaded.
	g2, err := c.Fetch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if d := a.downloads(); len(d) != 0 || len(g2.Downloaded) != 0 {
		t.Errorf("second fetch downloaded %q", d)
	}
	if cur, err := c.Current(); err != nil || cur.Kernel != g.Kernel || cur.KernelDeb != g.KernelDeb {
		t.Errorf("Current() = %+v, %v", cur, err)
	}

	// A damaged extracted file is extracted again, still without a download.
	os.WriteFile(g.Kernel, []byte("damaged"), 0o644)
	if _, err := c.Fetch(ctx); err != nil {
		t.Fatal(err)
	}
	if got := readString(t, g.Kernel); got != "bzImage of 9.9.0-1-amd64" || len(a.downloads()) != 0 {
		t.Errorf("after repair vmlinuz holds %q", got)
	}
	if _, err := c.Current(); err != nil {
		t.Error(err)
	}

	// A damaged package file is downloaded again.
	os.WriteFile(g.KernelDeb, []byte("damaged"), 0o644)
	if _, err := c.Fetch(ctx); err != nil {
		t.Fatal(err)
	}
	if d := a.downloads(); len(d) != 1 || d[0] != "-q download linux-image-9.9.0-1-amd64=9.9.9-1" {
		t.Errorf("after damaging the kernel package: downloads %q", d)
	}
}

func TestFetchFollowsANewKernelAndForgetsTheOld(t *testing.T) {
	a := newFakeArchive(t)
	a.publishKernel("9.9.0-1-amd64", "9.9.9-1")
	a.publishBusybox("1:1.36.1-1")
	c := &Cache{Dir: t.TempDir(), AptGet: a.aptGet}
	old, err := c.Fetch(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	a.downloads()
	a.publishKernel("9.9.0-2-amd64", "9.9.10-1")
	g, err := c.Fetch(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if g.Release != "9.9.0-2-amd64" || readString(t, g.Kernel) != "bzImage of 9.9.0-2-amd64" {
		t.Errorf("release %s, kernel %q", g.Release, readString(t, g.Kernel))
	}
	if d := a.downloads(); len(d) != 2 {
		t.Errorf("downloads %q, want the new metapackage and kernel only", d)
	}
	for _, gone := range []string{old.Dir, old.KernelDeb} {
		if _, err := os.Stat(gone); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s still there: %v", gone, err)
		}
	}
	debs, _ := os.ReadDir(filepath.Join(c.Dir, DebsDir))
	if len(debs) != 3 {
		t.Errorf("debs/ holds %d entries, want the 3 current packages", len(debs))
	}
}

func TestModulesResolvesFromModinfoAndExtractsOnce(t *testing.T) {
	a := newFakeArchive(t)
	a.publishKernel("9.9.0-1-amd64", "9.9.9-1")
	a.publishBusybox("1:1.36.1-1")
	c := &Cache{Dir: t.TempDir(), AptGet: a.aptGet}
	ctx := context.Background()
	g, err := c.Fetch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	mods, err := g.Modules(ctx, "hv_storvsc")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range mods {
		got = append(got, m.Name)
		mi, err := ReadModinfo(bytes.NewReader([]byte(readString(t, m.File))))
		if err != nil || mi.Name != m.Name {
			t.Errorf("%s: %v %v", m.File, mi, err)
		}
		if m.File != filepath.Join(g.Dir, filepath.FromSlash(m.Path)) || !strings.HasPrefix(m.Path, "lib/modules/9.9.0-1-amd64/kernel/") {
			t.Errorf("%s: path %s file %s", m.Name, m.Path, m.File)
		}
	}
	// crc32c_generic is built in: needed, but nothing to load.
	if want := "scsi_common scsi_mod hv_vmbus hv_storvsc"; strings.Join(got, " ") != want {
		t.Errorf("modules %q, want %q", got, want)
	}
	// The files are recorded: damaging dpkg-deb now shows any second pass.
	c2 := *g
	c2.dpkgDeb = "/nonexistent/dpkg-deb"
	if _, err := c2.Modules(ctx, "scsi_mod"); err != nil {
		t.Errorf("second Modules call went back to the package: %v", err)
	}
	if _, err := g.Modules(ctx, "broken"); err == nil || !strings.Contains(err.Error(), "module missing_mod (needed by broken)") {
		t.Errorf("Modules(broken) = %v", err)
	}
	if _, err := g.Modules(ctx, "nosuch"); err == nil || !strings.Contains(err.Error(), "module nosuch: not in the kernel package") {
		t.Errorf("Modules(nosuch) = %v", err)
	}
}

func TestFetchWithoutAptGet(t *testing.T) {
	_, err := (&Cache{Dir: t.TempDir(), AptGet: "/nonexistent/apt-get"}).Fetch(context.Background())
	if !errors.Is(err, ErrNoAptGet) {
		t.Errorf("Fetch = %v, want ErrNoAptGet", err)
	}
}

func TestFetchNamesAPackageTheListsLack(t *testing.T) {
	a := newFakeArchive(t)
	a.publishKernel("9.9.0-1-amd64", "9.9.9-1") // no busybox-static
	_, err := (&Cache{Dir: t.TempDir(), AptGet: a.aptGet}).Fetch(context.Background())
	if err == nil || !strings.Contains(err.Error(), "Unable to locate package busybox-static") || !strings.Contains(err.Error(), "apt-get update") {
		t.Errorf("Fetch = %v, want apt's complaint and the hint", err)
	}
}
