// Statically initialised kernel data that must be valid before any Go
// initialisation code runs (addresses of other symbols).

#include "textflag.h"
#include "go_asm.h"

// kernG is the goroutine descriptor seen by kernel Go code: only the stack
// bounds (runtime.g.stack and the two stack guards) are ever read, by
// function prologues. The kernel stack is ·kstack.
DATA ·kernG+0(SB)/8, $·kstack(SB)
DATA ·kernG+8(SB)/8, $·kstack+const_kstackSize(SB)
DATA ·kernG+16(SB)/8, $·kstack+const_kstackGuard(SB)
DATA ·kernG+24(SB)/8, $·kstack+const_kstackGuard(SB)
GLOBL ·kernG(SB), NOPTR, $256

// kernTLS is the kernel's thread-local block: FS base = &kernTLS+8, so the
// runtime's g slot at -8(FS) is kernTLS[0] = &kernG.
DATA ·kernTLS+0(SB)/8, $·kernG(SB)
GLOBL ·kernTLS(SB), NOPTR, $16

// func vectorAddr(i int) uintptr
TEXT ·vectorAddr(SB),NOSPLIT,$0-16
	MOVQ i+0(FP), CX
	LEAQ ·vectorTable(SB), AX
	MOVQ (AX)(CX*8), AX
	MOVQ AX, ret+8(FP)
	RET

// func rt0Entry() uintptr — the Go runtime's Linux entry point.
TEXT ·rt0Entry(SB),NOSPLIT,$0-8
	MOVQ $_rt0_amd64_linux(SB), AX
	MOVQ AX, ret+0(FP)
	RET

// func idleLoopAddr() uintptr
TEXT ·idleLoopAddr(SB),NOSPLIT,$0-8
	MOVQ $·idleLoop(SB), AX
	MOVQ AX, ret+0(FP)
	RET

// func syscallEntryAddr() uintptr
TEXT ·syscallEntryAddr(SB),NOSPLIT,$0-8
	MOVQ $·syscallEntry(SB), AX
	MOVQ AX, ret+0(FP)
	RET

// func bootSymbols() (boot32, entry64 uintptr)
// Also what keeps the boot path reachable for the linker.
TEXT ·bootSymbols(SB),NOSPLIT,$0-16
	MOVQ $·boot32(SB), AX
	MOVQ AX, boot32+0(FP)
	MOVQ $·entry64(SB), AX
	MOVQ AX, entry64+8(FP)
	RET
