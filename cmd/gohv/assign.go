package main

import (
	"errors"
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
	f := hostpci.Function(pciConfig, *fn)
	f.BARMemory = barMemory
	iommuMu.Lock()
	dev, err := passthrough.Assign(unit, assignGuest{p}, f)
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

// assignGuest is what passthrough.Assign takes of a partition: its
// memory, and MMIO traps (the MSI-X table's pages) before it starts.
type assignGuest struct{ p *hv.Partition }

func (g assignGuest) RAMHostRuns(fn func(gpa, hpa, size uint64)) { g.p.Mem.RAMHostRuns(fn) }
func (g assignGuest) MapDevice(gpa, hpa, size uint64) error      { return g.p.Mem.MapDevice(gpa, hpa, size) }
func (g assignGuest) AddMMIO(gpa, size uint64, dev passthrough.MMIODevice) error {
	return g.p.AddMMIO(gpa, size, dev)
}

// barMemory reaches a host memory BAR through metal's identity map.
func barMemory(b passthrough.BAR) (passthrough.Memory, error) {
	m, err := metal.MapMMIO(b.Base, b.Size)
	if err != nil {
		return nil, err
	}
	return mmio32{m}, nil
}

// mmio32 is a metal.MMIO window as passthrough.Memory.
type mmio32 struct{ m metal.MMIO }

func (w mmio32) Read32(off uint64) uint32     { return w.m.Read32(uint32(off)) }
func (w mmio32) Write32(off uint64, v uint32) { w.m.Write32(uint32(off), v) }

// routeMSI routes an assigned function's MSI and MSI-X to its partition
// where its unit remaps interrupts: for MSI and for each MSI-X table
// entry (passthrough.Device.MSIXEntries) a metal device vector on the
// boot CPU, the unit's remapping entry delivering the function's message
// there, and a goroutine serving the vector (passthrough.Device.Serve,
// ServeMSIX) until the returned func, called after Release, stops them
// and frees the vectors. Where it cannot, the function stays assigned
// without that kind of interrupt and the log says why:
//
//	gohv: assigned device MSI routed partition=edu0 device=00:04.0 host-vector=0x23 entry=0
//	gohv: assigned device MSI-X routed partition=nic0 device=00:05.0 entries=5 host-vectors=0x24-0x28 first-entry=1
//	gohv: assigned device MSI not routed partition=nic0 device=00:05.0 reason="..."
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
	onErr := func(err error) {
		rootLog.Warn("assigned device interrupt", "partition", p.Name, "device", name, "error", err.Error())
	}
	var stops []func()
	stopMSI, msiErr := routeVectors(r, dev, 1, func(ins []iommu.Interrupt) error { return dev.RouteMSI(r, ins[0], p) },
		func(v passthrough.HostVector, _ int, quit <-chan struct{}) { dev.Serve(v, quit, onErr) })
	if msiErr == nil {
		stops = append(stops, stopMSI.stop)
		rootLog.Info("assigned device MSI routed", "partition", p.Name, "device", name, "host-vector", fmt.Sprintf("%#x", stopMSI.vecs[0]), "entry", stopMSI.ins[0].Index)
	}
	var msixErr error
	if n := dev.MSIXEntries(); n > 0 {
		var x routed
		x, msixErr = routeVectors(r, dev, n, func(ins []iommu.Interrupt) error { return dev.RouteMSIX(r, ins, p) },
			func(v passthrough.HostVector, i int, quit <-chan struct{}) { dev.ServeMSIX(v, i, quit, onErr) })
		if msixErr == nil {
			stops = append(stops, x.stop)
			rootLog.Info("assigned device MSI-X routed", "partition", p.Name, "device", name, "entries", n,
				"host-vectors", fmt.Sprintf("%#x-%#x", x.vecs[0], x.vecs[n-1]), "first-entry", x.ins[0].Index)
		}
	}
	switch {
	case len(stops) == 0:
		reason := msiErr.Error()
		if msixErr != nil {
			reason += "; MSI-X: " + msixErr.Error()
		}
		return why(reason)
	case msiErr != nil && !errors.Is(msiErr, passthrough.ErrNoMSI):
		rootLog.Warn("assigned device MSI not routed", "partition", p.Name, "device", name, "reason", msiErr.Error())
	case msixErr != nil:
		rootLog.Warn("assigned device MSI-X not routed", "partition", p.Name, "device", name, "reason", msixErr.Error())
	}
	return func() {
		for _, s := range stops {
			s()
		}
	}
}

// routed is one routing's host vectors, remapping entries and serving
// goroutines.
type routed struct {
	vecs []uint8
	ins  []iommu.Interrupt
	stop func()
}

// routeVectors allocates n device vectors and a remapping entry for each,
// hands the entries to program (which gives them to the device), and
// starts serve on each vector. On error everything allocated is freed.
func routeVectors(r iommu.Remapper, dev *passthrough.Device, n int, program func([]iommu.Interrupt) error,
	serve func(v passthrough.HostVector, i int, quit <-chan struct{})) (routed, error) {
	var x routed
	free := func() {
		iommuMu.Lock()
		for _, in := range x.ins {
			r.FreeInterrupt(in)
		}
		iommuMu.Unlock()
		for _, v := range x.vecs {
			metal.FreeDeviceVector(v)
		}
	}
	for range n {
		vec, err := metal.AllocDeviceVector()
		if err != nil {
			free()
			return routed{}, err
		}
		x.vecs = append(x.vecs, vec)
	}
	iommuMu.Lock()
	var err error
	for _, vec := range x.vecs {
		var in iommu.Interrupt
		if in, err = r.AllocInterrupt(dev.Source, iommu.Target{APICID: metal.BootAPICID(), Vector: vec}); err != nil {
			break
		}
		x.ins = append(x.ins, in)
	}
	if err == nil {
		err = program(x.ins) // Release frees the entries from here on
	}
	iommuMu.Unlock()
	if err != nil {
		free()
		return routed{}, err
	}
	quit := make(chan struct{})
	var wg sync.WaitGroup
	for i, vec := range x.vecs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			serve(passthrough.HostVector{
				Count: func() uint32 { return metal.DeviceInterrupts(vec) },
				Wait: func(seen uint32, timeout time.Duration) (uint32, error) {
					return metal.WaitDeviceInterrupt(vec, seen, timeout)
				},
			}, i, quit)
		}()
	}
	x.stop = func() {
		close(quit)
		wg.Wait()
		for _, v := range x.vecs {
			metal.FreeDeviceVector(v)
		}
	}
	return x, nil
}
