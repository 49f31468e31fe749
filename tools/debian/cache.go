package debian

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
)

// Defaults of a Cache.
const (
	DefaultDir            = "build/guest"
	DefaultKernelPackage  = "linux-image-amd64"
	DefaultBusyboxPackage = "busybox-static"
)

// Names inside the cache directory.
const (
	DebsDir      = "debs"          // the .deb files, as apt-get download names them
	CurrentLink  = "current"       // symlink to the release directory of the last Fetch
	ManifestFile = "manifest.json" // in a release directory
	KernelFile   = "vmlinuz"       // in a release directory: /boot/vmlinuz-<release>
	BusyboxFile  = "busybox"       // in a release directory: /bin/busybox
)

// Roles of the packages in a manifest.
const (
	metaRole    = "kernel-metapackage"
	kernelRole  = "kernel"
	busyboxRole = "busybox"
)

// Cache fetches the guest's packages into Dir and extracts what a test
// boot needs. The zero value uses the defaults above and apt-get and
// dpkg-deb from PATH.
type Cache struct {
	Dir            string    // default DefaultDir
	KernelPackage  string    // the metapackage naming the current kernel; default linux-image-amd64
	BusyboxPackage string    // default busybox-static
	AptGet         string    // default "apt-get"
	DpkgDeb        string    // default "dpkg-deb"
	Log            io.Writer // a line per download and extraction; nil: silent
}

func (c *Cache) withDefaults() Cache {
	d := *c
	def := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	def(&d.Dir, DefaultDir)
	def(&d.KernelPackage, DefaultKernelPackage)
	def(&d.BusyboxPackage, DefaultBusyboxPackage)
	def(&d.AptGet, "apt-get")
	def(&d.DpkgDeb, "dpkg-deb")
	return d
}

func (c Cache) logf(format string, args ...any) {
	if c.Log != nil {
		fmt.Fprintf(c.Log, format+"\n", args...)
	}
}

// Guest is a fetched kernel and busybox: the files a test boot needs.
type Guest struct {
	Release   string    // the kernel release, what `uname -r` prints in the guest: 6.1.0-57-amd64
	Dir       string    // the release directory: <cache>/<release>
	Kernel    string    // the bzImage (/boot/vmlinuz-<release>)
	Busybox   string    // the static busybox (/bin/busybox)
	KernelDeb string    // the kernel image package, kept for Modules
	Manifest  string    // the release directory's manifest.json
	Packages  []Package // the metapackage, the kernel image and busybox, as resolved
	// Downloaded lists the package files this Fetch took from the network;
	// empty when the cache was complete.
	Downloaded []string

	dpkgDeb string
	log     func(format string, args ...any)
}

func (g *Guest) logf(format string, args ...any) {
	if g.log != nil {
		g.log(format, args...)
	}
}

// Package is one Debian package the guest came from.
type Package struct {
	Role    string `json:"role"` // kernel-metapackage, kernel or busybox
	Name    string `json:"name"`
	Version string `json:"version"`
	File    string `json:"file"` // relative to the cache directory: debs/<file>
	Size    int64  `json:"size"`
	SHA256  string `json:"sha256"`
}

// File is one file of a release directory.
type File struct {
	Path   string `json:"path"`             // relative to the release directory, slash-separated
	From   string `json:"from"`             // the package it was taken from (or made from)
	Member string `json:"member,omitempty"` // its path in that package; "" for a file made here (modules.index)
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// Manifest is a release directory's manifest.json: which package versions
// its files came from and every file's SHA-256.
type Manifest struct {
	Release  string    `json:"release"`
	Packages []Package `json:"packages"`
	Files    []File    `json:"files"`
}

// Fetch makes the cache hold the current kernel and busybox and returns
// them. It asks apt which files linux-image-amd64 and busybox-static are
// today (`apt-get download --print-uris`, from the local package lists),
// downloads only the package files that are missing or differ from the
// lists' SHA-256, reads the versioned kernel package from the metapackage's
// Depends, and extracts /boot/vmlinuz-<release>, /bin/busybox and the
// module index into <Dir>/<release>/ — only when the manifest does not
// already record them from the same package files. A second Fetch with an
// unchanged archive therefore makes no network request. The cache keeps one
// guest: package files and release directories of earlier kernels are
// removed.
//
// On a host without apt-get, Fetch returns ErrNoAptGet.
func (c *Cache) Fetch(ctx context.Context) (*Guest, error) {
	cc := c.withDefaults()
	if _, err := exec.LookPath(cc.AptGet); err != nil {
		return nil, ErrNoAptGet
	}
	if _, err := exec.LookPath(cc.DpkgDeb); err != nil {
		return nil, ErrNoDpkgDeb
	}
	if err := os.MkdirAll(filepath.Join(cc.Dir, DebsDir), 0o755); err != nil {
		return nil, err
	}
	a := apt{bin: cc.AptGet, log: cc.logf}
	var downloaded []string

	// Two questions to apt (each costs it 0.7 s here): the metapackage and
	// busybox, then the kernel the metapackage names.
	arts, err := a.printURIs(ctx, cc.KernelPackage, cc.BusyboxPackage)
	if err != nil {
		return nil, err
	}
	meta, metaCtl, err := cc.ensure(ctx, a, metaRole, cc.KernelPackage, arts[cc.KernelPackage], &downloaded)
	if err != nil {
		return nil, err
	}
	image, release, err := KernelImage(metaCtl)
	if err != nil {
		return nil, err
	}
	karts, err := a.printURIs(ctx, image.Spec())
	if err != nil {
		return nil, err
	}
	kernel, _, err := cc.ensure(ctx, a, kernelRole, image.Spec(), karts[image.Name], &downloaded)
	if err != nil {
		return nil, err
	}
	bb, _, err := cc.ensure(ctx, a, busyboxRole, cc.BusyboxPackage, arts[cc.BusyboxPackage], &downloaded)
	if err != nil {
		return nil, err
	}

	dir := filepath.Join(cc.Dir, release)
	old, err := readManifest(dir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		cc.logf("%v: extracting again", err)
	}
	m := &Manifest{Release: release, Packages: []Package{meta, kernel, bb}}
	if !old.holds(dir, kernel, KernelFile, ModuleIndexFile) {
		if err := os.RemoveAll(filepath.Join(dir, "lib")); err != nil {
			return nil, err
		}
		if err := cc.extractKernel(ctx, m, dir, kernel, release); err != nil {
			return nil, err
		}
	} else {
		m.keepFrom(old, kernel.Name)
	}
	if !old.holds(dir, bb, BusyboxFile) {
		if err := cc.extractBusybox(ctx, m, dir, bb); err != nil {
			return nil, err
		}
	} else {
		m.keepFrom(old, bb.Name)
	}
	if err := m.write(dir); err != nil {
		return nil, err
	}
	if err := cc.setCurrent(release); err != nil {
		return nil, err
	}
	cc.prune(release, m)
	return cc.guest(dir, m, downloaded), nil
}

// Current returns the guest of the last Fetch without asking apt: the
// release directory that <Dir>/current names, with its kernel, busybox and
// module index checked against the manifest.
func (c *Cache) Current() (*Guest, error) {
	cc := c.withDefaults()
	target, err := os.Readlink(filepath.Join(cc.Dir, CurrentLink))
	if err != nil {
		return nil, fmt.Errorf("no fetched guest in %s (gohvctl guest fetch): %w", cc.Dir, err)
	}
	dir := filepath.Join(cc.Dir, target)
	m, err := readManifest(dir)
	if err != nil {
		return nil, err
	}
	for _, p := range []string{KernelFile, BusyboxFile, ModuleIndexFile} {
		if err := m.verify(dir, p); err != nil {
			return nil, err
		}
	}
	return cc.guest(dir, m, nil), nil
}

func (c Cache) guest(dir string, m *Manifest, downloaded []string) *Guest {
	return &Guest{
		Release:    m.Release,
		Dir:        dir,
		Kernel:     filepath.Join(dir, KernelFile),
		Busybox:    filepath.Join(dir, BusyboxFile),
		KernelDeb:  filepath.Join(c.Dir, filepath.FromSlash(m.pkg(kernelRole).File)),
		Manifest:   filepath.Join(dir, ManifestFile),
		Packages:   m.Packages,
		Downloaded: downloaded,
		dpkgDeb:    c.DpkgDeb,
		log:        c.logf,
	}
}

// ensure makes <Dir>/debs hold art, the package file apt resolved spec to,
// and returns it with its control paragraph.
func (c Cache) ensure(ctx context.Context, a apt, role, spec string, art Artifact, downloaded *[]string) (Package, Control, error) {
	name, _, _ := strings.Cut(spec, "=")
	file := filepath.Join(c.Dir, DebsDir, art.File)
	if art.Verify(file) != nil {
		tmp, err := os.MkdirTemp(filepath.Join(c.Dir, DebsDir), ".download-")
		if err != nil {
			return Package{}, Control{}, err
		}
		defer os.RemoveAll(tmp)
		c.logf("downloading %s (%.1f MB)", art.File, float64(art.Size)/1e6)
		if err := a.download(ctx, tmp, spec); err != nil {
			return Package{}, Control{}, err
		}
		got := filepath.Join(tmp, art.File)
		if err := art.Verify(got); err != nil {
			return Package{}, Control{}, fmt.Errorf("apt-get download %s: %w", spec, err)
		}
		if err := os.Rename(got, file); err != nil {
			return Package{}, Control{}, err
		}
		*downloaded = append(*downloaded, art.File)
	}
	ctl, err := ReadControl(ctx, c.DpkgDeb, file)
	if err != nil {
		return Package{}, Control{}, err
	}
	if got := ctl.Get("Package"); got != name {
		return Package{}, Control{}, fmt.Errorf("%s: holds package %q, not %s", file, got, name)
	}
	// art.Verify has just checked the file against apt's hash: when that is
	// a SHA-256, it is the manifest's too.
	sum, isSHA256 := strings.CutPrefix(art.Hash, "SHA256:")
	if !isSHA256 {
		if sum, err = fileSHA256(file); err != nil {
			return Package{}, Control{}, err
		}
	}
	sum = strings.ToLower(sum)
	p := Package{Role: role, Name: name, Version: ctl.Get("Version"), File: DebsDir + "/" + art.File, Size: art.Size, SHA256: sum}
	return p, ctl, nil
}

// extractKernel takes /boot/vmlinuz-<release> out of the kernel package and
// writes the module index, in one pass over its data.
func (c Cache) extractKernel(ctx context.Context, m *Manifest, dir string, kernel Package, release string) error {
	deb := filepath.Join(c.Dir, filepath.FromSlash(kernel.File))
	c.logf("extracting vmlinuz-%s and indexing its modules from %s", release, filepath.Base(deb))
	vmlinuz := "boot/vmlinuz-" + release
	x := newIndexer(release)
	found := false
	err := walkData(ctx, c.DpkgDeb, deb, func(h *tar.Header, r io.Reader) (bool, error) {
		name := memberName(h)
		if name == vmlinuz && h.Typeflag == tar.TypeReg {
			sum, size, err := writeFileAtomic(filepath.Join(dir, KernelFile), 0o644, copyFrom(r))
			if err != nil {
				return true, err
			}
			m.setFile(File{Path: KernelFile, From: kernel.Name, Member: name, Size: size, SHA256: sum})
			found = true
			return false, nil
		}
		return false, x.visit(name, h, r)
	})
	if err != nil {
		return err
	}
	if !found {
		return fmt.Errorf("%s: no %s", deb, vmlinuz)
	}
	sum, size, err := writeFileAtomic(filepath.Join(dir, ModuleIndexFile), 0o644, func(w io.Writer) error {
		return writeIndex(w, x.idx)
	})
	if err != nil {
		return err
	}
	m.setFile(File{Path: ModuleIndexFile, From: kernel.Name, Size: size, SHA256: sum})
	return nil
}

func (c Cache) extractBusybox(ctx context.Context, m *Manifest, dir string, bb Package) error {
	deb := filepath.Join(c.Dir, filepath.FromSlash(bb.File))
	c.logf("extracting busybox from %s", filepath.Base(deb))
	found := false
	err := walkData(ctx, c.DpkgDeb, deb, func(h *tar.Header, r io.Reader) (bool, error) {
		name := memberName(h)
		if name != "bin/busybox" || h.Typeflag != tar.TypeReg {
			return false, nil
		}
		sum, size, err := writeFileAtomic(filepath.Join(dir, BusyboxFile), 0o755, copyFrom(r))
		if err != nil {
			return true, err
		}
		m.setFile(File{Path: BusyboxFile, From: bb.Name, Member: name, Size: size, SHA256: sum})
		found = true
		return true, nil
	})
	if err != nil {
		return err
	}
	if !found {
		return fmt.Errorf("%s: no bin/busybox", deb)
	}
	return nil
}

// setCurrent points <Dir>/current at release.
func (c Cache) setCurrent(release string) error {
	link := filepath.Join(c.Dir, CurrentLink)
	if t, err := os.Readlink(link); err == nil && t == release {
		return nil
	}
	tmp := link + ".tmp"
	os.Remove(tmp)
	if err := os.Symlink(release, tmp); err != nil {
		return err
	}
	return os.Rename(tmp, link)
}

// prune removes the package files and release directories m does not use.
// Failures only cost disk space, so they are logged, not returned.
func (c Cache) prune(release string, m *Manifest) {
	keep := map[string]bool{}
	for _, p := range m.Packages {
		keep[filepath.Base(p.File)] = true
	}
	debs := filepath.Join(c.Dir, DebsDir)
	if ents, err := os.ReadDir(debs); err == nil {
		for _, e := range ents {
			if strings.HasSuffix(e.Name(), ".deb") && !keep[e.Name()] {
				c.logf("removing %s", e.Name())
				if err := os.Remove(filepath.Join(debs, e.Name())); err != nil {
					c.logf("%v", err)
				}
			}
		}
	}
	ents, err := os.ReadDir(c.Dir)
	if err != nil {
		return
	}
	for _, e := range ents {
		d := filepath.Join(c.Dir, e.Name())
		if e.IsDir() && e.Name() != release && e.Name() != DebsDir {
			if _, err := os.Stat(filepath.Join(d, ManifestFile)); err == nil {
				c.logf("removing %s", d)
				if err := os.RemoveAll(d); err != nil {
					c.logf("%v", err)
				}
			}
		}
	}
}

// readManifest reads dir's manifest.json.
func readManifest(dir string) (*Manifest, error) {
	b, err := os.ReadFile(filepath.Join(dir, ManifestFile))
	if err != nil {
		return nil, err
	}
	var m Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, ManifestFile), err)
	}
	return &m, nil
}

// write writes m as dir's manifest.json, files sorted by path.
func (m *Manifest) write(dir string) error {
	sort.Slice(m.Files, func(i, j int) bool { return m.Files[i].Path < m.Files[j].Path })
	b, err := json.MarshalIndent(m, "", "\t")
	if err != nil {
		return err
	}
	_, _, err = writeFileAtomic(filepath.Join(dir, ManifestFile), 0o644, func(w io.Writer) error {
		_, err := w.Write(append(b, '\n'))
		return err
	})
	return err
}

func (m *Manifest) pkg(role string) Package {
	for _, p := range m.Packages {
		if p.Role == role {
			return p
		}
	}
	return Package{}
}

func (m *Manifest) file(path string) (File, bool) {
	for _, f := range m.Files {
		if f.Path == path {
			return f, true
		}
	}
	return File{}, false
}

func (m *Manifest) setFile(f File) {
	for i := range m.Files {
		if m.Files[i].Path == f.Path {
			m.Files[i] = f
			return
		}
	}
	m.Files = append(m.Files, f)
}

// verify checks the file at path (relative to dir) against the manifest.
func (m *Manifest) verify(dir, path string) error {
	f, ok := m.file(path)
	if !ok {
		return fmt.Errorf("%s: %s not in the manifest", dir, path)
	}
	sum, err := fileSHA256(filepath.Join(dir, filepath.FromSlash(path)))
	if err != nil {
		return err
	}
	if sum != f.SHA256 {
		return fmt.Errorf("%s: SHA-256 differs from the manifest's", filepath.Join(dir, path))
	}
	return nil
}

// holds reports whether m (possibly nil: no manifest) records paths as
// taken from exactly the package file p, and each still matches its hash.
func (m *Manifest) holds(dir string, p Package, paths ...string) bool {
	if m == nil {
		return false
	}
	var had bool
	for _, q := range m.Packages {
		had = had || q.Name == p.Name && q.SHA256 == p.SHA256
	}
	if !had {
		return false
	}
	for _, path := range paths {
		if f, ok := m.file(path); !ok || f.From != p.Name || m.verify(dir, path) != nil {
			return false
		}
	}
	return true
}

// keepFrom copies old's records of the files taken from package name.
func (m *Manifest) keepFrom(old *Manifest, name string) {
	for _, f := range old.Files {
		if f.From == name {
			m.setFile(f)
		}
	}
}

func copyFrom(r io.Reader) func(io.Writer) error {
	return func(w io.Writer) error {
		_, err := io.Copy(w, r)
		return err
	}
}

// writeFileAtomic writes path through fill, in a temporary file renamed
// into place, and returns the content's SHA-256 (hex) and size.
func writeFileAtomic(path string, mode fs.FileMode, fill func(io.Writer) error) (string, int64, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return "", 0, err
	}
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-"+filepath.Base(path)+"-")
	if err != nil {
		return "", 0, err
	}
	defer os.Remove(f.Name())
	h := sha256.New()
	cw := &countWriter{w: io.MultiWriter(f, h)}
	err = fill(cw)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(f.Name(), mode)
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		return "", 0, fmt.Errorf("writing %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), cw.n, nil
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
