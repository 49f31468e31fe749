// Package devices holds the legacy PC devices a stock Linux kernel probes
// in a child partition, as hv.PortDevice models, and a Platform that puts
// them on a partition's port bus in one call and describes them for the
// partition's ACPI tables (root/acpitables).
//
// # Port map
//
//	0x60        i8042 data            I8042: minimal controller, reset line
//	0x61        system control port B PortB: reads 0x20 | control bits
//	0x64        i8042 status/command  I8042
//	0x70-0x71   CMOS index/data       RTC: host wall clock, 128 bytes of CMOS
//	0x80        POST codes            POST: writes kept, no effect; reads float
//	0x3F8-0x3FF COM1                  the core's UART (hv), IRQ 4
//	0xF4-0xF7   debug exit            the core's (hv)
//	0x600       ACPI sleep control    Sleep: SLP_TYP 5 | SLP_EN powers off
//	0x601       ACPI sleep status     Sleep: reads 0
//	0xCF8       PCI CONFIG_ADDRESS    PCIConfig: latch reads back
//	0xCF9       reset control         PCIConfig: RST_CPU reboots
//	0xCFC-0xCFF PCI CONFIG_DATA       PCIConfig: assigned functions (bus 0), else all ones, "no device"
//
// Every other port floats (the core reads all ones and drops writes). No
// 8259 PIC (Linux reads 0xFF at 0x21 and uses the null PIC; the
// hardware-reduced FADT says as much), no 8254 PIT (a hardware-reduced
// Linux sets up no PIT or HPET timer, and gohv's Hyper-V frequency MSRs
// and TSC-deadline LAPIC timer need no calibration), no ACPI PM timer
// (hardware-reduced ACPI has none), no HPET, no VGA.
//
// # The reset vector
//
// A partition has no BIOS, but Linux reboots through one: on gohv's
// hardware-reduced ACPI platform it ends in real mode at F000:FFF0
// (ResetVectorCode says why). The root writes ResetVectorCode there, in
// the BIOS area a Linux partition's E820 map reserves: it writes
// ResetValue to 0xCF9, which reboots the partition like any other reset.
//
// # Hostile input
//
// Everything a guest writes is guest-controlled: any value, any width,
// any order, from any VP. Each device documents the outcome of every
// register write; nothing panics (FuzzPorts drives random accesses across
// all of them) and nothing allocates in In or Out (the tests check with
// testing.AllocsPerRun). An access wider than a byte is that many byte
// accesses to consecutive ports, low byte first, as on the ISA bus, except
// where a register is wider (CONFIG_ADDRESS) or a device says otherwise;
// bytes on ports a device does not decode read all ones. Sizes other than
// 1, 2 and 4 read all ones and write nothing. The most a guest can do is
// reset or power off its own partition, which it may anyway.
//
// # Concurrency
//
// In and Out run on the VP's thread, and several VPs may reach one device
// at once: each device keeps its state under its own lock (or in atomics)
// and calls the reboot and power-off callbacks after releasing it, so a
// callback that stops the partition cannot deadlock against another VP's
// access.
package devices
