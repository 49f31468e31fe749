package hv

import (
	"fmt"

	"gohv/x86"
)

// hostCPUID is the CPU the hypervisor runs on.
var hostCPUID = x86.CPUID

// CPUModel is the virtual CPU a child partition sees: the host's CPUID
// filtered to what gohv virtualizes, and the MSRs it handles.
//
// Hidden: SVM and VMX (no nested virtualization), the local APIC, x2APIC and
// the TSC deadline timer (no interrupt controller yet), XSAVE and the
// features that need it (the VP's FPU state is switched with FXSAVE only),
// MONITOR/MWAIT, RDTSCP, PCID, MTRRs, machine check, performance counters,
// topology extensions. Set: the hypervisor-present bit, and leaves
// 4000_0000h/4000_0001h naming gohv.
type CPUModel struct {
	leaves   [32]cpuidLeaf
	n        int
	physBits uint // MAXPHYADDR the model reports
}

type cpuidLeaf struct {
	leaf, sub          uint32
	eax, ebx, ecx, edx uint32
}

// Feature masks (Intel SDM Vol. 2A CPUID; AMD APM Vol. 3 Appendix E).
const (
	// Leaf 1 EDX: FPU VME DE PSE TSC MSR PAE MCE? CX8 ... kept bits.
	leaf1EDX = 1<<0 | 1<<1 | 1<<2 | 1<<3 | 1<<4 | 1<<5 | 1<<6 | 1<<8 | 1<<11 |
		1<<13 | 1<<15 | 1<<16 | 1<<17 | 1<<19 | 1<<23 | 1<<24 | 1<<25 | 1<<26
	// Leaf 1 ECX: SSE3 PCLMUL SSSE3 CX16 SSE4.1 SSE4.2 MOVBE POPCNT AES RDRAND.
	leaf1ECX          = 1<<0 | 1<<1 | 1<<9 | 1<<13 | 1<<19 | 1<<20 | 1<<22 | 1<<23 | 1<<25 | 1<<30
	hypervisorPresent = 1 << 31
	// Leaf 7.0 EBX: FSGSBASE BMI1 SMEP BMI2 ERMS RDSEED ADX SMAP CLFLUSHOPT SHA.
	leaf7EBX = 1<<0 | 1<<3 | 1<<7 | 1<<8 | 1<<9 | 1<<18 | 1<<19 | 1<<20 | 1<<23 | 1<<29
	// 8000_0001h ECX: LAHF ABM SSE4A MisAlignSSE 3DNowPrefetch.
	ext1ECX = 1<<0 | 1<<5 | 1<<6 | 1<<7 | 1<<8
	// 8000_0001h EDX: SYSCALL NX MMXExt FFXSR Page1GB LM and the leaf-1 copies.
	ext1EDX = 1<<11 | 1<<20 | 1<<22 | 1<<25 | 1<<26 | 1<<29 |
		(leaf1EDX & (1<<0 | 1<<1 | 1<<2 | 1<<3 | 1<<4 | 1<<5 | 1<<6 | 1<<8 | 1<<13 | 1<<15 | 1<<16 | 1<<17 | 1<<23 | 1<<24))

	maxBasic = 0x7
	maxExt   = 0x8000_0008
	// HypervisorLeaf is where a guest looks for the hypervisor's name.
	HypervisorLeaf = 0x4000_0000
)

// NewCPUModel reads the host CPU and builds the filtered leaves.
func NewCPUModel() *CPUModel {
	m := &CPUModel{}
	a, b, c, d := hostCPUID(0, 0)
	m.add(0, 0, min(a, maxBasic), b, c, d)
	a, b, c, d = hostCPUID(1, 0)
	// EBX: brand index and CLFLUSH size kept; one logical processor, APIC ID 0.
	m.add(1, 0, a, b&0xffff, c&leaf1ECX|hypervisorPresent, d&leaf1EDX)
	if mb, _, _, _ := hostCPUID(0, 0); mb >= 7 {
		_, b, _, _ = hostCPUID(7, 0)
		m.add(7, 0, 0, b&leaf7EBX, 0, 0)
	}
	// "gohv gohv go", little-endian in EBX, ECX, EDX.
	m.add(HypervisorLeaf, 0, HypervisorLeaf+1, 0x76686f67, 0x686f6720, 0x6f672076)
	m.add(HypervisorLeaf+1, 0, 0, 0, 0, 0)
	a, _, _, _ = hostCPUID(0x8000_0000, 0)
	top := min(a, maxExt)
	m.add(0x8000_0000, 0, top, 0, 0, 0)
	if top >= 0x8000_0001 {
		a, b, c, d = hostCPUID(0x8000_0001, 0)
		m.add(0x8000_0001, 0, a, b, c&ext1ECX, d&ext1EDX)
	}
	for l := uint32(0x8000_0002); l <= min(top, 0x8000_0006); l++ {
		a, b, c, d = hostCPUID(l, 0)
		m.add(l, 0, a, b, c, d)
	}
	if top >= 0x8000_0008 {
		a, _, _, _ = hostCPUID(0x8000_0008, 0)
		m.add(0x8000_0008, 0, a&0xffff, 0, 0, 0) // physical and linear address sizes only
	}
	m.physBits = 36
	if a, _, _, _ := m.CPUID(0x8000_0008, 0); a&0xff != 0 {
		m.physBits = uint(a & 0xff)
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
		if l.leaf == leaf && (l.sub == sub || leaf != 7) {
			return l.eax, l.ebx, l.ecx, l.edx
		}
	}
	return 0, 0, 0, 0
}

// MSRs the model knows (Intel SDM Vol. 4, AMD APM Vol. 2 Appendix A).
const (
	MSRTSC          = 0x10
	MSRSysenterCS   = 0x174
	MSRSysenterESP  = 0x175
	MSRSysenterEIP  = 0x176
	MSRPAT          = 0x277
	MSREFER         = 0xc000_0080
	MSRSTAR         = 0xc000_0081
	MSRLSTAR        = 0xc000_0082
	MSRCSTAR        = 0xc000_0083
	MSRSFMASK       = 0xc000_0084
	MSRFSBase       = 0xc000_0100
	MSRGSBase       = 0xc000_0101
	MSRKernelGSBase = 0xc000_0102
)

// PassThroughMSR is the allow-list of MSRs the guest reaches without an
// exit: those the hardware switches with the guest's state (VMCB/VMCS
// fields, VMLOAD/VMSAVE), and reading the TSC.
func (m *CPUModel) PassThroughMSR(msr uint32, write bool) bool {
	switch msr {
	case MSRSysenterCS, MSRSysenterESP, MSRSysenterEIP, MSRSTAR, MSRLSTAR, MSRCSTAR,
		MSRSFMASK, MSRFSBase, MSRGSBase, MSRKernelGSBase:
		return true
	case MSRTSC:
		return !write
	}
	return false
}

// errGP says the access raises #GP(0) in the guest.
var errGP = fmt.Errorf("#GP")

// ReadMSR handles an intercepted RDMSR; errGP means inject #GP(0).
func (m *CPUModel) ReadMSR(r *Regs, msr uint32) (uint64, error) {
	switch msr {
	case MSREFER:
		return r.EFER, nil
	case MSRPAT:
		if r.PAT == 0 {
			return 0x0007_0406_0007_0406, nil
		}
		return r.PAT, nil
	}
	return 0, errGP
}

// eferWritable are the EFER bits a guest may set; LMA is read-only.
const eferWritable = EFERSCE | EFERLME | EFERNXE | EFERFFXSR

// WriteMSR handles an intercepted WRMSR; errGP means inject #GP(0). A
// write that changes state the backend loads only on request returns
// dirty=true.
func (m *CPUModel) WriteMSR(r *Regs, msr uint32, v uint64) (dirty bool, err error) {
	switch msr {
	case MSREFER:
		if v&^(eferWritable|EFERLMA) != 0 {
			return false, errGP // reserved bits, or SVME which the model hides
		}
		if r.CR0&CR0PG != 0 && (v^r.EFER)&EFERLME != 0 {
			return false, errGP // LME may not change while paging is on
		}
		r.EFER = v&eferWritable | r.EFER&EFERLMA
		return true, nil
	case MSRPAT:
		for i := 0; i < 8; i++ {
			switch (v >> (8 * i)) & 0xff {
			case 0, 1, 4, 5, 6, 7:
			default:
				return false, errGP
			}
		}
		r.PAT = v
		return true, nil
	}
	return false, errGP
}
