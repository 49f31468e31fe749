package main

import (
	"fmt"
	"log/slog"
	"os"
	"time"

	"gohv/hv"
	"gohv/hv/vendor"
	"gohv/metal"
	"gohv/root/console"
)

// metalHost gives the hypervisor core metal's physical pages, clock and
// CPUs.
type metalHost struct{ tscHz uint64 }

// host is metal for the hypervisor; its TSC rate is fixed at calibration.
var host = metalHost{tscHz: metal.GetInfo().TSCHz}

func (metalHost) AllocPage() (uint64, error) { return metal.AllocPage() }
func (metalHost) FreePage(pa uint64) error   { return metal.FreePage(pa) }
func (metalHost) Page(pa uint64) *[4096]byte { return metal.PhysPage(pa) }
func (metalHost) Nanotime() int64            { return metal.Nanotime() }
func (metalHost) TSC() uint64                { return metal.TSC() }
func (h metalHost) TSCHz() uint64            { return h.tscHz }
func (metalHost) SetAlarm(deadline int64)    { metal.SetAlarm(deadline) }
func (metalHost) CPUOnline(i int) bool       { return metal.CPUOnline(i) }
func (metalHost) PinThread(cpu int) error    { return metal.PinThread(cpu) }
func (metalHost) KickCPU(cpu int)            { metal.KickCPU(cpu) }
func (metalHost) CurrentCPU() int            { return metal.CurrentCPU() }

// serial carries the root's log lines and every partition's COM1 lines
// onto the serial console, a line at a time.
var serial = console.New(os.Stdout)

// consoleInput routes what is typed on the serial console to a
// partition's COM1 (Ctrl-] switches; see root/console).
var consoleInput = console.NewInput(serial)

// startConsoleInput polls COM1 for typed bytes (metal does not route the
// host UART's interrupt) every 20 ms until stop closes.
func startConsoleInput(stop <-chan struct{}) {
	go consoleInput.Poll(metal.ConsoleRead, 20*time.Millisecond, stop)
}

// rootLog is the root's structured log on the serial console.
var rootLog = slog.New(console.NewHandler(serial, slog.LevelInfo))

// openHypervisor enables the CPU's virtualization extension and reports
// what was enabled.
func openHypervisor() (*hv.Hypervisor, error) {
	h, err := vendor.Open(host, rootLog)
	if err != nil {
		return nil, err
	}
	for _, l := range h.Backend.Report() {
		fmt.Fprintf(serial, "gohv: %s\n", l)
	}
	return h, nil
}
