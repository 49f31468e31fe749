package emul

import (
	"golang.org/x/arch/x86/x86asm"
)

// An operand is a decoded instruction argument: a general-purpose register,
// an immediate, or a memory location with its linear address.

const (
	kNone = iota
	kReg
	kMem
	kImm
)

type operand struct {
	kind  uint8
	reg   uint8 // GPR index (kReg)
	high  bool  // AH, CH, DH or BH (kReg)
	width int   // bytes: 1, 2, 4 or 8
	imm   uint64
	la    uint64 // linear address (kMem)
	seg   Seg
	gpa   [2]uint64 // translations of the first and, if split, second page
	n1    int       // bytes in the first page
}

// gpr maps an x86asm general-purpose register to its State.GPR index and
// width in bytes. Exit path: must not allocate.
func gpr(r x86asm.Reg) (idx uint8, width int, high, ok bool) {
	switch {
	case r >= x86asm.AL && r <= x86asm.R15B:
		i := uint8(r - x86asm.AL)
		switch {
		case i < 4: // AL, CL, DL, BL
			return i, 1, false, true
		case i < 8: // AH, CH, DH, BH
			return i - 4, 1, true, true
		default: // SPL, BPL, SIL, DIL, R8B..R15B
			return i - 4, 1, false, true
		}
	case r >= x86asm.AX && r <= x86asm.R15W:
		return uint8(r - x86asm.AX), 2, false, true
	case r >= x86asm.EAX && r <= x86asm.R15L:
		return uint8(r - x86asm.EAX), 4, false, true
	case r >= x86asm.RAX && r <= x86asm.R15:
		return uint8(r - x86asm.RAX), 8, false, true
	}
	return 0, 0, false, false
}

// getReg reads a register at a width (high: AH..BH). Exit path: must not
// allocate.
func (e *emu) getReg(idx uint8, width int, high bool) uint64 {
	v := e.s.GPR[idx&15]
	if high {
		return v >> 8 & 0xff
	}
	return v & sizeMask(width)
}

// putReg writes a register with x86 semantics: 8- and 16-bit writes merge,
// 32-bit writes zero-extend, 64-bit writes replace. Exit path: must not
// allocate.
func (e *emu) putReg(idx uint8, width int, high bool, v uint64) {
	r := &e.s.GPR[idx&15]
	switch {
	case high:
		*r = *r&^0xff00 | (v&0xff)<<8
	case width == 1:
		*r = *r&^0xff | v&0xff
	case width == 2:
		*r = *r&^0xffff | v&0xffff
	case width == 4:
		*r = uint64(uint32(v))
	default:
		*r = v
	}
}

// operandOf converts a decoded argument. memWidth is the width given to a
// memory operand; immediates get their width later. Exit path: must not
// allocate; a is decoded from guest bytes.
func (e *emu) operandOf(a x86asm.Arg, memWidth int) (operand, bool) {
	switch a := a.(type) {
	case x86asm.Reg:
		idx, w, high, ok := gpr(a)
		if !ok {
			return operand{}, false
		}
		return operand{kind: kReg, reg: idx, width: w, high: high}, true
	case x86asm.Mem:
		if !validWidth(memWidth) {
			return operand{}, false
		}
		la, seg, ok := e.linear(a)
		if !ok {
			return operand{}, false
		}
		return operand{kind: kMem, width: memWidth, la: la, seg: seg}, true
	case x86asm.Imm:
		return operand{kind: kImm, imm: uint64(a)}, true
	}
	return operand{}, false
}

// validWidth reports an operand width of 1, 2, 4 or 8 bytes. Exit path:
// must not allocate.
func validWidth(w int) bool { return w == 1 || w == 2 || w == 4 || w == 8 }

// addrReg reads a base or index register at its own width. Exit path: must
// not allocate.
func (e *emu) addrReg(r x86asm.Reg) (uint64, bool) {
	idx, w, high, ok := gpr(r)
	if !ok || high || w == 1 {
		return 0, false
	}
	return e.getReg(idx, w, false), true
}

// linear computes a memory operand's linear address and segment: base,
// scaled index and displacement at the address size, then the segment
// base. Exit path: must not allocate; registers and m are guest-controlled.
func (e *emu) linear(m x86asm.Mem) (uint64, Seg, bool) {
	as := e.inst.AddrSize
	if as != 16 && as != 32 && as != 64 {
		return 0, 0, false
	}
	var ea uint64
	switch m.Base {
	case 0:
	case x86asm.RIP:
		ea = e.nextIP
	case x86asm.EIP:
		ea = e.nextIP & 0xffffffff
	default:
		v, ok := e.addrReg(m.Base)
		if !ok {
			return 0, 0, false
		}
		ea = v
	}
	if m.Index != 0 {
		v, ok := e.addrReg(m.Index)
		if !ok {
			return 0, 0, false
		}
		ea += v * uint64(m.Scale)
	}
	ea += uint64(m.Disp)
	ea &= sizeMask(as / 8)

	var seg Seg
	switch {
	case m.Segment != 0:
		if m.Segment < x86asm.ES || m.Segment > x86asm.GS {
			return 0, 0, false
		}
		seg = Seg(m.Segment - x86asm.ES)
	case m.Base == x86asm.SP || m.Base == x86asm.BP ||
		m.Base == x86asm.ESP || m.Base == x86asm.EBP ||
		m.Base == x86asm.RSP || m.Base == x86asm.RBP:
		seg = SegSS
	default:
		seg = SegDS
	}
	return e.segLA(seg, ea), seg, true
}

// segLA adds the segment base to an effective address: in 64-bit mode only
// FS and GS have one, elsewhere the sum wraps at 4 GiB. Exit path: must not
// allocate.
func (e *emu) segLA(seg Seg, ea uint64) uint64 {
	if e.mode == Mode64 {
		if seg == SegFS || seg == SegGS {
			return ea + e.s.SegBase[seg]
		}
		return ea
	}
	return (e.s.SegBase[seg] + ea) & 0xffffffff
}

// sizeMask is the mask of a w-byte value. Exit path: must not allocate.
func sizeMask(w int) uint64 {
	if w >= 8 {
		return ^uint64(0)
	}
	return 1<<(8*uint(w)) - 1
}

// twoOperands decodes Args[0] and Args[1] for an instruction whose operands
// share one width: a register's width, else the memory width. An
// immediate takes that width (x86asm already sign-extended it). Exit path:
// must not allocate.
func (e *emu) twoOperands() (dst, src operand, ok bool) {
	in := &e.inst
	if in.Args[2] != nil {
		return dst, src, false
	}
	dst, ok1 := e.operandOf(in.Args[0], in.MemBytes)
	src, ok2 := e.operandOf(in.Args[1], in.MemBytes)
	if !ok1 || !ok2 || dst.kind == kImm || (dst.kind == kMem && src.kind == kMem) {
		return dst, src, false
	}
	w := in.MemBytes
	switch {
	case dst.kind == kReg:
		w = dst.width
	case src.kind == kReg:
		w = src.width
	}
	if !validWidth(w) {
		return dst, src, false
	}
	for _, o := range [2]*operand{&dst, &src} {
		switch o.kind {
		case kReg:
			if o.width != w {
				return dst, src, false
			}
		case kMem:
			if o.width != w {
				return dst, src, false
			}
		case kImm:
			o.width = w
		}
	}
	return dst, src, true
}

// RegisterIndex is the GPR index (x86.RAX … x86.R15) and width in bytes
// of a general-purpose register operand; ok is false for anything else,
// the high-byte registers (AH…BH) included.
func RegisterIndex(r x86asm.Reg) (idx uint8, width int, ok bool) {
	idx, width, high, ok := gpr(r)
	if !ok || high {
		return 0, 0, false
	}
	return idx, width, true
}
