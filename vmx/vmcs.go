package vmx

import (
	"errors"
	"fmt"

	"gohv/x86"
)

// vmcsImage stands in for the hardware VMCS in host tests: exit decoding
// and state transfer then run on the host over a map of fields. On
// hardware it is nil and rd/wr issue VMREAD/VMWRITE directly (an interface
// call per field costs about 170 guest instructions per exit).
type vmcsImage interface {
	read(f uint32) uint64
	// write stores x; a non-zero status is VMX's failure (the error
	// number is then in VM_INSTRUCTION_ERROR).
	write(f uint32, x uint64) (status uint64)
}

// rd reads a field of this VCPU's VMCS. Interrupts are off around every
// access on hardware. Must not allocate.
func (v *VCPU) rd(f uint32) uint64 {
	if v.image != nil {
		return v.image.read(f)
	}
	v.ensure()
	x, _ := vmread(f)
	return x
}

// wr writes a field of this VCPU's VMCS and returns VMWRITE's status.
func (v *VCPU) wr(f uint32, x uint64) uint64 {
	if v.image != nil {
		return v.image.write(f, x)
	}
	v.ensure()
	return vmwrite(f, x)
}

// writer collects the first VMWRITE failure of a sequence.
type writer struct {
	v   *VCPU
	err error
}

func (w *writer) set(f uint32, x uint64) {
	if w.err != nil {
		return
	}
	if st := w.v.wr(f, x); st != 0 {
		w.err = fmt.Errorf("vmx: VMWRITE %s = %#x: %s", FieldName(f), x, VMInstrErrorName(w.v.rd(VMInstrError)))
	}
}

// ensure makes this VCPU's VMCS current again if another VP's took its
// place. Interrupts are off around every VMCS access, but the goroutine can
// still be parked at a function call (a GC stop-the-world) and another VP
// thread run meanwhile: every VMREAD/VMWRITE and the VM entry go through
// ensure, so they always reach this VCPU's VMCS.
func (v *VCPU) ensure() {
	if v.cpu == nil {
		panic("vmx: VMCS access on a VP not bound to a host CPU (Bind)")
	}
	if v.cpu.current != v.vmcsPA {
		v.load()
	}
}

// load makes this VCPU's VMCS current on its CPU. Interrupts must be off.
func (v *VCPU) load() error {
	if v.cpu == nil {
		return errors.New("vmx: Run on a VP not bound to a host CPU (Bind)")
	}
	if v.cpu.current == v.vmcsPA {
		return nil
	}
	pa := v.vmcsPA
	if st := vmptrld(&pa); st != 0 {
		return fmt.Errorf("vmx: VMPTRLD %#x failed (%s)", pa, vmStatusName(st))
	}
	v.cpu.current = v.vmcsPA
	return nil
}

// Bind makes host CPU cpu, which runs the caller, this VP's: VMX is turned
// on there first if need be; the VMCS is loaded there and, the first
// time, set up (controls and host state), later given that CPU's host
// state (its TSS, GDT and GS base differ from another CPU's). A VMCS
// active on one CPU only, between Bind and Unbind, is what the SDM asks
// (Vol. 3C 25.11.1).
func (v *VCPU) Bind(cpu int) error {
	if cpu < 0 || cpu >= len(v.b.cpus) {
		return fmt.Errorf("vmx: bind to host CPU %d: beyond the %d a backend keeps", cpu, len(v.b.cpus))
	}
	c, err := v.b.enableCPU(cpu)
	if err != nil {
		return err
	}
	f := x86.CLI()
	defer x86.RestoreFlags(f)
	v.cpu = c
	if !v.setUp {
		pa := v.vmcsPA
		if st := vmclear(&pa); st != 0 {
			return fmt.Errorf("vmx: VMCLEAR failed (%s)", vmStatusName(st))
		}
		if err := v.load(); err != nil {
			return err
		}
		if err := v.setup(); err != nil {
			return fmt.Errorf("vmx: %w", err)
		}
		v.setUp = true
	} else {
		if err := v.load(); err != nil {
			return err
		}
		w := &writer{v: v}
		h := &c.host
		w.set(HostTRBase, h.trBase)
		w.set(HostGDTRBase, h.gdtBase)
		w.set(HostIDTRBase, h.idtBase)
		w.set(HostGSBase, h.gsBase)
		if w.err != nil {
			return w.err
		}
	}
	v.flush = true
	return nil
}

// Unbind writes the VMCS back (VMCLEAR) on the CPU it is bound to, which
// runs the caller; its next entry, after another Bind, is a VMLAUNCH.
func (v *VCPU) Unbind() {
	if v.cpu == nil {
		return
	}
	f := x86.CLI()
	pa := v.vmcsPA
	vmclear(&pa)
	if v.cpu.current == v.vmcsPA {
		v.cpu.current = 0
	}
	v.ctx.launched = 0
	v.cpu = nil
	x86.RestoreFlags(f)
}
