package metal

import "gohv/x86"

// CPU feature detection (CPUID) for the features that change how the
// kernel sets itself up. Runs once at boot; the results are fixed after.

// CPU features that change how the kernel sets itself up.
var (
	hasNX, has1GPages, hasRDRAND, hasX2APIC bool
	hasTSCDeadline                          bool // the LAPIC timer's TSC-deadline mode
	cpuVendor                               [12]byte
	cpuBrand                                [48]byte
	maxExtLeaf                              uint32
)

func detectCPU() {
	_, b, c, d := x86.CPUID(x86.CPUIDVendor, 0)
	for i := 0; i < 4; i++ {
		cpuVendor[i] = byte(b >> (8 * i))
		cpuVendor[4+i] = byte(d >> (8 * i))
		cpuVendor[8+i] = byte(c >> (8 * i))
	}
	_, _, c1, _ := x86.CPUID(x86.CPUIDFeatures, 0)
	hasRDRAND = c1&x86.CPUID1ECXRDRAND != 0
	hasX2APIC = c1&x86.CPUID1ECXX2APIC != 0
	hasTSCDeadline = c1&x86.CPUID1ECXTSCDeadline != 0
	maxExtLeaf, _, _, _ = x86.CPUID(x86.CPUIDExtMax, 0)
	if maxExtLeaf >= x86.CPUIDExtFeaturesAMD {
		_, _, _, d := x86.CPUID(x86.CPUIDExtFeaturesAMD, 0)
		hasNX = d&x86.CPUIDExtEDXNX != 0
		has1GPages = d&x86.CPUIDExtEDXPage1GB != 0
	}
	// The brand string is three leaves of 16 bytes from CPUIDBrand0.
	if maxExtLeaf >= x86.CPUIDBrand0+2 {
		for l := uint32(0); l < 3; l++ {
			a, b, c, d := x86.CPUID(x86.CPUIDBrand0+l, 0)
			for i, r := range [4]uint32{a, b, c, d} {
				for k := 0; k < 4; k++ {
					cpuBrand[l*16+uint32(i)*4+uint32(k)] = byte(r >> (8 * k))
				}
			}
		}
	}
}
