package debian

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// What apt-get download --print-uris printed here for linux-image-amd64,
// busybox-static and the kernel image (in an order of its own).
const printURIs = `'http://deb.debian.org/debian/pool/main/b/busybox/busybox-static_1.35.0-4%2bdeb12u1%2bb1_amd64.deb' busybox-static_1%3a1.35.0-4+deb12u1+b1_amd64.deb 928188 SHA256:3d3fdbe91d4660c873e14b092c213fe81c1da6362daa236eb25d0171eb108744
'http://deb.debian.org/debian-security/pool/updates/main/l/linux-signed-amd64/linux-image-6.1.0-57-amd64_6.1.192-3_amd64.deb' linux-image-6.1.0-57-amd64_6.1.192-3_amd64.deb 70591024 SHA256:14d219d01e1283261817d961dbb3895cb5b4288d0de10e0ba0632a0d993e15bf
'http://deb.debian.org/debian-security/pool/updates/main/l/linux-signed-amd64/linux-image-amd64_6.1.192-3_amd64.deb' linux-image-amd64_6.1.192-3_amd64.deb 1476 SHA256:4bf758c7753f48c545ecc23a3a56438f0b0acdf4d32c3ce8d4ec72361c1171bb
`

func TestParsePrintURIs(t *testing.T) {
	as, err := ParsePrintURIs(printURIs)
	if err != nil {
		t.Fatal(err)
	}
	if len(as) != 3 {
		t.Fatalf("%d artifacts, want 3", len(as))
	}
	bb := as[0]
	if bb.Package != "busybox-static" || bb.File != "busybox-static_1%3a1.35.0-4+deb12u1+b1_amd64.deb" || bb.Size != 928188 ||
		!strings.HasSuffix(bb.URI, "busybox-static_1.35.0-4%2bdeb12u1%2bb1_amd64.deb") || !strings.HasPrefix(bb.Hash, "SHA256:3d3f") {
		t.Errorf("busybox: %+v", bb)
	}
	if as[1].Package != "linux-image-6.1.0-57-amd64" || as[2].Package != "linux-image-amd64" {
		t.Errorf("packages %q, %q", as[1].Package, as[2].Package)
	}
}

func TestParsePrintURIsRefusesOtherLines(t *testing.T) {
	good := "'http://x/ab_1_amd64.deb' ab_1_amd64.deb 10 SHA256:" + strings.Repeat("ab", 32)
	for _, line := range []string{
		"E: Unable to locate package nonexist",
		"http://x/ab_1_amd64.deb ab_1_amd64.deb 10 SHA256:" + strings.Repeat("ab", 32), // no quotes
		strings.Replace(good, " 10 ", " -1 ", 1),
		strings.Replace(good, " 10 ", " ten ", 1),
		strings.Replace(good, "SHA256:", "MD5Sum:", 1),
		strings.Replace(good, "SHA256:ab", "SHA256:", 1), // short digest
		strings.Replace(good, " ab_1_amd64.deb ", " ../ab_1_amd64.deb ", 1),
		strings.Replace(good, " ab_1_amd64.deb ", " ab_1_amd64.tar ", 1),
		strings.Replace(good, " ab_1_amd64.deb ", " AB_1_amd64.deb ", 1),
	} {
		if _, err := ParsePrintURIs(line); err == nil {
			t.Errorf("ParsePrintURIs(%q) did not fail", line)
		}
	}
	if _, err := ParsePrintURIs(good); err != nil {
		t.Errorf("the good line: %v", err)
	}
}

func TestArtifactVerifyChecksSizeAndHash(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "ab_1_amd64.deb")
	if err := os.WriteFile(p, []byte("hello\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// sha256("hello\n") and sha512("hello\n")
	const s256 = "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03"
	const s512 = "e7c22b994c59d9cf2b48e549b1e24666636045930d3da7c1acb299d1c3b7f931f94aae41edda2c2b207a36e10f8bcb8d45223e54878f5b316e7ce3b6bc019629"
	for _, tc := range []struct {
		a  Artifact
		ok bool
	}{
		{Artifact{Size: 6, Hash: "SHA256:" + s256}, true},
		{Artifact{Size: 6, Hash: "SHA512:" + s512}, true},
		{Artifact{Size: 7, Hash: "SHA256:" + s256}, false},
		{Artifact{Size: 6, Hash: "SHA256:" + strings.Repeat("0", 64)}, false},
	} {
		if err := tc.a.Verify(p); (err == nil) != tc.ok {
			t.Errorf("%+v: %v", tc.a, err)
		}
	}
	if err := (Artifact{Size: 6, Hash: "SHA256:" + s256}).Verify(filepath.Join(dir, "missing")); err == nil {
		t.Error("a missing file verified")
	}
}

func TestStaleListsHint(t *testing.T) {
	for msg, want := range map[string]bool{
		"E: Unable to locate package busybox-static":                                    true,
		"E: Version '6.1.0' for 'linux-image-6.1.0-57-amd64' was not found":             true,
		"E: Failed to fetch http://deb.debian.org/...  404  Not Found [IP: 1.2.3.4 80]": true,
		"E: Could not open lock file":                                                   false,
	} {
		if staleLists(msg) != want {
			t.Errorf("staleLists(%q) = %v", msg, !want)
		}
	}
}
