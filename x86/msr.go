package x86

// Model-specific register indexes, named as the Intel SDM Vol. 4 (IA32_*)
// and the AMD APM Vol. 2 Appendix A name them.
const (
	MsrTSC              = 0x10  // IA32_TIME_STAMP_COUNTER
	MsrAPICBase         = 0x1b  // IA32_APIC_BASE
	MsrFeatureControl   = 0x3a  // IA32_FEATURE_CONTROL
	MsrTSCAdjust        = 0x3b  // IA32_TSC_ADJUST
	MsrSysenterCS       = 0x174 // IA32_SYSENTER_CS
	MsrSysenterESP      = 0x175 // IA32_SYSENTER_ESP
	MsrSysenterEIP      = 0x176 // IA32_SYSENTER_EIP
	MsrMiscEnable       = 0x1a0 // IA32_MISC_ENABLE
	MsrBIOSSignID       = 0x8b  // IA32_BIOS_SIGN_ID: the loaded microcode update's signature
	MsrPAT              = 0x277 // IA32_PAT
	MsrTSCDeadline      = 0x6e0 // IA32_TSC_DEADLINE
	MsrX2APICBase       = 0x800 // first of the x2APIC registers, 0x800-0x8ff
	MsrX2APICLast       = 0x8ff
	MsrEFER             = 0xc000_0080 // IA32_EFER
	MsrSTAR             = 0xc000_0081 // IA32_STAR
	MsrLSTAR            = 0xc000_0082 // IA32_LSTAR
	MsrCSTAR            = 0xc000_0083 // IA32_CSTAR
	MsrFMASK            = 0xc000_0084 // IA32_FMASK (SFMASK)
	MsrFSBase           = 0xc000_0100 // IA32_FS_BASE
	MsrGSBase           = 0xc000_0101 // IA32_GS_BASE
	MsrKernelGSBase     = 0xc000_0102 // IA32_KERNEL_GS_BASE
	MsrTSCAux           = 0xc000_0103 // IA32_TSC_AUX
	MsrAMDNBCfg         = 0xc001_001f // NB_CFG (AMD BKDG MSRC001_001F)
	MsrAMDVMCR          = 0xc001_0114 // VM_CR (APM Vol. 2 15.30.1)
	MsrAMDVMHsavePA     = 0xc001_0117 // VM_HSAVE_PA (APM Vol. 2 15.30.4)
	MsrVMXBasic         = 0x480       // IA32_VMX_BASIC
	MsrVMXPinbased      = 0x481       // IA32_VMX_PINBASED_CTLS
	MsrVMXProcbased     = 0x482       // IA32_VMX_PROCBASED_CTLS
	MsrVMXExit          = 0x483       // IA32_VMX_EXIT_CTLS
	MsrVMXEntry         = 0x484       // IA32_VMX_ENTRY_CTLS
	MsrVMXMisc          = 0x485       // IA32_VMX_MISC
	MsrVMXCR0Fixed0     = 0x486       // IA32_VMX_CR0_FIXED0
	MsrVMXCR0Fixed1     = 0x487       // IA32_VMX_CR0_FIXED1
	MsrVMXCR4Fixed0     = 0x488       // IA32_VMX_CR4_FIXED0
	MsrVMXCR4Fixed1     = 0x489       // IA32_VMX_CR4_FIXED1
	MsrVMXProcbased2    = 0x48b       // IA32_VMX_PROCBASED_CTLS2
	MsrVMXEPTVPIDCap    = 0x48c       // IA32_VMX_EPT_VPID_CAP
	MsrVMXTruePinbased  = 0x48d       // IA32_VMX_TRUE_PINBASED_CTLS
	MsrVMXTrueProcbased = 0x48e       // IA32_VMX_TRUE_PROCBASED_CTLS
	MsrVMXTrueExit      = 0x48f       // IA32_VMX_TRUE_EXIT_CTLS
	MsrVMXTrueEntry     = 0x490       // IA32_VMX_TRUE_ENTRY_CTLS
)

// IA32_STAR fields (SDM Vol. 3A 5.8.8; APM Vol. 2 6.1.1): SYSCALL loads CS
// from bits 47:32 (SS is that selector plus 8); SYSRET takes its selectors
// from bits 63:48.
const (
	STARSyscallCSShift = 32
	STARSysretCSShift  = 48
)

// IA32_MISC_ENABLE bits (SDM Vol. 4 Table 2-2).
const (
	MiscEnableFastStrings     = 1 << 0
	MiscEnableBTSUnavailable  = 1 << 11
	MiscEnablePEBSUnavailable = 1 << 12
	MiscEnableXDDisable       = 1 << 34
)

// IA32_APIC_BASE bits (SDM Vol. 3A 11.4.4).
const (
	APICBaseBSP      = 1 << 8  // the boot processor
	APICBaseEXTD     = 1 << 10 // x2APIC mode
	APICBaseEnable   = 1 << 11 // global enable
	APICBaseAddrMask = 0x000f_ffff_ffff_f000
	APICDefaultBase  = 0xfee0_0000
)

// IA32_FEATURE_CONTROL bits (SDM Vol. 4 Table 2-2).
const (
	FeatureControlLock          = 1 << 0
	FeatureControlVMXInSMX      = 1 << 1
	FeatureControlVMXOutsideSMX = 1 << 2
)

// VM_CR bits (APM Vol. 2 15.30.1).
const (
	VMCRLock   = 1 << 3
	VMCRSVMDis = 1 << 4
)

// PATReset is IA32_PAT after reset: WB, WT, UC-, UC in each half (SDM Vol.
// 3A 12.12.4).
const PATReset = 0x0007_0406_0007_0406

// PAT memory types (SDM Vol. 3A Table 12-10); 2 and 3 are reserved.
const (
	PATUC      = 0
	PATWC      = 1
	PATWT      = 4
	PATWP      = 5
	PATWB      = 6
	PATUCMinus = 7
)

// PATValid reports whether every entry of an IA32_PAT value is a defined
// memory type; writing anything else raises #GP.
func PATValid(v uint64) bool {
	for i := 0; i < 8; i++ {
		switch (v >> (8 * i)) & 0xff {
		case PATUC, PATWC, PATWT, PATWP, PATWB, PATUCMinus:
		default:
			return false
		}
	}
	return true
}
