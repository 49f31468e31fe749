package metal

import (
	"encoding/binary"

	"gohv/x86"
)

// The start-up code of an application processor (SDM Vol. 3A 9.4.4.1,
// 10.4.4): a SIPI starts it in real mode at CS:IP = vector<<8:0, that is
// at the page trampolinePA, which must lie below 1 MiB and, since the code
// keeps running there after paging is on, inside the kernel's identity map
// (at or above nullGuard). The code is position-independent: real mode
// reads the data below through DS = CS, and the 32- and 64-bit code
// through EBX = the page's address (CS << 4); the two mode-changing jumps
// are indirect, through far pointers in the data. StartCPUs writes the
// page: the code, then the data for the AP it is starting.
//
// real mode → protected mode (this page's GDT, CR0.PE) → CR4.PAE, CR3 = the
// kernel's page tables, EFER.LME (and NXE when the kernel's tables use
// NX), CR0.PG → 64-bit mode (the GDT's 64-bit code segment, which is the
// kernel's selector too) → RDI = the AP's cpu, jump to apEntry64.

// trampolineCode is the code, one instruction a line, as GNU as assembles
// the mnemonics beside it (.code16, .code32, .code64).
var trampolineCode = [...]byte{
	// .code16, at offset 0
	0xfa,       // cli
	0xfc,       // cld
	0x8c, 0xc8, // mov %cs, %ax
	0x8e, 0xd8, // mov %ax, %ds
	0x66, 0x31, 0xdb, // xor %ebx, %ebx
	0x8c, 0xcb, // mov %cs, %bx
	0x66, 0xc1, 0xe3, 0x04, // shl $4, %ebx           EBX = the page's address
	0x66, 0x0f, 0x01, 0x16, trampGDTR, 0x00, // lgdtl trampGDTR
	0x0f, 0x20, 0xc0, // mov %cr0, %eax
	0x66, 0x83, 0xc8, 0x01, // or $1, %eax            CR0.PE
	0x0f, 0x22, 0xc0, // mov %eax, %cr0
	0x66, 0xff, 0x2e, trampToPM32, 0x00, // ljmpl *trampToPM32 → offset trampPM32
	// .code32, at trampPM32
	0x66, 0xb8, selKernelData, 0x00, // mov $selKernelData, %ax
	0x8e, 0xd8, // mov %ax, %ds
	0x8e, 0xc0, // mov %ax, %es
	0x8e, 0xd0, // mov %ax, %ss
	0x0f, 0x20, 0xe0, // mov %cr4, %eax
	0x83, 0xc8, x86.CR4PAE, // or $CR4.PAE, %eax
	0x0f, 0x22, 0xe0, // mov %eax, %cr4
	0x8b, 0x83, trampCR3, 0x00, 0x00, 0x00, // mov trampCR3(%ebx), %eax
	0x0f, 0x22, 0xd8, // mov %eax, %cr3
	0xb9, 0x80, 0x00, 0x00, 0xc0, // mov $IA32_EFER, %ecx
	0x0f, 0x32, // rdmsr
	0x0b, 0x83, trampEFER, 0x00, 0x00, 0x00, // or trampEFER(%ebx), %eax
	0x0f, 0x30, // wrmsr
	0x0f, 0x20, 0xc0, // mov %cr0, %eax
	0x0d, 0x01, 0x00, 0x00, 0x80, // or $(CR0.PG|CR0.PE), %eax
	0x0f, 0x22, 0xc0, // mov %eax, %cr0
	0xff, 0xab, trampToLM64, 0x00, 0x00, 0x00, // ljmp *trampToLM64(%ebx) → offset trampLM64
	// .code64, at trampLM64
	0x89, 0xdb, // mov %ebx, %ebx               the upper half is undefined after the switch
	0x48, 0x8b, 0xbb, trampCPU, 0x00, 0x00, 0x00, // mov trampCPU(%rbx), %rdi
	0xff, 0xa3, trampEntry, 0x00, 0x00, 0x00, // jmp *trampEntry(%rbx)
}

// Offsets in the trampoline page: the two code entry points the far
// pointers name, and the data after the code.
const (
	trampPM32 = 0x24
	trampLM64 = 0x60

	trampGDT    = 0x80 // null, 64-bit code (selKernelCode), data (selKernelData), 32-bit code (trampSelCode32)
	trampGDTR   = 0xa0 // limit u16, base u32
	trampToPM32 = 0xa8 // far pointer m16:32: offset u32, selector u16
	trampToLM64 = 0xb0 // likewise
	trampCR3    = 0xb8 // u32: the kernel's PML4, below 4 GiB
	trampEFER   = 0xbc // u32: EFER bits to set (LME, NXE)
	trampEntry  = 0xc0 // u64: apEntry64
	trampCPU    = 0xc8 // u64: the AP's cpu
	trampSize   = 0xd0

	trampSelCode32 = 3 << x86.SelectorIndexShift
)

// trampolineData is what one AP's start needs to find.
type trampolineData struct {
	page  uint32 // the page's physical address (identity-mapped)
	cr3   uint32
	efer  uint32
	entry uint64
	cpu   uint64
}

// writeTrampoline fills the trampoline page p (at physical address d.page)
// with the code and d. Pure but for p.
func writeTrampoline(p []byte, d trampolineData) {
	clear(p[:trampSize])
	copy(p, trampolineCode[:])
	le := binary.LittleEndian
	le.PutUint64(p[trampGDT+8*gdtKernelCode:], x86.DescriptorFlatCode64)
	le.PutUint64(p[trampGDT+8*gdtKernelData:], x86.DescriptorFlatData)
	le.PutUint64(p[trampGDT+8*3:], x86.DescriptorFlatCode32)
	le.PutUint16(p[trampGDTR:], 4*8-1)
	le.PutUint32(p[trampGDTR+2:], d.page+trampGDT)
	le.PutUint32(p[trampToPM32:], d.page+trampPM32)
	le.PutUint16(p[trampToPM32+4:], trampSelCode32)
	le.PutUint32(p[trampToLM64:], d.page+trampLM64)
	le.PutUint16(p[trampToLM64+4:], selKernelCode)
	le.PutUint32(p[trampCR3:], d.cr3)
	le.PutUint32(p[trampEFER:], d.efer)
	le.PutUint64(p[trampEntry:], d.entry)
	le.PutUint64(p[trampCPU:], d.cpu)
}
