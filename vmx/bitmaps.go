package vmx

import "gohv/hv/vcpu"

// fillMSRBitmap sets the exit bit of every MSR but the policy's
// pass-through ones (SDM Vol. 3C 25.6.9: read-low, read-high, write-low,
// write-high quarters of one page, for MSRs 0-1FFFh and C0000000h-C0001FFFh).
func fillMSRBitmap(p *[4096]byte, msr vcpu.MSRPolicy) {
	for i := range p {
		p[i] = 0xff
	}
	if msr == nil {
		return
	}
	for _, base := range []uint32{0, 0xc000_0000} {
		for n := uint32(0); n < 0x2000; n++ {
			off := n / 8
			if base != 0 {
				off += 0x400
			}
			if msr.PassThroughMSR(base+n, false) {
				p[off] &^= 1 << (n % 8)
			}
			if msr.PassThroughMSR(base+n, true) {
				p[off+0x800] &^= 1 << (n % 8)
			}
		}
	}
}
