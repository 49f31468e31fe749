/*
 * The DSDT acpitables.Build makes for the platform of TestDSDTMatchesASLCompiler
 * with a PCI host bridge (COM1 at 0x3F8 IRQ 4, the RTC at 0x70, sleep registers
 * with S5 = 5, VMBus, PCI0 with bus 0 and the window 0xC0000000-0xFEBFFFFF),
 * written as ASL. dsdt-pci.aml is this file compiled by the ACPICA compiler
 * (Debian acpica-tools 20200925):
 *
 *     iasl -f -p dsdt-pci dsdt-pci.asl
 *
 * -f because iasl refuses _HID "VMBus" (a _HID string must be a 7- or
 * 8-character PNP or ACPI ID); Hyper-V's own firmware uses it and Linux's
 * hv_vmbus matches exactly that string. It also warns about the empty
 * ResourceTemplate, which hv_vmbus requires.
 *
 * The test compares everything after the table header with Build's AML,
 * so the encoder is checked against a compiler written independently.
 */
DefinitionBlock ("", "DSDT", 2, "GOHV  ", "GOHVDSDT", 1)
{
    Name (\_S5, Package (2) { 5, 0 })

    Scope (\_SB)
    {
        Device (COM1)
        {
            Name (_HID, EisaId ("PNP0501"))
            Name (_UID, 0)
            Name (_DDN, "COM1")
            Name (_CRS, ResourceTemplate ()
            {
                IO (Decode16, 0x03F8, 0x03F8, 0x01, 0x08)
                IRQ (Edge, ActiveHigh, Exclusive) {4}
            })
        }

        Device (RTC0)
        {
            Name (_HID, EisaId ("PNP0B00"))
            Name (_CRS, ResourceTemplate ()
            {
                IO (Decode16, 0x0070, 0x0070, 0x01, 0x02)
            })
        }

        Device (VMBS)
        {
            Name (_HID, "VMBus")
            Name (_UID, 0)
            Name (_CRS, ResourceTemplate () {})
        }

        Device (PCI0)
        {
            Name (_HID, EisaId ("PNP0A03"))
            Name (_UID, 0)
            Name (_CRS, ResourceTemplate ()
            {
                WordBusNumber (ResourceProducer, MinFixed, MaxFixed, PosDecode,
                    0x0000, 0x0000, 0x0000, 0x0000, 0x0001)
                DWordMemory (ResourceProducer, PosDecode, MinFixed, MaxFixed, NonCacheable, ReadWrite,
                    0x00000000, 0xC0000000, 0xFEBFFFFF, 0x00000000, 0x3EC00000)
            })
        }
    }
}
