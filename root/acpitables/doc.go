// Package acpitables builds a child partition's ACPI tables: RSDP (ACPI
// 2.0+), XSDT, FADT, MADT and DSDT, contiguous from a guest-physical base
// the caller picks, every checksum set. Build takes a Platform (VPs,
// I/O APIC, interrupt overrides, serial ports, RTC, sleep and reset
// registers, VMBus) and returns the bytes, the RSDP's address for the Linux
// loader's boot_params.acpi_rsdp_addr, and each table's range for the
// E820 map. Section numbers refer to the ACPI Specification 6.5.
//
// # Hardware-reduced ACPI
//
// The FADT sets HW_REDUCED_ACPI (4.1): there are no PM1 event/control
// blocks, PM timer, GPE blocks, SCI or FACS. The guest powers off by
// writing SLP_TYP|SLP_EN to the Sleep Control register (4.8.3.7; the
// \_S5 package gives SLP_TYP) and resets by writing the reset value to
// the reset register (4.8.3.6). Why not the classic fixed hardware:
//
//   - Linux on a hardware-reduced platform installs no PIT or HPET timer and
//     no 8259 (acpi_generic_reduced_hw_init: timer_init and pre_vector_init
//     become no-ops, legacy_pic the null PIC). With a classic FADT it would
//     run hpet_time_init and, as long as the CPU model lacks ARAT, set up a
//     PIT clockevent over ports where gohv has no PIT. gohv instead gives
//     the TSC and LAPIC frequencies in the Hyper-V frequency MSRs and a
//     TSC-deadline LAPIC timer, which need no calibration.
//   - Fewer registers a guest can drive: a two-byte sleep block instead of
//     PM1 status/enable/control, an SCI line, a PM timer and a FACS with a
//     global lock nobody else takes.
//   - Power-off still works: Linux registers acpi_power_off when \_S5
//     evaluates and the FADT names both sleep registers, then writes the
//     wake status to Sleep Status and SLP_TYP<<2|SLP_EN (0x34 for SLP_TYP
//     5) to Sleep Control.
//
// The price: ISA devices need their interrupts in the DSDT, because a
// hardware-reduced Linux maps no ISA IRQs by itself; and metal/acpi's
// Tables.PowerOff, written for the PM1 control blocks of real PCs, refuses
// these tables (its FADT parser reads the sleep registers, and the tests
// check them there).
//
// # MADT
//
// One Processor Local APIC entry per VP: APIC ID and ACPI processor UID
// both the VP index, enabled (so at most MaxVPs VPs; more need Local x2APIC
// entries). The I/O APIC as given (gohv: ID 0xF at 0xFEC00000, GSI base
// 0). A Local APIC NMI entry for all processors on LINT1, edge, active
// high, as on a PC. Flags has no PCAT_COMPAT: gohv has no 8259, and x86
// Linux does not read the flag anyway (it probes the 8259 itself, or on a
// hardware-reduced platform assumes none). Interrupt Source Overrides come
// from the Platform; gohv's device models pass none: a PC's IRQ 0 → GSI 2
// belongs to a PIT gohv does not have and its IRQ 9 level/low override to
// an SCI a hardware-reduced platform does not have, and every other ISA
// IRQ (COM1's 4) reaches the I/O APIC pin of its number, edge-triggered and
// active high, which is what the MADT means without an override.
//
// # DSDT
//
// Encoded by a small AML encoder in this package; for the platform the
// root's device models describe it is, in ASL (testdata/dsdt.asl, which
// the ACPICA compiler turns into exactly the same AML):
//
//	DefinitionBlock ("", "DSDT", 2, "GOHV  ", "GOHVDSDT", 1)
//	{
//	    Name (\_S5, Package (2) { 5, 0 })   // SLP_TYP 5 at the sleep control register
//	    Scope (\_SB)
//	    {
//	        Device (COM1)                    // one per Platform.Serial
//	        {
//	            Name (_HID, EisaId ("PNP0501"))
//	            Name (_UID, 0)
//	            Name (_DDN, "COM1")
//	            Name (_CRS, ResourceTemplate () {
//	                IO (Decode16, 0x03F8, 0x03F8, 0x01, 0x08)
//	                IRQ (Edge, ActiveHigh, Exclusive) {4}
//	            })
//	        }
//	        Device (RTC0)                    // when Platform.RTC is set
//	        {
//	            Name (_HID, EisaId ("PNP0B00"))
//	            Name (_CRS, ResourceTemplate () { IO (Decode16, 0x0070, 0x0070, 0x01, 0x02) })
//	        }
//	        Device (VMBS)                    // when Platform.VMBus is set
//	        {
//	            Name (_HID, "VMBus")
//	            Name (_UID, 0)
//	            Name (_CRS, ResourceTemplate () {})
//	        }
//	        Device (PCI0)                    // when Platform.PCI is set
//	        {
//	            Name (_HID, EisaId ("PNP0A03"))
//	            Name (_UID, 0)
//	            Name (_CRS, ResourceTemplate () {
//	                WordBusNumber (ResourceProducer, MinFixed, MaxFixed, PosDecode, 0, 0, 0, 0, 1)
//	                DWordMemory (ResourceProducer, PosDecode, MinFixed, MaxFixed, NonCacheable, ReadWrite,
//	                    0, 0xC0000000, 0xFEBFFFFF, 0, 0x3EC00000)   // Platform.PCI's window
//	            })
//	        }
//	    }
//	}
//
// COM1's IRQ descriptor is what lets a hardware-reduced Linux route IRQ 4
// (8250_pnp registers GSI 4 through the I/O APIC). RTC0 has no IRQ because
// the clock raises none; Linux's rtc_cmos then binds without one. VMBS is
// what hv_vmbus matches: _HID "VMBus" with a _CRS, which may be empty (the
// VMBus interrupt is the hypervisor callback vector, and MMIO ranges are
// needed only by the virtual PCI and framebuffer drivers). PCI0 is there
// only for a partition with assigned PCI functions: Linux 6.1 on ACPI
// scans PCI buses only behind a PNP0A03/PNP0A08 host bridge (its
// pci_acpi_init takes the place of the legacy bus scan), and with _CRS
// (pci_use_crs, the default without a DMI BIOS date) it claims a BAR only
// inside a window _CRS names; conventional PCI (PNP0A03) because there is
// no MCFG, so no extended configuration space and no _OSC. No _PRT: INTx
// is not routed, so Linux reports "no GSI" for the pin and the drivers
// take MSI. No processor objects: Linux takes the CPUs from the MADT.
//
// # Checked against
//
// metal/acpi parses every table back (RSDP scan, MADT, FADT, \_S5), each
// field is pinned at its ACPI 6.5 offset, the DSDT's AML is byte-identical
// to the ACPICA compiler's output for testdata/dsdt.asl (and, with PCI0,
// testdata/dsdt-pci.asl), and Debian's
// Linux 6.1 boots on the tables root/devices describes
// (TestLinuxTakesThePlatform there, opt-in): S0/S5 supported, CPUs from
// the MADT, ttyS0 on IRQ 4 through the DSDT, rtc_cmos on RTC0, the VMBUS
// device present, and power-off writing 0x34 to the sleep control port.
//
// # Invariants
//
// Every table's checksum sums it to zero and its Length is its size; the
// RSDP's two checksums cover 20 and 36 bytes. Structures are 16-byte
// aligned, RSDP first. Build is a pure function of its arguments, it
// allocates (it runs once per partition, never on an exit) and its errors
// wrap ErrPlatform.
package acpitables
