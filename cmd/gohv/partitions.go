package main

import (
	"fmt"
	"log/slog"
	"os"

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

// serial carries the root's log lines and every partition's COM1 lines
// onto the serial console, a line at a time.
var serial = console.New(os.Stdout)

// rootLog is the root's structured log on the serial console.
var rootLog = slog.New(console.NewHandler(serial, slog.LevelInfo))

// openHypervisor enables the CPU's virtualization extension and reports
// what was enabled.
func openHypervisor() (*hv.Hypervisor, error) {
	h, err := vendor.Open(metalMemory{}, rootLog)
	if err != nil {
		return nil, err
	}
	for _, l := range h.Backend.Report() {
		fmt.Fprintf(serial, "gohv: %s\n", l)
	}
	return h, nil
}
