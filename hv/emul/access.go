package emul

import (
	"encoding/binary"
	"fmt"

	"gohv/x86"
)

// translate is Memory.Translate behind a two-entry cache, so that a REP
// string instruction translates each page once per call. Exit path: must
// not allocate beyond Memory.Translate; la is guest-controlled.
func (e *emu) translate(la uint64, acc Access) (uint64, error) {
	page := la &^ 0xfff
	for i := range e.tlb {
		t := &e.tlb[i]
		if t.valid && t.page == page && t.acc == acc {
			return t.gpa | la&0xfff, nil
		}
	}
	gpa, err := e.mem.Translate(la, acc)
	if err != nil {
		return 0, err
	}
	if gpa&0xfff != la&0xfff {
		return 0, errOffset(la, gpa)
	}
	e.tlb[e.tlbNext] = tlbEntry{page: page, gpa: gpa &^ 0xfff, acc: acc, valid: true}
	e.tlbNext ^= 1
	return gpa, nil
}

// prepare checks and translates a memory operand for an access of kind
// acc (AccessWrite for anything that writes it). It makes no data access.
// Exit path: allocates only the fault it returns; o is guest-controlled.
func (e *emu) prepare(o *operand, acc Access) error {
	if o.kind != kMem {
		return nil
	}
	w := uint64(o.width)
	if e.mode == Mode64 {
		vb := e.vbits()
		if !canonical(o.la, vb) || !canonical(o.la+w-1, vb) {
			v := uint8(x86.VectorGP)
			if o.seg == SegSS {
				v = x86.VectorSS
			}
			return &Exception{Vector: v, HasErrorCode: true}
		}
	}
	acc |= e.acc
	gpa, err := e.translate(o.la, acc)
	if err != nil {
		return err
	}
	o.gpa[0] = gpa
	o.n1 = o.width
	if off := o.la & 0xfff; off+w > 4096 {
		o.n1 = int(4096 - off)
		gpa2, err := e.translate(e.wrapLA((o.la|0xfff)+1), acc)
		if err != nil {
			return err
		}
		o.gpa[1] = gpa2
	}
	return nil
}

// load reads a prepared memory operand, split at a page boundary if it
// straddles one. Exit path: must not allocate.
func (e *emu) load(o *operand) (uint64, error) {
	b := e.s.buf[16 : 16+o.width]
	if err := e.mem.Read(o.gpa[0], b[:o.n1]); err != nil {
		return 0, err
	}
	e.accesses++
	if o.n1 < o.width {
		if err := e.mem.Read(o.gpa[1], b[o.n1:]); err != nil {
			return 0, err
		}
		e.accesses++
	}
	switch o.width {
	case 1:
		return uint64(b[0]), nil
	case 2:
		return uint64(binary.LittleEndian.Uint16(b)), nil
	case 4:
		return uint64(binary.LittleEndian.Uint32(b)), nil
	}
	return binary.LittleEndian.Uint64(b), nil
}

// store writes a prepared memory operand, split like load. Exit path: must
// not allocate.
func (e *emu) store(o *operand, v uint64) error {
	b := e.s.buf[16 : 16+o.width]
	switch o.width {
	case 1:
		b[0] = byte(v)
	case 2:
		binary.LittleEndian.PutUint16(b, uint16(v))
	case 4:
		binary.LittleEndian.PutUint32(b, uint32(v))
	default:
		binary.LittleEndian.PutUint64(b, v)
	}
	if err := e.mem.Write(o.gpa[0], b[:o.n1]); err != nil {
		return err
	}
	e.accesses++
	if o.n1 < o.width {
		if err := e.mem.Write(o.gpa[1], b[o.n1:]); err != nil {
			return err
		}
		e.accesses++
	}
	return nil
}

// get reads an operand's value, zero-extended to 64 bits. Exit path: must
// not allocate.
func (e *emu) get(o *operand) (uint64, error) {
	switch o.kind {
	case kReg:
		return e.getReg(o.reg, o.width, o.high), nil
	case kImm:
		return o.imm & sizeMask(o.width), nil
	case kMem:
		return e.load(o)
	}
	return 0, errNoOperand
}

var errNoOperand = fmt.Errorf("emul: internal error: missing operand")

// put writes an operand (register or memory). Exit path: must not
// allocate.
func (e *emu) put(o *operand, v uint64) error {
	switch o.kind {
	case kReg:
		e.putReg(o.reg, o.width, o.high, v)
		return nil
	case kMem:
		return e.store(o, v)
	}
	return errNoOperand
}
