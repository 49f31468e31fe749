// Package acpi finds and parses the ACPI tables the firmware leaves in
// memory: the RSDP, the RSDT or XSDT, and from them the MADT (CPUs, I/O
// APICs, interrupt overrides), the FADT (power-management registers, reset
// register, the DSDT), the HPET table, the \_S5_ object in the DSDT that
// says how to power off, and the IOMMU tables: the DMAR (Intel VT-d
// remapping units, device scopes, reserved memory regions) and the IVRS
// (AMD-Vi IVHD and IVMD blocks), reported at boot (IOMMUReport).
//
// Everything reads memory through the Memory interface, so the same code
// runs in the bare-metal image (over the physical-memory map) and in host
// tests (over tables captured from QEMU, see testdata/ and tools/acpidump).
//
// All table contents are firmware-controlled: every parser bounds-checks
// what it reads, returns (T, error) and never panics on any input. Section
// numbers in comments refer to the ACPI Specification 6.5 unless noted.
package acpi
