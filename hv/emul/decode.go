package emul

import (
	"fmt"

	"golang.org/x/arch/x86/x86asm"

	"gohv/x86"
)

// wrapLA truncates a linear address outside 64-bit mode. Exit path: must
// not allocate.
func (e *emu) wrapLA(la uint64) uint64 {
	if e.mode != Mode64 {
		return la & 0xffffffff
	}
	return la
}

// fetch reads the instruction at CS:RIP (up to 15 bytes, the second page
// only when the first ends mid-instruction, as on hardware) and decodes it
// in the code mode. Exit path: allocates only what x86asm.Decode does and
// the error it returns; the bytes are guest-controlled.
func (e *emu) fetch() error {
	s := e.s
	var la, ip uint64
	switch e.mode {
	case Mode64:
		ip = s.RIP
		la = ip
	case Mode32:
		ip = s.RIP & 0xffffffff
		la = (s.SegBase[SegCS] + ip) & 0xffffffff
	default:
		ip = s.RIP & 0xffff
		la = (s.SegBase[SegCS] + ip) & 0xffffffff
	}
	acc := AccessFetch
	if s.CPL == 3 {
		acc |= AccessUser
	}
	if e.mode == Mode64 && !canonical(la, e.vbits()) {
		return &Exception{Vector: x86.VectorGP, HasErrorCode: true}
	}
	n := 15
	if r := 4096 - int(la&0xfff); r < n {
		n = r
	}
	gpa, err := e.mem.Translate(la, acc)
	if err != nil {
		return err
	}
	if gpa&0xfff != la&0xfff {
		return errOffset(la, gpa)
	}
	if err := e.mem.Read(gpa, s.buf[:n]); err != nil {
		return err
	}
	inst, derr := x86asm.Decode(s.buf[:n], int(e.mode))
	if (derr != nil || inst.Op == 0) && n < 15 {
		// Possibly cut short by the page boundary: fetch the rest from
		// the next page. Only now may that page fault, as on hardware.
		la2 := e.wrapLA((la | 0xfff) + 1)
		gpa2, err := e.mem.Translate(la2, acc)
		if err != nil {
			return err
		}
		if gpa2&0xfff != 0 {
			return errOffset(la2, gpa2)
		}
		if err := e.mem.Read(gpa2, s.buf[n:15]); err != nil {
			return err
		}
		n = 15
		inst, derr = x86asm.Decode(s.buf[:15], int(e.mode))
	}
	e.nfetched = n
	if derr != nil || inst.Op == 0 || inst.Len < 1 || inst.Len > n {
		return &UnsupportedError{RIP: s.RIP, Inst: "(bad)", Bytes: [15]byte(s.buf[:15]), N: n}
	}
	e.inst = inst
	next := ip + uint64(inst.Len)
	switch e.mode {
	case Mode32:
		next &= 0xffffffff
	case Mode16:
		next &= 0xffff
	}
	e.nextIP = next
	for _, p := range inst.Prefix {
		if p == 0 {
			break
		}
		if p&x86asm.PrefixInvalid != 0 { // LOCK where LOCK is not allowed
			return &Exception{Vector: x86.VectorUD}
		}
	}
	return nil
}

// errOffset reports a Memory.Translate that broke its contract (a caller
// bug, not the guest's). Allocates: error path only.
func errOffset(la, gpa uint64) error {
	return fmt.Errorf("emul: Translate(%#x) returned gpa %#x with a different page offset", la, gpa)
}

// vbits is the linear-address width for canonical checks. Exit path: must
// not allocate.
func (e *emu) vbits() uint {
	if e.s.LA57 {
		return 57
	}
	return 48
}
