package emul

import (
	"golang.org/x/arch/x86/x86asm"

	"gohv/x86"
)

// The string instructions: MOVS, STOS and LODS here, INS and OUTS through
// StringIO. One loop (repeat) runs them all: the REP count in rCX, the
// per-call iteration cap, the direction flag, rSI/rDI/rCX at the address
// size and the segment bases; each iteration's own work is strIter.

// strKind is what one iteration of a string instruction does.
type strKind uint8

const (
	strMOVS strKind = iota // [seg:rSI] to ES:[rDI]
	strSTOS                // rAX to ES:[rDI]
	strLODS                // [seg:rSI] to rAX
	strINS                 // port DX to ES:[rDI]
	strOUTS                // [seg:rSI] to port DX
)

// readsSrc reports a kind that reads [seg:rSI] and steps rSI. Exit path:
// must not allocate.
func (k strKind) readsSrc() bool { return k == strMOVS || k == strLODS || k == strOUTS }

// writesDst reports a kind that writes ES:[rDI] and steps rDI. Exit path:
// must not allocate.
func (k strKind) writesDst() bool { return k == strMOVS || k == strSTOS || k == strINS }

// strInst is one decoded string instruction.
type strInst struct {
	kind   strKind
	width  int // operand bytes: 1, 2, 4 or 8 (INS/OUTS: 1, 2 or 4)
	as     int // address size in bits: 16, 32 or 64
	srcSeg Seg // segment of the rSI operand: DS unless overridden; ES:rDI is fixed
	rep    bool
	port   uint16 // INS/OUTS only
	op     x86asm.Op
}

// hasRep reports an effective F3 or F2 prefix (on MOVS/STOS/LODS, F2
// repeats like F3). Exit path: must not allocate.
func (e *emu) hasRep() bool {
	for _, p := range e.inst.Prefix {
		if p == 0 {
			break
		}
		if p&x86asm.PrefixIgnored != 0 {
			continue
		}
		if b := p & 0xff; b == 0xf3 || b == 0xf2 {
			return true
		}
	}
	return false
}

// setAddrReg updates x86.RSI, x86.RDI or x86.RCX at the address size: 16-bit updates
// keep the upper bits, 32-bit ones zero-extend. Exit path: must not
// allocate.
func (e *emu) setAddrReg(idx int, v uint64, as int) {
	r := &e.s.GPR[idx]
	switch as {
	case 16:
		*r = *r&^0xffff | v&0xffff
	case 32:
		*r = uint64(uint32(v))
	default:
		*r = v
	}
}

// srcSegment is the segment of a decoded string instruction's rSI operand
// (Args[i]): DS or the override prefix's. Exit path: must not allocate.
func (e *emu) srcSegment(i int) (Seg, bool) {
	m, ok := e.inst.Args[i].(x86asm.Mem)
	if !ok || m.Segment < x86asm.ES || m.Segment > x86asm.GS {
		return 0, false
	}
	return Seg(m.Segment - x86asm.ES), true
}

// str runs a decoded MOVS, STOS or LODS. Exit path: must not allocate;
// registers and memory are guest-controlled.
func (e *emu) str(op x86asm.Op) (done bool, err error) {
	si := strInst{op: op, as: e.inst.AddrSize, srcSeg: SegDS, rep: e.hasRep()}
	switch op {
	case x86asm.MOVSB, x86asm.MOVSW, x86asm.MOVSD, x86asm.MOVSQ:
		si.kind = strMOVS
	case x86asm.STOSB, x86asm.STOSW, x86asm.STOSD, x86asm.STOSQ:
		si.kind = strSTOS
	default:
		si.kind = strLODS
	}
	switch op {
	case x86asm.MOVSB, x86asm.STOSB, x86asm.LODSB:
		si.width = 1
	case x86asm.MOVSW, x86asm.STOSW, x86asm.LODSW:
		si.width = 2
	case x86asm.MOVSD, x86asm.STOSD, x86asm.LODSD:
		si.width = 4
	default:
		si.width = 8
	}
	if si.kind != strSTOS {
		seg, ok := e.srcSegment(1)
		if !ok {
			return false, e.unsupported()
		}
		si.srcSeg = seg
	}
	return e.repeat(&si)
}

// repeat runs a string instruction's iterations, as the CPU does: with REP
// it stops when rCX (at the address size) reaches 0, and after
// State.RepLimit iterations in one call (done false: the caller re-enters
// the guest at the same instruction, which resumes it); without REP it runs
// once. rSI and rDI step by the operand width, backwards when RFLAGS.DF is
// set. An iteration that fails leaves the registers as the completed
// iterations left them.
//
// Exit path: must not allocate; registers and memory are guest-controlled.
func (e *emu) repeat(si *strInst) (done bool, err error) {
	if si.as != 16 && si.as != 32 && si.as != 64 {
		return false, e.unsupported()
	}
	limit := e.s.RepLimit
	if limit <= 0 {
		limit = DefaultRepLimit
	}
	delta := uint64(si.width)
	if e.s.RFLAGS&x86.RFLAGSDF != 0 {
		delta = -delta
	}
	amask := sizeMask(si.as / 8)
	g := &e.s.GPR
	for {
		if si.rep {
			if g[x86.RCX]&amask == 0 {
				return true, nil
			}
			if e.iters >= limit {
				return false, nil
			}
		}
		src := operand{kind: kMem, width: si.width, seg: si.srcSeg, la: e.segLA(si.srcSeg, g[x86.RSI]&amask)}
		dst := operand{kind: kMem, width: si.width, seg: SegES, la: e.segLA(SegES, g[x86.RDI]&amask)}
		if err := e.strIter(si, &src, &dst); err != nil {
			return false, err
		}
		if si.kind.readsSrc() {
			e.setAddrReg(x86.RSI, g[x86.RSI]+delta, si.as)
		}
		if si.kind.writesDst() {
			e.setAddrReg(x86.RDI, g[x86.RDI]+delta, si.as)
		}
		e.iters++
		if !si.rep {
			return true, nil
		}
		e.setAddrReg(x86.RCX, g[x86.RCX]-1, si.as)
	}
}

// strIter is one iteration's work. Every page it touches is translated
// before the first data access or port access, so a fault leaves memory and
// the device untouched. Exit path: must not allocate.
func (e *emu) strIter(si *strInst, src, dst *operand) error {
	if si.kind.readsSrc() {
		if err := e.prepare(src, AccessRead); err != nil {
			return err
		}
	}
	if si.kind.writesDst() {
		if err := e.prepare(dst, AccessWrite); err != nil {
			return err
		}
	}
	switch si.kind {
	case strMOVS:
		v, err := e.load(src)
		if err != nil {
			return err
		}
		return e.store(dst, v)
	case strSTOS:
		return e.store(dst, e.s.GPR[x86.RAX])
	case strLODS:
		v, err := e.load(src)
		if err != nil {
			return err
		}
		e.putReg(x86.RAX, si.width, false, v)
	case strINS:
		return e.store(dst, uint64(e.portIn(si.port, si.width)))
	case strOUTS:
		v, err := e.load(src)
		if err != nil {
			return err
		}
		e.portOut(si.port, si.width, uint32(v))
	}
	return nil
}
