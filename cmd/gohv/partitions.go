package main

import (
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"gohv/guests"
	"gohv/hv"
	"gohv/hv/vendor"
	"gohv/metal"
)

// metalMemory gives the hypervisor core metal's physical pages.
type metalMemory struct{}

func (metalMemory) AllocPage() (uint64, error) { return metal.AllocPage() }
func (metalMemory) FreePage(pa uint64) error   { return metal.FreePage(pa) }
func (metalMemory) Page(pa uint64) *[4096]byte { return metal.PhysPage(pa) }

// console serialises partition console lines onto the hypervisor's.
type console struct{ mu sync.Mutex }

func (c *console) Write(b []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return os.Stdout.Write(b)
}

var partitionConsole = &console{}

// startHypervisor enables the CPU's virtualization extension.
func startHypervisor() (*hv.Hypervisor, error) {
	h, desc, err := vendor.Open(metalMemory{})
	if err != nil {
		return nil, err
	}
	fmt.Printf("gohv: %s\n", desc)
	for _, l := range strings.Split(vendor.ControlReport(h), "\n") {
		if l != "" {
			fmt.Printf("gohv: vmx controls %s\n", l)
		}
	}
	return h, nil
}

// runGuest creates a partition running a test program and waits for it to
// end (or stops it after timeout).
func runGuest(h *hv.Hypervisor, name string, ram uint64, prog guests.Program, o guests.Options,
	setup func(p *hv.Partition) error, timeout time.Duration) (*hv.Partition, hv.Result, error) {
	p, err := h.NewPartition(hv.Config{Name: name, RAMBytes: ram, Console: partitionConsole})
	if err != nil {
		return nil, hv.Result{}, err
	}
	if err := guests.Load(p, prog, o); err != nil {
		return nil, hv.Result{}, err
	}
	if setup != nil {
		if err := setup(p); err != nil {
			return nil, hv.Result{}, err
		}
	}
	p.Start()
	select {
	case <-p.Done():
	case <-time.After(timeout):
		p.Stop(fmt.Sprintf("timed out after %v", timeout))
		p.Wait()
	}
	return p, p.Result(), nil
}
