package main

import (
	"fmt"
	"log/slog"
	"os"
	"time"

	"gohv/guests"
	"gohv/hv"
	"gohv/hv/vendor"
	"gohv/metal"
	"gohv/root/console"
)

// metalMemory gives the hypervisor core metal's physical pages.
type metalMemory struct{}

func (metalMemory) AllocPage() (uint64, error) { return metal.AllocPage() }
func (metalMemory) FreePage(pa uint64) error   { return metal.FreePage(pa) }
func (metalMemory) Page(pa uint64) *[4096]byte { return metal.PhysPage(pa) }

// partitionConsole carries the root's log lines and every partition's
// COM1 lines onto the serial console, a line at a time.
var partitionConsole = console.New(os.Stdout)

// rootLog is the root's structured log on the serial console.
var rootLog = slog.New(console.NewHandler(partitionConsole, slog.LevelInfo))

// startHypervisor enables the CPU's virtualization extension.
func startHypervisor() (*hv.Hypervisor, error) {
	h, err := vendor.Open(metalMemory{}, rootLog)
	if err != nil {
		return nil, err
	}
	for _, l := range h.Backend.Report() {
		fmt.Printf("gohv: %s\n", l)
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
