package emul

// mov is MOV between registers, memory and immediates. Exit path: must not
// allocate; operands are guest-controlled.
func (e *emu) mov() error {
	dst, src, ok := e.twoOperands()
	if !ok {
		return e.unsupported()
	}
	if err := e.prepare(&src, AccessRead); err != nil {
		return err
	}
	if err := e.prepare(&dst, AccessWrite); err != nil {
		return err
	}
	v, err := e.get(&src)
	if err != nil {
		return err
	}
	return e.put(&dst, v)
}

// movx is MOVZX, MOVSX and MOVSXD: a narrower source extended into a
// register. Exit path: must not allocate; the source is guest-controlled.
func (e *emu) movx(signed bool) error {
	in := &e.inst
	if in.Args[2] != nil {
		return e.unsupported()
	}
	dst, ok1 := e.operandOf(in.Args[0], 0)
	src, ok2 := e.operandOf(in.Args[1], in.MemBytes)
	if !ok1 || !ok2 || dst.kind != kReg || src.kind == kImm || src.width > dst.width {
		return e.unsupported()
	}
	if err := e.prepare(&src, AccessRead); err != nil {
		return err
	}
	v, err := e.get(&src)
	if err != nil {
		return err
	}
	if signed {
		sh := 64 - 8*uint(src.width)
		v = uint64(int64(v<<sh) >> sh)
	}
	e.putReg(dst.reg, dst.width, dst.high, v&sizeMask(dst.width))
	return nil
}

// xchg swaps a register with a register or memory. Exit path: must not
// allocate; operands are guest-controlled.
func (e *emu) xchg() error {
	a, b, ok := e.twoOperands()
	if !ok || b.kind == kImm {
		return e.unsupported()
	}
	if err := e.prepare(&a, AccessWrite); err != nil {
		return err
	}
	if err := e.prepare(&b, AccessWrite); err != nil {
		return err
	}
	va, err := e.get(&a)
	if err != nil {
		return err
	}
	vb, err := e.get(&b)
	if err != nil {
		return err
	}
	// The memory side (if any) is written first, so a failed write leaves
	// the registers untouched.
	if a.kind == kMem {
		if err := e.put(&a, vb); err != nil {
			return err
		}
		return e.put(&b, va)
	}
	if err := e.put(&b, va); err != nil {
		return err
	}
	return e.put(&a, vb)
}
