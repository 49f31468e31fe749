#include "textflag.h"

// The hostile SMP guest (smp.go): a BSP program, an application
// processor's program and the 64-bit entry both reach from the 16-bit
// trampoline, in the APIC guests' environment (apic_amd64.s: the shared
// handler, the data page, STEP, EXIT, FAILEXIT, QUIET). In modes 0 and
// 1 only VP 0 takes interrupts (the AP runs with IF clear), so the
// handler's log is VP 0's; in mode 2 both take them, strictly by turns
// (a ping, then its pong), so the handler's count and log are never
// written by both at once.
// TestAPICLayoutMatchesAssembly keeps the numbers below equal to smp.go's
// and apic.go's constants.

#define END BYTE $0x0F; BYTE $0x0B; BYTE $'G'; BYTE $'o'; BYTE $'H'; BYTE $'v'; BYTE $'E'; BYTE $'n'; BYTE $'D'

#define APIC_DATA 0x200000
#define D_COUNT 0x08
#define D_STEP 0x18
#define D_TSCHZ 0x28
#define D_TSCMS 0x30
#define D_PARAMS 0x600
#define D_RESULTS 0x800
#define LAPIC_PAGE 0xfee00000

// The SMP area of the data page (smp.go).
#define S_ENTRIES 0x900
#define S_CMD 0x940
#define S_ACK 0x948
#define S_SENT 0x950
#define S_HEART 0x958
#define S_APSTEP 0x960
#define S_GO 0x968
#define SMP_RESETS 0xe0f0
#define SMP_STACK_TOP 0x80000
#define SMP_STACK_SHIFT 14
#define SMP_CODE 0x100000
#define SMP_AP_CODE 0x110000
#define STORM_VECTOR 0x50

// Mode 2 (ping-pong and flush): its parameters, the flush rounds' area
// of the data page, the per-round TSC deltas' area, the IPI vectors and
// the page tables of the test address TV_VA (PDPT[4] of Load's tables
// -> TV_PD -> TV_PT -> TV_A or TV_B), and the Hyper-V pages it uses
// (hyperv.go's).
#define P_ROUNDS 0x668
#define P_FLUSHES 0x670
#define S_FCMD 0x970
#define S_FSEEN 0x978
#define S_FACK 0x980
#define S_IDLE0 0x988
#define S_IDLE1 0x990
#define MSR_GUEST_IDLE 0x400000f0
#define D_BENCH 0x40000
#define PING_VECTOR 0x58
#define PONG_VECTOR 0x59
#define TV_PDPTE 0x5020
#define TV_PD 0x390000
#define TV_PT 0x391000
#define TV_A 0x392000
#define TV_B 0x393000
#define TV_VA 0x100000000
#define HV_HCPAGE 0x380000
#define HV_INPUT 0x385000
#define HV_GUESTID 0x8100000601000000
#define MSR_GUEST_OS_ID 0x40000000
#define MSR_HYPERCALL 0x40000001

// The AP's commands (S_CMD; the AP echoes each in S_ACK once done).
#define CMD_STORM1 1
#define CMD_STORM2 2
#define CMD_INITBSP 3
#define CMD_HALT 4
#define CMD_PINGPONG 5
#define CMD_FLUSHWATCH 6
#define CMD_IDLE 7

#define EXIT(status) MOVL $status, AX; MOVW $0xf4, DX; OUTL; HLT
#define FAILEXIT MOVQ D_STEP(R11), AX; MOVW $0xf4, DX; OUTL; HLT
#define STEP(n) MOVQ $n, D_STEP(R11)
#define TSCAX RDTSC; SHLQ $32, DX; ORQ DX, AX
#define SWENABLE MOVL $0x1ff, 0xf0(R12)
// STAMP(slot): the TSC in result slot slot (the partitions share the
// TSC, so the root can place a bystander's late tick in a phase).
#define STAMP(slot) TSCAX; MOVQ AX, (D_RESULTS+8*slot)(R11)
#define RES(i) (D_RESULTS+8*(i))(R11)

#define QUIET(ticks, lbl) TSCAX; MOVQ ticks, R8; ADDQ AX, R8; STI; lbl: PAUSE; TSCAX; CMPQ AX, R8; JCS lbl; CLI

// ICR writes (SDM Vol. 3A 11.6.1): the destination's APIC ID in ICR
// bits 63:56, then the low word sends. INIT: delivery mode 101, level
// assert; start-up: mode 110 with the page number as vector.
#define ICRDEST(id) MOVL $(id<<24), 0x310(R12)
#define SENDINIT MOVL $0x4500, 0x300(R12)
#define SENDSIPI(reg) MOVL reg, AX; ORL $0x4600, AX; MOVL AX, 0x300(R12)

// WAITACK(n, lbl, done, fail): wait until the AP has done command n,
// failing after four seconds of TSC (the VPs may share one host CPU).
// WAITFACK(lbl, done, fail): wait until the AP has answered flush round
// R13, failing after four seconds of TSC.
#define WAITFACK(lbl, done, fail) TSCAX; MOVQ D_TSCHZ(R11), R8; SHLQ $2, R8; ADDQ AX, R8; lbl: CMPQ S_FACK(R11), R13; JEQ done; PAUSE; TSCAX; CMPQ AX, R8; JCS lbl; JMP fail; done:

// HLTFOR(count, lbl, done): halt until the shared handler's count
// (D_COUNT) reaches count. Ends with interrupts disabled.
#define HLTFOR(count, lbl, done) CLI; lbl: CMPQ D_COUNT(R11), count; JCC done; STI; HLT; CLI; JMP lbl; done:

// PONGED(slot, lbl, done): after round R13's ping sent at TSC R14, halt
// until its pong (R15, the handler's count, grows by two a round), store
// the round trip's ticks at R10[R13] and count the round in result slot.
#define PONGED(slot, lbl, done) ADDQ $2, R15; HLTFOR(R15, lbl, done); TSCAX; SUBQ R14, AX; MOVQ AX, (R10)(R13*8); INCQ R13; MOVQ R13, RES(slot)

// HVUP: HV_X64_MSR_GUEST_OS_ID, then the hypercall page at HV_HCPAGE
// (hyperv_amd64.s's order); HVCALL calls through it (RCX the input
// value, RDX the input, R8 the output; RAX the result).
#define WRMSRR(msr, reg) MOVL $msr, CX; MOVQ reg, AX; MOVQ reg, DX; SHRQ $32, DX; WRMSR
#define HVUP MOVQ $HV_GUESTID, R9; WRMSRR(MSR_GUEST_OS_ID, R9); MOVQ $(HV_HCPAGE|1), R9; WRMSRR(MSR_HYPERCALL, R9)
#define HVCALL MOVQ $HV_HCPAGE, AX; CALL AX

#define WAITACK(n, lbl, done, fail) TSCAX; MOVQ D_TSCHZ(R11), R8; SHLQ $2, R8; ADDQ AX, R8; lbl: CMPQ S_ACK(R11), $n; JEQ done; PAUSE; TSCAX; CMPQ AX, R8; JCS lbl; JMP fail; done:

// RESETSTATE(id, svr, base, resets, fail): after an INIT the LAPIC has
// its INIT state (SDM Vol. 3A 11.4.7.3): its ID kept, SVR 0xff
// (software-disabled); IA32_APIC_BASE as before, the default page with EN
// and BSP (11.4.4; an INIT leaves it); and the VP came through the reset
// vector (the reset-vector code counts at SMP_RESETS). The values go to
// the four result slots.
#define RESETSTATE(id, svr, base, resets, fail) MOVL 0x20(R12), AX; MOVQ AX, (D_RESULTS+8*id)(R11); TESTL AX, AX; JNE fail; MOVL 0xf0(R12), AX; MOVQ AX, (D_RESULTS+8*svr)(R11); CMPL AX, $0xff; JNE fail; MOVL $0x1b, CX; RDMSR; SHLQ $32, DX; ORQ DX, AX; MOVQ AX, (D_RESULTS+8*base)(R11); MOVL $0xfee00900, CX; CMPQ AX, CX; JNE fail; MOVQ $SMP_RESETS, AX; MOVWQZX (AX), AX; MOVQ AX, (D_RESULTS+8*resets)(R11)

// apicSMPEntry is where every VP of the hostile SMP guest arrives in
// 64-bit mode from the trampoline (after a SIPI, or from the reset vector
// after an INIT to the BSP): flat data segments, its own stack (16 KiB
// per APIC ID below SMP_STACK_TOP), one more entry counted at
// S_ENTRIES[id], then VP 0 goes to apicSMPHostile and the others to
// apicSMPAP. The ID is CPUID.1:EBX[31:24], the VP's initial APIC ID.
TEXT ·apicSMPEntry(SB), NOSPLIT|NOFRAME, $0
	MOVL $0x10, AX
	MOVW AX, DS
	MOVW AX, ES
	MOVW AX, SS
	MOVW AX, FS
	MOVW AX, GS
	MOVL $1, AX
	XORL CX, CX
	CPUID
	SHRL $24, BX
	MOVQ BX, CX
	SHLQ $SMP_STACK_SHIFT, CX
	MOVQ $SMP_STACK_TOP, SP
	SUBQ CX, SP
	MOVQ $APIC_DATA, R11
	INCQ S_ENTRIES(R11)(BX*8)
	TESTQ BX, BX
	JNE entap
	MOVQ $SMP_CODE, AX
	JMP AX
entap:
	MOVQ $SMP_AP_CODE, AX
	JMP AX
	END

// apicSMPHostile is VP 0. D_PARAMS: [0] mode (0 the hostile sequence, 1
// only start the AP at a bad page), [1] the SIPI vector the AP starts
// at, [2] the IPIs in each of the AP's storms, [3] the baseline spin in
// TSC ticks, [4] how many absent APIC IDs follow, [5...] those IDs. S_ENTRIES[0] says which start this is: 0 the
// first (long mode from the loader), 1 after its INIT to itself, 2 after
// the AP's INIT.
//
// Mode 0, first start:
//
//	1  software-enable the LAPIC
//	2  INIT, SIPI, SIPI to APIC ID 1: the AP enters once (the second
//	   SIPI finds it running and is ignored, SDM Vol. 3A 9.4.4)
//	3  INIT and SIPI to each absent ID, a SIPI to the running AP and an
//	   INIT with the self shorthand (invalid, Table 11-3): ESR stays 0
//	   (send-accept errors are P6 and Pentium only, 11.5.3) and for
//	   10 ms nothing enters the trampoline
//	4  wait for the root's go (S_GO), then a baseline: iterations of a
//	   spin with IF clear for D_PARAMS[3] ticks
//	5  the AP storms vector 0x50 at VP 0 while VP 0 spins with IF
//	   clear: one interrupt arrives after STI (IRR holds a bit per
//	   vector, 11.8.4)
//	6  a second storm while VP 0 spins with IF set: it takes at least
//	   one interrupt and at most as many as were sent
//	7  INIT to its own APIC ID (never returns: the BSP restarts at the
//	   reset vector, 9.1)
//
// After its INIT to itself:
//
//	8  the LAPIC's INIT state, one pass through the reset vector; the AP
//	   still runs (its heartbeat moves) and was not restarted
//	9  a SIPI to itself: ignored (the BSP is never in wait-for-SIPI)
//	10 the AP sends it an INIT (never returns)
//
// After the AP's INIT:
//
//	11 the LAPIC's INIT state again, a second pass through the reset
//	   vector; the AP finishes its command and was never restarted
//	12 the AP halts; power off with status 0.
//
// Mode 2 (ping-pong and flush), after steps 1 and 2:
//
//	30 GUEST_OS_ID and the hypercall page
//	31 D_PARAMS[13] (P_ROUNDS) IPI round trips: a fixed IPI of
//	   PING_VECTOR to the AP through the ICR, then halt until the AP's
//	   PONG_VECTOR has come (the shared handler's count); the AP halts
//	   between pings
//	32 as many again with the ping sent by HvCallSendSyntheticClusterIpi
//	   (fast, ProcessorMask 2); the result must be 0
//	33 map TV_VA to page A (round 1's value, 1) and have the AP read
//	   TV_VA in a loop without exits, answering each round S_FCMD with
//	   the value it read after it saw the round (S_FSEEN, S_FACK): 1
//	34 the control: remap to page B (2) without a flush and record what
//	   the AP read (result [3]: 2 if it saw the new page anyway, 1 if its
//	   TLB kept the old one), then flush the AP and INVLPG
//	35 D_PARAMS[14] (P_FLUSHES) rounds k = 3, 4, ...: write k to the page
//	   not mapped, remap TV_VA to it and flush with round k's variant
//	   (k mod 4: 0 Space, all address spaces, the AP; 1 List of TV_VA,
//	   the AP; 2 Space, HV_FLUSH_ALL_PROCESSORS; 3 List, all processors).
//	   The call must succeed (List: one rep done); when it named only
//	   the AP this VP INVLPGs; then both VPs must read k at TV_VA. The
//	   AP's loop runs with IF clear in the first half of the rounds and
//	   with IF set in the second: a flush must reach it either way
//	36 the AP leaves its loop
//	37 HV_X64_MSR_GUEST_IDLE (Linux's PV spinlock wait): the AP, IF
//	   clear, sends itself PING_VECTOR and reads GUEST_IDLE, which must
//	   return at once, takes the vector, then records its TSC (S_IDLE0)
//	   and reads it again; 10 ms after S_IDLE0 appears this VP records
//	   its TSC (result [7]) and sends the AP PING_VECTOR; the AP's read
//	   must have returned no earlier (S_IDLE1, result [9]; [8] S_IDLE0)
//	39 the AP halts; power off with status 0.
//
// Mode 2's results: [0] ICR round trips done, [1] hypercall ones, [2]
// flush rounds done (from step 35), [3] the control round's read, [4]
// the last hypercall's RAX, [5] the AP's last read, [6] this VP's last
// read of TV_VA, [7]-[9] step 37's TSCs: the IPI, the AP's idle read
// and its return. The TSC ticks of each round trip and of each flush call
// are at D_BENCH: P_ROUNDS by ICR, P_ROUNDS by hypercall, P_FLUSHES calls.
//
// Mode 1: 20 INIT and SIPI to APIC ID 1 at the page D_PARAMS[1]; 21 wait
// two seconds for the partition to end (the AP's first fetch ends it),
// and fail with 22 if it did not.
//
// Results: [0] baseline iterations, [1] iterations under the IF-clear
// storm, [2] its IPIs, [3] interrupts after it, [4] iterations under the
// IF-set storm, [5] its IPIs, [6] interrupts during it, [7] ESR after the
// absent IDs, [8]-[11] ID, SVR, IA32_APIC_BASE and reset-vector passes
// after the first INIT, [12]-[15] the same after the second, [16] and
// [17] the AP's heartbeat before the first INIT and after it; TSCs: [18]
// the baseline's start, [19] and [20] the first storm's command and its
// end, [21] and [22] the second's, [23] the INIT to itself, [24] the
// command for the AP's INIT, [25] the end.
TEXT ·apicSMPHostile(SB), NOSPLIT|NOFRAME, $0
	MOVQ $APIC_DATA, R11
	MOVQ $LAPIC_PAGE, R12
	MOVQ S_ENTRIES(R11), AX
	TESTQ AX, AX
	JEQ shboot
	CMPQ AX, $1
	JEQ shself
	CMPQ AX, $2
	JEQ shbyap
	STEP(90) // restarted a third time
	FAILEXIT

shboot:
	MOVQ SI, 0x20(R11) // D_LAPICHZ
	MOVQ DI, D_TSCHZ(R11)
	MOVQ DI, AX
	XORL DX, DX
	MOVQ $1000, CX
	DIVQ CX
	MOVQ AX, D_TSCMS(R11)
	STEP(1)
	SWENABLE
	CMPQ D_PARAMS(R11), $1
	JEQ shbadstart

	STEP(2)
	ICRDEST(1)
	SENDINIT
	MOVQ (D_PARAMS+8)(R11), R9
	SENDSIPI(R9)
	SENDSIPI(R9)
	TSCAX
	MOVQ D_TSCHZ(R11), R8
	SHLQ $2, R8
	ADDQ AX, R8
shapup:
	CMPQ S_APSTEP(R11), $1
	JEQ shapon
	PAUSE
	TSCAX
	CMPQ AX, R8
	JCS shapup
	JMP shfail
shapon:
	CMPQ (S_ENTRIES+8)(R11), $1
	JNE shfail
	CMPQ D_PARAMS(R11), $2
	JEQ pfstart

	STEP(3)
	MOVQ (D_PARAMS+32)(R11), CX
	LEAQ (D_PARAMS+40)(R11), SI
shabsent:
	TESTQ CX, CX
	JEQ shabsentdone
	MOVQ (SI), AX
	SHLL $24, AX
	MOVL AX, 0x310(R12)
	SENDINIT
	SENDSIPI(R9)
	ADDQ $8, SI
	DECQ CX
	JMP shabsent
shabsentdone:
	ICRDEST(1)
	SENDSIPI(R9)
	MOVL $0x44500, 0x300(R12) // INIT with the self shorthand: invalid, not sent
	MOVL $0, 0x280(R12)
	MOVL 0x280(R12), AX
	MOVQ AX, (D_RESULTS+56)(R11)
	TESTL AX, AX
	JNE shfail
	MOVQ D_TSCMS(R11), R10
	IMULQ $10, R10
	QUIET(R10, shq3)
	CMPQ S_ENTRIES(R11), $0
	JNE shfail
	CMPQ (S_ENTRIES+8)(R11), $1
	JNE shfail
	MOVQ $2, CX
shotherids:
	CMPQ S_ENTRIES(R11)(CX*8), $0
	JNE shfail
	INCQ CX
	CMPQ CX, $8
	JCS shotherids

	STEP(4)
	TSCAX
	MOVQ D_TSCHZ(R11), R8
	SHLQ $4, R8
	ADDQ AX, R8
shgo:
	CMPQ S_GO(R11), $0
	JNE shgone
	PAUSE
	TSCAX
	CMPQ AX, R8
	JCS shgo
	JMP shfail
shgone:
	XORQ R9, R9
	TSCAX
	MOVQ AX, (D_RESULTS+144)(R11)
	MOVQ (D_PARAMS+24)(R11), R8
	ADDQ AX, R8
shbase:
	INCQ R9
	TSCAX
	CMPQ AX, R8
	JCS shbase
	MOVQ R9, D_RESULTS(R11)

	STEP(5)
	MOVQ D_COUNT(R11), R10
	STAMP(19)
	MOVQ $CMD_STORM1, S_CMD(R11)
	XORQ R9, R9
	TSCAX
	MOVQ D_TSCHZ(R11), R8
	SHLQ $2, R8
	ADDQ AX, R8
shstorm1:
	INCQ R9
	CMPQ S_ACK(R11), $CMD_STORM1
	JEQ shstorm1done
	TSCAX
	CMPQ AX, R8
	JCS shstorm1
	JMP shfail
shstorm1done:
	STAMP(20)
	MOVQ R9, (D_RESULTS+8)(R11)
	MOVQ S_SENT(R11), AX
	MOVQ AX, (D_RESULTS+16)(R11)
	MOVQ D_TSCMS(R11), R9
	QUIET(R9, shdrain1)
	MOVQ D_COUNT(R11), AX
	SUBQ R10, AX
	MOVQ AX, (D_RESULTS+24)(R11)
	CMPQ AX, $1
	JNE shfail

	STEP(6)
	MOVQ D_COUNT(R11), R10
	STAMP(21)
	MOVQ $CMD_STORM2, S_CMD(R11)
	XORQ R9, R9
	TSCAX
	MOVQ D_TSCHZ(R11), R8
	SHLQ $2, R8
	ADDQ AX, R8
	STI
shstorm2:
	INCQ R9
	CMPQ S_ACK(R11), $CMD_STORM2
	JEQ shstorm2done
	TSCAX
	CMPQ AX, R8
	JCS shstorm2
	CLI
	JMP shfail
shstorm2done:
	CLI
	STAMP(22)
	MOVQ R9, (D_RESULTS+32)(R11)
	MOVQ S_SENT(R11), AX
	MOVQ AX, (D_RESULTS+40)(R11)
	MOVQ D_TSCMS(R11), R9
	QUIET(R9, shdrain2)
	MOVQ D_COUNT(R11), AX
	SUBQ R10, AX
	MOVQ AX, (D_RESULTS+48)(R11)
	TESTQ AX, AX
	JEQ shfail
	CMPQ AX, (D_RESULTS+40)(R11)
	JHI shfail

	STEP(7)
	MOVQ S_HEART(R11), AX
	MOVQ AX, (D_RESULTS+128)(R11)
	STAMP(23)
	ICRDEST(0)
	SENDINIT
	STEP(70) // the INIT did not restart this VP
	FAILEXIT

shself:
	STEP(8)
	RESETSTATE(8, 9, 10, 11, shfail)
	CMPQ AX, $1
	JNE shfail
	CMPQ (S_ENTRIES+8)(R11), $1
	JNE shfail
	MOVQ (D_RESULTS+128)(R11), R9
	TSCAX
	MOVQ D_TSCHZ(R11), R8
	SHLQ $2, R8
	ADDQ AX, R8
shbeat:
	MOVQ S_HEART(R11), AX
	CMPQ AX, R9
	JHI shbeating
	PAUSE
	TSCAX
	CMPQ AX, R8
	JCS shbeat
	JMP shfail
shbeating:
	MOVQ AX, (D_RESULTS+136)(R11)

	STEP(9)
	SWENABLE
	ICRDEST(0)
	MOVQ $0x0e, R9
	SENDSIPI(R9)
	MOVQ D_TSCMS(R11), R10
	IMULQ $10, R10
	QUIET(R10, shq9)
	CMPQ S_ENTRIES(R11), $1
	JNE shfail

	STEP(10)
	STAMP(24)
	MOVQ $CMD_INITBSP, S_CMD(R11)
	TSCAX
	MOVQ D_TSCHZ(R11), R8
	SHLQ $2, R8
	ADDQ AX, R8
shwaitinit:
	PAUSE
	TSCAX
	CMPQ AX, R8
	JCS shwaitinit
	JMP shfail

shbyap:
	CMPQ D_STEP(R11), $10
	JEQ shbyapok
	STEP(71) // restarted before the AP was asked to INIT it
	FAILEXIT
shbyapok:
	STEP(11)
	RESETSTATE(12, 13, 14, 15, shfail)
	CMPQ AX, $2
	JNE shfail
	SWENABLE
	WAITACK(CMD_INITBSP, shack3, shacked3, shfail)
	CMPQ (S_ENTRIES+8)(R11), $1
	JNE shfail

	STEP(12)
	MOVQ $CMD_HALT, S_CMD(R11)
	WAITACK(CMD_HALT, shack4, shacked4, shfail)
	STAMP(25)
	EXIT(0)

pfstart:
	STEP(30)
	HVUP

	STEP(31)
	MOVQ D_COUNT(R11), R15
	MOVQ $CMD_PINGPONG, S_CMD(R11)
	MOVQ $(APIC_DATA+D_BENCH), R10
	XORQ R13, R13
	ICRDEST(1)
pficr:
	CMPQ R13, P_ROUNDS(R11)
	JCC pficrdone
	TSCAX
	MOVQ AX, R14
	MOVL $PING_VECTOR, 0x300(R12)
	PONGED(0, pficrh, pficrgot)
	JMP pficr
pficrdone:

	STEP(32)
	MOVQ P_ROUNDS(R11), AX
	LEAQ (R10)(AX*8), R10
	XORQ R13, R13
pfhc:
	CMPQ R13, P_ROUNDS(R11)
	JCC pfhcdone
	TSCAX
	MOVQ AX, R14
	MOVQ $0x1000b, CX // HvCallSendSyntheticClusterIpi, fast
	MOVQ $PING_VECTOR, DX
	MOVQ $2, R8 // ProcessorMask: VP 1
	HVCALL
	MOVQ AX, RES(4)
	TESTQ AX, AX
	JNE pffail
	PONGED(1, pfhch, pfhcgot)
	JMP pfhc
pfhcdone:
	WAITACK(CMD_PINGPONG, pfack1, pfacked1, pffail)

	STEP(33)
	MOVQ $TV_A, BX
	MOVQ $1, 0(BX)
	MOVQ $TV_PT, BX
	MOVQ $(TV_A|3), 0(BX)
	MOVQ $TV_PD, BX
	MOVQ $(TV_PT|3), 0(BX)
	MOVQ $TV_PDPTE, BX
	MOVQ $(TV_PD|3), 0(BX)
	MOVQ $TV_VA, R15
	MOVQ $CMD_FLUSHWATCH, S_CMD(R11)
	MOVQ $1, R13
	MOVQ R13, S_FCMD(R11)
	WAITFACK(pfw1, pfw1ok, pffail)
	MOVQ S_FSEEN(R11), AX
	MOVQ AX, RES(5)
	CMPQ AX, $1
	JNE pffail
	MOVQ (R15), AX
	MOVQ AX, RES(6)
	CMPQ AX, $1
	JNE pffail

	STEP(34)
	MOVQ $2, R13
	MOVQ $TV_B, BX
	MOVQ R13, 0(BX)
	MOVQ $TV_PT, BX
	MOVQ $(TV_B|3), 0(BX)
	MOVQ R13, S_FCMD(R11)
	WAITFACK(pfw2, pfw2ok, pffail)
	MOVQ S_FSEEN(R11), AX
	MOVQ AX, RES(3)
	MOVQ $HV_INPUT, BX
	MOVQ $0, 0(BX)
	MOVQ $2, 8(BX) // HV_FLUSH_ALL_VIRTUAL_ADDRESS_SPACES
	MOVQ $2, 16(BX)
	MOVQ $2, CX // HvCallFlushVirtualAddressSpace
	MOVQ $HV_INPUT, DX
	XORL R8, R8
	HVCALL
	MOVQ AX, RES(4)
	TESTQ AX, AX
	JNE pffail
	INVLPG (R15)

	STEP(35)
	MOVQ P_ROUNDS(R11), AX
	SHLQ $4, AX
	MOVQ $(APIC_DATA+D_BENCH), R10
	ADDQ AX, R10
	MOVQ $3, R13
pfround:
	MOVQ P_FLUSHES(R11), AX
	ADDQ $3, AX
	CMPQ R13, AX
	JCC pfrounds
	MOVQ (R15), AX
	MOVQ AX, RES(6)
	LEAQ -1(R13), CX
	CMPQ AX, CX
	JNE pffail
	MOVQ $TV_B, BX
	TESTQ $1, R13
	JEQ pfpage
	MOVQ $TV_A, BX
pfpage:
	MOVQ R13, 0(BX)
	ORQ $3, BX
	MOVQ $TV_PT, CX
	MOVQ BX, 0(CX)
	MOVQ R13, R9
	ANDQ $3, R9
	MOVQ $HV_INPUT, BX
	MOVQ CR3, AX
	MOVQ AX, 0(BX)
	MOVQ $0, 8(BX)
	MOVQ $2, 16(BX)
	MOVQ R15, 24(BX)
	CMPQ R9, $2
	JCS pfmask
	MOVQ $1, 8(BX) // HV_FLUSH_ALL_PROCESSORS
	MOVQ $0, 16(BX)
pfmask:
	TESTQ R9, R9
	JNE pfflags
	ORQ $2, 8(BX)
pfflags:
	TSCAX
	MOVQ AX, R14
	MOVQ $2, CX // HvCallFlushVirtualAddressSpace
	TESTQ $1, R9
	JEQ pfcode
	MOVQ $0x100000003, CX // HvCallFlushVirtualAddressList, one rep
pfcode:
	MOVQ $HV_INPUT, DX
	XORL R8, R8
	HVCALL
	MOVQ AX, RES(4)
	TSCAX
	SUBQ R14, AX
	MOVQ AX, -24(R10)(R13*8)
	XORQ CX, CX
	TESTQ $1, R9
	JEQ pfwant
	MOVQ $0x100000000, CX
pfwant:
	CMPQ RES(4), CX
	JNE pffail
	CMPQ R9, $2
	JCC pfself
	INVLPG (R15)
pfself:
	MOVQ (R15), AX
	MOVQ AX, RES(6)
	CMPQ AX, R13
	JNE pffail
	MOVQ R13, S_FCMD(R11)
	WAITFACK(pfwr, pfwrok, pffail)
	MOVQ S_FSEEN(R11), AX
	MOVQ AX, RES(5)
	CMPQ AX, R13
	JNE pffail
	LEAQ -2(R13), AX
	MOVQ AX, RES(2)
	INCQ R13
	JMP pfround
pfrounds:

	STEP(36)
	MOVQ $-1, S_FCMD(R11)
	WAITACK(CMD_FLUSHWATCH, pfack2, pfacked2, pffail)

	STEP(37)
	MOVQ $CMD_IDLE, S_CMD(R11)
	TSCAX
	MOVQ D_TSCHZ(R11), R8
	SHLQ $2, R8
	ADDQ AX, R8
pfidling:
	CMPQ S_IDLE0(R11), $0
	JNE pfidle
	PAUSE
	TSCAX
	CMPQ AX, R8
	JCS pfidling
	JMP pffail
pfidle:
	MOVQ D_TSCMS(R11), R9
	IMULQ $10, R9
	TSCAX
	ADDQ AX, R9
pfidlewait:
	PAUSE
	TSCAX
	CMPQ AX, R9
	JCS pfidlewait
	TSCAX
	MOVQ AX, RES(7)
	ICRDEST(1)
	MOVL $PING_VECTOR, 0x300(R12)
	WAITACK(CMD_IDLE, pfack4, pfacked4, pffail)
	MOVQ S_IDLE0(R11), AX
	MOVQ AX, RES(8)
	MOVQ S_IDLE1(R11), AX
	MOVQ AX, RES(9)
	CMPQ AX, RES(7)
	JCS pffail

	STEP(39)
	MOVQ $CMD_HALT, S_CMD(R11)
	WAITACK(CMD_HALT, pfack3, pfacked3, pffail)
	EXIT(0)
pffail:
	FAILEXIT

shbadstart:
	STEP(20)
	ICRDEST(1)
	SENDINIT
	MOVQ (D_PARAMS+8)(R11), R9
	SENDSIPI(R9)
	STEP(21)
	TSCAX
	MOVQ D_TSCHZ(R11), R8
	SHLQ $1, R8
	ADDQ AX, R8
shbadwait:
	PAUSE
	TSCAX
	CMPQ AX, R8
	JCS shbadwait
	STEP(22)
shfail:
	FAILEXIT
	END

// apicSMPAP is the application processor (APIC ID 1), entered with IF
// clear and kept so outside CMD_PINGPONG. It counts S_HEART while it waits for a command in
// S_CMD and echoes each one in S_ACK once done: CMD_STORM1 and CMD_STORM2
// send D_PARAMS[2] fixed IPIs of STORM_VECTOR to APIC ID 0 as fast as it
// can, giving up after four seconds of TSC (the count sent in S_SENT
// before the echo), CMD_INITBSP
// sends APIC ID 0 an INIT, CMD_HALT halts with IF clear for good.
// CMD_PINGPONG answers 2*P_ROUNDS pings: with IF set it halts until the
// handler has taken the next one, then sends PONG_VECTOR to APIC ID 0.
// CMD_FLUSHWATCH reads S_FCMD and then TV_VA in a loop without exits;
// when S_FCMD changes it stores what it read in S_FSEEN and the round in
// S_FACK; S_FCMD = -1 ends it. CMD_IDLE is step 37's part (above).
// Once it has answered round
// 2+P_FLUSHES/2 it sets IF (nothing is sent to it): the first half of
// the flush rounds find it with IF clear, the second with IF set.
TEXT ·apicSMPAP(SB), NOSPLIT|NOFRAME, $0
	MOVQ $LAPIC_PAGE, R12
	SWENABLE
	MOVQ $1, S_APSTEP(R11)
apidle:
	INCQ S_HEART(R11)
	MOVQ S_CMD(R11), AX
	CMPQ AX, S_ACK(R11)
	JEQ apwait
	CMPQ AX, $CMD_STORM1
	JEQ apstorm
	CMPQ AX, $CMD_STORM2
	JEQ apstorm
	CMPQ AX, $CMD_INITBSP
	JEQ apinit
	CMPQ AX, $CMD_HALT
	JEQ aphalt
	CMPQ AX, $CMD_PINGPONG
	JEQ appingpong
	CMPQ AX, $CMD_FLUSHWATCH
	JEQ apflushwatch
	CMPQ AX, $CMD_IDLE
	JEQ apguestidle
	MOVQ AX, S_ACK(R11) // an unknown command: nothing to do
apwait:
	PAUSE
	JMP apidle

apstorm:
	MOVQ AX, BX
	ICRDEST(0)
	XORQ R9, R9
	TSCAX
	MOVQ D_TSCHZ(R11), R8
	SHLQ $2, R8
	ADDQ AX, R8
apflood:
	CMPQ R9, (D_PARAMS+16)(R11)
	JCC apflooded
	MOVL $STORM_VECTOR, 0x300(R12)
	INCQ R9
	TSCAX
	CMPQ AX, R8
	JCS apflood
apflooded:
	MOVQ R9, S_SENT(R11)
	MOVQ BX, S_ACK(R11)
	JMP apidle

apinit:
	ICRDEST(0)
	SENDINIT
	MOVQ $CMD_INITBSP, S_ACK(R11)
	JMP apidle

appingpong:
	MOVQ AX, BX
	MOVQ D_COUNT(R11), R9
	INCQ R9
	MOVQ P_ROUNDS(R11), R10
	SHLQ $1, R10
	ICRDEST(0)
appwait:
	TESTQ R10, R10
	JEQ appdone
	CLI
	CMPQ D_COUNT(R11), R9
	JCC appgot
	STI
	HLT
	JMP appwait
appgot:
	MOVL $PONG_VECTOR, 0x300(R12)
	ADDQ $2, R9
	DECQ R10
	JMP appwait
appdone:
	CLI
	MOVQ BX, S_ACK(R11)
	JMP apidle

apflushwatch:
	MOVQ AX, BX
	MOVQ $TV_VA, R8
	XORQ R9, R9
apfw:
	MOVQ S_FCMD(R11), AX
	MOVQ (R8), CX
	CMPQ AX, R9
	JEQ apfwnext
	CMPQ AX, $-1
	JEQ apfwdone
	MOVQ CX, S_FSEEN(R11)
	MOVQ AX, S_FACK(R11)
	MOVQ AX, R9
	MOVQ P_FLUSHES(R11), CX
	SHRQ $1, CX
	ADDQ $2, CX
	CMPQ R9, CX
	JNE apfwnext
	STI // the second half of the flush rounds
apfwnext:
	INCQ S_HEART(R11)
	PAUSE
	JMP apfw
apfwdone:
	CLI
	MOVQ BX, S_ACK(R11)
	JMP apidle

apguestidle:
	MOVQ AX, BX
	MOVQ D_COUNT(R11), R9
	MOVL $(0x40000|PING_VECTOR), 0x300(R12) // a self-IPI: in IRR, IF clear
	MOVL $MSR_GUEST_IDLE, CX
	RDMSR // returns at once: a vector is requested
	INCQ R9
	STI
apgi1:
	CMPQ D_COUNT(R11), R9
	JCS apgi1
	CLI
	TSCAX
	MOVQ AX, S_IDLE0(R11)
	MOVL $MSR_GUEST_IDLE, CX
	RDMSR // idles until VP 0's IPI
	TSCAX
	MOVQ AX, S_IDLE1(R11)
	INCQ R9
	STI
apgi2:
	CMPQ D_COUNT(R11), R9
	JCS apgi2
	CLI
	MOVQ BX, S_ACK(R11)
	JMP apidle

aphalt:
	MOVQ $CMD_HALT, S_ACK(R11)
aphlt:
	CLI
	HLT
	JMP aphlt
	END
