package amdvi

// Register offsets, fields and in-memory formats of an AMD-Vi IOMMU, by the
// names of the AMD I/O Virtualization Technology (IOMMU) Specification (AMD
// pub. 48882, revision 3.x: registers in 3.4, the device table entry in
// 2.2.2.1, commands in 2.4, events in 2.5). Every number here is pinned by
// regs_test.go.

// Regs is the unit's MMIO register file: byte offsets from the IVHD's
// IOMMU Base Address, every register accessed as one aligned qword. The
// image gives it the unit's MMIO window; the host tests a fake that
// behaves like the spec.
type Regs interface {
	Read64(off uint32) uint64
	Write64(off uint32, v uint64)
}

// MMIO offsets (3.4).
const (
	MMIO_DevTableBase  = 0x0000  // Device Table Base Address Register
	MMIO_CmdBufBase    = 0x0008  // Command Buffer Base Address Register
	MMIO_EventLogBase  = 0x0010  // Event Log Base Address Register
	MMIO_Control       = 0x0018  // IOMMU Control Register
	MMIO_ExclBase      = 0x0020  // IOMMU Exclusion Base Register
	MMIO_ExclLimit     = 0x0028  // IOMMU Exclusion Range Limit Register
	MMIO_ExtFeature    = 0x0030  // IOMMU Extended Feature Register
	MMIO_CmdBufHead    = 0x2000  // Command Buffer Head Pointer Register
	MMIO_CmdBufTail    = 0x2008  // Command Buffer Tail Pointer Register
	MMIO_EventLogHead  = 0x2010  // Event Log Head Pointer Register
	MMIO_EventLogTail  = 0x2018  // Event Log Tail Pointer Register
	MMIO_Status        = 0x2020  // IOMMU Status Register
	MMIOSize           = 0x4000  // the window the registers above need (16 KiB)
	mmioHeadTailOffset = 0x7fff0 // head and tail pointers: a byte offset, bits 18:4
)

// Device Table Base Address Register (MMIO Offset 0000h): the table's 4 KiB
// aligned base, bits 51:12, and its size in 4 KiB units minus one, bits
// 8:0 (at most 1FFh: 512 pages, 2 MiB, 65536 entries).
const (
	DevTabBase    = 0x000f_ffff_ffff_f000
	DevTabSizeMax = 0x1ff
)

// Command Buffer and Event Log Base Address Registers (MMIO Offsets 0008h,
// 0010h): the 4 KiB aligned base, bits 51:12, and the length as log2 of the
// number of 16-byte entries, bits 59:56 (ComLen, EventLen; 1000b, 256
// entries in 4 KiB, is the smallest).
const (
	BufBase     = 0x000f_ffff_ffff_f000
	BufLenShift = 56
	BufLenMin   = 8
)

// IOMMU Control Register (MMIO Offset 0018h).
const (
	Ctl_IommuEn      = 1 << 0  // the IOMMU translates and checks requests
	Ctl_HtTunEn      = 1 << 1  // HyperTransport tunnel translation
	Ctl_EventLogEn   = 1 << 2  // events are written to the event log
	Ctl_EventIntEn   = 1 << 3  // an interrupt on each event
	Ctl_ComWaitIntEn = 1 << 4  // an interrupt on COMPLETION_WAIT with I=1
	Ctl_CmdBufEn     = 1 << 12 // commands are fetched from the command buffer
	Ctl_PPRLogEn     = 1 << 13
	Ctl_PPRIntEn     = 1 << 14
	Ctl_GAEn         = 1 << 17 // guest virtual APIC
)

// IOMMU Extended Feature Register (MMIO Offset 0030h), the bits used; it is
// meaningful where the IOMMU capability header's EFRSup is set and reads
// as reserved (zero) otherwise, which this package treats as "no feature".
const (
	EFR_PreFSup  = 1 << 0 // PREFETCH_IOMMU_PAGES
	EFR_PPRSup   = 1 << 1
	EFR_GTSup    = 1 << 4
	EFR_IASup    = 1 << 6 // INVALIDATE_IOMMU_ALL
	EFR_GASup    = 1 << 7
	EFR_HESup    = 1 << 8
	EFR_HATSMask = 3 << 10 // host address translation size: 00b 4 levels, 01b 5, 10b 6
)

// IOMMU Status Register (MMIO Offset 2020h). EventOverflow, EventLogInt and
// ComWaitInt are write-one-to-clear; the Run bits are read-only and follow
// the control register as the unit starts and stops.
const (
	Sts_EventOverflow = 1 << 0
	Sts_EventLogInt   = 1 << 1
	Sts_ComWaitInt    = 1 << 2
	Sts_EventLogRun   = 1 << 3
	Sts_CmdBufRun     = 1 << 4

	stsClear = Sts_EventOverflow | Sts_EventLogInt | Sts_ComWaitInt
)

// Device Table Entry (2.2.2.1): 256 bits, as four qwords; the table is
// indexed by DeviceID (bus<<8 | device<<3 | function).
const (
	DTESize          = 32
	DTE_V            = 1 << 0                // qword 0: the entry is valid
	DTE_TV           = 1 << 1                // qword 0: the translation fields are valid
	DTE_ModeShift    = 9                     // qword 0: Mode, bits 11:9: 0 no translation, 1-6 page-table levels
	DTE_PtRoot       = 0x000f_ffff_ffff_f000 // qword 0: Page Table Root Pointer, bits 51:12
	DTE_IR           = 1 << 61               // qword 0: reads permitted
	DTE_IW           = 1 << 62               // qword 0: writes permitted
	DTE_DomainIDMask = 0xffff                // qword 1: DomainID, bits 79:64
	DTE_IV           = 1 << 0                // qword 2: interrupt map valid (bit 128)
	dteBlockMode     = 4                     // the Mode gohv's blocking entries use: four levels, every unit's minimum
	devicesPerBus    = 256
)

// Commands (2.4): 128 bits, the opcode in bits 63:60 of the first qword.
const (
	CmdSize                   = 16
	CmdOpShift                = 60
	CMD_COMPLETION_WAIT       = 0x1 // 2.4.1
	CMD_INVALIDATE_DEVTAB     = 0x2 // 2.4.2 INVALIDATE_DEVTAB_ENTRY
	CMD_INVALIDATE_IOMMU_PAGE = 0x3 // 2.4.3
	CMD_INVALIDATE_IOTLB_PAGE = 0x4 // 2.4.4
	CMD_INVALIDATE_INT_TABLE  = 0x5 // 2.4.5
	CMD_INVALIDATE_IOMMU_ALL  = 0x8 // 2.4.8

	// COMPLETION_WAIT, first qword: S (store the second qword at the
	// Store Address when every earlier command is done), I (interrupt),
	// F (flush queue); the Store Address, 8-byte aligned, in bits 51:3.
	CW_S         = 1 << 0
	CW_I         = 1 << 1
	CW_F         = 1 << 2
	CW_StoreAddr = 0x000f_ffff_ffff_fff8
)

// Event log entries (2.5): 128 bits, read as two qwords. The first holds
// the DeviceID in bits 15:0, the event's flags in bits 59:48 and its
// EventCode in bits 63:60; the second the address the event concerns.
const (
	EventSize        = 16
	EventCodeShift   = 60
	EventFlagsShift  = 48
	EventFlagsMask   = 0xfff
	EventDomainShift = 32 // IO_PAGE_FAULT: DomainID, bits 47:32
	EventDeviceMask  = 0xffff

	ILLEGAL_DEV_TABLE_ENTRY = 0x1 // 2.5.2
	IO_PAGE_FAULT           = 0x2 // 2.5.3
	DEV_TAB_HARDWARE_ERROR  = 0x3 // 2.5.4
	PAGE_TAB_HARDWARE_ERROR = 0x4 // 2.5.5
	ILLEGAL_COMMAND_ERROR   = 0x5 // 2.5.6
	COMMAND_HARDWARE_ERROR  = 0x6 // 2.5.7
	IOTLB_INV_TIMEOUT       = 0x7 // 2.5.8
	INVALID_DEVICE_REQUEST  = 0x8 // 2.5.9

	// IO_PAGE_FAULT flags (2.5.3), relative to bit 48 of the first qword.
	EvFlag_GN = 1 << 0 // guest (PASID) address
	EvFlag_NX = 1 << 1 // no-execute violation
	EvFlag_US = 1 << 2 // user/supervisor
	EvFlag_I  = 1 << 3 // the request was an interrupt request
	EvFlag_PR = 1 << 4 // the page was present
	EvFlag_RW = 1 << 5 // a write transaction
	EvFlag_PE = 1 << 6 // permission violation
	EvFlag_RZ = 1 << 7 // reserved bit not zero
	EvFlag_TR = 1 << 8 // a translation request
)

// The interrupt address range (2.2.5, the MSI window at 0xFEE0_0000): an
// interrupt request's address lies in it.
const (
	intrAddrFirst = 0xfee0_0000
	intrAddrLast  = 0xfeef_ffff
)

// I/O page-table entries for host translation (2.2.3): a PDE points at the
// next table, a PTE maps a page. Both have PR (bit 0), Next Level (bits
// 11:9: a PDE the level of the table it points at; 000b a PTE whose page
// size is its level's: 4 KiB at level 1, 2 MiB at level 2), the address
// (bits 51:12), IR (61) and IW (62); a request needs IR or IW at every
// level of its walk, the DTE's included.
const (
	PTE_PR               = 1 << 0
	PTE_NextLevel        = 7 << 9
	PTE_NextShift        = 9
	PTE_Addr             = 0x000f_ffff_ffff_f000
	PTE_IR               = 1 << 61
	PTE_IW               = 1 << 62
	ptLevels             = 4 // the Mode of gohv's domains: 48-bit IOVAs, every unit's minimum
	ptEntries            = 512
	INVALIDATE_ALL_PAGES = 0x7fff_ffff_ffff_f000 // INVALIDATE_IOMMU_PAGES address with S=1: every page (2.4.3)
)

// INVALIDATE_IOMMU_PAGES (2.4.3): DomainID in bits 47:32 of the first
// qword; in the second S (bit 0: a range, its size by the lowest clear
// address bit from 12), PDE (bit 1: cached directory entries too) and the
// address (bits 63:12).
const (
	InvPages_DomainShift = 32
	InvPages_S           = 1 << 0
	InvPages_PDE         = 1 << 1
)
