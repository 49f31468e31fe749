package vtd

// Register offsets and fields of a remapping unit, by the names of the
// Intel Virtualization Technology for Directed I/O Architecture
// Specification (revision 3.x; "VT-d 10.4.x" is its chapter 10, Register
// Descriptions). Every number here is pinned by regs_test.go.

// Regs is a remapping unit's register file: byte offsets from the DRHD's
// register base, accessed at their natural width (10.2: 32-bit registers
// as one dword, 64-bit registers as one qword). The image gives it the
// unit's MMIO page; the host tests a fake that behaves like the spec.
type Regs interface {
	Read32(off uint32) uint32
	Read64(off uint32) uint64
	Write32(off uint32, v uint32)
	Write64(off uint32, v uint64)
}

// Register offsets (VT-d 10.4, Table "Register Address Map"). The IOTLB
// registers and the fault recording registers have no fixed offset: the
// unit names them in ECAP_REG.IRO and CAP_REG.FRO.
const (
	VER_REG    = 0x00 // 10.4.1 Version Register (32)
	CAP_REG    = 0x08 // 10.4.2 Capability Register (64)
	ECAP_REG   = 0x10 // 10.4.3 Extended Capability Register (64)
	GCMD_REG   = 0x18 // 10.4.4 Global Command Register (32)
	GSTS_REG   = 0x1c // 10.4.5 Global Status Register (32)
	RTADDR_REG = 0x20 // 10.4.6 Root Table Address Register (64)
	CCMD_REG   = 0x28 // 10.4.7 Context Command Register (64)
	FSTS_REG   = 0x34 // 10.4.9 Fault Status Register (32)
	FECTL_REG  = 0x38 // 10.4.10 Fault Event Control Register (32)

	// Relative to ECAP_REG.IRO*16 (10.4.8).
	IVA_REG   = 0x0 // 10.4.8.2 Invalidate Address Register (64)
	IOTLB_REG = 0x8 // 10.4.8.1 IOTLB Invalidate Register (64)

	// FRCD_REG n is 16 bytes at CAP_REG.FRO*16 + 16*n (10.4.14).
	frcdSize = 16
)

// GCMD_REG and GSTS_REG bits (10.4.4, 10.4.5): a command bit and the
// status bit that reports it share a position.
const (
	GCMD_TE    = 1 << 31 // Translation Enable
	GCMD_SRTP  = 1 << 30 // Set Root Table Pointer (one-shot)
	GCMD_SFL   = 1 << 29 // Set Fault Log (one-shot)
	GCMD_EAFL  = 1 << 28 // Enable Advanced Fault Logging
	GCMD_WBF   = 1 << 27 // Write Buffer Flush (one-shot)
	GCMD_QIE   = 1 << 26 // Queued Invalidation Enable
	GCMD_IRE   = 1 << 25 // Interrupt Remapping Enable
	GCMD_SIRTP = 1 << 24 // Set Interrupt Remap Table Pointer (one-shot)
	GCMD_CFI   = 1 << 23 // Compatibility Format Interrupt

	GSTS_TES   = 1 << 31 // Translation Enable Status
	GSTS_RTPS  = 1 << 30 // Root Table Pointer Status
	GSTS_FLS   = 1 << 29 // Fault Log Status
	GSTS_AFLS  = 1 << 28 // Advanced Fault Logging Status
	GSTS_WBFS  = 1 << 27 // Write Buffer Flush Status
	GSTS_QIES  = 1 << 26 // Queued Invalidation Enable Status
	GSTS_IRES  = 1 << 25 // Interrupt Remapping Enable Status
	GSTS_IRTPS = 1 << 24 // Interrupt Remapping Table Pointer Status
	GSTS_CFIS  = 1 << 23 // Compatibility Format Interrupt Status

	// gcmdOneShot are the command bits that start an operation rather
	// than hold a state: 10.4.4's procedure clears them from the GSTS_REG
	// value before setting the one bit being changed, so a write never
	// repeats them.
	gcmdOneShot = GCMD_SRTP | GCMD_SFL | GCMD_WBF | GCMD_SIRTP
)

// RTADDR_REG fields (10.4.6).
const (
	RTADDR_RTA        = ^uint64(0xfff) // Root Table Address, 4 KiB aligned
	RTADDR_TTM_Shift  = 10             // Translation Table Mode, bits 11:10
	RTADDR_TTM_Legacy = 0              // legacy mode: root and context tables (3.4.2)
)

// CCMD_REG fields (10.4.7).
const (
	CCMD_ICC        = 1 << 63 // Invalidate Context-Cache: set to start, hardware clears when done
	CCMD_CIRG_Shift = 61      // Context Invalidation Request Granularity, bits 62:61
	CCMD_CAIG_Shift = 59      // Context Actual Invalidation Granularity, bits 60:59
	CCMD_Global     = 1       // granularity: global invalidation
)

// IOTLB_REG fields (10.4.8.1).
const (
	IOTLB_IVT        = 1 << 63 // Invalidate IOTLB: set to start, hardware clears when done
	IOTLB_IIRG_Shift = 60      // IOTLB Invalidation Request Granularity, bits 61:60
	IOTLB_IAIG_Shift = 57      // IOTLB Actual Invalidation Granularity, bits 58:57
	IOTLB_DR         = 1 << 49 // Drain Reads
	IOTLB_DW         = 1 << 48 // Drain Writes
	IOTLB_Global     = 1       // granularity: global invalidation
)

// FSTS_REG fields (10.4.9). PFO, AFO, APF, IQE, ICE and ITE are
// write-one-to-clear; PPF is read-only, set while any fault record holds a
// fault.
const (
	FSTS_PFO       = 1 << 0 // Primary Fault Overflow
	FSTS_PPF       = 1 << 1 // Primary Pending Fault
	FSTS_AFO       = 1 << 2 // Advanced Fault Overflow
	FSTS_APF       = 1 << 3 // Advanced Pending Fault
	FSTS_IQE       = 1 << 4 // Invalidation Queue Error
	FSTS_ICE       = 1 << 5 // Invalidation Completion Error
	FSTS_ITE       = 1 << 6 // Invalidation Time-out Error
	FSTS_FRI_Shift = 8      // Fault Record Index, bits 15:8

	fstsClear = FSTS_PFO | FSTS_AFO | FSTS_APF | FSTS_IQE | FSTS_ICE | FSTS_ITE
)

// FECTL_REG fields (10.4.10).
const (
	FECTL_IM = 1 << 31 // Interrupt Mask: no fault event interrupt is sent
	FECTL_IP = 1 << 30 // Interrupt Pending
)

// FRCD_REG fields (10.4.14): a 128-bit record, read as its low and high
// qwords. The low qword holds the faulting page (FI); the high qword the
// source, reason, type and the F bit (write one to clear the record).
const (
	FRCD_FI          = ^uint64(0xfff) // low qword: Fault Info, bits 63:12
	FRCD_SID_Mask    = 0xffff         // high qword: Source Identifier, bits 79:64
	FRCD_FR_Shift    = 32             // high qword: Fault Reason, bits 103:96
	FRCD_FR_Mask     = 0xff
	FRCD_T           = 1 << 62 // high qword: Type (bit 126): 1 read request, 0 write request
	FRCD_F           = 1 << 63 // high qword: Fault (bit 127)
	frcdHighOffset   = 8       // the high qword's offset in a record
	frcdFDwordOffset = 12      // the dword holding F (bits 127:96)
)

// Root entry (VT-d 9.1): 128 bits, 256 of them in the 4 KiB root table,
// indexed by bus number. Bit 0 is Present; bits 63:12 the context-table
// pointer. gohv leaves every entry zero: with P clear, every request from
// every device on that bus faults with reason 1h (7.1.3) and nothing is
// read from a context table, so none is allocated.
const (
	rootEntrySize    = 16
	rootTableEntries = 256
	RootEntry_P      = 1 << 0
)

// Context entry (VT-d 9.3): 128 bits, 256 of them in a 4 KiB context
// table, indexed by devfn (device<<3 | function). Low qword: Present,
// Fault Processing Disable, Translation Type (bits 3:2; 00b: untranslated
// requests through the second-level tables), the Second Level Page
// Translation Pointer (bits 63:12). High qword: Address Width (bits 2:0;
// 1: 39 bits, 3 levels; 2: 48 bits, 4 levels) and the Domain Identifier
// (bits 23:8).
const (
	contextEntrySize      = 16
	ContextEntry_P        = 1 << 0
	ContextEntry_FPD      = 1 << 1
	ContextEntry_TT       = 3 << 2
	ContextEntry_SLPT     = ^uint64(0xfff)
	ContextEntry_AW       = 7 // high qword
	ContextEntry_DIDShift = 8 // high qword, bits 23:8
	ContextEntry_DIDMask  = 0xffff
	RootEntry_CTP         = ^uint64(0xfff) // root entry: Context-table Pointer
	AW39, AW48            = 1, 2           // ContextEntry_AW values (SAGAW bits 1 and 2)
)

// CCMD_REG and IOTLB_REG fields of selective invalidation (10.4.7,
// 10.4.8.1), and the Invalidate Address Register (10.4.8.2).
const (
	CCMD_Domain     = 2      // CIRG: domain-selective
	CCMD_Device     = 3      // CIRG: device-selective
	CCMD_SID_Shift  = 16     // Source-ID, bits 31:16
	CCMD_FM_Shift   = 32     // Function Mask, bits 33:32
	IOTLB_Domain    = 2      // IIRG: domain-selective
	IOTLB_Page      = 3      // IIRG: page-selective within a domain
	IOTLB_DID_Shift = 32     // Domain-ID, bits 47:32
	IVA_AM_Mask     = 0x3f   // Address Mask, bits 5:0: 2^AM pages from ADDR
	IVA_IH          = 1 << 6 // Invalidation Hint: leaf entries only changed
	capMAMVShift    = 48     // CAP_REG Maximum Address Mask Value, bits 53:48
	capMAMVMask     = 0x3f
	capSLLPS2M      = 1 << 34 // CAP_REG Second Level Large Page Support: 2 MiB
)
