package debian

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
)

// The module index: what modules.dep would say, made from the package
// itself. Fetch reads every module's .modinfo once, while it streams the
// kernel package for vmlinuz, and writes modules.index in the release
// directory: one line per module, tab-separated —
//
//	name  path (under lib/modules/<release>/)  depends (comma-separated, "-" for none)
//
// with "builtin" as the path of a module compiled into the kernel (from
// modules.builtin) and "compressed" as the depends of a .ko.xz/.ko.zst/.ko.gz
// file, whose .modinfo is not read. Modules then needs one more pass over the
// package, for the files alone.

// ModuleIndexFile is the index's name in a release directory.
const ModuleIndexFile = "modules.index"

type moduleEntry struct {
	name       string
	path       string // under lib/modules/<release>/; "" when built in
	builtin    bool
	compressed bool
	depends    []string
}

type moduleIndex map[string]moduleEntry

// indexer collects the index from the kernel package's data archive.
type indexer struct {
	prefix string // lib/modules/<release>/
	idx    moduleIndex
	buf    bytes.Buffer
}

func newIndexer(release string) *indexer {
	return &indexer{prefix: "lib/modules/" + release + "/", idx: moduleIndex{}}
}

// visit looks at one member of the data archive.
func (x *indexer) visit(name string, h *tar.Header, r io.Reader) error {
	rel, ok := strings.CutPrefix(name, x.prefix)
	if !ok || h.Typeflag != tar.TypeReg {
		return nil
	}
	switch {
	case rel == "modules.builtin":
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			if l := strings.TrimSpace(sc.Text()); l != "" {
				n := ModuleName(l)
				if _, loadable := x.idx[n]; !loadable {
					x.idx[n] = moduleEntry{name: n, builtin: true}
				}
			}
		}
		return sc.Err()
	case strings.HasSuffix(rel, ".ko"):
		x.buf.Reset()
		if _, err := io.Copy(&x.buf, io.LimitReader(r, 256<<20)); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		mi, err := ReadModinfo(bytes.NewReader(x.buf.Bytes()))
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		n := mi.Name
		if n == "" {
			n = ModuleName(rel)
		}
		x.idx[n] = moduleEntry{name: n, path: rel, depends: mi.Depends}
	case strings.HasSuffix(rel, ".ko.xz"), strings.HasSuffix(rel, ".ko.zst"), strings.HasSuffix(rel, ".ko.gz"):
		n := ModuleName(rel)
		x.idx[n] = moduleEntry{name: n, path: rel, compressed: true}
	}
	return nil
}

// writeIndex writes idx in the modules.index format, sorted by name.
func writeIndex(w io.Writer, idx moduleIndex) error {
	names := make([]string, 0, len(idx))
	for n := range idx {
		names = append(names, n)
	}
	sort.Strings(names)
	bw := bufio.NewWriter(w)
	fmt.Fprintln(bw, "# name\tpath under lib/modules/<release>/\tdepends (from .modinfo) — made by gohv's tools/debian")
	for _, n := range names {
		e := idx[n]
		p, d := e.path, strings.Join(e.depends, ",")
		if e.builtin {
			p = "builtin"
		}
		if e.compressed {
			d = "compressed"
		}
		if d == "" {
			d = "-"
		}
		fmt.Fprintf(bw, "%s\t%s\t%s\n", n, p, d)
	}
	return bw.Flush()
}

// parseIndex reads what writeIndex wrote.
func parseIndex(r io.Reader) (moduleIndex, error) {
	idx := moduleIndex{}
	sc := bufio.NewScanner(r)
	n := 0
	for sc.Scan() {
		n++
		l := sc.Text()
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		f := strings.Split(l, "\t")
		if len(f) != 3 || f[0] == "" || f[1] == "" {
			return nil, fmt.Errorf("%s: line %d: want name, path and depends", ModuleIndexFile, n)
		}
		e := moduleEntry{name: f[0], path: f[1]}
		switch {
		case f[1] == "builtin":
			e.path, e.builtin = "", true
		case !filepath.IsLocal(f[1]):
			return nil, fmt.Errorf("%s: line %d: path %q leaves the module tree", ModuleIndexFile, n, f[1])
		}
		switch f[2] {
		case "-":
		case "compressed":
			e.compressed = true
		default:
			e.depends = strings.Split(f[2], ",")
		}
		idx[e.name] = e
	}
	return idx, sc.Err()
}

// resolve returns the loadable modules names need, each after the modules
// it depends on (the order insmod wants them in), every module once.
// Built-in modules are satisfied without a file and left out.
func (idx moduleIndex) resolve(names []string) ([]moduleEntry, error) {
	var order []moduleEntry
	state := map[string]int{} // 1 visiting, 2 done
	var visit func(n string, from []string) error
	visit = func(n string, from []string) error {
		n = ModuleName(n)
		switch state[n] {
		case 2:
			return nil
		case 1:
			return fmt.Errorf("module %s: dependency cycle %s", n, strings.Join(append(from, n), " -> "))
		}
		e, ok := idx[n]
		switch {
		case !ok && len(from) == 0:
			return fmt.Errorf("module %s: not in the kernel package", n)
		case !ok:
			return fmt.Errorf("module %s (needed by %s): not in the kernel package", n, strings.Join(from, " <- "))
		case e.builtin:
			state[n] = 2
			return nil
		case e.compressed:
			return fmt.Errorf("module %s: %s is compressed, which tools/debian does not unpack", n, e.path)
		}
		state[n] = 1
		for _, d := range e.depends {
			if err := visit(d, append(slices.Clip(from), n)); err != nil {
				return err
			}
		}
		state[n] = 2
		order = append(order, e)
		return nil
	}
	for _, n := range names {
		if err := visit(n, nil); err != nil {
			return nil, err
		}
	}
	return order, nil
}

// Module is a kernel module extracted from the kernel package.
type Module struct {
	Name    string   // as the kernel names it: hv_storvsc
	Path    string   // in the package, and where an initramfs puts it: lib/modules/<release>/kernel/drivers/scsi/hv_storvsc.ko
	File    string   // the extracted copy on the host
	Depends []string // its direct dependencies, from .modinfo
}

// Modules extracts the named modules and every module they depend on,
// following each module's .modinfo depends=, into the release directory
// (lib/modules/<release>/..., once: later calls find them there), and
// returns them in load order — each after its dependencies. Modules built
// into the kernel are satisfied without a file and are not returned. A name
// the package lacks is an error naming it and, for a dependency, who needs
// it.
func (g *Guest) Modules(ctx context.Context, names ...string) ([]Module, error) {
	f, err := os.Open(filepath.Join(g.Dir, ModuleIndexFile))
	if err != nil {
		return nil, fmt.Errorf("modules: %w", err)
	}
	idx, err := parseIndex(f)
	f.Close()
	if err != nil {
		return nil, fmt.Errorf("modules: %w", err)
	}
	need, err := idx.resolve(names)
	if err != nil {
		return nil, fmt.Errorf("modules: %w", err)
	}
	m, err := readManifest(g.Dir)
	if err != nil {
		return nil, fmt.Errorf("modules: %w", err)
	}
	prefix := "lib/modules/" + g.Release + "/"
	missing := map[string]bool{} // member names still to extract
	for _, e := range need {
		if m.verify(g.Dir, prefix+e.path) != nil {
			missing[prefix+e.path] = true
		}
	}
	if len(missing) > 0 {
		g.logf("extracting %d modules from %s", len(missing), filepath.Base(g.KernelDeb))
		kernel := m.pkg(kernelRole)
		err := walkData(ctx, g.dpkgDeb, g.KernelDeb, func(h *tar.Header, r io.Reader) (bool, error) {
			name := memberName(h)
			if !missing[name] || h.Typeflag != tar.TypeReg {
				return false, nil
			}
			sum, size, err := writeFileAtomic(filepath.Join(g.Dir, filepath.FromSlash(name)), 0o644, func(w io.Writer) error {
				_, err := io.Copy(w, r)
				return err
			})
			if err != nil {
				return true, err
			}
			m.setFile(File{Path: name, From: kernel.Name, Member: name, Size: size, SHA256: sum})
			delete(missing, name)
			return len(missing) == 0, nil
		})
		if err != nil {
			return nil, fmt.Errorf("modules: %w", err)
		}
		if len(missing) > 0 {
			return nil, fmt.Errorf("modules: %s: not in %s", strings.Join(sortedKeys(missing), ", "), g.KernelDeb)
		}
		if err := m.write(g.Dir); err != nil {
			return nil, fmt.Errorf("modules: %w", err)
		}
	}
	out := make([]Module, len(need))
	for i, e := range need {
		p := prefix + e.path
		out[i] = Module{Name: e.name, Path: p, File: filepath.Join(g.Dir, filepath.FromSlash(p)), Depends: e.depends}
	}
	return out, nil
}

func sortedKeys(m map[string]bool) []string {
	k := make([]string, 0, len(m))
	for s := range m {
		k = append(k, s)
	}
	sort.Strings(k)
	return k
}
