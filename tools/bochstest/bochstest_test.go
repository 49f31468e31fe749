// Package bochstest boots the real gohv image under Bochs 2.7 — Intel VT-x
// with EPT, VPID and unrestricted guest (cpu model corei7_skylake_x) — from a
// GRUB ISO, and reads its verdict off the serial port, as tools/imagetest
// does under QEMU (AMD-V). `make test-bochs` runs it with -image pointing at
// build/gohv; without the flag (plain `go test ./...`) it skips.
//
// At most two Bochs run at once (the machines have two cores and Bochs is one
// busy thread), however many tests go test runs in parallel.
package bochstest

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"gohv/checks"
	"gohv/tools/bochs"
)

var (
	image = flag.String("image", "", "path of the gohv image (build/gohv); the Bochs image tests skip without it")
	// A boot takes about 25 s here (selftest, the default configuration).
	bootTimeout = flag.Duration("boot-timeout", 3*time.Minute, "how long one Bochs boot may take before Bochs is killed")
	keepDir     = flag.String("keep", "", "keep each boot's bochsrc, serial.log and bochs.log under this directory")
)

// slots bounds the Bochs processes running at once.
var slots = make(chan struct{}, 2)

// isoDir holds the ISOs built for this run, one per kernel command line.
var isoDir string

func TestMain(m *testing.M) {
	flag.Parse()
	d, err := os.MkdirTemp("", "gohv-bochstest-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	isoDir = d
	code := m.Run()
	os.RemoveAll(d)
	os.Exit(code)
}

func needImage(t testing.TB) string {
	t.Helper()
	if *image == "" {
		t.Skip("no -image: run `make test-bochs`")
	}
	if _, err := os.Stat(*image); err != nil {
		t.Fatalf("image: %v (run `make image`)", err)
	}
	if !bochs.Available() {
		t.Fatal(bochs.ErrNoBochs)
	}
	return *image
}

var isos sync.Map // command line → *isoOnce

type isoOnce struct {
	once sync.Once
	path string
	err  error
}

// iso returns a GRUB ISO that boots img with cmdline, building it once.
func iso(t testing.TB, img, cmdline string) string {
	t.Helper()
	v, _ := isos.LoadOrStore(cmdline, &isoOnce{})
	o := v.(*isoOnce)
	o.once.Do(func() {
		name := strings.Join(strings.Fields(cmdline), "_")
		if name == "" {
			name = "default"
		}
		o.path = filepath.Join(isoDir, name+".iso")
		o.err = bochs.BuildISO(img, cmdline, o.path)
	})
	if o.err != nil {
		t.Fatal(o.err)
	}
	return o.path
}

// boot runs the image with cmdline under Bochs. Every boot's account (and
// so its time) is logged; on failure the whole serial log and the tail of
// Bochs's log are printed, since they are the only record of what happened.
func boot(t testing.TB, cmdline string, c bochs.Config) *bochs.Result {
	t.Helper()
	img := needImage(t)
	c.ISO = iso(t, img, cmdline)
	if c.Timeout == 0 {
		c.Timeout = *bootTimeout
	}
	if *keepDir != "" {
		c.WorkDir = filepath.Join(*keepDir, strings.NewReplacer("/", "_", " ", "_").Replace(t.Name()))
	}
	slots <- struct{}{}
	r, err := bochs.Run(context.Background(), c)
	<-slots
	if r != nil {
		t.Cleanup(func() {
			if t.Failed() {
				t.Logf("bochs: %q, %d MiB, %s\n%s\n---- serial log ----\n%s\n---- end ----\n---- bochs.log (tail) ----\n%s---- end ----\n%s",
					cmdline, memMiB(c), cpuModel(c), r.Describe(), printable(r.Log), printable(r.BochsLog), r.Describe())
			}
		})
		t.Logf("boot %q: %s", cmdline, r.Describe())
	}
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func memMiB(c bochs.Config) int {
	if c.MemMiB == 0 {
		return bochs.DefaultMemMiB
	}
	return c.MemMiB
}

func cpuModel(c bochs.Config) string {
	if c.CPUModel == "" {
		return bochs.DefaultCPUModel
	}
	return c.CPUModel
}

// printable drops the terminal control sequences GRUB sends (clear screen,
// cursor moves), which would otherwise act on the terminal showing the test
// output.
func printable(b []byte) string {
	return strings.NewReplacer("\x1b", "^[", "\r\n", "\n", "\r", "").Replace(string(b))
}

// TestSelftest boots `selftest` on the VT-x CPU model, small and large, and
// wants every check and the verdict to pass: metal has no QEMU-only
// assumptions.
func TestSelftest(t *testing.T) {
	for _, mem := range []int{256, 2048} {
		t.Run(fmt.Sprintf("%dM", mem), func(t *testing.T) {
			t.Parallel()
			r := boot(t, "selftest", bochs.Config{MemMiB: mem})
			if !r.Passed() {
				t.Fatalf("selftest: %s", r.Describe())
			}
			for _, name := range checks.Selftest.Names() {
				if _, ok := r.Verdict.Check(name); !ok {
					t.Errorf("check %s not reported", name)
				}
			}
			if c, ok := r.Verdict.Check("timers"); ok {
				t.Logf("timers: %s", c.Detail)
			}
		})
	}
}

// TestHypervisorVTx runs the child-partition checks on Intel VT-x: the same
// test guests and checks as under AMD-V, plus a VM entry that fails on a
// deliberately bad guest-state field.
func TestHypervisorVTx(t *testing.T) {
	t.Parallel()
	r := boot(t, "hvtest", bochs.Config{})
	if !r.Passed() {
		t.Fatalf("hvtest: %s", r.Describe())
	}
	for _, name := range checks.HVTest.Names() {
		c, ok := r.Verdict.Check(name)
		if name == "vp-migrate" { // needs 3 CPUs: TestHypervisorSMP, TestSMPVTx
			if ok || !strings.Contains(string(r.Log), "gohv: check vp-migrate not run:") {
				t.Errorf("vp-migrate on one CPU: reported %v, want a 'not run' line", ok)
			}
			continue
		}
		if !ok {
			t.Errorf("check %s not reported", name)
			continue
		}
		t.Logf("%s: %s", name, c.Detail)
	}
}

// TestDefaultConfiguration boots what `make run-bochs` shows: both child
// partitions print through their own UARTs and stop, and the run passes.
func TestDefaultConfiguration(t *testing.T) {
	t.Parallel()
	r := boot(t, "", bochs.Config{})
	if !r.Passed() {
		t.Fatalf("default configuration: %s", r.Describe())
	}
	for _, want := range []string{"gohv: banner ", "gohv: cpu GenuineIntel",
		"mb0: hello from a Multiboot kernel", "hello1: hello from a 64-bit child partition"} {
		if !strings.Contains(string(r.Log), want) {
			t.Errorf("log lacks %q", want)
		}
	}
}
