// Package tlfs holds the definitions of the Microsoft Hypervisor Top-Level
// Functional Specification (TLFS) that gohv speaks: CPUID leaves and
// bits, synthetic MSRs, hypercall codes and the hypercall control word,
// status codes, SynIC message and event layouts, timer and reference-TSC
// formats. Each name is the TLFS's (HV_X64_MSR_SIMP → MsrSIMP,
// HvCallPostMessage, HV_STATUS_INVALID_ALIGNMENT → StatusInvalidAlignment)
// so a reader can look it up, and each number and wire layout is pinned
// by a test against the specification's value.
//
// It imports only the standard library: the hypervisor, the root's VMBus
// server and a guest-side client all use it. Wire formats are
// little-endian; decoders take byte slices and never panic on their input.
package tlfs

// CPUID leaves of the hypervisor interface (TLFS 2.4, "Feature and
// Interface Discovery").
const (
	CPUIDVendorAndMaxFunction = 0x4000_0000 // EAX: highest leaf; EBX:ECX:EDX: "Microsoft Hv"
	CPUIDInterface            = 0x4000_0001 // EAX: "Hv#1"
	CPUIDVersion              = 0x4000_0002 // build, major.minor, service pack
	CPUIDFeatures             = 0x4000_0003 // EAX:EBX privilege mask, EDX feature flags
	CPUIDEnlightenmentInfo    = 0x4000_0004 // EAX recommendations, EBX spin-wait retries
	CPUIDImplementationLimits = 0x4000_0005 // EAX max VPs, EBX max LPs
	CPUIDHardwareFeatures     = 0x4000_0006 // hardware features in use by the hypervisor
)

// Vendor signature and interface identifier.
const (
	VendorSignature = "Microsoft Hv"
	// InterfaceSignature is "Hv#1" as CPUID 0x40000001.EAX reads it.
	InterfaceSignature = 0x3123_7648
)

// HV_PARTITION_PRIVILEGE_MASK, bits 31:0 (CPUID 0x40000003.EAX).
const (
	AccessVpRunTimeReg              = 1 << 0
	AccessPartitionReferenceCounter = 1 << 1
	AccessSynicRegs                 = 1 << 2
	AccessSyntheticTimerRegs        = 1 << 3
	AccessIntrCtrlRegs              = 1 << 4
	AccessHypercallMsrs             = 1 << 5
	AccessVpIndex                   = 1 << 6
	AccessResetReg                  = 1 << 7
	AccessStatsReg                  = 1 << 8
	AccessPartitionReferenceTsc     = 1 << 9
	AccessGuestIdleReg              = 1 << 10
	AccessFrequencyRegs             = 1 << 11
	AccessDebugRegs                 = 1 << 12
	AccessReenlightenmentControls   = 1 << 13
	AccessTscInvariantControls      = 1 << 15
)

// HV_PARTITION_PRIVILEGE_MASK, bits 63:32 (CPUID 0x40000003.EBX).
const (
	CreatePartitions  = 1 << 0
	AccessPartitionId = 1 << 1
	AccessMemoryPool  = 1 << 2
	PostMessages      = 1 << 4
	SignalEvents      = 1 << 5
	CreatePort        = 1 << 6
	ConnectPort       = 1 << 7
	AccessStats       = 1 << 8
	Debugging         = 1 << 11
	CpuManagement     = 1 << 12
	Isolation         = 1 << 22
)

// Feature flags (CPUID 0x40000003.EDX).
const (
	FeatureGuestDebugging        = 1 << 1
	FeatureXmmFastHypercallInput = 1 << 4
	FeatureFrequencyRegs         = 1 << 8
	FeatureGuestCrashRegs        = 1 << 10
	FeatureFastHypercallOutput   = 1 << 15
	FeatureSintPollingMode       = 1 << 17
	FeatureHypercallMsrLock      = 1 << 18
	FeatureDirectSyntheticTimers = 1 << 19
)

// Implementation recommendations (CPUID 0x40000004.EAX).
const (
	RecommendHypercallAddressSpaceSwitch = 1 << 0
	RecommendHypercallLocalFlush         = 1 << 1
	RecommendHypercallRemoteFlush        = 1 << 2
	RecommendApicMsrs                    = 1 << 3
	RecommendHvRegisterReset             = 1 << 4
	RecommendRelaxedTiming               = 1 << 5
	RecommendX2ApicMsrs                  = 1 << 8
	RecommendDeprecateAutoEoi            = 1 << 9
	RecommendSyntheticClusterIpi         = 1 << 10
	RecommendExProcessorMasks            = 1 << 11
)

// NeverNotifyLongSpinWait is the spin-wait retry count (CPUID
// 0x40000004.EBX) that tells a guest never to notify.
const NeverNotifyLongSpinWait = 0xffff_ffff
