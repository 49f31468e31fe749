package vmx

// VMCS field encodings (Intel SDM Vol. 3, Appendix B). An encoding is
// access type (bit 0: full or high half of a 64-bit field), index (9:1),
// type (11:10: control, VM-exit information, guest state, host state) and
// width (14:13: 16-bit, 64-bit, 32-bit, natural width).
const (
	// 16-bit control, guest and host.
	VPID         = 0x0000
	GuestESSel   = 0x0800
	GuestCSSel   = 0x0802
	GuestSSSel   = 0x0804
	GuestDSSel   = 0x0806
	GuestFSSel   = 0x0808
	GuestGSSel   = 0x080a
	GuestLDTRSel = 0x080c
	GuestTRSel   = 0x080e
	HostESSel    = 0x0c00
	HostCSSel    = 0x0c02
	HostSSSel    = 0x0c04
	HostDSSel    = 0x0c06
	HostFSSel    = 0x0c08
	HostGSSel    = 0x0c0a
	HostTRSel    = 0x0c0c

	// 64-bit control, read-only, guest and host.
	IOBitmapA        = 0x2000
	IOBitmapB        = 0x2002
	MSRBitmap        = 0x2004
	ExitMSRStoreAddr = 0x2006
	ExitMSRLoadAddr  = 0x2008
	EntryMSRLoadAddr = 0x200a
	TSCOffset        = 0x2010
	VirtualAPICPage  = 0x2012
	EPTPointer       = 0x201a
	GuestPhysAddr    = 0x2400
	VMCSLinkPointer  = 0x2800
	GuestDebugCtl    = 0x2802
	GuestPAT         = 0x2804
	GuestEFER        = 0x2806
	GuestPDPTE0      = 0x280a
	GuestPDPTE1      = 0x280c
	GuestPDPTE2      = 0x280e
	GuestPDPTE3      = 0x2810
	HostPAT          = 0x2c00
	HostEFER         = 0x2c02

	// 32-bit control.
	PinControls       = 0x4000
	ProcControls      = 0x4002
	ExceptionBitmap   = 0x4004
	PFErrorMask       = 0x4006
	PFErrorMatch      = 0x4008
	CR3TargetCount    = 0x400a
	ExitControls      = 0x400c
	ExitMSRStoreCount = 0x400e
	ExitMSRLoadCount  = 0x4010
	EntryControls     = 0x4012
	EntryMSRLoadCount = 0x4014
	EntryIntrInfo     = 0x4016
	EntryExcErrorCode = 0x4018
	EntryInstrLen     = 0x401a
	TPRThreshold      = 0x401c
	ProcControls2     = 0x401e

	// 32-bit read-only.
	VMInstrError      = 0x4400
	ExitReason        = 0x4402
	ExitIntrInfo      = 0x4404
	ExitIntrErrorCode = 0x4406
	IDTVectInfo       = 0x4408
	IDTVectErrorCode  = 0x440a
	ExitInstrLen      = 0x440c
	ExitInstrInfo     = 0x440e

	// 32-bit guest and host.
	GuestESLimit          = 0x4800
	GuestCSLimit          = 0x4802
	GuestSSLimit          = 0x4804
	GuestDSLimit          = 0x4806
	GuestFSLimit          = 0x4808
	GuestGSLimit          = 0x480a
	GuestLDTRLimit        = 0x480c
	GuestTRLimit          = 0x480e
	GuestGDTRLimit        = 0x4810
	GuestIDTRLimit        = 0x4812
	GuestESAR             = 0x4814
	GuestCSAR             = 0x4816
	GuestSSAR             = 0x4818
	GuestDSAR             = 0x481a
	GuestFSAR             = 0x481c
	GuestGSAR             = 0x481e
	GuestLDTRAR           = 0x4820
	GuestTRAR             = 0x4822
	GuestInterruptibility = 0x4824
	GuestActivityState    = 0x4826
	GuestSysenterCS       = 0x482a
	PreemptionTimer       = 0x482e
	HostSysenterCS        = 0x4c00

	// Natural-width control, read-only, guest and host.
	CR0GuestHostMask  = 0x6000
	CR4GuestHostMask  = 0x6002
	CR0ReadShadow     = 0x6004
	CR4ReadShadow     = 0x6006
	ExitQualification = 0x6400
	GuestLinearAddr   = 0x640a
	GuestCR0          = 0x6800
	GuestCR3          = 0x6802
	GuestCR4          = 0x6804
	GuestESBase       = 0x6806
	GuestCSBase       = 0x6808
	GuestSSBase       = 0x680a
	GuestDSBase       = 0x680c
	GuestFSBase       = 0x680e
	GuestGSBase       = 0x6810
	GuestLDTRBase     = 0x6812
	GuestTRBase       = 0x6814
	GuestGDTRBase     = 0x6816
	GuestIDTRBase     = 0x6818
	GuestDR7          = 0x681a
	GuestRSP          = 0x681c
	GuestRIP          = 0x681e
	GuestRFLAGS       = 0x6820
	GuestPendingDbg   = 0x6822
	GuestSysenterESP  = 0x6824
	GuestSysenterEIP  = 0x6826
	HostCR0           = 0x6c00
	HostCR3           = 0x6c02
	HostCR4           = 0x6c04
	HostFSBase        = 0x6c06
	HostGSBase        = 0x6c08
	HostTRBase        = 0x6c0a
	HostGDTRBase      = 0x6c0c
	HostIDTRBase      = 0x6c0e
	HostSysenterESP   = 0x6c10
	HostSysenterEIP   = 0x6c12
	HostRSP           = 0x6c14
	HostRIP           = 0x6c16
)

// Field widths and types as the encoding spells them.
const (
	Width16      = 0
	Width64      = 1
	Width32      = 2
	WidthNatural = 3

	TypeControl  = 0
	TypeExitInfo = 1
	TypeGuest    = 2
	TypeHost     = 3
)

// fieldWidth and fieldType decode an encoding.
func fieldWidth(f uint32) int { return int(f>>13) & 3 }
func fieldType(f uint32) int  { return int(f>>10) & 3 }

// fieldNames names the fields for reports (an entry failure names the
// field that is wrong).
var fieldNames = map[uint32]string{
	VPID: "VPID", GuestESSel: "GUEST_ES_SELECTOR", GuestCSSel: "GUEST_CS_SELECTOR", GuestSSSel: "GUEST_SS_SELECTOR",
	GuestDSSel: "GUEST_DS_SELECTOR", GuestFSSel: "GUEST_FS_SELECTOR", GuestGSSel: "GUEST_GS_SELECTOR",
	GuestLDTRSel: "GUEST_LDTR_SELECTOR", GuestTRSel: "GUEST_TR_SELECTOR",
	HostESSel: "HOST_ES_SELECTOR", HostCSSel: "HOST_CS_SELECTOR", HostSSSel: "HOST_SS_SELECTOR", HostDSSel: "HOST_DS_SELECTOR",
	HostFSSel: "HOST_FS_SELECTOR", HostGSSel: "HOST_GS_SELECTOR", HostTRSel: "HOST_TR_SELECTOR",
	IOBitmapA: "IO_BITMAP_A", IOBitmapB: "IO_BITMAP_B", MSRBitmap: "MSR_BITMAP", ExitMSRStoreAddr: "VM_EXIT_MSR_STORE_ADDR",
	ExitMSRLoadAddr: "VM_EXIT_MSR_LOAD_ADDR", EntryMSRLoadAddr: "VM_ENTRY_MSR_LOAD_ADDR", TSCOffset: "TSC_OFFSET",
	EPTPointer: "EPT_POINTER", GuestPhysAddr: "GUEST_PHYSICAL_ADDRESS", VMCSLinkPointer: "VMCS_LINK_POINTER",
	GuestDebugCtl: "GUEST_IA32_DEBUGCTL", GuestPAT: "GUEST_IA32_PAT", GuestEFER: "GUEST_IA32_EFER",
	GuestPDPTE0: "GUEST_PDPTE0", GuestPDPTE1: "GUEST_PDPTE1", GuestPDPTE2: "GUEST_PDPTE2", GuestPDPTE3: "GUEST_PDPTE3",
	HostPAT: "HOST_IA32_PAT", HostEFER: "HOST_IA32_EFER",
	PinControls: "PIN_BASED_VM_EXEC_CONTROL", ProcControls: "CPU_BASED_VM_EXEC_CONTROL", ExceptionBitmap: "EXCEPTION_BITMAP",
	PFErrorMask: "PAGE_FAULT_ERROR_CODE_MASK", PFErrorMatch: "PAGE_FAULT_ERROR_CODE_MATCH", CR3TargetCount: "CR3_TARGET_COUNT",
	ExitControls: "VM_EXIT_CONTROLS", ExitMSRStoreCount: "VM_EXIT_MSR_STORE_COUNT", ExitMSRLoadCount: "VM_EXIT_MSR_LOAD_COUNT",
	EntryControls: "VM_ENTRY_CONTROLS", EntryMSRLoadCount: "VM_ENTRY_MSR_LOAD_COUNT", EntryIntrInfo: "VM_ENTRY_INTR_INFO_FIELD",
	EntryExcErrorCode: "VM_ENTRY_EXCEPTION_ERROR_CODE", EntryInstrLen: "VM_ENTRY_INSTRUCTION_LEN", TPRThreshold: "TPR_THRESHOLD", VirtualAPICPage: "VIRTUAL_APIC_PAGE_ADDR",
	ProcControls2: "SECONDARY_VM_EXEC_CONTROL",
	VMInstrError:  "VM_INSTRUCTION_ERROR", ExitReason: "VM_EXIT_REASON", ExitIntrInfo: "VM_EXIT_INTR_INFO",
	ExitIntrErrorCode: "VM_EXIT_INTR_ERROR_CODE", IDTVectInfo: "IDT_VECTORING_INFO_FIELD", IDTVectErrorCode: "IDT_VECTORING_ERROR_CODE",
	ExitInstrLen: "VM_EXIT_INSTRUCTION_LEN", ExitInstrInfo: "VMX_INSTRUCTION_INFO",
	GuestESLimit: "GUEST_ES_LIMIT", GuestCSLimit: "GUEST_CS_LIMIT", GuestSSLimit: "GUEST_SS_LIMIT", GuestDSLimit: "GUEST_DS_LIMIT",
	GuestFSLimit: "GUEST_FS_LIMIT", GuestGSLimit: "GUEST_GS_LIMIT", GuestLDTRLimit: "GUEST_LDTR_LIMIT", GuestTRLimit: "GUEST_TR_LIMIT",
	GuestGDTRLimit: "GUEST_GDTR_LIMIT", GuestIDTRLimit: "GUEST_IDTR_LIMIT",
	GuestESAR: "GUEST_ES_AR_BYTES", GuestCSAR: "GUEST_CS_AR_BYTES", GuestSSAR: "GUEST_SS_AR_BYTES", GuestDSAR: "GUEST_DS_AR_BYTES",
	GuestFSAR: "GUEST_FS_AR_BYTES", GuestGSAR: "GUEST_GS_AR_BYTES", GuestLDTRAR: "GUEST_LDTR_AR_BYTES", GuestTRAR: "GUEST_TR_AR_BYTES",
	GuestInterruptibility: "GUEST_INTERRUPTIBILITY_INFO", GuestActivityState: "GUEST_ACTIVITY_STATE",
	GuestSysenterCS: "GUEST_SYSENTER_CS", PreemptionTimer: "VMX_PREEMPTION_TIMER_VALUE", HostSysenterCS: "HOST_IA32_SYSENTER_CS",
	CR0GuestHostMask: "CR0_GUEST_HOST_MASK", CR4GuestHostMask: "CR4_GUEST_HOST_MASK", CR0ReadShadow: "CR0_READ_SHADOW",
	CR4ReadShadow: "CR4_READ_SHADOW", ExitQualification: "EXIT_QUALIFICATION", GuestLinearAddr: "GUEST_LINEAR_ADDRESS",
	GuestCR0: "GUEST_CR0", GuestCR3: "GUEST_CR3", GuestCR4: "GUEST_CR4",
	GuestESBase: "GUEST_ES_BASE", GuestCSBase: "GUEST_CS_BASE", GuestSSBase: "GUEST_SS_BASE", GuestDSBase: "GUEST_DS_BASE",
	GuestFSBase: "GUEST_FS_BASE", GuestGSBase: "GUEST_GS_BASE", GuestLDTRBase: "GUEST_LDTR_BASE", GuestTRBase: "GUEST_TR_BASE",
	GuestGDTRBase: "GUEST_GDTR_BASE", GuestIDTRBase: "GUEST_IDTR_BASE", GuestDR7: "GUEST_DR7", GuestRSP: "GUEST_RSP",
	GuestRIP: "GUEST_RIP", GuestRFLAGS: "GUEST_RFLAGS", GuestPendingDbg: "GUEST_PENDING_DBG_EXCEPTIONS",
	GuestSysenterESP: "GUEST_SYSENTER_ESP", GuestSysenterEIP: "GUEST_SYSENTER_EIP",
	HostCR0: "HOST_CR0", HostCR3: "HOST_CR3", HostCR4: "HOST_CR4", HostFSBase: "HOST_FS_BASE", HostGSBase: "HOST_GS_BASE",
	HostTRBase: "HOST_TR_BASE", HostGDTRBase: "HOST_GDTR_BASE", HostIDTRBase: "HOST_IDTR_BASE",
	HostSysenterESP: "HOST_IA32_SYSENTER_ESP", HostSysenterEIP: "HOST_IA32_SYSENTER_EIP", HostRSP: "HOST_RSP", HostRIP: "HOST_RIP",
}

// FieldName names a VMCS field.
func FieldName(f uint32) string {
	if n, ok := fieldNames[f]; ok {
		return n
	}
	return "field?"
}

// vmInstrErrors are the VM-instruction error numbers (SDM Vol. 3, 31.4).
var vmInstrErrors = [...]string{
	1: "VMCALL executed in VMX root operation", 2: "VMCLEAR with invalid physical address",
	3: "VMCLEAR with VMXON pointer", 4: "VMLAUNCH with non-clear VMCS", 5: "VMRESUME with non-launched VMCS",
	6: "VMRESUME after VMXOFF", 7: "VM entry with invalid control field(s)", 8: "VM entry with invalid host-state field(s)",
	9: "VMPTRLD with invalid physical address", 10: "VMPTRLD with VMXON pointer", 11: "VMPTRLD with incorrect VMCS revision identifier",
	12: "VMREAD/VMWRITE from/to unsupported VMCS component", 13: "VMWRITE to read-only VMCS component",
	15: "VMXON executed in VMX root operation", 16: "VM entry with invalid executive-VMCS pointer",
	17: "VM entry with non-launched executive VMCS", 18: "VM entry with executive-VMCS pointer not VMXON pointer",
	19: "VMCALL with non-clear VMCS", 20: "VMCALL with invalid VM-exit control fields", 22: "VMCALL with incorrect MSEG revision identifier",
	23: "VMXOFF under dual-monitor treatment of SMIs and SMM", 24: "VMCALL with invalid SMM-monitor features",
	25: "VM entry with invalid VM-execution control fields in executive VMCS", 26: "VM entry with events blocked by MOV SS",
	28: "Invalid operand to INVEPT/INVVPID",
}

// VMInstrErrorName names a VM-instruction error number.
func VMInstrErrorName(n uint64) string {
	if n < uint64(len(vmInstrErrors)) && vmInstrErrors[n] != "" {
		return vmInstrErrors[n]
	}
	return "unknown VM-instruction error"
}
