// Package layers holds the test that keeps gohv's package dependencies
// pointing one way (see ARCHITECTURE.md): the backends see only the vendor
// contract, metal nothing of the hypervisor, leaf definition packages only
// the standard library.
package layers

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
)

const module = "gohv"

// rules: a package (and, with a trailing "/...", its subpackages) may
// reach, directly or through others, only the module packages listed
// (again with "/..." for a tree). Packages outside the module (the standard
// library, x/arch, tamago) are not restricted here.
var rules = []struct {
	pkg     string
	mayDeps []string
	why     string
}{
	{"x86", nil, "one home for architectural numbers: a leaf"},
	{"hv/vcpu", []string{"x86"}, "the vendor contract is a leaf"},
	{"svm", []string{"hv/vcpu", "x86"}, "a backend sees only the vendor contract"},
	{"vmx", []string{"hv/vcpu", "x86"}, "a backend sees only the vendor contract"},
	{"ept", []string{"x86"}, "nested page tables are a format library"},
	{"hv/emul", []string{"x86"}, "the instruction emulator works over interfaces"},
	{"metal/...", []string{"metal/...", "x86"}, "metal hosts the runtime; it imports nothing of the hypervisor"},
	{"iommu", nil, "the vendor-neutral IOMMU interface: standard library only"},
	{"iommu/...", []string{"iommu", "ept"}, "an IOMMU driver works over register and page seams: never metal (cmd/gohv wires a unit to metal's MMIO and pages), nor the core; VT-d reuses ept's tables (its second-level format is EPT's)"},
	{"hv/tlfs", nil, "Hyper-V definitions: standard library only, usable by guests"},
	{"hv/hypercall", []string{"hv/tlfs", "x86"}, "the hypercall ABI sees only the TLFS definitions and architectural numbers"},
	{"hv/synic/...", []string{"hv/tlfs", "x86"}, "the SynIC is logic over small seams: it sees the TLFS definitions, not the core"},
	{"apic/...", []string{"apic/...", "x86"}, "the APIC models are vendor-neutral and host-tested"},
	{"vmbus/...", []string{"vmbus/...", "hv/tlfs", "x86"}, "VMBus serves both ends: neither root nor the core"},
	{"vmbus/client", []string{"vmbus/proto", "vmbus/ring", "hv/tlfs"}, "the guest's VMBus library sees the wire format and the ring, never the host's server"},
	{"root/console", nil, "the console is a leaf"},
	{"root/config", nil, "the configuration format: the standard library and its TOML parser only"},
	{"root/acpitables", []string{"x86"}, "the guest's ACPI tables are a format library: no hypervisor state"},
	{"root/devices", []string{"root/acpitables", "hv", "hv/...", "ept", "x86", "apic/...", "iommu/..."}, "device models sit on the core's port bus; never cmd or checks"},
	{"root/storvsp/protocol", nil, "the VSTOR wire format: standard library only, usable by a guest-side client"},
	{"root/storvsp/scsi", nil, "the SCSI logical unit works over a Disk interface: standard library only"},
	{"root/storvsp", []string{"root/storvsp/protocol", "root/storvsp/scsi"}, "the storage VSP sees its wire format and SCSI layer, nothing of hv or vmbus: the partition worker wires it to a channel"},
	{"root/storvsp/storvsc", []string{"root/storvsp/protocol", "vmbus/client", "vmbus/proto", "vmbus/ring", "hv/tlfs"}, "the guest's storage client sees the VSTOR wire format and the guest's VMBus library: never the VSP, the SCSI unit, the VMBus server or the core"},
	{"root/netvsp/protocol", nil, "the network VSP's wire format (NVSP and RNDIS): standard library only, usable by a guest-side client"},
	{"root/netvsp", []string{"root/netvsp/protocol", "vmbus/proto", "hv/tlfs"}, "the network VSP sees its wire format and the VMBus packet formats (vmbus/proto, which brings the TLFS definitions), nothing of hv, the VMBus server or the switch: the partition worker wires it to a channel and a switch port"},
	{"root/hostnet/diag", nil, "the diagnostic HTTP service reports plain data the caller fills: standard library only"},
	{"root/hostnet/...", []string{"root/hostnet/..."}, "the root's TCP/IP endpoint is gVisor's netstack over an Uplink seam: nothing of hv, vmbus or the rest of root (the switch satisfies its interface)"},
	{"root/passthrough", []string{"iommu"}, "device assignment works over the IOMMU interface and small configuration-space and guest-memory seams: the image wires metal's PCI access and the partition's memory to it"},
	{"root/passthrough/hostpci", []string{"root/passthrough", "metal/pci", "iommu", "x86"}, "the one adapter from metal's PCI enumeration to what device assignment takes, shared by the image and the in-image checks"},
	{"root/vswitch", nil, "the virtual switch: standard library only; the VSPs and the root's stack attach to its ports"},
	{"root/ic/protocol", nil, "the integration services' wire format: standard library only, usable by a guest-side client"},
	{"root/ic", []string{"root/ic/protocol", "vmbus/proto", "hv/tlfs"}, "the integration services see their wire format and the VMBus GUIDs (vmbus/proto, which brings the TLFS definitions), nothing of hv or the VMBus server: the partition worker wires them to a channel"},
	{"hv", []string{"hv/vcpu", "hv/emul", "hv/tlfs", "hv/hypercall", "hv/synic", "ept", "x86", "apic/...", "iommu/..."}, "the core never imports a backend, root, checks or cmd"},
	{"hv/vendor", []string{"hv", "hv/...", "svm", "vmx", "ept", "x86", "apic/...", "iommu/..."}, "the one chooser that imports both backends"},
	{"root/loader", []string{"hv", "hv/...", "ept", "x86", "apic/...", "iommu/..."}, "the root's loaders use the core (never the other way) but no backend, checks or cmd"},
	{"root/worker", []string{"hv", "hv/...", "ept", "x86", "apic/...", "iommu/...", "vmbus/...", "root/storvsp/...", "root/ic/...", "root/netvsp/..."}, "a partition's worker joins the core, VMBus and the VSPs; never a backend, the manager, checks or cmd"},
}

// TestDependenciesPointOneWay reads every package's imports from its
// source (tests excluded) and checks each rule over the transitive closure.
func TestDependenciesPointOneWay(t *testing.T) {
	imports := moduleImports(t)
	if len(imports) < 10 {
		t.Fatalf("found only %d packages: is the test run from inside the module?", len(imports))
	}
	for _, r := range rules {
		checked := 0
		for pkg := range imports {
			if !matches(r.pkg, pkg) {
				continue
			}
			checked++
			for _, dep := range reach(imports, pkg) {
				if matches(r.pkg, dep) && strings.HasSuffix(r.pkg, "/...") {
					continue
				}
				if !slices.ContainsFunc(r.mayDeps, func(m string) bool { return matches(m, dep) }) {
					t.Errorf("%s reaches %s (%s)", pkg, dep, r.why)
				}
			}
		}
		if checked == 0 && !optional(r.pkg) {
			t.Errorf("rule for %s matched no package", r.pkg)
		}
	}
}

// TestUnsafeOnlyInUnsafeFiles: code that imports unsafe lives in files
// named *_unsafe.go (or *_unsafe_test.go), so a reader finds every place
// that steps outside Go's memory safety by its name.
func TestUnsafeOnlyInUnsafeFiles(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	files := 0
	err = filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if n := d.Name(); n == "testdata" || n == "build" || strings.HasPrefix(n, ".") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") {
			return nil
		}
		files++
		f, err := parser.ParseFile(fset, path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		name := strings.TrimSuffix(strings.TrimSuffix(filepath.Base(path), ".go"), "_test")
		for _, imp := range f.Imports {
			if imp.Path.Value == `"unsafe"` && !strings.HasSuffix(name, "_unsafe") {
				rel, _ := filepath.Rel(root, path)
				t.Errorf("%s imports unsafe; move that code to a *_unsafe.go file", rel)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files < 100 {
		t.Fatalf("read only %d files", files)
	}
}

// optional are rules for packages later work adds.
func optional(pkg string) bool {
	return slices.Contains([]string{"hv/tlfs", "apic/...", "vmbus/..."}, pkg)
}

// TestRuleMatching keeps the checker honest: a forbidden edge two steps
// away is found.
func TestRuleMatching(t *testing.T) {
	imports := map[string][]string{"svm": {"hv/vcpu"}, "hv/vcpu": {"hv"}, "hv": {"x86"}, "x86": nil}
	got := reach(imports, "svm")
	sort.Strings(got)
	if !slices.Equal(got, []string{"hv", "hv/vcpu", "x86"}) {
		t.Fatalf("reach: %v", got)
	}
	if !matches("metal/...", "metal") || !matches("metal/...", "metal/acpi") || matches("metal/...", "metalx") || matches("hv", "hv/vcpu") {
		t.Fatal("pattern matching")
	}
}

func matches(pattern, pkg string) bool {
	if tree, ok := strings.CutSuffix(pattern, "/..."); ok {
		return pkg == tree || strings.HasPrefix(pkg, tree+"/")
	}
	return pattern == pkg
}

// reach lists every module package pkg imports directly or indirectly.
func reach(imports map[string][]string, pkg string) []string {
	seen := map[string]bool{}
	var walk func(string)
	walk = func(p string) {
		for _, d := range imports[p] {
			if !seen[d] {
				seen[d] = true
				walk(d)
			}
		}
	}
	walk(pkg)
	out := make([]string, 0, len(seen))
	for d := range seen {
		out = append(out, d)
	}
	return out
}

// moduleImports maps each package directory of the module (relative, e.g.
// "hv/vcpu") to the module packages its non-test files import.
func moduleImports(t *testing.T) map[string][]string {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("no go.mod at %s", root)
	}
	out := map[string][]string{}
	fset := token.NewFileSet()
	err = filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if n := d.Name(); n == "testdata" || n == "build" || strings.HasPrefix(n, ".") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, filepath.Dir(path))
		rel = filepath.ToSlash(rel)
		if _, ok := out[rel]; !ok {
			out[rel] = nil
		}
		for _, imp := range f.Imports {
			p := strings.Trim(imp.Path.Value, `"`)
			if dep, ok := strings.CutPrefix(p, module+"/"); ok && !slices.Contains(out[rel], dep) {
				out[rel] = append(out[rel], dep)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}
