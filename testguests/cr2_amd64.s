#include "textflag.h"

// The CR2 guests (cr2.go): a load from a page that is not present raises
// #PF, and the handler reports the CR2 it reads after an exit during which
// the root may run another guest. Ports: 0xe3 OUT "in my fault handler",
// 0xe4 OUT the CR2 read (low then high dword), 0xe5 IN "wait for my turn".

#define END BYTE $0x0F; BYTE $0x0B; BYTE $'G'; BYTE $'o'; BYTE $'H'; BYTE $'v'; BYTE $'E'; BYTE $'n'; BYTE $'D'
#define EXIT(status) MOVL $status, AX; MOVW $0xf4, DX; OUTL; HLT

// guestCR2 loads from RBX, an address in a page that is not present; when
// R12 is not zero it first waits for its turn (IN from port 0xe5). The #PF
// handler ends the guest; exit status 1 means the load did not fault.
TEXT ·guestCR2(SB), NOSPLIT|NOFRAME, $0
	TESTQ R12, R12
	JEQ fault
	MOVW $0xe5, DX
	INL
fault:
	MOVQ (BX), AX
	EXIT(1)
	END

// handlerCR2 is the #PF handler: it tells the root it is in the handler
// (an exit, as Linux's page-fault entry takes them before it reads CR2:
// MOV to CR3 under page-table isolation, a host interrupt), then reads CR2
// and reports it. Exit status 0.
TEXT ·handlerCR2(SB), NOSPLIT|NOFRAME, $0
	MOVW $0xe3, DX
	OUTL
	MOVQ CR2, AX
	MOVW $0xe4, DX
	OUTL
	SHRQ $32, AX
	OUTL
	EXIT(0)
	END

// cr2BlobAddrs stores the blobs' addresses (their ABI0 entry points) in
// *p: guestCR2, handlerCR2.
TEXT ·cr2BlobAddrs(SB), NOSPLIT, $0-8
	MOVQ p+0(FP), DI
	MOVQ $·guestCR2(SB), AX
	MOVQ AX, 0(DI)
	MOVQ $·handlerCR2(SB), AX
	MOVQ AX, 8(DI)
	RET
