package vmx

import "fmt"

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
	if need := cr0f0 &^ (1 | 1<<31); cr0&need != need || cr0&^cr0f1&0xffff_ffff != 0 || cr0>>32 != 0 {
		return fmt.Sprintf("GUEST_CR0: %#x violates the VMX fixed bits (must set %#x, may set %#x)", cr0, need, cr0f1)
	}
	if cr0&(1<<31) != 0 && cr0&1 == 0 {
		return "GUEST_CR0: PG set without PE"
	}
	if cr4&cr4f0 != cr4f0 || cr4&^cr4f1 != 0 {
		return fmt.Sprintf("GUEST_CR4: %#x violates the VMX fixed bits (must set %#x, may set %#x)", cr4, cr4f0, cr4f1)
	}
	if ia32e && (cr0&(1<<31) == 0 || cr4&(1<<5) == 0) {
		return "GUEST_CR0/GUEST_CR4: an IA-32e mode guest needs CR0.PG and CR4.PAE"
	}
	if efer&^(1|1<<8|1<<10|1<<11) != 0 {
		return fmt.Sprintf("GUEST_IA32_EFER: reserved bits set in %#x", efer)
	}
	if (efer&(1<<10) != 0) != ia32e {
		return "GUEST_IA32_EFER: LMA disagrees with the IA-32e mode guest entry control"
	}
	if cr0&(1<<31) != 0 && (efer&(1<<8) != 0) != (efer&(1<<10) != 0) {
		return "GUEST_IA32_EFER: LME and LMA differ with paging on"
	}
	for i := 0; i < 8; i++ {
		switch g[GuestPAT] >> (8 * i) & 0xff {
		case 0, 1, 4, 5, 6, 7:
		default:
			return fmt.Sprintf("GUEST_IA32_PAT: entry %d holds an invalid memory type", i)
		}
	}
	rf := g[GuestRFLAGS]
	if rf&^0x3f_7fd7 != 0 || rf&2 == 0 {
		return fmt.Sprintf("GUEST_RFLAGS: %#x has reserved bits wrong (bit 1 must be 1; 3, 5, 15, 63:22 must be 0)", rf)
	}
	if ia32e && rf&(1<<17) != 0 {
		return "GUEST_RFLAGS: VM set for an IA-32e mode guest"
	}
	csar := g[GuestCSAR]
	if msg := checkSeg("GUEST_TR_AR_BYTES", g[GuestTRAR], g[GuestTRLimit], false); msg != "" {
		return msg
	}
	tr := g[GuestTRAR]
	switch {
	case tr&(1<<16) != 0:
		return "GUEST_TR_AR_BYTES: TR must be usable"
	case tr&0xf != 11 && (ia32e || tr&0xf != 3):
		return fmt.Sprintf("GUEST_TR_AR_BYTES: type %d is not a busy TSS", tr&0xf)
	case tr&(1<<4) != 0:
		return "GUEST_TR_AR_BYTES: S must be 0 (a system segment)"
	case g[GuestTRSel]&4 != 0:
		return "GUEST_TR_SELECTOR: TI must be 0"
	}
	if ldt := g[GuestLDTRAR]; ldt&(1<<16) == 0 {
		if msg := checkSeg("GUEST_LDTR_AR_BYTES", ldt, g[GuestLDTRLimit], false); msg != "" {
			return msg
		}
		if ldt&0xf != 2 || ldt&(1<<4) != 0 {
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
	if ia32e && csar&(1<<13) != 0 && csar&(1<<14) != 0 {
		return "GUEST_CS_AR_BYTES: L and D/B both set"
	}
	for _, s := range []struct {
		name      string
		ar, limit uint32
	}{{"GUEST_SS_AR_BYTES", GuestSSAR, GuestSSLimit}, {"GUEST_DS_AR_BYTES", GuestDSAR, GuestDSLimit},
		{"GUEST_ES_AR_BYTES", GuestESAR, GuestESLimit}, {"GUEST_FS_AR_BYTES", GuestFSAR, GuestFSLimit},
		{"GUEST_GS_AR_BYTES", GuestGSAR, GuestGSLimit}} {
		ar := g[s.ar]
		if ar&(1<<16) != 0 {
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
	if (!ia32e || csar&(1<<13) == 0) && g[GuestRIP]>>32 != 0 {
		return "GUEST_RIP: bits 63:32 set outside 64-bit mode"
	}
	if g[GuestActivityState] > 3 {
		return "GUEST_ACTIVITY_STATE: not a defined state"
	}
	if g[GuestInterruptibility]&^0x1f != 0 || g[GuestInterruptibility]&3 == 3 {
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
	case ar&(1<<7) == 0:
		return name + ": P must be 1 for a usable segment"
	case ar&0xf00 != 0 || ar>>17 != 0:
		return fmt.Sprintf("%s: reserved bits set in %#x", name, ar)
	case needS && ar&(1<<4) == 0:
		return name + ": S must be 1 (code or data)"
	case limit&0xfff != 0xfff && ar&(1<<15) != 0:
		return name + ": G set with a limit whose low 12 bits are not all ones"
	case limit>>20 != 0 && ar&(1<<15) == 0:
		return name + ": G clear with a limit above 1 MiB"
	}
	return ""
}
