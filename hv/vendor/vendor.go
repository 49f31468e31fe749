// Package vendor picks the hardware virtualization backend for this CPU
// (AMD-V or Intel VT-x, from the CPUID vendor) and returns the hypervisor
// core bound to it. It is the one package that imports both backends;
// nothing above it needs to know which vendor runs.
package vendor

import (
	"fmt"
	"log/slog"

	"gohv/hv"
	"gohv/hv/vcpu"
	"gohv/svm"
	"gohv/vmx"
	"gohv/x86"
)

// Open enables the CPU's extension and returns the core bound to it; the
// backend's Report says what was enabled. log receives the core's events.
func Open(host hv.Host, log *slog.Logger) (*hv.Hypervisor, error) {
	model := hv.NewCPUModel()
	_, b, c, d := x86.CPUID(x86.CPUIDVendor, 0)
	var be vcpu.Backend
	var err error
	cpus := 0 // host CPU slots to prepare: up to the highest online
	for i := range vcpu.MaxHostCPUs {
		if host.CPUOnline(i) {
			cpus = i + 1
		}
	}
	switch v := x86.VendorString(b, c, d); v {
	case x86.VendorAMD, x86.VendorHygon:
		be, err = svm.Enable(host, model, cpus)
	case x86.VendorIntel:
		be, err = vmx.Enable(host, model, cpus)
	default:
		return nil, fmt.Errorf("hv: CPU vendor %q has no supported virtualization extension", v)
	}
	if err != nil {
		return nil, err
	}
	return hv.New(be, host, model, log), nil
}
