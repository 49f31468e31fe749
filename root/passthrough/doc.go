// Package passthrough gives a host PCI function to a child partition, the
// way Hyper-V's Discrete Device Assignment does: the root moves the
// function from the blocked state into an IOMMU domain that maps exactly
// the partition's RAM at its guest-physical addresses, maps the
// function's memory BARs into the partition's guest-physical space
// through the nested page tables, and presents its configuration space
// to the guest (root/devices' configuration ports, at bus 0 device N
// function 0) with every write that could reach outside the partition
// filtered or virtualized. On release — the partition has stopped, its
// memory not yet freed — the function is reset and blocked again.
//
// # What the guest sees and may change
//
//   - IDs, class, revision, header type, subsystem IDs, interrupt pin and
//     the capability list read as the host's, but that the list skips
//     MSI-X while it is not routed (the capability before it points past
//     it; the capabilities pointer does when MSI-X is first), so a driver
//     falls back to MSI rather than enable a table nothing delivers. The
//     unlinked capability still reads as its shadow at its own offset.
//     The expansion ROM BAR, BIST and I/O BARs read 0 (I/O BARs are not
//     passed through).
//   - Command: the guest's bits are virtual and read back; Memory Space
//     and Bus Master Enable (and INTx Disable) reach the host, so the
//     guest can start and stop the device's decoding and DMA — its DMA is
//     the domain's, which reaches only the partition's RAM. I/O Space,
//     SERR, parity and the rest never reach the host; status writes
//     (write-one-to-clear) are dropped.
//   - BARs: virtual. A memory BAR reads as the guest address the root
//     placed it at (in the window [BARWindowBase, BARWindowTop), below
//     4 GiB, aligned to its size), with the host BAR's type bits; writing
//     all ones reads back the size mask as hardware does. Writing another
//     base relocates it: if the new range is aligned, inside the window
//     and overlaps nothing of the partition, and the BAR does not hold
//     the trapped MSI-X table, the host BAR is mapped there
//     too (hv.GuestMemory.MapDevice) — at most maxMapsPerBAR places, the
//     older ones staying mapped until the partition ends because the core
//     does not take mappings from running VPs; otherwise the register
//     holds the value and nothing answers there (an access ends the
//     partition, outside its memory). The host BAR never moves.
//   - MSI and MSI-X: the capability's Message Control enable and mask
//     bits, Message Address, Data and the per-vector mask are virtual:
//     stored, read back, never written to the host. The host function's
//     MSI and MSI-X are disabled at assignment. Where the IOMMU unit
//     remaps interrupts, the root routes the function's MSI (RouteMSI,
//     msi.go): the host capability gets a remapping entry's message — the
//     entry delivers at a vector the root serves on a host CPU — and
//     each interrupt there (Interrupt) sends the guest's own message, as
//     its shadow holds it, into the partition (held while the guest masks
//     its vector, dropped while its MSI is off). MSI-X likewise
//     (RouteMSIX, msix.go), where the table lies in a memory BAR and the
//     partition can trap it: the table's pages are left out of the BAR's
//     mapping and emulated (the guest's table is virtual, the host's the
//     root's, one remapping entry and host vector per entry, at most
//     MaxMSIXEntries, which the guest's table size then says), and the
//     host function's MSI or MSI-X is on as the guest's is.
//   - With interrupt remapping on, whatever the guest makes the device
//     write into the interrupt window 0xFEE00000-0xFEEFFFFF by DMA is an
//     interrupt request the unit remaps: only the device's own entry
//     delivers (to the root's vector, so into its own partition), every
//     other message is blocked. With remapping off (a unit without it;
//     QEMU's amd-iommu with intremap=off) such a write reaches the
//     host's local APICs untranslated: a hostile guest's device can send
//     the host an interrupt of its choosing (not memory: the window is not
//     RAM), and nothing routes the device's MSI.
//   - Everything else (other capabilities' registers, PCIe Device
//     Control with its Initiate FLR, the extended space): writes are
//     dropped; reads are the host's.
//
// # Reset on release
//
// Bus Master and Memory Space are cleared first (no DMA, no decoding).
// Then, when the PCI Express capability says the function supports
// Function Level Reset (Device Capabilities bit 28), an FLR: pending
// transactions awaited (Device Status bit 5, bounded), Initiate FLR set,
// 100 ms waited (PCIe Base 6.6.2), and the host's BARs and command
// register written back. Without FLR (QEMU's edu device is conventional
// PCI) the next best this package does is the quiesce alone: the
// function can issue no DMA and decodes nothing, but its internal state
// is as the guest left it. A Secondary Bus Reset through its bridge or a
// D3hot→D0 power-state transition would reset more; neither is done. In
// every case the function is detached (blocked again) and the domain
// destroyed before Release returns, so the partition's memory can be
// freed.
//
// Guests are hostile: every configuration access's register and value are
// guest-controlled and handled without trusting them (FuzzConfigAccess).
//
// # Concurrency
//
// A Device serialises configuration accesses with its own lock; Release
// must be called once, after the partition's VPs have stopped.
package passthrough
