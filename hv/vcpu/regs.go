package vcpu

import "gohv/x86"

// Segment is a segment register with its attributes in the packed form of
// x86.Seg* (type 3:0, S 4, DPL 6:5, P 7, AVL 8, L 9, D/B 10, G 11; APM Vol.
// 2 Table B-2). The VMX backend converts to and from VMX access rights.
type Segment struct {
	Selector uint16
	Attrib   uint16
	Limit    uint32
	Base     uint64
}

// DPL is the descriptor privilege level; for SS it is the CPL.
func (s Segment) DPL() uint8 { return uint8(s.Attrib & x86.SegDPL >> x86.SegDPLShift) }

// DescTable is GDTR or IDTR.
type DescTable struct {
	Base  uint64
	Limit uint32
}

// Regs is a VP's architectural state as the core sees it. After every exit
// Run returns, the backend has filled GPR, RIP, RFLAGS, the control
// registers, EFER, PAT and the parts of CS and SS that give the mode and
// CPL (an exit it offers a FastExit has only what FastState names); before
// every entry it loads GPR, RIP and RFLAGS back. The rest is loaded only after
// MarkStateDirty (initial state, an emulated write to EFER, PAT or a
// control register). GPR is indexed by x86.RAX … x86.R15; CR8 is kept
// current both ways on every exit and entry.
type Regs struct {
	GPR                      [16]uint64
	RIP, RFLAGS              uint64
	CR0, CR2, CR3, CR4, EFER uint64
	CS, DS, ES, SS, FS, GS   Segment
	TR, LDTR                 Segment
	GDTR, IDTR               DescTable
	PAT                      uint64
	// CR8 is the task priority as MOV to/from CR8 sees it (the local
	// APIC's TPR bits 7:4). Backends load it before every entry and
	// store it after every exit, wherever the hardware keeps it (SVM's
	// V_TPR; VMX exits on CR8 accesses instead); the core keeps it in step
	// with the VP's local APIC.
	CR8 uint64
}

// CPL is the current privilege level (SS.DPL).
func (r *Regs) CPL() uint8 { return r.SS.DPL() }

// LongMode reports whether the VP runs in IA-32e mode (EFER.LMA).
func (r *Regs) LongMode() bool { return r.EFER&x86.EFERLMA != 0 }

// ResetRegs is the state of a VP after RESET (SDM Vol. 3A 10.1.1, Table
// 10-1): real mode at F000:FFF0 with CS base FFFF0000, flat 64 KiB data
// segments, the reset PAT. Loaders start from it and change what their
// boot protocol sets.
func ResetRegs() Regs {
	data := Segment{Attrib: x86.SegTypeDataRWA | x86.SegS | x86.SegP, Limit: 0xffff}
	r := Regs{
		RIP:    0xfff0,
		RFLAGS: x86.RFLAGSFixed,
		CR0:    x86.CR0CD | x86.CR0NW | x86.CR0ET,
		CS:     Segment{Selector: 0xf000, Base: 0xffff_0000, Limit: 0xffff, Attrib: x86.SegTypeCodeXRA | x86.SegS | x86.SegP},
		DS:     data, ES: data, SS: data, FS: data, GS: data,
		// TR holds a busy 32-bit TSS, as KVM and Bochs reset it: with a
		// 16-bit TSS in TR, Bochs refuses (#GP) the MOV to CR0 that
		// activates IA-32e mode, which is how Linux's trampoline brings
		// an application processor from its SIPI to long mode.
		TR:   Segment{Attrib: x86.SegTypeTSSBusy | x86.SegP, Limit: 0xffff},
		LDTR: Segment{Attrib: x86.SegTypeLDT | x86.SegP, Limit: 0xffff},
		GDTR: DescTable{Limit: 0xffff},
		IDTR: DescTable{Limit: 0xffff},
		PAT:  x86.PATReset,
	}
	return r
}
