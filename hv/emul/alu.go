package emul

import (
	"math/bits"

	"golang.org/x/arch/x86/x86asm"

	"gohv/x86"
)

// arithFlags are the status flags an arithmetic instruction defines.
const arithFlags uint64 = x86.RFLAGSCF | x86.RFLAGSPF | x86.RFLAGSAF | x86.RFLAGSZF | x86.RFLAGSSF | x86.RFLAGSOF

// setFlags replaces the RFLAGS bits in mask with f's. Exit path: must not
// allocate.
func (e *emu) setFlags(mask, f uint64) {
	e.s.RFLAGS = e.s.RFLAGS&^mask | f&mask
}

// alu2 is a two-operand ADD, OR, ADC, SBB, AND, SUB, XOR, CMP or TEST.
// Exit path: must not allocate; operands are guest-controlled.
func (e *emu) alu2(op x86asm.Op) error {
	dst, src, ok := e.twoOperands()
	if !ok {
		return e.unsupported()
	}
	write := op != x86asm.CMP && op != x86asm.TEST
	acc := AccessRead
	if write {
		acc = AccessWrite
	}
	if err := e.prepare(&dst, acc); err != nil {
		return err
	}
	if err := e.prepare(&src, AccessRead); err != nil {
		return err
	}
	a, err := e.get(&dst)
	if err != nil {
		return err
	}
	b, err := e.get(&src)
	if err != nil {
		return err
	}
	cf := e.s.RFLAGS & x86.RFLAGSCF
	var res, f uint64
	switch op {
	case x86asm.ADD:
		res, f = add(a, b, 0, dst.width)
	case x86asm.ADC:
		res, f = add(a, b, cf, dst.width)
	case x86asm.SUB, x86asm.CMP:
		res, f = sub(a, b, 0, dst.width)
	case x86asm.SBB:
		res, f = sub(a, b, cf, dst.width)
	case x86asm.AND, x86asm.TEST:
		res = a & b
		f = logicFlags(res, dst.width)
	case x86asm.OR:
		res = a | b
		f = logicFlags(res, dst.width)
	case x86asm.XOR:
		res = a ^ b
		f = logicFlags(res, dst.width)
	}
	if write {
		if err := e.put(&dst, res); err != nil {
			return err
		}
	}
	e.setFlags(arithFlags, f)
	return nil
}

// alu1 is a one-operand INC, DEC, NOT or NEG. Exit path: must not
// allocate; the operand is guest-controlled.
func (e *emu) alu1(op x86asm.Op) error {
	in := &e.inst
	if in.Args[1] != nil {
		return e.unsupported()
	}
	o, ok := e.operandOf(in.Args[0], in.MemBytes)
	if !ok || o.kind == kImm {
		return e.unsupported()
	}
	if err := e.prepare(&o, AccessWrite); err != nil {
		return err
	}
	a, err := e.get(&o)
	if err != nil {
		return err
	}
	var res, f uint64
	mask := arithFlags
	switch op {
	case x86asm.INC:
		res, f = add(a, 1, 0, o.width)
		mask &^= x86.RFLAGSCF
	case x86asm.DEC:
		res, f = sub(a, 1, 0, o.width)
		mask &^= x86.RFLAGSCF
	case x86asm.NEG:
		res, f = sub(0, a, 0, o.width)
	case x86asm.NOT:
		res = ^a & sizeMask(o.width)
		mask = 0
	}
	if err := e.put(&o, res); err != nil {
		return err
	}
	e.setFlags(mask, f)
	return nil
}

// Flag computation, shared by every arithmetic instruction.

// szp returns ZF, SF and PF for a w-byte result. Exit path: must not
// allocate.
func szp(res uint64, w int) uint64 {
	var f uint64
	if res == 0 {
		f |= x86.RFLAGSZF
	}
	if res>>(8*uint(w)-1)&1 != 0 {
		f |= x86.RFLAGSSF
	}
	if bits.OnesCount8(uint8(res))&1 == 0 {
		f |= x86.RFLAGSPF
	}
	return f
}

// logicFlags are a logic instruction's flags: CF, OF and AF clear. Exit
// path: must not allocate.
func logicFlags(res uint64, w int) uint64 { return szp(res, w) }

// add returns a+b+c truncated to w bytes and its arithmetic flags. Exit
// path: must not allocate.
func add(a, b, c uint64, w int) (uint64, uint64) {
	m := sizeMask(w)
	var res, carry uint64
	if w == 8 {
		res, carry = bits.Add64(a, b, c)
	} else {
		full := a + b + c
		res, carry = full&m, full>>(8*uint(w))&1
	}
	f := szp(res, w)
	if carry != 0 {
		f |= x86.RFLAGSCF
	}
	if ((a^res)&(b^res))>>(8*uint(w)-1)&1 != 0 {
		f |= x86.RFLAGSOF
	}
	if (a^b^res)&0x10 != 0 {
		f |= x86.RFLAGSAF
	}
	return res, f
}

// sub returns a-b-c truncated to w bytes and its arithmetic flags. Exit
// path: must not allocate.
func sub(a, b, c uint64, w int) (uint64, uint64) {
	m := sizeMask(w)
	var res, borrow uint64
	if w == 8 {
		res, borrow = bits.Sub64(a, b, c)
	} else {
		res = (a - b - c) & m
		if a < b+c {
			borrow = 1
		}
	}
	f := szp(res, w)
	if borrow != 0 {
		f |= x86.RFLAGSCF
	}
	if ((a^b)&(a^res))>>(8*uint(w)-1)&1 != 0 {
		f |= x86.RFLAGSOF
	}
	if (a^b^res)&0x10 != 0 {
		f |= x86.RFLAGSAF
	}
	return res, f
}
