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

// Offsets in runContext (context_unsafe.go): the register file first.
#define CTX_GPR(i) (i*8)
#define REGS_RIP 128
#define REGS_CR2 152
#define CTX_LAUNCHED 360
#define CTX_GFX 368
#define CTX_HFX 376
#define CTX_FAIL 384
#define CTX_REASON 392
#define CTX_QUAL 400
#define CTX_INSTRLEN 408
#define CTX_IDTVECT 416
#define CTX_INTR 424
#define CTX_CSAR 432
#define CTX_HOSTRSP 440
#define CTX_MODE(i) (448+i*8)

// VMREAD_CTX(field, off): ctx.off <- the VMCS field (DI holds ctx); 0
// when the read fails.
#define VMREAD_CTX(field, off) MOVL $field, DX; XORL AX, AX; BYTE $0x0F; BYTE $0x78; BYTE $0xD0; MOVQ AX, off(DI)

// func vmenter(ctx *runContext)
//
// One VM entry and exit, called with interrupts disabled (the
// current VMCS must stay current until the exit is read). Saves the
// host's BP, R14 (g), R15 and ctx on the stack; writes the guest's RIP
// from ctx.regs, HOST_RSP when the stack moved since the last entry and
// HOST_RIP before a VMLAUNCH (a VMCS keeps both across exits, and across
// VMCLEAR: only the first entry after Bind launches); swaps FPU/SSE
// state, puts back the guest's CR2, loads the guest GPRs and launches or
// resumes. The exit lands in vmexitPoint with RSP as written here. A
// failed VMLAUNCH/VMRESUME falls through with the guest's GPRs loaded;
// ctx.fail gets RFLAGS so the caller can tell VMfailInvalid from
// VMfailValid. The RIP VMWRITE's own status is not looked at: it fails
// only without a current VMCS, and then so does the entry.
TEXT ·vmenter(SB), NOSPLIT|NOFRAME, $0-8
	MOVQ ctx+0(FP), DI
	PUSHQ BP
	PUSHQ R14
	PUSHQ R15
	PUSHQ DI

	MOVQ $0x681E, DX                    // GUEST_RIP
	MOVQ REGS_RIP(DI), AX
	BYTE $0x0F; BYTE $0x79; BYTE $0xD0
	CMPQ CTX_LAUNCHED(DI), $0
	JNE hostrsp
	MOVQ $0x6C16, DX                    // HOST_RIP
	MOVQ $·vmexitPoint(SB), AX
	BYTE $0x0F; BYTE $0x79; BYTE $0xD0
	JMP writersp
hostrsp:
	CMPQ SP, CTX_HOSTRSP(DI)
	JEQ hostdone
writersp:
	MOVQ $0x6C14, DX                    // HOST_RSP
	MOVQ SP, AX
	BYTE $0x0F; BYTE $0x79; BYTE $0xD0
	MOVQ SP, CTX_HOSTRSP(DI)
hostdone:

	MOVQ CTX_HFX(DI), AX
	FXSAVE64 (AX)
	MOVQ CTX_GFX(DI), AX
	FXRSTOR64 (AX)

	// The guest's CR2: VM entry does not load it (SDM Vol. 3C 27.3.2
	// loads CR0, CR3 and CR4 only), and since its exit another VP's guest
	// or a host page fault may have written the register. Written only
	// when it changed: a MOV to CR2 costs more than the compare.
	MOVQ CR2, AX
	CMPQ AX, REGS_CR2(DI)
	JEQ cr2done
	MOVQ REGS_CR2(DI), AX
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
	MOVQ AX, REGS_CR2(DI)
	// What every exit needs (readExit, decode): three instructions a
	// field here, against a call and a loop from Go.
	VMREAD_CTX(0x4402, CTX_REASON)      // VM_EXIT_REASON
	VMREAD_CTX(0x6400, CTX_QUAL)        // EXIT_QUALIFICATION
	VMREAD_CTX(0x440C, CTX_INSTRLEN)    // VM_EXIT_INSTRUCTION_LEN
	VMREAD_CTX(0x4408, CTX_IDTVECT)     // IDT_VECTORING_INFO_FIELD
	VMREAD_CTX(0x4824, CTX_INTR)        // GUEST_INTERRUPTIBILITY_INFO
	VMREAD_CTX(0x681E, REGS_RIP)        // GUEST_RIP
	VMREAD_CTX(0x4816, CTX_CSAR)        // GUEST_CS_AR_BYTES
	// A VMCALL's checks need the mode and CPL too (modeFields).
	CMPQ CTX_REASON(DI), $18            // VMCALL
	JNE modedone
	VMREAD_CTX(0x6800, CTX_MODE(0))     // GUEST_CR0
	VMREAD_CTX(0x2806, CTX_MODE(1))     // GUEST_IA32_EFER
	VMREAD_CTX(0x4818, CTX_MODE(2))     // GUEST_SS_AR_BYTES
modedone:
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

// VMREAD_AT(i): out[i] <- the field fields[i] (SI: fields, DI: out).
#define VMREAD_AT(i) MOVL (i*4)(SI), DX; XORL AX, AX; BYTE $0x0F; BYTE $0x78; BYTE $0xD0; MOVQ AX, (i*8)(DI)

// func vmread3(fields *[3]uint32, out *[3]uint64)
// VMREADs three fields in one call, unrolled: out[i] = the field
// fields[i], 0 when the read fails (modeFields: fillState). A call per
// field costs more than the VMREADs.
TEXT ·vmread3(SB), NOSPLIT, $0-16
	MOVQ fields+0(FP), SI
	MOVQ out+8(FP), DI
	VMREAD_AT(0)
	VMREAD_AT(1)
	VMREAD_AT(2)
	RET

// func vmread6(fields *[6]uint32, out *[6]uint64)
// vmread3 for six fields (restFields: fillState).
TEXT ·vmread6(SB), NOSPLIT, $0-16
	MOVQ fields+0(FP), SI
	MOVQ out+8(FP), DI
	VMREAD_AT(0)
	VMREAD_AT(1)
	VMREAD_AT(2)
	VMREAD_AT(3)
	VMREAD_AT(4)
	VMREAD_AT(5)
	RET
