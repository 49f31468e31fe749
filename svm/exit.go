package svm

import (
	"gohv/hv/vcpu"
	"gohv/x86"
)

// decode turns the VMCB's exit code into a vendor-neutral exit. It reads
// only the VMCB and the registers storeState filled, so host tests drive it
// with a VMCB image. Must not allocate on the exits a running guest takes.
func (v *VCPU) decode(e *vcpu.Exit) {
	c := v.vmcb
	code, i1, i2 := c.U64(CtlExitCode), c.U64(CtlExitInfo1), c.U64(CtlExitInfo2)
	*e = vcpu.Exit{Code: code, Info1: i1, Info2: i2, Shadow: v.InterruptShadow()}
	switch code {
	case ExitINTR, ExitNMI, ExitSMI, ExitINIT:
		e.Kind = vcpu.ExitInterrupt
	case ExitVINTR:
		e.Kind = vcpu.ExitInterruptWindow
		if !v.window && v.tprHold != 0 {
			v.b.learnVINTR(v.tprHold, uint8(v.regs.CR8))
		}
		v.window = false
	case ExitCPUID:
		e.Kind, e.InstrLen = vcpu.ExitCPUID, v.nextRIPLength()
	case ExitMSR:
		e.Kind = vcpu.ExitMSRRead
		if i1&1 != 0 {
			e.Kind = vcpu.ExitMSRWrite
		}
		e.InstrLen = v.nextRIPLength()
	case ExitHLT:
		e.Kind, e.InstrLen = vcpu.ExitHLT, v.nextRIPLength()
	case ExitVMMCALL:
		e.Kind, e.InstrLen = vcpu.ExitHypercall, v.nextRIPLength()
	case ExitIOIO:
		e.Kind = vcpu.ExitIO
		e.Port = uint16(i1 >> 16)
		e.In = i1&IOInfoIn != 0
		e.String = i1&IOInfoString != 0
		e.Rep = i1&IOInfoRep != 0
		switch {
		case i1&IOInfoSz8 != 0:
			e.Size = 1
		case i1&IOInfoSz16 != 0:
			e.Size = 2
		default:
			e.Size = 4
		}
		// EXITINFO2 is the next RIP for IOIO intercepts on every SVM CPU.
		e.InstrLen = instrLength(v.regs.RIP, i2)
	case ExitNPF:
		e.Kind = vcpu.ExitNestedFault
		e.GPA = i2
		e.Present = i1&NPFPresent != 0
		e.Write = i1&NPFWrite != 0
		e.Fetch = i1&NPFFetch != 0
	case ExitCR8Write:
		e.Kind, e.CR, e.InstrLen = vcpu.ExitCRWrite, 8, v.nextRIPLength()
		if i1&CRInfoValid != 0 && v.b.feat.Decode {
			e.Value = v.regs.GPR[i1&CRInfoGPRMask]
		} else {
			e.ValueFromInstruction = true
		}
	case ExitShutdown:
		e.Kind = vcpu.ExitShutdown
	case ExitInvalid, ExitInvalid & 0xffff_ffff: // -1, as a 64-bit or (QEMU) 32-bit value
		e.Kind = vcpu.ExitInvalidState
		e.Detail = explainInvalid(c)
	case ExitVMRUN, ExitVMLOAD, ExitVMSAVE, ExitSTGI, ExitCLGI, ExitSKINIT, ExitINVLPGA,
		ExitMONITOR, ExitMWAIT, ExitXSETBV, ExitRDTSCP, ExitICEBP:
		e.Kind = vcpu.ExitInstruction
	default:
		e.Kind = vcpu.ExitUnexpected
	}
}

// nextRIPLength is the exiting instruction's length from the VMCB's next
// RIP when the CPU saves it (NRIP_SAVE), else 0 (the core decodes).
func (v *VCPU) nextRIPLength() uint8 {
	if !v.b.feat.NRIPSave {
		return 0
	}
	return instrLength(v.regs.RIP, v.vmcb.U64(CtlNRIP))
}

// instrLength is next-rip when that is a plausible instruction length
// (1..15 bytes), else 0.
func instrLength(rip, next uint64) uint8 {
	if next > rip && next-rip <= 15 {
		return uint8(next - rip)
	}
	return 0
}

// explainInvalid repeats VMRUN's guest-state consistency checks (APM
// Vol. 2, 15.5.1) to name what made it fail with VMEXIT_INVALID.
func explainInvalid(c *VMCB) string {
	efer, cr0, cr4 := c.U64(SaveEFER), c.U64(SaveCR0), c.U64(SaveCR4)
	cs := c.Segment(SaveCS)
	const eferKnown = x86.EFERSCE | x86.EFERLME | x86.EFERLMA | x86.EFERNXE | x86.EFERSVME |
		x86.EFERLMSLE | x86.EFERFFXSR | x86.EFERTCE
	longPaging := efer&x86.EFERLME != 0 && cr0&x86.CR0PG != 0
	switch {
	case efer&x86.EFERSVME == 0:
		return "EFER.SVME clear in the guest state"
	case efer&^eferKnown != 0:
		return "EFER: reserved bits set"
	case cr0&x86.CR0NW != 0 && cr0&x86.CR0CD == 0:
		return "CR0: NW set with CD clear"
	case cr0>>32 != 0:
		return "CR0: bits 63:32 set"
	case cr4>>23 != 0 || cr4&(1<<15|x86.CR4KL) != 0: // bit 15 is reserved
		return "CR4: reserved bits set"
	case longPaging && cr4&x86.CR4PAE == 0:
		return "CR4.PAE clear with EFER.LME and CR0.PG set"
	case longPaging && cr0&x86.CR0PE == 0:
		return "CR0.PE clear with EFER.LME and CR0.PG set"
	case longPaging && cs.Attrib&x86.SegL != 0 && cs.Attrib&x86.SegDB != 0:
		return "CS: L and D both set in long mode"
	case c.U32(CtlGuestASID) == 0:
		return "guest ASID 0 (the host's)"
	case c.U32(CtlInterceptMisc2)&InterceptVMRUN == 0:
		return "VMRUN intercept clear"
	}
	return "VMRUN refused the guest state for a reason gohv's checks do not cover"
}
