package hv

import (
	"errors"
	"fmt"

	"golang.org/x/arch/x86/x86asm"

	"gohv/hv/emul"
)

// nestedFault handles a guest-physical access the nested tables refused:
// an MMIO range is emulated; anything else is outside the partition's
// memory map and ends it.
func (vp *VP) nestedFault(e *Exit) {
	r := vp.cpu.Regs()
	if vp.p.Mem.mmioAt(e.GPA) != nil {
		if err := vp.emulate(); err != nil {
			vp.p.crash(fmt.Sprintf("mmio at gpa %#x, rip %#x: %v", e.GPA, r.RIP, err))
		}
		return
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

func (m *GuestMemory) mmioAt(gpa uint64) *mmioRange {
	for i := range m.mmio {
		r := &m.mmio[i]
		if gpa >= r.gpa && gpa-r.gpa < r.size {
			return r
		}
	}
	return nil
}

// guestView is the instruction emulator's window on a VP's guest: linear
// addresses through the guest's own page tables, guest-physical addresses
// to RAM or an MMIO device. Everything it is handed is guest-controlled.
type guestView struct {
	vp     *VP
	paging emul.Paging
}

func (g *guestView) Translate(la uint64, acc emul.Access) (uint64, error) {
	return g.paging.Walk(la, acc, g.vp.p.Mem.ReadU64)
}

func (g *guestView) Read(gpa uint64, b []byte) error {
	m := g.vp.p.Mem
	if r := m.mmioAt(gpa); r != nil {
		if gpa+uint64(len(b)) > r.gpa+r.size {
			return fmt.Errorf("%d-byte read at %#x runs past the device: %w", len(b), gpa, ErrOutsideMemory)
		}
		r.dev.ReadMMIO(gpa-r.gpa, b)
		return nil
	}
	return m.ReadRAM(gpa, b)
}

func (g *guestView) Write(gpa uint64, b []byte) error {
	m := g.vp.p.Mem
	if r := m.mmioAt(gpa); r != nil {
		if gpa+uint64(len(b)) > r.gpa+r.size {
			return fmt.Errorf("%d-byte write at %#x runs past the device: %w", len(b), gpa, ErrOutsideMemory)
		}
		r.dev.WriteMMIO(gpa-r.gpa, b)
		return nil
	}
	return m.WriteRAM(gpa, b)
}

// prepare fills the emulator state from the VP's registers.
func (vp *VP) prepare() {
	r := vp.cpu.Regs()
	s := &vp.emuState
	s.GPR, s.RIP, s.RFLAGS = r.GPR, r.RIP, r.RFLAGS
	s.Mode = emul.ModeFromCS(r.EFER&EFERLMA != 0, r.CS.Attrib&SegL != 0, r.CS.Attrib&SegDB != 0)
	s.CPL = uint8(r.SS.Attrib >> 5 & 3)
	s.SegBase = [6]uint64{r.ES.Base, r.CS.Base, r.SS.Base, r.DS.Base, r.FS.Base, r.GS.Base}
	vp.view.vp = vp
	vp.view.paging = emul.Paging{CR0: r.CR0, CR3: r.CR3, CR4: r.CR4, EFER: r.EFER}
}

// emulate runs the instruction at RIP through the emulator (an MMIO
// access). Faults the emulator finds are the guest's and are injected;
// an instruction it does not support ends the partition.
func (vp *VP) emulate() error {
	vp.prepare()
	_, err := emul.Emulate(&vp.emuState, &vp.view)
	r := vp.cpu.Regs()
	var pf *emul.PageFault
	var ex *emul.Exception
	switch {
	case err == nil:
		r.GPR, r.RIP, r.RFLAGS = vp.emuState.GPR, vp.emuState.RIP, vp.emuState.RFLAGS
		return nil
	case errors.As(err, &pf):
		r.CR2 = pf.Addr
		vp.cpu.MarkStateDirty()
		vp.cpu.Inject(Event{Vector: VectorPF, Type: EventException, HasError: true, ErrorCode: pf.Code})
		return nil
	case errors.As(err, &ex):
		vp.cpu.Inject(Event{Vector: ex.Vector, Type: EventException, HasError: ex.HasErrorCode, ErrorCode: ex.ErrorCode})
		return nil
	}
	return err
}

// stringIO is INS/OUTS, which no device needs yet.
func (vp *VP) stringIO(e *Exit) error {
	return fmt.Errorf("string port I/O (INS/OUTS) is not emulated")
}

// decodeLength finds the length of the instruction at RIP when the hardware
// did not report it (SVM without NRIP save). A guest whose code cannot be
// fetched or decoded gets the plain length, which is exact for the
// unprefixed forms compilers emit; the guest then lives with its own
// inconsistency, the hypervisor is not affected.
func (vp *VP) decodeLength(plain int) int {
	vp.prepare()
	s := &vp.emuState
	la := s.RIP + s.SegBase[emul.SegCS]
	if s.Mode != emul.Mode64 {
		la &= 0xffff_ffff
	}
	n := 15
	if rest := 4096 - int(la%4096); rest < n {
		n = rest // an instruction crossing a page: the plain length is used
	}
	gpa, err := vp.view.Translate(la, emul.AccessFetch)
	if err != nil {
		return plain
	}
	b := vp.fetch[:n]
	if vp.p.Mem.ReadRAM(gpa, b) != nil {
		return plain
	}
	inst, err := x86asm.Decode(b, int(s.Mode))
	if err != nil || inst.Len == 0 {
		return plain
	}
	return inst.Len
}
