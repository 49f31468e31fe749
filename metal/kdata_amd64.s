// Addresses of metal's assembly symbols, for Go code that installs them
// (IDT gates, IA32_LSTAR, the idle thread, the runtime's entry point).

#include "textflag.h"

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

// func apEntry64Addr() uintptr
TEXT ·apEntry64Addr(SB),NOSPLIT,$0-8
	MOVQ $·apEntry64(SB), AX
	MOVQ AX, ret+0(FP)
	RET
