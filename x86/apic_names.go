package x86

// x2APIC registers as MSRs (SDM Vol. 3A 11.12.1.2, Table 11-6; SDM Vol. 4
// Table 2-2 names them IA32_X2APIC_*). Each is MsrX2APICBase plus the xAPIC
// MMIO offset of the same register shifted right by 4; the registers with
// no MMIO twin (SELF_IPI) and the ones that have none in x2APIC mode (DFR,
// ICR high, APR, RRD) are why the list is spelled out rather than derived.
const (
	MsrX2APICID         = 0x802 // IA32_X2APIC_APICID, read-only
	MsrX2APICVersion    = 0x803 // IA32_X2APIC_VERSION, read-only
	MsrX2APICTPR        = 0x808 // IA32_X2APIC_TPR
	MsrX2APICPPR        = 0x80a // IA32_X2APIC_PPR, read-only
	MsrX2APICEOI        = 0x80b // IA32_X2APIC_EOI, write-only
	MsrX2APICLDR        = 0x80d // IA32_X2APIC_LDR, read-only
	MsrX2APICSIVR       = 0x80f // IA32_X2APIC_SIVR
	MsrX2APICISR0       = 0x810 // IA32_X2APIC_ISR0; ISR1-7 follow, read-only
	MsrX2APICTMR0       = 0x818 // IA32_X2APIC_TMR0; TMR1-7 follow, read-only
	MsrX2APICIRR0       = 0x820 // IA32_X2APIC_IRR0; IRR1-7 follow, read-only
	MsrX2APICESR        = 0x828 // IA32_X2APIC_ESR
	MsrX2APICLVTCMCI    = 0x82f // IA32_X2APIC_LVT_CMCI
	MsrX2APICICR        = 0x830 // IA32_X2APIC_ICR, 64 bits
	MsrX2APICLVTTimer   = 0x832 // IA32_X2APIC_LVT_TIMER
	MsrX2APICLVTThermal = 0x833 // IA32_X2APIC_LVT_THERMAL
	MsrX2APICLVTPMI     = 0x834 // IA32_X2APIC_LVT_PMI
	MsrX2APICLVTLINT0   = 0x835 // IA32_X2APIC_LVT_LINT0
	MsrX2APICLVTLINT1   = 0x836 // IA32_X2APIC_LVT_LINT1
	MsrX2APICLVTError   = 0x837 // IA32_X2APIC_LVT_ERROR
	MsrX2APICInitCount  = 0x838 // IA32_X2APIC_INIT_COUNT
	MsrX2APICCurCount   = 0x839 // IA32_X2APIC_CUR_COUNT, read-only
	MsrX2APICDivConf    = 0x83e // IA32_X2APIC_DIV_CONF
	MsrX2APICSelfIPI    = 0x83f // IA32_X2APIC_SELF_IPI, write-only
)
