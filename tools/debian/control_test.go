package debian

import (
	"reflect"
	"strings"
	"testing"
)

// The control file of linux-image-amd64 6.1.192-3 as `dpkg-deb -f` printed it.
const metaControl = `Package: linux-image-amd64
Source: linux-signed-amd64 (6.1.192+3)
Version: 6.1.192-3
Architecture: amd64
Maintainer: Debian Kernel Team <debian-kernel@lists.debian.org>
Installed-Size: 13
Depends: linux-image-6.1.0-57-amd64 (= 6.1.192-3)
Provides: linux-image-generic, linux-latest-modules-6.1.0-57-amd64, virtualbox-guest-modules, wireguard-modules (= 1.0.0)
Built-Using: linux (= 6.1.192-3)
Section: kernel
Priority: optional
Homepage: https://www.kernel.org/
Description: Linux for 64-bit PCs (meta-package)
 This package depends on the latest Linux kernel and modules for use on PCs
 with AMD64, Intel 64 or VIA Nano processors.
`

func TestParseControlReadsTheMetapackage(t *testing.T) {
	c, err := ParseControl(metaControl)
	if err != nil {
		t.Fatal(err)
	}
	for field, want := range map[string]string{
		"Package":      "linux-image-amd64",
		"version":      "6.1.192-3", // field names ignore case
		"DEPENDS":      "linux-image-6.1.0-57-amd64 (= 6.1.192-3)",
		"Description":  "Linux for 64-bit PCs (meta-package)\nThis package depends on the latest Linux kernel and modules for use on PCs\nwith AMD64, Intel 64 or VIA Nano processors.",
		"Pre-Depends":  "",
		"Architecture": "amd64",
	} {
		if got := c.Get(field); got != want {
			t.Errorf("Get(%q) = %q, want %q", field, got, want)
		}
	}
	if c.Has("Pre-Depends") || !c.Has("built-using") {
		t.Error("Has is wrong about Pre-Depends or Built-Using")
	}
	if f := c.Fields(); len(f) != 13 || f[0] != "Package" || f[12] != "Description" {
		t.Errorf("Fields() = %q", f)
	}
}

func TestParseControlStopsAtTheFirstParagraph(t *testing.T) {
	c, err := ParseControl("# comment\n\nPackage: a\nVersion: 1\n\nPackage: b\n")
	if err != nil || c.Get("Package") != "a" || c.Get("Version") != "1" {
		t.Fatalf("got %v, %v", c.Fields(), err)
	}
}

func TestParseControlErrorsNameTheLine(t *testing.T) {
	for _, tc := range []struct{ text, want string }{
		{"", "no fields"},
		{"Version: 1\n", "no Package field"},
		{" continued\nPackage: a\n", "line 1: continuation line before any field"},
		{"Package: a\nno colon here\n", "line 2: \"no colon here\" is not a field"},
		{"Package: a\nVersion: 1\nversion: 2\n", "line 3: field version given twice"},
		{"Package: a\nbad name: x\n", "line 2"},
	} {
		_, err := ParseControl(tc.text)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseControl(%q) = %v, want an error with %q", tc.text, err, tc.want)
		}
	}
}

func TestParseRelations(t *testing.T) {
	got, err := ParseRelations("kmod, linux-base (>= 4.3~), initramfs-tools (>= 0.120+deb8u2) | linux-initramfs-tool,\n python3:any, foo (<< 2:1.0-1)")
	if err != nil {
		t.Fatal(err)
	}
	want := [][]Relation{
		{{Name: "kmod"}},
		{{Name: "linux-base", Op: ">=", Version: "4.3~"}},
		{{Name: "initramfs-tools", Op: ">=", Version: "0.120+deb8u2"}, {Name: "linux-initramfs-tool"}},
		{{Name: "python3", Arch: "any"}},
		{{Name: "foo", Op: "<<", Version: "2:1.0-1"}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %v\nwant %v", got, want)
	}
	if s := want[2][0].String(); s != "initramfs-tools (>= 0.120+deb8u2)" {
		t.Errorf("String() = %q", s)
	}
	if g, err := ParseRelations("  "); err != nil || g != nil {
		t.Errorf("empty field: %v, %v", g, err)
	}
}

func TestParseRelationsRefusesWhatIsNotARelation(t *testing.T) {
	for _, s := range []string{
		"a, , b",            // empty alternative
		"Upper-Case",        // Policy 5.6.1: lower case
		"x",                 // too short
		"a (= 1",            // unbalanced
		"a (~ 1)",           // unknown operator
		"a (>= )",           // no version
		"a (>= 1) trailing", // junk after the restriction
		"a [amd64]",         // source-package syntax
		"a (>= 1) [amd64]",
		"a <!nocheck>",
	} {
		if _, err := ParseRelations(s); err == nil {
			t.Errorf("ParseRelations(%q) did not fail", s)
		}
	}
}

func TestRelationSpecPinsOnlyExactVersions(t *testing.T) {
	for r, want := range map[Relation]string{
		{Name: "linux-image-6.1.0-57-amd64", Op: "=", Version: "6.1.192-3"}: "linux-image-6.1.0-57-amd64=6.1.192-3",
		{Name: "busybox-static"}:                        "busybox-static",
		{Name: "linux-base", Op: ">=", Version: "4.3~"}: "linux-base",
	} {
		if got := r.Spec(); got != want {
			t.Errorf("%v.Spec() = %q, want %q", r, got, want)
		}
	}
}

func TestKernelImageFromTheMetapackagesDepends(t *testing.T) {
	for _, tc := range []struct{ depends, pkg, release string }{
		{"linux-image-6.1.0-57-amd64 (= 6.1.192-3)", "linux-image-6.1.0-57-amd64=6.1.192-3", "6.1.0-57-amd64"},
		{"linux-image-6.12.38+deb13-amd64-unsigned (= 6.12.38-1) | linux-image-6.12.38+deb13-amd64 (= 6.12.38-1)",
			"linux-image-6.12.38+deb13-amd64-unsigned=6.12.38-1", "6.12.38+deb13-amd64"},
		{"linux-base, linux-image-amd64-signed-template | linux-image-6.1.0-57-cloud-amd64", "linux-image-6.1.0-57-cloud-amd64", "6.1.0-57-cloud-amd64"},
		{"linux-image-6.1.0-57-amd64-dbg, linux-image-6.1.0-57-amd64", "linux-image-6.1.0-57-amd64", "6.1.0-57-amd64"},
	} {
		c, err := ParseControl("Package: linux-image-amd64\nVersion: 1\nDepends: " + tc.depends + "\n")
		if err != nil {
			t.Fatal(err)
		}
		r, rel, err := KernelImage(c)
		if err != nil || r.Spec() != tc.pkg || rel != tc.release {
			t.Errorf("Depends %q: %q %q %v, want %q %q", tc.depends, r.Spec(), rel, err, tc.pkg, tc.release)
		}
	}
	for _, depends := range []string{"", "linux-image-amd64-signed, kmod", "linux-image-6.1.0-57-amd64-dbg"} {
		c, _ := ParseControl("Package: linux-image-amd64\nVersion: 1\nDepends: " + depends + "\n")
		if _, _, err := KernelImage(c); err == nil || !strings.Contains(err.Error(), "names no linux-image-<release>") {
			t.Errorf("Depends %q: %v, want an error", depends, err)
		}
	}
}

func FuzzParseControl(f *testing.F) {
	f.Add(metaControl)
	f.Add("Package: a\n b\n .\n")
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ParseControl(s)
		if err != nil {
			return
		}
		if c.Get("Package") == "" {
			t.Fatal("parsed without a Package")
		}
		ParseRelations(c.Get("Depends"))
		KernelImage(c)
	})
}
