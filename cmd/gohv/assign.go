package main

import (
	"fmt"
	"sync"
	"time"

	"gohv/hv"
	"gohv/iommu"
	"gohv/metal/pci"
	"gohv/root/config"
	"gohv/root/devices"
	"gohv/root/passthrough"
	"gohv/root/passthrough/hostpci"
)

// iommuMu serialises the IOMMU units' use by assignments, releases and
// the fault pollers (a Unit is not safe for concurrent use).
var iommuMu sync.Mutex

// faultPoll is how often an assigned device's unit is read for faults.
const faultPoll = 100 * time.Millisecond

// assignPCI is the manager's Assigner: the host function at a, found in
// the boot's enumeration, given to p through the first enabled unit that
// covers it (root/passthrough). While the partition runs, the unit's
// faults are polled and each of the device's is logged:
//
//	gohv: DMA fault partition=edu0 device=00:04.0 source=00:04.0 addr=0x8000000 write reason="..."
//
// The partition keeps running (the fault is the IOMMU's refusal; nothing
// reached memory).
func assignPCI(p *hv.Partition, a config.PCIAddress) (devices.PCIFunction, func() (string, error), error) {
	addr := pci.Addr{Bus: a.Bus, Dev: a.Dev, Fn: a.Fn}
	var fn *pci.Function
	for i := range pciFunctions {
		if pciFunctions[i].Addr == addr {
			fn = &pciFunctions[i]
		}
	}
	if fn == nil {
		return nil, nil, fmt.Errorf("no PCI function there (the boot report's \"gohv: pci\" lines list them)")
	}
	source := uint16(a.Bus)<<8 | uint16(a.Dev)<<3 | uint16(a.Fn)
	var unit iommu.Domains
	for _, u := range iommus {
		if d, ok := u.(iommu.Domains); ok && d.Covers(source) {
			unit = d
			break
		}
	}
	if unit == nil {
		return nil, nil, fmt.Errorf("no enabled IOMMU unit covers it: assignment needs DMA remapping")
	}
	iommuMu.Lock()
	dev, err := passthrough.Assign(unit, p.Mem, hostpci.Function(pciConfig, *fn))
	iommuMu.Unlock()
	if err != nil {
		return nil, nil, err
	}
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(faultPoll)
		defer t.Stop()
		for {
			iommuMu.Lock()
			unit.Faults() // routes the device's faults to its domain
			iommuMu.Unlock()
			for _, f := range dev.Faults() {
				rootLog.Warn("DMA fault", "partition", p.Name, "device", fn.Addr.String(), "source", f.SourceString(),
					"addr", fmt.Sprintf("%#x", f.Addr), "write", f.Write, "reason", f.Reason)
			}
			select {
			case <-stop:
				return
			case <-t.C:
			}
		}
	}()
	release := func() (string, error) {
		close(stop)
		<-done
		iommuMu.Lock()
		defer iommuMu.Unlock()
		return dev.Release()
	}
	return dev, release, nil
}
