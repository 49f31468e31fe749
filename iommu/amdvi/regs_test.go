package amdvi

import "testing"

// TestRegisterNumbers pins every offset, field and format against the AMD
// I/O Virtualization Technology (IOMMU) Specification (AMD pub. 48882,
// revision 3.x).
func TestRegisterNumbers(t *testing.T) {
	for _, c := range []struct {
		name      string
		got, want uint64
	}{
		{"MMIO Offset 0000h Device Table Base Address", MMIO_DevTableBase, 0x0000},
		{"MMIO Offset 0008h Command Buffer Base Address", MMIO_CmdBufBase, 0x0008},
		{"MMIO Offset 0010h Event Log Base Address", MMIO_EventLogBase, 0x0010},
		{"MMIO Offset 0018h IOMMU Control", MMIO_Control, 0x0018},
		{"MMIO Offset 0020h Exclusion Base", MMIO_ExclBase, 0x0020},
		{"MMIO Offset 0028h Exclusion Range Limit", MMIO_ExclLimit, 0x0028},
		{"MMIO Offset 0030h Extended Feature", MMIO_ExtFeature, 0x0030},
		{"MMIO Offset 2000h Command Buffer Head Pointer", MMIO_CmdBufHead, 0x2000},
		{"MMIO Offset 2008h Command Buffer Tail Pointer", MMIO_CmdBufTail, 0x2008},
		{"MMIO Offset 2010h Event Log Head Pointer", MMIO_EventLogHead, 0x2010},
		{"MMIO Offset 2018h Event Log Tail Pointer", MMIO_EventLogTail, 0x2018},
		{"MMIO Offset 2020h IOMMU Status", MMIO_Status, 0x2020},
		{"MMIO window", MMIOSize, 0x4000},
		{"head/tail pointer bits 18:4", mmioHeadTailOffset, 0x7fff0},
		{"DevTabBase bits 51:12", DevTabBase, 0x000f_ffff_ffff_f000},
		{"DevTab Size bits 8:0", DevTabSizeMax, 0x1ff},
		{"full device table (Size 1FFh)", (DevTabSizeMax + 1) * 4096, 2 << 20},
		{"full device table entries", (DevTabSizeMax + 1) * 4096 / DTESize, 65536},
		{"ComBase/EventBase bits 51:12", BufBase, 0x000f_ffff_ffff_f000},
		{"ComLen/EventLen bits 59:56", BufLenShift, 56},
		{"ComLen/EventLen minimum 1000b", BufLenMin, 8},
		{"4 KiB buffer", bufBytes, 4096},
		{"IommuEn", Ctl_IommuEn, 1 << 0},
		{"HtTunEn", Ctl_HtTunEn, 1 << 1},
		{"EventLogEn", Ctl_EventLogEn, 1 << 2},
		{"EventIntEn", Ctl_EventIntEn, 1 << 3},
		{"ComWaitIntEn", Ctl_ComWaitIntEn, 1 << 4},
		{"CmdBufEn", Ctl_CmdBufEn, 1 << 12},
		{"PPRLogEn", Ctl_PPRLogEn, 1 << 13},
		{"PPRIntEn", Ctl_PPRIntEn, 1 << 14},
		{"GAEn", Ctl_GAEn, 1 << 17},
		{"EFR PreFSup", EFR_PreFSup, 1 << 0},
		{"EFR PPRSup", EFR_PPRSup, 1 << 1},
		{"EFR GTSup", EFR_GTSup, 1 << 4},
		{"EFR IASup", EFR_IASup, 1 << 6},
		{"EFR GASup", EFR_GASup, 1 << 7},
		{"EFR HESup", EFR_HESup, 1 << 8},
		{"EFR HATS bits 11:10", EFR_HATSMask, 0xc00},
		{"EventOverflow", Sts_EventOverflow, 1 << 0},
		{"EventLogInt", Sts_EventLogInt, 1 << 1},
		{"ComWaitInt", Sts_ComWaitInt, 1 << 2},
		{"EventLogRun", Sts_EventLogRun, 1 << 3},
		{"CmdBufRun", Sts_CmdBufRun, 1 << 4},
		{"DTE size (256 bits)", DTESize, 32},
		{"DTE V", DTE_V, 1 << 0},
		{"DTE TV", DTE_TV, 1 << 1},
		{"DTE Mode bits 11:9", DTE_ModeShift, 9},
		{"DTE Page Table Root Pointer bits 51:12", DTE_PtRoot, 0x000f_ffff_ffff_f000},
		{"DTE IR bit 61", DTE_IR, 1 << 61},
		{"DTE IW bit 62", DTE_IW, 1 << 62},
		{"DTE DomainID bits 79:64", DTE_DomainIDMask, 0xffff},
		{"DTE IV bit 128", DTE_IV + 128, 129},
		{"blocking Mode (4 levels)", dteBlockMode, 4},
		{"DTEs per 4 KiB", 4096 / DTESize, 128},
		{"command size", CmdSize, 16},
		{"command opcode bits 63:60", CmdOpShift, 60},
		{"COMPLETION_WAIT", CMD_COMPLETION_WAIT, 0x1},
		{"INVALIDATE_DEVTAB_ENTRY", CMD_INVALIDATE_DEVTAB, 0x2},
		{"INVALIDATE_IOMMU_PAGES", CMD_INVALIDATE_IOMMU_PAGE, 0x3},
		{"INVALIDATE_IOTLB_PAGES", CMD_INVALIDATE_IOTLB_PAGE, 0x4},
		{"INVALIDATE_INTERRUPT_TABLE", CMD_INVALIDATE_INT_TABLE, 0x5},
		{"INVALIDATE_IOMMU_ALL", CMD_INVALIDATE_IOMMU_ALL, 0x8},
		{"COMPLETION_WAIT S", CW_S, 1 << 0},
		{"COMPLETION_WAIT I", CW_I, 1 << 1},
		{"COMPLETION_WAIT F", CW_F, 1 << 2},
		{"COMPLETION_WAIT Store Address bits 51:3", CW_StoreAddr, 0x000f_ffff_ffff_fff8},
		{"event size", EventSize, 16},
		{"EventCode bits 63:60", EventCodeShift, 60},
		{"event flags bits 59:48", EventFlagsShift, 48},
		{"event flags width", EventFlagsMask, 0xfff},
		{"IO_PAGE_FAULT DomainID bits 47:32", EventDomainShift, 32},
		{"ILLEGAL_DEV_TABLE_ENTRY", ILLEGAL_DEV_TABLE_ENTRY, 0x1},
		{"IO_PAGE_FAULT", IO_PAGE_FAULT, 0x2},
		{"DEV_TAB_HARDWARE_ERROR", DEV_TAB_HARDWARE_ERROR, 0x3},
		{"PAGE_TAB_HARDWARE_ERROR", PAGE_TAB_HARDWARE_ERROR, 0x4},
		{"ILLEGAL_COMMAND_ERROR", ILLEGAL_COMMAND_ERROR, 0x5},
		{"COMMAND_HARDWARE_ERROR", COMMAND_HARDWARE_ERROR, 0x6},
		{"IOTLB_INV_TIMEOUT", IOTLB_INV_TIMEOUT, 0x7},
		{"INVALID_DEVICE_REQUEST", INVALID_DEVICE_REQUEST, 0x8},
		// IO_PAGE_FAULT flags at bits 59:48 of the first qword (bits
		// 27:16 of its second dword: GN 16, NX 17, US 18, I 19, PR 20,
		// RW 21, PE 22, RZ 23, TR 24).
		{"GN bit 48", EvFlag_GN << EventFlagsShift, 1 << 48},
		{"NX bit 49", EvFlag_NX << EventFlagsShift, 1 << 49},
		{"US bit 50", EvFlag_US << EventFlagsShift, 1 << 50},
		{"I bit 51", EvFlag_I << EventFlagsShift, 1 << 51},
		{"PR bit 52", EvFlag_PR << EventFlagsShift, 1 << 52},
		{"RW bit 53", EvFlag_RW << EventFlagsShift, 1 << 53},
		{"PE bit 54", EvFlag_PE << EventFlagsShift, 1 << 54},
		{"RZ bit 55", EvFlag_RZ << EventFlagsShift, 1 << 55},
		{"TR bit 56", EvFlag_TR << EventFlagsShift, 1 << 56},
		{"interrupt range first", intrAddrFirst, 0xfee00000},
		{"interrupt range last", intrAddrLast, 0xfeefffff},
	} {
		if c.got != c.want {
			t.Errorf("%s = %#x, want %#x", c.name, c.got, c.want)
		}
	}
}

// TestQEMUEFR: QEMU 7.2's Extended Feature Register has IASup, so BlockAll
// invalidates with one INVALIDATE_IOMMU_ALL there.
func TestQEMUEFR(t *testing.T) {
	if qemuEFR&EFR_IASup == 0 || qemuEFR&EFR_HATSMask != 2<<10 {
		t.Fatalf("EFR %#x", qemuEFR)
	}
}

// TestPageTableNumbers pins the I/O page-table entry (2.2.3) and the
// INVALIDATE_IOMMU_PAGES fields (2.4.3) domains use.
func TestPageTableNumbers(t *testing.T) {
	for _, c := range []struct {
		name      string
		got, want uint64
	}{
		{"PTE PR", PTE_PR, 1 << 0},
		{"PTE Next Level (11:9)", PTE_NextLevel, 0xe00},
		{"PTE Next Level shift", PTE_NextShift, 9},
		{"PTE address (51:12)", PTE_Addr, 0x000f_ffff_ffff_f000},
		{"PTE IR", PTE_IR, 1 << 61},
		{"PTE IW", PTE_IW, 1 << 62},
		{"INVALIDATE_IOMMU_PAGES DomainID (47:32)", InvPages_DomainShift, 32},
		{"INVALIDATE_IOMMU_PAGES S", InvPages_S, 1 << 0},
		{"INVALIDATE_IOMMU_PAGES PDE", InvPages_PDE, 1 << 1},
		{"every page with S=1", INVALIDATE_ALL_PAGES, 0x7fff_ffff_ffff_f000},
	} {
		if c.got != c.want {
			t.Errorf("%s = %#x, want %#x", c.name, c.got, c.want)
		}
	}
}
