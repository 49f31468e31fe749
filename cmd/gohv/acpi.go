package main

import (
	"fmt"

	"gohv/metal"
	"gohv/metal/acpi"
)

// setupACPI finds the firmware's ACPI tables, reports the processors,
// interrupt controllers and IOMMUs (DMAR, IVRS) they describe, turns the
// VT-d units on with every device blocked (enableIOMMUs), reports the PCI
// functions (through the MCFG's ECAM window or the legacy ports), and
// tells metal how to power off (ACPI S5). Without an RSDP the image cannot know the machine: it stops.
func setupACPI() error {
	mem := metal.PhysMemory{}
	var rsdp acpi.RSDP
	if b := metal.BootRSDP(); b != nil {
		r, err := acpi.ParseRSDP(b)
		if err != nil {
			return fmt.Errorf("ACPI: RSDP from the boot loader: %w", err)
		}
		rsdp = r
		fmt.Println("gohv: acpi RSDP handed over by the boot loader (Multiboot2 tag)")
	} else {
		r, err := acpi.FindRSDP(mem)
		if err != nil {
			return fmt.Errorf("ACPI: no RSDP from the boot loader or in the EBDA/BIOS area (%w); is ACPI disabled in the firmware or the emulator?", err)
		}
		rsdp = r
		fmt.Println("gohv: acpi RSDP found in the BIOS area")
	}
	t, err := acpi.Load(mem, rsdp)
	if err != nil {
		return fmt.Errorf("ACPI: %w", err)
	}
	fmt.Printf("gohv: %s\n", t.Summary())
	for _, e := range t.Invalid {
		fmt.Printf("gohv: warning: ACPI table ignored: %v\n", e)
	}
	madt, err := t.MADT()
	if err != nil {
		return fmt.Errorf("ACPI: MADT: %w", err)
	}
	for _, c := range madt.CPUs() {
		state := "enabled"
		if !c.Enabled {
			state = "disabled"
			if c.OnlineCapable {
				state = "online-capable"
			}
		}
		fmt.Printf("gohv: acpi cpu apic-id %d uid %d %s\n", c.APICID, c.ProcessorUID, state)
	}
	startCPUs(madt)
	for _, io := range madt.IOAPICs {
		fmt.Printf("gohv: acpi ioapic id %d at %#x gsi-base %d\n", io.ID, io.Address, io.GSIBase)
	}
	for _, o := range madt.Overrides {
		fmt.Printf("gohv: acpi override isa irq %d -> gsi %d %v\n", o.Source, o.GSI, o.Flags)
	}
	for _, l := range t.IOMMUReport() {
		fmt.Printf("gohv: %s\n", l)
	}
	enableIOMMUs(t)
	reportPCI(t)
	if p, err := t.PowerOff(); err != nil {
		fmt.Printf("gohv: warning: no ACPI S5 power-off (%v); the image halts instead when no debug-exit device is present\n", err)
	} else {
		metal.SetACPIPowerOff(p.PM1aCnt, p.PM1bCnt, p.SlpTypA, p.SlpTypB)
	}
	return nil
}
