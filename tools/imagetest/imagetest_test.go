// Package imagetest boots the real gohv image under QEMU TCG and reads its
// verdict off the serial port. `make test-image` runs it with -image pointing
// at build/gohv; without the flag (plain `go test ./...`) it skips.
package imagetest

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"gohv/checks"
	"gohv/tools/qemu"
)

var image = flag.String("image", "", "path of the gohv image (build/gohv); image tests skip without it")

func needImage(t testing.TB) string {
	t.Helper()
	if *image == "" {
		t.Skip("no -image: run `make test-image`")
	}
	if _, err := os.Stat(*image); err != nil {
		t.Fatalf("image: %v (run `make image`)", err)
	}
	if !qemu.Available() {
		t.Fatal(qemu.ErrNoQEMU)
	}
	return *image
}

// boot runs one configuration; on any failure the whole serial log is
// printed, since it is the only account of what the image did.
func boot(t testing.TB, c qemu.Config) *qemu.Result {
	t.Helper()
	r, err := qemu.Run(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("qemu %s\n%s\n---- serial log ----\n%s---- end ----\n%s", strings.Join(c.Args(), " "), r.Describe(), r.Log, r.Describe())
		}
	})
	return r
}

// TestSelftest boots `selftest` across the CPU/machine/memory matrix the
// metal issue asks for and wants every check and the verdict to pass.
func TestSelftest(t *testing.T) {
	img := needImage(t)
	for _, c := range []struct {
		cpu, machine string
		mem, smp     int
	}{
		{"EPYC", "pc", 256, 1},
		{"EPYC", "q35", 2048, 4},
		{"max", "pc", 2048, 2},
		{"max", "q35", 256, 1},
	} {
		t.Run(fmt.Sprintf("%s-%s-%dM-%dcpu", c.cpu, c.machine, c.mem, c.smp), func(t *testing.T) {
			t.Parallel()
			r := boot(t, qemu.Config{Kernel: img, Append: []string{"selftest"},
				CPU: c.cpu, Machine: c.machine, MemMiB: c.mem, Extra: []string{"-smp", fmt.Sprint(c.smp)}, Timeout: 4 * time.Minute})
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
			// Every CPU QEMU gives is started and runs Go code (check smp).
			if s, ok := r.Verdict.Check("smp"); !ok || !strings.HasPrefix(s.Detail, fmt.Sprintf("%d cpus online", c.smp)) {
				t.Errorf("check smp: %q, want %d cpus online", s.Detail, c.smp)
			}
		})
	}
}

// TestDefaultConfiguration is what `make run` shows: banner, CPU, memory
// and a PASS verdict.
func TestDefaultConfiguration(t *testing.T) {
	img := needImage(t)
	t.Parallel()
	r := boot(t, qemu.Config{Kernel: img, Timeout: 2 * time.Minute})
	if !r.Passed() {
		t.Fatalf("default configuration: %s", r.Describe())
	}
	for _, want := range []string{"gohv: banner ", "gohv: cpu ", "gohv: memory ",
		"mb0: hello from a Multiboot kernel", "hello1: hello from a 64-bit child partition",
		`gohv: partition ended partition=mb0 state=stopped reason="power-off through the debug-exit port" status=0x1f`,
		`gohv: partition ended partition=hello1 state=stopped reason="power-off through the debug-exit port" status=0x0`} {
		if !strings.Contains(string(r.Log), want) {
			t.Errorf("log lacks %q", want)
		}
	}
}

// TestHypervisor runs the child-partition checks under AMD-V (QEMU's EPYC
// model has svm and npt under TCG).
func TestHypervisor(t *testing.T) {
	img := needImage(t)
	t.Parallel()
	hostQuiet.Lock() // its timing checks want the host's cores
	defer hostQuiet.Unlock()
	r := boot(t, qemu.Config{Kernel: img, Append: []string{"hvtest"}, CPU: "EPYC", Machine: "q35", MemMiB: 512, Timeout: 3 * time.Minute})
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

// TestHypervisorSMP runs the hvtest checks that involve several host CPUs
// on a 4-CPU QEMU (multi-threaded TCG): the garbage collector's pause with
// a spinning guest on every CPU that runs VPs, stopping spinning and halted
// VPs on other CPUs, isolation between partitions that run at once, a
// two-VP guest's INITs, stray SIPIs and IPI storms with its VPs on two
// CPUs (smp-hostile), IPI round trips and remote TLB flushes between a
// two-VP guest's VPs on two CPUs (smp-ipi-flush: its control round
// usually shows that the emulated TLB keeps a stale translation, so a
// flush that did not reach the other CPU fails a round; the AP exiting
// in the microseconds between remap and read can hide it in a run), a VP moving off a shared CPU to
// one a stopped partition freed (vp-migrate, AMD-V: another CPU's host
// save area), and every page back at the end.
func TestHypervisorSMP(t *testing.T) {
	img := needImage(t)
	t.Parallel()
	hostQuiet.Lock() // four emulated CPUs want the host's cores
	defer hostQuiet.Unlock()
	names := []string{"gc-pause-spinning", "stop-spin-halt", "isolation", "cr2-across-partitions", "smp-hostile", "smp-ipi-flush", "vp-migrate", "overcommit", "pages-returned"}
	r := boot(t, qemu.Config{Kernel: img, Append: []string{"hvtest=" + strings.Join(names, ",")}, CPU: "EPYC", Machine: "q35",
		MemMiB: 1024, Extra: []string{"-smp", "4"}, Timeout: 3 * time.Minute})
	if !r.Passed() {
		t.Fatalf("hvtest on 4 CPUs: %s", r.Describe())
	}
	if !strings.Contains(string(r.Log), "gohv: metal: 4 cpus online") {
		t.Error("the boot report does not say 4 cpus online")
	}
	for _, name := range names {
		c, ok := r.Verdict.Check(name)
		if !ok {
			t.Errorf("check %s not reported", name)
			continue
		}
		t.Logf("%s: %s", name, c.Detail)
	}
}

// TestInterruptOnceUnderIcount runs hvtest's interrupt-once check under
// -icount, where QEMU's loop yields at every timer due: the setting in
// which its TCG delivered an interrupt injected through EVENTINJ a second
// time, nested in its own handler with interrupts disabled (what hung the
// Linux guests now and then).
func TestInterruptOnceUnderIcount(t *testing.T) {
	img := needImage(t)
	t.Parallel()
	r := boot(t, qemu.Config{Kernel: img, Append: []string{"hvtest=interrupt-once"}, CPU: "EPYC", Machine: "q35",
		MemMiB: 512, Icount: true, Timeout: 3 * time.Minute})
	if !r.Passed() {
		t.Fatalf("hvtest=interrupt-once: %s", r.Describe())
	}
	c, ok := r.Verdict.Check("interrupt-once")
	if !ok {
		t.Fatal("check interrupt-once not reported")
	}
	t.Log(c.Detail)
}

// TestNoSVM: on a CPU without AMD-V the default configuration says so and
// fails cleanly.
func TestNoSVM(t *testing.T) {
	img := needImage(t)
	t.Parallel()
	r := boot(t, qemu.Config{Kernel: img, CPU: "EPYC,-svm", Machine: "pc", MemMiB: 256, Timeout: time.Minute})
	if r.TimedOut || r.ExitCode != qemu.ExitFail || !strings.Contains(r.Verdict.Reason, "no AMD-V") {
		t.Fatalf("want a FAIL verdict naming the missing AMD-V: %s", r.Describe())
	}
}

// TestBadInput damages the boot input (or makes an unknown system call)
// and wants a clear message and a FAIL verdict, never a hang or a reboot.
func TestBadInput(t *testing.T) {
	img := needImage(t)
	for _, c := range []struct {
		name   string
		append []string
		extra  []string
		want   string
	}{
		{"mmap-missing", []string{"inject=mmap-missing"}, nil, "memory map"},
		{"mmap-truncated", []string{"inject=mmap-truncated"}, nil, "memory map"},
		{"syscall-unknown", []string{"inject=syscall-unknown"}, nil, "unsupported system call"},
		{"exception", []string{"inject=exception"}, nil, "goroutine"},
		{"no-rsdp", nil, nil, "RSDP"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			cfg := qemu.Config{Kernel: img, Append: c.append, Machine: "pc", MemMiB: 256, Timeout: 2 * time.Minute}
			if c.name == "no-rsdp" {
				cfg.Machine = "pc,acpi=off"
			}
			r := boot(t, cfg)
			if r.TimedOut || r.ExitCode != qemu.ExitFail {
				t.Fatalf("want debug-exit FAIL (status 3): %s", r.Describe())
			}
			if r.Verdict.Verdicts != 1 || r.Verdict.Pass {
				t.Fatalf("want exactly one FAIL verdict: %s", r.Describe())
			}
			if !strings.Contains(string(r.Log), c.want) {
				t.Fatalf("log lacks %q: %s", c.want, r.Describe())
			}
			t.Logf("verdict FAIL %s", r.Verdict.Reason)
		})
	}
}

// TestIOMMUReport boots a short selftest on q35 with QEMU's intel-iommu,
// with its amd-iommu, and with neither, and wants the boot report's IOMMU
// lines: one line per unit from the ACPI DMAR and IVRS tables; the VT-d
// unit turned on with every device blocked (its capabilities, then the
// confinement) and interrupt remapping on — every remappable-format
// interrupt blocked, and the line saying that QEMU 7.2 passes the
// compatibility format whatever GCMD_REG.CFI says — or off with
// intremap=off (ECAP_REG.IR clear); the AMD-Vi unit turned
// on likewise, with remapping on (QEMU's intremap defaults to on under
// TCG, and its IVHD then names the I/O APIC) and off with intremap=off;
// and the warning that DMA is not confined where no unit exists.
func TestIOMMUReport(t *testing.T) {
	needImage(t) // skips without -image, before the subtests
	const none = "gohv: warning: no IOMMU (no usable ACPI DMAR or IVRS table): DMA is not confined and device assignment is unavailable"
	for _, c := range []struct {
		name  string
		extra []string
		want  []string
	}{
		// QEMU 7.2 names each device on bus 0 in the unit's scope
		// (no INCLUDE_PCI_ALL): the I/O APIC, the host bridge, the
		// default VGA and e1000e, the ICH9 LPC, SATA and SMBus.
		{"intel-iommu", []string{"-device", "intel-iommu,intremap=on"}, []string{
			"gohv: acpi iommu vt-d unit 0 at 0xfed90000 segment 0 scope 7 entries intr-remap=true address-width 39",
			"gohv: iommu vt-d unit 0xfed90000: version 1.0 cap 0xd2008c22260206 ecap 0xf00f4a: mgaw 39 sagaw 0x2 65536 domains 1 fault records at 0x220 rwbf=false cm=false; iotlb at 0xf0 qi=true ir=true pt=true sc=false smts=false",
			"gohv: iommu vt-d unit 0xfed90000: translation on, every device blocked (1 fault record); interrupt remapping on, every remappable-format interrupt blocked but not the compatibility format (QEMU 7.2's intel-iommu delivers compatibility-format interrupts whatever GCMD_REG.CFI says)"}},
		{"intel-iommu-intremap-off", []string{"-device", "intel-iommu,intremap=off"}, []string{
			"gohv: acpi iommu vt-d unit 0 at 0xfed90000 segment 0 scope 7 entries intr-remap=false address-width 39",
			"gohv: iommu vt-d unit 0xfed90000: version 1.0 cap 0xd2008c22260206 ecap 0xf42: mgaw 39 sagaw 0x2 65536 domains 1 fault records at 0x220 rwbf=false cm=false; iotlb at 0xf0 qi=true ir=false pt=true sc=false smts=false",
			"gohv: iommu vt-d unit 0xfed90000: translation on, every device blocked (1 fault record); interrupt remapping off: ECAP_REG.IR clear: the unit does not remap interrupts"}},
		// The IOMMU is a PCI function, in the first free slot after
		// the default VGA (00:01.0) and e1000e (00:02.0).
		{"amd-iommu", []string{"-device", "amd-iommu"}, []string{
			"gohv: acpi iommu amd-vi unit 0 at 0xfed80000 segment 0 device 00:03.0 ivhd-type 0x10 8 device entries",
			"gohv: iommu amd-vi unit 0xfed80000: device 00:03.0 segment 0 efr 0x29d3 ia=true coherent=false event-log=false",
			"gohv: iommu amd-vi unit 0xfed80000: translation on, every device blocked (256 device table entries); interrupt remapping on, every interrupt blocked"}},
		{"amd-iommu-intremap-off", []string{"-device", "amd-iommu,intremap=off"}, []string{
			"gohv: acpi iommu amd-vi unit 0 at 0xfed80000 segment 0 device 00:03.0 ivhd-type 0x10 7 device entries",
			"gohv: iommu amd-vi unit 0xfed80000: device 00:03.0 segment 0 efr 0x29d3 ia=true coherent=false event-log=false",
			"gohv: iommu amd-vi unit 0xfed80000: translation on, every device blocked (256 device table entries); interrupt remapping off: the IVHD names no I/O APIC (QEMU: amd-iommu with intremap=off)"}},
		{"none", nil, []string{none}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			reportLines(t, "IOMMU", "q35", c.extra, c.want, func(l string) bool {
				return strings.HasPrefix(l, "gohv: acpi iommu ") || strings.HasPrefix(l, "gohv: iommu ") || strings.Contains(l, "IOMMU")
			})
		})
	}
}

// TestIOMMUBlocksDMA boots `iommutest` on q35 with QEMU's edu device
// behind each IOMMU: the boot turns the unit on with every device blocked,
// and the check iommu-blocks-dma has the edu device DMA into a
// hypervisor page, first with translation off (the control: the data
// arrives) and then on (the page stays unchanged and the unit records a
// fault from the edu device at that page, a write: "root entry not
// present" on VT-d). QEMU 7.2's amd-iommu refuses the DMA (its trace shows
// amdvi_page_fault for each access) but writes no event log entry
// (amdvi_log_event returns early: amdvi_test_mask is never zero), so on
// AMD-Vi the line says fault=unrecorded and why. amd-iommu is itself a
// PCI function (00:03.0 after the default VGA and e1000e), so the edu
// device is 00:04.0 there. The suite runs iommu-assign-edu too, whose
// interrupt part needs edu's DMA to reach 32-bit addresses (dma_mask).
func TestIOMMUBlocksDMA(t *testing.T) {
	needImage(t) // skips without -image, before the subtests
	for _, c := range []struct {
		name, device, edu string
		want              []string
	}{
		{"intel-iommu", "intel-iommu", "00:03.0", []string{"fault-source=00:03.0 ", "fault-type=write", `fault-reason="root entry not present (0x1)"`}},
		{"amd-iommu", "amd-iommu", "00:04.0", []string{`unit="amd-vi unit 0xfed80000"`, `fault=unrecorded fault-why="QEMU 7.2's amd-iommu writes no event log entries"`}},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := boot(t, qemu.Config{Kernel: needImage(t), Append: []string{"iommutest"},
				Machine: "q35", MemMiB: 256, Extra: []string{"-device", c.device, "-device", "edu,dma_mask=0xffffffff"}, Timeout: 2 * time.Minute})
			if !r.Passed() {
				t.Fatalf("iommutest: %s", r.Describe())
			}
			ck, ok := r.Verdict.Check("iommu-blocks-dma")
			if !ok {
				t.Fatal("check iommu-blocks-dma not reported")
			}
			for _, want := range append([]string{"device=" + c.edu + " ", "page=unchanged", "with translation off"}, c.want...) {
				if !strings.Contains(ck.Detail, want) {
					t.Errorf("detail lacks %q: %s", want, ck.Detail)
				}
			}
			// The fault's page is the DMA's target.
			if target, addr := field(ck.Detail, "target="), field(ck.Detail, "fault-addr="); target == "" || target != addr && c.name == "intel-iommu" {
				t.Errorf("fault at %q, DMA target %q", addr, target)
			}
			t.Logf("%s", ck.Detail)
		})
	}
}

// TestIOMMUAssign boots `iommutest=iommu-assign-edu` on q35 with QEMU's
// edu device behind each IOMMU: the root assigns the device to a 16 MiB
// child partition (a domain mapping exactly its RAM, BAR0 in its space,
// a virtual configuration space at 00:01.0), whose test guest finds it,
// sizes and relocates BAR0, DMAs 2 KiB from its RAM through the device
// and back, then DMAs to and from a GPA outside its RAM that is the host
// address of a hypervisor page. The check reads the verdict off serial:
// every guest step passed, the page unchanged, the refused write
// reported to the partition's domain (VT-d; QEMU 7.2's amd-iommu records
// nothing: fault=unrecorded), the device reset and blocked again after
// the partition stopped.
//
// Both units remap interrupts (QEMU's intremap is on by default under
// TCG), so the device's MSI is routed: a remapping entry to a host vector
// (the root's control raises it once), the guest programs its MSI with
// vector 0x30, has the device raise its interrupt and takes 0x30; then it
// has the device write two messages into the interrupt window by DMA —
// which needs edu's dma_mask widened to 32 bits — a compatibility-format
// one and one naming an entry not the device's: the second is blocked on
// both units; the first is blocked on AMD-Vi and, on VT-d, reaches the
// host because QEMU 7.2's intel-iommu ignores GCMD_REG.CFI (the detail
// says so; gohv keeps CFI clear, which blocks it on hardware).
func TestIOMMUAssign(t *testing.T) {
	needImage(t) // skips without -image, before the subtests
	const routed = "msi=remapped host-vector=0x23 host-apic=0 entry=0 guest-vector=0x30 guest-interrupts=1 irq-ticks="
	const control = " control=delivered "
	for _, c := range []struct {
		name, device, edu string
		icount            bool // -icount shift=0: how the README's figures were taken (about 20 s a boot instead of 2)
		want              []string
	}{
		{"intel-iommu", "intel-iommu", "00:03.0", false, []string{"fault-source=00:03.0 ", "fault-type=write", `fault-reason="write to a page without write permission (0x5)"`, `after-release=blocked(context-entry-not-present`,
			routed, control, "hostile-compat=0xfee00000/0x24:reached-host compat-why=\"QEMU 7.2's intel-iommu delivers compatibility-format interrupts whatever GCMD_REG.CFI says\"", "hostile-foreign=0xfee00018/0x1:blocked"}},
		{"amd-iommu", "amd-iommu", "00:04.0", false, []string{`unit="amd-vi unit 0xfed80000"`, "fault=unrecorded", "after-release=blocked",
			routed, control, "hostile-compat=0xfee00000/0x24:blocked", "hostile-foreign=0xfee00000/0x1:blocked"}},
		// Without remapping the device keeps its DMA confinement and gets
		// no interrupts; the guest skips its interrupt steps.
		{"amd-iommu-intremap-off", "amd-iommu,intremap=off", "00:04.0", false, []string{"fault=unrecorded", "after-release=blocked",
			`msi=off msi-why="the IVHD names no I/O APIC (QEMU: amd-iommu with intremap=off)"`}},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := boot(t, qemu.Config{Kernel: needImage(t), Append: []string{"iommutest=iommu-assign-edu"},
				Machine: "q35", MemMiB: 256, Icount: c.icount, Extra: []string{"-device", c.device, "-device", "edu,dma_mask=0xffffffff"}, Timeout: 2 * time.Minute})
			if !r.Passed() {
				t.Fatalf("iommutest: %s", r.Describe())
			}
			ck, ok := r.Verdict.Check("iommu-assign-edu")
			if !ok {
				t.Fatal("check iommu-assign-edu not reported")
			}
			for _, want := range append([]string{"device=" + c.edu + " ", "guest-slot=00:01.0", "guest-bar0=0xd0000000", "own-dma=ok", "page=unchanged", `reset="bus master and decoding off`}, c.want...) {
				if !strings.Contains(ck.Detail, want) {
					t.Errorf("detail lacks %q: %s", want, ck.Detail)
				}
			}
			if outside, addr := field(ck.Detail, "outside="), field(ck.Detail, "fault-addr="); c.name == "intel-iommu" && (outside == "" || outside != addr) {
				t.Errorf("fault at %q, DMA target %q", addr, outside)
			}
			t.Logf("%s", ck.Detail)
		})
	}
}

// field is the value after key in a detail line, up to the next space.
func field(detail, key string) string {
	_, v, ok := strings.Cut(detail, key)
	if !ok {
		return ""
	}
	v, _, _ = strings.Cut(v, " ")
	return v
}

// TestPCIReport boots a short word and checks the boot report's PCI lines:
// on q35 through ECAM (MCFG at 0xb0000000, buses 0-255) with QEMU's edu
// device added, and on pc through the legacy ports (no MCFG).
func TestPCIReport(t *testing.T) {
	needImage(t) // skips without -image, before the subtests
	for _, c := range []struct {
		machine string
		extra   []string
		want    []string
	}{
		// QEMU 7.2's q35: the MCH host bridge, the default VGA and e1000e
		// (82574L: registers, flash, I/O, MSI-X table), the edu device
		// issue 16's DMA tests use (class 00.ff: "other"), a PCIe root
		// port (MSI-X table in BAR0) with a second edu behind it on bus 1,
		// and the ICH9 LPC/ISA bridge, AHCI controller (ABAR in BAR5,
		// index/data I/O in BAR4) and SMBus controller.
		{"q35", []string{"-device", "edu", "-device", "pcie-root-port,id=rp,chassis=1", "-device", "edu,bus=rp"}, []string{
			"gohv: pci 9 functions on buses 00-ff through ECAM 0xb0000000",
			"gohv: pci 00:00.0 8086:29c0 class 06.00.00",
			"gohv: pci 00:01.0 1234:1111 class 03.00.00 bars mem32-pf 0xfd000000/16M mem32 0xfeb94000/4K",
			"gohv: pci 00:02.0 8086:10d3 class 02.00.00 bars mem32 0xfeb40000/128K mem32 0xfeb60000/128K io 0xc040/32 mem32 0xfeb90000/16K caps pm msi pcie msix",
			"gohv: pci 00:03.0 1234:11e8 class 00.ff.00 bars mem32 0xfea00000/1M caps msi",
			"gohv: pci 00:04.0 1b36:000c class 06.04.00 bridge buses 01-01 bars mem32 0xfeb95000/4K caps pcie msix ssvid",
			"gohv: pci 00:1f.0 8086:2918 class 06.01.00",
			"gohv: pci 00:1f.2 8086:2922 class 01.06.01 bars io 0xc060/32 mem32 0xfeb96000/4K caps msi sata",
			"gohv: pci 00:1f.3 8086:2930 class 0c.05.00 bars io 0x700/64",
			"gohv: pci 01:00.0 1234:11e8 class 00.ff.00 bars mem32 0xfe800000/1M caps msi",
		}},
		// i440FX: no MCFG, so the legacy ports; the PIIX3 ISA bridge, IDE
		// (bus-master I/O in BAR4) and ACPI/power-management function.
		{"pc", nil, []string{
			"gohv: pci 6 functions on buses 00-ff through legacy ports 0xcf8/0xcfc",
			"gohv: pci 00:00.0 8086:1237 class 06.00.00",
			"gohv: pci 00:01.0 8086:7000 class 06.01.00",
			"gohv: pci 00:01.1 8086:7010 class 01.01.80 bars io 0xc040/16",
			"gohv: pci 00:01.3 8086:7113 class 06.80.00",
			"gohv: pci 00:02.0 1234:1111 class 03.00.00 bars mem32-pf 0xfd000000/16M mem32 0xfebf0000/4K",
			"gohv: pci 00:03.0 8086:100e class 02.00.00 bars mem32 0xfebc0000/128K io 0xc000/64",
		}},
	} {
		t.Run(c.machine, func(t *testing.T) {
			t.Parallel()
			reportLines(t, "PCI", c.machine, c.extra, c.want, func(l string) bool {
				return strings.HasPrefix(l, "gohv: pci ") || strings.HasPrefix(l, "gohv: warning: pci ")
			})
		})
	}
}

// reportLines boots a short selftest on machine with the extra QEMU
// arguments and wants the boot report's lines that keep selects (what
// names them) to be exactly want, in order.
func reportLines(t *testing.T, what, machine string, extra, want []string, keep func(string) bool) {
	t.Helper()
	r := boot(t, qemu.Config{Kernel: needImage(t), Append: []string{"selftest=panic-recover"},
		Machine: machine, MemMiB: 256, Extra: extra, Timeout: 2 * time.Minute})
	if !r.Passed() {
		t.Fatalf("selftest: %s", r.Describe())
	}
	var got []string
	for _, l := range strings.Split(string(r.Log), "\n") {
		if l = strings.TrimRight(l, "\r"); keep(l) {
			got = append(got, l)
		}
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("%s lines:\n%s\nwant\n%s", what, strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
