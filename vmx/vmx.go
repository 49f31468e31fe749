// Package vmx is gohv's Intel VT-x backend behind the vendor contract of
// package hv/vcpu: detection and VMXON, the VMCS (field encodings as named
// constants from the Intel SDM Vol. 3 Appendix B), controls computed from
// the capability MSRs, the VMLAUNCH/VMRESUME loop, exit decoding, EPT
// pointers and VPIDs, and the SDM's entry checks re-run to name the field
// of a failed entry. It imports only hv/vcpu and x86.
package vmx

import (
	"errors"
	"fmt"
	"sync"

	"gohv/hv/vcpu"
	"gohv/x86"
)

// cpuState is what VMX keeps per host CPU: the VMXON region, the VMCS the
// CPU has current, and the host state the host area of every VMCS bound to
// the CPU holds. Set up, and VMXON executed, by the first VP bound to the
// CPU (enableCPU).
type cpuState struct {
	on      bool
	vmxonPA uint64
	current uint64 // physical address of the current VMCS, 0 for none
	host    hostState
}

// Backend is VMX, checked here and turned on (VMXON) for each host CPU as
// the first VP is bound to it (VCPU.Bind).
type Backend struct {
	mem                  vcpu.HostMemory
	mu                   sync.Mutex
	pages                *vcpu.Pages // the backend's own: VMXON regions and bitmaps; under mu
	cpus                 [vcpu.MaxHostCPUs]cpuState
	ctl                  Controls
	basic                uint64 // IA32_VMX_BASIC
	revision             uint32
	cr0Fixed0, cr0Fixed1 uint64
	cr4Fixed0, cr4Fixed1 uint64
	eptCap               uint64
	preemptTicks         uint64 // VMX-preemption timer value per entry, 0 when not in use
	ioBitmaps            uint64 // A and B, 2 contiguous pages
	msrBitmap            uint64
	vpids                *vcpu.IDPool // nil without VPID
}

// ErrNoVMX is returned on a CPU without VT-x.
var ErrNoVMX = errors.New("vmx: the CPU has no Intel VT-x (CPUID.1:ECX.VMX clear)")

// Enable checks for VT-x on this CPU, sets IA32_FEATURE_CONTROL if the
// firmware left it unlocked, and builds the I/O and MSR bitmaps shared by
// every VP, and the VMXON regions of host CPUs 0 to cpus-1; VMXON waits
// for the first VP bound to each CPU (enableCPU). On failure nothing
// stays allocated.
func Enable(mem vcpu.HostMemory, msr vcpu.MSRPolicy, cpus int) (*Backend, error) {
	if cpus < 1 || cpus > vcpu.MaxHostCPUs {
		return nil, fmt.Errorf("vmx: %d host CPUs; 1 to %d are supported", cpus, vcpu.MaxHostCPUs)
	}
	if _, _, ecx, _ := x86.CPUID(x86.CPUIDFeatures, 0); ecx&x86.CPUID1ECXVMX == 0 {
		return nil, ErrNoVMX
	}
	fc := x86.RDMSR(x86.MsrFeatureControl)
	if fc&x86.FeatureControlLock == 0 {
		x86.WRMSR(x86.MsrFeatureControl, fc|x86.FeatureControlLock|x86.FeatureControlVMXOutsideSMX)
	} else if fc&x86.FeatureControlVMXOutsideSMX == 0 {
		return nil, errors.New("vmx: VT-x is disabled and locked by the firmware (IA32_FEATURE_CONTROL lock set, VMX outside SMX clear); enable Intel Virtualization Technology in the BIOS setup")
	}
	b := &Backend{mem: mem, pages: vcpu.NewPages(mem)}
	b.basic = x86.RDMSR(x86.MsrVMXBasic)
	b.revision = uint32(b.basic) & basicRevisionMask
	if t := b.basic >> basicMemTypeShift & 0xf; t != memTypeWB {
		return nil, fmt.Errorf("vmx: VMCS memory type %d is not write-back", t)
	}
	if err := b.chooseControls(); err != nil {
		return nil, err
	}
	if b.ctl.Proc2&proc2VPID != 0 {
		b.vpids = vcpu.NewIDPool(0xfffe)
	}
	b.cr0Fixed0, b.cr0Fixed1 = x86.RDMSR(x86.MsrVMXCR0Fixed0), x86.RDMSR(x86.MsrVMXCR0Fixed1)
	b.cr4Fixed0, b.cr4Fixed1 = x86.RDMSR(x86.MsrVMXCR4Fixed0), x86.RDMSR(x86.MsrVMXCR4Fixed1)
	if err := b.alloc(msr, cpus); err != nil {
		b.pages.Free()
		return nil, fmt.Errorf("vmx: %w", err)
	}
	return b, nil
}

func (b *Backend) alloc(msr vcpu.MSRPolicy, cpus int) error {
	var page *[4096]byte
	var err error
	for i := range cpus {
		c := &b.cpus[i]
		if c.vmxonPA, page, err = b.pages.Alloc("VMXON region"); err != nil {
			return err
		}
		putRevision(page, b.revision)
	}
	// Every port exits: the core emulates the devices it has and reads all
	// ones from the rest.
	if b.ioBitmaps, err = b.pages.AllocContiguous(2, 0xff, "I/O bitmaps"); err != nil {
		return err
	}
	if b.msrBitmap, page, err = b.pages.Alloc("MSR bitmap"); err != nil {
		return err
	}
	fillMSRBitmap(page, msr)
	return nil
}

// enableCPU enters VMX operation on host CPU i, which runs the caller (a
// thread bound to it): IA32_FEATURE_CONTROL (each CPU has its own), the
// CR0/CR4 fixed bits and CR4.VMXE, VMXON with a region of its own; and
// records the CPU's host state.
func (b *Backend) enableCPU(i int) (*cpuState, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	c := &b.cpus[i]
	if c.on {
		return c, nil
	}
	if c.vmxonPA == 0 {
		return nil, fmt.Errorf("vmx: host CPU %d was not online when VT-x was enabled", i)
	}
	pa := c.vmxonPA
	f := x86.CLI()
	defer x86.RestoreFlags(f)
	fc := x86.RDMSR(x86.MsrFeatureControl)
	if fc&x86.FeatureControlLock == 0 {
		x86.WRMSR(x86.MsrFeatureControl, fc|x86.FeatureControlLock|x86.FeatureControlVMXOutsideSMX)
	} else if fc&x86.FeatureControlVMXOutsideSMX == 0 {
		return nil, fmt.Errorf("vmx: cpu %d: VT-x is disabled and locked by the firmware (IA32_FEATURE_CONTROL)", i)
	}
	x86.WriteCR0(x86.ReadCR0() | b.cr0Fixed0&uint64(uint32(b.cr0Fixed1)))
	x86.WriteCR4(x86.ReadCR4() | x86.CR4VMXE | b.cr4Fixed0)
	if st := vmxon(&pa); st != 0 {
		return nil, fmt.Errorf("vmx: cpu %d: VMXON failed (%s)", i, vmStatusName(st))
	}
	c.host = readHostState()
	c.on = true
	return c, nil
}

func (b *Backend) Name() string                    { return "Intel VT-x" }
func (b *Backend) NestedFormat() vcpu.NestedFormat { return vcpu.FormatEPT }

// HypercallInstruction is VMCALL.
func (b *Backend) HypercallInstruction() [3]byte { return [3]byte{0x0f, 0x01, 0xc1} }

// Report is the startup report: what is in use, then each control word
// asked for and granted.
func (b *Backend) Report() []string {
	lines := []string{fmt.Sprintf("vmx enabled: VMCS revision %#x, EPT (WB=%v), VPID=%v, unrestricted guest, TRUE controls=%v",
		b.revision, b.eptCap&capWB != 0, b.vpids != nil, b.basic&basicTrueControls != 0)}
	if b.ctl.Proc&procUseTPRShadow != 0 {
		lines = append(lines, "vmx interrupt assists: TPR shadow (the guest's CR8 without exits, a TPR-threshold exit when it drops below a held-back interrupt); no virtual-interrupt delivery (the local APIC is gohv's software model)")
	} else {
		lines = append(lines, "vmx interrupt assists: none; CR8 loads and stores exit (the CPU has no TPR shadow)")
	}
	for _, l := range b.ctl.Report {
		lines = append(lines, "vmx controls "+l)
	}
	return lines
}

// vmStatusName names the VMX instruction status vmxon/vmclear/… return
// (SDM Vol. 3C 31.2): 1 VMfailInvalid, 2 VMfailValid.
func vmStatusName(st uint64) string {
	switch st {
	case 1:
		return "VMfailInvalid"
	case 2:
		return "VMfailValid"
	}
	return fmt.Sprintf("status %d", st)
}
