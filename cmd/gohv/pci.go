package main

import (
	"fmt"

	"gohv/metal/acpi"
	"gohv/metal/pci"
)

// The host's PCI configuration space and functions as reportPCI found
// them, for the checks.
var (
	pciConfig    pci.Config
	pciFunctions []pci.Function
)

// reportPCI enumerates the host's PCI functions, read-only apart from BAR
// sizing (which restores every BAR and command register), and prints one
// line per function: through ECAM when the MCFG describes segment 0 below
// 4 GiB, else through the legacy configuration ports.
func reportPCI(t *acpi.Tables) {
	var cfg pci.Config = pci.Ports{}
	first, last := uint8(0), uint8(255)
	via := "legacy ports 0xcf8/0xcfc"
	if m, err := t.MCFG(); err == nil {
		for _, r := range m.Ranges {
			e := pci.ECAM{Base: r.Base, StartBus: r.StartBus, EndBus: r.EndBus}
			if r.Segment != 0 {
				continue
			}
			if !e.Usable() {
				fmt.Printf("gohv: warning: pci: MCFG window %#x buses %02x-%02x is out of reach; using the legacy ports\n", r.Base, r.StartBus, r.EndBus)
				break
			}
			cfg, first, last = e, r.StartBus, r.EndBus
			via = fmt.Sprintf("ECAM %#x", r.Base)
			break
		}
	}
	fns, skipped := pci.Enumerate(cfg, first, last)
	pciConfig, pciFunctions = cfg, fns
	fmt.Printf("gohv: pci %d functions on buses %02x-%02x through %s\n", len(fns), first, last, via)
	for _, f := range fns {
		fmt.Printf("gohv: %v\n", &f)
	}
	for _, s := range skipped {
		fmt.Printf("gohv: warning: %s\n", s)
	}
}
