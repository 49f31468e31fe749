// Package vtd drives an Intel VT-d DMA remapping unit (a DRHD of the ACPI
// DMAR table) through its registers, as the Intel Virtualization
// Technology for Directed I/O Architecture Specification names them
// (GCMD_REG, GSTS_REG, RTADDR_REG, CCMD_REG, IOTLB_REG, FSTS_REG,
// FRCD_REG…; sections cited are revision 3.x's). It implements
// iommu.Unit: translation on with every device blocked, and the fault
// records read and cleared.
//
// The unit is reached through the Regs seam (the image: the register
// base's MMIO page through metal's identity map; the tests: a fake that
// behaves like the spec) and gets table memory through Pages, so the
// package imports nothing of metal and runs its logic on the host.
//
// # Invariants
//
//   - Blocking is a root table of 256 entries with P clear (VT-d 9.1): a
//     request from any bus faults with reason 1h before any context
//     table is read, so no context table exists. The table is one 4 KiB
//     page the unit reads by DMA, written back from the CPU's caches for a
//     unit that does not snoop them (ECAP_REG.C clear, as QEMU's); it
//     stays allocated for the unit's life.
//   - Every GCMD_REG write changes one command, writing back the others
//     as GSTS_REG reports them with the one-shot bits cleared (10.4.4).
//   - The root table pointer is set, then the context cache and the
//     IOTLB are invalidated globally, before translation is enabled
//     (6.5, 10.4.7, 10.4.8): through the registers at the first BlockAll;
//     then, on a unit with ECAP_REG.QI, the invalidation queue is enabled
//     (queue.go) and every later invalidation is a queued descriptor with
//     an awaited wait descriptor, as 6.5.2 requires once QIE is set.
//   - Every wait for the hardware is bounded (maxPolls reads) and a
//     timeout names the step and wraps ErrTimeout.
//   - The fault event interrupt is masked (FECTL_REG.IM): faults are read
//     by polling Faults, never delivered as an interrupt gohv has no
//     handler for.
//   - Fault records are hardware-written: DecodeFault decodes any value
//     (FuzzDecodeFault).
//
// Domains (domain.go) give a device a context entry over a second-level
// table built by package ept (the formats agree; the doc comment of
// Domain says where they differ), with a domain ID and context-cache and
// IOTLB invalidation, queued or through the registers.
//
// Interrupt remapping (intremap.go; iommu.Remapper) is turned on after
// BlockAll on a unit with ECAP_REG.IR: a one-page table of 256 entries,
// all not present, IRTA_REG, SIRTP, a global interrupt entry cache
// invalidation through the queue, CFI clear, IRE; then every interrupt
// request of every device is blocked (faults 20h-26h, decoded as
// interrupt faults with the index) but those naming an entry
// AllocInterrupt wrote for that requester ID, each followed by an
// index-selective interrupt entry cache invalidation that is awaited.
//
// Not yet: RMRR identity maps (a device the firmware keeps doing DMA for,
// such as a USB controller's legacy emulation, is blocked too), x2APIC
// destinations above 255 (IRTA_REG.EIME), posted interrupts, scalable
// mode.
//
// # Concurrency
//
// A Unit is not safe for concurrent use.
package vtd
