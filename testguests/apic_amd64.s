#include "textflag.h"

// APIC test guests: 64-bit code run in child partitions (never in the
// host) to check the local APIC and I/O APIC the root emulates, SDM Vol. 3A
// chapter 11. A second blob table beside blobs_amd64.s, with the same
// conventions: position independent, each blob ends with END, and a guest
// reports through the debug-exit port (0xf4): 0 when every step passed,
// else the number of the step that failed. The #GP handler of Load's
// environment sets R15 to 13 and resumes R14 bytes past the faulting
// instruction (clobbering R13), so a guest tests "this raises #GP" in line.
//
// Every vector from 16 up enters apicHandler through a stub LoadAPIC
// writes (PUSHQ $vector; JMP apicHandler). The handler logs each interrupt
// in the data page and acts as the page's action table says; apic.go
// describes the page, and TestAPICLayoutMatchesAssembly keeps the numbers
// below equal to its constants.
//
// Registers in the guests: R11 the data page, R12 the LAPIC page, R10
// the I/O APIC page where used; the macros use R8, AX, CX and DX as
// scratch. At entry RSI holds the LAPIC timer's rate (Hz, before the
// divide configuration) and RDI the TSC's.

#define END BYTE $0x0F; BYTE $0x0B; BYTE $'G'; BYTE $'o'; BYTE $'H'; BYTE $'v'; BYTE $'E'; BYTE $'n'; BYTE $'D'

// The data page (apic.go).
#define APIC_DATA 0x200000
#define D_MODE 0x00
#define D_COUNT 0x08
#define D_DEPTH 0x10
#define D_STEP 0x18
#define D_LAPICHZ 0x20
#define D_TSCHZ 0x28
#define D_TSCMS 0x30
#define D_SCRATCH 0x40
#define D_ACTIONS 0x100
#define D_CHAIN 0x200
#define D_PARAMS 0x600
#define D_RESULTS 0x800
#define D_LOG 0x1000
#define LOG_CAP 4096
#define D_TABLE 0x30000
#define D_BENCH 0x40000
#define RAM_PAGE 0x300000
#define ACT_SNAP 1
#define ACT_NOEOI 2
#define ACT_CHAIN 4
#define ACT_HOLD 8
#define APIC_BLOB_LIMIT 16384

#define LAPIC_PAGE 0xfee00000
#define IOAPIC_PAGE 0xfec00000

#define EXIT(status) MOVL $status, AX; MOVW $0xf4, DX; OUTL; HLT
#define FAILEXIT MOVQ D_STEP(R11), AX; MOVW $0xf4, DX; OUTL; HLT
#define STEP(n) MOVQ $n, D_STEP(R11)
#define PUTC(c) MOVB $c, AL; MOVW $0x3f8, DX; OUTB

// TSCAX: RAX = the TSC (clobbers RDX).
#define TSCAX RDTSC; SHLQ $32, DX; ORQ DX, AX

// PROLOGUE: data and LAPIC page pointers; the clock rates saved, and the
// TSC ticks in a millisecond.
#define PROLOGUE MOVQ $APIC_DATA, R11; MOVQ $LAPIC_PAGE, R12; MOVQ SI, D_LAPICHZ(R11); MOVQ DI, D_TSCHZ(R11); MOVQ DI, AX; XORL DX, DX; MOVQ $1000, CX; DIVQ CX; MOVQ AX, D_TSCMS(R11)

// SWENABLE: SVR = software enable, spurious vector 0xff (SDM Vol. 3A 11.9).
#define SWENABLE MOVL $0x1ff, 0xf0(R12)

// SELFIPI(v): xAPIC ICR write, fixed, self shorthand (SDM Vol. 3A 11.6.1).
#define SELFIPI(v) MOVL $(0x40000|v), 0x300(R12)

// X2SELFIPI(v): x2APIC SELF_IPI MSR (SDM Vol. 3A 11.12.11).
#define X2SELFIPI(v) MOVL $0x83f, CX; MOVL $v, AX; XORL DX, DX; WRMSR

// X2APICON: IA32_APIC_BASE.EXTD set (xAPIC to x2APIC, SDM Vol. 3A
// 11.12.5); the handler EOIs through the MSR from then on.
#define X2APICON MOVL $0x1b, CX; RDMSR; ORL $0x400, AX; WRMSR; MOVQ $1, D_MODE(R11)

// RDMSRQ: RAX = the MSR in ECX, 64 bits (clobbers RDX).
#define RDMSRQ RDMSR; SHLQ $32, DX; ORQ DX, AX

// WRMSRQ(reg): the MSR in ECX = reg, 64 bits (clobbers RAX, RDX).
#define WRMSRQ(reg) MOVQ reg, AX; MOVQ reg, DX; SHRQ $32, DX; WRMSR

// EXPECTGP(insn, fail): insn (RDMSR or WRMSR: 2 bytes) must raise #GP.
#define EXPECTGP(insn, fail) MOVQ $2, R14; XORQ R15, R15; insn; CMPQ R15, $13; JNE fail

// WAITCOUNT(n, lbl, fail): with interrupts enabled, wait until the
// handler has taken n interrupts (n: $imm or a register); fail after a
// second of TSC. Ends with interrupts disabled.
#define WAITCOUNT(n, lbl, fail) TSCAX; MOVQ D_TSCHZ(R11), R8; ADDQ AX, R8; STI; lbl: PAUSE; TSCAX; CMPQ AX, R8; JCC fail; CMPQ D_COUNT(R11), n; JCS lbl; CLI

// HLTCOUNT(n, lbl, done): halt until the handler has taken n interrupts.
// Ends with interrupts disabled.
#define HLTCOUNT(n, lbl, done) CLI; lbl: CMPQ D_COUNT(R11), n; JCC done; STI; HLT; CLI; JMP lbl; done:

// QUIET(ticks, lbl): spin with interrupts enabled for ticks (a register
// or memory operand) of TSC. Ends with interrupts disabled.
#define QUIET(ticks, lbl) TSCAX; MOVQ ticks, R8; ADDQ AX, R8; STI; lbl: PAUSE; TSCAX; CMPQ AX, R8; JCS lbl; CLI

// apicHandler is every vector's interrupt handler. Entered from the
// vector's stub (stack: vector, RIP, CS, RFLAGS, RSP, SS; interrupts
// disabled by the gate), it reads the TSC first, appends a record to the
// log (the scratch record once the log is full; D_COUNT counts every
// interrupt) and does what D_ACTIONS[vector] asks: ACT_SNAP records ISR
// 0x40-0x7f and PPR; ACT_HOLD keeps interrupts disabled for 8 ms of TSC
// before the EOI; ACT_CHAIN sends the self-IPIs listed at
// D_CHAIN[4*vector], lets them in (STI, a short spin, CLI) and appends an
// after-record (vector | 0x100); ACT_NOEOI returns without an EOI. The
// EOI and the snapshot go through the page or the MSRs as D_MODE says.
// Every register it uses is restored.
TEXT ·apicHandler(SB), NOSPLIT|NOFRAME, $0
	PUSHQ AX
	PUSHQ DX
	RDTSC
	SHLQ $32, DX
	ORQ DX, AX
	PUSHQ BX
	PUSHQ CX
	PUSHQ SI
	PUSHQ DI
	PUSHQ R8
	PUSHQ R9
	MOVQ $APIC_DATA, BX
	MOVQ 64(SP), DI
	ANDQ $0xff, DI
	INCQ D_DEPTH(BX)
	MOVQ AX, R9
	XORQ R8, R8
hrecord:
	MOVQ D_COUNT(BX), SI
	INCQ D_COUNT(BX)
	CMPQ SI, $LOG_CAP
	JCS hslot
	LEAQ D_SCRATCH(BX), SI
	JMP hfill
hslot:
	SHLQ $5, SI
	LEAQ D_LOG(BX)(SI*1), SI
hfill:
	MOVQ R9, 0(SI)
	MOVL DI, AX
	ORL R8, AX
	MOVL AX, 8(SI)
	MOVQ D_DEPTH(BX), AX
	MOVL AX, 12(SI)
	MOVQ $0, 16(SI)
	MOVQ $0, 24(SI)
	MOVBQZX D_ACTIONS(BX)(DI*1), CX
	TESTQ $ACT_SNAP, CX
	JEQ hsnapped
	CMPQ D_MODE(BX), $0
	JNE hsnapx2
	MOVQ $LAPIC_PAGE, DX
	MOVL 0x120(DX), AX
	MOVL AX, 16(SI)
	MOVL 0x130(DX), AX
	MOVL AX, 20(SI)
	MOVL 0xa0(DX), AX
	MOVL AX, 24(SI)
	JMP hsnapped
hsnapx2:
	MOVL $0x812, CX
	RDMSR
	MOVL AX, 16(SI)
	MOVL $0x813, CX
	RDMSR
	MOVL AX, 20(SI)
	MOVL $0x80a, CX
	RDMSR
	MOVL AX, 24(SI)
hsnapped:
	TESTQ R8, R8
	JNE heoi
	MOVBQZX D_ACTIONS(BX)(DI*1), CX
	TESTQ $ACT_CHAIN, CX
	JEQ heoi
	LEAQ D_CHAIN(BX)(DI*4), SI
	MOVQ $4, R9
hchain:
	MOVBQZX 0(SI), AX
	TESTQ AX, AX
	JEQ hchained
	CMPQ D_MODE(BX), $0
	JNE hchainx2
	ORL $0x40000, AX
	MOVQ $LAPIC_PAGE, DX
	MOVL AX, 0x300(DX)
	JMP hchainnext
hchainx2:
	MOVL $0x83f, CX
	XORL DX, DX
	WRMSR
hchainnext:
	INCQ SI
	DECQ R9
	JNE hchain
hchained:
	STI
	MOVQ $1000, CX
hnest:
	PAUSE
	DECQ CX
	JNE hnest
	CLI
	RDTSC
	SHLQ $32, DX
	ORQ DX, AX
	MOVQ AX, R9
	MOVQ $0x100, R8
	JMP hrecord
heoi:
	MOVBQZX D_ACTIONS(BX)(DI*1), CX
	TESTQ $ACT_HOLD, CX
	JEQ hheld
	RDTSC
	SHLQ $32, DX
	ORQ DX, AX
	MOVQ D_TSCMS(BX), R8
	SHLQ $3, R8
	ADDQ AX, R8
hhold:
	RDTSC
	SHLQ $32, DX
	ORQ DX, AX
	CMPQ AX, R8
	JCS hhold
hheld:
	TESTQ $ACT_NOEOI, CX
	JNE hdone
	CMPQ D_MODE(BX), $0
	JNE heoix2
	MOVQ $LAPIC_PAGE, DX
	MOVL $0, 0xb0(DX)
	JMP hdone
heoix2:
	MOVL $0x80b, CX
	XORL AX, AX
	XORL DX, DX
	WRMSR
hdone:
	DECQ D_DEPTH(BX)
	POPQ R9
	POPQ R8
	POPQ DI
	POPQ SI
	POPQ CX
	POPQ BX
	POPQ DX
	POPQ AX
	ADDQ $8, SP
	IRETQ
	END

// apicTimerOneShot: for each run i < D_PARAMS[0] (at most 8), with divide
// configuration D_PARAMS[1+2i] and initial count D_PARAMS[2+2i], arm the
// one-shot timer (vector 0x40) and halt until it fires (SDM Vol. 3A
// 11.5.4). Results per run at D_RESULTS+32i: the TSC before and after the
// initial-count write, the current count right after it, the current count
// after the interrupt.
TEXT ·apicTimerOneShot(SB), NOSPLIT|NOFRAME, $0
	PROLOGUE
	STEP(1) // software enable: SVR reads back
	SWENABLE
	MOVL 0xf0(R12), AX
	ANDL $0x1ff, AX
	CMPL AX, $0x1ff
	JNE osfail
	STEP(2) // LVT timer: one-shot, vector 0x40, unmasked; reads back
	MOVL $0x40, 0x320(R12)
	MOVL 0x320(R12), AX
	CMPL AX, $0x40
	JNE osfail
	XORQ BX, BX
osrun:
	CMPQ BX, D_PARAMS(R11)
	JCC osdone
	MOVQ BX, CX
	SHLQ $4, CX
	MOVQ (D_PARAMS+8)(R11)(CX*1), AX
	MOVL AX, 0x3e0(R12)
	MOVQ (D_PARAMS+16)(R11)(CX*1), R9
	MOVQ BX, SI
	SHLQ $5, SI
	LEAQ D_RESULTS(R11)(SI*1), SI
	MOVQ D_COUNT(R11), R10
	INCQ R10
	STEP(3) // arm: the current count then runs down from the initial count
	CLI
	TSCAX
	MOVQ AX, 0(SI)
	MOVL R9, 0x380(R12)
	TSCAX
	MOVQ AX, 8(SI)
	MOVL 0x390(R12), AX
	MOVQ AX, 16(SI)
	TESTL AX, AX
	JEQ osfail
	CMPQ AX, R9
	JHI osfail
	STEP(4) // halt until the interrupt
	HLTCOUNT(R10, oswait, osgot)
	STEP(5) // one interrupt; the current count reads 0 after it
	CMPQ D_COUNT(R11), R10
	JNE osfail
	MOVL 0x390(R12), AX
	MOVQ AX, 24(SI)
	TESTL AX, AX
	JNE osfail
	STEP(6) // one-shot: nothing more in twice the time it took
	MOVQ R10, AX
	DECQ AX
	SHLQ $5, AX
	MOVQ D_LOG(R11)(AX*1), R9
	SUBQ 0(SI), R9
	SHLQ $1, R9
	QUIET(R9, osquiet)
	CMPQ D_COUNT(R11), R10
	JNE osfail
	INCQ BX
	JMP osrun
osdone:
	EXIT(0)
osfail:
	FAILEXIT
	END

// apicTimerPeriodic: the periodic timer (vector 0x41) with divide
// configuration D_PARAMS[0] and initial count D_PARAMS[1], halting until
// D_PARAMS[2] interrupts; then an initial count of 0 stops it, and
// nothing arrives for D_PARAMS[3] TSC ticks. Results: [0] TSC before the
// initial-count write, [1] after it, [2] the current count after the first
// interrupt, [3] TSC at the stop, [4] interrupts taken by then.
TEXT ·apicTimerPeriodic(SB), NOSPLIT|NOFRAME, $0
	PROLOGUE
	STEP(1)
	SWENABLE
	STEP(2) // LVT timer: periodic (mode 01), vector 0x41; reads back
	MOVL $0x20041, 0x320(R12)
	MOVL 0x320(R12), AX
	CMPL AX, $0x20041
	JNE pfail
	MOVQ D_PARAMS(R11), AX
	MOVL AX, 0x3e0(R12)
	MOVQ (D_PARAMS+8)(R11), R9
	MOVQ (D_PARAMS+16)(R11), R10
	STEP(3) // arm
	CLI
	TSCAX
	MOVQ AX, D_RESULTS(R11)
	MOVL R9, 0x380(R12)
	TSCAX
	MOVQ AX, (D_RESULTS+8)(R11)
	STEP(4) // the first tick; the count has reloaded: non-zero, at most the initial count
	HLTCOUNT($1, pwait1, pgot1)
	MOVL 0x390(R12), AX
	MOVQ AX, (D_RESULTS+16)(R11)
	TESTL AX, AX
	JEQ pfail
	CMPQ AX, R9
	JHI pfail
	STEP(5) // halt through the ticks
	HLTCOUNT(R10, pwait2, pgot2)
	STEP(6) // an initial count of 0 stops it: the current count reads 0
	MOVL $0, 0x380(R12)
	TSCAX
	MOVQ AX, (D_RESULTS+24)(R11)
	MOVL 0x390(R12), AX
	TESTL AX, AX
	JNE pfail
	MOVQ D_TSCMS(R11), R9
	QUIET(R9, pdrain) // a tick already in IRR still arrives
	MOVQ D_COUNT(R11), R10
	MOVQ R10, (D_RESULTS+32)(R11)
	STEP(7) // and no tick comes after that
	MOVQ (D_PARAMS+24)(R11), R9
	QUIET(R9, pquiet)
	CMPQ D_COUNT(R11), R10
	JNE pfail
	EXIT(0)
pfail:
	FAILEXIT
	END

// apicTSCDeadline: TSC-deadline mode (vector 0x42, SDM Vol. 3A 11.5.4.1)
// with deadlines D_PARAMS[0] TSC ticks ahead. Results: [0] the first
// deadline, [1] the TSC when a deadline already passed was written.
TEXT ·apicTSCDeadline(SB), NOSPLIT|NOFRAME, $0
	PROLOGUE
	STEP(1) // CPUID.1:ECX.TSC_Deadline[24]
	MOVL $1, AX
	XORL CX, CX
	CPUID
	BTL $24, CX
	JCC tdfail
	STEP(2) // LVT timer: TSC-deadline (mode 10), vector 0x42; reads back
	SWENABLE
	MOVL $0x40042, 0x320(R12)
	MOVL 0x320(R12), AX
	CMPL AX, $0x40042
	JNE tdfail
	STEP(3) // the initial count ignores writes; the current count reads 0
	MOVL $100000, 0x380(R12)
	MOVL 0x380(R12), AX
	TESTL AX, AX
	JNE tdfail
	MOVL 0x390(R12), AX
	TESTL AX, AX
	JNE tdfail
	MOVQ D_PARAMS(R11), R9
	STEP(4) // arm; IA32_TSC_DEADLINE reads the deadline back
	CLI
	TSCAX
	ADDQ R9, AX
	MOVQ AX, D_RESULTS(R11)
	MOVQ AX, R10
	MOVL $0x6e0, CX
	WRMSRQ(R10)
	RDMSRQ
	CMPQ AX, R10
	JNE tdfail
	STEP(5) // halt until it fires
	HLTCOUNT($1, tdwait, tdgot)
	STEP(6) // not before the deadline
	MOVQ D_LOG(R11), AX
	CMPQ AX, R10
	JCS tdfail
	STEP(7) // fired: the MSR reads 0
	MOVL $0x6e0, CX
	RDMSRQ
	TESTQ AX, AX
	JNE tdfail
	STEP(8) // once: nothing more in twice the interval
	MOVQ R9, R10
	SHLQ $1, R10
	QUIET(R10, tdquiet1)
	CMPQ D_COUNT(R11), $1
	JNE tdfail
	STEP(9) // a deadline already passed fires at once
	TSCAX
	MOVQ AX, (D_RESULTS+8)(R11)
	DECQ AX
	MOVQ AX, R10
	MOVL $0x6e0, CX
	WRMSRQ(R10)
	WAITCOUNT($2, tdwait2, tdfail)
	STEP(10) // a write of 0 disarms
	TSCAX
	ADDQ R9, AX
	MOVQ AX, R10
	MOVL $0x6e0, CX
	WRMSRQ(R10)
	XORL AX, AX
	XORL DX, DX
	WRMSR
	MOVQ R9, R10
	SHLQ $1, R10
	QUIET(R10, tdquiet2)
	CMPQ D_COUNT(R11), $2
	JNE tdfail
	STEP(11) // leaving TSC-deadline mode disarms
	TSCAX
	ADDQ R9, AX
	MOVQ AX, R10
	MOVL $0x6e0, CX
	WRMSRQ(R10)
	MOVL $0x42, 0x320(R12)
	MOVL $0x40042, 0x320(R12)
	MOVL $0x6e0, CX
	RDMSRQ
	TESTQ AX, AX
	JNE tdfail
	MOVQ R9, R10
	SHLQ $1, R10
	QUIET(R10, tdquiet3)
	CMPQ D_COUNT(R11), $2
	JNE tdfail
	EXIT(0)
tdfail:
	FAILEXIT
	END

// apicSelfIPI: IPIs to itself through the xAPIC ICR (self shorthand, its
// own physical ID, all-including-self; all-excluding-self reaches nobody),
// then in x2APIC mode through SELF_IPI and the 64-bit ICR (SDM Vol. 3A
// 11.6.1, 11.12.9, 11.12.11). Each arrives exactly once: vectors 0x50,
// 0x52, 0x53, 0x55, 0x56, 0x57 in that order.
TEXT ·apicSelfIPI(SB), NOSPLIT|NOFRAME, $0
	PROLOGUE
	SWENABLE
	STEP(1) // self shorthand with IF clear: waits in IRR (vector 0x50: IRR2 bit 16)
	CLI
	MOVL $0, 0x310(R12)
	SELFIPI(0x50)
	MOVL 0x220(R12), AX
	BTL $16, AX
	JCC sifail
	CMPQ D_COUNT(R11), $0
	JNE sifail
	STEP(2) // STI lets it in
	WAITCOUNT($1, siw1, sifail)
	STEP(3) // the delivery-status bit reads idle; IRR and ISR are clear
	MOVL 0x300(R12), AX
	BTL $12, AX
	JCS sifail
	MOVL 0x220(R12), AX
	BTL $16, AX
	JCS sifail
	MOVL 0x120(R12), AX
	BTL $16, AX
	JCS sifail
	STEP(4) // exactly once
	MOVQ D_TSCMS(R11), R9
	QUIET(R9, siq1)
	CMPQ D_COUNT(R11), $1
	JNE sifail
	STEP(5) // physical destination: its own APIC ID (0)
	MOVL $0, 0x310(R12)
	MOVL $0x52, 0x300(R12)
	WAITCOUNT($2, siw2, sifail)
	STEP(6) // all including self
	MOVL $0x80053, 0x300(R12)
	WAITCOUNT($3, siw3, sifail)
	STEP(7) // all excluding self: nobody else, nothing arrives
	MOVL $0xc0054, 0x300(R12)
	QUIET(R9, siq2)
	CMPQ D_COUNT(R11), $3
	JNE sifail
	STEP(8) // x2APIC mode
	CLI
	X2APICON
	STEP(9) // SELF_IPI
	X2SELFIPI(0x55)
	WAITCOUNT($4, siw4, sifail)
	STEP(10) // the 64-bit ICR, self shorthand
	MOVL $0x830, CX
	MOVL $0x40056, AX
	XORL DX, DX
	WRMSR
	WAITCOUNT($5, siw5, sifail)
	STEP(11) // the 64-bit ICR, physical destination: its x2APIC ID (0)
	MOVL $0x830, CX
	MOVL $0x57, AX
	XORL DX, DX
	WRMSR
	WAITCOUNT($6, siw6, sifail)
	STEP(12) // each exactly once
	QUIET(R9, siq3)
	CMPQ D_COUNT(R11), $6
	JNE sifail
	EXIT(0)
sifail:
	FAILEXIT
	END

// apicTPR: the task priority masks interrupts of its class and below
// until it is lowered (SDM Vol. 3A 11.8.3.1), through the TPR register and
// through CR8, which is TPR[7:4] both ways (11.8.6) and survives the
// root's handling of an exit. Arrival order: 0x65, 0x55, 0x45, 0x75,
// 0x66.
TEXT ·apicTPR(SB), NOSPLIT|NOFRAME, $0
	PROLOGUE
	SWENABLE
	MOVQ D_TSCMS(R11), R9
	STEP(1) // TPR 0x50: PPR follows
	CLI
	MOVL $0x50, 0x80(R12)
	MOVL 0x80(R12), AX
	CMPL AX, $0x50
	JNE tpfail
	MOVL 0xa0(R12), AX
	CMPL AX, $0x50
	JNE tpfail
	STEP(2) // classes 4 and 5 wait in IRR (IRR2 bits 5 and 21)
	SELFIPI(0x45)
	SELFIPI(0x55)
	QUIET(R9, tpq1)
	CMPQ D_COUNT(R11), $0
	JNE tpfail
	MOVL 0x220(R12), AX
	ANDL $0x200020, AX
	CMPL AX, $0x200020
	JNE tpfail
	STEP(3) // class 6 arrives at once
	SELFIPI(0x65)
	WAITCOUNT($1, tpw1, tpfail)
	STEP(4) // TPR 0x40: class 5 arrives, class 4 still waits
	MOVL $0x40, 0x80(R12)
	WAITCOUNT($2, tpw2, tpfail)
	QUIET(R9, tpq2)
	CMPQ D_COUNT(R11), $2
	JNE tpfail
	MOVL 0x220(R12), AX
	BTL $5, AX
	JCC tpfail
	STEP(5) // TPR 0: class 4 arrives
	MOVL $0, 0x80(R12)
	WAITCOUNT($3, tpw3, tpfail)
	STEP(6) // a TPR write through the page shows in CR8 (TPR[7:4])
	MOVL $0x30, 0x80(R12)
	MOVQ CR8, AX
	CMPQ AX, $3
	JNE tpfail
	MOVL $0, 0x80(R12)
	MOVQ CR8, AX
	TESTQ AX, AX
	JNE tpfail
	STEP(7) // MOV to CR8, MOV from CR8
	MOVQ $6, AX
	MOVQ AX, CR8
	MOVQ CR8, AX
	CMPQ AX, $6
	JNE tpfail
	STEP(8) // a LAPIC MSR exit (IA32_TSC_DEADLINE, ignored in one-shot mode) keeps CR8
	MOVL $0x6e0, CX
	XORL AX, AX
	XORL DX, DX
	WRMSR
	MOVQ CR8, AX
	CMPQ AX, $6
	JNE tpfail
	STEP(9) // CR8 is TPR[7:4]: the register reads 0x60
	MOVL 0x80(R12), AX
	CMPL AX, $0x60
	JNE tpfail
	STEP(10) // CR8 6 masks class 6, not class 7
	SELFIPI(0x66)
	SELFIPI(0x75)
	WAITCOUNT($4, tpw4, tpfail)
	QUIET(R9, tpq3)
	CMPQ D_COUNT(R11), $4
	JNE tpfail
	STEP(11) // CR8 0 lets class 6 in
	XORL AX, AX
	MOVQ AX, CR8
	WAITCOUNT($5, tpw5, tpfail)
	STEP(12) // at the end: PPR 0, nothing in service or pending (ISR2-3, IRR2-3)
	MOVL 0xa0(R12), AX
	TESTL AX, AX
	JNE tpfail
	MOVL 0x120(R12), AX
	ORL 0x130(R12), AX
	ORL 0x220(R12), AX
	ORL 0x230(R12), AX
	TESTL AX, AX
	JNE tpfail
	EXIT(0)
tpfail:
	FAILEXIT
	END

// apicEOINesting: vector 0x51's handler (ACT_CHAIN, set by the root)
// sends 0x71, 0x5a and 0x41 to itself and lets them in: only 0x71, of a
// higher class, nests; EOIs retire the highest in-service vector first, so
// 0x5a and then 0x41 follow 0x51's EOI (SDM Vol. 3A 11.8.3-5). The
// handler's snapshots (ACT_SNAP) show ISR and PPR through the page at
// each step; the root reads them from the log.
TEXT ·apicEOINesting(SB), NOSPLIT|NOFRAME, $0
	PROLOGUE
	SWENABLE
	STEP(1) // 0x51 and what it sends: five records
	CLI
	SELFIPI(0x51)
	WAITCOUNT($5, enw1, enfail)
	STEP(2) // nothing more
	MOVQ D_TSCMS(R11), R9
	QUIET(R9, enq1)
	CMPQ D_COUNT(R11), $5
	JNE enfail
	STEP(3) // all retired: ISR2-3, IRR2-3 and PPR read 0
	MOVL 0x120(R12), AX
	ORL 0x130(R12), AX
	ORL 0x220(R12), AX
	ORL 0x230(R12), AX
	ORL 0xa0(R12), AX
	TESTL AX, AX
	JNE enfail
	STEP(4) // an EOI with nothing in service changes nothing
	MOVL $0, 0xb0(R12)
	MOVL 0xa0(R12), AX
	TESTL AX, AX
	JNE enfail
	EXIT(0)
enfail:
	FAILEXIT
	END

// apicX2APIC: CPUID and IA32_APIC_BASE at reset, the mode transitions of
// SDM Vol. 3A 11.12.5 (Figure 11-27) with the illegal ones raising #GP,
// the x2APIC ID, version and LDR MSRs, and the power-up state after
// disabling. It touches the xAPIC page only in xAPIC mode: elsewhere no
// device answers there (apicX2APICPage). Results: [0] the version
// register.
TEXT ·apicX2APIC(SB), NOSPLIT|NOFRAME, $0
	PROLOGUE
	STEP(1) // CPUID.1: EDX.APIC[9], ECX.x2APIC[21], ECX.TSC_Deadline[24], EBX[31:24] = APIC ID 0
	MOVL $1, AX
	XORL CX, CX
	CPUID
	BTL $9, DX
	JCC xfail
	BTL $21, CX
	JCC xfail
	BTL $24, CX
	JCC xfail
	SHRL $24, BX
	TESTL BX, BX
	JNE xfail
	STEP(2) // IA32_APIC_BASE = 0xfee00000 | EN | BSP
	MOVL $0x1b, CX
	RDMSRQ
	MOVL $0xfee00900, R8
	CMPQ AX, R8
	JNE xfail
	STEP(3) // ID register 0; version 0x1X with at least six LVT entries
	MOVL 0x20(R12), AX
	TESTL AX, AX
	JNE xfail
	MOVL 0x30(R12), AX
	MOVQ AX, D_RESULTS(R11)
	MOVL AX, CX
	ANDL $0xf0, CX
	CMPL CX, $0x10
	JNE xfail
	SHRL $16, AX
	ANDL $0xff, AX
	CMPL AX, $5
	JCS xfail
	STEP(4) // an x2APIC MSR in xAPIC mode: #GP
	MOVL $0x802, CX
	EXPECTGP(RDMSR, xfail)
	STEP(5) // EXTD without EN: #GP, and the base is unchanged
	MOVL $0x1b, CX
	MOVL $0xfee00400, AX
	XORL DX, DX
	EXPECTGP(WRMSR, xfail)
	RDMSRQ
	MOVL $0xfee00900, R8
	CMPQ AX, R8
	JNE xfail
	STEP(6) // state to carry over: software enable, TPR 0x20
	SWENABLE
	MOVL $0x20, 0x80(R12)
	STEP(7) // xAPIC to x2APIC
	CLI
	MOVL $0x1b, CX
	MOVL $0xfee00d00, AX
	XORL DX, DX
	WRMSR
	MOVQ $1, D_MODE(R11)
	RDMSRQ
	MOVL $0xfee00d00, R8
	CMPQ AX, R8
	JNE xfail
	STEP(8) // x2APIC ID 0, the same version, LDR cluster 0 bit 0, TPR and SVR kept
	MOVL $0x802, CX
	RDMSRQ
	TESTQ AX, AX
	JNE xfail
	MOVL $0x803, CX
	RDMSRQ
	CMPQ AX, D_RESULTS(R11)
	JNE xfail
	MOVL $0x80d, CX
	RDMSRQ
	CMPQ AX, $1
	JNE xfail
	MOVL $0x808, CX
	RDMSRQ
	CMPQ AX, $0x20
	JNE xfail
	MOVL $0x80f, CX
	RDMSRQ
	CMPQ AX, $0x1ff
	JNE xfail
	STEP(9) // x2APIC to xAPIC directly: #GP
	MOVL $0x1b, CX
	MOVL $0xfee00900, AX
	XORL DX, DX
	EXPECTGP(WRMSR, xfail)
	STEP(10) // x2APIC to EXTD without EN: #GP; still x2APIC
	MOVL $0xfee00500, AX
	XORL DX, DX
	EXPECTGP(WRMSR, xfail)
	RDMSRQ
	MOVL $0xfee00d00, R8
	CMPQ AX, R8
	JNE xfail
	STEP(11) // x2APIC to disabled: legal; the x2APIC MSRs then #GP
	MOVL $0xfee00000, AX
	XORL DX, DX
	WRMSR
	MOVQ $0, D_MODE(R11)
	RDMSRQ
	MOVL $0xfee00100, R8
	CMPQ AX, R8
	JNE xfail
	MOVL $0x802, CX
	EXPECTGP(RDMSR, xfail)
	STEP(12) // CPUID.1:EDX.APIC follows EN
	MOVL $1, AX
	XORL CX, CX
	CPUID
	BTL $9, DX
	JCS xfail
	STEP(13) // disabled to x2APIC directly: #GP
	MOVL $0x1b, CX
	MOVL $0xfee00c00, AX
	XORL DX, DX
	EXPECTGP(WRMSR, xfail)
	STEP(14) // disabled to xAPIC: the page answers, in the power-up state (SVR 0xff, TPR 0)
	MOVL $0xfee00800, AX
	XORL DX, DX
	WRMSR
	MOVL 0x30(R12), AX
	CMPQ AX, D_RESULTS(R11)
	JNE xfail
	MOVL 0x20(R12), AX
	TESTL AX, AX
	JNE xfail
	MOVL 0xf0(R12), AX
	CMPL AX, $0xff
	JNE xfail
	MOVL 0x80(R12), AX
	TESTL AX, AX
	JNE xfail
	EXIT(0)
xfail:
	FAILEXIT
	END

// apicX2APICPage: in x2APIC mode the xAPIC page is not decoded (SDM Vol.
// 3A 11.12.1.2), and nothing else is at 0xfee00000: the read of its
// version register must end the partition. If it returns, the value is
// result 0 and the status 1.
TEXT ·apicX2APICPage(SB), NOSPLIT|NOFRAME, $0
	PROLOGUE
	STEP(1)
	X2APICON
	MOVL 0x30(R12), AX
	MOVQ AX, D_RESULTS(R11)
	EXIT(1)
	END

// apicIOAPIC: I/O APIC pin 4 routed to vector 0x60 (82093AA datasheet
// 3.2), COM1's transmitter-empty interrupt (16550: IER.ETBEI, MCR.OUT2,
// IIR) raising it. Interrupts arrive at steps 6, 8 and 10; a masked pin
// (9), the edge lost while masked (10) and OUT2 clear (11) stop it. Then
// pin 16, level-triggered to vector 0x61 (its handler does not EOI: the
// guest does), which the root asserts on an OUT to port 0xe5 and lowers on
// 0xe6: remote IRR holds it until an EOI, broadcast by the LAPIC (SDM Vol.
// 3A 11.8.5) or, with broadcasts suppressed, written to the I/O APIC's EOI
// register. 0x61 arrives at steps 14, 16, 18 and 19.
TEXT ·apicIOAPIC(SB), NOSPLIT|NOFRAME, $0
	PROLOGUE
	SWENABLE
	MOVQ $IOAPIC_PAGE, R10
	MOVQ D_TSCMS(R11), R9
	STEP(1) // version 0x20, 24 entries (maximum redirection entry 23)
	MOVL $1, 0(R10)
	MOVL 0x10(R10), AX
	ANDL $0xff00ff, AX
	CMPL AX, $0x170020
	JNE iofail
	STEP(2) // entry 4 is masked at reset
	MOVL $0x18, 0(R10)
	MOVL 0x10(R10), AX
	BTL $16, AX
	JCC iofail
	STEP(3) // entry 4: vector 0x60, fixed, physical, edge, active high, unmasked, to APIC 0
	MOVL $0x19, 0(R10)
	MOVL $0, 0x10(R10)
	MOVL $0x18, 0(R10)
	MOVL $0x60, 0x10(R10)
	MOVL 0x10(R10), AX
	CMPL AX, $0x60
	JNE iofail
	STEP(4) // COM1 has no interrupt pending
	MOVW $0x3fa, DX
	INB
	ANDB $0x0f, AL
	CMPB AL, $1
	JNE iofail
	STEP(5) // IER.ETBEI and MCR.OUT2: transmitter empty, IRQ 4, vector 0x60
	MOVW $0x3fc, DX
	MOVB $0x0b, AL
	OUTB
	MOVW $0x3f9, DX
	MOVB $0x02, AL
	OUTB
	STEP(6)
	WAITCOUNT($1, iow1, iofail)
	STEP(7) // IIR says transmitter empty, and reading it cleared that
	MOVW $0x3fa, DX
	INB
	ANDB $0x0f, AL
	CMPB AL, $2
	JNE iofail
	INB
	ANDB $0x0f, AL
	CMPB AL, $1
	JNE iofail
	STEP(8) // a byte written: empty again, a new edge
	PUTC('i')
	WAITCOUNT($2, iow2, iofail)
	STEP(9) // pin masked: the edge is lost
	MOVW $0x3fa, DX
	INB
	MOVL $0x18, 0(R10)
	MOVL $0x10060, 0x10(R10)
	PUTC('r')
	QUIET(R9, ioq1)
	CMPQ D_COUNT(R11), $2
	JNE iofail
	STEP(10) // unmasked: still nothing (an edge is not remembered); the next one arrives
	MOVL $0x60, 0x10(R10)
	QUIET(R9, ioq2)
	CMPQ D_COUNT(R11), $2
	JNE iofail
	MOVW $0x3fa, DX
	INB
	PUTC('q')
	WAITCOUNT($3, iow3, iofail)
	STEP(11) // OUT2 clear: the line stays low
	MOVW $0x3fc, DX
	MOVB $0x03, AL
	OUTB
	MOVW $0x3fa, DX
	INB
	PUTC('4')
	QUIET(R9, ioq3)
	CMPQ D_COUNT(R11), $3
	JNE iofail
	STEP(12) // interrupts off again
	MOVW $0x3f9, DX
	MOVB $0, AL
	OUTB
	PUTC('\n')
	STEP(13) // entry 16: vector 0x61, level-triggered, unmasked; remote IRR clear
	MOVL $0x31, 0(R10)
	MOVL $0, 0x10(R10)
	MOVL $0x30, 0(R10)
	MOVL $0x8061, 0x10(R10)
	MOVL 0x10(R10), AX
	CMPL AX, $0x8061
	JNE iofail
	STEP(14) // the root asserts pin 16: 0x61 arrives, level in TMR (TMR3 bit 1), remote IRR set
	MOVW $0xe5, DX
	OUTB
	WAITCOUNT($4, iow4, iofail)
	MOVL 0x1b0(R12), AX
	BTL $1, AX
	JCC iofail
	MOVL 0x10(R10), AX
	CMPL AX, $0xc061
	JNE iofail
	STEP(15) // still asserted, no EOI yet: nothing more
	QUIET(R9, ioq4)
	CMPQ D_COUNT(R11), $4
	JNE iofail
	STEP(16) // the LAPIC's EOI reaches the I/O APIC: remote IRR clears and the asserted line sends again
	MOVL $0, 0xb0(R12)
	WAITCOUNT($5, iow5, iofail)
	STEP(17) // the root lowers the line; an EOI then leaves remote IRR clear and nothing pending
	MOVW $0xe6, DX
	OUTB
	MOVL $0, 0xb0(R12)
	QUIET(R9, ioq5)
	CMPQ D_COUNT(R11), $5
	JNE iofail
	MOVL 0x10(R10), AX
	CMPL AX, $0x8061
	JNE iofail
	STEP(18) // EOI broadcast suppressed (SVR bit 12): the LAPIC's EOI leaves remote IRR set
	MOVL 0x30(R12), AX
	BTL $24, AX
	JCC iofail
	MOVL $0x11ff, 0xf0(R12)
	MOVW $0xe5, DX
	OUTB
	WAITCOUNT($6, iow6, iofail)
	MOVL $0, 0xb0(R12)
	QUIET(R9, ioq6)
	CMPQ D_COUNT(R11), $6
	JNE iofail
	MOVL 0x10(R10), AX
	CMPL AX, $0xc061
	JNE iofail
	STEP(19) // the I/O APIC's EOI register takes the directed EOI: sent again
	MOVL $0x61, 0x40(R10)
	WAITCOUNT($7, iow7, iofail)
	STEP(20) // lowered, both EOIs: remote IRR clear, nothing more
	MOVW $0xe6, DX
	OUTB
	MOVL $0, 0xb0(R12)
	MOVL $0x61, 0x40(R10)
	QUIET(R9, ioq7)
	CMPQ D_COUNT(R11), $7
	JNE iofail
	MOVL 0x10(R10), AX
	CMPL AX, $0x8061
	JNE iofail
	MOVL $0x18061, 0x10(R10)
	EXIT(0)
iofail:
	FAILEXIT
	END

// apicTimerStorm: a periodic timer of one tick at divide by 1 (vector
// 0x40) while the guest spins with interrupts enabled, never exiting: the
// root must rate-limit it and stop the partition.
TEXT ·apicTimerStorm(SB), NOSPLIT|NOFRAME, $0
	PROLOGUE
	SWENABLE
	STEP(1)
	MOVL $0x0b, 0x3e0(R12)
	MOVL $0x20040, 0x320(R12)
	MOVL $1, 0x380(R12)
	STI
tsspin:
	INCQ AX
	JMP tsspin
	END

// apicIPIFlood: D_PARAMS[0] self-IPIs of vector 0x50 through the xAPIC ICR
// with IF clear, then as many of 0x51 through x2APIC SELF_IPI: each batch
// leaves one IRR bit and arrives once. Then as many of 0x52 with IF set,
// each taken and EOI'd before the next: 2 + D_PARAMS[0] interrupts.
TEXT ·apicIPIFlood(SB), NOSPLIT|NOFRAME, $0
	PROLOGUE
	SWENABLE
	MOVQ D_PARAMS(R11), R9
	STEP(1) // ICR flood, IF clear: one IRR bit, one interrupt
	CLI
	MOVQ R9, BX
ifl1:
	SELFIPI(0x50)
	DECQ BX
	JNE ifl1
	WAITCOUNT($1, ifw1, iffail)
	MOVQ D_TSCMS(R11), R10
	QUIET(R10, ifq1)
	CMPQ D_COUNT(R11), $1
	JNE iffail
	STEP(2) // SELF_IPI flood, IF clear: one interrupt
	X2APICON
	MOVQ R9, BX
ifl2:
	X2SELFIPI(0x51)
	DECQ BX
	JNE ifl2
	WAITCOUNT($2, ifw2, iffail)
	QUIET(R10, ifq2)
	CMPQ D_COUNT(R11), $2
	JNE iffail
	STEP(3) // SELF_IPI flood, IF set: each one taken
	MOVQ R9, BX
	STI
ifl3:
	X2SELFIPI(0x52)
	DECQ BX
	JNE ifl3
	MOVQ R9, BX
	ADDQ $2, BX
	WAITCOUNT(BX, ifw3, iffail)
	QUIET(R10, ifq3)
	CMPQ D_COUNT(R11), BX
	JNE iffail
	EXIT(0)
iffail:
	FAILEXIT
	END

// apicNoEOI: the root sets ACT_NOEOI for every vector. Self-IPIs of
// vectors 0x21, 0x31, ... 0xf1 with interrupts enabled each nest above the
// last, never retired: ISR then holds one vector per class 2-15 and PPR is
// 0xf0. 0x25 and 0xf5 stay in IRR. Then the guest halts with interrupts
// enabled and only those blocked vectors pending, for the root to stop.
TEXT ·apicNoEOI(SB), NOSPLIT|NOFRAME, $0
	PROLOGUE
	SWENABLE
	STEP(1) // fourteen nested interrupts
	MOVQ $0x21, BX
	STI
nel1:
	MOVL BX, AX
	ORL $0x40000, AX
	MOVL AX, 0x300(R12)
	ADDQ $0x10, BX
	CMPQ BX, $0x100
	JCS nel1
	WAITCOUNT($14, new1, nefail)
	STEP(2) // PPR 0xf0; ISR words 1-7 each hold bits 1 and 17
	MOVL 0xa0(R12), AX
	CMPL AX, $0xf0
	JNE nefail
	MOVQ $0x110, BX
nel2:
	MOVL 0(R12)(BX*1), AX
	CMPL AX, $0x20002
	JNE nefail
	ADDQ $0x10, BX
	CMPQ BX, $0x180
	JCS nel2
	STEP(3) // lower classes, and class 15 itself, wait: IRR1 bit 5, IRR7 bit 21
	SELFIPI(0x25)
	SELFIPI(0xf5)
	MOVQ D_TSCMS(R11), R9
	QUIET(R9, neq1)
	CMPQ D_COUNT(R11), $14
	JNE nefail
	MOVL 0x210(R12), AX
	BTL $5, AX
	JCC nefail
	MOVL 0x270(R12), AX
	BTL $21, AX
	JCC nefail
	STEP(4) // halt with only blocked vectors pending: the root stops it
	STI
nehalt:
	HLT
	MOVQ $5, D_STEP(R11)
	JMP nehalt
nefail:
	FAILEXIT
	END

// apicBaseInRAM: IA32_APIC_BASE moved onto a page of its own RAM
// (RAM_PAGE). RAM wins: stores there land in RAM and read back, the LAPIC
// does not see them; moved back, the page at 0xfee00000 is the LAPIC's
// again with its registers unchanged. Moved onto the I/O APIC's page, the
// LAPIC wins there for its VP; moved away, the I/O APIC answers again.
// Results: [0] the version read through the page on the I/O APIC's.
TEXT ·apicBaseInRAM(SB), NOSPLIT|NOFRAME, $0
	PROLOGUE
	SWENABLE
	MOVQ $RAM_PAGE, R10
	STEP(1) // the move itself is legal
	MOVL $0x1b, CX
	MOVL $(RAM_PAGE|0x900), AX
	XORL DX, DX
	MOVQ $2, R14
	XORQ R15, R15
	WRMSR
	TESTQ R15, R15
	JNE brfail
	RDMSRQ
	CMPQ AX, $(RAM_PAGE|0x900)
	JNE brfail
	STEP(2) // the TPR and version offsets hold what was stored
	MOVL $0xab, 0x80(R10)
	MOVL $0xdeadbeef, 0x30(R10)
	MOVL 0x80(R10), AX
	CMPL AX, $0xab
	JNE brfail
	MOVL 0x30(R10), AX
	CMPL AX, $0xdeadbeef
	JNE brfail
	STEP(3) // moved back: the LAPIC's version, TPR still 0, SVR as set
	MOVL $0xfee00900, AX
	XORL DX, DX
	WRMSR
	MOVL 0x80(R12), AX
	TESTL AX, AX
	JNE brfail
	MOVL 0x30(R12), AX
	CMPL AX, $0xdeadbeef
	JEQ brfail
	ANDL $0xf0, AX
	CMPL AX, $0x10
	JNE brfail
	MOVL 0xf0(R12), AX
	CMPL AX, $0x1ff
	JNE brfail
	STEP(4) // and RAM kept its bytes
	MOVL 0x80(R10), AX
	CMPL AX, $0xab
	JNE brfail
	STEP(5) // onto the I/O APIC's page: the LAPIC answers there (version, TPR)
	MOVQ $IOAPIC_PAGE, R10
	MOVL $(IOAPIC_PAGE|0x900), AX
	XORL DX, DX
	WRMSR
	MOVL 0x30(R10), AX
	MOVQ AX, D_RESULTS(R11)
	ANDL $0xf0, AX
	CMPL AX, $0x10
	JNE brfail
	MOVL $0x30, 0x80(R10)
	MOVL 0x80(R10), AX
	CMPL AX, $0x30
	JNE brfail
	STEP(6) // moved back: TPR as written there; the I/O APIC answers again
	MOVL $0xfee00900, AX
	XORL DX, DX
	WRMSR
	MOVL 0x80(R12), AX
	CMPL AX, $0x30
	JNE brfail
	MOVL $0, 0x80(R12)
	MOVL $1, 0(R10)
	MOVL 0x10(R10), AX
	ANDL $0xff00ff, AX
	CMPL AX, $0x170020
	JNE brfail
	EXIT(0)
brfail:
	FAILEXIT
	END

// apicReservedBits: in x2APIC mode, each case of the table at D_TABLE
// (D_PARAMS[0] cases of {MSR, value, 1 for WRMSR or 0 for RDMSR}) must
// raise #GP (SDM Vol. 3A 11.12.1.2-3); case i failing is step 100+i.
// Afterwards TPR, SVR and the LVT timer are as before and ESR is clean.
TEXT ·apicReservedBits(SB), NOSPLIT|NOFRAME, $0
	PROLOGUE
	SWENABLE
	STEP(1)
	CLI
	X2APICON
	MOVQ $(APIC_DATA+D_TABLE), SI
	XORQ BX, BX
rbloop:
	CMPQ BX, D_PARAMS(R11)
	JCC rbdone
	MOVQ BX, AX
	ADDQ $100, AX
	MOVQ AX, D_STEP(R11)
	MOVQ 0(SI), CX
	MOVQ 8(SI), AX
	MOVQ AX, DX
	SHRQ $32, DX
	CMPQ 16(SI), $0
	JEQ rbread
	EXPECTGP(WRMSR, rbfail)
	JMP rbnext
rbread:
	EXPECTGP(RDMSR, rbfail)
rbnext:
	ADDQ $24, SI
	INCQ BX
	JMP rbloop
rbdone:
	STEP(2) // nothing changed: TPR 0, SVR 0x1ff, LVT timer masked, ESR clean
	MOVL $0x808, CX
	RDMSRQ
	TESTQ AX, AX
	JNE rbfail
	MOVL $0x80f, CX
	RDMSRQ
	CMPQ AX, $0x1ff
	JNE rbfail
	MOVL $0x832, CX
	RDMSRQ
	CMPQ AX, $0x10000
	JNE rbfail
	MOVL $0x828, CX
	XORL AX, AX
	XORL DX, DX
	WRMSR
	RDMSRQ
	TESTQ AX, AX
	JNE rbfail
	EXIT(0)
rbfail:
	FAILEXIT
	END

// apicIllegalVector: vectors 0-15 are never delivered; each use sets an
// ESR bit (SDM Vol. 3A 11.5.3) and raises the error interrupt (LVT error,
// vector 0x4e) once: a self-IPI of vector 5 (send and receive illegal),
// the timer with vector 7 (receive illegal), a read of an offset with no
// register (illegal register address), x2APIC SELF_IPI of vector 9. A
// 1-byte write to TPR is dropped.
TEXT ·apicIllegalVector(SB), NOSPLIT|NOFRAME, $0
	PROLOGUE
	SWENABLE
	MOVQ D_TSCMS(R11), R9
	STEP(1) // LVT error: vector 0x4e; ESR starts clean
	MOVL $0x4e, 0x370(R12)
	MOVL 0x370(R12), AX
	CMPL AX, $0x4e
	JNE ivfail
	MOVL $0, 0x280(R12)
	MOVL 0x280(R12), AX
	TESTL AX, AX
	JNE ivfail
	STEP(2) // self-IPI of vector 5: not in IRR; ESR send and receive illegal
	CLI
	SELFIPI(5)
	MOVL 0x200(R12), AX
	TESTL AX, AX
	JNE ivfail
	MOVL $0, 0x280(R12)
	MOVL 0x280(R12), AX
	CMPL AX, $0x60
	JNE ivfail
	STEP(3) // one error interrupt
	WAITCOUNT($1, ivw1, ivfail)
	QUIET(R9, ivq1)
	CMPQ D_COUNT(R11), $1
	JNE ivfail
	STEP(4) // the timer with vector 7: receive illegal, a second error interrupt
	MOVL $0x07, 0x320(R12)
	MOVL $1000, 0x380(R12)
	WAITCOUNT($2, ivw2, ivfail)
	QUIET(R9, ivq2)
	CMPQ D_COUNT(R11), $2
	JNE ivfail
	MOVL $0, 0x280(R12)
	MOVL 0x280(R12), AX
	CMPL AX, $0x40
	JNE ivfail
	STEP(5) // an offset with no register reads 0: illegal register address
	MOVL 0x40(R12), AX
	TESTL AX, AX
	JNE ivfail
	WAITCOUNT($3, ivw3, ivfail)
	MOVL $0, 0x280(R12)
	MOVL 0x280(R12), AX
	CMPL AX, $0x80
	JNE ivfail
	STEP(6) // a 1-byte write to TPR is dropped
	MOVB $0x70, 0x80(R12)
	MOVL 0x80(R12), AX
	TESTL AX, AX
	JNE ivfail
	STEP(7) // x2APIC SELF_IPI of vector 9: send and receive illegal
	CLI
	X2APICON
	X2SELFIPI(9)
	WAITCOUNT($4, ivw4, ivfail)
	MOVL $0x828, CX
	XORL AX, AX
	XORL DX, DX
	WRMSR
	RDMSRQ
	CMPQ AX, $0x60
	JNE ivfail
	STEP(8) // nothing more
	QUIET(R9, ivq3)
	CMPQ D_COUNT(R11), $4
	JNE ivfail
	EXIT(0)
ivfail:
	FAILEXIT
	END

// apicBench: D_PARAMS[0] iterations of one interrupt kind, D_PARAMS[1]:
// 1 xAPIC ICR self-IPI, 2 x2APIC SELF_IPI (vector 0x50 both), 3 a
// TSC-deadline D_PARAMS[2] ticks ahead (vector 0x42) while halted, 4 the
// same while spinning. Each iteration stores three TSCs at D_BENCH+24i:
// the trigger (the ICR or MSR write; the deadline), the handler's entry
// (from the log) and the return to the interrupted code.
TEXT ·apicBench(SB), NOSPLIT|NOFRAME, $0
	PROLOGUE
	SWENABLE
	MOVQ D_PARAMS(R11), BX
	MOVQ (D_PARAMS+8)(R11), R10
	MOVQ $(APIC_DATA+D_BENCH), SI
	STEP(1)
	CMPQ R10, $2
	JNE bnox2
	CLI
	X2APICON
bnox2:
	CMPQ R10, $3
	JCS bloop
	MOVL $0x40042, 0x320(R12)
bloop:
	STEP(2)
	MOVQ $0, D_COUNT(R11)
	CMPQ R10, $1
	JEQ bicr
	CMPQ R10, $2
	JEQ bself
	CLI
	TSCAX
	ADDQ (D_PARAMS+16)(R11), AX
	MOVQ AX, 0(SI)
	MOVQ AX, R9
	MOVL $0x6e0, CX
	WRMSRQ(R9)
	CMPQ R10, $3
	JNE bspin
	HLTCOUNT($1, bhw, bhg)
	TSCAX
	JMP bstore
bspin:
	STI
bsw:
	CMPQ D_COUNT(R11), $0
	JEQ bsw
	TSCAX
	JMP bstore
bicr:
	STI
	TSCAX
	MOVQ AX, 0(SI)
	SELFIPI(0x50)
	TSCAX
	JMP bstore
bself:
	STI
	MOVL $0x83f, CX
	TSCAX
	MOVQ AX, 0(SI)
	MOVL $0x50, AX
	XORL DX, DX
	WRMSR
	TSCAX
bstore:
	CLI
	MOVQ AX, 16(SI)
	STEP(3) // exactly one interrupt
	CMPQ D_COUNT(R11), $1
	JNE bfail
	MOVQ D_LOG(R11), AX
	MOVQ AX, 8(SI)
	ADDQ $24, SI
	DECQ BX
	JNE bloop
	EXIT(0)
bfail:
	FAILEXIT
	END

// apicHold: self-IPIs, vector 0x58 through the xAPIC ICR and 0x59
// through x2APIC SELF_IPI, whose handler (ACT_HOLD, set by the root)
// keeps interrupts disabled for 8 ms of TSC, without an exit, before its
// EOI. Each arrives once, not nested: a vector delivered again inside its
// own handler, with IF clear, is a hypervisor (or emulator) that injected
// an interrupt twice.
TEXT ·apicHold(SB), NOSPLIT|NOFRAME, $0
	PROLOGUE
	SWENABLE
	STEP(1) // the xAPIC self-IPI, let in by STI
	CLI
	SELFIPI(0x58)
	WAITCOUNT($1, hdw1, hdfail)
	STEP(2) // once: nothing more in the next millisecond
	MOVQ D_TSCMS(R11), R9
	QUIET(R9, hdq1)
	CMPQ D_COUNT(R11), $1
	JNE hdfail
	STEP(3) // x2APIC SELF_IPI
	X2APICON
	X2SELFIPI(0x59)
	WAITCOUNT($2, hdw2, hdfail)
	STEP(4) // once
	QUIET(R9, hdq2)
	CMPQ D_COUNT(R11), $2
	JNE hdfail
	EXIT(0)
hdfail:
	FAILEXIT
	END

// apicBlobAddrs stores the blobs' addresses (their ABI0 entry points) in
// APICProgram order.
TEXT ·apicBlobAddrs(SB), NOSPLIT, $0-8
	MOVQ p+0(FP), DI
	MOVQ $·apicHandler(SB), AX
	MOVQ AX, 0(DI)
	MOVQ $·apicTimerOneShot(SB), AX
	MOVQ AX, 8(DI)
	MOVQ $·apicTimerPeriodic(SB), AX
	MOVQ AX, 16(DI)
	MOVQ $·apicTSCDeadline(SB), AX
	MOVQ AX, 24(DI)
	MOVQ $·apicSelfIPI(SB), AX
	MOVQ AX, 32(DI)
	MOVQ $·apicTPR(SB), AX
	MOVQ AX, 40(DI)
	MOVQ $·apicEOINesting(SB), AX
	MOVQ AX, 48(DI)
	MOVQ $·apicX2APIC(SB), AX
	MOVQ AX, 56(DI)
	MOVQ $·apicIOAPIC(SB), AX
	MOVQ AX, 64(DI)
	MOVQ $·apicTimerStorm(SB), AX
	MOVQ AX, 72(DI)
	MOVQ $·apicIPIFlood(SB), AX
	MOVQ AX, 80(DI)
	MOVQ $·apicNoEOI(SB), AX
	MOVQ AX, 88(DI)
	MOVQ $·apicBaseInRAM(SB), AX
	MOVQ AX, 96(DI)
	MOVQ $·apicReservedBits(SB), AX
	MOVQ AX, 104(DI)
	MOVQ $·apicIllegalVector(SB), AX
	MOVQ AX, 112(DI)
	MOVQ $·apicBench(SB), AX
	MOVQ AX, 120(DI)
	MOVQ $·apicX2APICPage(SB), AX
	MOVQ AX, 128(DI)
	MOVQ $·apicHold(SB), AX
	MOVQ AX, 136(DI)
	MOVQ $·apicSMPHostile(SB), AX
	MOVQ AX, 144(DI)
	MOVQ $·apicSMPAP(SB), AX
	MOVQ AX, 152(DI)
	MOVQ $·apicSMPEntry(SB), AX
	MOVQ AX, 160(DI)
	RET

// apicText copies a blob from its entry point up to and including its end
// marker (found by its first four bytes: UD2, 'G', 'o') into dst and
// returns the length, or 0 when no marker is within APIC_BLOB_LIMIT bytes.
// It reads nothing past the marker, so it is safe on any blob in the text.
TEXT ·apicText(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ from+8(FP), SI
	XORQ CX, CX
atscan:
	CMPQ CX, $(APIC_BLOB_LIMIT-9)
	JHI atnone
	CMPL (SI)(CX*1), $0x6f470b0f
	JEQ atfound
	MOVB (SI)(CX*1), AX
	MOVB AX, (DI)(CX*1)
	INCQ CX
	JMP atscan
atfound:
	MOVQ CX, DX
	ADDQ $9, DX
atcopy:
	MOVB (SI)(CX*1), AX
	MOVB AX, (DI)(CX*1)
	INCQ CX
	CMPQ CX, DX
	JCS atcopy
	MOVQ CX, n+16(FP)
	RET
atnone:
	MOVQ $0, n+16(FP)
	RET
