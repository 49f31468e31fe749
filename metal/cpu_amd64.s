// Privileged instructions for the kernel's Go code. Each is a leaf that
// neither allocates nor touches the goroutine descriptor.

#include "textflag.h"

// func rdtsc() uint64
TEXT ·rdtsc(SB),NOSPLIT,$0-8
	RDTSC
	SHLQ $32, DX
	ORQ DX, AX
	MOVQ AX, ret+0(FP)
	RET

// func rdrand() (v uint64, ok bool)
TEXT ·rdrand(SB),NOSPLIT,$0-9
	MOVL $10, CX
retry:
	BYTE $0x48; BYTE $0x0f; BYTE $0xc7; BYTE $0xf0 // rdrand rax
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

// func inb(port uint16) uint8
TEXT ·inb(SB),NOSPLIT,$0-9
	MOVW port+0(FP), DX
	BYTE $0xec // in al, dx
	MOVB AL, ret+8(FP)
	RET

// func outb(port uint16, val uint8)
TEXT ·outb(SB),NOSPLIT,$0-3
	MOVW port+0(FP), DX
	MOVB val+2(FP), AL
	BYTE $0xee // out dx, al
	RET

// func outw(port uint16, val uint16)
TEXT ·outw(SB),NOSPLIT,$0-4
	MOVW port+0(FP), DX
	MOVW val+2(FP), AX
	BYTE $0x66; BYTE $0xef // out dx, ax
	RET

// func outl(port uint16, val uint32)
TEXT ·outl(SB),NOSPLIT,$0-8
	MOVW port+0(FP), DX
	MOVL val+4(FP), AX
	BYTE $0xef // out dx, eax
	RET

// func inl(port uint16) uint32
TEXT ·inl(SB),NOSPLIT,$0-12
	MOVW port+0(FP), DX
	BYTE $0xed // in eax, dx
	MOVL AX, ret+8(FP)
	RET

// func lgdt(desc uintptr)
TEXT ·lgdt(SB),NOSPLIT,$0-8
	MOVQ desc+0(FP), AX
	LGDT (AX)
	RET

// func lidt(desc uintptr)
TEXT ·lidt(SB),NOSPLIT,$0-8
	MOVQ desc+0(FP), AX
	LIDT (AX)
	RET

// func ltr(sel uint16)
TEXT ·ltr(SB),NOSPLIT,$0-2
	MOVW sel+0(FP), AX
	LTR AX
	RET

// func readCR2() uint64
TEXT ·readCR2(SB),NOSPLIT,$0-8
	MOVQ CR2, AX
	MOVQ AX, ret+0(FP)
	RET

// func writeCR3(v uint64)
TEXT ·writeCR3(SB),NOSPLIT,$0-8
	MOVQ v+0(FP), AX
	MOVQ AX, CR3
	RET

// func invlpg(va uintptr)
TEXT ·invlpg(SB),NOSPLIT,$0-8
	MOVQ va+0(FP), AX
	INVLPG (AX)
	RET

// func fxsave(area uintptr)
TEXT ·fxsave(SB),NOSPLIT,$0-8
	MOVQ area+0(FP), AX
	FXSAVE64 (AX)
	RET

// func ldmxcsr(v uint32)
TEXT ·ldmxcsr(SB),NOSPLIT,$0-4
	LDMXCSR v+0(FP)
	RET

// func halt()  — stop this CPU for good.
TEXT ·halt(SB),NOSPLIT,$0-0
	CLI
again:
	HLT
	JMP again

// func interruptsEnabled() bool
TEXT ·interruptsEnabled(SB),NOSPLIT,$0-1
	PUSHFQ
	POPQ AX
	SHRQ $9, AX
	ANDQ $1, AX
	MOVB AX, ret+0(FP)
	RET

// func rawSyscall6(num, a1, a2, a3, a4, a5, a6 uintptr) (ret uintptr)
// Issues SYSCALL from ring 0 with Linux register conventions (used by the
// self-checks to reach numbers the syscall package has no wrapper for).
TEXT ·rawSyscall6(SB),NOSPLIT,$0-64
	MOVQ num+0(FP), AX
	MOVQ a1+8(FP), DI
	MOVQ a2+16(FP), SI
	MOVQ a3+24(FP), DX
	MOVQ a4+32(FP), R10
	MOVQ a5+40(FP), R8
	MOVQ a6+48(FP), R9
	SYSCALL
	MOVQ AX, ret+56(FP)
	RET
