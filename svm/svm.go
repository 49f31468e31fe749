// Package svm is gohv's AMD-V backend: detection and enabling (EFER.SVME,
// the host save area), the VMCB layout, the VMRUN loop and exit decoding,
// behind the vendor contract of package hv/vcpu. Layouts and names follow
// the AMD64 Architecture Programmer's Manual, Volume 2 (APM), chapter 15
// and appendix B. It imports only hv/vcpu and x86.
package svm

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"gohv/hv/vcpu"
	"gohv/x86"
)

// Features are the SVM capabilities of CPUID 8000_000Ah.
type Features struct {
	Revision   uint32
	NASID      uint32 // number of ASIDs
	NestedPage bool   // EDX bit 0
	NRIPSave   bool   // EDX bit 3: the VMCB has the next RIP on intercepts
	VMCBClean  bool   // EDX bit 5
	Decode     bool   // EDX bit 7: decode assists
}

// ErrNoSVM is returned on a CPU without AMD-V.
var ErrNoSVM = errors.New("svm: the CPU has no AMD-V (CPUID 8000_0001h ECX.SVM clear)")

// Detect reports the CPU's SVM features, or why SVM cannot be used.
func Detect() (Features, error) {
	var f Features
	maxExt, _, _, _ := x86.CPUID(x86.CPUIDExtMax, 0)
	if maxExt < x86.CPUIDSVM {
		return f, ErrNoSVM
	}
	if _, _, ecx, _ := x86.CPUID(x86.CPUIDExtFeaturesAMD, 0); ecx&x86.CPUIDExtECXSVM == 0 {
		return f, ErrNoSVM
	}
	if vmcr := x86.RDMSR(x86.MsrAMDVMCR); vmcr&x86.VMCRSVMDis != 0 {
		lock := ""
		if vmcr&x86.VMCRLock != 0 {
			lock = " and locked"
		}
		return f, errors.New("svm: AMD-V is disabled by the firmware (VM_CR.SVMDIS set" +
			lock + "); enable SVM/virtualization in the BIOS setup")
	}
	eax, ebx, _, edx := x86.CPUID(x86.CPUIDSVM, 0)
	f = Features{Revision: eax & 0xff, NASID: ebx, NestedPage: edx&x86.CPUIDSVMNP != 0,
		NRIPSave: edx&x86.CPUIDSVMNRIPSave != 0, VMCBClean: edx&x86.CPUIDSVMVMCBClean != 0,
		Decode: edx&x86.CPUIDSVMDecode != 0}
	if !f.NestedPage {
		return f, errors.New("svm: the CPU has AMD-V without nested paging (CPUID 8000_000Ah EDX.NP clear); gohv needs NPT")
	}
	if f.NASID < 2 {
		return f, fmt.Errorf("svm: CPUID reports %d ASIDs; need at least 2", f.NASID)
	}
	return f, nil
}

// cpuState is what SVM keeps per host CPU: the host save area VMRUN uses
// and the area VMSAVE/VMLOAD keep the host's FS/GS/TR/syscall MSRs in.
// Set up, and EFER.SVME turned on, by the first VP bound to the CPU.
type cpuState struct {
	on         bool
	hsavePA    uint64 // VM_HSAVE_PA
	hostSavePA uint64 // VMSAVE/VMLOAD area for the host
}

// Backend is SVM, detected here and turned on for each host CPU as the
// first VP is bound to it (VCPU.Bind).
type Backend struct {
	mem   vcpu.HostMemory
	feat  Features
	iopm  uint64 // 3 pages, every port intercepted
	msrpm uint64 // 2 pages
	asids *vcpu.IDPool

	mu    sync.Mutex
	pages *vcpu.Pages // the backend's own: save areas and permission maps; under mu
	cpus  [vcpu.MaxHostCPUs]cpuState

	// vintrInclusive: the CPU takes a virtual interrupt when V_INTR_PRIO
	// >= V_TPR (QEMU's TCG) rather than > (APM Vol. 2 15.21.4). Learned
	// from the first VINTR exit that came with V_TPR equal to the
	// priority, on any VP thread.
	vintrInclusive atomic.Bool
}

// vintrPrio is the V_INTR_PRIO that makes the virtual interrupt taken once
// the guest's CR8 drops below class.
func (b *Backend) vintrPrio(class uint8) uint8 {
	if b.vintrInclusive.Load() {
		return class - 1
	}
	return class
}

// learnVINTR notes a VINTR exit that came for the TPR threshold with V_TPR
// at cr8: one at cr8 == class means the CPU compares inclusively.
func (b *Backend) learnVINTR(class, cr8 uint8) {
	if cr8 >= class && !b.vintrInclusive.Load() {
		b.vintrInclusive.Store(true)
	}
}

// Enable detects SVM and sets up the permission maps shared by every VP
// and the save areas of host CPUs 0 to cpus-1; EFER.SVME waits for the
// first VP bound to each CPU (enableCPU). On failure nothing stays
// allocated.
func Enable(mem vcpu.HostMemory, msr vcpu.MSRPolicy, cpus int) (*Backend, error) {
	f, err := Detect()
	if err != nil {
		return nil, err
	}
	if cpus < 1 || cpus > vcpu.MaxHostCPUs {
		return nil, fmt.Errorf("svm: %d host CPUs; 1 to %d are supported", cpus, vcpu.MaxHostCPUs)
	}
	b := &Backend{mem: mem, feat: f, pages: vcpu.NewPages(mem), asids: vcpu.NewIDPool(f.NASID - 1)}
	if err := b.alloc(msr, cpus); err != nil {
		b.pages.Free()
		return nil, fmt.Errorf("svm: %w", err)
	}
	return b, nil
}

// enableCPU turns SVM on for host CPU i, which runs the caller (a thread
// bound to it): EFER.SVME and VM_HSAVE_PA (APM Vol. 2 15.4, 15.30.4).
func (b *Backend) enableCPU(i int) (*cpuState, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	c := &b.cpus[i]
	if c.on {
		return c, nil
	}
	if c.hsavePA == 0 {
		return nil, fmt.Errorf("svm: host CPU %d was not online when SVM was enabled", i)
	}
	f := x86.CLI()
	x86.WRMSR(x86.MsrEFER, x86.RDMSR(x86.MsrEFER)|x86.EFERSVME)
	x86.WRMSR(x86.MsrAMDVMHsavePA, c.hsavePA)
	x86.RestoreFlags(f)
	c.on = true
	return c, nil
}

func (b *Backend) alloc(msr vcpu.MSRPolicy, cpus int) error {
	var err error
	for i := range cpus {
		c := &b.cpus[i]
		if c.hsavePA, _, err = b.pages.Alloc("host save area"); err != nil {
			return err
		}
		if c.hostSavePA, _, err = b.pages.Alloc("host VMSAVE area"); err != nil {
			return err
		}
	}
	// Every port exits: the core emulates the devices it has and reads all
	// ones from the rest.
	if b.iopm, err = b.pages.AllocContiguous(3, 0xff, "I/O permission map"); err != nil {
		return err
	}
	if b.msrpm, err = b.pages.AllocContiguous(2, 0, "MSR permission map"); err != nil {
		return err
	}
	fillMSRPM(func(off int) *byte {
		return &b.mem.Page(b.msrpm + uint64(off/x86.PageSize)*x86.PageSize)[off%x86.PageSize]
	}, msr)
	return nil
}

func (b *Backend) Name() string                    { return "AMD-V" }
func (b *Backend) NestedFormat() vcpu.NestedFormat { return vcpu.FormatNPT }
func (b *Backend) Features() Features              { return b.feat }

// HypercallInstruction is VMMCALL.
func (b *Backend) HypercallInstruction() [3]byte { return [3]byte{0x0f, 0x01, 0xd9} }

// Report is the startup report's line.
func (b *Backend) Report() []string {
	f := b.feat
	return []string{fmt.Sprintf("svm enabled: revision %d, %d ASIDs, nested paging, nrip-save=%v, decode-assists=%v",
		f.Revision, f.NASID, f.NRIPSave, f.Decode),
		"svm interrupt assists: V_TPR (the guest's CR8 without exits), V_IRQ for the interrupt window and the TPR threshold; no AVIC (the local APIC is gohv's software model)"}
}
