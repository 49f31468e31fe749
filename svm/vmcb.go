package svm

// VMCB is one 4 KiB Virtual Machine Control Block (APM Vol. 2 App. B):
// the control area at 0x000 and the state-save area at 0x400. It lives in a
// physical page; the host reaches it through the physical map.
type VMCB [4096]byte

// Control area offsets (APM Vol. 2 Table B-1).
const (
	CtlInterceptCR        = 0x000 // reads bits 15:0, writes 31:16
	CtlInterceptDR        = 0x004
	CtlInterceptException = 0x008
	CtlInterceptMisc1     = 0x00c
	CtlInterceptMisc2     = 0x010
	CtlInterceptMisc3     = 0x014
	CtlPauseFilterThresh  = 0x03c
	CtlPauseFilterCount   = 0x03e
	CtlIOPMBasePA         = 0x040
	CtlMSRPMBasePA        = 0x048
	CtlTSCOffset          = 0x050
	CtlGuestASID          = 0x058
	CtlTLBControl         = 0x05c
	CtlVIntr              = 0x060 // V_TPR 7:0, V_IRQ 8, V_GIF 9, V_INTR_PRIO 19:16, V_IGN_TPR 20, V_INTR_MASKING 24, V_INTR_VECTOR 39:32
	CtlInterruptShadow    = 0x068
	CtlExitCode           = 0x070
	CtlExitInfo1          = 0x078
	CtlExitInfo2          = 0x080
	CtlExitIntInfo        = 0x088
	CtlNPEnable           = 0x090
	CtlAVICAPICBar        = 0x098
	CtlGHCBPA             = 0x0a0
	CtlEventInj           = 0x0a8
	CtlNCR3               = 0x0b0
	CtlLBRVirtEnable      = 0x0b8
	CtlVMCBClean          = 0x0c0
	CtlNRIP               = 0x0c8
	CtlGuestInsnBytesLen  = 0x0d0
	CtlGuestInsnBytes     = 0x0d1
)

// State-save area offsets (APM Vol. 2 Table B-2). Segment registers are
// 16 bytes: selector u16, attributes u16, limit u32, base u64.
const (
	SaveES           = 0x400
	SaveCS           = 0x410
	SaveSS           = 0x420
	SaveDS           = 0x430
	SaveFS           = 0x440
	SaveGS           = 0x450
	SaveGDTR         = 0x460
	SaveLDTR         = 0x470
	SaveIDTR         = 0x480
	SaveTR           = 0x490
	SaveCPL          = 0x4cb
	SaveEFER         = 0x4d0
	SaveCR4          = 0x548
	SaveCR3          = 0x550
	SaveCR0          = 0x558
	SaveDR7          = 0x560
	SaveDR6          = 0x568
	SaveRFLAGS       = 0x570
	SaveRIP          = 0x578
	SaveRSP          = 0x5d8
	SaveRAX          = 0x5f8
	SaveSTAR         = 0x600
	SaveLSTAR        = 0x608
	SaveCSTAR        = 0x610
	SaveSFMASK       = 0x618
	SaveKernelGSBase = 0x620
	SaveSysenterCS   = 0x628
	SaveSysenterESP  = 0x630
	SaveSysenterEIP  = 0x638
	SaveCR2          = 0x640
	SaveGPAT         = 0x668
	SaveDBGCTL       = 0x670
)

// CR intercepts (CtlInterceptCR): reads in bits 15:0, writes in 31:16.
const InterceptCR8Write = 1 << (16 + 8)

// EXITINFO1 of a MOV to CR intercept with decode assists (APM Vol. 2
// 15.33.1): bit 63 valid, bits 3:0 the source GPR.
const (
	CRInfoValid   = 1 << 63
	CRInfoGPRMask = 0xf
)

// Intercept bits in CtlInterceptMisc1 (APM Vol. 2 Table B-1, offset 0x0c).
const (
	InterceptINTR       = 1 << 0
	InterceptNMI        = 1 << 1
	InterceptSMI        = 1 << 2
	InterceptINIT       = 1 << 3
	InterceptVINTR      = 1 << 4
	InterceptRDTSC      = 1 << 14
	InterceptCPUID      = 1 << 18
	InterceptINVD       = 1 << 22
	InterceptPAUSE      = 1 << 23
	InterceptHLT        = 1 << 24
	InterceptINVLPGA    = 1 << 26
	InterceptIOIOProt   = 1 << 27
	InterceptMSRProt    = 1 << 28
	InterceptTaskSwitch = 1 << 29
	InterceptShutdown   = 1 << 31
)

// Intercept bits in CtlInterceptMisc2 (offset 0x10).
const (
	InterceptVMRUN   = 1 << 0
	InterceptVMMCALL = 1 << 1
	InterceptVMLOAD  = 1 << 2
	InterceptVMSAVE  = 1 << 3
	InterceptSTGI    = 1 << 4
	InterceptCLGI    = 1 << 5
	InterceptSKINIT  = 1 << 6
	InterceptRDTSCP  = 1 << 7
	InterceptICEBP   = 1 << 8
	InterceptWBINVD  = 1 << 9
	InterceptMONITOR = 1 << 10
	InterceptMWAIT   = 1 << 11
	InterceptXSETBV  = 1 << 13
)

// TLB_CONTROL values (offset 0x5c).
const (
	TLBControlNothing   = 0
	TLBControlFlushAll  = 1
	TLBControlFlushASID = 3
)

// V_INTR fields (offset 0x60).
const (
	VIntrTPRMask   = 0xf // V_TPR: the guest's CR8, which it writes without an exit under V_INTR_MASKING
	VIntrIRQ       = 1 << 8
	VIntrPrioShift = 16 // V_INTR_PRIO 19:16
	VIntrPrioMask  = 0xf << VIntrPrioShift
	VIntrIgnTPR    = 1 << 20
	VIntrMasking   = 1 << 24
	// V_INTR_VECTOR 39:32: the vector the guest takes for V_IRQ when the
	// VINTR intercept is off.
	VIntrVectorShift = 32
	VIntrVectorMask  = 0xff << VIntrVectorShift
)

// EXITINFO1 of a nested page fault (APM Vol. 2 15.25.6): the #PF-style
// error code of the access.
const (
	NPFPresent = 1 << 0
	NPFWrite   = 1 << 1
	NPFUser    = 1 << 2
	NPFFetch   = 1 << 4
)

// INTERRUPT_SHADOW (offset 0x68) bit 0: the guest is in an STI or MOV SS
// shadow.
const InterruptShadowActive = 1 << 0

// EVENTINJ (offset 0xa8) and EXITINTINFO (0x88) format, APM Vol. 2 15.20.
const (
	EventValid    = 1 << 31
	EventErrValid = 1 << 11
	EventTypeINTR = 0 << 8
	EventTypeNMI  = 2 << 8
	EventTypeExc  = 3 << 8
	EventTypeSoft = 4 << 8
	EventTypeMask = 7 << 8
)

// Exit codes (APM Vol. 2 Appendix C).
const (
	ExitCR0Read    = 0x000
	ExitCR0Write   = 0x010
	ExitCR8Write   = 0x018
	ExitExcpBase   = 0x040 // + vector
	ExitINTR       = 0x060
	ExitNMI        = 0x061
	ExitSMI        = 0x062
	ExitINIT       = 0x063
	ExitVINTR      = 0x064
	ExitRDTSC      = 0x06e
	ExitCPUID      = 0x072
	ExitIRET       = 0x074
	ExitINVD       = 0x076
	ExitPAUSE      = 0x077
	ExitHLT        = 0x078
	ExitINVLPGA    = 0x07a
	ExitIOIO       = 0x07b
	ExitMSR        = 0x07c
	ExitTaskSwitch = 0x07d
	ExitShutdown   = 0x07f
	ExitVMRUN      = 0x080
	ExitVMMCALL    = 0x081
	ExitVMLOAD     = 0x082
	ExitVMSAVE     = 0x083
	ExitSTGI       = 0x084
	ExitCLGI       = 0x085
	ExitSKINIT     = 0x086
	ExitRDTSCP     = 0x087
	ExitICEBP      = 0x088
	ExitWBINVD     = 0x089
	ExitMONITOR    = 0x08a
	ExitMWAIT      = 0x08b
	ExitXSETBV     = 0x08d
	ExitNPF        = 0x400
	ExitInvalid    = 0xffff_ffff_ffff_ffff // VMEXIT_INVALID: guest state failed VMRUN's checks
)

// IOIO EXITINFO1 bits (APM Vol. 2 15.10.2, Figure 15-2).
const (
	IOInfoIn     = 1 << 0
	IOInfoString = 1 << 2
	IOInfoRep    = 1 << 3
	IOInfoSz8    = 1 << 4
	IOInfoSz16   = 1 << 5
	IOInfoSz32   = 1 << 6
)

// Segment is a state-save segment register.
type Segment struct {
	Selector uint16
	Attrib   uint16 // type 3:0, S 4, DPL 6:5, P 7, AVL 8, L 9, D/B 10, G 11
	Limit    uint32
	Base     uint64
}

func (v *VMCB) SetSegment(off int, s Segment) {
	v.SetU16(off, s.Selector)
	v.SetU16(off+2, s.Attrib)
	v.SetU32(off+4, s.Limit)
	v.SetU64(off+8, s.Base)
}

func (v *VMCB) Segment(off int) Segment {
	return Segment{v.U16(off), v.U16(off + 2), v.U32(off + 4), v.U64(off + 8)}
}
