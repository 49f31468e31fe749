// Package vendor picks the hardware virtualization backend for this CPU
// (AMD-V or Intel VT-x, from the CPUID vendor) and returns the hypervisor
// core bound to it. Nothing above hv needs to know which vendor runs.
package vendor

import (
	"fmt"

	"gohv/hv"
	"gohv/svm"
	"gohv/vmx"
	"gohv/x86"
)

// Open enables the CPU's extension and returns the core and a one-line
// description of what was enabled.
func Open(host hv.HostMemory) (*hv.Hypervisor, string, error) {
	model := hv.NewCPUModel()
	_, b, c, d := x86.CPUID(0, 0)
	vendor := string([]byte{byte(b), byte(b >> 8), byte(b >> 16), byte(b >> 24),
		byte(d), byte(d >> 8), byte(d >> 16), byte(d >> 24), byte(c), byte(c >> 8), byte(c >> 16), byte(c >> 24)})
	switch vendor {
	case "AuthenticAMD", "HygonGenuine":
		be, err := svm.Enable(host, model)
		if err != nil {
			return nil, "", err
		}
		f := be.Features()
		h := hv.New(be, host)
		h.Model = model
		return h, fmt.Sprintf("svm enabled: revision %d, %d ASIDs, nested paging, nrip-save=%v, decode-assists=%v",
			f.Revision, f.NASID, f.NRIPSave, f.Decode), nil
	case "GenuineIntel":
		be, err := vmx.Enable(host, model)
		if err != nil {
			return nil, "", err
		}
		h := hv.New(be, host)
		h.Model = model
		return h, "vmx enabled: " + be.Features(), nil
	}
	return nil, "", fmt.Errorf("hv: CPU vendor %q has no supported virtualization extension", vendor)
}

// ControlReport is the VMX control report when the backend is VMX.
func ControlReport(h *hv.Hypervisor) string {
	if b, ok := h.Backend.(*vmx.Backend); ok {
		return b.ControlReport()
	}
	return ""
}
