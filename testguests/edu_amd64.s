#include "textflag.h"

// The device-assignment test guest (edu.go): it owns QEMU's edu device,
// finds it through the PCI configuration ports, DMAs into its own RAM and
// back, relocates the BAR, and DMAs to and from the GPA the root left in
// EduParams (outside its RAM). Exit status through the debug-exit port: 0
// when every step passed, else the step that failed (edu.go lists them).
// Position independent (relative jumps only), ends with END.

#define END BYTE $0x0F; BYTE $0x0B; BYTE $'G'; BYTE $'o'; BYTE $'H'; BYTE $'v'; BYTE $'E'; BYTE $'n'; BYTE $'D'
#define EXIT(status) MOVL $status, AX; MOVW $0xf4, DX; OUTL; HLT
// CONFIG_ADDRESS for bus 0, device R8, function 0, register reg.
#define CFGADDR(reg) MOVL R8, AX; SHLL $11, AX; BTSL $31, AX; ORL $reg, AX; MOVW $0xcf8, DX; OUTL
#define CFGREAD(reg) CFGADDR(reg); MOVW $0xcfc, DX; INL
#define CFGWRITE(reg, src) CFGADDR(reg); MOVL src, AX; MOVW $0xcfc, DX; OUTL
// The same with the register offset in a register.
#define CFGADDRR(r) MOVL R8, AX; SHLL $11, AX; BTSL $31, AX; ORL r, AX; MOVW $0xcf8, DX; OUTL
#define CFGREADR(r) CFGADDRR(r); MOVW $0xcfc, DX; INL
#define CFGWRITER(r, src) CFGADDRR(r); MOVL src, AX; MOVW $0xcfc, DX; OUTL
// edu registers (QEMU docs/specs/edu.rst), relative to BAR0 in R9.
#define EDU_SRC 0x80(R9)
#define EDU_DST 0x88(R9)
#define EDU_CNT 0x90(R9)
#define EDU_CMD 0x98(R9)
// TSC into AX (clobbers DX).
#define TSC RDTSC; SHLQ $32, DX; ORQ DX, AX
#define PARAMS $0x300000
#define SRC $0x200000
#define DST $0x201000
#define BOUND $0x400000000
// Waits for an interrupt are bounded by the TSC, in units of the DMA of
// step 5 (100 ms of QEMU's virtual time): a PAUSE loop under TCG leaves
// the translated block at every PAUSE and would take minutes to count.
#define DMATICKS 32(DI)
// Parameter page words (edu.go: eduP*), as byte offsets.
#define P_FLAGS 48
#define P_MSICAP 56
#define P_IRQTICKS 64
#define P_INTERRUPTS 72
#define P_COMPAT 80
#define P_FOREIGN 96
#define P_HOSTILE 112
#define P_INTAT 120
// The edu device's interrupt registers (QEMU docs/specs/edu.rst).
#define EDU_IRQ_RAISE 0x60(R9)
#define EDU_IRQ_ACK 0x64(R9)
// The local APIC (Load's handler for vectors 0x30, 0x31 counts in R15).
#define LAPIC_SVR $0xfee000f0

TEXT ·eduGuest(SB), NOSPLIT|NOFRAME, $0
	XORQ R15, R15
	// 1: find 1234:11e8 on bus 0.
	XORQ R8, R8
scan:
	CFGREAD(0)
	CMPL AX, $0x11e81234
	JEQ found
	INCQ R8
	CMPQ R8, $32
	JNE scan
	EXIT(1)
found:
	// 2: BAR0, a memory BAR.
	CFGREAD(0x10)
	MOVL AX, R9
	ANDQ $~0xf, R9
	JNZ bar
	EXIT(2)
bar:
	// 3: sizing: all ones read back as the 1 MiB mask, then the base back.
	MOVL $0xffffffff, R10
	CFGWRITE(0x10, R10)
	CFGREAD(0x10)
	CMPL AX, $0xfff00000
	JEQ sized
	EXIT(3)
sized:
	CFGWRITE(0x10, R9)
	// Memory space and bus master on.
	MOVL $6, R10
	CFGWRITE(0x04, R10)
	// 4: the identification register.
	MOVL 0(R9), AX
	CMPL AX, $0x010000ed
	JEQ ident
	EXIT(4)
ident:
	// A pattern at SRC, zeros at DST.
	CLD
	MOVQ SRC, DI
	MOVQ $2048, CX
	MOVB $0xa5, AL
	REP; STOSB
	MOVQ DST, DI
	MOVQ $2048, CX
	XORL AX, AX
	REP; STOSB
	// 5: SRC -> the device's buffer (0x40000), timed.
	TSC
	MOVQ AX, R12
	MOVQ SRC, AX
	MOVQ AX, EDU_SRC
	MOVQ $0x40000, AX
	MOVQ AX, EDU_DST
	MOVQ $2048, AX
	MOVQ AX, EDU_CNT
	MOVQ $1, AX
	MOVQ AX, EDU_CMD
	MOVQ BOUND, CX
w5:
	MOVQ EDU_CMD, AX
	TESTQ $1, AX
	JZ d5
	DECQ CX
	JNZ w5
	EXIT(5)
d5:
	TSC
	SUBQ R12, AX
	MOVQ PARAMS, DI
	MOVQ AX, 32(DI)
	// 6: the buffer -> DST, timed.
	TSC
	MOVQ AX, R12
	MOVQ $0x40000, AX
	MOVQ AX, EDU_SRC
	MOVQ DST, AX
	MOVQ AX, EDU_DST
	MOVQ $3, AX
	MOVQ AX, EDU_CMD
	MOVQ BOUND, CX
w6:
	MOVQ EDU_CMD, AX
	TESTQ $1, AX
	JZ d6
	DECQ CX
	JNZ w6
	EXIT(6)
d6:
	TSC
	SUBQ R12, AX
	MOVQ PARAMS, DI
	MOVQ AX, 40(DI)
	// 7: DST holds the pattern.
	MOVQ SRC, SI
	MOVQ DST, DI
	MOVQ $2048, CX
	REP; CMPSB
	JEQ same
	EXIT(7)
same:
	// 8: relocate BAR0 by 256 MiB and find the device there.
	MOVQ R9, R11
	ADDQ $0x10000000, R11
	CFGWRITE(0x10, R11)
	CFGREAD(0x10)
	CMPL AX, R11
	JNE nomove
	MOVL 0(R11), AX
	CMPL AX, $0x010000ed
	JEQ moved
nomove:
	EXIT(8)
moved:
	MOVQ R11, R9
	// 9: the buffer -> the GPA outside RAM the root chose.
	MOVQ PARAMS, DI
	MOVQ 0(DI), R10
	MOVQ $0x40000, AX
	MOVQ AX, EDU_SRC
	MOVQ R10, EDU_DST
	MOVQ $3, AX
	MOVQ AX, EDU_CMD
	MOVQ BOUND, CX
w9:
	MOVQ EDU_CMD, AX
	TESTQ $1, AX
	JZ d9
	DECQ CX
	JNZ w9
	EXIT(9)
d9:
	// 10: and from it into the buffer.
	MOVQ R10, EDU_SRC
	MOVQ $0x40000, AX
	MOVQ AX, EDU_DST
	MOVQ $1, AX
	MOVQ AX, EDU_CMD
	MOVQ BOUND, CX
w10:
	MOVQ EDU_CMD, AX
	TESTQ $1, AX
	JZ d10
	DECQ CX
	JNZ w10
	EXIT(10)
d10:
	MOVQ PARAMS, DI
	MOVQ R9, 8(DI)
	MOVQ R8, 16(DI)
	MOVQ P_FLAGS(DI), AX
	TESTQ $1, AX
	JNZ irq
	EXIT(0)
irq:
	// 11: the MSI capability (ID 5), walking the list from 0x34, bounded.
	CFGREAD(0x34)
	MOVL AX, R12
	ANDL $0xfc, R12
	MOVQ $48, R13
capwalk:
	TESTL R12, R12
	JZ nocap
	CFGREADR(R12)
	CMPB AL, $5
	JEQ gotcap
	SHRL $8, AX
	ANDL $0xfc, AX
	MOVL AX, R12
	DECQ R13
	JNZ capwalk
nocap:
	EXIT(11)
gotcap:
	MOVL AX, R14
	MOVQ PARAMS, DI
	MOVQ R12, P_MSICAP(DI)
	// 12: 64-bit address 0xFEE00000 (its own local APIC, ID 0), data:
	// vector 0x30, fixed; then Message Control's MSI Enable.
	BTL $23, R14
	JCS msi64
	EXIT(12)
msi64:
	MOVL R12, R13
	ADDL $4, R13
	MOVL $0xfee00000, R10
	CFGWRITER(R13, R10)
	ADDL $4, R13
	XORL R10, R10
	CFGWRITER(R13, R10)
	ADDL $4, R13
	MOVL $0x30, R10
	CFGWRITER(R13, R10)
	MOVL R14, R10
	BTSL $16, R10
	CFGWRITER(R12, R10)
	// Software-enable the local APIC (SVR: bit 8, spurious vector 0xFF), IF on.
	MOVQ LAPIC_SVR, AX
	MOVL $0x1ff, (AX)
	STI
	// 13: the device raises its interrupt; wait for vector 0x30, timed,
	// for at most 50 DMA times.
	TSC
	MOVQ AX, R12
	MOVQ PARAMS, DI
	MOVQ DMATICKS, R11
	IMULQ $50, R11
	ADDQ R12, R11
	MOVL $1, EDU_IRQ_RAISE
w13:
	CMPQ R15, $1
	JGE d13
	PAUSE
	TSC
	CMPQ AX, R11
	JCS w13
	EXIT(13)
d13:
	TSC
	SUBQ R12, AX
	MOVQ PARAMS, DI
	MOVQ AX, P_IRQTICKS(DI)
	MOVQ R15, P_INTAT(DI)
	MOVL $1, EDU_IRQ_ACK
	// 14: hostile: the device writes the root's compatibility-format
	// message (a dword) into the interrupt window: RAM -> buffer -> there.
	MOVQ P_COMPAT+8(DI), AX
	MOVQ SRC, SI
	MOVL AX, (SI)
	MOVQ SRC, AX
	MOVQ AX, EDU_SRC
	MOVQ $0x40000, AX
	MOVQ AX, EDU_DST
	MOVQ $4, AX
	MOVQ AX, EDU_CNT
	MOVQ $1, AX
	MOVQ AX, EDU_CMD
	MOVQ BOUND, CX
w14a:
	MOVQ EDU_CMD, AX
	TESTQ $1, AX
	JZ d14a
	DECQ CX
	JNZ w14a
	EXIT(14)
d14a:
	MOVQ $0x40000, AX
	MOVQ AX, EDU_SRC
	MOVQ P_COMPAT(DI), AX
	MOVQ AX, EDU_DST
	MOVQ $3, AX
	MOVQ AX, EDU_CMD
	MOVQ BOUND, CX
w14b:
	MOVQ EDU_CMD, AX
	TESTQ $1, AX
	JZ d14b
	DECQ CX
	JNZ w14b
	EXIT(14)
d14b:
	INCQ P_HOSTILE(DI)
	// 15: the same with the message naming an entry not the device's.
	MOVQ P_FOREIGN+8(DI), AX
	MOVQ SRC, SI
	MOVL AX, (SI)
	MOVQ SRC, AX
	MOVQ AX, EDU_SRC
	MOVQ $0x40000, AX
	MOVQ AX, EDU_DST
	MOVQ $1, AX
	MOVQ AX, EDU_CMD
	MOVQ BOUND, CX
w15a:
	MOVQ EDU_CMD, AX
	TESTQ $1, AX
	JZ d15a
	DECQ CX
	JNZ w15a
	EXIT(15)
d15a:
	MOVQ $0x40000, AX
	MOVQ AX, EDU_SRC
	MOVQ P_FOREIGN(DI), AX
	MOVQ AX, EDU_DST
	MOVQ $3, AX
	MOVQ AX, EDU_CMD
	MOVQ BOUND, CX
w15b:
	MOVQ EDU_CMD, AX
	TESTQ $1, AX
	JZ d15b
	DECQ CX
	JNZ w15b
	EXIT(15)
d15b:
	INCQ P_HOSTILE(DI)
	// 16: two DMA times for anything either message caused to arrive;
	// then no interrupt beyond the legitimate one.
	TSC
	MOVQ DMATICKS, R11
	SHLQ $1, R11
	ADDQ AX, R11
w16:
	PAUSE
	TSC
	CMPQ AX, R11
	JCS w16
	CLI
	MOVQ R15, P_INTERRUPTS(DI)
	CMPQ R15, P_INTAT(DI)
	JEQ d16
	EXIT(16)
d16:
	EXIT(0)
	END

// eduGuestAddr returns eduGuest's address.
TEXT ·eduGuestAddr(SB), NOSPLIT, $0-8
	MOVQ $·eduGuest(SB), AX
	MOVQ AX, ret+0(FP)
	RET
