package emul

import (
	"testing"

	"gohv/x86"
)

// moveCases are the data moves: MOV in every form, MOVZX/MOVSX/MOVSXD, XCHG.
var moveCases = []emuCase{
	// ---- MOV stores ----
	{name: "mov [rax],ecx", code: []byte{0x89, 0x08}, // mov dword [rax], ecx
		regs:    map[int]uint64{x86.RAX: mm, x86.RCX: 0xaaaaaaaa11223344},
		wantLog: []mmioAccess{wr(4, mm, 0x11223344)}},
	{name: "mov [rax],rcx", code: []byte{0x48, 0x89, 0x08}, // mov qword [rax], rcx
		regs:    map[int]uint64{x86.RAX: mm, x86.RCX: 0xaaaaaaaa11223344},
		wantLog: []mmioAccess{wr(8, mm, 0xaaaaaaaa11223344)}},
	{name: "mov [rax],cx", code: []byte{0x66, 0x89, 0x08}, // mov word [rax], cx
		regs:    map[int]uint64{x86.RAX: mm, x86.RCX: 0xaaaaaaaa11223344},
		wantLog: []mmioAccess{wr(2, mm, 0x3344)}},
	{name: "mov [rax],cl", code: []byte{0x88, 0x08}, // mov byte [rax], cl
		regs:    map[int]uint64{x86.RAX: mm, x86.RCX: 0xaaaaaaaa11223344},
		wantLog: []mmioAccess{wr(1, mm, 0x44)}},
	{name: "mov [rbx],ah", code: []byte{0x88, 0x23}, // mov byte [rbx], ah
		regs:    map[int]uint64{x86.RAX: 0x1234, x86.RBX: mm + 1},
		wantLog: []mmioAccess{wr(1, mm+1, 0x12)}},
	{name: "mov [rbx],spl", code: []byte{0x40, 0x88, 0x23}, // mov byte [rbx], spl
		regs:    map[int]uint64{x86.RSP: 0x5577, x86.RBX: mm},
		wantLog: []mmioAccess{wr(1, mm, 0x77)}},
	{name: "mov [rbx],r9w", code: []byte{0x66, 0x44, 0x89, 0x0b}, // mov word [rbx], r9w
		regs:    map[int]uint64{x86.R9: 0xfedcba98, x86.RBX: mm},
		wantLog: []mmioAccess{wr(2, mm, 0xba98)}},
	{name: "mov [r12+rbx*8-8],r15", code: []byte{0x4d, 0x89, 0x7c, 0xdc, 0xf8}, // mov qword [r12+rbx*8-8], r15
		regs:    map[int]uint64{x86.R12: mm, x86.RBX: 3, x86.R15: 0x0102030405060708},
		wantLog: []mmioAccess{wr(8, mm+16, 0x0102030405060708)}},
	{name: "mov reg,reg zero-extends", code: []byte{0x89, 0xc8}, // mov eax, ecx
		regs:     map[int]uint64{x86.RAX: ones, x86.RCX: 0xffffffff87654321},
		wantRegs: map[int]uint64{x86.RAX: 0x87654321}},
	{name: "mov r8,imm64", code: []byte{0x49, 0xb8, 8, 7, 6, 5, 4, 3, 2, 1}, // mov r8, 0x0102030405060708
		wantRegs: map[int]uint64{x86.R8: 0x0102030405060708}},

	// ---- MOV loads ----
	{name: "mov eax,[rbx]", code: []byte{0x8b, 0x03}, // mov eax, dword [rbx]
		regs: map[int]uint64{x86.RAX: ones, x86.RBX: mm + 4}, mmio: map[uint64]uint64{mm + 4: 0xdeadbeef},
		wantLog:  []mmioAccess{rd(4, mm+4, 0xdeadbeef)},
		wantRegs: map[int]uint64{x86.RAX: 0xdeadbeef}},
	{name: "mov ax,[rbx]", code: []byte{0x66, 0x8b, 0x03}, // mov ax, word [rbx]
		regs: map[int]uint64{x86.RAX: ones, x86.RBX: mm}, mmio: map[uint64]uint64{mm: 0xbeef},
		wantLog:  []mmioAccess{rd(2, mm, 0xbeef)},
		wantRegs: map[int]uint64{x86.RAX: 0xffffffffffffbeef}},
	{name: "mov ah,[rbx]", code: []byte{0x8a, 0x23}, // mov ah, byte [rbx]
		regs: map[int]uint64{x86.RAX: 0x1111, x86.RBX: mm}, mmio: map[uint64]uint64{mm: 0x99},
		wantLog:  []mmioAccess{rd(1, mm, 0x99)},
		wantRegs: map[int]uint64{x86.RAX: 0x9911}},
	{name: "mov dh,[rbx]", code: []byte{0x8a, 0x33}, // mov dh, byte [rbx]
		regs: map[int]uint64{x86.RDX: 0x1234, x86.RBX: mm}, mmio: map[uint64]uint64{mm: 0x99},
		wantLog:  []mmioAccess{rd(1, mm, 0x99)},
		wantRegs: map[int]uint64{x86.RDX: 0x9934}},
	{name: "mov sil,[rbx]", code: []byte{0x40, 0x8a, 0x33}, // mov sil, byte [rbx]
		regs: map[int]uint64{x86.RSI: 0x1234, x86.RBX: mm}, mmio: map[uint64]uint64{mm: 0x99},
		wantLog:  []mmioAccess{rd(1, mm, 0x99)},
		wantRegs: map[int]uint64{x86.RSI: 0x1299}},
	{name: "mov r10b,[rbx]", code: []byte{0x44, 0x8a, 0x13}, // mov r10b, byte [rbx]
		regs:     map[int]uint64{x86.R10: 0xffff, x86.RBX: mm},
		wantLog:  []mmioAccess{rd(1, mm, 0x11)},
		wantRegs: map[int]uint64{x86.R10: 0xff11}},
	{name: "mov rax,[rbx]", code: []byte{0x48, 0x8b, 0x03}, // mov rax, qword [rbx]
		regs:     map[int]uint64{x86.RBX: mm},
		wantLog:  []mmioAccess{rd(8, mm, 0x8877665544332211)},
		wantRegs: map[int]uint64{x86.RAX: 0x8877665544332211}},

	// ---- MOV immediate ----
	{name: "mov byte [rbx],imm", code: []byte{0xc6, 0x03, 0x5a}, // mov byte [rbx], 0x5a
		regs: map[int]uint64{x86.RBX: mm}, wantLog: []mmioAccess{wr(1, mm, 0x5a)}},
	{name: "mov word [rbx],imm", code: []byte{0x66, 0xc7, 0x03, 0x34, 0x12}, // mov word [rbx], 0x1234
		regs: map[int]uint64{x86.RBX: mm}, wantLog: []mmioAccess{wr(2, mm, 0x1234)}},
	{name: "mov dword [rbx],imm", code: []byte{0xc7, 0x03, 0x78, 0x56, 0x34, 0x12}, // mov dword [rbx], 0x12345678
		regs: map[int]uint64{x86.RBX: mm}, wantLog: []mmioAccess{wr(4, mm, 0x12345678)}},
	{name: "mov qword [rbx],simm32", code: []byte{0x48, 0xc7, 0x03, 0xf0, 0xff, 0xff, 0xff}, // mov qword [rbx], -16
		regs: map[int]uint64{x86.RBX: mm}, wantLog: []mmioAccess{wr(8, mm, 0xfffffffffffffff0)}},
	{name: "mov dword [rbx+disp32],imm", code: []byte{0xc7, 0x83, 0x00, 0x01, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00}, // mov dword [rbx+0x100], 1
		regs: map[int]uint64{x86.RBX: mm}, wantLog: []mmioAccess{wr(4, mm+0x100, 1)}},

	// ---- moffs ----
	{name: "mov eax,[moffs64]", code: []byte{0xa1, 0x20, 0x00, 0x00, 0xd0, 0, 0, 0, 0}, // mov eax, [0xd0000020]
		regs: map[int]uint64{x86.RAX: ones}, mmio: map[uint64]uint64{mm + 0x20: 0xcafe},
		wantLog: []mmioAccess{rd(4, mm+0x20, 0xcafe)}, wantRegs: map[int]uint64{x86.RAX: 0xcafe}},
	{name: "mov al,[moffs64]", code: []byte{0xa0, 0x21, 0x00, 0x00, 0xd0, 0, 0, 0, 0}, // mov al, [0xd0000021]
		regs: map[int]uint64{x86.RAX: ones}, mmio: map[uint64]uint64{mm + 0x21: 0x5},
		wantLog: []mmioAccess{rd(1, mm+0x21, 5)}, wantRegs: map[int]uint64{x86.RAX: 0xffffffffffffff05}},
	{name: "mov [moffs64],rax", code: []byte{0x48, 0xa3, 0x28, 0x00, 0x00, 0xd0, 0, 0, 0, 0}, // mov [0xd0000028], rax
		regs: map[int]uint64{x86.RAX: 0x1122334455667788}, wantLog: []mmioAccess{wr(8, mm+0x28, 0x1122334455667788)}},
	{name: "mov [moffs64],ax", code: []byte{0x66, 0xa3, 0x30, 0x00, 0x00, 0xd0, 0, 0, 0, 0}, // mov [0xd0000030], ax
		regs: map[int]uint64{x86.RAX: 0x1122334455667788}, wantLog: []mmioAccess{wr(2, mm+0x30, 0x7788)}},
	{name: "mov [moffs64],al", code: []byte{0xa2, 0x31, 0x00, 0x00, 0xd0, 0, 0, 0, 0}, // mov [0xd0000031], al
		regs: map[int]uint64{x86.RAX: 0x1122334455667788}, wantLog: []mmioAccess{wr(1, mm+0x31, 0x88)}},
	{name: "mov eax,[moffs32] mode32", mode: Mode32, code: []byte{0xa1, 0x40, 0x00, 0x00, 0xd0}, // mov eax, [0xd0000040]
		wantLog: []mmioAccess{rd(4, mm+0x40, 0x44332211)}, wantRegs: map[int]uint64{x86.RAX: 0x44332211}},
	{name: "mov al,[addr32 moffs]", code: []byte{0x67, 0xa0, 0x44, 0x00, 0x00, 0xd0}, // mov al, [dword 0xd0000044]
		wantLog: []mmioAccess{rd(1, mm+0x44, 0x11)}, wantRegs: map[int]uint64{x86.RAX: 0x11}},
	{name: "mov eax,fs:[moffs64]", code: []byte{0x64, 0xa1, 0x10, 0, 0, 0, 0, 0, 0, 0}, // mov eax, fs:[0x10]
		segs:    map[Seg]uint64{SegFS: mm},
		wantLog: []mmioAccess{rd(4, mm+0x10, 0x44332211)}, wantRegs: map[int]uint64{x86.RAX: 0x44332211}},

	// ---- MOVZX / MOVSX / MOVSXD ----
	{name: "movzx eax,byte [rbx]", code: []byte{0x0f, 0xb6, 0x03}, // movzx eax, byte [rbx]
		regs: map[int]uint64{x86.RAX: ones, x86.RBX: mm}, mmio: map[uint64]uint64{mm: 0x80},
		wantLog: []mmioAccess{rd(1, mm, 0x80)}, wantRegs: map[int]uint64{x86.RAX: 0x80}},
	{name: "movzx rax,word [rbx]", code: []byte{0x48, 0x0f, 0xb7, 0x03}, // movzx rax, word [rbx]
		regs: map[int]uint64{x86.RAX: ones, x86.RBX: mm}, mmio: map[uint64]uint64{mm: 0x8001},
		wantLog: []mmioAccess{rd(2, mm, 0x8001)}, wantRegs: map[int]uint64{x86.RAX: 0x8001}},
	{name: "movzx ax,byte [rbx]", code: []byte{0x66, 0x0f, 0xb6, 0x03}, // movzx ax, byte [rbx]
		regs: map[int]uint64{x86.RAX: ones, x86.RBX: mm}, mmio: map[uint64]uint64{mm: 0x80},
		wantLog: []mmioAccess{rd(1, mm, 0x80)}, wantRegs: map[int]uint64{x86.RAX: 0xffffffffffff0080}},
	{name: "movsx rax,byte [rbx]", code: []byte{0x48, 0x0f, 0xbe, 0x03}, // movsx rax, byte [rbx]
		regs: map[int]uint64{x86.RBX: mm}, mmio: map[uint64]uint64{mm: 0x80},
		wantLog: []mmioAccess{rd(1, mm, 0x80)}, wantRegs: map[int]uint64{x86.RAX: 0xffffffffffffff80}},
	{name: "movsx eax,word [rbx]", code: []byte{0x0f, 0xbf, 0x03}, // movsx eax, word [rbx]
		regs: map[int]uint64{x86.RAX: ones, x86.RBX: mm}, mmio: map[uint64]uint64{mm: 0x8000},
		wantLog: []mmioAccess{rd(2, mm, 0x8000)}, wantRegs: map[int]uint64{x86.RAX: 0xffff8000}},
	{name: "movsx ax,byte [rbx]", code: []byte{0x66, 0x0f, 0xbe, 0x03}, // movsx ax, byte [rbx]
		regs: map[int]uint64{x86.RAX: 0x12340000, x86.RBX: mm}, mmio: map[uint64]uint64{mm: 0xff},
		wantLog: []mmioAccess{rd(1, mm, 0xff)}, wantRegs: map[int]uint64{x86.RAX: 0x1234ffff}},
	{name: "movsxd rax,dword [rbx]", code: []byte{0x48, 0x63, 0x03}, // movsxd rax, dword [rbx]
		regs: map[int]uint64{x86.RBX: mm}, mmio: map[uint64]uint64{mm: 0x80000000},
		wantLog: []mmioAccess{rd(4, mm, 0x80000000)}, wantRegs: map[int]uint64{x86.RAX: 0xffffffff80000000}},
	{name: "movzx ecx,ah", code: []byte{0x0f, 0xb6, 0xcc}, // movzx ecx, ah
		regs: map[int]uint64{x86.RAX: 0xab00, x86.RCX: ones}, wantRegs: map[int]uint64{x86.RCX: 0xab}},
	{name: "xchg [rax],ecx", code: []byte{0x87, 0x08}, // xchg dword [rax], ecx
		regs: map[int]uint64{x86.RAX: mm, x86.RCX: 0xffffffff22222222}, mmio: map[uint64]uint64{mm: 0x11111111},
		wantLog:  []mmioAccess{rd(4, mm, 0x11111111), wr(4, mm, 0x22222222)},
		wantRegs: map[int]uint64{x86.RCX: 0x11111111}},
	{name: "xchg [rbx],al", code: []byte{0x86, 0x03}, // xchg byte [rbx], al
		regs: map[int]uint64{x86.RAX: 0x1234, x86.RBX: mm}, mmio: map[uint64]uint64{mm: 0x99},
		wantLog:  []mmioAccess{rd(1, mm, 0x99), wr(1, mm, 0x34)},
		wantRegs: map[int]uint64{x86.RAX: 0x1299}},

	{name: "xchg ecx,eax", code: []byte{0x91}, // xchg ecx, eax
		regs:     map[int]uint64{x86.RAX: 0xffffffff00000001, x86.RCX: 0xffffffff00000002},
		wantRegs: map[int]uint64{x86.RAX: 2, x86.RCX: 1}},
}

// TestEmulateMove runs the data-move cases.
func TestEmulateMove(t *testing.T) {
	for _, tc := range moveCases {
		t.Run(tc.name, func(t *testing.T) { runCase(t, tc) })
	}
}
