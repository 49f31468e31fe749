package imagetest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gohv/testguests"
	"gohv/tools/linuxtest"
	"gohv/tools/qemu"
)

// TestIOMMUAssignConfig boots a configuration that gives QEMU's edu device
// (00:03.0 beside intel-iommu) to a Multiboot partition by `pci =
// ["00:03.0"]`: the manager assigns it before the partition starts (on
// its bus 0 at 00:01.0) and, after the guest powers off, resets it and
// blocks it again before the partition's memory is freed; both are in the
// root's log. Its MSI is routed to the partition through intel-iommu's
// interrupt remapping (on by default under TCG), which the log says too.
func TestIOMMUAssignConfig(t *testing.T) {
	img := needImage(t)
	dir := t.TempDir()
	kernel := filepath.Join(dir, "mbkernel")
	if err := os.WriteFile(kernel, testguests.MultibootKernel(), 0o644); err != nil {
		t.Fatal(err)
	}
	config := "[[partition]]\nname = \"mb0\"\nmemory_mib = 16\nkernel = \"mbkernel\"\non_reboot = \"stop\"\npci = [\"00:03.0\"]\n"
	mods := linuxtest.ConfigModules(t, dir, config, linuxtest.Module{Name: "mbkernel", Path: kernel})
	r := boot(t, qemu.Config{Kernel: img, Modules: qemuModules(mods), Machine: "q35", MemMiB: 256,
		Extra: []string{"-device", "intel-iommu", "-device", "edu"}, Timeout: 2 * time.Minute})
	if !r.Passed() {
		t.Fatalf("%s", r.Describe())
	}
	log := string(r.Log)
	for _, want := range []string{
		"gohv: PCI device assigned partition=mb0 device=00:03.0 guest=00:01.0",
		"gohv: assigned device MSI routed partition=mb0 device=00:03.0 host-vector=0x23 entry=0",
		`gohv: assigned device reset and blocked again partition=mb0 device=00:03.0 reset="bus master and decoding off`,
	} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q", want)
		}
	}
	if a, b := strings.Index(log, "assigned device reset"), strings.Index(log, "gohv: partition ended partition=mb0"); a < 0 || b < 0 || a < b {
		t.Errorf("the device was not released after the partition ended")
	}
}
