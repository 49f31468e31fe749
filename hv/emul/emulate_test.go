package emul

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"golang.org/x/arch/x86/x86asm"
)

const mm = 0xd0000000 // the fake MMIO window's base

func rd(width int, gpa, v uint64) mmioAccess { return mmioAccess{false, gpa, width, v} }
func wr(width int, gpa, v uint64) mmioAccess { return mmioAccess{true, gpa, width, v} }

const ones = ^uint64(0)

type emuCase struct {
	name   string
	mode   Mode // 0 means Mode64
	code   []byte
	rip    uint64 // 0 means 0x1000
	regs   map[int]uint64
	flags  uint64
	segs   map[Seg]uint64
	setup  func(s *State, m *fakeMem)
	mmio   map[uint64]uint64 // MMIO read values by GPA
	ram    map[uint64][]byte // RAM contents by GPA
	noRIP  bool              // RIP must stay (error or incomplete)
	newRIP uint64            // expected RIP when not rip+len(code); 0 = that

	wantLog   []mmioAccess
	wantRegs  map[int]uint64
	flagMask  uint64
	wantFlags uint64
	wantRAM   map[uint64][]byte
	wantErr   func(t *testing.T, err error)
	check     func(t *testing.T, s *State, m *fakeMem, res Result)
}

func isPF(addr uint64, code uint32) func(*testing.T, error) {
	return func(t *testing.T, err error) {
		t.Helper()
		var pf *PageFault
		if !errors.As(err, &pf) || pf.Addr != addr || pf.Code != code {
			t.Fatalf("err = %v, want #PF at %#x code %#x", err, addr, code)
		}
	}
}

func isExc(vec uint8) func(*testing.T, error) {
	return func(t *testing.T, err error) {
		t.Helper()
		var ex *Exception
		if !errors.As(err, &ex) || ex.Vector != vec {
			t.Fatalf("err = %v, want exception %d", err, vec)
		}
	}
}

func isUnsupported(text string) func(*testing.T, error) {
	return func(t *testing.T, err error) {
		t.Helper()
		if !errors.Is(err, ErrUnsupported) {
			t.Fatalf("err = %v, want unsupported", err)
		}
		if !strings.Contains(err.Error(), text) {
			t.Fatalf("err = %q, want it to contain %q", err, text)
		}
	}
}

var errDevice = errors.New("device error")

// isErr wants err to wrap target, or any non-nil error when target is nil.
func isErr(target error) func(*testing.T, error) {
	return func(t *testing.T, err error) {
		t.Helper()
		if err == nil || (target != nil && !errors.Is(err, target)) {
			t.Fatalf("err = %v, want %v", err, target)
		}
	}
}

func runCase(t *testing.T, tc emuCase) {
	t.Helper()
	m := newFakeMem()
	s := &State{Mode: Mode64, RIP: 0x1000, RFLAGS: 2}
	if tc.mode != 0 {
		s.Mode = tc.mode
	}
	if tc.rip != 0 {
		s.RIP = tc.rip
	}
	for i, v := range tc.regs {
		s.GPR[i] = v
	}
	s.RFLAGS |= tc.flags
	for sg, b := range tc.segs {
		s.SegBase[sg] = b
	}
	for g, v := range tc.mmio {
		m.mmioVal[g] = v
	}
	for g, b := range tc.ram {
		for i, c := range b {
			m.ram[g+uint64(i)] = c
		}
	}
	if tc.setup != nil {
		tc.setup(s, m)
	}
	// Code lives at CS.base+RIP (linear), through the page map.
	codeLA := s.RIP
	switch s.Mode {
	case Mode32:
		codeLA = (s.SegBase[SegCS] + s.RIP) & 0xffffffff
	case Mode16:
		codeLA = (s.SegBase[SegCS] + s.RIP&0xffff) & 0xffffffff
	}
	m.put(codeLA, tc.code)
	before := *s

	res, err := Emulate(s, m)
	for _, e := range m.errs {
		t.Errorf("memory rule violated: %s", e)
	}
	if tc.wantErr != nil {
		tc.wantErr(t, err)
	} else if err != nil {
		t.Fatalf("Emulate: %v", err)
	}
	wantRIP := before.RIP + uint64(len(tc.code))
	switch s.Mode {
	case Mode16:
		wantRIP &= 0xffff
	case Mode32:
		wantRIP &= 0xffffffff
	}
	if tc.newRIP != 0 {
		wantRIP = tc.newRIP
	}
	if tc.noRIP || tc.wantErr != nil {
		wantRIP = before.RIP
	}
	if s.RIP != wantRIP {
		t.Errorf("RIP = %#x, want %#x", s.RIP, wantRIP)
	}
	if err == nil && !res.Incomplete && res.Len != len(tc.code) {
		t.Errorf("Len = %d, want %d", res.Len, len(tc.code))
	}
	if len(m.log) != 0 || len(tc.wantLog) != 0 {
		if !reflect.DeepEqual(m.log, tc.wantLog) {
			t.Errorf("MMIO log = %v, want %v", m.log, tc.wantLog)
		}
	}
	for i := range s.GPR {
		want, ok := tc.wantRegs[i]
		if !ok {
			want = before.GPR[i]
		}
		if s.GPR[i] != want {
			t.Errorf("GPR[%d] = %#x, want %#x", i, s.GPR[i], want)
		}
	}
	if got := s.RFLAGS & tc.flagMask; got != tc.wantFlags {
		t.Errorf("RFLAGS&%#x = %#x, want %#x", tc.flagMask, got, tc.wantFlags)
	}
	if tc.flagMask == 0 && s.RFLAGS != before.RFLAGS {
		t.Errorf("RFLAGS = %#x, want unchanged %#x", s.RFLAGS, before.RFLAGS)
	}
	for g, want := range tc.wantRAM {
		got := make([]byte, len(want))
		for i := range got {
			got[i] = m.ram[g+uint64(i)]
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("RAM at %#x = % x, want % x", g, got, want)
		}
	}
	if tc.check != nil {
		tc.check(t, s, m, res)
	}
}

var emuCases = []emuCase{
	// ---- MOV stores ----
	{name: "mov [rax],ecx", code: []byte{0x89, 0x08}, // mov dword [rax], ecx
		regs:    map[int]uint64{RAX: mm, RCX: 0xaaaaaaaa11223344},
		wantLog: []mmioAccess{wr(4, mm, 0x11223344)}},
	{name: "mov [rax],rcx", code: []byte{0x48, 0x89, 0x08}, // mov qword [rax], rcx
		regs:    map[int]uint64{RAX: mm, RCX: 0xaaaaaaaa11223344},
		wantLog: []mmioAccess{wr(8, mm, 0xaaaaaaaa11223344)}},
	{name: "mov [rax],cx", code: []byte{0x66, 0x89, 0x08}, // mov word [rax], cx
		regs:    map[int]uint64{RAX: mm, RCX: 0xaaaaaaaa11223344},
		wantLog: []mmioAccess{wr(2, mm, 0x3344)}},
	{name: "mov [rax],cl", code: []byte{0x88, 0x08}, // mov byte [rax], cl
		regs:    map[int]uint64{RAX: mm, RCX: 0xaaaaaaaa11223344},
		wantLog: []mmioAccess{wr(1, mm, 0x44)}},
	{name: "mov [rbx],ah", code: []byte{0x88, 0x23}, // mov byte [rbx], ah
		regs:    map[int]uint64{RAX: 0x1234, RBX: mm + 1},
		wantLog: []mmioAccess{wr(1, mm+1, 0x12)}},
	{name: "mov [rbx],spl", code: []byte{0x40, 0x88, 0x23}, // mov byte [rbx], spl
		regs:    map[int]uint64{RSP: 0x5577, RBX: mm},
		wantLog: []mmioAccess{wr(1, mm, 0x77)}},
	{name: "mov [rbx],r9w", code: []byte{0x66, 0x44, 0x89, 0x0b}, // mov word [rbx], r9w
		regs:    map[int]uint64{R9: 0xfedcba98, RBX: mm},
		wantLog: []mmioAccess{wr(2, mm, 0xba98)}},
	{name: "mov [r12+rbx*8-8],r15", code: []byte{0x4d, 0x89, 0x7c, 0xdc, 0xf8}, // mov qword [r12+rbx*8-8], r15
		regs:    map[int]uint64{R12: mm, RBX: 3, R15: 0x0102030405060708},
		wantLog: []mmioAccess{wr(8, mm+16, 0x0102030405060708)}},
	{name: "mov reg,reg zero-extends", code: []byte{0x89, 0xc8}, // mov eax, ecx
		regs:     map[int]uint64{RAX: ones, RCX: 0xffffffff87654321},
		wantRegs: map[int]uint64{RAX: 0x87654321}},
	{name: "mov r8,imm64", code: []byte{0x49, 0xb8, 8, 7, 6, 5, 4, 3, 2, 1}, // mov r8, 0x0102030405060708
		wantRegs: map[int]uint64{R8: 0x0102030405060708}},

	// ---- MOV loads ----
	{name: "mov eax,[rbx]", code: []byte{0x8b, 0x03}, // mov eax, dword [rbx]
		regs: map[int]uint64{RAX: ones, RBX: mm + 4}, mmio: map[uint64]uint64{mm + 4: 0xdeadbeef},
		wantLog:  []mmioAccess{rd(4, mm+4, 0xdeadbeef)},
		wantRegs: map[int]uint64{RAX: 0xdeadbeef}},
	{name: "mov ax,[rbx]", code: []byte{0x66, 0x8b, 0x03}, // mov ax, word [rbx]
		regs: map[int]uint64{RAX: ones, RBX: mm}, mmio: map[uint64]uint64{mm: 0xbeef},
		wantLog:  []mmioAccess{rd(2, mm, 0xbeef)},
		wantRegs: map[int]uint64{RAX: 0xffffffffffffbeef}},
	{name: "mov ah,[rbx]", code: []byte{0x8a, 0x23}, // mov ah, byte [rbx]
		regs: map[int]uint64{RAX: 0x1111, RBX: mm}, mmio: map[uint64]uint64{mm: 0x99},
		wantLog:  []mmioAccess{rd(1, mm, 0x99)},
		wantRegs: map[int]uint64{RAX: 0x9911}},
	{name: "mov dh,[rbx]", code: []byte{0x8a, 0x33}, // mov dh, byte [rbx]
		regs: map[int]uint64{RDX: 0x1234, RBX: mm}, mmio: map[uint64]uint64{mm: 0x99},
		wantLog:  []mmioAccess{rd(1, mm, 0x99)},
		wantRegs: map[int]uint64{RDX: 0x9934}},
	{name: "mov sil,[rbx]", code: []byte{0x40, 0x8a, 0x33}, // mov sil, byte [rbx]
		regs: map[int]uint64{RSI: 0x1234, RBX: mm}, mmio: map[uint64]uint64{mm: 0x99},
		wantLog:  []mmioAccess{rd(1, mm, 0x99)},
		wantRegs: map[int]uint64{RSI: 0x1299}},
	{name: "mov r10b,[rbx]", code: []byte{0x44, 0x8a, 0x13}, // mov r10b, byte [rbx]
		regs:     map[int]uint64{R10: 0xffff, RBX: mm},
		wantLog:  []mmioAccess{rd(1, mm, 0x11)},
		wantRegs: map[int]uint64{R10: 0xff11}},
	{name: "mov rax,[rbx]", code: []byte{0x48, 0x8b, 0x03}, // mov rax, qword [rbx]
		regs:     map[int]uint64{RBX: mm},
		wantLog:  []mmioAccess{rd(8, mm, 0x8877665544332211)},
		wantRegs: map[int]uint64{RAX: 0x8877665544332211}},

	// ---- MOV immediate ----
	{name: "mov byte [rbx],imm", code: []byte{0xc6, 0x03, 0x5a}, // mov byte [rbx], 0x5a
		regs: map[int]uint64{RBX: mm}, wantLog: []mmioAccess{wr(1, mm, 0x5a)}},
	{name: "mov word [rbx],imm", code: []byte{0x66, 0xc7, 0x03, 0x34, 0x12}, // mov word [rbx], 0x1234
		regs: map[int]uint64{RBX: mm}, wantLog: []mmioAccess{wr(2, mm, 0x1234)}},
	{name: "mov dword [rbx],imm", code: []byte{0xc7, 0x03, 0x78, 0x56, 0x34, 0x12}, // mov dword [rbx], 0x12345678
		regs: map[int]uint64{RBX: mm}, wantLog: []mmioAccess{wr(4, mm, 0x12345678)}},
	{name: "mov qword [rbx],simm32", code: []byte{0x48, 0xc7, 0x03, 0xf0, 0xff, 0xff, 0xff}, // mov qword [rbx], -16
		regs: map[int]uint64{RBX: mm}, wantLog: []mmioAccess{wr(8, mm, 0xfffffffffffffff0)}},
	{name: "mov dword [rbx+disp32],imm", code: []byte{0xc7, 0x83, 0x00, 0x01, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00}, // mov dword [rbx+0x100], 1
		regs: map[int]uint64{RBX: mm}, wantLog: []mmioAccess{wr(4, mm+0x100, 1)}},

	// ---- moffs ----
	{name: "mov eax,[moffs64]", code: []byte{0xa1, 0x20, 0x00, 0x00, 0xd0, 0, 0, 0, 0}, // mov eax, [0xd0000020]
		regs: map[int]uint64{RAX: ones}, mmio: map[uint64]uint64{mm + 0x20: 0xcafe},
		wantLog: []mmioAccess{rd(4, mm+0x20, 0xcafe)}, wantRegs: map[int]uint64{RAX: 0xcafe}},
	{name: "mov al,[moffs64]", code: []byte{0xa0, 0x21, 0x00, 0x00, 0xd0, 0, 0, 0, 0}, // mov al, [0xd0000021]
		regs: map[int]uint64{RAX: ones}, mmio: map[uint64]uint64{mm + 0x21: 0x5},
		wantLog: []mmioAccess{rd(1, mm+0x21, 5)}, wantRegs: map[int]uint64{RAX: 0xffffffffffffff05}},
	{name: "mov [moffs64],rax", code: []byte{0x48, 0xa3, 0x28, 0x00, 0x00, 0xd0, 0, 0, 0, 0}, // mov [0xd0000028], rax
		regs: map[int]uint64{RAX: 0x1122334455667788}, wantLog: []mmioAccess{wr(8, mm+0x28, 0x1122334455667788)}},
	{name: "mov [moffs64],ax", code: []byte{0x66, 0xa3, 0x30, 0x00, 0x00, 0xd0, 0, 0, 0, 0}, // mov [0xd0000030], ax
		regs: map[int]uint64{RAX: 0x1122334455667788}, wantLog: []mmioAccess{wr(2, mm+0x30, 0x7788)}},
	{name: "mov [moffs64],al", code: []byte{0xa2, 0x31, 0x00, 0x00, 0xd0, 0, 0, 0, 0}, // mov [0xd0000031], al
		regs: map[int]uint64{RAX: 0x1122334455667788}, wantLog: []mmioAccess{wr(1, mm+0x31, 0x88)}},
	{name: "mov eax,[moffs32] mode32", mode: Mode32, code: []byte{0xa1, 0x40, 0x00, 0x00, 0xd0}, // mov eax, [0xd0000040]
		wantLog: []mmioAccess{rd(4, mm+0x40, 0x44332211)}, wantRegs: map[int]uint64{RAX: 0x44332211}},
	{name: "mov al,[addr32 moffs]", code: []byte{0x67, 0xa0, 0x44, 0x00, 0x00, 0xd0}, // mov al, [dword 0xd0000044]
		wantLog: []mmioAccess{rd(1, mm+0x44, 0x11)}, wantRegs: map[int]uint64{RAX: 0x11}},
	{name: "mov eax,fs:[moffs64]", code: []byte{0x64, 0xa1, 0x10, 0, 0, 0, 0, 0, 0, 0}, // mov eax, fs:[0x10]
		segs:    map[Seg]uint64{SegFS: mm},
		wantLog: []mmioAccess{rd(4, mm+0x10, 0x44332211)}, wantRegs: map[int]uint64{RAX: 0x44332211}},

	// ---- MOVZX / MOVSX / MOVSXD ----
	{name: "movzx eax,byte [rbx]", code: []byte{0x0f, 0xb6, 0x03}, // movzx eax, byte [rbx]
		regs: map[int]uint64{RAX: ones, RBX: mm}, mmio: map[uint64]uint64{mm: 0x80},
		wantLog: []mmioAccess{rd(1, mm, 0x80)}, wantRegs: map[int]uint64{RAX: 0x80}},
	{name: "movzx rax,word [rbx]", code: []byte{0x48, 0x0f, 0xb7, 0x03}, // movzx rax, word [rbx]
		regs: map[int]uint64{RAX: ones, RBX: mm}, mmio: map[uint64]uint64{mm: 0x8001},
		wantLog: []mmioAccess{rd(2, mm, 0x8001)}, wantRegs: map[int]uint64{RAX: 0x8001}},
	{name: "movzx ax,byte [rbx]", code: []byte{0x66, 0x0f, 0xb6, 0x03}, // movzx ax, byte [rbx]
		regs: map[int]uint64{RAX: ones, RBX: mm}, mmio: map[uint64]uint64{mm: 0x80},
		wantLog: []mmioAccess{rd(1, mm, 0x80)}, wantRegs: map[int]uint64{RAX: 0xffffffffffff0080}},
	{name: "movsx rax,byte [rbx]", code: []byte{0x48, 0x0f, 0xbe, 0x03}, // movsx rax, byte [rbx]
		regs: map[int]uint64{RBX: mm}, mmio: map[uint64]uint64{mm: 0x80},
		wantLog: []mmioAccess{rd(1, mm, 0x80)}, wantRegs: map[int]uint64{RAX: 0xffffffffffffff80}},
	{name: "movsx eax,word [rbx]", code: []byte{0x0f, 0xbf, 0x03}, // movsx eax, word [rbx]
		regs: map[int]uint64{RAX: ones, RBX: mm}, mmio: map[uint64]uint64{mm: 0x8000},
		wantLog: []mmioAccess{rd(2, mm, 0x8000)}, wantRegs: map[int]uint64{RAX: 0xffff8000}},
	{name: "movsx ax,byte [rbx]", code: []byte{0x66, 0x0f, 0xbe, 0x03}, // movsx ax, byte [rbx]
		regs: map[int]uint64{RAX: 0x12340000, RBX: mm}, mmio: map[uint64]uint64{mm: 0xff},
		wantLog: []mmioAccess{rd(1, mm, 0xff)}, wantRegs: map[int]uint64{RAX: 0x1234ffff}},
	{name: "movsxd rax,dword [rbx]", code: []byte{0x48, 0x63, 0x03}, // movsxd rax, dword [rbx]
		regs: map[int]uint64{RBX: mm}, mmio: map[uint64]uint64{mm: 0x80000000},
		wantLog: []mmioAccess{rd(4, mm, 0x80000000)}, wantRegs: map[int]uint64{RAX: 0xffffffff80000000}},
	{name: "movzx ecx,ah", code: []byte{0x0f, 0xb6, 0xcc}, // movzx ecx, ah
		regs: map[int]uint64{RAX: 0xab00, RCX: ones}, wantRegs: map[int]uint64{RCX: 0xab}},

	// ---- addressing ----
	{name: "mov [rsi+rbx*4+0x10],ecx", code: []byte{0x89, 0x4c, 0x9e, 0x10}, // mov dword [rsi+rbx*4+0x10], ecx
		regs:    map[int]uint64{RSI: mm, RBX: 2, RCX: 7},
		wantLog: []mmioAccess{wr(4, mm+0x18, 7)}},
	{name: "mov [rbx*2+disp32] sign-extended", code: []byte{0x89, 0x0c, 0x5d, 0x00, 0x00, 0x00, 0xd0}, // mov dword [rbx*2-0x30000000], ecx
		regs: map[int]uint64{RBX: 4, RCX: 7},
		setup: func(s *State, m *fakeMem) {
			m.pages[0xffffffffd0000000] = mm
		},
		wantLog: []mmioAccess{wr(4, mm+8, 7)}},
	{name: "mov eax,[rip+disp]", code: []byte{0x8b, 0x05, 0x0a, 0x20, 0x00, 0x00}, // mov eax, [rip+0x200a]
		setup:   func(s *State, m *fakeMem) { m.pages[0x3000] = mm },
		wantLog: []mmioAccess{rd(4, mm+0x10, 0x44332211)}, wantRegs: map[int]uint64{RAX: 0x44332211}},
	{name: "mov eax,[eip+disp]", rip: 0x100001000, code: []byte{0x67, 0x8b, 0x05, 0x0a, 0x20, 0x00, 0x00}, // mov eax, [eip+0x200a]
		setup:   func(s *State, m *fakeMem) { m.pages[0x3000] = mm },
		wantLog: []mmioAccess{rd(4, mm+0x11, 0x44332211)}, wantRegs: map[int]uint64{RAX: 0x44332211}},
	{name: "mov eax,[ebx] addr32", code: []byte{0x67, 0x8b, 0x03}, // mov eax, [ebx]
		regs:    map[int]uint64{RBX: 0xffffffff00000000 | mm},
		wantLog: []mmioAccess{rd(4, mm, 0x44332211)}, wantRegs: map[int]uint64{RAX: 0x44332211}},

	// ---- segments ----
	{name: "fs override 64", code: []byte{0x64, 0x8b, 0x03}, // mov eax, fs:[rbx]
		regs: map[int]uint64{RBX: 0x30}, segs: map[Seg]uint64{SegFS: mm},
		wantLog: []mmioAccess{rd(4, mm+0x30, 0x44332211)}, wantRegs: map[int]uint64{RAX: 0x44332211}},
	{name: "gs override 64", code: []byte{0x65, 0x89, 0x08}, // mov gs:[rax], ecx
		regs: map[int]uint64{RAX: 0x8, RCX: 3}, segs: map[Seg]uint64{SegGS: mm},
		wantLog: []mmioAccess{wr(4, mm+8, 3)}},
	{name: "ds base ignored in 64", code: []byte{0x3e, 0x8b, 0x03}, // mov eax, ds:[rbx]
		regs: map[int]uint64{RBX: mm}, segs: map[Seg]uint64{SegDS: 0x1000, SegSS: 0x1000},
		wantLog: []mmioAccess{rd(4, mm, 0x44332211)}, wantRegs: map[int]uint64{RAX: 0x44332211}},
	{name: "ds base mode32", mode: Mode32, code: []byte{0x8b, 0x03}, // mov eax, [ebx]
		regs: map[int]uint64{RBX: 0x10000010}, segs: map[Seg]uint64{SegDS: 0xc0000000},
		wantLog: []mmioAccess{rd(4, mm+0x10, 0x44332211)}, wantRegs: map[int]uint64{RAX: 0x44332211}},
	{name: "es override mode32", mode: Mode32, code: []byte{0x26, 0x8b, 0x03}, // mov eax, es:[ebx]
		regs: map[int]uint64{RBX: 0xc0000000}, segs: map[Seg]uint64{SegES: 0x10000000},
		wantLog: []mmioAccess{rd(4, mm, 0x44332211)}, wantRegs: map[int]uint64{RAX: 0x44332211}},
	{name: "ss default for ebp mode32", mode: Mode32, code: []byte{0x8b, 0x45, 0x04}, // mov eax, [ebp+4]
		regs: map[int]uint64{RBP: 0x80000000}, segs: map[Seg]uint64{SegSS: 0x50000000, SegDS: 0x1234},
		wantLog: []mmioAccess{rd(4, mm+4, 0x44332211)}, wantRegs: map[int]uint64{RAX: 0x44332211}},
	{name: "linear wrap mode32", mode: Mode32, code: []byte{0x8b, 0x03}, // mov eax, [ebx]
		regs: map[int]uint64{RBX: 0xe0000010}, segs: map[Seg]uint64{SegDS: 0xf0000000},
		wantLog: []mmioAccess{rd(4, mm+0x10, 0x44332211)}, wantRegs: map[int]uint64{RAX: 0x44332211}},
	{name: "cs base for fetch mode32", mode: Mode32, code: []byte{0x89, 0x08}, // mov [eax], ecx
		regs: map[int]uint64{RAX: mm, RCX: 9}, segs: map[Seg]uint64{SegCS: 0x10000},
		wantLog: []mmioAccess{wr(4, mm, 9)},
		check: func(t *testing.T, s *State, m *fakeMem, res Result) {
			if m.xlates[0] != (xlateCall{0x11000, AccessFetch}) {
				t.Errorf("first translate = %+v, want fetch at 0x11000", m.xlates[0])
			}
		}},
	{name: "mov ax,[bx] mode16", mode: Mode16, code: []byte{0x8b, 0x07}, // mov ax, [bx]
		regs: map[int]uint64{RBX: 0x12, RAX: 0xffff0000}, segs: map[Seg]uint64{SegDS: mm},
		wantLog: []mmioAccess{rd(2, mm+0x12, 0x2211)}, wantRegs: map[int]uint64{RAX: 0xffff2211}},
	{name: "mov ax,[bp+si+4] mode16", mode: Mode16, code: []byte{0x8b, 0x42, 0x04}, // mov ax, [bp+si+4]
		regs: map[int]uint64{RBP: 0x10, RSI: 0x20}, segs: map[Seg]uint64{SegSS: mm, SegDS: 0x5000},
		wantLog: []mmioAccess{rd(2, mm+0x34, 0x2211)}, wantRegs: map[int]uint64{RAX: 0x2211}},
	{name: "mov eax,[bx] mode16 o32", mode: Mode16, code: []byte{0x66, 0x8b, 0x07}, // mov eax, [bx]
		regs: map[int]uint64{RBX: 0x12}, segs: map[Seg]uint64{SegDS: mm},
		wantLog: []mmioAccess{rd(4, mm+0x12, 0x44332211)}, wantRegs: map[int]uint64{RAX: 0x44332211}},
	{name: "mov ax,[bx+si] wraps mode16", mode: Mode16, code: []byte{0x8b, 0x00}, // mov ax, [bx+si]
		regs: map[int]uint64{RBX: 0xfff0, RSI: 0x20}, segs: map[Seg]uint64{SegDS: mm},
		wantLog: []mmioAccess{rd(2, mm+0x10, 0x2211)}, wantRegs: map[int]uint64{RAX: 0x2211}},
	{name: "a16 in mode32", mode: Mode32, code: []byte{0x67, 0x8b, 0x07}, // mov eax, [bx]
		regs: map[int]uint64{RBX: 0xffff0008}, segs: map[Seg]uint64{SegDS: mm},
		wantLog: []mmioAccess{rd(4, mm+8, 0x44332211)}, wantRegs: map[int]uint64{RAX: 0x44332211}},
	{name: "ip wraps mode16", mode: Mode16, rip: 0xfffe, code: []byte{0x8b, 0x07}, // mov ax, [bx]
		regs: map[int]uint64{RBX: 0}, segs: map[Seg]uint64{SegDS: mm},
		wantLog: []mmioAccess{rd(2, mm, 0x2211)}, wantRegs: map[int]uint64{RAX: 0x2211},
		check: func(t *testing.T, s *State, m *fakeMem, res Result) {
			if s.RIP != 0 {
				t.Errorf("RIP = %#x, want 0", s.RIP)
			}
		}},

	// ---- ALU ----
	{name: "add [rax],ecx carry", code: []byte{0x01, 0x08}, // add dword [rax], ecx
		regs: map[int]uint64{RAX: mm, RCX: 1}, mmio: map[uint64]uint64{mm: 0xffffffff},
		wantLog:  []mmioAccess{rd(4, mm, 0xffffffff), wr(4, mm, 0)},
		flagMask: arithFlags, wantFlags: FlagCF | FlagZF | FlagPF | FlagAF,
		check: func(t *testing.T, s *State, m *fakeMem, res Result) {
			if len(m.xlates) != 2 || m.xlates[1].Acc != AccessWrite {
				t.Errorf("translates = %+v, want data translate for write", m.xlates)
			}
			if res.Accesses != 2 {
				t.Errorf("Accesses = %d, want 2", res.Accesses)
			}
		}},
	{name: "add dword [rax],1 overflow", code: []byte{0x83, 0x00, 0x01}, // add dword [rax], 1
		regs: map[int]uint64{RAX: mm}, mmio: map[uint64]uint64{mm: 0x7fffffff}, flags: FlagCF,
		wantLog:  []mmioAccess{rd(4, mm, 0x7fffffff), wr(4, mm, 0x80000000)},
		flagMask: arithFlags, wantFlags: FlagOF | FlagSF | FlagAF | FlagPF},
	{name: "lock add [rax],ecx", code: []byte{0xf0, 0x01, 0x08}, // lock add dword [rax], ecx
		regs: map[int]uint64{RAX: mm, RCX: 2}, mmio: map[uint64]uint64{mm: 1},
		wantLog:  []mmioAccess{rd(4, mm, 1), wr(4, mm, 3)},
		flagMask: arithFlags, wantFlags: FlagPF},
	{name: "add eax,[rbx]", code: []byte{0x03, 0x03}, // add eax, dword [rbx]
		regs: map[int]uint64{RAX: 0xffffffff00000001, RBX: mm}, mmio: map[uint64]uint64{mm: 2},
		wantLog:  []mmioAccess{rd(4, mm, 2)},
		wantRegs: map[int]uint64{RAX: 3}, flagMask: arithFlags, wantFlags: FlagPF},
	{name: "add [rax],rcx carry64", code: []byte{0x48, 0x01, 0x08}, // add qword [rax], rcx
		regs: map[int]uint64{RAX: mm, RCX: 1}, mmio: map[uint64]uint64{mm: ones},
		wantLog:  []mmioAccess{rd(8, mm, ones), wr(8, mm, 0)},
		flagMask: arithFlags, wantFlags: FlagCF | FlagZF | FlagPF | FlagAF},
	{name: "sub [rax],ecx borrow", code: []byte{0x29, 0x08}, // sub dword [rax], ecx
		regs: map[int]uint64{RAX: mm, RCX: 1}, mmio: map[uint64]uint64{mm: 0},
		wantLog:  []mmioAccess{rd(4, mm, 0), wr(4, mm, 0xffffffff)},
		flagMask: arithFlags, wantFlags: FlagCF | FlagSF | FlagAF | FlagPF},
	{name: "sub rax,[rbx] borrow64", code: []byte{0x48, 0x2b, 0x03}, // sub rax, qword [rbx]
		regs: map[int]uint64{RAX: 0, RBX: mm}, mmio: map[uint64]uint64{mm: 1},
		wantLog:  []mmioAccess{rd(8, mm, 1)},
		wantRegs: map[int]uint64{RAX: ones}, flagMask: arithFlags, wantFlags: FlagCF | FlagSF | FlagAF | FlagPF},
	{name: "cmp ecx,[rax] equal", code: []byte{0x3b, 0x08}, // cmp ecx, dword [rax]
		regs: map[int]uint64{RAX: mm, RCX: 5}, mmio: map[uint64]uint64{mm: 5}, flags: FlagCF | FlagOF,
		wantLog:  []mmioAccess{rd(4, mm, 5)},
		flagMask: arithFlags, wantFlags: FlagZF | FlagPF,
		check: func(t *testing.T, s *State, m *fakeMem, res Result) {
			if m.xlates[1].Acc != AccessRead {
				t.Errorf("cmp translated for %v, want read", m.xlates[1].Acc)
			}
		}},
	{name: "cmp byte [rax],0x80", code: []byte{0x80, 0x38, 0x80}, // cmp byte [rax], 0x80
		regs: map[int]uint64{RAX: mm}, mmio: map[uint64]uint64{mm: 0x7f},
		wantLog:  []mmioAccess{rd(1, mm, 0x7f)},
		flagMask: arithFlags, wantFlags: FlagCF | FlagOF | FlagSF | FlagPF},
	{name: "test [rax],ecx", code: []byte{0x85, 0x08}, // test dword [rax], ecx
		regs: map[int]uint64{RAX: mm, RCX: 0xf}, mmio: map[uint64]uint64{mm: 0xf0}, flags: FlagCF | FlagOF | FlagAF,
		wantLog:  []mmioAccess{rd(4, mm, 0xf0)},
		flagMask: arithFlags, wantFlags: FlagZF | FlagPF},
	{name: "test byte [rax],1", code: []byte{0xf6, 0x00, 0x01}, // test byte [rax], 1
		regs: map[int]uint64{RAX: mm}, mmio: map[uint64]uint64{mm: 0x11},
		wantLog:  []mmioAccess{rd(1, mm, 0x11)},
		flagMask: arithFlags, wantFlags: 0},
	{name: "and dword [rax],imm32", code: []byte{0x81, 0x20, 0x00, 0xff, 0x00, 0x00}, // and dword [rax], 0xff00
		regs: map[int]uint64{RAX: mm}, mmio: map[uint64]uint64{mm: 0x12345678},
		wantLog:  []mmioAccess{rd(4, mm, 0x12345678), wr(4, mm, 0x5600)},
		flagMask: arithFlags, wantFlags: FlagPF},
	{name: "or qword [rax],simm8", code: []byte{0x48, 0x83, 0x08, 0x80}, // or qword [rax], -128
		regs: map[int]uint64{RAX: mm}, mmio: map[uint64]uint64{mm: 1},
		wantLog:  []mmioAccess{rd(8, mm, 1), wr(8, mm, 0xffffffffffffff81)},
		flagMask: arithFlags, wantFlags: FlagSF | FlagPF},
	{name: "or [rax],ecx", code: []byte{0x09, 0x08}, // or dword [rax], ecx
		regs: map[int]uint64{RAX: mm, RCX: 0x100}, mmio: map[uint64]uint64{mm: 1},
		wantLog:  []mmioAccess{rd(4, mm, 1), wr(4, mm, 0x101)},
		flagMask: arithFlags, wantFlags: 0},
	{name: "xor byte [rax],0xff", code: []byte{0x80, 0x30, 0xff}, // xor byte [rax], 0xff
		regs: map[int]uint64{RAX: mm}, mmio: map[uint64]uint64{mm: 0x0f},
		wantLog:  []mmioAccess{rd(1, mm, 0x0f), wr(1, mm, 0xf0)},
		flagMask: arithFlags, wantFlags: FlagSF | FlagPF},
	{name: "adc [rax],ecx", code: []byte{0x11, 0x08}, // adc dword [rax], ecx
		regs: map[int]uint64{RAX: mm, RCX: 1}, mmio: map[uint64]uint64{mm: 1}, flags: FlagCF,
		wantLog:  []mmioAccess{rd(4, mm, 1), wr(4, mm, 3)},
		flagMask: arithFlags, wantFlags: FlagPF},
	{name: "sbb [rax],ecx", code: []byte{0x19, 0x08}, // sbb dword [rax], ecx
		regs: map[int]uint64{RAX: mm, RCX: 0}, mmio: map[uint64]uint64{mm: 1}, flags: FlagCF,
		wantLog:  []mmioAccess{rd(4, mm, 1), wr(4, mm, 0)},
		flagMask: arithFlags, wantFlags: FlagZF | FlagPF},
	{name: "inc dword [rax]", code: []byte{0xff, 0x00}, // inc dword [rax]
		regs: map[int]uint64{RAX: mm}, mmio: map[uint64]uint64{mm: 0x7fffffff}, flags: FlagCF,
		wantLog:  []mmioAccess{rd(4, mm, 0x7fffffff), wr(4, mm, 0x80000000)},
		flagMask: arithFlags, wantFlags: FlagCF | FlagOF | FlagSF | FlagAF | FlagPF},
	{name: "dec byte [rax]", code: []byte{0xfe, 0x08}, // dec byte [rax]
		regs: map[int]uint64{RAX: mm}, mmio: map[uint64]uint64{mm: 0},
		wantLog:  []mmioAccess{rd(1, mm, 0), wr(1, mm, 0xff)},
		flagMask: arithFlags, wantFlags: FlagSF | FlagAF | FlagPF},
	{name: "neg dword [rax]", code: []byte{0xf7, 0x18}, // neg dword [rax]
		regs: map[int]uint64{RAX: mm}, mmio: map[uint64]uint64{mm: 1},
		wantLog:  []mmioAccess{rd(4, mm, 1), wr(4, mm, 0xffffffff)},
		flagMask: arithFlags, wantFlags: FlagCF | FlagSF | FlagAF | FlagPF},
	{name: "not byte [rax]", code: []byte{0xf6, 0x10}, // not byte [rax]
		regs: map[int]uint64{RAX: mm}, mmio: map[uint64]uint64{mm: 0x0f}, flags: arithFlags,
		wantLog:  []mmioAccess{rd(1, mm, 0x0f), wr(1, mm, 0xf0)},
		flagMask: arithFlags, wantFlags: arithFlags},
	{name: "xchg [rax],ecx", code: []byte{0x87, 0x08}, // xchg dword [rax], ecx
		regs: map[int]uint64{RAX: mm, RCX: 0xffffffff22222222}, mmio: map[uint64]uint64{mm: 0x11111111},
		wantLog:  []mmioAccess{rd(4, mm, 0x11111111), wr(4, mm, 0x22222222)},
		wantRegs: map[int]uint64{RCX: 0x11111111}},
	{name: "xchg [rbx],al", code: []byte{0x86, 0x03}, // xchg byte [rbx], al
		regs: map[int]uint64{RAX: 0x1234, RBX: mm}, mmio: map[uint64]uint64{mm: 0x99},
		wantLog:  []mmioAccess{rd(1, mm, 0x99), wr(1, mm, 0x34)},
		wantRegs: map[int]uint64{RAX: 0x1299}},

	{name: "xchg ecx,eax", code: []byte{0x91}, // xchg ecx, eax
		regs:     map[int]uint64{RAX: 0xffffffff00000001, RCX: 0xffffffff00000002},
		wantRegs: map[int]uint64{RAX: 2, RCX: 1}},
	{name: "xchg device write error keeps register", code: []byte{0x87, 0x08}, // xchg dword [rax], ecx
		regs:    map[int]uint64{RAX: mm, RCX: 5},
		setup:   func(s *State, m *fakeMem) { m.failWrite = errDevice },
		wantLog: []mmioAccess{rd(4, mm, 0x44332211)}, wantErr: isErr(errDevice)},
	{name: "mov load device error", code: []byte{0x8b, 0x03}, // mov eax, [rbx]
		regs:    map[int]uint64{RBX: mm},
		setup:   func(s *State, m *fakeMem) { m.failRead = errDevice },
		wantErr: isErr(errDevice)},
	{name: "add device read error leaves flags", code: []byte{0x01, 0x08}, // add dword [rax], ecx
		regs:    map[int]uint64{RAX: mm},
		setup:   func(s *State, m *fakeMem) { m.failRead = errDevice },
		wantErr: isErr(errDevice)},
	{name: "add device write error leaves flags", code: []byte{0x01, 0x08}, // add dword [rax], ecx
		regs: map[int]uint64{RAX: mm}, mmio: map[uint64]uint64{mm: 0},
		setup:   func(s *State, m *fakeMem) { m.failWrite = errDevice },
		wantLog: []mmioAccess{rd(4, mm, 0)}, wantErr: isErr(errDevice)},
	{name: "inc device write error", code: []byte{0xff, 0x00}, // inc dword [rax]
		regs: map[int]uint64{RAX: mm}, mmio: map[uint64]uint64{mm: 0},
		setup:   func(s *State, m *fakeMem) { m.failWrite = errDevice },
		wantLog: []mmioAccess{rd(4, mm, 0)}, wantErr: isErr(errDevice)},
	{name: "movzx device error", code: []byte{0x0f, 0xb6, 0x03}, // movzx eax, byte [rbx]
		regs:    map[int]uint64{RBX: mm},
		setup:   func(s *State, m *fakeMem) { m.failRead = errDevice },
		wantErr: isErr(errDevice)},
	{name: "rep movsb device error mid-way", code: []byte{0xf3, 0xa4}, // rep movsb
		regs:     map[int]uint64{RSI: mm, RDI: 0x6000, RCX: 3},
		setup:    func(s *State, m *fakeMem) { m.failRead = errDevice },
		wantErr:  isErr(errDevice),
		wantRegs: map[int]uint64{}},
	{name: "lodsb device error", code: []byte{0xac}, // lodsb
		regs:    map[int]uint64{RSI: mm},
		setup:   func(s *State, m *fakeMem) { m.failRead = errDevice },
		wantErr: isErr(errDevice)},
	{name: "stosb device error", code: []byte{0xaa}, // stosb
		regs:    map[int]uint64{RDI: mm},
		setup:   func(s *State, m *fakeMem) { m.failWrite = errDevice },
		wantErr: isErr(errDevice)},
	{name: "split mmio read second half error", code: []byte{0x8b, 0x03}, // mov eax, [rbx]
		regs: map[int]uint64{RBX: 0x9ffe},
		setup: func(s *State, m *fakeMem) {
			m.pages[0xa000] = mm
			m.failRead = errDevice
		},
		wantErr: isErr(errDevice)},
	{name: "split mmio write second half error", code: []byte{0x89, 0x03}, // mov [rbx], eax
		regs: map[int]uint64{RBX: 0x9ffe},
		setup: func(s *State, m *fakeMem) {
			m.pages[0xa000] = mm
			m.failWrite = errDevice
		},
		wantErr: isErr(errDevice)},

	// ---- string instructions ----
	{name: "movsb ram->mmio", code: []byte{0xa4}, // movsb
		regs: map[int]uint64{RSI: 0x5000, RDI: mm}, ram: map[uint64][]byte{0x5000: {0xab}},
		wantLog:  []mmioAccess{wr(1, mm, 0xab)},
		wantRegs: map[int]uint64{RSI: 0x5001, RDI: mm + 1}},
	{name: "rep movsb ram->mmio", code: []byte{0xf3, 0xa4}, // rep movsb
		regs: map[int]uint64{RSI: 0x5000, RDI: mm, RCX: 3}, ram: map[uint64][]byte{0x5000: {1, 2, 3}},
		wantLog:  []mmioAccess{wr(1, mm, 1), wr(1, mm+1, 2), wr(1, mm+2, 3)},
		wantRegs: map[int]uint64{RSI: 0x5003, RDI: mm + 3, RCX: 0},
		check: func(t *testing.T, s *State, m *fakeMem, res Result) {
			if res.Iterations != 3 || res.Accesses != 6 {
				t.Errorf("Iterations/Accesses = %d/%d, want 3/6", res.Iterations, res.Accesses)
			}
			if len(m.xlates) != 3 { // fetch + one per page thanks to the cache
				t.Errorf("translates = %d, want 3", len(m.xlates))
			}
		}},
	{name: "repne movsb acts as rep", code: []byte{0xf2, 0xa4}, // repne movsb
		regs: map[int]uint64{RSI: 0x5000, RDI: mm, RCX: 2}, ram: map[uint64][]byte{0x5000: {1, 2}},
		wantLog:  []mmioAccess{wr(1, mm, 1), wr(1, mm+1, 2)},
		wantRegs: map[int]uint64{RSI: 0x5002, RDI: mm + 2, RCX: 0}},
	{name: "rep movsq mmio->ram", code: []byte{0xf3, 0x48, 0xa5}, // rep movsq
		regs:     map[int]uint64{RSI: mm, RDI: 0x6000, RCX: 2},
		wantLog:  []mmioAccess{rd(8, mm, 0x8877665544332211), rd(8, mm+8, 0x8877665544332211)},
		wantRegs: map[int]uint64{RSI: mm + 16, RDI: 0x6010, RCX: 0},
		wantRAM: map[uint64][]byte{0x6000: {0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88,
			0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88}}},
	{name: "rep stosd backwards", code: []byte{0xf3, 0xab}, // rep stosd (DF=1)
		regs: map[int]uint64{RDI: mm + 8, RCX: 3, RAX: 0xffffffffcafef00d}, flags: FlagDF,
		wantLog:  []mmioAccess{wr(4, mm+8, 0xcafef00d), wr(4, mm+4, 0xcafef00d), wr(4, mm, 0xcafef00d)},
		wantRegs: map[int]uint64{RDI: mm - 4, RCX: 0}},
	{name: "stosw", code: []byte{0x66, 0xab}, // stosw
		regs: map[int]uint64{RDI: mm, RAX: 0x12345678}, segs: map[Seg]uint64{SegES: 0x1000},
		wantLog:  []mmioAccess{wr(2, mm, 0x5678)},
		wantRegs: map[int]uint64{RDI: mm + 2}},
	{name: "lodsb", code: []byte{0xac}, // lodsb
		regs:     map[int]uint64{RSI: mm, RAX: 0xffff},
		wantLog:  []mmioAccess{rd(1, mm, 0x11)},
		wantRegs: map[int]uint64{RSI: mm + 1, RAX: 0xff11}},
	{name: "lodsd zero-extends", code: []byte{0xad}, // lodsd
		regs:     map[int]uint64{RSI: mm, RAX: ones},
		wantLog:  []mmioAccess{rd(4, mm, 0x44332211)},
		wantRegs: map[int]uint64{RSI: mm + 4, RAX: 0x44332211}},
	{name: "lodsq backwards", code: []byte{0x48, 0xad}, // lodsq (DF=1)
		regs: map[int]uint64{RSI: mm + 8}, flags: FlagDF,
		wantLog:  []mmioAccess{rd(8, mm+8, 0x8877665544332211)},
		wantRegs: map[int]uint64{RSI: mm, RAX: 0x8877665544332211}},
	{name: "rep stosb rcx=0", code: []byte{0xf3, 0xaa}, // rep stosb
		regs: map[int]uint64{RDI: mm, RCX: 0}},
	{name: "rep stosb hits limit", code: []byte{0xf3, 0xaa}, // rep stosb
		regs:     map[int]uint64{RDI: mm, RCX: 5, RAX: 0x7},
		setup:    func(s *State, m *fakeMem) { s.RepLimit = 2 },
		noRIP:    true,
		wantLog:  []mmioAccess{wr(1, mm, 7), wr(1, mm+1, 7)},
		wantRegs: map[int]uint64{RDI: mm + 2, RCX: 3},
		check: func(t *testing.T, s *State, m *fakeMem, res Result) {
			if !res.Incomplete || res.Iterations != 2 {
				t.Errorf("res = %+v, want Incomplete after 2 iterations", res)
			}
		}},
	{name: "rep stosb a32 in 64", code: []byte{0x67, 0xf3, 0xaa}, // rep stosb [edi]
		regs:     map[int]uint64{RDI: 0xffffffff00000000 | mm, RCX: 0xffffffff00000002, RAX: 1},
		wantLog:  []mmioAccess{wr(1, mm, 1), wr(1, mm+1, 1)},
		wantRegs: map[int]uint64{RDI: mm + 2, RCX: 0}},
	{name: "stosb a16 wraps di in mode32", mode: Mode32, code: []byte{0x67, 0xaa}, // stosb [di]
		regs: map[int]uint64{RDI: 0xabcdffff, RAX: 5}, segs: map[Seg]uint64{SegES: mm},
		wantLog:  []mmioAccess{wr(1, mm+0xffff, 5)},
		wantRegs: map[int]uint64{RDI: 0xabcd0000}},
	{name: "fs: movsb 64", code: []byte{0x64, 0xa4}, // movsb byte [rdi], fs:[rsi]
		regs: map[int]uint64{RSI: 0x1000, RDI: mm}, segs: map[Seg]uint64{SegFS: 0x4000, SegES: 0x100},
		ram:      map[uint64][]byte{0x5000: {0x42}},
		wantLog:  []mmioAccess{wr(1, mm, 0x42)},
		wantRegs: map[int]uint64{RSI: 0x1001, RDI: mm + 1}},
	{name: "movsd with ds/es bases mode32", mode: Mode32, code: []byte{0xa5}, // movsd
		regs: map[int]uint64{RSI: 0x4000, RDI: 0x100}, segs: map[Seg]uint64{SegDS: 0x1000, SegES: mm - 0x100},
		ram:      map[uint64][]byte{0x5000: {1, 2, 3, 4}},
		wantLog:  []mmioAccess{wr(4, mm, 0x04030201)},
		wantRegs: map[int]uint64{RSI: 0x4004, RDI: 0x104}},

	// ---- page boundaries ----
	{name: "ram write split across pages", code: []byte{0x89, 0x08}, // mov dword [rax], ecx
		regs:    map[int]uint64{RAX: 0x7ffe, RCX: 0x11223344},
		setup:   func(s *State, m *fakeMem) { m.pages[0x8000] = 0x20000 },
		wantRAM: map[uint64][]byte{0x7ffe: {0x44, 0x33}, 0x20000: {0x22, 0x11}}},
	{name: "mmio write split across pages", code: []byte{0x89, 0x08}, // mov dword [rax], ecx
		regs: map[int]uint64{RAX: 0x9ffe, RCX: 0x11223344},
		setup: func(s *State, m *fakeMem) {
			m.pages[0x9000] = mm
			m.pages[0xa000] = mm + 0x1000
		},
		wantLog: []mmioAccess{wr(2, mm+0xffe, 0x3344), wr(2, mm+0x1000, 0x1122)}},
	{name: "instruction split across pages", rip: 0x1ffe, code: []byte{0x48, 0x89, 0x08}, // mov qword [rax], rcx
		regs:    map[int]uint64{RAX: mm, RCX: 5},
		setup:   func(s *State, m *fakeMem) { m.pages[0x2000] = 0x30000 },
		wantLog: []mmioAccess{wr(8, mm, 5)}},
	{name: "instruction ends at page end, next page absent", rip: 0x1ffe, code: []byte{0x89, 0x08}, // mov dword [rax], ecx
		regs:    map[int]uint64{RAX: mm, RCX: 5},
		setup:   func(s *State, m *fakeMem) { m.fault[0x2000] = 0 },
		wantLog: []mmioAccess{wr(4, mm, 5)}},
	{name: "instruction runs into absent page", rip: 0x1ffe, code: []byte{0x48, 0x89, 0x08}, // mov qword [rax], rcx
		regs:    map[int]uint64{RAX: mm, RCX: 5},
		setup:   func(s *State, m *fakeMem) { m.fault[0x2000] = PFFetch },
		wantErr: isPF(0x2000, PFFetch)},
	{name: "data page fault", code: []byte{0x89, 0x08}, // mov dword [rax], ecx
		regs:    map[int]uint64{RAX: mm},
		setup:   func(s *State, m *fakeMem) { m.fault[mm] = PFWrite | PFPresent },
		wantErr: isPF(mm, PFWrite|PFPresent)},
	{name: "split write faults on second page before any write", code: []byte{0x89, 0x08}, // mov dword [rax], ecx
		regs: map[int]uint64{RAX: 0x9ffe},
		setup: func(s *State, m *fakeMem) {
			m.pages[0x9000] = mm
			m.fault[0xa000] = PFWrite
		},
		wantErr: isPF(0xa000, PFWrite)},
	{name: "movs faults on destination before reading source", code: []byte{0xa4}, // movsb
		regs:    map[int]uint64{RSI: mm, RDI: 0x7000},
		setup:   func(s *State, m *fakeMem) { m.fault[0x7000] = PFWrite },
		wantErr: isPF(0x7000, PFWrite)},
	{name: "rep fault keeps progress", code: []byte{0xf3, 0xaa}, // rep stosb
		regs:     map[int]uint64{RDI: mm + 0xffe, RCX: 4, RAX: 3},
		setup:    func(s *State, m *fakeMem) { m.fault[mm+0x1000] = PFWrite },
		wantErr:  isPF(mm+0x1000, PFWrite),
		wantLog:  []mmioAccess{wr(1, mm+0xffe, 3), wr(1, mm+0xfff, 3)},
		wantRegs: map[int]uint64{RDI: mm + 0x1000, RCX: 2}},

	// ---- architectural faults ----
	{name: "non-canonical #GP", code: []byte{0x8b, 0x03}, // mov eax, [rbx]
		regs: map[int]uint64{RBX: 0x0000800000000000}, wantErr: isExc(VectorGP)},
	{name: "non-canonical via rbp #SS", code: []byte{0x8b, 0x45, 0x00}, // mov eax, [rbp+0]
		regs: map[int]uint64{RBP: 0x0000800000000000}, wantErr: isExc(VectorSS)},
	{name: "straddles canonical boundary", code: []byte{0x8b, 0x03}, // mov eax, [rbx]
		regs: map[int]uint64{RBX: 0x00007ffffffffffe}, wantErr: isExc(VectorGP)},
	{name: "la57 widens canonical", code: []byte{0x89, 0x03}, // mov [rbx], eax
		regs:    map[int]uint64{RBX: 0x0000800000000000, RAX: 0x01020304},
		setup:   func(s *State, m *fakeMem) { s.LA57 = true },
		wantRAM: map[uint64][]byte{0x0000800000000000: {4, 3, 2, 1}}},
	{name: "lock mov #UD", code: []byte{0xf0, 0x89, 0x08}, // lock mov [rax], ecx
		regs: map[int]uint64{RAX: mm}, wantErr: isExc(VectorUD)},
	{name: "lock add reg #UD", code: []byte{0xf0, 0x01, 0xc8}, // lock add eax, ecx
		wantErr: isExc(VectorUD)},

	// ---- unsupported ----
	{name: "ud2", code: []byte{0x0f, 0x0b}, // ud2
		wantErr: isUnsupported(`emul: unsupported instruction "ud2" at rip 0x1000`)},
	{name: "movsd xmm", code: []byte{0xf2, 0x0f, 0x10, 0x00}, // movsd xmm0, qword [rax]
		regs: map[int]uint64{RAX: mm}, wantErr: isUnsupported(`"movsd xmm0, qword ptr [rax]"`)},
	{name: "mov cr0", code: []byte{0x0f, 0x22, 0xc0}, // mov cr0, rax
		wantErr: isUnsupported(`"mov cr0, rax"`)},
	{name: "mov ds,ax", code: []byte{0x8e, 0xd8}, // mov ds, ax
		wantErr: isUnsupported(`"mov ds, ax"`)},
	{name: "all prefixes", code: []byte{0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66},
		wantErr: isUnsupported(`"(bad) 66 66`)},
	{name: "cmpsb", code: []byte{0xa6}, // cmpsb
		wantErr: isUnsupported(`cmpsb`)},
}

func TestEmulate(t *testing.T) {
	for _, tc := range emuCases {
		t.Run(tc.name, func(t *testing.T) { runCase(t, tc) })
	}
}

func TestEmulateUserAndAC(t *testing.T) {
	for _, c := range []struct {
		cpl             uint8
		flags           uint64
		fetchAcc, ldAcc Access
	}{
		{0, 0, AccessFetch, AccessWrite},
		{0, FlagAC, AccessFetch, AccessWrite | AccessAC},
		{3, FlagAC, AccessFetch | AccessUser, AccessWrite | AccessUser},
	} {
		m := newFakeMem()
		m.put(0x1000, []byte{0x89, 0x08}) // mov [rax], ecx
		s := &State{Mode: Mode64, RIP: 0x1000, CPL: c.cpl, RFLAGS: 2 | c.flags}
		s.GPR[RAX] = mm
		if _, err := Emulate(s, m); err != nil {
			t.Fatal(err)
		}
		want := []xlateCall{{0x1000, c.fetchAcc}, {mm, c.ldAcc}}
		if !reflect.DeepEqual(m.xlates, want) {
			t.Errorf("cpl %d flags %#x: translates %+v, want %+v", c.cpl, c.flags, m.xlates, want)
		}
	}
}

func TestEmulateClearsRF(t *testing.T) {
	m := newFakeMem()
	m.put(0x1000, []byte{0x89, 0x08}) // mov [rax], ecx
	s := &State{Mode: Mode64, RIP: 0x1000, RFLAGS: 2 | FlagRF}
	s.GPR[RAX] = mm
	if _, err := Emulate(s, m); err != nil {
		t.Fatal(err)
	}
	if s.RFLAGS != 2 {
		t.Errorf("RFLAGS = %#x, want 2", s.RFLAGS)
	}
}

func TestEmulateBadMode(t *testing.T) {
	s := &State{Mode: 8}
	if _, err := Emulate(s, newFakeMem()); err == nil {
		t.Fatal("no error for mode 8")
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
	s.GPR[RAX] = mm
	if _, err := Emulate(s, skewMem{m}); err == nil || !strings.Contains(err.Error(), "page offset") {
		t.Fatalf("err = %v, want page-offset error", err)
	}
	if len(m.log) != 0 {
		t.Fatalf("device touched: %v", m.log)
	}
}

func TestModeFromCS(t *testing.T) {
	if ModeFromCS(true, true, false) != Mode64 || ModeFromCS(true, false, true) != Mode32 ||
		ModeFromCS(false, true, true) != Mode32 || ModeFromCS(false, false, false) != Mode16 {
		t.Fatal("ModeFromCS")
	}
}

// Flag helpers against straightforward wide arithmetic.
func TestFlagsExhaustive8(t *testing.T) {
	for a := uint64(0); a < 256; a++ {
		for b := uint64(0); b < 256; b++ {
			for c := uint64(0); c < 2; c++ {
				res, f := add(a, b, c, 1)
				sum := a + b + c
				if res != sum&0xff || (f&FlagCF != 0) != (sum > 0xff) {
					t.Fatalf("add %d+%d+%d: res %#x flags %#x", a, b, c, res, f)
				}
				sa, sb := int64(int8(a)), int64(int8(b))
				ss := sa + sb + int64(c)
				if (f&FlagOF != 0) != (ss < -128 || ss > 127) {
					t.Fatalf("add OF %d+%d+%d", a, b, c)
				}
				if (f&FlagAF != 0) != ((a&0xf)+(b&0xf)+c > 0xf) {
					t.Fatalf("add AF %d+%d+%d", a, b, c)
				}
				res, f = sub(a, b, c, 1)
				if res != (a-b-c)&0xff || (f&FlagCF != 0) != (a < b+c) {
					t.Fatalf("sub %d-%d-%d: res %#x flags %#x", a, b, c, res, f)
				}
				sd := sa - sb - int64(c)
				if (f&FlagOF != 0) != (sd < -128 || sd > 127) {
					t.Fatalf("sub OF %d-%d-%d", a, b, c)
				}
				if (f&FlagAF != 0) != (a&0xf < b&0xf+c) {
					t.Fatalf("sub AF %d-%d-%d", a, b, c)
				}
				if (f&FlagZF != 0) != (res == 0) || (f&FlagSF != 0) != (res&0x80 != 0) {
					t.Fatalf("sub ZF/SF %d-%d-%d", a, b, c)
				}
			}
		}
	}
}

// allocMem is a Memory that does not allocate, for measuring Emulate.
type allocMem struct {
	code [16]byte
}

func (m *allocMem) Translate(la uint64, acc Access) (uint64, error) { return la, nil }
func (m *allocMem) Read(gpa uint64, b []byte) error {
	if gpa == 0x1000 {
		copy(b, m.code[:])
		return nil
	}
	for i := range b {
		b[i] = 0x5a
	}
	return nil
}
func (m *allocMem) Write(gpa uint64, b []byte) error { return nil }

func TestEmulateAllocs(t *testing.T) {
	for _, c := range []struct {
		name string
		code []byte
	}{
		{"mov [rax],ecx", []byte{0x89, 0x08}},                               // mov [rax], ecx
		{"mov eax,[rbx+rcx*4+8]", []byte{0x8b, 0x44, 0x8b, 0x08}},           // mov eax, [rbx+rcx*4+8]
		{"mov dword [rax],imm", []byte{0xc7, 0x00, 0x78, 0x56, 0x34, 0x12}}, // mov dword [rax], 0x12345678
		{"rep stosd", []byte{0xf3, 0xab}},                                   // rep stosd
		{"add [rax],ecx", []byte{0x01, 0x08}},                               // add [rax], ecx
	} {
		m := &allocMem{}
		copy(m.code[:], c.code)
		s := &State{Mode: Mode64}
		run := func() {
			s.RIP = 0x1000
			s.GPR[RAX] = mm
			s.GPR[RCX] = 4
			s.GPR[RDI] = mm
			if _, err := Emulate(s, m); err != nil {
				t.Fatal(err)
			}
		}
		got := testing.AllocsPerRun(200, run)
		dec := testing.AllocsPerRun(200, func() { _, _ = x86asm.Decode(m.code[:15], 64) })
		t.Logf("%s: %.0f allocs per Emulate, of which x86asm.Decode %.0f", c.name, got, dec)
		if got > dec {
			t.Errorf("%s: Emulate allocates %.0f times beyond x86asm.Decode's %.0f", c.name, got-dec, dec)
		}
	}
}

func BenchmarkEmulateMovStore(b *testing.B) {
	m := &allocMem{}
	copy(m.code[:], []byte{0x89, 0x08}) // mov [rax], ecx
	s := &State{Mode: Mode64}
	b.ReportAllocs()
	for b.Loop() {
		s.RIP = 0x1000
		s.GPR[RAX] = mm
		if _, err := Emulate(s, m); err != nil {
			b.Fatal(err)
		}
	}
}
