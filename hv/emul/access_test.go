package emul

import (
	"strings"
	"testing"

	"gohv/x86"
)

// accessCases cover the memory side: device errors, operands and instructions
// that straddle a page, page faults, and the architectural faults of an
// access (non-canonical addresses, LOCK).
var accessCases = []emuCase{
	{name: "xchg device write error keeps register", code: []byte{0x87, 0x08}, // xchg dword [rax], ecx
		regs:    map[int]uint64{x86.RAX: mm, x86.RCX: 5},
		setup:   func(s *State, m *fakeMem) { m.failWrite = errDevice },
		wantLog: []mmioAccess{rd(4, mm, 0x44332211)}, wantErr: isErr(errDevice)},
	{name: "mov load device error", code: []byte{0x8b, 0x03}, // mov eax, [rbx]
		regs:    map[int]uint64{x86.RBX: mm},
		setup:   func(s *State, m *fakeMem) { m.failRead = errDevice },
		wantErr: isErr(errDevice)},
	{name: "add device read error leaves flags", code: []byte{0x01, 0x08}, // add dword [rax], ecx
		regs:    map[int]uint64{x86.RAX: mm},
		setup:   func(s *State, m *fakeMem) { m.failRead = errDevice },
		wantErr: isErr(errDevice)},
	{name: "add device write error leaves flags", code: []byte{0x01, 0x08}, // add dword [rax], ecx
		regs: map[int]uint64{x86.RAX: mm}, mmio: map[uint64]uint64{mm: 0},
		setup:   func(s *State, m *fakeMem) { m.failWrite = errDevice },
		wantLog: []mmioAccess{rd(4, mm, 0)}, wantErr: isErr(errDevice)},
	{name: "inc device write error", code: []byte{0xff, 0x00}, // inc dword [rax]
		regs: map[int]uint64{x86.RAX: mm}, mmio: map[uint64]uint64{mm: 0},
		setup:   func(s *State, m *fakeMem) { m.failWrite = errDevice },
		wantLog: []mmioAccess{rd(4, mm, 0)}, wantErr: isErr(errDevice)},
	{name: "movzx device error", code: []byte{0x0f, 0xb6, 0x03}, // movzx eax, byte [rbx]
		regs:    map[int]uint64{x86.RBX: mm},
		setup:   func(s *State, m *fakeMem) { m.failRead = errDevice },
		wantErr: isErr(errDevice)},
	{name: "rep movsb device error mid-way", code: []byte{0xf3, 0xa4}, // rep movsb
		regs:     map[int]uint64{x86.RSI: mm, x86.RDI: 0x6000, x86.RCX: 3},
		setup:    func(s *State, m *fakeMem) { m.failRead = errDevice },
		wantErr:  isErr(errDevice),
		wantRegs: map[int]uint64{}},
	{name: "lodsb device error", code: []byte{0xac}, // lodsb
		regs:    map[int]uint64{x86.RSI: mm},
		setup:   func(s *State, m *fakeMem) { m.failRead = errDevice },
		wantErr: isErr(errDevice)},
	{name: "stosb device error", code: []byte{0xaa}, // stosb
		regs:    map[int]uint64{x86.RDI: mm},
		setup:   func(s *State, m *fakeMem) { m.failWrite = errDevice },
		wantErr: isErr(errDevice)},
	{name: "split mmio read second half error", code: []byte{0x8b, 0x03}, // mov eax, [rbx]
		regs: map[int]uint64{x86.RBX: 0x9ffe},
		setup: func(s *State, m *fakeMem) {
			m.pages[0xa000] = mm
			m.failRead = errDevice
		},
		wantErr: isErr(errDevice)},
	{name: "split mmio write second half error", code: []byte{0x89, 0x03}, // mov [rbx], eax
		regs: map[int]uint64{x86.RBX: 0x9ffe},
		setup: func(s *State, m *fakeMem) {
			m.pages[0xa000] = mm
			m.failWrite = errDevice
		},
		wantErr: isErr(errDevice)},
	// ---- page boundaries ----
	{name: "ram write split across pages", code: []byte{0x89, 0x08}, // mov dword [rax], ecx
		regs:    map[int]uint64{x86.RAX: 0x7ffe, x86.RCX: 0x11223344},
		setup:   func(s *State, m *fakeMem) { m.pages[0x8000] = 0x20000 },
		wantRAM: map[uint64][]byte{0x7ffe: {0x44, 0x33}, 0x20000: {0x22, 0x11}}},
	{name: "mmio write split across pages", code: []byte{0x89, 0x08}, // mov dword [rax], ecx
		regs: map[int]uint64{x86.RAX: 0x9ffe, x86.RCX: 0x11223344},
		setup: func(s *State, m *fakeMem) {
			m.pages[0x9000] = mm
			m.pages[0xa000] = mm + 0x1000
		},
		wantLog: []mmioAccess{wr(2, mm+0xffe, 0x3344), wr(2, mm+0x1000, 0x1122)}},
	{name: "instruction split across pages", rip: 0x1ffe, code: []byte{0x48, 0x89, 0x08}, // mov qword [rax], rcx
		regs:    map[int]uint64{x86.RAX: mm, x86.RCX: 5},
		setup:   func(s *State, m *fakeMem) { m.pages[0x2000] = 0x30000 },
		wantLog: []mmioAccess{wr(8, mm, 5)}},
	{name: "instruction ends at page end, next page absent", rip: 0x1ffe, code: []byte{0x89, 0x08}, // mov dword [rax], ecx
		regs:    map[int]uint64{x86.RAX: mm, x86.RCX: 5},
		setup:   func(s *State, m *fakeMem) { m.fault[0x2000] = 0 },
		wantLog: []mmioAccess{wr(4, mm, 5)}},
	{name: "instruction runs into absent page", rip: 0x1ffe, code: []byte{0x48, 0x89, 0x08}, // mov qword [rax], rcx
		regs:    map[int]uint64{x86.RAX: mm, x86.RCX: 5},
		setup:   func(s *State, m *fakeMem) { m.fault[0x2000] = x86.PFErrFetch },
		wantErr: isPF(0x2000, x86.PFErrFetch)},
	{name: "data page fault", code: []byte{0x89, 0x08}, // mov dword [rax], ecx
		regs:    map[int]uint64{x86.RAX: mm},
		setup:   func(s *State, m *fakeMem) { m.fault[mm] = x86.PFErrWrite | x86.PFErrPresent },
		wantErr: isPF(mm, x86.PFErrWrite|x86.PFErrPresent)},
	{name: "split write faults on second page before any write", code: []byte{0x89, 0x08}, // mov dword [rax], ecx
		regs: map[int]uint64{x86.RAX: 0x9ffe},
		setup: func(s *State, m *fakeMem) {
			m.pages[0x9000] = mm
			m.fault[0xa000] = x86.PFErrWrite
		},
		wantErr: isPF(0xa000, x86.PFErrWrite)},
	{name: "movs faults on destination before reading source", code: []byte{0xa4}, // movsb
		regs:    map[int]uint64{x86.RSI: mm, x86.RDI: 0x7000},
		setup:   func(s *State, m *fakeMem) { m.fault[0x7000] = x86.PFErrWrite },
		wantErr: isPF(0x7000, x86.PFErrWrite)},
	{name: "rep fault keeps progress", code: []byte{0xf3, 0xaa}, // rep stosb
		regs:     map[int]uint64{x86.RDI: mm + 0xffe, x86.RCX: 4, x86.RAX: 3},
		setup:    func(s *State, m *fakeMem) { m.fault[mm+0x1000] = x86.PFErrWrite },
		wantErr:  isPF(mm+0x1000, x86.PFErrWrite),
		wantLog:  []mmioAccess{wr(1, mm+0xffe, 3), wr(1, mm+0xfff, 3)},
		wantRegs: map[int]uint64{x86.RDI: mm + 0x1000, x86.RCX: 2}},

	// ---- architectural faults ----
	{name: "non-canonical #GP", code: []byte{0x8b, 0x03}, // mov eax, [rbx]
		regs: map[int]uint64{x86.RBX: 0x0000800000000000}, wantErr: isExc(x86.VectorGP)},
	{name: "non-canonical via rbp #SS", code: []byte{0x8b, 0x45, 0x00}, // mov eax, [rbp+0]
		regs: map[int]uint64{x86.RBP: 0x0000800000000000}, wantErr: isExc(x86.VectorSS)},
	{name: "straddles canonical boundary", code: []byte{0x8b, 0x03}, // mov eax, [rbx]
		regs: map[int]uint64{x86.RBX: 0x00007ffffffffffe}, wantErr: isExc(x86.VectorGP)},
	{name: "la57 widens canonical", code: []byte{0x89, 0x03}, // mov [rbx], eax
		regs:    map[int]uint64{x86.RBX: 0x0000800000000000, x86.RAX: 0x01020304},
		setup:   func(s *State, m *fakeMem) { s.LA57 = true },
		wantRAM: map[uint64][]byte{0x0000800000000000: {4, 3, 2, 1}}},
	{name: "lock mov #UD", code: []byte{0xf0, 0x89, 0x08}, // lock mov [rax], ecx
		regs: map[int]uint64{x86.RAX: mm}, wantErr: isExc(x86.VectorUD)},
	{name: "lock add reg #UD", code: []byte{0xf0, 0x01, 0xc8}, // lock add eax, ecx
		wantErr: isExc(x86.VectorUD)},
}

// TestEmulateAccess runs the memory-access cases.
func TestEmulateAccess(t *testing.T) {
	for _, tc := range accessCases {
		t.Run(tc.name, func(t *testing.T) { runCase(t, tc) })
	}
}

// A Translate that changes the page offset breaks the no-split promise;
// Emulate must refuse it rather than straddle a GPA page.
type skewMem struct{ *fakeMem }

func (m skewMem) Translate(la uint64, acc Access) (uint64, error) {
	g, err := m.fakeMem.Translate(la, acc)
	if acc&AccessFetch != 0 {
		return g, err
	}
	return g + 1, err
}

func TestEmulateRejectsSkewedTranslate(t *testing.T) {
	m := newFakeMem()
	m.put(0x1000, []byte{0x89, 0x08}) // mov [rax], ecx
	s := &State{Mode: Mode64, RIP: 0x1000}
	s.GPR[x86.RAX] = mm
	if _, err := Emulate(s, skewMem{m}); err == nil || !strings.Contains(err.Error(), "page offset") {
		t.Fatalf("err = %v, want page-offset error", err)
	}
	if len(m.log) != 0 {
		t.Fatalf("device touched: %v", m.log)
	}
}
