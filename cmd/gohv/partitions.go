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

// runGuest runs a test program in a new partition and waits for it to end
// (stopping it after timeout). A partition that could not be set up is
// released before the error is returned.
func runGuest(h *hv.Hypervisor, name string, ram uint64, prog guests.Program, o guests.Options,
	setup func(p *hv.Partition) error, timeout time.Duration) (*hv.Partition, hv.Result, error) {
	p, err := startGuest(h, name, ram, prog, o, setup)
	if err != nil {
		return nil, hv.Result{}, err
	}
	return p, waitFor(p, timeout), nil
}
