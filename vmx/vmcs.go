package vmx

import "fmt"

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

// setMany writes fields from vals (the same length) in one VMWRITE batch
// on the hardware, one by one into a test's VMCS image; the first failure
// is kept as set keeps it. Must not allocate when every write succeeds.
func (w *writer) setMany(fields []uint32, vals []uint64) {
	if w.err != nil {
		return
	}
	v := w.v
	if v.image != nil {
		for i, f := range fields {
			w.set(f, vals[i])
		}
		return
	}
	v.ensure()
	if i := vmwriteN(&fields[0], &vals[0], uint64(len(fields))); i < uint64(len(fields)) {
		w.err = fmt.Errorf("vmx: VMWRITE %s = %#x: %s", FieldName(fields[i]), vals[i], VMInstrErrorName(v.rd(VMInstrError)))
	}
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
	if v.b.cpu.current != v.vmcsPA {
		v.load()
	}
}

// load makes this VCPU's VMCS current on this CPU. Interrupts must be off.
func (v *VCPU) load() error {
	if v.b.cpu.current == v.vmcsPA {
		return nil
	}
	pa := v.vmcsPA
	if st := vmptrld(&pa); st != 0 {
		return fmt.Errorf("vmx: VMPTRLD %#x failed (%s)", pa, vmStatusName(st))
	}
	v.b.cpu.current = v.vmcsPA
	return nil
}
