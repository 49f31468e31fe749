package vmx

import (
	"fmt"

	"gohv/hv/vcpu"
	"gohv/x86"
)

// Exit reasons (SDM Vol. 3D, Appendix C).
const (
	reasonException    = 0
	reasonExtInt       = 1
	reasonTripleFault  = 2
	reasonINIT         = 3
	reasonSIPI         = 4
	reasonIntWindow    = 7
	reasonCPUID        = 10
	reasonHLT          = 12
	reasonINVD         = 13
	reasonINVLPG       = 14
	reasonRDPMC        = 15
	reasonVMCALL       = 18
	reasonVMCLEAR      = 19
	reasonVMLAUNCH     = 20
	reasonVMPTRLD      = 21
	reasonVMPTRST      = 22
	reasonVMREAD       = 23
	reasonVMRESUME     = 24
	reasonVMWRITE      = 25
	reasonVMXOFF       = 26
	reasonVMXON        = 27
	reasonCRAccess     = 28
	reasonIO           = 30
	reasonRDMSR        = 31
	reasonWRMSR        = 32
	reasonInvalidGuest = 33
	reasonMSRLoad      = 34
	reasonMWAIT        = 36
	reasonTPRBelow     = 43
	reasonMONITOR      = 39
	reasonMachineCheck = 41
	reasonEPTViolation = 48
	reasonEPTMisconfig = 49
	reasonINVEPT       = 50
	reasonRDTSCP       = 51
	reasonPreemptTimer = 52
	reasonINVVPID      = 53
	reasonWBINVD       = 54
	reasonXSETBV       = 55
	reasonINVPCID      = 58

	reasonBasicMask = 0xffff
	entryFailureBit = 1 << 31
)

// Exit qualification of I/O instructions (SDM Vol. 3C Table 28-5).
const (
	ioQualSizeMask  = 7 // size - 1
	ioQualIn        = 1 << 3
	ioQualString    = 1 << 4
	ioQualRep       = 1 << 5
	ioQualPortShift = 16
)

// Exit qualification of EPT violations (SDM Vol. 3C Table 28-7).
const (
	eptQualRead    = 1 << 0
	eptQualWrite   = 1 << 1
	eptQualFetch   = 1 << 2
	eptQualPresent = 0x38 // the entry allowed read, write or execute
)

// Exit qualification of control-register accesses (SDM Vol. 3C Table 28-3).
const (
	crQualCRMask    = 0xf
	crQualTypeShift = 4
	crQualTypeMask  = 3
	crQualRegShift  = 8
	crQualRegMask   = 0xf
	crQualLMSWShift = 16
	crAccessMovTo   = 0
	crAccessMovFrom = 1
	crAccessCLTS    = 2
	crAccessLMSW    = 3
)

// decode turns the exit into a vendor-neutral one; false means the backend
// handled it and the guest re-enters. It acts on what vmexitPoint read
// into the run context and reads other VMCS fields through rd, so host
// tests drive it with a VMCS image. Must not allocate on the exits a
// running guest takes.
func (v *VCPU) decode(e *vcpu.Exit) bool {
	c := v.ctx
	reason, qual := c.reason, c.qual
	*e = vcpu.Exit{Code: reason, Info1: qual, Shadow: c.intr&(intrBlockSTI|intrBlockMOVSS) != 0}
	length := uint8(c.instrLen)
	// An event whose delivery the exit interrupted is delivered again.
	if idt := uint32(c.idtVect); idt&intInfoValid != 0 {
		v.pending = idt &^ intInfoNMIUnblock
		v.pendErr = uint32(v.rd(IDTVectErrorCode))
		v.pendLen = uint32(length)
	}
	if reason&entryFailureBit != 0 {
		e.Kind = vcpu.ExitInvalidState
		e.Detail = v.explainEntryFailure(reason & reasonBasicMask)
		return true
	}
	switch reason & reasonBasicMask {
	case reasonExtInt, reasonINIT, reasonSIPI, reasonPreemptTimer:
		e.Kind = vcpu.ExitInterrupt
	case reasonException:
		info := uint32(v.rd(ExitIntrInfo))
		if info>>intInfoTypeShift&intInfoTypeMask == intTypeNMI { // the host's; nothing for the guest
			e.Kind = vcpu.ExitInterrupt
			return true
		}
		e.Kind = vcpu.ExitException
		e.Vector = uint8(info)
		e.ErrorCode = uint32(v.rd(ExitIntrErrorCode))
	case reasonTripleFault:
		e.Kind = vcpu.ExitShutdown
	case reasonIntWindow:
		e.Kind = vcpu.ExitInterruptWindow
		v.window = false
	case reasonTPRBelow:
		// The guest lowered CR8 below a held-back interrupt: the core
		// looks again (trap-like: RIP is already past the MOV).
		e.Kind = vcpu.ExitInterruptWindow
	case reasonCPUID:
		e.Kind, e.InstrLen = vcpu.ExitCPUID, length
	case reasonHLT:
		e.Kind, e.InstrLen = vcpu.ExitHLT, length
	case reasonVMCALL:
		e.Kind, e.InstrLen = vcpu.ExitHypercall, length
	case reasonRDMSR:
		e.Kind, e.InstrLen = vcpu.ExitMSRRead, length
	case reasonWRMSR:
		e.Kind, e.InstrLen = vcpu.ExitMSRWrite, length
	case reasonIO:
		e.Kind, e.InstrLen = vcpu.ExitIO, length
		e.Size = uint8(qual&ioQualSizeMask) + 1
		e.In = qual&ioQualIn != 0
		e.String = qual&ioQualString != 0
		e.Rep = qual&ioQualRep != 0
		e.Port = uint16(qual >> ioQualPortShift)
	case reasonEPTViolation:
		e.Kind = vcpu.ExitNestedFault
		e.GPA = v.rd(GuestPhysAddr)
		e.Write = qual&eptQualWrite != 0
		e.Fetch = qual&eptQualFetch != 0
		e.Present = qual&eptQualPresent != 0
	case reasonCRAccess:
		return v.crAccess(e, qual, length)
	case reasonINVLPG:
		v.invalidate()
		v.regs.RIP += uint64(length)
		return false
	case reasonINVD, reasonWBINVD:
		v.regs.RIP += uint64(length) // caches are coherent for the guest's purposes
		return false
	case reasonVMCLEAR, reasonVMLAUNCH, reasonVMPTRLD, reasonVMPTRST, reasonVMREAD, reasonVMRESUME,
		reasonVMWRITE, reasonVMXOFF, reasonVMXON, reasonINVEPT, reasonINVVPID,
		reasonMWAIT, reasonMONITOR, reasonRDTSCP, reasonXSETBV, reasonINVPCID, reasonRDPMC:
		e.Kind = vcpu.ExitInstruction
	case reasonEPTMisconfig:
		e.Kind = vcpu.ExitUnexpected
		e.GPA = v.rd(GuestPhysAddr)
		e.Detail = fmt.Sprintf("EPT misconfiguration at gpa %#x (a bug in gohv's tables)", e.GPA)
	default:
		e.Kind = vcpu.ExitUnexpected
		e.Detail = fmt.Sprintf("VMX exit reason %d", reason&reasonBasicMask)
	}
	return true
}

// crAccess turns a control-register exit (SDM Vol. 3C Table 28-3) into
// ExitCRWrite for the core, which applies the architecture's rules: MOV to
// CR0/CR3/CR4/CR8 carries the register's value, CLTS and LMSW the CR0
// they would produce. MOV from CR3 and CR8 (the reads that exit: without
// them a guest would read, and with CR8 write, the host's own TPR) is
// answered here and the guest re-enters (false).
func (v *VCPU) crAccess(e *vcpu.Exit, qual uint64, length uint8) bool {
	v.fillState(stateMode | stateRest) // CR0, CR3: what the core's Run would see
	r := v.regs
	cr := uint8(qual & crQualCRMask)
	reg := qual >> crQualRegShift & crQualRegMask
	switch qual >> crQualTypeShift & crQualTypeMask {
	case crAccessMovTo:
		e.Kind, e.InstrLen, e.CR, e.Value = vcpu.ExitCRWrite, length, cr, r.GPR[reg]
		return true
	case crAccessMovFrom:
		switch cr {
		case 3:
			r.GPR[reg] = r.CR3
		case 8:
			r.GPR[reg] = r.CR8
		}
		r.RIP += uint64(length)
		return false
	case crAccessCLTS:
		e.Kind, e.InstrLen, e.CR, e.Value = vcpu.ExitCRWrite, length, 0, r.CR0&^x86.CR0TS
		return true
	default: // LMSW
		e.Kind, e.InstrLen, e.CR, e.Value = vcpu.ExitCRWrite, length, 0, lmsw(r.CR0, qual>>crQualLMSWShift&0xffff)
		return true
	}
}

// lmsw is CR0 after LMSW src (SDM Vol. 2A LMSW): PE may be set but not
// cleared; MP, EM and TS follow the operand; the rest is unchanged.
func lmsw(cr0, src uint64) uint64 {
	const low = x86.CR0MP | x86.CR0EM | x86.CR0TS
	return cr0&^low | src&low | (cr0|src)&x86.CR0PE
}
