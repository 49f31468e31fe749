package emul

import (
	"fmt"

	"golang.org/x/arch/x86/x86asm"

	"gohv/x86"
)

// Emulate fetches, decodes and executes the one instruction at CS:RIP.
//
// On success it updates s (registers, RFLAGS, RIP advanced past the
// instruction, RFLAGS.RF cleared) and returns a Result. On error RIP is
// not advanced and, except for the iterations a REP string instruction
// already completed, no register is changed. Errors are *PageFault or
// *Exception (inject into the guest), *UnsupportedError (stop the
// partition), or whatever Memory returned.
//
// Supported: MOV (88, 89, 8A, 8B, C6, C7, A0-A3, and register forms),
// MOVZX, MOVSX, MOVSXD, MOVS/STOS/LODS of every width with or without REP
// (F2 acts as F3 for these), ADD, OR, ADC, SBB, AND, SUB, XOR, CMP, TEST,
// INC, DEC, NOT, NEG and XCHG with register, memory or immediate operands.
// RFLAGS.TF is not acted on: a caller that cares injects #DB afterwards.
//
// Exit path: allocates only what x86asm.Decode does and the error it
// returns; s, the instruction bytes and memory are guest-controlled.
func Emulate(s *State, mem Memory) (Result, error) {
	var e emu
	if err := e.begin(s, mem); err != nil {
		return Result{}, err
	}
	done, err := e.exec()
	res := e.result()
	if err != nil {
		return res, err
	}
	if !done {
		res.Incomplete = true
		return res, nil
	}
	s.RIP = e.nextIP
	s.RFLAGS &^= x86.RFLAGSRF
	return res, nil
}

// begin sets up the per-call context for s and mem and fetches and decodes
// the instruction at CS:RIP. Exit path: allocates only what x86asm.Decode
// does; s and memory are guest-controlled.
func (e *emu) begin(s *State, mem Memory) error {
	switch s.Mode {
	case Mode16, Mode32, Mode64:
	default:
		return fmt.Errorf("emul: invalid mode %d", s.Mode)
	}
	e.s, e.mem, e.mode = s, mem, s.Mode
	if s.CPL == 3 {
		e.acc = AccessUser
	} else if s.RFLAGS&x86.RFLAGSAC != 0 {
		e.acc = AccessAC
	}
	return e.fetch()
}

// result reports the call so far. Exit path: must not allocate.
func (e *emu) result() Result {
	return Result{Op: e.inst.Op, Len: e.inst.Len, Accesses: e.accesses, Iterations: e.iters}
}

type tlbEntry struct {
	page, gpa uint64
	acc       Access
	valid     bool
}

// emu is the per-call context; it lives on Emulate's or StringIO's stack.
type emu struct {
	s        *State
	mem      Memory
	ports    PortIO // StringIO's device; nil for Emulate
	mode     Mode
	acc      Access // AccessUser / AccessAC added to every data access
	inst     x86asm.Inst
	nfetched int
	nextIP   uint64
	accesses int
	iters    int
	tlb      [2]tlbEntry
	tlbNext  int
}

// unsupported names the decoded instruction in an *UnsupportedError.
// Allocates: error path only (the partition ends).
func (e *emu) unsupported() error {
	u := &UnsupportedError{RIP: e.s.RIP, N: e.nfetched}
	copy(u.Bytes[:], e.s.buf[:e.nfetched])
	u.Inst = x86asm.IntelSyntax(e.inst, e.s.RIP, nil)
	return u
}

// exec dispatches the decoded instruction; done is false when a REP string
// instruction stopped at the iteration cap. Exit path: must not allocate
// beyond the error it returns.
func (e *emu) exec() (done bool, err error) {
	switch op := e.inst.Op; op {
	case x86asm.MOV:
		return true, e.mov()
	case x86asm.MOVZX:
		return true, e.movx(false)
	case x86asm.MOVSX, x86asm.MOVSXD:
		return true, e.movx(true)
	case x86asm.ADD, x86asm.OR, x86asm.ADC, x86asm.SBB, x86asm.AND,
		x86asm.SUB, x86asm.XOR, x86asm.CMP, x86asm.TEST:
		return true, e.alu2(op)
	case x86asm.INC, x86asm.DEC, x86asm.NOT, x86asm.NEG:
		return true, e.alu1(op)
	case x86asm.XCHG:
		return true, e.xchg()
	case x86asm.MOVSB, x86asm.MOVSW, x86asm.MOVSD, x86asm.MOVSQ,
		x86asm.STOSB, x86asm.STOSW, x86asm.STOSD, x86asm.STOSQ,
		x86asm.LODSB, x86asm.LODSW, x86asm.LODSD, x86asm.LODSQ:
		return e.str(op)
	}
	return false, e.unsupported()
}
