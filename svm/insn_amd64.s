#include "textflag.h"

// Instructions the Go assembler does not know are written as bytes:
//   VMRUN  0F 01 D8    VMLOAD 0F 01 DA    VMSAVE 0F 01 DB
//   STGI   0F 01 DC    CLGI   0F 01 DD    INVLPGA 0F 01 DF
// All take the physical address of a VMCB in RAX.

// Offsets in runContext (vcpu.go): gprs[16] at 0, then the VMCB and host
// save-area physical addresses and the two FXSAVE areas.
#define CTX_GPR(i) (i*8)
#define CTX_VMCB 128
#define CTX_HOST 136
#define CTX_GFX 144
#define CTX_HFX 152
#define CTX_EXITREQ 160

// func vmrun(ctx *runContext) (entered bool)
//
// One guest entry and exit. Runs with the global interrupt flag clear from
// before VMLOAD to after the host's state is back, so no host interrupt or
// NMI is taken with guest FS/GS/TR loaded; a host interrupt that arrives in
// the guest causes #VMEXIT(INTR) and is taken at STGI, in ordinary Go
// context. RAX, RSP, RIP and RFLAGS of the guest live in the VMCB; the other
// guest GPRs in ctx. FPU/SSE state is swapped with FXSAVE/FXRSTOR.
// With GIF clear it first looks at ctx's exit request
// (vcpu.ExitRequester) and, if one is set, sets GIF again and returns
// false without entering: a request made after the look comes with a
// host interrupt, which GIF holds until VMRUN, so the guest exits at once.
// Must not allocate or grow the stack.
TEXT ·vmrun(SB), NOSPLIT, $32-9
	MOVQ ctx+0(FP), DI
	MOVQ DI, 0(SP)        // ctx, found again after #VMEXIT
	MOVQ R14, 8(SP)       // g (ABIInternal)
	MOVQ R15, 16(SP)
	MOVQ BP, 24(SP)

	BYTE $0x0F; BYTE $0x01; BYTE $0xDD  // CLGI
	MOVL CTX_EXITREQ(DI), AX
	TESTL AX, AX
	JNE held

	MOVQ CTX_HFX(DI), AX
	FXSAVE64 (AX)
	MOVQ CTX_GFX(DI), AX
	FXRSTOR64 (AX)

	MOVQ CTX_HOST(DI), AX
	BYTE $0x0F; BYTE $0x01; BYTE $0xDB  // VMSAVE host FS/GS/TR/LDTR/KernelGSBase/STAR/LSTAR/CSTAR/SFMASK/SYSENTER

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
	MOVQ CTX_VMCB(DI), AX
	MOVQ CTX_GPR(7)(DI), DI

	BYTE $0x0F; BYTE $0x01; BYTE $0xDA  // VMLOAD guest
	BYTE $0x0F; BYTE $0x01; BYTE $0xD8  // VMRUN
	BYTE $0x0F; BYTE $0x01; BYTE $0xDB  // VMSAVE guest

	// #VMEXIT: RAX, RSP, RIP, RFLAGS, CRs, EFER, CS/SS/DS/ES, GDTR/IDTR are
	// the host's again (RAX = the VMCB address it held at VMRUN, RSP the
	// frame above).
	MOVQ 0(SP), AX        // ctx; RAX's VMCB address is no longer needed
	MOVQ CX, CTX_GPR(1)(AX)
	MOVQ DX, CTX_GPR(2)(AX)
	MOVQ BX, CTX_GPR(3)(AX)
	MOVQ BP, CTX_GPR(5)(AX)
	MOVQ SI, CTX_GPR(6)(AX)
	MOVQ DI, CTX_GPR(7)(AX)
	MOVQ R8, CTX_GPR(8)(AX)
	MOVQ R9, CTX_GPR(9)(AX)
	MOVQ R10, CTX_GPR(10)(AX)
	MOVQ R11, CTX_GPR(11)(AX)
	MOVQ R12, CTX_GPR(12)(AX)
	MOVQ R13, CTX_GPR(13)(AX)
	MOVQ R14, CTX_GPR(14)(AX)
	MOVQ R15, CTX_GPR(15)(AX)
	MOVQ AX, DI

	MOVQ CTX_HOST(DI), AX
	BYTE $0x0F; BYTE $0x01; BYTE $0xDA  // VMLOAD host

	MOVQ CTX_GFX(DI), AX
	FXSAVE64 (AX)
	MOVQ CTX_HFX(DI), AX
	FXRSTOR64 (AX)

	MOVQ 8(SP), R14
	MOVQ 16(SP), R15
	MOVQ 24(SP), BP
	BYTE $0x0F; BYTE $0x01; BYTE $0xDC  // STGI: a pending host interrupt is taken here
	MOVB $1, entered+8(FP)
	RET

held:
	BYTE $0x0F; BYTE $0x01; BYTE $0xDC  // STGI
	MOVB $0, entered+8(FP)
	RET
