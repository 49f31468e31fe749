package tlfs

// Synthetic MSRs (TLFS Appendix, "Hypervisor Synthetic MSRs"; HV_X64_MSR_*).
const (
	MsrGuestOSID           = 0x4000_0000 // HV_X64_MSR_GUEST_OS_ID
	MsrHypercall           = 0x4000_0001 // HV_X64_MSR_HYPERCALL
	MsrVPIndex             = 0x4000_0002 // HV_X64_MSR_VP_INDEX
	MsrReset               = 0x4000_0003 // HV_X64_MSR_RESET
	MsrVPRuntime           = 0x4000_0010 // HV_X64_MSR_VP_RUNTIME
	MsrTimeRefCount        = 0x4000_0020 // HV_X64_MSR_TIME_REF_COUNT
	MsrReferenceTSC        = 0x4000_0021 // HV_X64_MSR_REFERENCE_TSC
	MsrTSCFrequency        = 0x4000_0022 // HV_X64_MSR_TSC_FREQUENCY
	MsrAPICFrequency       = 0x4000_0023 // HV_X64_MSR_APIC_FREQUENCY
	MsrEOI                 = 0x4000_0070 // HV_X64_MSR_EOI
	MsrICR                 = 0x4000_0071 // HV_X64_MSR_ICR
	MsrTPR                 = 0x4000_0072 // HV_X64_MSR_TPR
	MsrVPAssistPage        = 0x4000_0073 // HV_X64_MSR_VP_ASSIST_PAGE
	MsrSControl            = 0x4000_0080 // HV_X64_MSR_SCONTROL
	MsrSVersion            = 0x4000_0081 // HV_X64_MSR_SVERSION
	MsrSIEFP               = 0x4000_0082 // HV_X64_MSR_SIEFP
	MsrSIMP                = 0x4000_0083 // HV_X64_MSR_SIMP
	MsrEOM                 = 0x4000_0084 // HV_X64_MSR_EOM
	MsrSINT0               = 0x4000_0090 // HV_X64_MSR_SINT0; SINTn at MsrSINT0+n
	MsrSINT15              = 0x4000_009f
	MsrSTimer0Config       = 0x4000_00b0 // HV_X64_MSR_STIMER0_CONFIG; timer n at +2n
	MsrSTimer0Count        = 0x4000_00b1 // HV_X64_MSR_STIMER0_COUNT; timer n at +2n
	MsrSTimer3Count        = 0x4000_00b7
	MsrGuestIdle           = 0x4000_00f0 // HV_X64_MSR_GUEST_IDLE
	MsrCrashP0             = 0x4000_0100 // HV_X64_MSR_CRASH_P0; Pn at +n
	MsrCrashP4             = 0x4000_0104
	MsrCrashCtl            = 0x4000_0105 // HV_X64_MSR_CRASH_CTL
	MsrTSCInvariantControl = 0x4000_0118 // HV_X64_MSR_TSC_INVARIANT_CONTROL

	// MsrRangeFirst and MsrRangeLast bound the synthetic MSRs: the
	// hypervisor answers every MSR in between, raising #GP for those it
	// does not implement.
	MsrRangeFirst = 0x4000_0000
	MsrRangeLast  = 0x4000_01ff // through the crash and TSC-invariant MSRs
)

// SINT and STIMER counts per virtual processor.
const (
	SINTCount   = 16
	STimerCount = 4
)

// Bits of HV_X64_MSR_HYPERCALL, HV_X64_MSR_SIMP, HV_X64_MSR_SIEFP,
// HV_X64_MSR_REFERENCE_TSC and HV_X64_MSR_VP_ASSIST_PAGE: an enable bit and
// the guest page frame of the overlay page.
const (
	OverlayEnable    = 1 << 0
	HypercallLocked  = 1 << 1 // HV_X64_MSR_HYPERCALL only
	OverlayGPFNShift = 12
)

// SCONTROL and SINTx bits (TLFS 11.8).
const (
	SControlEnable = 1 << 0

	SINTVectorMask = 0xff
	SINTMasked     = 1 << 16
	SINTAutoEOI    = 1 << 17
	SINTPolling    = 1 << 18
	// SINTReset is a SINT register after reset: masked, vector 0.
	SINTReset = SINTMasked
)

// SVersion is the SynIC version HV_X64_MSR_SVERSION reads.
const SVersion = 1

// STIMERx_CONFIG bits (TLFS 12.5).
const (
	STimerEnable      = 1 << 0
	STimerPeriodic    = 1 << 1
	STimerLazy        = 1 << 2
	STimerAutoEnable  = 1 << 3
	STimerVectorShift = 4 // APIC vector for direct mode, bits 11:4
	STimerVectorMask  = 0xff << STimerVectorShift
	STimerDirectMode  = 1 << 12
	STimerSINTShift   = 16 // SINT for message mode, bits 19:16
	STimerSINTMask    = 0xf << STimerSINTShift
)

// HV_X64_MSR_CRASH_CTL bits.
const (
	CrashNotify  = 1 << 63
	CrashMessage = 1 << 62 // P3 is a message GPA and P4 its length
)
