#include "textflag.h"

// func CPUID(leaf, sub uint32) (eax, ebx, ecx, edx uint32)
TEXT ·CPUID(SB), NOSPLIT, $0-24
	MOVL leaf+0(FP), AX
	MOVL sub+4(FP), CX
	CPUID
	MOVL AX, eax+8(FP)
	MOVL BX, ebx+12(FP)
	MOVL CX, ecx+16(FP)
	MOVL DX, edx+20(FP)
	RET

// func RDMSR(msr uint32) uint64
TEXT ·RDMSR(SB), NOSPLIT, $0-16
	MOVL msr+0(FP), CX
	RDMSR
	SHLQ $32, DX
	ORQ DX, AX
	MOVQ AX, ret+8(FP)
	RET

// func WRMSR(msr uint32, v uint64)
TEXT ·WRMSR(SB), NOSPLIT, $0-16
	MOVL msr+0(FP), CX
	MOVQ v+8(FP), AX
	MOVQ AX, DX
	SHRQ $32, DX
	WRMSR
	RET

// func ReadCR0() uint64
TEXT ·ReadCR0(SB), NOSPLIT, $0-8
	MOVQ CR0, AX
	MOVQ AX, ret+0(FP)
	RET

// func WriteCR0(v uint64)
TEXT ·WriteCR0(SB), NOSPLIT, $0-8
	MOVQ v+0(FP), AX
	MOVQ AX, CR0
	RET

// func ReadCR3() uint64
TEXT ·ReadCR3(SB), NOSPLIT, $0-8
	MOVQ CR3, AX
	MOVQ AX, ret+0(FP)
	RET

// func ReadCR4() uint64
TEXT ·ReadCR4(SB), NOSPLIT, $0-8
	MOVQ CR4, AX
	MOVQ AX, ret+0(FP)
	RET

// func WriteCR4(v uint64)
TEXT ·WriteCR4(SB), NOSPLIT, $0-8
	MOVQ v+0(FP), AX
	MOVQ AX, CR4
	RET

// func Selectors() (cs, ss, ds, es, fs, gs, tr uint16)
TEXT ·Selectors(SB), NOSPLIT, $0-14
	MOVW CS, AX
	MOVW AX, cs+0(FP)
	MOVW SS, AX
	MOVW AX, ss+2(FP)
	MOVW DS, AX
	MOVW AX, ds+4(FP)
	MOVW ES, AX
	MOVW AX, es+6(FP)
	MOVW FS, AX
	MOVW AX, fs+8(FP)
	MOVW GS, AX
	MOVW AX, gs+10(FP)
	BYTE $0x0F; BYTE $0x00; BYTE $0xC8 // STR EAX
	MOVW AX, tr+12(FP)
	RET

// func DescTables(gdt, idt *[10]byte)
TEXT ·DescTables(SB), NOSPLIT, $0-16
	MOVQ gdt+0(FP), AX
	SGDT (AX)
	MOVQ idt+8(FP), AX
	SIDT (AX)
	RET

// func CLI() uint64 (the previous RFLAGS)
TEXT ·CLI(SB), NOSPLIT, $0-8
	PUSHFQ
	POPQ AX
	MOVQ AX, ret+0(FP)
	CLI
	RET

// func RestoreFlags(f uint64)
TEXT ·RestoreFlags(SB), NOSPLIT, $0-8
	MOVQ f+0(FP), AX
	PUSHQ AX
	POPFQ
	RET

