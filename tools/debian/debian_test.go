package debian_test

import (
	"bytes"
	"context"
	"debug/elf"
	"encoding/binary"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"testing"
	"time"

	"gohv/tools/debian"
)

var (
	useDebian = flag.Bool("debian", false, "fetch the real kernel and busybox with apt-get download (the network, the first time) and test them; `make test-guest` sets it")
	cacheDir  = flag.String("cache", "", "the cache directory for -debian (default: a temporary directory)")
)

// realGuest fetches the current Debian guest once per test binary.
var realGuest = func() func(t *testing.T) *debian.Guest {
	var g *debian.Guest
	var err error
	var done bool
	return func(t *testing.T) *debian.Guest {
		t.Helper()
		if !*useDebian {
			t.Skip("needs -debian: fetches Debian's kernel and busybox (make test-guest)")
		}
		if !done {
			done = true
			dir := *cacheDir
			if dir == "" {
				dir, err = os.MkdirTemp("", "gohv-guest-")
				if err != nil {
					t.Fatal(err)
				}
			}
			c := &debian.Cache{Dir: dir, Log: testLog{t}}
			g, err = c.Fetch(context.Background())
		}
		if err != nil {
			t.Fatalf("fetch: %v", err)
		}
		return g
	}
}()

type testLog struct{ t *testing.T }

func (l testLog) Write(p []byte) (int, error) {
	l.t.Logf("%s", bytes.TrimRight(p, "\n"))
	return len(p), nil
}

// TestFetchDebianResolvesTheCurrentKernel fetches for real: the
// metapackage's Depends names a linux-image-<release> whose vmlinuz is a
// bzImage, busybox is a static x86-64 ELF, and a second Fetch downloads
// nothing.
func TestFetchDebianResolvesTheCurrentKernel(t *testing.T) {
	g := realGuest(t)
	if !regexp.MustCompile(`^[0-9]+\.[0-9]+\.[0-9]+-[0-9]+-amd64$`).MatchString(g.Release) {
		t.Errorf("release %q does not look like Debian's <version>-<abi>-amd64", g.Release)
	}
	for _, p := range g.Packages {
		t.Logf("%s: %s %s (%s)", p.Role, p.Name, p.Version, p.File)
	}
	k, err := os.ReadFile(g.Kernel)
	if err != nil {
		t.Fatal(err)
	}
	// Linux boot protocol: "HdrS" at 0x202 and the protocol version at 0x206.
	if len(k) < 0x210 || string(k[0x202:0x206]) != "HdrS" {
		t.Fatalf("%s is not a bzImage (no HdrS at 0x202)", g.Kernel)
	}
	t.Logf("vmlinuz: %d bytes, boot protocol %#x", len(k), binary.LittleEndian.Uint16(k[0x206:]))
	bb, err := elf.Open(g.Busybox)
	if err != nil {
		t.Fatalf("busybox: %v", err)
	}
	defer bb.Close()
	if bb.Machine != elf.EM_X86_64 || slices.ContainsFunc(bb.Progs, func(p *elf.Prog) bool { return p.Type == elf.PT_INTERP }) {
		t.Errorf("busybox: machine %v, want a static x86-64 executable", bb.Machine)
	}

	start := time.Now()
	again, err := (&debian.Cache{Dir: filepath.Dir(g.Dir)}).Fetch(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(again.Downloaded) > 0 || again.Kernel != g.Kernel {
		t.Errorf("second fetch downloaded %v (kernel %s), want nothing from a complete cache", again.Downloaded, again.Kernel)
	}
	t.Logf("second fetch: %v, nothing downloaded", time.Since(start).Round(time.Millisecond))
	cur, err := (&debian.Cache{Dir: filepath.Dir(g.Dir)}).Current()
	if err != nil || cur.Release != g.Release {
		t.Errorf("Current() = %v, %v; want release %s", cur, err, g.Release)
	}
}

// TestModulesDebianHyperV takes the Hyper-V guest drivers out of the real
// package: hv_storvsc needs scsi_mod, hv_vmbus, scsi_transport_fc and
// scsi_common, each loaded before it.
func TestModulesDebianHyperV(t *testing.T) {
	g := realGuest(t)
	mods, err := g.Modules(context.Background(), "hv_storvsc", "hv_netvsc", "hv_utils")
	if err != nil {
		t.Fatal(err)
	}
	pos := map[string]int{}
	for i, m := range mods {
		pos[m.Name] = i
		t.Logf("%-20s %s depends=%v", m.Name, m.Path, m.Depends)
		f, err := os.Open(m.File)
		if err != nil {
			t.Fatal(err)
		}
		mi, err := debian.ReadModinfo(f)
		f.Close()
		if err != nil || mi.Name != m.Name || mi.Vermagic == "" || !bytes.HasPrefix([]byte(mi.Vermagic), []byte(g.Release+" ")) {
			t.Errorf("%s: modinfo %+v, %v: want name %s and vermagic %s", m.File, mi.Name, err, m.Name, g.Release)
		}
	}
	for _, n := range []string{"hv_vmbus", "scsi_mod", "scsi_transport_fc", "scsi_common", "hv_storvsc", "hv_netvsc", "hv_utils"} {
		if _, ok := pos[n]; !ok {
			t.Errorf("%s missing from %v", n, names(mods))
		}
	}
	for _, m := range mods {
		for _, d := range m.Depends {
			if dp, ok := pos[d]; ok && dp > pos[m.Name] {
				t.Errorf("%s comes before its dependency %s", m.Name, d)
			}
		}
	}
	if _, err := g.Modules(context.Background(), "no_such_module_here"); err == nil {
		t.Error("Modules(no_such_module_here) did not fail")
	}
}

func names(ms []debian.Module) []string {
	var s []string
	for _, m := range ms {
		s = append(s, m.Name)
	}
	return s
}
