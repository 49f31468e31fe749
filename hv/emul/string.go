package emul

import (
	"golang.org/x/arch/x86/x86asm"

	"gohv/x86"
)

// hasRep reports an effective F3 or F2 prefix (on MOVS/STOS/LODS, F2
// repeats like F3).
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

// setAddrReg updates RSI, RDI or RCX at the address size: 16-bit updates
// keep the upper bits, 32-bit ones zero-extend.
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

const (
	strMOVS = iota
	strSTOS
	strLODS
)

func (e *emu) str(op x86asm.Op) (done bool, err error) {
	in := &e.inst
	var kind, w int
	switch op {
	case x86asm.MOVSB, x86asm.MOVSW, x86asm.MOVSD, x86asm.MOVSQ:
		kind = strMOVS
	case x86asm.STOSB, x86asm.STOSW, x86asm.STOSD, x86asm.STOSQ:
		kind = strSTOS
	default:
		kind = strLODS
	}
	switch op {
	case x86asm.MOVSB, x86asm.STOSB, x86asm.LODSB:
		w = 1
	case x86asm.MOVSW, x86asm.STOSW, x86asm.LODSW:
		w = 2
	case x86asm.MOVSD, x86asm.STOSD, x86asm.LODSD:
		w = 4
	default:
		w = 8
	}
	as := in.AddrSize
	if as != 16 && as != 32 && as != 64 {
		return false, e.unsupported()
	}
	amask := sizeMask(as / 8)
	srcSeg := SegDS
	if kind != strSTOS {
		m, ok := in.Args[1].(x86asm.Mem)
		if !ok || m.Segment < x86asm.ES || m.Segment > x86asm.GS {
			return false, e.unsupported()
		}
		srcSeg = Seg(m.Segment - x86asm.ES)
	}
	rep := e.hasRep()
	limit := e.s.RepLimit
	if limit <= 0 {
		limit = DefaultRepLimit
	}
	delta := uint64(w)
	if e.s.RFLAGS&x86.RFLAGSDF != 0 {
		delta = -delta
	}
	g := &e.s.GPR
	for {
		if rep {
			if g[RCX]&amask == 0 {
				return true, nil
			}
			if e.iters >= limit {
				return false, nil
			}
		}
		src := operand{kind: kMem, width: w, seg: srcSeg, la: e.segLA(srcSeg, g[RSI]&amask)}
		dst := operand{kind: kMem, width: w, seg: SegES, la: e.segLA(SegES, g[RDI]&amask)}
		switch kind {
		case strMOVS:
			if err := e.prepare(&src, AccessRead); err != nil {
				return false, err
			}
			if err := e.prepare(&dst, AccessWrite); err != nil {
				return false, err
			}
			v, err := e.load(&src)
			if err != nil {
				return false, err
			}
			if err := e.store(&dst, v); err != nil {
				return false, err
			}
			e.setAddrReg(RSI, g[RSI]+delta, as)
			e.setAddrReg(RDI, g[RDI]+delta, as)
		case strSTOS:
			if err := e.prepare(&dst, AccessWrite); err != nil {
				return false, err
			}
			if err := e.store(&dst, g[RAX]); err != nil {
				return false, err
			}
			e.setAddrReg(RDI, g[RDI]+delta, as)
		case strLODS:
			if err := e.prepare(&src, AccessRead); err != nil {
				return false, err
			}
			v, err := e.load(&src)
			if err != nil {
				return false, err
			}
			e.putReg(RAX, w, false, v)
			e.setAddrReg(RSI, g[RSI]+delta, as)
		}
		e.iters++
		if !rep {
			return true, nil
		}
		e.setAddrReg(RCX, g[RCX]-1, as)
	}
}
