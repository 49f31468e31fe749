package hv

import (
	"gohv/hv/hypercall"
	"gohv/hv/tlfs"
	"gohv/hv/vcpu"
	"gohv/x86"
)

// hypercall serves VMCALL/VMMCALL in the TLFS calling convention (TLFS 3):
// package hypercall owns the ABI (control word, input pages, rep resume,
// statuses); the calls themselves are the partition's (partitionCalls).
// CPL > 0, real mode, or a guest that has not set HV_X64_MSR_GUEST_OS_ID
// gets #UD, as on Hyper-V (TLFS 3.13). A 32-bit caller passes the input
// value in EDX:EAX, the input GPA in EBX:ECX, the output GPA in EDI:ESI
// and gets the result in EDX:EAX. Must not allocate.
func (vp *VP) hypercall(e *vcpu.Exit) {
	r := vp.regs
	if r.CPL() != 0 || r.CR0&x86.CR0PE == 0 || vp.p.hyperv.guestOSID.Load() == 0 {
		vp.cpu.Inject(vcpu.Exception(x86.VectorUD, 0))
		return
	}
	long := vp.in64BitMode()
	g := &r.GPR
	var rcx, rdx, r8 uint64
	if long {
		rcx, rdx, r8 = g[x86.RCX], g[x86.RDX], g[x86.R8]
	} else {
		rcx = join32(g[x86.RDX], g[x86.RAX])
		rdx = join32(g[x86.RBX], g[x86.RCX])
		r8 = join32(g[x86.RDI], g[x86.RSI])
	}
	// A code no call has is answered here, as Dispatch would, without
	// the call.
	rax, newRCX, done := tlfs.Result(tlfs.StatusInvalidHypercallCode, 0), rcx, true
	if hypercall.Served(uint16(rcx & tlfs.ControlCallCodeMask)) {
		rax, newRCX, done = vp.calls.Dispatch(&vp.p.calls, vp.p.Mem, rcx, rdx, r8)
	}
	if !done {
		// A rep call yielded: re-enter at the same instruction with the
		// rep start index advanced.
		if long {
			g[x86.RCX] = newRCX
		} else {
			g[x86.RDX], g[x86.RAX] = newRCX>>32, newRCX&0xffff_ffff
		}
		return
	}
	if long {
		g[x86.RAX] = rax
	} else {
		g[x86.RDX], g[x86.RAX] = rax>>32, rax&0xffff_ffff
	}
	vp.skip(e, opVMMCALL)
}

func join32(hi, lo uint64) uint64 { return hi<<32 | lo&0xffff_ffff }

// hypercallServed reports whether the call code in the guest's input
// value (RCX, or EAX for a 32-bit caller) is one package hypercall may
// run. Any other is refused without a handler (hypercall.Served), so
// hypercall handles it in bounded time. Must not allocate.
func (vp *VP) hypercallServed() bool {
	code := vp.regs.GPR[x86.RAX]
	if vp.in64BitMode() {
		code = vp.regs.GPR[x86.RCX]
	}
	return hypercall.Served(uint16(code & tlfs.ControlCallCodeMask))
}

// partitionCalls are the hypercalls a partition may make: the methods
// package hypercall looks for on its handler. Calls it does not implement
// answer HV_STATUS_INVALID_HYPERCALL_CODE, and CPUID advertises none of
// them.
type partitionCalls struct{ p *Partition }

// NotifyLongSpinWait: the guest spun a long time on a lock (TLFS 3.14).
// With one VP per host CPU there is nobody to run instead; the hint is
// taken and nothing more.
func (c *partitionCalls) NotifyLongSpinWait(vp uint32, count uint32) tlfs.Status {
	return tlfs.StatusSuccess
}

// FlushVirtualAddressSpace flushes the guest-linear translations of every
// VP the input names (TLFS "HvCallFlushVirtualAddressSpace"): each
// targeted VP's VPID or ASID is flushed before its next entry, the
// caller's included. The TLFS wants the flush visible on every target when
// the call returns: a target in guest mode on another host CPU is made to
// exit and waited for (syncExit); one that is not enters again only
// through the flush. Whole address
// spaces are flushed whatever the address-space and non-global flags say:
// more than asked, never less. A VP index the partition does not have is
// ignored. Runs on the caller's thread; must not allocate.
func (c *partitionCalls) FlushVirtualAddressSpace(vp uint32, in tlfs.FlushVirtualAddressInput) tlfs.Status {
	for i, v := range c.p.vps {
		if in.Includes(uint32(i)) {
			v.cpu.FlushGuestTLB()
		}
	}
	if int(vp) < len(c.p.vps) {
		caller := c.p.vps[vp]
		for i, v := range c.p.vps {
			if in.Includes(uint32(i)) {
				v.syncExit(caller)
			}
		}
	}
	return tlfs.StatusSuccess
}

// FlushVirtualAddressList flushes the listed ranges on the targeted VPs
// (TLFS "HvCallFlushVirtualAddressList"): as FlushVirtualAddressSpace,
// the whole VPID or ASID, which covers every range.
func (c *partitionCalls) FlushVirtualAddressList(vp uint32, in tlfs.FlushVirtualAddressInput, ranges []tlfs.GVARange) tlfs.Status {
	return c.FlushVirtualAddressSpace(vp, in)
}

// SendSyntheticClusterIPI sends a fixed interrupt of in.Vector to every
// VP of the set (TLFS "HvCallSendSyntheticClusterIpi(Ex)"), as an IPI
// through the local APICs would: each targeted VP's LAPIC takes the vector
// and its VP is woken. VP indexes the partition does not have are
// ignored, as KVM ignores them. Runs on the caller's thread; must not
// allocate.
func (c *partitionCalls) SendSyntheticClusterIPI(vp uint32, in tlfs.SendIPIInput) tlfs.Status {
	for i, v := range c.p.vps {
		if in.Processors.Contains(uint32(i)) {
			v.Interrupt(uint8(in.Vector))
		}
	}
	return tlfs.StatusSuccess
}
