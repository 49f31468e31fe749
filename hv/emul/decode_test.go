package emul

import (
	"testing"

	"gohv/x86"
)

// decodeCases are instructions the emulator refuses by name or as bad bytes.
var decodeCases = []emuCase{
	// ---- unsupported ----
	{name: "ud2", code: []byte{0x0f, 0x0b}, // ud2
		wantErr: isUnsupported(`emul: unsupported instruction "ud2" at rip 0x1000`)},
	{name: "movsd xmm", code: []byte{0xf2, 0x0f, 0x10, 0x00}, // movsd xmm0, qword [rax]
		regs: map[int]uint64{x86.RAX: mm}, wantErr: isUnsupported(`"movsd xmm0, qword ptr [rax]"`)},
	{name: "mov cr0", code: []byte{0x0f, 0x22, 0xc0}, // mov cr0, rax
		wantErr: isUnsupported(`"mov cr0, rax"`)},
	{name: "mov ds,ax", code: []byte{0x8e, 0xd8}, // mov ds, ax
		wantErr: isUnsupported(`"mov ds, ax"`)},
	{name: "all prefixes", code: []byte{0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66},
		wantErr: isUnsupported(`"(bad) 66 66`)},
	{name: "cmpsb", code: []byte{0xa6}, // cmpsb
		wantErr: isUnsupported(`cmpsb`)},
	{name: "ins needs StringIO", code: []byte{0xf3, 0x6c}, // rep insb
		wantErr: isUnsupported(`rep insb`)},
}

// TestEmulateUnsupported runs the refused-instruction cases.
func TestEmulateUnsupported(t *testing.T) {
	for _, tc := range decodeCases {
		t.Run(tc.name, func(t *testing.T) { runCase(t, tc) })
	}
}
