package main

import (
	"fmt"
	"sync"
	"time"

	"gohv/hv"
	"gohv/iommu"
	"gohv/metal"
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
//	gohv: interrupt blocked partition=edu0 device=00:04.0 source=00:04.0 interrupt=0x1 reason="interrupt remapping entry not present (0x22)"
//
// The partition keeps running (the fault is the IOMMU's refusal; nothing
// reached memory). Where the unit remaps interrupts and the function has
// MSI, its MSI is routed to the partition (routeMSI).
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
	unrouteMSI := routeMSI(p, unit, dev, fn.Addr.String())
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
				if f.Interrupt { // a message into the interrupt window that no entry of its own names
					rootLog.Warn("interrupt blocked", "partition", p.Name, "device", fn.Addr.String(), "source", f.SourceString(),
						"interrupt", fmt.Sprintf("%#x", f.Addr), "reason", f.Reason)
					continue
				}
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
		how, err := dev.Release() // the function's MSI off, its entry freed
		unrouteMSI()
		return how, err
	}
	return dev, release, nil
}

// routeMSI routes an assigned function's MSI to its partition where its
// unit remaps interrupts: a metal device vector on the boot CPU, the
// unit's remapping entry delivering the function's message there, and a
// goroutine serving the vector (passthrough.Device.Serve) until the
// returned func, called after Release, stops it and frees the vector.
// Where it cannot, the function stays assigned without interrupts and the
// log says why:
//
//	gohv: assigned device MSI routed partition=edu0 device=00:04.0 host-vector=0x23 entry=0
//	gohv: assigned device without interrupts partition=edu0 device=00:04.0 reason="..."
func routeMSI(p *hv.Partition, unit iommu.Domains, dev *passthrough.Device, name string) func() {
	none := func() {}
	why := func(reason string) func() {
		rootLog.Warn("assigned device without interrupts", "partition", p.Name, "device", name, "reason", reason)
		return none
	}
	r, ok := unit.(iommu.Remapper)
	if !ok {
		return why(unit.Name() + " does not remap interrupts")
	}
	if on, off := r.InterruptRemapping(); !on {
		return why("interrupt remapping off: " + off)
	}
	vec, err := metal.AllocDeviceVector()
	if err != nil {
		return why(err.Error())
	}
	iommuMu.Lock()
	in, err := r.AllocInterrupt(dev.Source, iommu.Target{APICID: metal.BootAPICID(), Vector: vec})
	if err == nil {
		if err = dev.RouteMSI(r, in, p); err != nil {
			r.FreeInterrupt(in)
		}
	}
	iommuMu.Unlock()
	if err != nil {
		metal.FreeDeviceVector(vec)
		return why(err.Error())
	}
	quit, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		dev.Serve(passthrough.HostVector{
			Count: func() uint32 { return metal.DeviceInterrupts(vec) },
			Wait: func(seen uint32, timeout time.Duration) (uint32, error) {
				return metal.WaitDeviceInterrupt(vec, seen, timeout)
			},
		}, quit, func(err error) {
			rootLog.Warn("assigned device interrupt", "partition", p.Name, "device", name, "error", err.Error())
		})
	}()
	rootLog.Info("assigned device MSI routed", "partition", p.Name, "device", name, "host-vector", fmt.Sprintf("%#x", vec), "entry", in.Index)
	return func() {
		close(quit)
		<-done
		metal.FreeDeviceVector(vec)
	}
}
