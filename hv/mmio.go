package hv

import (
	"errors"
	"fmt"

	"golang.org/x/arch/x86/x86asm"

	"gohv/hv/emul"
	"gohv/hv/vcpu"
	"gohv/x86"
)

// nestedFault handles a guest-physical access the nested tables refused:
// an MMIO range is emulated; anything else is outside the partition's
// memory map and ends it.
func (vp *VP) nestedFault(e *vcpu.Exit) {
	r := vp.regs
	if vp.mmioAt(e.GPA) != nil {
		if err := vp.emulate(); err != nil {
			vp.p.crash(vp.index, fmt.Errorf("vp %d: mmio at gpa %#x, rip %#x: %w", vp.index, e.GPA, r.RIP, err))
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
	vp.p.crash(vp.index, fmt.Errorf("vp %d: %s of gpa %#x at rip %#x: %w", vp.index, kind, e.GPA, r.RIP, ErrOutsideMemory))
}

// mmioAt finds the device behind gpa for this VP: its local APIC's page
// (at IA32_APIC_BASE while in xAPIC mode), else the partition's MMIO
// ranges. The APIC page wins over another device the guest moved it onto;
// RAM wins over the APIC page, because accesses to RAM never exit.
func (vp *VP) mmioAt(gpa uint64) *mmioRange {
	if r := &vp.apicPage; gpa >= r.gpa && gpa-r.gpa < r.size {
		return r
	}
	return vp.p.Mem.mmioAt(gpa)
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
	var gpa uint64
	var err error
	if acc&emul.AccessFetch != 0 {
		// The CPU set the accessed bits when it fetched the instruction.
		gpa, err = g.paging.Walk(la, acc, g.vp.p.Mem.ReadU64)
	} else {
		gpa, err = g.paging.WalkAD(la, acc, g.vp.p.Mem.ReadU64, g.vp.p.Mem.casU64)
	}
	if err == nil && acc&emul.AccessFetch != 0 && g.vp.mmioAt(gpa) != nil {
		return 0, fmt.Errorf("instruction fetch from MMIO at gpa %#x", gpa)
	}
	return gpa, err
}

func (g *guestView) Read(gpa uint64, b []byte) error {
	m := g.vp.p.Mem
	if r := g.vp.mmioAt(gpa); r != nil {
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
	if r := g.vp.mmioAt(gpa); r != nil {
		if gpa+uint64(len(b)) > r.gpa+r.size {
			return fmt.Errorf("%d-byte write at %#x runs past the device: %w", len(b), gpa, ErrOutsideMemory)
		}
		r.dev.WriteMMIO(gpa-r.gpa, b)
		if r.dev == MMIODevice(g.vp.lapic) {
			g.vp.tprChanged() // a TPR write through the page reaches CR8
		}
		return nil
	}
	return m.WriteRAM(gpa, b)
}

// prepare fills the emulator state from the VP's registers.
func (vp *VP) prepare() {
	vp.cpu.SyncState()
	r := vp.regs
	s := &vp.emuState
	s.GPR, s.RIP, s.RFLAGS = r.GPR, r.RIP, r.RFLAGS
	s.Mode = emul.ModeFromCS(r.EFER&x86.EFERLMA != 0, r.CS.Attrib&x86.SegL != 0, r.CS.Attrib&x86.SegDB != 0)
	s.CPL = uint8(r.SS.Attrib >> 5 & 3)
	s.SegBase = [6]uint64{r.ES.Base, r.CS.Base, r.SS.Base, r.DS.Base, r.FS.Base, r.GS.Base}
	s.LA57 = r.CR4&x86.CR4LA57 != 0
	vp.view.paging = emul.Paging{CR0: r.CR0, CR3: r.CR3, CR4: r.CR4, EFER: r.EFER, MaxPhysAddr: vp.p.hv.Model.PhysAddrBits()}
}

// emulate runs the instruction at RIP through the emulator (an MMIO
// access). Faults the emulator finds are the guest's and are injected;
// an instruction it does not support ends the partition.
func (vp *VP) emulate() error {
	vp.prepare()
	_, err := emul.Emulate(&vp.emuState, &vp.view)
	r := vp.regs
	r.GPR = vp.emuState.GPR // a REP string instruction keeps the iterations it completed
	if err != nil {
		return vp.injectFault(err)
	}
	r.RIP, r.RFLAGS = vp.emuState.RIP, vp.emuState.RFLAGS
	vp.cpu.ClearInterruptShadow()
	return nil
}

// injectFault delivers a fault the emulator found in the guest's own
// state (#PF with CR2, or another exception) and returns nil; any other
// error is returned for the caller to end the partition with.
func (vp *VP) injectFault(err error) error {
	var pf *emul.PageFault
	var ex *emul.Exception
	switch {
	case errors.As(err, &pf):
		vp.regs.CR2 = pf.Addr
		vp.cpu.MarkStateDirty()
		vp.cpu.Inject(vcpu.Exception(x86.VectorPF, pf.Code))
		return nil
	case errors.As(err, &ex):
		vp.cpu.Inject(vcpu.Event{Vector: ex.Vector, Type: vcpu.EventException, HasError: ex.HasErrorCode, ErrorCode: ex.ErrorCode})
		return nil
	}
	return err
}

// stringIO emulates INS and OUTS, with or without REP, through the
// instruction emulator (which steps RSI/RDI/RCX, walks the guest's page
// tables and caps the iterations per exit). A fault it finds is the guest's
// and is injected, keeping the completed iterations; a count left over
// resumes when the guest re-enters the same instruction; RIP moves on only
// when the instruction is done. Exit path: allocates only what decoding
// the instruction does; everything but the exit is guest-controlled.
func (vp *VP) stringIO(e *vcpu.Exit) error {
	vp.prepare()
	res, err := emul.StringIO(&vp.emuState, &vp.view, vp.p.portDevice(e.Port),
		emul.PortString{Port: e.Port, Size: int(e.Size), In: e.In, Rep: e.Rep})
	vp.regs.GPR = vp.emuState.GPR // completed iterations stand, fault or not
	if err != nil {
		return vp.injectFault(err)
	}
	if !res.Incomplete {
		if e.InstrLen == 0 {
			e.InstrLen = uint8(res.Len) // decoded already: skip need not decode again
		}
		vp.skip(e, opIO)
	}
	return nil
}

// fetchAt reads n bytes at RIP into vp.fetch; false if they cannot be read
// (or cross a page).
func (vp *VP) fetchAt(n int) bool {
	s := &vp.emuState
	la := s.RIP + s.SegBase[emul.SegCS]
	if s.Mode != emul.Mode64 {
		la &= 0xffff_ffff
	}
	if int(la%4096)+n > 4096 {
		return false
	}
	gpa, ok := vp.fetchGPA(la)
	if !ok {
		var err error
		if gpa, err = vp.view.Translate(la, emul.AccessFetch); err != nil {
			return false
		}
	}
	return vp.readCode(gpa, vp.fetch[:n])
}

// decodeAt fetches and decodes the instruction at RIP through the guest's
// page tables; vp.prepare must have run. An instruction that crosses a page
// is cut at the boundary (and then usually fails to decode).
func (vp *VP) decodeAt() (x86asm.Inst, error) {
	s := &vp.emuState
	la := s.RIP + s.SegBase[emul.SegCS]
	if s.Mode != emul.Mode64 {
		la &= 0xffff_ffff
	}
	n := min(15, 4096-int(la%4096))
	gpa, err := vp.view.Translate(la, emul.AccessFetch)
	if err != nil {
		return x86asm.Inst{}, err
	}
	b := vp.fetch[:n]
	if err := vp.p.Mem.ReadRAM(gpa, b); err != nil {
		return x86asm.Inst{}, err
	}
	return x86asm.Decode(b, int(s.Mode))
}

// crWriteSource reads the value a MOV to CRcr at RIP writes, for a backend
// that could not say which register it came from. Guest-controlled: the
// bytes at RIP must be exactly such a MOV.
func (vp *VP) crWriteSource(cr uint8) (uint64, bool) {
	vp.prepare()
	inst, err := vp.decodeAt()
	if err != nil || inst.Op != x86asm.MOV || inst.Args[0] != x86asm.CR0+x86asm.Reg(cr) {
		return 0, false
	}
	src, ok := inst.Args[1].(x86asm.Reg)
	if !ok {
		return 0, false
	}
	idx, _, ok := emul.RegisterIndex(src)
	if !ok {
		return 0, false
	}
	return vp.regs.GPR[idx], true
}

// decodeLength finds the length of the instruction at RIP when the hardware
// did not report it (SVM without NRIP save). A guest whose code cannot be
// fetched or decoded gets the plain length, which is exact for the
// unprefixed forms compilers emit; the guest then lives with its own
// inconsistency, the hypervisor is not affected.
func (vp *VP) decodeLength(op opcode) int {
	plain := op.n
	if vp.fetchOpcode(op) {
		return op.n
	}
	vp.prepareFetch()
	if vp.fetchAt(op.n) && string(vp.fetch[:op.n]) == string(op.b[:op.n]) {
		return op.n
	}
	vp.prepare()
	inst, err := vp.decodeAt()
	if err != nil || inst.Len == 0 {
		return plain
	}
	return inst.Len
}
