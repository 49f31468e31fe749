package vmx

import (
	"strings"
	"testing"
)

// TestFieldEncodings checks every named field against the SDM's encoding
// scheme (Vol. 3, Appendix B): the width and type the encoding carries must
// be those of the field's table, the access type bit clear, bit 12 and the
// bits above 14 zero.
func TestFieldEncodings(t *testing.T) {
	for f, name := range fieldNames {
		if f&1 != 0 || f&(1<<12) != 0 || f>>15 != 0 {
			t.Errorf("%s %#x: access-type/reserved bits set", name, f)
		}
		w, ty := fieldWidth(f), fieldType(f)
		switch {
		case strings.HasPrefix(name, "GUEST_") && strings.HasSuffix(name, "_SELECTOR"),
			strings.HasPrefix(name, "HOST_") && strings.HasSuffix(name, "_SELECTOR"), name == "VPID":
			if w != Width16 {
				t.Errorf("%s %#x: width %d, want 16-bit", name, f, w)
			}
		case strings.HasSuffix(name, "_LIMIT"), strings.HasSuffix(name, "_AR_BYTES"), strings.HasSuffix(name, "_CONTROL"),
			strings.HasSuffix(name, "_CONTROLS"), strings.HasSuffix(name, "_COUNT"), name == "EXCEPTION_BITMAP",
			name == "VM_INSTRUCTION_ERROR", name == "VM_EXIT_REASON", name == "GUEST_SYSENTER_CS", name == "HOST_IA32_SYSENTER_CS",
			// SDM Appendix B.3: the other 32-bit fields.
			name == "IDT_VECTORING_INFO_FIELD", name == "IDT_VECTORING_ERROR_CODE", name == "PAGE_FAULT_ERROR_CODE_MASK",
			name == "PAGE_FAULT_ERROR_CODE_MATCH", name == "VM_EXIT_INTR_INFO", name == "VM_EXIT_INTR_ERROR_CODE",
			name == "VMX_INSTRUCTION_INFO", name == "VM_EXIT_INSTRUCTION_LEN", name == "GUEST_ACTIVITY_STATE",
			name == "GUEST_INTERRUPTIBILITY_INFO", name == "VMX_PREEMPTION_TIMER_VALUE", name == "VM_ENTRY_INTR_INFO_FIELD",
			name == "VM_ENTRY_EXCEPTION_ERROR_CODE", name == "VM_ENTRY_INSTRUCTION_LEN", name == "TPR_THRESHOLD":
			if w != Width32 {
				t.Errorf("%s %#x: width %d, want 32-bit", name, f, w)
			}
		case strings.HasSuffix(name, "_ADDR") || strings.HasPrefix(name, "IO_BITMAP") || name == "MSR_BITMAP" ||
			name == "EPT_POINTER" || name == "TSC_OFFSET" || name == "VMCS_LINK_POINTER" || strings.Contains(name, "IA32_PAT") ||
			strings.Contains(name, "IA32_EFER") || strings.Contains(name, "PDPTE") || name == "GUEST_PHYSICAL_ADDRESS" ||
			name == "GUEST_IA32_DEBUGCTL":
			if w != Width64 {
				t.Errorf("%s %#x: width %d, want 64-bit", name, f, w)
			}
		case strings.HasSuffix(name, "_BASE") || strings.HasPrefix(name, "GUEST_CR") || strings.HasPrefix(name, "HOST_CR") ||
			strings.HasSuffix(name, "_MASK") && strings.HasPrefix(name, "CR") || strings.HasSuffix(name, "_SHADOW") ||
			name == "GUEST_RIP" || name == "GUEST_RSP" || name == "GUEST_RFLAGS" || name == "HOST_RIP" || name == "HOST_RSP" ||
			name == "EXIT_QUALIFICATION" || name == "GUEST_LINEAR_ADDRESS" || name == "GUEST_DR7" ||
			// SDM Appendix B.4: the other natural-width fields.
			strings.HasSuffix(name, "SYSENTER_ESP") || strings.HasSuffix(name, "SYSENTER_EIP") ||
			name == "GUEST_PENDING_DBG_EXCEPTIONS":
			if w != WidthNatural {
				t.Errorf("%s %#x: width %d, want natural", name, f, w)
			}
		default:
			t.Errorf("%s %#x: the test does not know its SDM width", name, f)
		}
		switch {
		case strings.HasPrefix(name, "GUEST_") && name != "GUEST_PHYSICAL_ADDRESS" && name != "GUEST_LINEAR_ADDRESS",
			name == "VMCS_LINK_POINTER", name == "VMX_PREEMPTION_TIMER_VALUE":
			if ty != TypeGuest {
				t.Errorf("%s %#x: type %d, want guest state", name, f, ty)
			}
		case strings.HasPrefix(name, "HOST_"):
			if ty != TypeHost {
				t.Errorf("%s %#x: type %d, want host state", name, f, ty)
			}
		case name == "VM_INSTRUCTION_ERROR" || strings.HasPrefix(name, "VM_EXIT_INTR") || name == "VM_EXIT_REASON" ||
			name == "EXIT_QUALIFICATION" || strings.HasPrefix(name, "IDT_VECTORING") || name == "VM_EXIT_INSTRUCTION_LEN" ||
			name == "VMX_INSTRUCTION_INFO" || name == "GUEST_PHYSICAL_ADDRESS" || name == "GUEST_LINEAR_ADDRESS":
			if ty != TypeExitInfo {
				t.Errorf("%s %#x: type %d, want VM-exit information", name, f, ty)
			}
		default:
			if ty != TypeControl {
				t.Errorf("%s %#x: type %d, want control", name, f, ty)
			}
		}
	}
	// A few encodings written out from the SDM's tables.
	for _, c := range []struct {
		got, want uint32
	}{{GuestRIP, 0x681e}, {HostRIP, 0x6c16}, {EPTPointer, 0x201a}, {ExitReason, 0x4402}, {ProcControls2, 0x401e},
		{GuestInterruptibility, 0x4824}, {VMCSLinkPointer, 0x2800}, {GuestTRAR, 0x4822}} {
		if c.got != c.want {
			t.Errorf("%s = %#x, SDM says %#x", FieldName(c.got), c.got, c.want)
		}
	}
}

func TestAccessRights(t *testing.T) {
	for _, c := range []struct {
		attrib uint16
		ar     uint64
	}{
		{0xa9b, 0xa09b}, // 64-bit code: type 11, S, P, L, G
		{0xc93, 0xc093}, // flat data: type 3, S, P, D/B, G
		{0x08b, 0x008b}, // busy TSS
		{0, 1 << 16},    // not present: unusable
	} {
		if got := toAR(c.attrib); got != c.ar {
			t.Errorf("toAR(%#x) = %#x, want %#x", c.attrib, got, c.ar)
		}
		if got := fromAR(c.ar); got != c.attrib {
			t.Errorf("fromAR(%#x) = %#x, want %#x", c.ar, got, c.attrib)
		}
	}
}

// goodLongMode is a valid 64-bit guest state, as guests.Load builds it.
func goodLongMode() guestFields {
	return guestFields{
		GuestCR0: 0x8001_0031, GuestCR3: 0x4000, GuestCR4: 0x2620, GuestEFER: 0x500, GuestPAT: 0x0007_0406_0007_0406,
		GuestRFLAGS: 2, GuestRIP: 0x100000, EntryControls: entryIA32e | entryLoadEFER | entryLoadPAT,
		GuestCSSel: 8, GuestCSAR: 0xa09b, GuestCSLimit: 0xffff_ffff,
		GuestSSSel: 0x10, GuestSSAR: 0xc093, GuestSSLimit: 0xffff_ffff,
		GuestDSAR: 0xc093, GuestDSLimit: 0xffff_ffff, GuestESAR: 0xc093, GuestESLimit: 0xffff_ffff,
		GuestFSAR: 0xc093, GuestFSLimit: 0xffff_ffff, GuestGSAR: 0xc093, GuestGSLimit: 0xffff_ffff,
		GuestTRAR: 0x8b, GuestTRLimit: 0x67, GuestLDTRAR: 1 << 16,
		GuestGDTRLimit: 23, GuestIDTRLimit: 0xfff, VMCSLinkPointer: ^uint64(0),
	}
}

func TestCheckGuestState(t *testing.T) {
	const cr0f0, cr0f1, cr4f0, cr4f1 = 0x8000_0021, 0xffff_ffff, 0x2000, 0x3727ff
	if msg := checkGuestState(goodLongMode(), cr0f0, cr0f1, cr4f0, cr4f1); msg != "" {
		t.Fatalf("valid state refused: %s", msg)
	}
	for _, c := range []struct {
		field uint32
		value uint64
		want  string
	}{
		{GuestTRAR, 0x8b | 3<<17, "GUEST_TR_AR_BYTES"},
		{GuestTRAR, 0x89, "GUEST_TR_AR_BYTES: type 9"},
		{GuestCR4, 0x620, "GUEST_CR4"},
		{GuestCR0, 0x8001_0011, "GUEST_CR0"},
		{GuestEFER, 0x100, "GUEST_IA32_EFER"},
		{GuestRFLAGS, 0, "GUEST_RFLAGS"},
		{GuestCSAR, 0xe09b, "GUEST_CS_AR_BYTES: L and D/B"},
		{GuestSSAR, 0xc092, "GUEST_SS_AR_BYTES: a usable data segment"},
		{GuestDSLimit, 0xffff_0000, "GUEST_DS_AR_BYTES: G set"},
		{GuestPAT, 0x0007_0406_0007_0402, "GUEST_IA32_PAT"},
		{VMCSLinkPointer, 0, "VMCS_LINK_POINTER"},
		{GuestIDTRLimit, 0x10000, "GUEST_IDTR_LIMIT"},
	} {
		g := goodLongMode()
		g[c.field] = c.value
		if msg := checkGuestState(g, cr0f0, cr0f1, cr4f0, cr4f1); !strings.HasPrefix(msg, c.want) {
			t.Errorf("%s = %#x: %q, want %q", FieldName(c.field), c.value, msg, c.want)
		}
	}
	// Protected mode with paging off (unrestricted guest), as a Multiboot kernel starts.
	g := goodLongMode()
	g[GuestCR0], g[GuestCR4], g[GuestEFER], g[EntryControls] = 0x31, 0x2000, 0, entryLoadEFER
	g[GuestCSAR] = 0xc09b
	if msg := checkGuestState(g, cr0f0, cr0f1, cr4f0, cr4f1); msg != "" {
		t.Fatalf("protected mode refused: %s", msg)
	}
}
