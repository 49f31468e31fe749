// Trap entry and exit: exceptions, interrupts and the SYSCALL instruction.
//
// Every entry from a thread builds one TrapFrame at the top of this CPU's
// kernel stack (IST1 and the SYSCALL path both start at cpu.kstackTop), saves
// the FPU/SSE state with FXSAVE and the thread's FS base, switches FS to the
// kernel TLS and calls ·trap. ·trap may replace the frame, FPU image and FS
// base with another thread's; trapReturn then restores whatever is there and
// IRETQs.
//
// This CPU's state is its cpu (cpu.go), which GS base points at: the paths
// below address its fields as const_cpuOff...(GS), offsets that
// cpu_unsafe.go and TestCPUOffsetsMatchTheAssembly pin to the struct.

#include "textflag.h"
#include "go_asm.h"

// Exceptions without an error code push a zero so every frame looks alike.
#define TRAP(name, vec) TEXT name(SB),NOSPLIT|NOFRAME,$0; PUSHQ $0; PUSHQ $vec; JMP trapCommon<>(SB)
#define TRAPERR(name, vec) TEXT name(SB),NOSPLIT|NOFRAME,$0; PUSHQ $vec; JMP trapCommon<>(SB)

TRAP(·vec0, 0)
TRAP(·vec1, 1)
TRAP(·vec2, 2)
TRAP(·vec3, 3)
TRAP(·vec4, 4)
TRAP(·vec5, 5)
TRAP(·vec6, 6)
TRAP(·vec7, 7)
TRAPERR(·vec8, 8)
TRAP(·vec9, 9)
TRAPERR(·vec10, 10)
TRAPERR(·vec11, 11)
TRAPERR(·vec12, 12)
TRAPERR(·vec13, 13)
TRAPERR(·vec14, 14)
TRAP(·vec15, 15)
TRAP(·vec16, 16)
TRAPERR(·vec17, 17)
TRAP(·vec18, 18)
TRAP(·vec19, 19)
TRAP(·vec20, 20)
TRAPERR(·vec21, 21)
TRAP(·vec22, 22)
TRAP(·vec23, 23)
TRAP(·vec24, 24)
TRAP(·vec25, 25)
TRAP(·vec26, 26)
TRAP(·vec27, 27)
TRAP(·vec28, 28)
TRAPERR(·vec29, 29)
TRAPERR(·vec30, 30)
TRAP(·vec31, 31)
TRAP(·vec32, 32)
TRAP(·vec33, 33)
TRAP(·vec34, 34)
TRAP(·vec35, 35)
TRAP(·vec36, 36)
TRAP(·vec37, 37)
TRAP(·vec38, 38)
TRAP(·vec39, 39)
TRAP(·vec40, 40)
TRAP(·vec41, 41)
TRAP(·vec42, 42)
TRAP(·vec43, 43)
TRAP(·vec44, 44)
TRAP(·vec45, 45)
TRAP(·vec46, 46)
TRAP(·vec47, 47)
TRAP(·vec48, 48)
TRAP(·vec49, 49)
TRAP(·vec50, 50)
TRAP(·vec51, 51)
TRAP(·vec52, 52)
TRAP(·vec53, 53)
TRAP(·vec54, 54)
TRAP(·vec55, 55)
TRAP(·vec56, 56)
TRAP(·vec57, 57)
TRAP(·vec58, 58)
TRAP(·vec59, 59)
TRAP(·vec60, 60)
TRAP(·vec61, 61)
TRAP(·vec62, 62)
TRAP(·vec63, 63)
TRAP(·vec255, 255)

// vectorTable holds the entry address of each stub, indexed as in vectorNumbers.
DATA ·vectorTable+0(SB)/8, $·vec0(SB)
DATA ·vectorTable+8(SB)/8, $·vec1(SB)
DATA ·vectorTable+16(SB)/8, $·vec2(SB)
DATA ·vectorTable+24(SB)/8, $·vec3(SB)
DATA ·vectorTable+32(SB)/8, $·vec4(SB)
DATA ·vectorTable+40(SB)/8, $·vec5(SB)
DATA ·vectorTable+48(SB)/8, $·vec6(SB)
DATA ·vectorTable+56(SB)/8, $·vec7(SB)
DATA ·vectorTable+64(SB)/8, $·vec8(SB)
DATA ·vectorTable+72(SB)/8, $·vec9(SB)
DATA ·vectorTable+80(SB)/8, $·vec10(SB)
DATA ·vectorTable+88(SB)/8, $·vec11(SB)
DATA ·vectorTable+96(SB)/8, $·vec12(SB)
DATA ·vectorTable+104(SB)/8, $·vec13(SB)
DATA ·vectorTable+112(SB)/8, $·vec14(SB)
DATA ·vectorTable+120(SB)/8, $·vec15(SB)
DATA ·vectorTable+128(SB)/8, $·vec16(SB)
DATA ·vectorTable+136(SB)/8, $·vec17(SB)
DATA ·vectorTable+144(SB)/8, $·vec18(SB)
DATA ·vectorTable+152(SB)/8, $·vec19(SB)
DATA ·vectorTable+160(SB)/8, $·vec20(SB)
DATA ·vectorTable+168(SB)/8, $·vec21(SB)
DATA ·vectorTable+176(SB)/8, $·vec22(SB)
DATA ·vectorTable+184(SB)/8, $·vec23(SB)
DATA ·vectorTable+192(SB)/8, $·vec24(SB)
DATA ·vectorTable+200(SB)/8, $·vec25(SB)
DATA ·vectorTable+208(SB)/8, $·vec26(SB)
DATA ·vectorTable+216(SB)/8, $·vec27(SB)
DATA ·vectorTable+224(SB)/8, $·vec28(SB)
DATA ·vectorTable+232(SB)/8, $·vec29(SB)
DATA ·vectorTable+240(SB)/8, $·vec30(SB)
DATA ·vectorTable+248(SB)/8, $·vec31(SB)
DATA ·vectorTable+256(SB)/8, $·vec32(SB)
DATA ·vectorTable+264(SB)/8, $·vec33(SB)
DATA ·vectorTable+272(SB)/8, $·vec34(SB)
DATA ·vectorTable+280(SB)/8, $·vec35(SB)
DATA ·vectorTable+288(SB)/8, $·vec36(SB)
DATA ·vectorTable+296(SB)/8, $·vec37(SB)
DATA ·vectorTable+304(SB)/8, $·vec38(SB)
DATA ·vectorTable+312(SB)/8, $·vec39(SB)
DATA ·vectorTable+320(SB)/8, $·vec40(SB)
DATA ·vectorTable+328(SB)/8, $·vec41(SB)
DATA ·vectorTable+336(SB)/8, $·vec42(SB)
DATA ·vectorTable+344(SB)/8, $·vec43(SB)
DATA ·vectorTable+352(SB)/8, $·vec44(SB)
DATA ·vectorTable+360(SB)/8, $·vec45(SB)
DATA ·vectorTable+368(SB)/8, $·vec46(SB)
DATA ·vectorTable+376(SB)/8, $·vec47(SB)
DATA ·vectorTable+384(SB)/8, $·vec48(SB)
DATA ·vectorTable+392(SB)/8, $·vec49(SB)
DATA ·vectorTable+400(SB)/8, $·vec50(SB)
DATA ·vectorTable+408(SB)/8, $·vec51(SB)
DATA ·vectorTable+416(SB)/8, $·vec52(SB)
DATA ·vectorTable+424(SB)/8, $·vec53(SB)
DATA ·vectorTable+432(SB)/8, $·vec54(SB)
DATA ·vectorTable+440(SB)/8, $·vec55(SB)
DATA ·vectorTable+448(SB)/8, $·vec56(SB)
DATA ·vectorTable+456(SB)/8, $·vec57(SB)
DATA ·vectorTable+464(SB)/8, $·vec58(SB)
DATA ·vectorTable+472(SB)/8, $·vec59(SB)
DATA ·vectorTable+480(SB)/8, $·vec60(SB)
DATA ·vectorTable+488(SB)/8, $·vec61(SB)
DATA ·vectorTable+496(SB)/8, $·vec62(SB)
DATA ·vectorTable+504(SB)/8, $·vec63(SB)
DATA ·vectorTable+512(SB)/8, $·vec255(SB)
GLOBL ·vectorTable(SB), RODATA, $520

// syscallEntry is IA32_LSTAR. SYSCALL from ring 0 does not switch stacks:
// RCX = return RIP, R11 = RFLAGS, IF/DF/TF/AC already cleared by IA32_FMASK,
// RSP still the caller's (possibly tiny goroutine) stack.
TEXT ·syscallEntry(SB),NOSPLIT|NOFRAME,$0
	MOVQ SP, const_cpuOffSyscallSP(GS)
	MOVQ const_cpuOffKstackTop(GS), SP
	PUSHQ $const_selKernelData     // SS
	MOVQ CX, const_cpuOffSyscallRIP(GS)
	MOVQ const_cpuOffSyscallSP(GS), CX
	PUSHQ CX                       // RSP
	PUSHQ R11                      // RFLAGS
	PUSHQ $const_selKernelCode     // CS
	MOVQ const_cpuOffSyscallRIP(GS), CX
	PUSHQ CX                       // RIP
	PUSHQ $0                       // error code
	PUSHQ $const_vectorSyscall     // vector
	JMP trapCommon<>(SB)

TEXT trapCommon<>(SB),NOSPLIT|NOFRAME,$0
	PUSHQ AX
	PUSHQ BX
	PUSHQ CX
	PUSHQ DX
	PUSHQ SI
	PUSHQ DI
	PUSHQ BP
	PUSHQ R8
	PUSHQ R9
	PUSHQ R10
	PUSHQ R11
	PUSHQ R12
	PUSHQ R13
	PUSHQ R14
	PUSHQ R15
	MOVQ SP, BX
	CLD
	MOVQ const_cpuOffFXArea(GS), AX
	FXSAVE64 (AX)
	MOVL $const_msrFSBase, CX
	RDMSR
	SHLQ $32, DX
	ORQ DX, AX
	MOVQ AX, const_cpuOffEntryFSBase(GS)
	MOVQ const_cpuOffKernelFS(GS), AX
	MOVQ AX, DX
	SHRQ $32, DX
	WRMSR
	SUBQ $8, SP
	MOVQ BX, 0(SP)
	CALL ·trap(SB)
	JMP trapReturn<>(SB)

// trapReturn resumes the thread whose state is in the entry frame.
TEXT trapReturn<>(SB),NOSPLIT|NOFRAME,$0
	MOVQ const_cpuOffKframe(GS), SP
	MOVQ const_cpuOffEntryFSBase(GS), AX
	MOVQ AX, DX
	SHRQ $32, DX
	MOVL $const_msrFSBase, CX
	WRMSR
	MOVQ const_cpuOffFXArea(GS), AX
	FXRSTOR64 (AX)
	POPQ R15
	POPQ R14
	POPQ R13
	POPQ R12
	POPQ R11
	POPQ R10
	POPQ R9
	POPQ R8
	POPQ BP
	POPQ DI
	POPQ SI
	POPQ DX
	POPQ CX
	POPQ BX
	POPQ AX
	ADDQ $16, SP // vector, error code
	IRETQ

// resume enters the thread state that kernel code placed in the entry frame.
// func resume()
TEXT ·resume(SB),NOSPLIT|NOFRAME,$0
	JMP trapReturn<>(SB)

// idleLoop is the idle thread's code: halt until an interrupt, forever.
// It runs in ring 0 with interrupts enabled on its own small stack.
TEXT ·idleLoop(SB),NOSPLIT|NOFRAME,$0
again:
	STI
	HLT
	JMP again

// cpuSelf is this CPU's cpu.self: the address of its cpu, through GS.
// func cpuSelf() uintptr
TEXT ·cpuSelf(SB),NOSPLIT,$0-8
	MOVQ const_cpuOffSelf(GS), AX
	MOVQ AX, ret+0(FP)
	RET
