// Package emul emulates single guest instructions that touch emulated
// (MMIO) memory, and walks guest page tables.
//
// The hypervisor calls Emulate after a nested-page fault on a GPA that is
// routed to an emulated device. Neither AMD SVM under QEMU TCG (no decode
// assists, no NRIP) nor the general case gives the instruction bytes or
// length, so Emulate fetches them from guest memory at CS:RIP, decodes them
// with golang.org/x/arch/x86/x86asm, performs the access through the
// caller's Memory, updates the guest registers and advances RIP.
//
// Everything read from the guest is hostile: every address and length is
// checked, every failure is returned as an error, nothing panics.
package emul

import (
	"encoding/binary"
	"fmt"
	"math/bits"

	"golang.org/x/arch/x86/x86asm"
)

// Indices into State.GPR, in x86 register-encoding order.
const (
	RAX = iota
	RCX
	RDX
	RBX
	RSP
	RBP
	RSI
	RDI
	R8
	R9
	R10
	R11
	R12
	R13
	R14
	R15
)

// RFLAGS bits Emulate reads or writes.
const (
	FlagCF uint64 = 1 << 0
	FlagPF uint64 = 1 << 2
	FlagAF uint64 = 1 << 4
	FlagZF uint64 = 1 << 6
	FlagSF uint64 = 1 << 7
	FlagTF uint64 = 1 << 8
	FlagDF uint64 = 1 << 10
	FlagOF uint64 = 1 << 11
	FlagRF uint64 = 1 << 16
	FlagAC uint64 = 1 << 18

	arithFlags = FlagCF | FlagPF | FlagAF | FlagZF | FlagSF | FlagOF
)

// Mode is the default operand/address size of the code segment: the
// processor mode Emulate decodes in.
type Mode uint8

const (
	Mode16 Mode = 16 // real mode, or protected mode with CS.D=0
	Mode32 Mode = 32 // protected or compatibility mode with CS.D=1
	Mode64 Mode = 64 // 64-bit mode: EFER.LMA=1 and CS.L=1
)

// ModeFromCS derives the code mode from EFER.LMA and the code segment's
// L and D/B attribute bits.
func ModeFromCS(lma, csL, csDB bool) Mode {
	switch {
	case lma && csL:
		return Mode64
	case csDB:
		return Mode32
	}
	return Mode16
}

// Seg indexes State.SegBase; the order is the x86 segment-register order.
type Seg uint8

const (
	SegES Seg = iota
	SegCS
	SegSS
	SegDS
	SegFS
	SegGS
)

// DefaultRepLimit is the number of REP iterations one Emulate call performs
// when State.RepLimit is 0.
const DefaultRepLimit = 4096

// State is the guest register state Emulate reads and updates. The caller
// copies it from and back to the VMCB/VMCS around the call; keep one State
// per virtual processor (it holds scratch space, so Emulate does not
// allocate for it).
type State struct {
	GPR    [16]uint64 // RAX, RCX, RDX, RBX, RSP, RBP, RSI, RDI, R8..R15
	RIP    uint64
	RFLAGS uint64
	Mode   Mode
	CPL    uint8 // 3 makes every access a user-mode access
	// SegBase holds the segment bases, indexed by Seg. In 64-bit mode
	// only FS and GS are used; elsewhere all are added to the effective
	// address. Segment limits and attributes are not checked.
	SegBase [6]uint64
	// LA57 is CR4.LA57: 57-bit instead of 48-bit canonical checks.
	LA57 bool
	// RepLimit caps the iterations of a REP string instruction per call;
	// 0 means DefaultRepLimit.
	RepLimit int

	buf [32]byte // [0:15] instruction bytes, [16:32] operand data
}

// Memory is the caller's view of the guest. Emulate makes every access to
// guest memory through it.
//
//   - Translate maps a linear address to a guest-physical one, normally by
//     Paging.Walk over the guest's current CR0/CR3/CR4/EFER, and returns
//     *PageFault (or *Exception) for the caller to inject. The returned GPA
//     must keep la's offset within the 4 KiB page.
//   - Read and Write move bytes at a GPA; the caller routes them to RAM or
//     to an emulated device.
//
// Every data Read/Write has the exact operand width (1, 2, 4 or 8 bytes)
// and lies within one 4 KiB page, so an MMIO access reaches the device in
// one call. The one exception is an operand that straddles a page
// boundary: it is split at the boundary into two calls, one per page, as
// the CPU itself does. Instruction fetches are Reads of up to 15 bytes,
// also never crossing a page; a caller should refuse fetches from MMIO.
// Emulate translates every page an instruction touches before the first
// data Read or Write, so a page fault leaves the device untouched (a REP
// string instruction checks per iteration, as the CPU does).
type Memory interface {
	Translate(la uint64, acc Access) (gpa uint64, err error)
	Read(gpa uint64, b []byte) error
	Write(gpa uint64, b []byte) error
}

// Result describes one Emulate call.
type Result struct {
	Op         x86asm.Op // the instruction's mnemonic
	Len        int       // instruction length in bytes
	Accesses   int       // data Read/Write calls made (fetches not counted)
	Iterations int       // string-instruction iterations performed
	// Incomplete is set when a REP string instruction stopped at
	// State.RepLimit with count remaining: RIP is unchanged, RSI/RDI/RCX
	// reflect the iterations done, and re-entering the guest resumes it.
	Incomplete bool
}

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
func Emulate(s *State, mem Memory) (Result, error) {
	e := emu{s: s, mem: mem, mode: s.Mode}
	switch s.Mode {
	case Mode16, Mode32, Mode64:
	default:
		return Result{}, fmt.Errorf("emul: invalid mode %d", s.Mode)
	}
	if s.CPL == 3 {
		e.acc = AccessUser
	} else if s.RFLAGS&FlagAC != 0 {
		e.acc = AccessAC
	}
	if err := e.fetch(); err != nil {
		return Result{}, err
	}
	done, err := e.exec()
	res := Result{Op: e.inst.Op, Len: e.inst.Len, Accesses: e.accesses, Iterations: e.iters}
	if err != nil {
		return res, err
	}
	if !done {
		res.Incomplete = true
		return res, nil
	}
	s.RIP = e.nextIP
	s.RFLAGS &^= FlagRF
	return res, nil
}

type tlbEntry struct {
	page, gpa uint64
	acc       Access
	valid     bool
}

// emu is the per-call context; it lives on Emulate's stack.
type emu struct {
	s        *State
	mem      Memory
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

func sizeMask(w int) uint64 {
	if w >= 8 {
		return ^uint64(0)
	}
	return 1<<(8*uint(w)) - 1
}

// wrapLA truncates a linear address outside 64-bit mode.
func (e *emu) wrapLA(la uint64) uint64 {
	if e.mode != Mode64 {
		return la & 0xffffffff
	}
	return la
}

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
		return &Exception{Vector: VectorGP, HasErrorCode: true}
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
			return &Exception{Vector: VectorUD}
		}
	}
	return nil
}

func errOffset(la, gpa uint64) error {
	return fmt.Errorf("emul: Translate(%#x) returned gpa %#x with a different page offset", la, gpa)
}

func (e *emu) vbits() uint {
	if e.s.LA57 {
		return 57
	}
	return 48
}

func (e *emu) unsupported() error {
	u := &UnsupportedError{RIP: e.s.RIP, N: e.nfetched}
	copy(u.Bytes[:], e.s.buf[:e.nfetched])
	u.Inst = x86asm.IntelSyntax(e.inst, e.s.RIP, nil)
	return u
}

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

// Operands.

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
// width in bytes.
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

func (e *emu) getReg(idx uint8, width int, high bool) uint64 {
	v := e.s.GPR[idx&15]
	if high {
		return v >> 8 & 0xff
	}
	return v & sizeMask(width)
}

// putReg writes a register with x86 semantics: 8- and 16-bit writes merge,
// 32-bit writes zero-extend, 64-bit writes replace.
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
// memory operand; immediates get their width later.
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

func validWidth(w int) bool { return w == 1 || w == 2 || w == 4 || w == 8 }

// addrReg reads a base or index register at its own width.
func (e *emu) addrReg(r x86asm.Reg) (uint64, bool) {
	idx, w, high, ok := gpr(r)
	if !ok || high || w == 1 {
		return 0, false
	}
	return e.getReg(idx, w, false), true
}

// linear computes a memory operand's linear address and segment.
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

// segLA adds the segment base to an effective address.
func (e *emu) segLA(seg Seg, ea uint64) uint64 {
	if e.mode == Mode64 {
		if seg == SegFS || seg == SegGS {
			return ea + e.s.SegBase[seg]
		}
		return ea
	}
	return (e.s.SegBase[seg] + ea) & 0xffffffff
}

// translate is Memory.Translate behind a two-entry cache, so that a REP
// string instruction translates each page once per call.
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
func (e *emu) prepare(o *operand, acc Access) error {
	if o.kind != kMem {
		return nil
	}
	w := uint64(o.width)
	if e.mode == Mode64 {
		vb := e.vbits()
		if !canonical(o.la, vb) || !canonical(o.la+w-1, vb) {
			v := uint8(VectorGP)
			if o.seg == SegSS {
				v = VectorSS
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

// get reads an operand's value, zero-extended to 64 bits.
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

// put writes an operand (register or memory).
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

// twoOperands decodes Args[0] and Args[1] for an instruction whose operands
// share one width: a register's width, else the memory width. An
// immediate takes that width (x86asm already sign-extended it).
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
// register.
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

func (e *emu) setFlags(mask, f uint64) {
	e.s.RFLAGS = e.s.RFLAGS&^mask | f&mask
}

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
	cf := e.s.RFLAGS & FlagCF
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
		mask &^= FlagCF
	case x86asm.DEC:
		res, f = sub(a, 1, 0, o.width)
		mask &^= FlagCF
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

// Flag computation.

func szp(res uint64, w int) uint64 {
	var f uint64
	if res == 0 {
		f |= FlagZF
	}
	if res>>(8*uint(w)-1)&1 != 0 {
		f |= FlagSF
	}
	if bits.OnesCount8(uint8(res))&1 == 0 {
		f |= FlagPF
	}
	return f
}

func logicFlags(res uint64, w int) uint64 { return szp(res, w) }

// add returns a+b+c truncated to w bytes and its arithmetic flags.
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
		f |= FlagCF
	}
	if ((a^res)&(b^res))>>(8*uint(w)-1)&1 != 0 {
		f |= FlagOF
	}
	if (a^b^res)&0x10 != 0 {
		f |= FlagAF
	}
	return res, f
}

// sub returns a-b-c truncated to w bytes and its arithmetic flags.
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
		f |= FlagCF
	}
	if ((a^b)&(a^res))>>(8*uint(w)-1)&1 != 0 {
		f |= FlagOF
	}
	if (a^b^res)&0x10 != 0 {
		f |= FlagAF
	}
	return res, f
}

// String instructions.

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
	if e.s.RFLAGS&FlagDF != 0 {
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
