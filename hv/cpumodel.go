package hv

import (
	"errors"

	"gohv/hv/vcpu"
	"gohv/x86"
)

// hostCPUID is the CPU the hypervisor runs on.
var hostCPUID = x86.CPUID

// CPUModel is the virtual CPU a child partition sees: the host's CPUID
// filtered to what gohv virtualizes, the MSRs it handles, and the
// architectural rules for control-register writes the hardware leaves to
// the hypervisor.
//
// Shown: the local APIC (package apic: xAPIC, x2APIC and the TSC-deadline
// timer; the VP clears CPUID.1:EDX.APIC while its APIC is disabled and puts
// its APIC ID in EBX[31:24]). Hidden: SVM and VMX (no nested
// virtualization), XSAVE and the features that need it (the VP's FPU state
// is switched with FXSAVE only), MONITOR/MWAIT, RDTSCP, PCID, MTRRs,
// machine check, performance counters, topology extensions. Set: the
// hypervisor-present bit, and the Hyper-V leaves 4000_0000h-4000_0006h
// (hyperv.go), which advertise exactly what gohv implements of the TLFS.
type CPUModel struct {
	leaves   [40]cpuidLeaf
	n        int
	physBits uint   // MAXPHYADDR the model reports
	cr4      uint64 // CR4 bits a guest may set
}

type cpuidLeaf struct {
	leaf, sub          uint32
	eax, ebx, ecx, edx uint32
}

// Feature masks: what the model passes through of the host's CPUID.
const (
	leaf1EDX = x86.CPUID1EDXFPU | x86.CPUID1EDXVME | x86.CPUID1EDXDE | x86.CPUID1EDXPSE |
		x86.CPUID1EDXTSC | x86.CPUID1EDXMSR | x86.CPUID1EDXPAE | x86.CPUID1EDXCX8 |
		x86.CPUID1EDXAPIC | x86.CPUID1EDXSEP | x86.CPUID1EDXPGE | x86.CPUID1EDXCMOV | x86.CPUID1EDXPAT |
		x86.CPUID1EDXPSE36 | x86.CPUID1EDXCLFSH | x86.CPUID1EDXMMX | x86.CPUID1EDXFXSR |
		x86.CPUID1EDXSSE | x86.CPUID1EDXSSE2
	leaf1ECX = x86.CPUID1ECXSSE3 | x86.CPUID1ECXPCLMULQDQ | x86.CPUID1ECXSSSE3 | x86.CPUID1ECXCX16 |
		x86.CPUID1ECXSSE41 | x86.CPUID1ECXSSE42 | x86.CPUID1ECXMOVBE | x86.CPUID1ECXPOPCNT |
		x86.CPUID1ECXAES | x86.CPUID1ECXRDRAND
	leaf7EBX = x86.CPUID7EBXFSGSBASE | x86.CPUID7EBXBMI1 | x86.CPUID7EBXSMEP | x86.CPUID7EBXBMI2 |
		x86.CPUID7EBXERMS | x86.CPUID7EBXRDSEED | x86.CPUID7EBXADX | x86.CPUID7EBXSMAP |
		x86.CPUID7EBXCLFLUSHOPT | x86.CPUID7EBXSHA
	ext1ECX = x86.CPUIDExtECXLAHF | x86.CPUIDExtECXABM | x86.CPUIDExtECXSSE4A |
		x86.CPUIDExtECXMisAlignSSE | x86.CPUIDExtECX3DNowPrefetch
	// 8000_0001h EDX: the AMD-only bits and the copies of leaf 1's.
	ext1EDX = x86.CPUIDExtEDXSYSCALL | x86.CPUIDExtEDXNX | x86.CPUIDExtEDXMMXExt |
		x86.CPUIDExtEDXFFXSR | x86.CPUIDExtEDXPage1GB | x86.CPUIDExtEDXLM |
		leaf1EDX&^(x86.CPUID1EDXSEP|x86.CPUID1EDXCLFSH|x86.CPUID1EDXSSE|x86.CPUID1EDXSSE2)

	maxBasic = x86.CPUIDExtFeatures
	maxExt   = x86.CPUIDAddrSizes

	// cr4Base are the CR4 bits every model allows; FSGSBASE, SMEP and SMAP
	// follow the model's CPUID.
	cr4Base = x86.CR4VME | x86.CR4PVI | x86.CR4TSD | x86.CR4DE | x86.CR4PSE | x86.CR4PAE |
		x86.CR4MCE | x86.CR4PGE | x86.CR4PCE | x86.CR4OSFXSR | x86.CR4OSXMMEXCPT
)

// NewCPUModel reads the host CPU and builds the filtered leaves.
func NewCPUModel() *CPUModel {
	m := &CPUModel{}
	a, b, c, d := hostCPUID(x86.CPUIDVendor, 0)
	m.add(x86.CPUIDVendor, 0, min(a, maxBasic), b, c, d)
	a, b, c, d = hostCPUID(x86.CPUIDFeatures, 0)
	// EBX: brand index and CLFLUSH size kept; one logical processor; the
	// VP adds its APIC ID. x2APIC and the TSC-deadline timer are the
	// virtual LAPIC's, whatever the host has.
	m.add(x86.CPUIDFeatures, 0, a, b&0xffff, c&leaf1ECX|x86.CPUID1ECXHypervisor|x86.CPUID1ECXX2APIC|x86.CPUID1ECXTSCDeadline,
		d&leaf1EDX|x86.CPUID1EDXAPIC)
	if mb, _, _, _ := hostCPUID(x86.CPUIDVendor, 0); mb >= x86.CPUIDExtFeatures {
		_, b, _, _ = hostCPUID(x86.CPUIDExtFeatures, 0)
		m.add(x86.CPUIDExtFeatures, 0, 0, b&leaf7EBX, 0, 0)
	}
	m.hypervLeaves()
	a, _, _, _ = hostCPUID(x86.CPUIDExtMax, 0)
	top := min(a, maxExt)
	m.add(x86.CPUIDExtMax, 0, top, 0, 0, 0)
	if top >= x86.CPUIDExtFeaturesAMD {
		a, b, c, d = hostCPUID(x86.CPUIDExtFeaturesAMD, 0)
		m.add(x86.CPUIDExtFeaturesAMD, 0, a, b, c&ext1ECX, d&ext1EDX)
	}
	for l := uint32(x86.CPUIDBrand0); l <= min(top, x86.CPUIDL2Cache); l++ {
		a, b, c, d = hostCPUID(l, 0)
		m.add(l, 0, a, b, c, d)
	}
	if top >= x86.CPUIDAddrSizes {
		a, _, _, _ = hostCPUID(x86.CPUIDAddrSizes, 0)
		m.add(x86.CPUIDAddrSizes, 0, a&0xffff, 0, 0, 0) // physical and linear address sizes only
	}
	m.physBits = 36
	if a, _, _, _ := m.CPUID(x86.CPUIDAddrSizes, 0); a&0xff != 0 {
		m.physBits = uint(a & 0xff)
	}
	m.cr4 = cr4Base
	_, b7, _, _ := m.CPUID(x86.CPUIDExtFeatures, 0)
	for _, f := range []struct{ cpuid, cr4 uint64 }{
		{x86.CPUID7EBXFSGSBASE, x86.CR4FSGSBASE}, {x86.CPUID7EBXSMEP, x86.CR4SMEP}, {x86.CPUID7EBXSMAP, x86.CR4SMAP},
	} {
		if uint64(b7)&f.cpuid != 0 {
			m.cr4 |= f.cr4
		}
	}
	return m
}

func (m *CPUModel) add(leaf, sub, a, b, c, d uint32) {
	m.leaves[m.n] = cpuidLeaf{leaf, sub, a, b, c, d}
	m.n++
}

// PhysAddrBits is MAXPHYADDR as the model reports it (CPUID 8000_0008h
// EAX 7:0), 36 when the leaf is absent.
func (m *CPUModel) PhysAddrBits() uint { return m.physBits }

// CPUID answers a guest CPUID. Leaves the model does not list read as zero,
// as on a CPU whose maximum leaf is below them. Must not allocate.
func (m *CPUModel) CPUID(leaf, sub uint32) (eax, ebx, ecx, edx uint32) {
	for i := 0; i < m.n; i++ {
		l := &m.leaves[i]
		if l.leaf == leaf && (l.sub == sub || leaf != x86.CPUIDExtFeatures) {
			return l.eax, l.ebx, l.ecx, l.edx
		}
	}
	return 0, 0, 0, 0
}

// PassThroughMSR is the allow-list of MSRs the guest reaches without an
// exit: those the hardware switches with the guest's state (VMCB/VMCS
// fields, VMLOAD/VMSAVE), and reading the TSC.
func (m *CPUModel) PassThroughMSR(msr uint32, write bool) bool {
	switch msr {
	case x86.MsrSysenterCS, x86.MsrSysenterESP, x86.MsrSysenterEIP, x86.MsrSTAR, x86.MsrLSTAR, x86.MsrCSTAR,
		x86.MsrFMASK, x86.MsrFSBase, x86.MsrGSBase, x86.MsrKernelGSBase:
		return true
	case x86.MsrTSC:
		return !write
	}
	return false
}

// errGP says the access raises #GP(0) in the guest.
var errGP = errors.New("#GP")

// ReadMSR handles an intercepted RDMSR; errGP means inject #GP(0).
func (m *CPUModel) ReadMSR(r *vcpu.Regs, msr uint32) (uint64, error) {
	switch msr {
	case x86.MsrEFER:
		return r.EFER, nil
	case x86.MsrPAT:
		return r.PAT, nil
	case x86.MsrMiscEnable:
		// Linux's verify_cpu reads it on Intel CPUs before it has an
		// IDT: a #GP there is a triple fault. Fast strings on, no branch
		// trace or PEBS, XD not disabled.
		return miscEnable, nil
	case x86.MsrAMDNBCfg:
		return 0, nil
	case x86.MsrBIOSSignID:
		// No microcode update is loaded in the partition (bits 63:32,
		// the revision, read 0). Linux's early_init_intel reads it
		// after writing 0 and running CPUID (SDM Vol. 3A 10.11.7.1).
		return 0, nil
	}
	return 0, errGP
}

// miscEnable is what IA32_MISC_ENABLE reads.
const miscEnable = x86.MiscEnableFastStrings | x86.MiscEnableBTSUnavailable | x86.MiscEnablePEBSUnavailable

// eferWritable are the EFER bits a guest may set; LMA is read-only.
const eferWritable = x86.EFERSCE | x86.EFERLME | x86.EFERNXE | x86.EFERFFXSR

// WriteMSR handles an intercepted WRMSR; errGP means inject #GP(0). A
// write that changes state the backend loads only on request returns
// dirty=true.
func (m *CPUModel) WriteMSR(r *vcpu.Regs, msr uint32, v uint64) (dirty bool, err error) {
	switch msr {
	case x86.MsrEFER:
		if v&^(eferWritable|x86.EFERLMA) != 0 {
			return false, errGP // reserved bits, or SVME which the model hides
		}
		if r.CR0&x86.CR0PG != 0 && (v^r.EFER)&x86.EFERLME != 0 {
			return false, errGP // LME may not change while paging is on
		}
		r.EFER = v&eferWritable | r.EFER&x86.EFERLMA
		return true, nil
	case x86.MsrMiscEnable:
		// The model has nothing to switch: a write that keeps the value
		// is accepted (verify_cpu clears XD_DISABLE, already clear), any
		// other raises #GP.
		if v != miscEnable {
			return false, errGP
		}
		return false, nil
	case x86.MsrAMDNBCfg:
		// AMD's northbridge configuration. Linux's amd_bus_cpu_online
		// sets EnableCf8ExtCfg (bit 46) on AMD CPUs to reach extended
		// PCI configuration space through port 0xcf8; a partition has no
		// northbridge and no such space, so the MSR reads 0 and writes
		// change nothing, rather than #GP and a warning at every boot.
		return false, nil
	case x86.MsrBIOSSignID:
		// Writing 0 before a CPUID is how software asks for the
		// microcode revision; there is none to report, and nothing to
		// store: the MSR reads 0 whatever is written.
		return false, nil
	case x86.MsrPAT:
		if !x86.PATValid(v) {
			return false, errGP
		}
		r.PAT = v
		return true, nil
	}
	return false, errGP
}

// WriteCR applies a guest's write of v to control register cr (0, 3, 4 or 8)
// under the architecture's rules (SDM Vol. 3A 2.5, Vol. 2B MOV—Move
// to/from Control Registers): reserved bits, PG without PE, NW without CD,
// entering long mode (EFER.LMA follows CR0.PG when EFER.LME is set) only
// with CR4.PAE, CR4.PAE not cleared in long mode, CR4 bits the model does
// not offer. errGP means inject #GP(0) and leave the registers as they
// were. Guest-controlled: v is anything.
func (m *CPUModel) WriteCR(r *vcpu.Regs, cr uint8, v uint64) error {
	switch cr {
	case 0:
		if v>>32 != 0 || v&x86.CR0PG != 0 && v&x86.CR0PE == 0 || v&x86.CR0NW != 0 && v&x86.CR0CD == 0 {
			return errGP
		}
		efer := r.EFER
		if v&x86.CR0PG != 0 && r.CR0&x86.CR0PG == 0 && efer&x86.EFERLME != 0 {
			if r.CR4&x86.CR4PAE == 0 {
				return errGP
			}
			efer |= x86.EFERLMA
		}
		if v&x86.CR0PG == 0 {
			efer &^= x86.EFERLMA
		}
		r.CR0, r.EFER = v, efer
	case 3:
		if r.LongMode() && v>>m.physBits != 0 {
			return errGP // reserved physical-address bits
		}
		r.CR3 = v
	case 4:
		if v&^m.cr4 != 0 || r.LongMode() && v&x86.CR4PAE == 0 {
			return errGP
		}
		r.CR4 = v
	case 8:
		if v&^0xf != 0 {
			return errGP // bits 63:4 are reserved
		}
		r.CR8 = v
	default:
		return errGP
	}
	return nil
}
