package x86

// CPUID leaves (SDM Vol. 2A CPUID; APM Vol. 3 Appendix E).
const (
	CPUIDVendor         = 0x0
	CPUIDFeatures       = 0x1
	CPUIDExtFeatures    = 0x7 // structured extended features, subleaf in ECX
	CPUIDHypervisorBase = 0x4000_0000
	CPUIDExtMax         = 0x8000_0000
	CPUIDExtFeaturesAMD = 0x8000_0001
	CPUIDBrand0         = 0x8000_0002 // three leaves of brand string
	CPUIDL1Cache        = 0x8000_0005
	CPUIDL2Cache        = 0x8000_0006
	CPUIDAddrSizes      = 0x8000_0008
	CPUIDSVM            = 0x8000_000a
)

// CPUID.1:ECX feature bits.
const (
	CPUID1ECXSSE3        = 1 << 0
	CPUID1ECXPCLMULQDQ   = 1 << 1
	CPUID1ECXMONITOR     = 1 << 3
	CPUID1ECXVMX         = 1 << 5
	CPUID1ECXSSSE3       = 1 << 9
	CPUID1ECXCX16        = 1 << 13
	CPUID1ECXPCID        = 1 << 17
	CPUID1ECXSSE41       = 1 << 19
	CPUID1ECXSSE42       = 1 << 20
	CPUID1ECXX2APIC      = 1 << 21
	CPUID1ECXMOVBE       = 1 << 22
	CPUID1ECXPOPCNT      = 1 << 23
	CPUID1ECXTSCDeadline = 1 << 24
	CPUID1ECXAES         = 1 << 25
	CPUID1ECXXSAVE       = 1 << 26
	CPUID1ECXOSXSAVE     = 1 << 27
	CPUID1ECXAVX         = 1 << 28
	CPUID1ECXRDRAND      = 1 << 30
	CPUID1ECXHypervisor  = 1 << 31
)

// CPUID.1:EDX feature bits.
const (
	CPUID1EDXFPU   = 1 << 0
	CPUID1EDXVME   = 1 << 1
	CPUID1EDXDE    = 1 << 2
	CPUID1EDXPSE   = 1 << 3
	CPUID1EDXTSC   = 1 << 4
	CPUID1EDXMSR   = 1 << 5
	CPUID1EDXPAE   = 1 << 6
	CPUID1EDXMCE   = 1 << 7
	CPUID1EDXCX8   = 1 << 8
	CPUID1EDXAPIC  = 1 << 9
	CPUID1EDXSEP   = 1 << 11
	CPUID1EDXMTRR  = 1 << 12
	CPUID1EDXPGE   = 1 << 13
	CPUID1EDXMCA   = 1 << 14
	CPUID1EDXCMOV  = 1 << 15
	CPUID1EDXPAT   = 1 << 16
	CPUID1EDXPSE36 = 1 << 17
	CPUID1EDXCLFSH = 1 << 19
	CPUID1EDXMMX   = 1 << 23
	CPUID1EDXFXSR  = 1 << 24
	CPUID1EDXSSE   = 1 << 25
	CPUID1EDXSSE2  = 1 << 26
	CPUID1EDXHTT   = 1 << 28
)

// CPUID.7.0:EBX feature bits.
const (
	CPUID7EBXFSGSBASE   = 1 << 0
	CPUID7EBXBMI1       = 1 << 3
	CPUID7EBXSMEP       = 1 << 7
	CPUID7EBXBMI2       = 1 << 8
	CPUID7EBXERMS       = 1 << 9
	CPUID7EBXINVPCID    = 1 << 10
	CPUID7EBXRDSEED     = 1 << 18
	CPUID7EBXADX        = 1 << 19
	CPUID7EBXSMAP       = 1 << 20
	CPUID7EBXCLFLUSHOPT = 1 << 23
	CPUID7EBXSHA        = 1 << 29
)

// CPUID.8000_0001h:ECX feature bits (AMD APM Vol. 3 E.4.2).
const (
	CPUIDExtECXLAHF          = 1 << 0
	CPUIDExtECXSVM           = 1 << 2
	CPUIDExtECXABM           = 1 << 5
	CPUIDExtECXSSE4A         = 1 << 6
	CPUIDExtECXMisAlignSSE   = 1 << 7
	CPUIDExtECX3DNowPrefetch = 1 << 8
)

// CPUID.8000_0001h:EDX feature bits.
const (
	CPUIDExtEDXSYSCALL = 1 << 11
	CPUIDExtEDXNX      = 1 << 20
	CPUIDExtEDXMMXExt  = 1 << 22
	CPUIDExtEDXFFXSR   = 1 << 25
	CPUIDExtEDXPage1GB = 1 << 26
	CPUIDExtEDXRDTSCP  = 1 << 27
	CPUIDExtEDXLM      = 1 << 29
)

// CPUID.8000_000Ah:EDX SVM feature bits (APM Vol. 3 E.4.9).
const (
	CPUIDSVMNP        = 1 << 0
	CPUIDSVMLBRVirt   = 1 << 1
	CPUIDSVMLock      = 1 << 2
	CPUIDSVMNRIPSave  = 1 << 3
	CPUIDSVMTSCRate   = 1 << 4
	CPUIDSVMVMCBClean = 1 << 5
	CPUIDSVMFlushASID = 1 << 6
	CPUIDSVMDecode    = 1 << 7
)

// VendorString assembles the 12-byte vendor identification from CPUID leaf
// 0's EBX, EDX and ECX.
func VendorString(ebx, ecx, edx uint32) string {
	var b [12]byte
	for i, r := range [3]uint32{ebx, edx, ecx} {
		b[4*i], b[4*i+1], b[4*i+2], b[4*i+3] = byte(r), byte(r>>8), byte(r>>16), byte(r>>24)
	}
	return string(b[:])
}

// CPU vendor strings.
const (
	VendorIntel = "GenuineIntel"
	VendorAMD   = "AuthenticAMD"
	VendorHygon = "HygonGenuine"
)
