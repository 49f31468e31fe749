package vmx

import (
	"fmt"

	"gohv/x86"
)

// rflagsDefined are the RFLAGS bits that may be set at VM entry (SDM Vol.
// 3C 27.3.1.4): all but 3, 5, 15 and 63:22.
const rflagsDefined = 0x3f_7fd7

// explainEntryFailure names what made VM entry fail. The CPU only says
// "invalid guest state" (exit reason 33) or "MSR loading" (34); gohv
// repeats the SDM's guest-state checks (Vol. 3, 27.3.1) on the VMCS to find
// the field. Runs with the VMCS current.
func (v *VCPU) explainEntryFailure(reason uint64) string {
	if reason == reasonMSRLoad {
		return fmt.Sprintf("VM_ENTRY_MSR_LOAD_ADDR: entry %d of the MSR-load area was refused", v.rd(ExitQualification))
	}
	if reason == reasonMachineCheck {
		return "machine check during VM entry"
	}
	g := guestFields{}
	for _, f := range checkedFields {
		g[f] = v.rd(f)
	}
	if msg := checkGuestState(g, v.b.cr0Fixed0, v.b.cr0Fixed1, v.b.cr4Fixed0, v.b.cr4Fixed1); msg != "" {
		return msg
	}
	return "invalid guest state (VM exit reason 33) in a field gohv's own checks do not cover"
}

// guestFields holds the VMCS fields the checks read.
type guestFields map[uint32]uint64

var checkedFields = []uint32{
	GuestCR0, GuestCR3, GuestCR4, GuestEFER, GuestPAT, GuestRFLAGS, GuestRIP, EntryControls,
	GuestCSSel, GuestCSAR, GuestCSLimit, GuestSSSel, GuestSSAR, GuestSSLimit,
	GuestDSAR, GuestDSLimit, GuestESAR, GuestESLimit, GuestFSAR, GuestFSLimit, GuestGSAR, GuestGSLimit,
	GuestTRSel, GuestTRAR, GuestTRLimit, GuestLDTRSel, GuestLDTRAR, GuestLDTRLimit,
	GuestGDTRLimit, GuestIDTRLimit, GuestActivityState, GuestInterruptibility, VMCSLinkPointer,
}

// checkGuestState returns "FIELD: what is wrong" for the first guest-state
// check that fails, or "". Pure logic: host-tested.
func checkGuestState(g guestFields, cr0f0, cr0f1, cr4f0, cr4f1 uint64) string {
	ia32e := g[EntryControls]&entryIA32e != 0
	cr0, cr4, efer := g[GuestCR0], g[GuestCR4], g[GuestEFER]
	if need := cr0f0 &^ (x86.CR0PE | x86.CR0PG); cr0&need != need || cr0&^cr0f1&0xffff_ffff != 0 || cr0>>32 != 0 {
		return fmt.Sprintf("GUEST_CR0: %#x violates the VMX fixed bits (must set %#x, may set %#x)", cr0, need, cr0f1)
	}
	if cr0&x86.CR0PG != 0 && cr0&x86.CR0PE == 0 {
		return "GUEST_CR0: PG set without PE"
	}
	if cr4&cr4f0 != cr4f0 || cr4&^cr4f1 != 0 {
		return fmt.Sprintf("GUEST_CR4: %#x violates the VMX fixed bits (must set %#x, may set %#x)", cr4, cr4f0, cr4f1)
	}
	if ia32e && (cr0&x86.CR0PG == 0 || cr4&x86.CR4PAE == 0) {
		return "GUEST_CR0/GUEST_CR4: an IA-32e mode guest needs CR0.PG and CR4.PAE"
	}
	if efer&^(x86.EFERSCE|x86.EFERLME|x86.EFERLMA|x86.EFERNXE) != 0 {
		return fmt.Sprintf("GUEST_IA32_EFER: reserved bits set in %#x", efer)
	}
	if (efer&x86.EFERLMA != 0) != ia32e {
		return "GUEST_IA32_EFER: LMA disagrees with the IA-32e mode guest entry control"
	}
	if cr0&x86.CR0PG != 0 && (efer&x86.EFERLME != 0) != (efer&x86.EFERLMA != 0) {
		return "GUEST_IA32_EFER: LME and LMA differ with paging on"
	}
	for i := 0; i < 8; i++ {
		switch g[GuestPAT] >> (8 * i) & 0xff {
		case x86.PATUC, x86.PATWC, x86.PATWT, x86.PATWP, x86.PATWB, x86.PATUCMinus:
		default:
			return fmt.Sprintf("GUEST_IA32_PAT: entry %d holds an invalid memory type", i)
		}
	}
	rf := g[GuestRFLAGS]
	if rf&^rflagsDefined != 0 || rf&x86.RFLAGSFixed == 0 {
		return fmt.Sprintf("GUEST_RFLAGS: %#x has reserved bits wrong (bit 1 must be 1; 3, 5, 15, 63:22 must be 0)", rf)
	}
	if ia32e && rf&x86.RFLAGSVM != 0 {
		return "GUEST_RFLAGS: VM set for an IA-32e mode guest"
	}
	csar := g[GuestCSAR]
	if msg := checkSeg("GUEST_TR_AR_BYTES", g[GuestTRAR], g[GuestTRLimit], false); msg != "" {
		return msg
	}
	tr := g[GuestTRAR]
	switch {
	case tr&arUnusable != 0:
		return "GUEST_TR_AR_BYTES: TR must be usable"
	case tr&x86.SegTypeMask != x86.SegTypeTSSBusy && (ia32e || tr&x86.SegTypeMask != x86.SegTypeTSS16Busy):
		return fmt.Sprintf("GUEST_TR_AR_BYTES: type %d is not a busy TSS", tr&0xf)
	case tr&x86.SegS != 0:
		return "GUEST_TR_AR_BYTES: S must be 0 (a system segment)"
	case g[GuestTRSel]&x86.SelectorTI != 0:
		return "GUEST_TR_SELECTOR: TI must be 0"
	}
	if ldt := g[GuestLDTRAR]; ldt&arUnusable == 0 {
		if msg := checkSeg("GUEST_LDTR_AR_BYTES", ldt, g[GuestLDTRLimit], false); msg != "" {
			return msg
		}
		if ldt&x86.SegTypeMask != x86.SegTypeLDT || ldt&x86.SegS != 0 {
			return "GUEST_LDTR_AR_BYTES: a usable LDTR must be an LDT system segment"
		}
	}
	if msg := checkSeg("GUEST_CS_AR_BYTES", csar, g[GuestCSLimit], true); msg != "" {
		return msg
	}
	switch csar & 0xf {
	case 3, 9, 11, 13, 15:
	default:
		return fmt.Sprintf("GUEST_CS_AR_BYTES: type %d is not an accessed code segment", csar&0xf)
	}
	if ia32e && csar&arL != 0 && csar&arDB != 0 {
		return "GUEST_CS_AR_BYTES: L and D/B both set"
	}
	for _, s := range []struct {
		name      string
		ar, limit uint32
	}{{"GUEST_SS_AR_BYTES", GuestSSAR, GuestSSLimit}, {"GUEST_DS_AR_BYTES", GuestDSAR, GuestDSLimit},
		{"GUEST_ES_AR_BYTES", GuestESAR, GuestESLimit}, {"GUEST_FS_AR_BYTES", GuestFSAR, GuestFSLimit},
		{"GUEST_GS_AR_BYTES", GuestGSAR, GuestGSLimit}} {
		ar := g[s.ar]
		if ar&arUnusable != 0 {
			continue
		}
		if msg := checkSeg(s.name, ar, g[s.limit], true); msg != "" {
			return msg
		}
		if ar&1 == 0 {
			return s.name + ": a usable data segment must have its accessed bit set"
		}
		if ar&8 != 0 && ar&2 == 0 {
			return s.name + ": a code segment used as data must be readable"
		}
	}
	if g[GuestGDTRLimit] > 0xffff {
		return "GUEST_GDTR_LIMIT: above 0xFFFF"
	}
	if g[GuestIDTRLimit] > 0xffff {
		return "GUEST_IDTR_LIMIT: above 0xFFFF"
	}
	if (!ia32e || csar&arL == 0) && g[GuestRIP]>>32 != 0 {
		return "GUEST_RIP: bits 63:32 set outside 64-bit mode"
	}
	if g[GuestActivityState] > 3 {
		return "GUEST_ACTIVITY_STATE: not a defined state"
	}
	if g[GuestInterruptibility]&^0x1f != 0 || g[GuestInterruptibility]&(intrBlockSTI|intrBlockMOVSS) == intrBlockSTI|intrBlockMOVSS {
		return "GUEST_INTERRUPTIBILITY_INFO: reserved bits, or blocking by STI and MOV SS together"
	}
	if g[VMCSLinkPointer] != ^uint64(0) {
		return "VMCS_LINK_POINTER: must be all ones without VMCS shadowing"
	}
	return ""
}

// checkSeg is what every usable segment shares: present, reserved access
// right bits clear, granularity consistent with the limit.
func checkSeg(name string, ar, limit uint64, needS bool) string {
	switch {
	case ar&x86.SegP == 0:
		return name + ": P must be 1 for a usable segment"
	case ar&0xf00 != 0 || ar>>17 != 0:
		return fmt.Sprintf("%s: reserved bits set in %#x", name, ar)
	case needS && ar&x86.SegS == 0:
		return name + ": S must be 1 (code or data)"
	case limit&0xfff != 0xfff && ar&arG != 0:
		return name + ": G set with a limit whose low 12 bits are not all ones"
	case limit>>20 != 0 && ar&arG == 0:
		return name + ": G clear with a limit above 1 MiB"
	}
	return ""
}
