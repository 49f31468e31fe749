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


// func RDTSC() uint64
TEXT ·RDTSC(SB), NOSPLIT, $0-8
	RDTSC
	SHLQ $32, DX
	ORQ DX, AX
	MOVQ AX, ret+0(FP)
	RET

// func RDRAND() (v uint64, ok bool)
TEXT ·RDRAND(SB), NOSPLIT, $0-9
	MOVL $10, CX
retry:
	BYTE $0x48; BYTE $0x0f; BYTE $0xc7; BYTE $0xf0 // RDRAND RAX
	JCS ok
	DECL CX
	JNZ retry
	MOVQ $0, v+0(FP)
	MOVB $0, ok+8(FP)
	RET
ok:
	MOVQ AX, v+0(FP)
	MOVB $1, ok+8(FP)
	RET

// func INB(port uint16) uint8
TEXT ·INB(SB), NOSPLIT, $0-9
	MOVW port+0(FP), DX
	BYTE $0xec // IN AL, DX
	MOVB AL, ret+8(FP)
	RET

// func INL(port uint16) uint32
TEXT ·INL(SB), NOSPLIT, $0-12
	MOVW port+0(FP), DX
	BYTE $0xed // IN EAX, DX
	MOVL AX, ret+8(FP)
	RET

// func OUTB(port uint16, v uint8)
TEXT ·OUTB(SB), NOSPLIT, $0-3
	MOVW port+0(FP), DX
	MOVB v+2(FP), AL
	BYTE $0xee // OUT DX, AL
	RET

// func OUTW(port uint16, v uint16)
TEXT ·OUTW(SB), NOSPLIT, $0-4
	MOVW port+0(FP), DX
	MOVW v+2(FP), AX
	BYTE $0x66; BYTE $0xef // OUT DX, AX
	RET

// func OUTL(port uint16, v uint32)
TEXT ·OUTL(SB), NOSPLIT, $0-8
	MOVW port+0(FP), DX
	MOVL v+4(FP), AX
	BYTE $0xef // OUT DX, EAX
	RET

// func LGDT(gdtr *[10]byte)
TEXT ·LGDT(SB), NOSPLIT, $0-8
	MOVQ gdtr+0(FP), AX
	LGDT (AX)
	RET

// func LIDT(idtr *[10]byte)
TEXT ·LIDT(SB), NOSPLIT, $0-8
	MOVQ idtr+0(FP), AX
	LIDT (AX)
	RET

// func LTR(sel uint16)
TEXT ·LTR(SB), NOSPLIT, $0-2
	MOVW sel+0(FP), AX
	LTR AX
	RET

// func ReadCR2() uint64
TEXT ·ReadCR2(SB), NOSPLIT, $0-8
	MOVQ CR2, AX
	MOVQ AX, ret+0(FP)
	RET

// func WriteCR3(v uint64)
TEXT ·WriteCR3(SB), NOSPLIT, $0-8
	MOVQ v+0(FP), AX
	MOVQ AX, CR3
	RET

// func INVLPG(va uintptr)
TEXT ·INVLPG(SB), NOSPLIT, $0-8
	MOVQ va+0(FP), AX
	INVLPG (AX)
	RET

// func FXSAVE(area *[FXSaveAreaSize]byte)
TEXT ·FXSAVE(SB), NOSPLIT, $0-8
	MOVQ area+0(FP), AX
	FXSAVE64 (AX)
	RET

// func LDMXCSR(v uint32)
TEXT ·LDMXCSR(SB), NOSPLIT, $0-4
	LDMXCSR v+0(FP)
	RET

// func Halt()
TEXT ·Halt(SB), NOSPLIT, $0-0
	CLI
again:
	HLT
	JMP again

// func InterruptsEnabled() bool
TEXT ·InterruptsEnabled(SB), NOSPLIT, $0-1
	PUSHFQ
	POPQ AX
	SHRQ $9, AX // RFLAGS.IF
	ANDQ $1, AX
	MOVB AX, ret+0(FP)
	RET

// func CLFLUSH(va uintptr)
TEXT ·CLFLUSH(SB), NOSPLIT, $0-8
	MOVQ va+0(FP), AX
	CLFLUSH (AX)
	RET

// func MFENCE()
TEXT ·MFENCE(SB), NOSPLIT, $0-0
	MFENCE
	RET

// func Pause()
TEXT ·Pause(SB), NOSPLIT, $0-0
	PAUSE
	RET
