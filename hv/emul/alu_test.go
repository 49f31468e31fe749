package emul

import (
	"testing"

	"gohv/x86"
)

// aluCases are the arithmetic and logic instructions and their flags.
var aluCases = []emuCase{
	// ---- ALU ----
	{name: "add [rax],ecx carry", code: []byte{0x01, 0x08}, // add dword [rax], ecx
		regs: map[int]uint64{x86.RAX: mm, x86.RCX: 1}, mmio: map[uint64]uint64{mm: 0xffffffff},
		wantLog:  []mmioAccess{rd(4, mm, 0xffffffff), wr(4, mm, 0)},
		flagMask: arithFlags, wantFlags: x86.RFLAGSCF | x86.RFLAGSZF | x86.RFLAGSPF | x86.RFLAGSAF,
		check: func(t *testing.T, s *State, m *fakeMem, res Result) {
			if len(m.xlates) != 2 || m.xlates[1].Acc != AccessWrite {
				t.Errorf("translates = %+v, want data translate for write", m.xlates)
			}
			if res.Accesses != 2 {
				t.Errorf("Accesses = %d, want 2", res.Accesses)
			}
		}},
	{name: "add dword [rax],1 overflow", code: []byte{0x83, 0x00, 0x01}, // add dword [rax], 1
		regs: map[int]uint64{x86.RAX: mm}, mmio: map[uint64]uint64{mm: 0x7fffffff}, flags: x86.RFLAGSCF,
		wantLog:  []mmioAccess{rd(4, mm, 0x7fffffff), wr(4, mm, 0x80000000)},
		flagMask: arithFlags, wantFlags: x86.RFLAGSOF | x86.RFLAGSSF | x86.RFLAGSAF | x86.RFLAGSPF},
	{name: "lock add [rax],ecx", code: []byte{0xf0, 0x01, 0x08}, // lock add dword [rax], ecx
		regs: map[int]uint64{x86.RAX: mm, x86.RCX: 2}, mmio: map[uint64]uint64{mm: 1},
		wantLog:  []mmioAccess{rd(4, mm, 1), wr(4, mm, 3)},
		flagMask: arithFlags, wantFlags: x86.RFLAGSPF},
	{name: "add eax,[rbx]", code: []byte{0x03, 0x03}, // add eax, dword [rbx]
		regs: map[int]uint64{x86.RAX: 0xffffffff00000001, x86.RBX: mm}, mmio: map[uint64]uint64{mm: 2},
		wantLog:  []mmioAccess{rd(4, mm, 2)},
		wantRegs: map[int]uint64{x86.RAX: 3}, flagMask: arithFlags, wantFlags: x86.RFLAGSPF},
	{name: "add [rax],rcx carry64", code: []byte{0x48, 0x01, 0x08}, // add qword [rax], rcx
		regs: map[int]uint64{x86.RAX: mm, x86.RCX: 1}, mmio: map[uint64]uint64{mm: ones},
		wantLog:  []mmioAccess{rd(8, mm, ones), wr(8, mm, 0)},
		flagMask: arithFlags, wantFlags: x86.RFLAGSCF | x86.RFLAGSZF | x86.RFLAGSPF | x86.RFLAGSAF},
	{name: "sub [rax],ecx borrow", code: []byte{0x29, 0x08}, // sub dword [rax], ecx
		regs: map[int]uint64{x86.RAX: mm, x86.RCX: 1}, mmio: map[uint64]uint64{mm: 0},
		wantLog:  []mmioAccess{rd(4, mm, 0), wr(4, mm, 0xffffffff)},
		flagMask: arithFlags, wantFlags: x86.RFLAGSCF | x86.RFLAGSSF | x86.RFLAGSAF | x86.RFLAGSPF},
	{name: "sub rax,[rbx] borrow64", code: []byte{0x48, 0x2b, 0x03}, // sub rax, qword [rbx]
		regs: map[int]uint64{x86.RAX: 0, x86.RBX: mm}, mmio: map[uint64]uint64{mm: 1},
		wantLog:  []mmioAccess{rd(8, mm, 1)},
		wantRegs: map[int]uint64{x86.RAX: ones}, flagMask: arithFlags, wantFlags: x86.RFLAGSCF | x86.RFLAGSSF | x86.RFLAGSAF | x86.RFLAGSPF},
	{name: "cmp ecx,[rax] equal", code: []byte{0x3b, 0x08}, // cmp ecx, dword [rax]
		regs: map[int]uint64{x86.RAX: mm, x86.RCX: 5}, mmio: map[uint64]uint64{mm: 5}, flags: x86.RFLAGSCF | x86.RFLAGSOF,
		wantLog:  []mmioAccess{rd(4, mm, 5)},
		flagMask: arithFlags, wantFlags: x86.RFLAGSZF | x86.RFLAGSPF,
		check: func(t *testing.T, s *State, m *fakeMem, res Result) {
			if m.xlates[1].Acc != AccessRead {
				t.Errorf("cmp translated for %v, want read", m.xlates[1].Acc)
			}
		}},
	{name: "cmp byte [rax],0x80", code: []byte{0x80, 0x38, 0x80}, // cmp byte [rax], 0x80
		regs: map[int]uint64{x86.RAX: mm}, mmio: map[uint64]uint64{mm: 0x7f},
		wantLog:  []mmioAccess{rd(1, mm, 0x7f)},
		flagMask: arithFlags, wantFlags: x86.RFLAGSCF | x86.RFLAGSOF | x86.RFLAGSSF | x86.RFLAGSPF},
	{name: "test [rax],ecx", code: []byte{0x85, 0x08}, // test dword [rax], ecx
		regs: map[int]uint64{x86.RAX: mm, x86.RCX: 0xf}, mmio: map[uint64]uint64{mm: 0xf0}, flags: x86.RFLAGSCF | x86.RFLAGSOF | x86.RFLAGSAF,
		wantLog:  []mmioAccess{rd(4, mm, 0xf0)},
		flagMask: arithFlags, wantFlags: x86.RFLAGSZF | x86.RFLAGSPF},
	{name: "test byte [rax],1", code: []byte{0xf6, 0x00, 0x01}, // test byte [rax], 1
		regs: map[int]uint64{x86.RAX: mm}, mmio: map[uint64]uint64{mm: 0x11},
		wantLog:  []mmioAccess{rd(1, mm, 0x11)},
		flagMask: arithFlags, wantFlags: 0},
	{name: "and dword [rax],imm32", code: []byte{0x81, 0x20, 0x00, 0xff, 0x00, 0x00}, // and dword [rax], 0xff00
		regs: map[int]uint64{x86.RAX: mm}, mmio: map[uint64]uint64{mm: 0x12345678},
		wantLog:  []mmioAccess{rd(4, mm, 0x12345678), wr(4, mm, 0x5600)},
		flagMask: arithFlags, wantFlags: x86.RFLAGSPF},
	{name: "or qword [rax],simm8", code: []byte{0x48, 0x83, 0x08, 0x80}, // or qword [rax], -128
		regs: map[int]uint64{x86.RAX: mm}, mmio: map[uint64]uint64{mm: 1},
		wantLog:  []mmioAccess{rd(8, mm, 1), wr(8, mm, 0xffffffffffffff81)},
		flagMask: arithFlags, wantFlags: x86.RFLAGSSF | x86.RFLAGSPF},
	{name: "or [rax],ecx", code: []byte{0x09, 0x08}, // or dword [rax], ecx
		regs: map[int]uint64{x86.RAX: mm, x86.RCX: 0x100}, mmio: map[uint64]uint64{mm: 1},
		wantLog:  []mmioAccess{rd(4, mm, 1), wr(4, mm, 0x101)},
		flagMask: arithFlags, wantFlags: 0},
	{name: "xor byte [rax],0xff", code: []byte{0x80, 0x30, 0xff}, // xor byte [rax], 0xff
		regs: map[int]uint64{x86.RAX: mm}, mmio: map[uint64]uint64{mm: 0x0f},
		wantLog:  []mmioAccess{rd(1, mm, 0x0f), wr(1, mm, 0xf0)},
		flagMask: arithFlags, wantFlags: x86.RFLAGSSF | x86.RFLAGSPF},
	{name: "adc [rax],ecx", code: []byte{0x11, 0x08}, // adc dword [rax], ecx
		regs: map[int]uint64{x86.RAX: mm, x86.RCX: 1}, mmio: map[uint64]uint64{mm: 1}, flags: x86.RFLAGSCF,
		wantLog:  []mmioAccess{rd(4, mm, 1), wr(4, mm, 3)},
		flagMask: arithFlags, wantFlags: x86.RFLAGSPF},
	{name: "sbb [rax],ecx", code: []byte{0x19, 0x08}, // sbb dword [rax], ecx
		regs: map[int]uint64{x86.RAX: mm, x86.RCX: 0}, mmio: map[uint64]uint64{mm: 1}, flags: x86.RFLAGSCF,
		wantLog:  []mmioAccess{rd(4, mm, 1), wr(4, mm, 0)},
		flagMask: arithFlags, wantFlags: x86.RFLAGSZF | x86.RFLAGSPF},
	{name: "inc dword [rax]", code: []byte{0xff, 0x00}, // inc dword [rax]
		regs: map[int]uint64{x86.RAX: mm}, mmio: map[uint64]uint64{mm: 0x7fffffff}, flags: x86.RFLAGSCF,
		wantLog:  []mmioAccess{rd(4, mm, 0x7fffffff), wr(4, mm, 0x80000000)},
		flagMask: arithFlags, wantFlags: x86.RFLAGSCF | x86.RFLAGSOF | x86.RFLAGSSF | x86.RFLAGSAF | x86.RFLAGSPF},
	{name: "dec byte [rax]", code: []byte{0xfe, 0x08}, // dec byte [rax]
		regs: map[int]uint64{x86.RAX: mm}, mmio: map[uint64]uint64{mm: 0},
		wantLog:  []mmioAccess{rd(1, mm, 0), wr(1, mm, 0xff)},
		flagMask: arithFlags, wantFlags: x86.RFLAGSSF | x86.RFLAGSAF | x86.RFLAGSPF},
	{name: "neg dword [rax]", code: []byte{0xf7, 0x18}, // neg dword [rax]
		regs: map[int]uint64{x86.RAX: mm}, mmio: map[uint64]uint64{mm: 1},
		wantLog:  []mmioAccess{rd(4, mm, 1), wr(4, mm, 0xffffffff)},
		flagMask: arithFlags, wantFlags: x86.RFLAGSCF | x86.RFLAGSSF | x86.RFLAGSAF | x86.RFLAGSPF},
	{name: "not byte [rax]", code: []byte{0xf6, 0x10}, // not byte [rax]
		regs: map[int]uint64{x86.RAX: mm}, mmio: map[uint64]uint64{mm: 0x0f}, flags: arithFlags,
		wantLog:  []mmioAccess{rd(1, mm, 0x0f), wr(1, mm, 0xf0)},
		flagMask: arithFlags, wantFlags: arithFlags},
}

// TestEmulateALU runs the arithmetic and logic cases.
func TestEmulateALU(t *testing.T) {
	for _, tc := range aluCases {
		t.Run(tc.name, func(t *testing.T) { runCase(t, tc) })
	}
}

// Flag helpers against straightforward wide arithmetic.
func TestFlagsExhaustive8(t *testing.T) {
	for a := uint64(0); a < 256; a++ {
		for b := uint64(0); b < 256; b++ {
			for c := uint64(0); c < 2; c++ {
				res, f := add(a, b, c, 1)
				sum := a + b + c
				if res != sum&0xff || (f&x86.RFLAGSCF != 0) != (sum > 0xff) {
					t.Fatalf("add %d+%d+%d: res %#x flags %#x", a, b, c, res, f)
				}
				sa, sb := int64(int8(a)), int64(int8(b))
				ss := sa + sb + int64(c)
				if (f&x86.RFLAGSOF != 0) != (ss < -128 || ss > 127) {
					t.Fatalf("add OF %d+%d+%d", a, b, c)
				}
				if (f&x86.RFLAGSAF != 0) != ((a&0xf)+(b&0xf)+c > 0xf) {
					t.Fatalf("add AF %d+%d+%d", a, b, c)
				}
				res, f = sub(a, b, c, 1)
				if res != (a-b-c)&0xff || (f&x86.RFLAGSCF != 0) != (a < b+c) {
					t.Fatalf("sub %d-%d-%d: res %#x flags %#x", a, b, c, res, f)
				}
				sd := sa - sb - int64(c)
				if (f&x86.RFLAGSOF != 0) != (sd < -128 || sd > 127) {
					t.Fatalf("sub OF %d-%d-%d", a, b, c)
				}
				if (f&x86.RFLAGSAF != 0) != (a&0xf < b&0xf+c) {
					t.Fatalf("sub AF %d-%d-%d", a, b, c)
				}
				if (f&x86.RFLAGSZF != 0) != (res == 0) || (f&x86.RFLAGSSF != 0) != (res&0x80 != 0) {
					t.Fatalf("sub ZF/SF %d-%d-%d", a, b, c)
				}
			}
		}
	}
}
