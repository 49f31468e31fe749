#include "textflag.h"

// VMX instructions the Go assembler does not know, as bytes (Intel SDM
// Vol. 2, "VMX Instruction Reference"), with their operands in fixed
// registers:
//   VMXON [RAX]     F3 0F C7 30      VMPTRLD [RAX]  0F C7 30
//   VMCLEAR [RAX]   66 0F C7 30      VMXOFF         0F 01 C4
//   VMREAD RAX,RDX  0F 78 D0 (RAX <- field RDX)
//   VMWRITE RDX,RAX 0F 79 D0 (field RDX <- RAX)
//   VMLAUNCH        0F 01 C2         VMRESUME       0F 01 C3
//   INVEPT RAX,[RDX]  66 0F 38 80 02 INVVPID RAX,[RDX] 66 0F 38 81 02
// Each VMX instruction reports failure in RFLAGS: CF=1 VMfailInvalid,
// ZF=1 VMfailValid (the VM-instruction error field says why). The helpers
// return 0 for success, 1 for VMfailInvalid, 2 for VMfailValid.

#define VMSTATUS(ret) \
	MOVQ $0, ret; \
	JCS 3(PC); \
	JEQ 4(PC); \
	JMP 4(PC); \
	MOVQ $1, ret; \
	JMP 2(PC); \
	MOVQ $2, ret

// func vmxon(pa *uint64) uint64
TEXT ·vmxon(SB), NOSPLIT, $0-16
	MOVQ pa+0(FP), AX
	BYTE $0xF3; BYTE $0x0F; BYTE $0xC7; BYTE $0x30
	VMSTATUS(ret+8(FP))
	RET

// func vmxoff()
TEXT ·vmxoff(SB), NOSPLIT, $0-0
	BYTE $0x0F; BYTE $0x01; BYTE $0xC4
	RET

// func vmclear(pa *uint64) uint64
TEXT ·vmclear(SB), NOSPLIT, $0-16
	MOVQ pa+0(FP), AX
	BYTE $0x66; BYTE $0x0F; BYTE $0xC7; BYTE $0x30
	VMSTATUS(ret+8(FP))
	RET

// func vmptrld(pa *uint64) uint64
TEXT ·vmptrld(SB), NOSPLIT, $0-16
	MOVQ pa+0(FP), AX
	BYTE $0x0F; BYTE $0xC7; BYTE $0x30
	VMSTATUS(ret+8(FP))
	RET

// func vmread(field uint32) (v uint64, status uint64)
TEXT ·vmread(SB), NOSPLIT, $0-24
	MOVL field+0(FP), DX
	XORQ AX, AX
	BYTE $0x0F; BYTE $0x78; BYTE $0xD0
	MOVQ AX, v+8(FP)
	VMSTATUS(status+16(FP))
	RET

// func vmwrite(field uint32, v uint64) uint64
TEXT ·vmwrite(SB), NOSPLIT, $0-24
	MOVL field+0(FP), DX
	MOVQ v+8(FP), AX
	BYTE $0x0F; BYTE $0x79; BYTE $0xD0
	VMSTATUS(ret+16(FP))
	RET

// func invept(typ uint64, desc *[2]uint64) uint64
TEXT ·invept(SB), NOSPLIT, $0-24
	MOVQ typ+0(FP), AX
	MOVQ desc+8(FP), DX
	BYTE $0x66; BYTE $0x0F; BYTE $0x38; BYTE $0x80; BYTE $0x02
	VMSTATUS(ret+16(FP))
	RET

// func invvpid(typ uint64, desc *[2]uint64) uint64
TEXT ·invvpid(SB), NOSPLIT, $0-24
	MOVQ typ+0(FP), AX
	MOVQ desc+8(FP), DX
	BYTE $0x66; BYTE $0x0F; BYTE $0x38; BYTE $0x81; BYTE $0x02
	VMSTATUS(ret+16(FP))
	RET

// Offsets in runContext (vcpu.go).
#define CTX_GPR(i) (i*8)
#define CTX_LAUNCHED 128
#define CTX_GFX 136
#define CTX_HFX 144
#define CTX_FAIL 152
#define CTX_CR2 160

// func vmenter(ctx *runContext)
//
// One VM entry and exit, called with interrupts disabled (the
// current VMCS must stay current until the exit is read). Saves the
// host's BP, R14 (g), R15 and ctx on the stack, writes HOST_RSP and
// HOST_RIP, swaps FPU/SSE state, puts back the guest's CR2, loads the
// guest GPRs and launches or resumes. The exit lands in vmexitPoint with
// RSP as written here. A failed VMLAUNCH/VMRESUME falls through with the
// guest's GPRs loaded; ctx.fail gets RFLAGS so the caller can tell
// VMfailInvalid from VMfailValid.
TEXT ·vmenter(SB), NOSPLIT|NOFRAME, $0-8
	MOVQ ctx+0(FP), DI
	PUSHQ BP
	PUSHQ R14
	PUSHQ R15
	PUSHQ DI

	MOVQ $0x6C14, DX                    // HOST_RSP
	MOVQ SP, AX
	BYTE $0x0F; BYTE $0x79; BYTE $0xD0
	MOVQ $0x6C16, DX                    // HOST_RIP
	MOVQ $·vmexitPoint(SB), AX
	BYTE $0x0F; BYTE $0x79; BYTE $0xD0

	MOVQ CTX_HFX(DI), AX
	FXSAVE64 (AX)
	MOVQ CTX_GFX(DI), AX
	FXRSTOR64 (AX)

	// The guest's CR2: VM entry does not load it (SDM Vol. 3C 27.3.2
	// loads CR0, CR3 and CR4 only), and since its exit another VP's guest
	// or a host page fault may have written the register. Written only
	// when it changed: a MOV to CR2 costs more than the compare.
	MOVQ CR2, AX
	CMPQ AX, CTX_CR2(DI)
	JEQ cr2done
	MOVQ CTX_CR2(DI), AX
	MOVQ AX, CR2
cr2done:

	CMPQ CTX_LAUNCHED(DI), $0
	MOVQ CTX_GPR(0)(DI), AX
	MOVQ CTX_GPR(1)(DI), CX
	MOVQ CTX_GPR(2)(DI), DX
	MOVQ CTX_GPR(3)(DI), BX
	MOVQ CTX_GPR(5)(DI), BP
	MOVQ CTX_GPR(6)(DI), SI
	MOVQ CTX_GPR(8)(DI), R8
	MOVQ CTX_GPR(9)(DI), R9
	MOVQ CTX_GPR(10)(DI), R10
	MOVQ CTX_GPR(11)(DI), R11
	MOVQ CTX_GPR(12)(DI), R12
	MOVQ CTX_GPR(13)(DI), R13
	MOVQ CTX_GPR(14)(DI), R14
	MOVQ CTX_GPR(15)(DI), R15
	MOVQ CTX_GPR(7)(DI), DI
	JNE resume
	BYTE $0x0F; BYTE $0x01; BYTE $0xC2  // VMLAUNCH
	JMP failed
resume:
	BYTE $0x0F; BYTE $0x01; BYTE $0xC3  // VMRESUME
failed:
	PUSHFQ
	POPQ AX
	MOVQ 0(SP), DI                      // ctx
	MOVQ AX, CTX_FAIL(DI)
	MOVQ CTX_HFX(DI), AX
	FXRSTOR64 (AX)
	POPQ DI
	POPQ R15
	POPQ R14
	POPQ BP
	RET

// vmexitPoint is HOST_RIP: the CPU arrives here on every VM exit with the
// host's RSP from vmenter, RFLAGS = 2 (interrupts off) and the guest's GPRs.
TEXT ·vmexitPoint(SB), NOSPLIT|NOFRAME, $0
	PUSHQ DI
	MOVQ 8(SP), DI                      // ctx
	MOVQ AX, CTX_GPR(0)(DI)
	MOVQ CX, CTX_GPR(1)(DI)
	MOVQ DX, CTX_GPR(2)(DI)
	MOVQ BX, CTX_GPR(3)(DI)
	MOVQ BP, CTX_GPR(5)(DI)
	MOVQ SI, CTX_GPR(6)(DI)
	MOVQ R8, CTX_GPR(8)(DI)
	MOVQ R9, CTX_GPR(9)(DI)
	MOVQ R10, CTX_GPR(10)(DI)
	MOVQ R11, CTX_GPR(11)(DI)
	MOVQ R12, CTX_GPR(12)(DI)
	MOVQ R13, CTX_GPR(13)(DI)
	MOVQ R14, CTX_GPR(14)(DI)
	MOVQ R15, CTX_GPR(15)(DI)
	POPQ AX
	MOVQ AX, CTX_GPR(7)(DI)
	MOVQ CR2, AX                        // the guest's, before any host fault can change it
	MOVQ AX, CTX_CR2(DI)
	MOVQ CTX_GFX(DI), AX
	FXSAVE64 (AX)
	MOVQ CTX_HFX(DI), AX
	FXRSTOR64 (AX)
	MOVQ $1, CTX_LAUNCHED(DI)
	MOVQ $0, CTX_FAIL(DI)
	// The pops that undo vmenter's pushes, as bytes: the assembler checks
	// that each function balances its own pushes, and these are vmenter's.
	BYTE $0x5F                          // POPQ DI
	BYTE $0x41; BYTE $0x5F              // POPQ R15
	BYTE $0x41; BYTE $0x5E              // POPQ R14
	BYTE $0x5D                          // POPQ BP
	RET

// func vmreadN(fields *uint32, out *uint64, n uint64)
// VMREADs n fields in one call: out[i] = the field fields[i], 0 when the
// read fails. For the exit path, where a call per field cost more than
// the VMREADs themselves.
TEXT ·vmreadN(SB), NOSPLIT, $0-24
	MOVQ fields+0(FP), SI
	MOVQ out+8(FP), DI
	MOVQ n+16(FP), CX
next:
	TESTQ CX, CX
	JEQ done
	MOVL (SI), DX
	XORQ AX, AX
	BYTE $0x0F; BYTE $0x78; BYTE $0xD0
	MOVQ AX, (DI)
	ADDQ $4, SI
	ADDQ $8, DI
	DECQ CX
	JMP next
done:
	RET

// func vmread16(fields *[16]uint32, out *[16]uint64)
// vmreadN for sixteen fields, unrolled: four instructions a field instead
// of ten. readState's batch (exitFields) is sixteen fields: every exit.
#define VMREAD_AT(i) MOVL (i*4)(SI), DX; XORL AX, AX; BYTE $0x0F; BYTE $0x78; BYTE $0xD0; MOVQ AX, (i*8)(DI)
TEXT ·vmread16(SB), NOSPLIT, $0-16
	MOVQ fields+0(FP), SI
	MOVQ out+8(FP), DI
	VMREAD_AT(0)
	VMREAD_AT(1)
	VMREAD_AT(2)
	VMREAD_AT(3)
	VMREAD_AT(4)
	VMREAD_AT(5)
	VMREAD_AT(6)
	VMREAD_AT(7)
	VMREAD_AT(8)
	VMREAD_AT(9)
	VMREAD_AT(10)
	VMREAD_AT(11)
	VMREAD_AT(12)
	VMREAD_AT(13)
	VMREAD_AT(14)
	VMREAD_AT(15)
	RET

// func vmwriteN(fields *uint32, vals *uint64, n uint64) uint64
// VMWRITEs n fields in one call, stopping at the first failure: it
// returns n when every write succeeded, else the index of the one that
// failed (its VM-instruction error says why).
TEXT ·vmwriteN(SB), NOSPLIT, $0-32
	MOVQ fields+0(FP), SI
	MOVQ vals+8(FP), DI
	MOVQ n+16(FP), CX
	XORQ BX, BX
wnext:
	CMPQ BX, CX
	JEQ wdone
	MOVL (SI)(BX*4), DX
	MOVQ (DI)(BX*8), AX
	BYTE $0x0F; BYTE $0x79; BYTE $0xD0
	JCS wdone
	JEQ wdone
	INCQ BX
	JMP wnext
wdone:
	MOVQ BX, ret+24(FP)
	RET
