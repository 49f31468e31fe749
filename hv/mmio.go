package hv

import "fmt"

// nestedFault handles a guest-physical access the nested tables refused:
// an MMIO range is emulated; anything else is outside the partition's
// memory map and ends it.
func (vp *VP) nestedFault(e *Exit) {
	r := vp.cpu.Regs()
	for i := range vp.p.Mem.mmio {
		m := &vp.p.Mem.mmio[i]
		if e.GPA >= m.gpa && e.GPA-m.gpa < m.size {
			if err := vp.emulateMMIO(e); err != nil {
				vp.p.crash(fmt.Sprintf("mmio at gpa %#x, rip %#x: %v", e.GPA, r.RIP, err))
			}
			return
		}
	}
	kind := "read"
	switch {
	case e.Fetch:
		kind = "instruction fetch"
	case e.Write:
		kind = "write"
	}
	vp.p.crash(fmt.Sprintf("%s of gpa %#x at rip %#x: %v", kind, e.GPA, r.RIP, ErrOutsideMemory))
}

func (vp *VP) emulateMMIO(e *Exit) error  { return fmt.Errorf("instruction emulation pending") }
func (vp *VP) stringIO(e *Exit) error     { return fmt.Errorf("string port I/O pending") }
func (vp *VP) decodeLength(plain int) int { return plain }
