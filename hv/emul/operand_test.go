package emul

import (
	"testing"

	"gohv/x86"
)

// operandCases cover effective addresses (ModRM/SIB, RIP-relative, address-size
// overrides) and segment selection and bases in each mode.
var operandCases = []emuCase{
	// ---- addressing ----
	{name: "mov [rsi+rbx*4+0x10],ecx", code: []byte{0x89, 0x4c, 0x9e, 0x10}, // mov dword [rsi+rbx*4+0x10], ecx
		regs:    map[int]uint64{x86.RSI: mm, x86.RBX: 2, x86.RCX: 7},
		wantLog: []mmioAccess{wr(4, mm+0x18, 7)}},
	{name: "mov [rbx*2+disp32] sign-extended", code: []byte{0x89, 0x0c, 0x5d, 0x00, 0x00, 0x00, 0xd0}, // mov dword [rbx*2-0x30000000], ecx
		regs: map[int]uint64{x86.RBX: 4, x86.RCX: 7},
		setup: func(s *State, m *fakeMem) {
			m.pages[0xffffffffd0000000] = mm
		},
		wantLog: []mmioAccess{wr(4, mm+8, 7)}},
	{name: "mov eax,[rip+disp]", code: []byte{0x8b, 0x05, 0x0a, 0x20, 0x00, 0x00}, // mov eax, [rip+0x200a]
		setup:   func(s *State, m *fakeMem) { m.pages[0x3000] = mm },
		wantLog: []mmioAccess{rd(4, mm+0x10, 0x44332211)}, wantRegs: map[int]uint64{x86.RAX: 0x44332211}},
	{name: "mov eax,[eip+disp]", rip: 0x100001000, code: []byte{0x67, 0x8b, 0x05, 0x0a, 0x20, 0x00, 0x00}, // mov eax, [eip+0x200a]
		setup:   func(s *State, m *fakeMem) { m.pages[0x3000] = mm },
		wantLog: []mmioAccess{rd(4, mm+0x11, 0x44332211)}, wantRegs: map[int]uint64{x86.RAX: 0x44332211}},
	{name: "mov eax,[ebx] addr32", code: []byte{0x67, 0x8b, 0x03}, // mov eax, [ebx]
		regs:    map[int]uint64{x86.RBX: 0xffffffff00000000 | mm},
		wantLog: []mmioAccess{rd(4, mm, 0x44332211)}, wantRegs: map[int]uint64{x86.RAX: 0x44332211}},

	// ---- segments ----
	{name: "fs override 64", code: []byte{0x64, 0x8b, 0x03}, // mov eax, fs:[rbx]
		regs: map[int]uint64{x86.RBX: 0x30}, segs: map[Seg]uint64{SegFS: mm},
		wantLog: []mmioAccess{rd(4, mm+0x30, 0x44332211)}, wantRegs: map[int]uint64{x86.RAX: 0x44332211}},
	{name: "gs override 64", code: []byte{0x65, 0x89, 0x08}, // mov gs:[rax], ecx
		regs: map[int]uint64{x86.RAX: 0x8, x86.RCX: 3}, segs: map[Seg]uint64{SegGS: mm},
		wantLog: []mmioAccess{wr(4, mm+8, 3)}},
	{name: "ds base ignored in 64", code: []byte{0x3e, 0x8b, 0x03}, // mov eax, ds:[rbx]
		regs: map[int]uint64{x86.RBX: mm}, segs: map[Seg]uint64{SegDS: 0x1000, SegSS: 0x1000},
		wantLog: []mmioAccess{rd(4, mm, 0x44332211)}, wantRegs: map[int]uint64{x86.RAX: 0x44332211}},
	{name: "ds base mode32", mode: Mode32, code: []byte{0x8b, 0x03}, // mov eax, [ebx]
		regs: map[int]uint64{x86.RBX: 0x10000010}, segs: map[Seg]uint64{SegDS: 0xc0000000},
		wantLog: []mmioAccess{rd(4, mm+0x10, 0x44332211)}, wantRegs: map[int]uint64{x86.RAX: 0x44332211}},
	{name: "es override mode32", mode: Mode32, code: []byte{0x26, 0x8b, 0x03}, // mov eax, es:[ebx]
		regs: map[int]uint64{x86.RBX: 0xc0000000}, segs: map[Seg]uint64{SegES: 0x10000000},
		wantLog: []mmioAccess{rd(4, mm, 0x44332211)}, wantRegs: map[int]uint64{x86.RAX: 0x44332211}},
	{name: "ss default for ebp mode32", mode: Mode32, code: []byte{0x8b, 0x45, 0x04}, // mov eax, [ebp+4]
		regs: map[int]uint64{x86.RBP: 0x80000000}, segs: map[Seg]uint64{SegSS: 0x50000000, SegDS: 0x1234},
		wantLog: []mmioAccess{rd(4, mm+4, 0x44332211)}, wantRegs: map[int]uint64{x86.RAX: 0x44332211}},
	{name: "linear wrap mode32", mode: Mode32, code: []byte{0x8b, 0x03}, // mov eax, [ebx]
		regs: map[int]uint64{x86.RBX: 0xe0000010}, segs: map[Seg]uint64{SegDS: 0xf0000000},
		wantLog: []mmioAccess{rd(4, mm+0x10, 0x44332211)}, wantRegs: map[int]uint64{x86.RAX: 0x44332211}},
	{name: "cs base for fetch mode32", mode: Mode32, code: []byte{0x89, 0x08}, // mov [eax], ecx
		regs: map[int]uint64{x86.RAX: mm, x86.RCX: 9}, segs: map[Seg]uint64{SegCS: 0x10000},
		wantLog: []mmioAccess{wr(4, mm, 9)},
		check: func(t *testing.T, s *State, m *fakeMem, res Result) {
			if m.xlates[0] != (xlateCall{0x11000, AccessFetch}) {
				t.Errorf("first translate = %+v, want fetch at 0x11000", m.xlates[0])
			}
		}},
	{name: "mov ax,[bx] mode16", mode: Mode16, code: []byte{0x8b, 0x07}, // mov ax, [bx]
		regs: map[int]uint64{x86.RBX: 0x12, x86.RAX: 0xffff0000}, segs: map[Seg]uint64{SegDS: mm},
		wantLog: []mmioAccess{rd(2, mm+0x12, 0x2211)}, wantRegs: map[int]uint64{x86.RAX: 0xffff2211}},
	{name: "mov ax,[bp+si+4] mode16", mode: Mode16, code: []byte{0x8b, 0x42, 0x04}, // mov ax, [bp+si+4]
		regs: map[int]uint64{x86.RBP: 0x10, x86.RSI: 0x20}, segs: map[Seg]uint64{SegSS: mm, SegDS: 0x5000},
		wantLog: []mmioAccess{rd(2, mm+0x34, 0x2211)}, wantRegs: map[int]uint64{x86.RAX: 0x2211}},
	{name: "mov eax,[bx] mode16 o32", mode: Mode16, code: []byte{0x66, 0x8b, 0x07}, // mov eax, [bx]
		regs: map[int]uint64{x86.RBX: 0x12}, segs: map[Seg]uint64{SegDS: mm},
		wantLog: []mmioAccess{rd(4, mm+0x12, 0x44332211)}, wantRegs: map[int]uint64{x86.RAX: 0x44332211}},
	{name: "mov ax,[bx+si] wraps mode16", mode: Mode16, code: []byte{0x8b, 0x00}, // mov ax, [bx+si]
		regs: map[int]uint64{x86.RBX: 0xfff0, x86.RSI: 0x20}, segs: map[Seg]uint64{SegDS: mm},
		wantLog: []mmioAccess{rd(2, mm+0x10, 0x2211)}, wantRegs: map[int]uint64{x86.RAX: 0x2211}},
	{name: "a16 in mode32", mode: Mode32, code: []byte{0x67, 0x8b, 0x07}, // mov eax, [bx]
		regs: map[int]uint64{x86.RBX: 0xffff0008}, segs: map[Seg]uint64{SegDS: mm},
		wantLog: []mmioAccess{rd(4, mm+8, 0x44332211)}, wantRegs: map[int]uint64{x86.RAX: 0x44332211}},
	{name: "ip wraps mode16", mode: Mode16, rip: 0xfffe, code: []byte{0x8b, 0x07}, // mov ax, [bx]
		regs: map[int]uint64{x86.RBX: 0}, segs: map[Seg]uint64{SegDS: mm},
		wantLog: []mmioAccess{rd(2, mm, 0x2211)}, wantRegs: map[int]uint64{x86.RAX: 0x2211},
		check: func(t *testing.T, s *State, m *fakeMem, res Result) {
			if s.RIP != 0 {
				t.Errorf("RIP = %#x, want 0", s.RIP)
			}
		}},
}

// TestEmulateOperands runs the addressing and segment cases.
func TestEmulateOperands(t *testing.T) {
	for _, tc := range operandCases {
		t.Run(tc.name, func(t *testing.T) { runCase(t, tc) })
	}
}
