package emul

import (
	"testing"

	"gohv/x86"
)

// stringCases are MOVS, STOS and LODS with and without REP.
var stringCases = []emuCase{
	// ---- string instructions ----
	{name: "movsb ram->mmio", code: []byte{0xa4}, // movsb
		regs: map[int]uint64{x86.RSI: 0x5000, x86.RDI: mm}, ram: map[uint64][]byte{0x5000: {0xab}},
		wantLog:  []mmioAccess{wr(1, mm, 0xab)},
		wantRegs: map[int]uint64{x86.RSI: 0x5001, x86.RDI: mm + 1}},
	{name: "rep movsb ram->mmio", code: []byte{0xf3, 0xa4}, // rep movsb
		regs: map[int]uint64{x86.RSI: 0x5000, x86.RDI: mm, x86.RCX: 3}, ram: map[uint64][]byte{0x5000: {1, 2, 3}},
		wantLog:  []mmioAccess{wr(1, mm, 1), wr(1, mm+1, 2), wr(1, mm+2, 3)},
		wantRegs: map[int]uint64{x86.RSI: 0x5003, x86.RDI: mm + 3, x86.RCX: 0},
		check: func(t *testing.T, s *State, m *fakeMem, res Result) {
			if res.Iterations != 3 || res.Accesses != 6 {
				t.Errorf("Iterations/Accesses = %d/%d, want 3/6", res.Iterations, res.Accesses)
			}
			if len(m.xlates) != 3 { // fetch + one per page thanks to the cache
				t.Errorf("translates = %d, want 3", len(m.xlates))
			}
		}},
	{name: "repne movsb acts as rep", code: []byte{0xf2, 0xa4}, // repne movsb
		regs: map[int]uint64{x86.RSI: 0x5000, x86.RDI: mm, x86.RCX: 2}, ram: map[uint64][]byte{0x5000: {1, 2}},
		wantLog:  []mmioAccess{wr(1, mm, 1), wr(1, mm+1, 2)},
		wantRegs: map[int]uint64{x86.RSI: 0x5002, x86.RDI: mm + 2, x86.RCX: 0}},
	{name: "rep movsq mmio->ram", code: []byte{0xf3, 0x48, 0xa5}, // rep movsq
		regs:     map[int]uint64{x86.RSI: mm, x86.RDI: 0x6000, x86.RCX: 2},
		wantLog:  []mmioAccess{rd(8, mm, 0x8877665544332211), rd(8, mm+8, 0x8877665544332211)},
		wantRegs: map[int]uint64{x86.RSI: mm + 16, x86.RDI: 0x6010, x86.RCX: 0},
		wantRAM: map[uint64][]byte{0x6000: {0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88,
			0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88}}},
	{name: "rep stosd backwards", code: []byte{0xf3, 0xab}, // rep stosd (DF=1)
		regs: map[int]uint64{x86.RDI: mm + 8, x86.RCX: 3, x86.RAX: 0xffffffffcafef00d}, flags: x86.RFLAGSDF,
		wantLog:  []mmioAccess{wr(4, mm+8, 0xcafef00d), wr(4, mm+4, 0xcafef00d), wr(4, mm, 0xcafef00d)},
		wantRegs: map[int]uint64{x86.RDI: mm - 4, x86.RCX: 0}},
	{name: "stosw", code: []byte{0x66, 0xab}, // stosw
		regs: map[int]uint64{x86.RDI: mm, x86.RAX: 0x12345678}, segs: map[Seg]uint64{SegES: 0x1000},
		wantLog:  []mmioAccess{wr(2, mm, 0x5678)},
		wantRegs: map[int]uint64{x86.RDI: mm + 2}},
	{name: "lodsb", code: []byte{0xac}, // lodsb
		regs:     map[int]uint64{x86.RSI: mm, x86.RAX: 0xffff},
		wantLog:  []mmioAccess{rd(1, mm, 0x11)},
		wantRegs: map[int]uint64{x86.RSI: mm + 1, x86.RAX: 0xff11}},
	{name: "lodsd zero-extends", code: []byte{0xad}, // lodsd
		regs:     map[int]uint64{x86.RSI: mm, x86.RAX: ones},
		wantLog:  []mmioAccess{rd(4, mm, 0x44332211)},
		wantRegs: map[int]uint64{x86.RSI: mm + 4, x86.RAX: 0x44332211}},
	{name: "lodsq backwards", code: []byte{0x48, 0xad}, // lodsq (DF=1)
		regs: map[int]uint64{x86.RSI: mm + 8}, flags: x86.RFLAGSDF,
		wantLog:  []mmioAccess{rd(8, mm+8, 0x8877665544332211)},
		wantRegs: map[int]uint64{x86.RSI: mm, x86.RAX: 0x8877665544332211}},
	{name: "rep stosb rcx=0", code: []byte{0xf3, 0xaa}, // rep stosb
		regs: map[int]uint64{x86.RDI: mm, x86.RCX: 0}},
	{name: "rep stosb hits limit", code: []byte{0xf3, 0xaa}, // rep stosb
		regs:     map[int]uint64{x86.RDI: mm, x86.RCX: 5, x86.RAX: 0x7},
		setup:    func(s *State, m *fakeMem) { s.RepLimit = 2 },
		noRIP:    true,
		wantLog:  []mmioAccess{wr(1, mm, 7), wr(1, mm+1, 7)},
		wantRegs: map[int]uint64{x86.RDI: mm + 2, x86.RCX: 3},
		check: func(t *testing.T, s *State, m *fakeMem, res Result) {
			if !res.Incomplete || res.Iterations != 2 {
				t.Errorf("res = %+v, want Incomplete after 2 iterations", res)
			}
		}},
	{name: "rep stosb a32 in 64", code: []byte{0x67, 0xf3, 0xaa}, // rep stosb [edi]
		regs:     map[int]uint64{x86.RDI: 0xffffffff00000000 | mm, x86.RCX: 0xffffffff00000002, x86.RAX: 1},
		wantLog:  []mmioAccess{wr(1, mm, 1), wr(1, mm+1, 1)},
		wantRegs: map[int]uint64{x86.RDI: mm + 2, x86.RCX: 0}},
	{name: "stosb a16 wraps di in mode32", mode: Mode32, code: []byte{0x67, 0xaa}, // stosb [di]
		regs: map[int]uint64{x86.RDI: 0xabcdffff, x86.RAX: 5}, segs: map[Seg]uint64{SegES: mm},
		wantLog:  []mmioAccess{wr(1, mm+0xffff, 5)},
		wantRegs: map[int]uint64{x86.RDI: 0xabcd0000}},
	{name: "fs: movsb 64", code: []byte{0x64, 0xa4}, // movsb byte [rdi], fs:[rsi]
		regs: map[int]uint64{x86.RSI: 0x1000, x86.RDI: mm}, segs: map[Seg]uint64{SegFS: 0x4000, SegES: 0x100},
		ram:      map[uint64][]byte{0x5000: {0x42}},
		wantLog:  []mmioAccess{wr(1, mm, 0x42)},
		wantRegs: map[int]uint64{x86.RSI: 0x1001, x86.RDI: mm + 1}},
	{name: "movsd with ds/es bases mode32", mode: Mode32, code: []byte{0xa5}, // movsd
		regs: map[int]uint64{x86.RSI: 0x4000, x86.RDI: 0x100}, segs: map[Seg]uint64{SegDS: 0x1000, SegES: mm - 0x100},
		ram:      map[uint64][]byte{0x5000: {1, 2, 3, 4}},
		wantLog:  []mmioAccess{wr(4, mm, 0x04030201)},
		wantRegs: map[int]uint64{x86.RSI: 0x4004, x86.RDI: 0x104}},
}

// TestEmulateString runs the string-instruction cases.
func TestEmulateString(t *testing.T) {
	for _, tc := range stringCases {
		t.Run(tc.name, func(t *testing.T) { runCase(t, tc) })
	}
}
