package svm

import "gohv/hv/vcpu"

// MSR permission map ranges (APM Vol. 2 15.11): two bits per MSR, read
// intercept then write intercept.
var msrpmRanges = [...]struct{ base, off uint32 }{
	{0x0000_0000, 0x0000},
	{0xc000_0000, 0x0800},
	{0xc001_0000, 0x1000},
}

// msrpmBit returns the byte offset and bit of msr's read intercept in the
// MSR permission map, or ok=false for an MSR outside the three ranges
// (always intercepted).
func msrpmBit(msr uint32) (off int, bit uint, ok bool) {
	for _, r := range msrpmRanges {
		if msr >= r.base && msr < r.base+0x2000 {
			n := msr - r.base
			return int(r.off + n/4), uint(n%4) * 2, true
		}
	}
	return 0, 0, false
}

// fillMSRPM intercepts every MSR but those the policy passes through.
func fillMSRPM(at func(off int) *byte, msr vcpu.MSRPolicy) {
	for off := 0; off < 0x2000; off++ {
		*at(off) = 0xff
	}
	if msr == nil {
		return
	}
	for _, r := range msrpmRanges {
		for n := uint32(0); n < 0x2000; n++ {
			m := r.base + n
			off, bit, _ := msrpmBit(m)
			if msr.PassThroughMSR(m, false) {
				*at(off) &^= 1 << bit
			}
			if msr.PassThroughMSR(m, true) {
				*at(off) &^= 1 << (bit + 1)
			}
		}
	}
}
