// Package amdvi drives an AMD-Vi IOMMU (an IVHD of the ACPI IVRS table)
// through its MMIO registers, in-memory device table, command buffer and
// event log, as the AMD I/O Virtualization Technology (IOMMU)
// Specification (AMD pub. 48882, revision 3.x) names them: the Device
// Table Base Address Register (MMIO Offset 0000h), the Command Buffer and
// Event Log Base Address Registers (0008h, 0010h), the IOMMU Control
// Register (0018h: IommuEn, EventLogEn, CmdBufEn), the Extended Feature
// Register (0030h), the command buffer and event log head and tail
// pointers (2000h-2018h) and the IOMMU Status Register (2020h); the
// Device Table Entry (2.2.2.1), the COMPLETION_WAIT, INVALIDATE_DEVTAB_ENTRY
// and INVALIDATE_IOMMU_ALL commands (2.4) and the event log entries,
// IO_PAGE_FAULT among them (2.5). It implements iommu.Unit: translation on
// with every device blocked, and the event log read as faults.
//
// The unit is reached through the Regs seam (the image: the IVHD's MMIO
// registers through metal's identity map; the tests: a fake that behaves
// like the spec and processes commands from the fake memory) and gets its
// tables through Pages, so the package imports nothing of metal.
//
// # Invariants
//
//   - Blocking is a device table in which every entry is V=1, TV=1,
//     Mode 4 over a page-table root that maps nothing (a zeroed 4 KiB
//     page), IR=0, IW=0 (2.2.2.1): the entry denies reads and writes
//     outright, and a walk would find no present entry either. A device
//     table entry with V=0 would let the device through untranslated, so
//     the table covers every device ID the IVHD names, rounded up to a
//     whole bus (Config.LastDeviceID).
//   - The table, the command buffer and the event log are written and
//     their base registers programmed with IommuEn, CmdBufEn and
//     EventLogEn clear; then EventLogEn and CmdBufEn are set, then
//     IommuEn; then the unit's caches are invalidated (INVALIDATE_IOMMU_ALL
//     where the Extended Feature Register has IASup, else
//     INVALIDATE_DEVTAB_ENTRY for every device ID of the table) and a
//     COMPLETION_WAIT stores a value to memory that BlockAll waits for.
//   - Every wait for the hardware is bounded (maxPolls reads) and a
//     timeout names the step and wraps ErrTimeout.
//   - No interrupt is enabled (EventIntEn, ComWaitIntEn clear): the event
//     log is polled through Faults.
//   - Event log entries are hardware-written: DecodeEvent decodes any
//     value (FuzzDecodeEvent), and the head and tail pointers are masked
//     to the log before use.
//
// QEMU 7.2's amd-iommu (hw/i386/amd_iommu.c), which the image tests run
// against, differs from the spec in ways this package allows for: it
// refuses a request with an IO_PAGE_FAULT only when the device table
// entry's IR/IW deny the access on a walk (Mode 1-6; with Mode 0, or a
// page-table entry that is not present, the request is refused without
// one), hence Mode 4 with IR=IW=0; it writes no event log entry at all
// (amdvi_log_event returns early: amdvi_test_mask is never zero), which
// Config.NoEventLog records and RecordsFaults reports; were it to log, it
// would encode the access in the GN and NX flags with I set instead of RW
// (DecodeEvent recognises that: an "interrupt request" outside the
// interrupt address range), name the device by devfn only, never move the
// Event Log Tail Pointer register (Faults then reads entries while they
// are not zero: StaleTail) and overflow after 16 entries (Faults restarts
// the log).
//
// Domains (domain.go) give a device a device table entry over an I/O page
// table in AMD's format, with a DomainID, INVALIDATE_DEVTAB_ENTRY,
// INVALIDATE_IOMMU_PAGES and a COMPLETION_WAIT.
//
// Interrupt remapping (intremap.go; iommu.Remapper) is turned on after
// BlockAll where the IVHD names the I/O APIC (Config.InterruptRemapping):
// every device table entry gets IV with IntCtl 00b (fixed and arbitrated
// interrupts aborted, no other message type passed); AllocInterrupt gives
// a device its own 2048-entry table (IntCtl 10b) with RemapEn only in the
// entries allocated to it, each change followed by
// INVALIDATE_INTERRUPT_TABLE (and INVALIDATE_DEVTAB_ENTRY where the entry
// changed) and an awaited COMPLETION_WAIT. QEMU 7.2 records no interrupt
// faults either (amdvi_mem_ir_write drops the request with a TODO).
//
// Not yet: guest virtual APIC (GAEn, 128-bit entries), the IVMD blocks'
// unity maps and exclusion ranges, the PPR log, the unit's MSI.
//
// # Concurrency
//
// A Unit is not safe for concurrent use.
package amdvi
