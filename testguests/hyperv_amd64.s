#include "textflag.h"

// Hyper-V test guests: 64-bit code run in child partitions (never in the
// host) that does what a Hyper-V guest does (TLFS; Linux 6.1's
// arch/x86/hyperv and drivers/hv as the model of the order): read the
// hypervisor's CPUID leaves, identify itself, enable the hypercall page and
// call through it, place its SynIC pages, post messages and signal events to
// the root's ports, run synthetic timers, read the reference time, report a
// crash. A third blob table beside blobs_amd64.s and apic_amd64.s, with the
// same conventions: position independent, each blob ends with END, and a
// guest reports through the debug-exit port (0xf4): 0 when every step
// passed, else the number of the step that failed (100+i for case i of a
// table). The #GP and #UD handlers of Load's environment set R15 to the
// vector and resume R14 bytes past the faulting instruction (the #GP one
// clobbers R13), so a guest tests "this faults" in line.
//
// The guests run in the APIC guests' environment (LoadAPIC): every vector
// from 16 up reaches apicHandler, which logs it in the data page and EOIs
// it through the xAPIC page, so a SINT's or a direct timer's interrupt is
// in the log with the guest's TSC at the handler. hyperv.go describes the
// pages below and the parameters and results of each guest;
// TestHyperVLayoutMatchesAssembly keeps these numbers equal to its
// constants and to hv/tlfs.
//
// Registers: R11 the data page, R12 the LAPIC page; the macros use AX, CX,
// DX, R8 and R9 as scratch. At entry RSI holds the LAPIC timer's rate and
// RDI the TSC's (the root's), saved in the data page by PROLOGUE.

#define END BYTE $0x0F; BYTE $0x0B; BYTE $'G'; BYTE $'o'; BYTE $'H'; BYTE $'v'; BYTE $'E'; BYTE $'n'; BYTE $'D'
#define VMCALL BYTE $0x0F; BYTE $0x01; BYTE $0xC1
#define VMMCALL BYTE $0x0F; BYTE $0x01; BYTE $0xD9

// The data page (apic.go, shared with the APIC guests).
#define APIC_DATA 0x200000
#define D_COUNT 0x08
#define D_STEP 0x18
#define D_LAPICHZ 0x20
#define D_TSCHZ 0x28
#define D_TSCMS 0x30
#define D_PARAMS 0x600
#define D_RESULTS 0x800
#define D_LOG 0x1000
#define D_TABLE 0x30000
#define D_BENCH 0x40000
#define LAPIC_PAGE 0xfee00000
#define IOAPIC_PAGE 0xfec00000

// The guest's Hyper-V pages (hyperv.go).
#define HV_HCPAGE 0x380000
#define HV_SIM 0x381000
#define HV_SIEF 0x382000
#define HV_REFTSC 0x383000
#define HV_REFTSC2 0x384000
#define HV_INPUT 0x385000
#define HV_ASSIST 0x387000
#define HV_OUTSIDE 0x10000000
#define HV_GUESTID 0x8100000601000000
#define SINT2_VECTOR 0xf3
#define SINT3_VECTOR 0x53
#define STIMER_VECTOR 0xed
#define STORM_VECTOR 0x55

// CPUID 0x40000003 bits a guest needs (TLFS "Partition Privilege Flags",
// "Feature Flags"): EAX ref counter, SynIC, synthetic timers, hypercall
// MSRs, VP index, reference TSC, frequency MSRs; EBX PostMessages and
// SignalEvents; EDX frequency MSRs, crash MSRs, direct timers. HV_DENY_EBX
// are the bits a child must not see: AccessPartitionId (Linux BUG()s when
// HvCallGetPartitionId fails), CpuManagement (the root partition),
// Isolation.
#define HV_NEED_EAX 0xa6e
#define HV_NEED_EBX 0x30
#define HV_NEED_EDX 0x80500
#define HV_DENY_EBX 0x401002

// Synthetic MSRs (TLFS Appendix "Hypervisor Synthetic MSRs").
#define MSR_GUEST_OS_ID 0x40000000
#define MSR_HYPERCALL 0x40000001
#define MSR_VP_INDEX 0x40000002
#define MSR_VP_RUNTIME 0x40000010
#define MSR_TIME_REF_COUNT 0x40000020
#define MSR_REFERENCE_TSC 0x40000021
#define MSR_TSC_FREQUENCY 0x40000022
#define MSR_APIC_FREQUENCY 0x40000023
#define MSR_VP_ASSIST_PAGE 0x40000073
#define MSR_SCONTROL 0x40000080
#define MSR_SVERSION 0x40000081
#define MSR_SIEFP 0x40000082
#define MSR_SIMP 0x40000083
#define MSR_EOM 0x40000084
#define MSR_SINT2 0x40000092
#define MSR_SINT3 0x40000093
#define MSR_STIMER0_CONFIG 0x400000b0
#define MSR_STIMER0_COUNT 0x400000b1
#define MSR_CRASH_P0 0x40000100
#define MSR_CRASH_CTL 0x40000105

#define EXIT(status) MOVL $status, AX; MOVW $0xf4, DX; OUTL; HLT
#define FAILEXIT MOVQ D_STEP(R11), AX; MOVW $0xf4, DX; OUTL; HLT
#define STEP(n) MOVQ $n, D_STEP(R11)
#define PARAM(i) (D_PARAMS+8*(i))(R11)
#define RES(i) (D_RESULTS+8*(i))(R11)

// TSCAX: RAX = the TSC (clobbers RDX).
#define TSCAX RDTSC; SHLQ $32, DX; ORQ DX, AX

// PROLOGUE: data and LAPIC page pointers; the clock rates saved, and the
// TSC ticks in a millisecond.
#define PROLOGUE MOVQ $APIC_DATA, R11; MOVQ $LAPIC_PAGE, R12; MOVQ SI, D_LAPICHZ(R11); MOVQ DI, D_TSCHZ(R11); MOVQ DI, AX; XORL DX, DX; MOVQ $1000, CX; DIVQ CX; MOVQ AX, D_TSCMS(R11)

// SWENABLE: LAPIC software enable, spurious vector 0xff.
#define SWENABLE MOVL $0x1ff, 0xf0(R12)

// RDMSRI(msr): RAX = the MSR, 64 bits (clobbers CX, DX).
#define RDMSRI(msr) MOVL $msr, CX; RDMSR; SHLQ $32, DX; ORQ DX, AX

// WRMSRR(msr, reg): the MSR = reg, 64 bits (clobbers AX, CX, DX; reg is
// none of them).
#define WRMSRR(msr, reg) MOVL $msr, CX; MOVQ reg, AX; MOVQ reg, DX; SHRQ $32, DX; WRMSR

// EXPECTGP(insn, fail): insn (RDMSR or WRMSR: 2 bytes) must raise #GP.
#define EXPECTGP(insn, fail) MOVQ $2, R14; XORQ R15, R15; insn; CMPQ R15, $13; JNE fail

// HVCALL: the hypercall through the hypercall page, as Linux's
// hv_do_hypercall: RCX the input value, RDX the input (GPA or fast
// value), R8 the output; RAX the result.
#define HVCALL MOVQ $HV_HCPAGE, AX; CALL AX

// HC(ctl, in): HVCALL with RCX = ctl (an immediate), RDX = in, R8 = 0.
#define HC(ctl, in) MOVQ $ctl, CX; MOVQ in, DX; XORL R8, R8; HVCALL

// WANT(v, fail): RAX (the whole result: status, no reps) must be v.
#define WANT(v, fail) CMPQ AX, $v; JNE fail

// HVUP: HV_X64_MSR_GUEST_OS_ID (a Linux 6.1 value), then the hypercall
// page enabled at HV_HCPAGE (Linux's hyperv_init order).
#define HVUP MOVQ $HV_GUESTID, R9; WRMSRR(MSR_GUEST_OS_ID, R9); MOVQ $(HV_HCPAGE|1), R9; WRMSRR(MSR_HYPERCALL, R9)

// SYNICUP: the SynIC as Linux's hv_synic_enable_regs enables it, each a
// read-modify-write keeping the RsvdP bits: SIMP, SIEFP, SINT2 (vector
// 0xf3, unmasked, no AutoEOI: 0x40000004.EAX bit 9 is set), SCONTROL.
#define SYNICUP RDMSRI(MSR_SIMP); ANDQ $0xffe, AX; ORQ $(HV_SIM|1), AX; MOVQ AX, R9; WRMSRR(MSR_SIMP, R9); RDMSRI(MSR_SIEFP); ANDQ $0xffe, AX; ORQ $(HV_SIEF|1), AX; MOVQ AX, R9; WRMSRR(MSR_SIEFP, R9); RDMSRI(MSR_SINT2); MOVQ $0xfffffffffff8ff00, R9; ANDQ AX, R9; ORQ $SINT2_VECTOR, R9; WRMSRR(MSR_SINT2, R9); RDMSRI(MSR_SCONTROL); ORQ $1, AX; MOVQ AX, R9; WRMSRR(MSR_SCONTROL, R9)

// SINTMASK(msr) and SINTUNMASK(msr): set or clear a SINT's Masked bit.
#define SINTMASK(msr) RDMSRI(msr); ORQ $0x10000, AX; MOVQ AX, R9; WRMSRR(msr, R9)
#define SINTUNMASK(msr) RDMSRI(msr); ANDQ $~0x10000, AX; MOVQ AX, R9; WRMSRR(msr, R9)

// CONSUME(slot, lbl): empty a message slot as Linux's vmbus_signal_eom
// does: the type to HvMessageTypeNone, then EOM if MessagePending was set.
// Clobbers AX, CX, DX, R9.
#define CONSUME(slot, lbl) MOVL 0(slot), AX; XORL CX, CX; LOCK; CMPXCHGL CX, 0(slot); MOVBLZX 5(slot), R9; TESTL $1, R9; JEQ lbl; XORL AX, AX; XORL DX, DX; MOVL $MSR_EOM, CX; WRMSR; lbl:

// HLTUNTIL(slot, lbl, got): halt until the message slot holds a message;
// ends with interrupts disabled and RAX its type.
#define HLTUNTIL(slot, lbl, got) lbl: CLI; MOVL 0(slot), AX; TESTL AX, AX; JNE got; STI; HLT; JMP lbl; got:

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

// ZEROPAGE(page, lbl, fail): every qword of the page is 0 (clobbers BX, CX).
#define ZEROPAGE(page, lbl, fail) MOVQ $page, BX; MOVQ $512, CX; lbl: CMPQ -8(BX)(CX*8), $0; JNE fail; DECQ CX; JNE lbl

// REFNOW(page, out, lbl): out = the reference time the reference TSC page
// gives now, ((TSC * TscScale) >> 64) + TscOffset, read as Linux's
// hv_read_tsc_page does: again while TscSequence changes under it.
// Clobbers AX, DX, R10.
#define REFNOW(page, out, lbl) lbl: MOVL 0(page), R10; TSCAX; MULQ 8(page); ADDQ 16(page), DX; CMPL 0(page), R10; JNE lbl; MOVQ DX, out

// hvDiscovery: what a guest reads and sets first (Linux's
// ms_hyperv_platform and hyperv_init). Results: [0] 0x40000000.EAX,
// [1..3] 0x40000003.EAX, EBX, EDX, [4] 0x40000004.EAX, [5] its EBX, [6] 1
// on Intel, [7] the hypercall page's first dword, [8] NotifyLongSpinWait's
// result, [9] an unknown fast code's, [10] an unknown slow code's, [11]
// VP_INDEX, [12] TSC_FREQUENCY, [13] APIC_FREQUENCY, [14] HYPERCALL after
// the lock.
TEXT ·hvDiscovery(SB), NOSPLIT|NOFRAME, $0
	PROLOGUE
	STEP(1) // CPUID 0x40000000: "Microsoft Hv", the highest leaf at least 0x40000005
	MOVL $0x40000000, AX
	XORL CX, CX
	CPUID
	MOVQ AX, RES(0)
	CMPL AX, $0x40000005
	JCS dfail
	CMPL BX, $0x7263694d
	JNE dfail
	CMPL CX, $0x666f736f
	JNE dfail
	CMPL DX, $0x76482074
	JNE dfail
	STEP(2) // 0x40000001: "Hv#1"
	MOVL $0x40000001, AX
	XORL CX, CX
	CPUID
	CMPL AX, $0x31237648
	JNE dfail
	STEP(3) // 0x40000003.EAX: the privileges a guest needs
	MOVL $0x40000003, AX
	XORL CX, CX
	CPUID
	MOVQ AX, RES(1)
	MOVQ BX, RES(2)
	MOVQ DX, RES(3)
	MOVL AX, R9
	ANDL $HV_NEED_EAX, R9
	CMPL R9, $HV_NEED_EAX
	JNE dfail
	STEP(4) // EBX: PostMessages, SignalEvents
	MOVL BX, R9
	ANDL $HV_NEED_EBX, R9
	CMPL R9, $HV_NEED_EBX
	JNE dfail
	STEP(5) // EBX: not AccessPartitionId, CpuManagement, Isolation
	TESTL $HV_DENY_EBX, BX
	JNE dfail
	STEP(6) // EDX: frequency MSRs, crash MSRs, direct synthetic timers
	MOVL DX, R9
	ANDL $HV_NEED_EDX, R9
	CMPL R9, $HV_NEED_EDX
	JNE dfail
	STEP(7) // 0x40000004.EAX bit 9: AutoEOI deprecated, the guest EOIs
	MOVL $0x40000004, AX
	XORL CX, CX
	CPUID
	MOVQ AX, RES(4)
	MOVQ BX, RES(5)
	BTL $9, AX
	JCC dfail
	STEP(8) // the vendor decides the hypercall instruction: R10 = 1 on Intel
	XORL AX, AX
	XORL CX, CX
	CPUID
	XORQ R10, R10
	CMPL BX, $0x756e6547 // "Genu"
	JNE dvendor
	MOVQ $1, R10
dvendor:
	MOVQ R10, RES(6)
	STEP(9) // the hypercall instruction before GUEST_OS_ID: #UD
	MOVQ $0x10008, CX
	XORL DX, DX
	XORL R8, R8
	MOVQ $3, R14
	XORQ R15, R15
	TESTQ R10, R10
	JNE dudintel
	VMMCALL
	JMP dud
dudintel:
	VMCALL
dud:
	CMPQ R15, $6
	JNE dfail
	STEP(10) // HYPERCALL's enable before GUEST_OS_ID is refused: reads back clear
	MOVQ $(HV_HCPAGE|1), R9
	WRMSRR(MSR_HYPERCALL, R9)
	RDMSRI(MSR_HYPERCALL)
	TESTQ $1, AX
	JNE dfail
	STEP(11) // GUEST_OS_ID reads back
	MOVQ $HV_GUESTID, R9
	WRMSRR(MSR_GUEST_OS_ID, R9)
	RDMSRI(MSR_GUEST_OS_ID)
	CMPQ AX, R9
	JNE dfail
	STEP(12) // HYPERCALL enabled reads back
	MOVQ $(HV_HCPAGE|1), R9
	WRMSRR(MSR_HYPERCALL, R9)
	RDMSRI(MSR_HYPERCALL)
	CMPQ AX, R9
	JNE dfail
	STEP(13) // the page holds the vendor's instruction, then RET
	MOVQ $HV_HCPAGE, R9
	MOVL 0(R9), AX
	MOVQ AX, RES(7)
	MOVL $0xc3d9010f, R9 // VMMCALL; RET
	TESTQ R10, R10
	JEQ dpage
	MOVL $0xc3c1010f, R9 // VMCALL; RET
dpage:
	CMPL AX, R9
	JNE dfail
	STEP(14) // HvCallNotifyLongSpinWait, fast, through the page: success
	HC(0x10008, $1000)
	MOVQ AX, RES(8)
	WANT(0, dfail)
	STEP(15) // unknown codes, fast and slow: INVALID_HYPERCALL_CODE
	HC(0x10099, $0)
	MOVQ AX, RES(9)
	WANT(2, dfail)
	HC(0x7fff, $HV_INPUT)
	MOVQ AX, RES(10)
	WANT(2, dfail)
	STEP(16) // VP_INDEX: 0, the BSP
	RDMSRI(MSR_VP_INDEX)
	MOVQ AX, RES(11)
	TESTQ AX, AX
	JNE dfail
	STEP(17) // TSC_FREQUENCY: the TSC rate the root passed in RDI
	RDMSRI(MSR_TSC_FREQUENCY)
	MOVQ AX, RES(12)
	CMPQ AX, D_TSCHZ(R11)
	JNE dfail
	STEP(18) // APIC_FREQUENCY: the LAPIC timer rate the root passed in RSI
	RDMSRI(MSR_APIC_FREQUENCY)
	MOVQ AX, RES(13)
	CMPQ AX, D_LAPICHZ(R11)
	JNE dfail
	STEP(19) // VP_ASSIST_PAGE, which Linux writes on every CPU unadvertised, reads back
	MOVQ $(HV_ASSIST|1), R9
	WRMSRR(MSR_VP_ASSIST_PAGE, R9)
	RDMSRI(MSR_VP_ASSIST_PAGE)
	CMPQ AX, R9
	JNE dfail
	STEP(20) // synthetic MSRs gohv lacks: #GP (RESET unadvertised, 0x400000ff, 0x400001ff)
	MOVL $0x40000003, CX
	EXPECTGP(RDMSR, dfail)
	MOVL $0x400000ff, CX
	EXPECTGP(RDMSR, dfail)
	MOVL $0x400001ff, CX
	XORL AX, AX
	XORL DX, DX
	EXPECTGP(WRMSR, dfail)
	STEP(21) // GUEST_OS_ID 0 disables the page: HYPERCALL reads clear, the call #UDs
	XORQ R9, R9
	WRMSRR(MSR_GUEST_OS_ID, R9)
	RDMSRI(MSR_HYPERCALL)
	TESTQ $1, AX
	JNE dfail
	MOVQ $0x10008, CX
	XORL DX, DX
	XORL R8, R8
	MOVQ $3, R14
	XORQ R15, R15
	HVCALL
	CMPQ R15, $6
	JNE dfail
	STEP(22) // identified and enabled again: calls work
	HVUP
	HC(0x10008, $0)
	WANT(0, dfail)
	STEP(23) // locked (bit 1): later writes are ignored, calls still work
	MOVQ $(HV_HCPAGE|3), R9
	WRMSRR(MSR_HYPERCALL, R9)
	XORQ R9, R9
	WRMSRR(MSR_HYPERCALL, R9)
	RDMSRI(MSR_HYPERCALL)
	MOVQ AX, RES(14)
	CMPQ AX, $(HV_HCPAGE|3)
	JNE dfail
	HC(0x10008, $0)
	WANT(0, dfail)
	EXIT(0)
dfail:
	FAILEXIT
	END

// hvRefTime: the partition reference time. PARAM(0) is how many TSC
// ticks apart the two TIME_REF_COUNT reads are. Results: [0..2] TSC,
// TIME_REF_COUNT, TSC; [3..5] the same later; [6..8] the reference TSC
// page's sequence, scale, offset; [9..11] page time, TIME_REF_COUNT, page
// time; [12] VP_RUNTIME, [13] TIME_REF_COUNT after it; [14..15] the moved
// page's sequence and scale.
TEXT ·hvRefTime(SB), NOSPLIT|NOFRAME, $0
	PROLOGUE
	CLI
	STEP(1) // TIME_REF_COUNT counts: two reads, each between two TSC reads
	TSCAX
	MOVQ AX, RES(0)
	RDMSRI(MSR_TIME_REF_COUNT)
	MOVQ AX, RES(1)
	TSCAX
	MOVQ AX, RES(2)
	MOVQ AX, R9
	ADDQ PARAM(0), R9
rtspin:
	PAUSE
	TSCAX
	CMPQ AX, R9
	JCS rtspin
	TSCAX
	MOVQ AX, RES(3)
	RDMSRI(MSR_TIME_REF_COUNT)
	MOVQ AX, RES(4)
	TSCAX
	MOVQ AX, RES(5)
	MOVQ RES(4), AX
	CMPQ AX, RES(1)
	JLS rtfail
	STEP(2) // REFERENCE_TSC, written before GUEST_OS_ID as Linux does, reads back
	MOVQ $(HV_REFTSC|1), R9
	WRMSRR(MSR_REFERENCE_TSC, R9)
	RDMSRI(MSR_REFERENCE_TSC)
	CMPQ AX, R9
	JNE rtfail
	STEP(3) // the page is valid at once: TscSequence non-zero
	MOVQ $HV_REFTSC, BX
	MOVL 0(BX), AX
	MOVQ AX, RES(6)
	TESTL AX, AX
	JEQ rtfail
	MOVQ 8(BX), AX
	MOVQ AX, RES(7)
	MOVQ 16(BX), AX
	MOVQ AX, RES(8)
	STEP(4) // page time, TIME_REF_COUNT, page time: in order, within 2 ticks of rounding
	REFNOW(BX, SI, rtp0)
	MOVQ SI, RES(9)
	RDMSRI(MSR_TIME_REF_COUNT)
	MOVQ AX, DI
	MOVQ AX, RES(10)
	REFNOW(BX, R9, rtp1)
	MOVQ R9, RES(11)
	LEAQ 2(DI), AX
	CMPQ SI, AX
	JHI rtfail
	LEAQ 2(R9), AX
	CMPQ DI, AX
	JHI rtfail
	STEP(5) // writes to the read-only MSRs raise #GP
	XORL AX, AX
	XORL DX, DX
	MOVL $MSR_TIME_REF_COUNT, CX
	EXPECTGP(WRMSR, rtfail)
	MOVL $MSR_VP_INDEX, CX
	EXPECTGP(WRMSR, rtfail)
	MOVL $MSR_TSC_FREQUENCY, CX
	EXPECTGP(WRMSR, rtfail)
	MOVL $MSR_APIC_FREQUENCY, CX
	EXPECTGP(WRMSR, rtfail)
	MOVL $MSR_VP_RUNTIME, CX
	EXPECTGP(WRMSR, rtfail)
	MOVL $MSR_SVERSION, CX
	EXPECTGP(WRMSR, rtfail)
	STEP(6) // VP_RUNTIME is no more than the reference time
	RDMSRI(MSR_VP_RUNTIME)
	MOVQ AX, R9
	MOVQ AX, RES(12)
	RDMSRI(MSR_TIME_REF_COUNT)
	MOVQ AX, RES(13)
	CMPQ R9, AX
	JHI rtfail
	STEP(7) // moved to another page: valid there at once, the same scale
	MOVQ $(HV_REFTSC2|1), R9
	WRMSRR(MSR_REFERENCE_TSC, R9)
	MOVQ $HV_REFTSC2, BX
	MOVL 0(BX), AX
	MOVQ AX, RES(14)
	TESTL AX, AX
	JEQ rtfail
	MOVQ 8(BX), AX
	MOVQ AX, RES(15)
	CMPQ AX, RES(7)
	JNE rtfail
	EXIT(0)
rtfail:
	FAILEXIT
	END

// hvSynICMessage: the SynIC set up as Linux does, HvCallPostMessage to
// the root's echo port and the reply in SINT2's slot. PARAM(0) the echo
// connection, (1) an unbound connection, (2) how many posts the flood
// makes, (3) the message type. The root fills the SIM and SIEF pages with
// 0xaa before the start. Results: [0] the first post's result, [1] the
// reply's origin, [2] posts the flood got accepted, [3] refused with
// INSUFFICIENT_BUFFERS, [4] the unbound connection's result.
TEXT ·hvSynICMessage(SB), NOSPLIT|NOFRAME, $0
	PROLOGUE
	HVUP
	SWENABLE
	STEP(1) // SIMP, SIEFP, SINT2 (reset value masked), SCONTROL in Linux's order; each reads back
	RDMSRI(MSR_SIMP)
	ANDQ $0xffe, AX
	ORQ $(HV_SIM|1), AX
	MOVQ AX, R9
	WRMSRR(MSR_SIMP, R9)
	RDMSRI(MSR_SIMP)
	CMPQ AX, R9
	JNE mfail
	RDMSRI(MSR_SIEFP)
	ANDQ $0xffe, AX
	ORQ $(HV_SIEF|1), AX
	MOVQ AX, R9
	WRMSRR(MSR_SIEFP, R9)
	RDMSRI(MSR_SIEFP)
	CMPQ AX, R9
	JNE mfail
	RDMSRI(MSR_SINT2)
	CMPQ AX, $0x10000
	JNE mfail
	MOVQ $0xfffffffffff8ff00, R9
	ANDQ AX, R9
	ORQ $SINT2_VECTOR, R9
	WRMSRR(MSR_SINT2, R9)
	RDMSRI(MSR_SINT2)
	CMPQ AX, R9
	JNE mfail
	RDMSRI(MSR_SCONTROL)
	ORQ $1, AX
	MOVQ AX, R9
	WRMSRR(MSR_SCONTROL, R9)
	RDMSRI(MSR_SCONTROL)
	CMPQ AX, R9
	JNE mfail
	RDMSRI(MSR_SVERSION)
	CMPQ AX, $1
	JNE mfail
	STEP(2) // enabling cleared both pages (the root filled them with 0xaa)
	ZEROPAGE(HV_SIM, mz1, mfail)
	ZEROPAGE(HV_SIEF, mz2, mfail)
	STEP(3) // HvCallPostMessage to the echo port: success
	MOVQ $HV_INPUT, BX
	MOVQ $(HV_SIM+0x200), SI
	MOVL PARAM(0), AX
	MOVL AX, 0(BX)
	MOVL $0, 4(BX)
	MOVL PARAM(3), AX
	MOVL AX, 8(BX)
	MOVL $24, 12(BX)
	MOVQ $0x1122334455667788, AX
	MOVQ AX, 16(BX)
	MOVQ $0x0102030405060708, AX
	MOVQ AX, 24(BX)
	MOVQ $0x6f686365766867, AX
	MOVQ AX, 32(BX)
	CLI
	HC(0x5c, BX)
	MOVQ AX, RES(0)
	WANT(0, mfail)
	STEP(4) // the reply is in SINT2's slot when the call returns: type, size, payload
	MOVL 0(SI), AX
	CMPL AX, PARAM(3)
	JNE mfail
	MOVBLZX 4(SI), AX
	CMPL AX, $24
	JNE mfail
	MOVQ 8(SI), AX
	MOVQ AX, RES(1)
	MOVQ 16(SI), AX
	CMPQ AX, 16(BX)
	JNE mfail
	MOVQ 24(SI), AX
	CMPQ AX, 24(BX)
	JNE mfail
	MOVQ 32(SI), AX
	CMPQ AX, 32(BX)
	JNE mfail
	STEP(5) // and SINT2's vector arrives when IF allows
	MOVQ D_COUNT(R11), R10
	INCQ R10
	WAITCOUNT(R10, mw1, mfail)
	STEP(6) // consumed as Linux does; MessagePending was clear
	MOVBLZX 5(SI), AX
	TESTL $1, AX
	JNE mfail
	CONSUME(SI, mc1)
	STEP(7) // a flood with IF clear: the slot and the queue fill, then INSUFFICIENT_BUFFERS
	XORQ R9, R9
	XORQ R10, R10
	XORQ DI, DI
mflood:
	MOVQ R9, 16(BX)
	HC(0x5c, BX)
	TESTQ AX, AX
	JNE mrefused
	INCQ R10
	JMP mnext
mrefused:
	CMPQ AX, $0x13
	JNE mfail
	INCQ DI
mnext:
	INCQ R9
	CMPQ R9, PARAM(2)
	JCS mflood
	MOVQ R10, RES(2)
	MOVQ DI, RES(3)
	CMPQ R10, $2
	JCS mfail
	TESTQ DI, DI
	JEQ mfail
	STEP(8) // the busy slot has MessagePending set
	MOVBLZX 5(SI), AX
	TESTL $1, AX
	JEQ mfail
	STEP(9) // drained Linux's way, in the order posted: each EOM brings the next
	XORQ DI, DI
mdrain:
	MOVL 0(SI), AX
	TESTL AX, AX
	JEQ mfail
	MOVQ 16(SI), AX
	CMPQ AX, DI
	JNE mfail
	CONSUME(SI, mc2)
	INCQ DI
	CMPQ DI, R10
	JCS mdrain
	STEP(10) // all of them: the slot is empty, nothing pending
	MOVL 0(SI), AX
	TESTL AX, AX
	JNE mfail
	MOVBLZX 5(SI), AX
	TESTL $1, AX
	JNE mfail
	MOVQ D_TSCMS(R11), R9
	QUIET(R9, mq1)
	STEP(11) // a later message arrives, with its interrupt
	MOVQ $0x77, AX
	MOVQ AX, 16(BX)
	MOVQ D_COUNT(R11), R10
	INCQ R10
	HC(0x5c, BX)
	WANT(0, mfail)
	MOVL 0(SI), AX
	TESTL AX, AX
	JEQ mfail
	MOVQ 16(SI), AX
	CMPQ AX, $0x77
	JNE mfail
	WAITCOUNT(R10, mw2, mfail)
	CONSUME(SI, mc3)
	STEP(12) // an unbound connection: INVALID_CONNECTION_ID
	MOVL PARAM(1), AX
	MOVL AX, 0(BX)
	HC(0x5c, BX)
	MOVQ AX, RES(4)
	WANT(0x12, mfail)
	MOVL PARAM(0), AX
	MOVL AX, 0(BX)
	STEP(13) // a payload above 240 bytes: INVALID_PARAMETER
	MOVL $241, 12(BX)
	HC(0x5c, BX)
	WANT(5, mfail)
	MOVL $24, 12(BX)
	STEP(14) // message type 0, and one of the hypervisor's: INVALID_PARAMETER
	MOVL $0, 8(BX)
	HC(0x5c, BX)
	WANT(5, mfail)
	MOVL $0x80000001, 8(BX)
	HC(0x5c, BX)
	WANT(5, mfail)
	MOVL PARAM(3), AX
	MOVL AX, 8(BX)
	STEP(15) // reserved bits 31:24 of the connection ID: INVALID_HYPERCALL_INPUT
	MOVL PARAM(0), AX
	ORL $0x1000000, AX
	MOVL AX, 0(BX)
	HC(0x5c, BX)
	WANT(3, mfail)
	MOVL PARAM(0), AX
	MOVL AX, 0(BX)
	STEP(16) // the input misaligned, crossing its page, outside RAM, on the I/O APIC: INVALID_ALIGNMENT
	LEAQ 4(BX), R9
	HC(0x5c, R9)
	WANT(4, mfail)
	LEAQ 0xf08(BX), R9
	HC(0x5c, R9)
	WANT(4, mfail)
	HC(0x5c, $HV_OUTSIDE)
	WANT(4, mfail)
	HC(0x5c, $IOAPIC_PAGE)
	WANT(4, mfail)
	STEP(17) // the fast form, which HvCallPostMessage has not: INVALID_HYPERCALL_INPUT
	HC(0x1005c, BX)
	WANT(3, mfail)
	STEP(18) // SINT2 masked: the reply still lands in the slot, without an interrupt
	SINTMASK(MSR_SINT2)
	MOVQ D_COUNT(R11), R10
	MOVQ $0x99, AX
	MOVQ AX, 16(BX)
	HC(0x5c, BX)
	WANT(0, mfail)
	MOVL 0(SI), AX
	TESTL AX, AX
	JEQ mfail
	MOVQ 16(SI), AX
	CMPQ AX, $0x99
	JNE mfail
	MOVQ D_TSCMS(R11), R9
	QUIET(R9, mq2)
	CMPQ D_COUNT(R11), R10
	JNE mfail
	CONSUME(SI, mc4)
	EXIT(0)
mfail:
	FAILEXIT
	END

// hvSynICEvent: HvCallSignalEvent to the root's event port, whose handler
// signals the same flag back on SINT2. PARAM(0) the event connection, (1)
// a message port's connection, (2) an unbound connection. Results: [0]
// the first signal's result.
TEXT ·hvSynICEvent(SB), NOSPLIT|NOFRAME, $0
	PROLOGUE
	HVUP
	SWENABLE
	SYNICUP
	MOVQ $HV_SIEF, SI
	CLI
	STEP(1) // fast HvCallSignalEvent, flag 1234: success
	MOVQ $1234, R9
	SHLQ $32, R9
	ORQ PARAM(0), R9
	HC(0x1005d, R9)
	MOVQ AX, RES(0)
	WANT(0, efail)
	STEP(2) // SINT2's vector arrives; flag 1234 of SINT2 is set (dword 0x298, bit 18)
	MOVQ D_COUNT(R11), R10
	INCQ R10
	WAITCOUNT(R10, ew1, efail)
	LOCK
	BTRL $18, 0x298(SI)
	JCC efail
	STEP(3) // and nothing else in the page
	ZEROPAGE(HV_SIEF, ez1, efail)
	STEP(4) // flag 7 signalled twice before the guest looks: one flag, one interrupt at most
	MOVQ $7, R9
	SHLQ $32, R9
	ORQ PARAM(0), R9
	MOVQ R9, DI
	HC(0x1005d, DI)
	WANT(0, efail)
	HC(0x1005d, DI)
	WANT(0, efail)
	MOVQ D_COUNT(R11), R10
	INCQ R10
	WAITCOUNT(R10, ew2, efail)
	LOCK
	BTRL $7, 0x200(SI)
	JCC efail
	ZEROPAGE(HV_SIEF, ez2, efail)
	STEP(5) // the slow form, from the input page: flag 9
	MOVQ $HV_INPUT, BX
	MOVL PARAM(0), AX
	MOVL AX, 0(BX)
	MOVL $9, 4(BX)
	HC(0x5d, BX)
	WANT(0, efail)
	LOCK
	BTRL $9, 0x200(SI)
	JCC efail
	STEP(6) // an unbound connection: INVALID_CONNECTION_ID
	HC(0x1005d, PARAM(2))
	WANT(0x12, efail)
	STEP(7) // a message port's connection: INVALID_PORT_ID
	HC(0x1005d, PARAM(1))
	WANT(0x11, efail)
	STEP(8) // reserved bits 63:48, and 31:24 of the connection: INVALID_HYPERCALL_INPUT
	MOVQ $1, R9
	SHLQ $48, R9
	ORQ PARAM(0), R9
	HC(0x1005d, R9)
	WANT(3, efail)
	MOVQ PARAM(0), R9
	ORQ $0x1000000, R9
	HC(0x1005d, R9)
	WANT(3, efail)
	STEP(9) // flag 2048, beyond any port: INVALID_PARAMETER
	MOVQ $2048, R9
	SHLQ $32, R9
	ORQ PARAM(0), R9
	HC(0x1005d, R9)
	WANT(5, efail)
	STEP(10) // SINT2 masked: the root's signal is refused (INVALID_SYNIC_STATE), no flag set
	SINTMASK(MSR_SINT2)
	MOVQ $1234, R9
	SHLQ $32, R9
	ORQ PARAM(0), R9
	HC(0x1005d, R9)
	WANT(0x18, efail)
	ZEROPAGE(HV_SIEF, ez3, efail)
	SINTUNMASK(MSR_SINT2)
	STEP(11) // the slow form with its input outside RAM: INVALID_ALIGNMENT
	HC(0x5d, $HV_OUTSIDE)
	WANT(4, efail)
	MOVQ D_TSCMS(R11), R9
	QUIET(R9, eq1)
	EXIT(0)
efail:
	FAILEXIT
	END

// hvTimers: synthetic timer 0 in message mode (SINT3, vector 0x53) and
// direct mode (vector 0xed), one-shot and periodic, AutoEnable, COUNT 0,
// Lazy. PARAM(0) the one-shot delay and (1) the period, in 100 ns; (2)
// periodic messages to take (at most 8); (3) TSC ticks of each quiet
// spell; (4) TSC ticks the slot is kept busy. The reference TSC page is
// enabled at HV_REFTSC for the root to convert the log's TSCs. Results: [0]
// the one-shot's COUNT, [1] ExpirationTime, [2] DeliveryTime, [3]
// TIME_REF_COUNT after, [4] CONFIG after; [8] TIME_REF_COUNT before the
// periodic CONFIG write, [9] after; [16+2k], [17+2k] message k's
// ExpirationTime and DeliveryTime; [32] TIME_REF_COUNT at the stop;
// [33] CONFIG after the AutoEnable COUNT write, [34] after COUNT 0, [35],
// [36] its two messages' ExpirationTime; [40] the direct one-shot's COUNT,
// [41] CONFIG after; [42], [43] TIME_REF_COUNT at the direct periodic
// start and stop, [44] the interrupt count before it, [45] after the
// quiet; [48] lazy: the first ExpirationTime, [49] MessagePending after the
// hold, [50], [51] the next two ExpirationTimes; [56] not lazy: the first,
// [57] MessagePending after the hold, [58..61] the next four.
TEXT ·hvTimers(SB), NOSPLIT|NOFRAME, $0
	PROLOGUE
	HVUP
	SWENABLE
	SYNICUP
	MOVQ $(HV_REFTSC|1), R9
	WRMSRR(MSR_REFERENCE_TSC, R9)
	MOVQ $SINT3_VECTOR, R9
	WRMSRR(MSR_SINT3, R9)
	MOVQ $(HV_SIM+0x300), SI
	CLI
	STEP(1) // STIMER0 at reset: CONFIG and COUNT 0
	RDMSRI(MSR_STIMER0_CONFIG)
	TESTQ AX, AX
	JNE tfail
	RDMSRI(MSR_STIMER0_COUNT)
	TESTQ AX, AX
	JNE tfail
	STEP(2) // one-shot, message mode, SINT3: COUNT an absolute time ahead, then CONFIG
	RDMSRI(MSR_TIME_REF_COUNT)
	ADDQ PARAM(0), AX
	MOVQ AX, BX
	MOVQ AX, RES(0)
	WRMSRR(MSR_STIMER0_COUNT, BX)
	MOVQ $(1|3<<16), R9
	WRMSRR(MSR_STIMER0_CONFIG, R9)
	RDMSRI(MSR_STIMER0_CONFIG)
	CMPQ AX, R9
	JNE tfail
	STEP(3) // HvMessageTypeTimerExpired in SINT3's slot, with SINT3's interrupt
	HLTCOUNT($1, tw1, tg1)
	MOVL 0(SI), AX
	CMPL AX, $0x80000010
	JNE tfail
	STEP(4) // 24 bytes: timer 0, ExpirationTime = COUNT, DeliveryTime after it, TIME_REF_COUNT after that
	MOVBLZX 4(SI), AX
	CMPL AX, $24
	JNE tfail
	MOVL 16(SI), AX
	TESTL AX, AX
	JNE tfail
	MOVQ 24(SI), AX
	MOVQ AX, RES(1)
	CMPQ AX, BX
	JNE tfail
	MOVQ 32(SI), R10
	MOVQ R10, RES(2)
	CMPQ R10, BX
	JCS tfail
	RDMSRI(MSR_TIME_REF_COUNT)
	MOVQ AX, RES(3)
	CMPQ AX, R10
	JCS tfail
	STEP(5) // the one-shot cleared its Enable; consumed as Linux does
	RDMSRI(MSR_STIMER0_CONFIG)
	MOVQ AX, RES(4)
	TESTQ $1, AX
	JNE tfail
	CONSUME(SI, tc1)
	STEP(6) // and fires no more
	QUIET(PARAM(3), tq1)
	CMPQ D_COUNT(R11), $1
	JNE tfail
	MOVL 0(SI), AX
	TESTL AX, AX
	JNE tfail
	STEP(7) // periodic, message mode: COUNT the period, CONFIG Enable|Periodic|SINT3
	MOVQ PARAM(1), R9
	WRMSRR(MSR_STIMER0_COUNT, R9)
	RDMSRI(MSR_TIME_REF_COUNT)
	MOVQ AX, RES(8)
	MOVQ $(3|3<<16), R9
	WRMSRR(MSR_STIMER0_CONFIG, R9)
	RDMSRI(MSR_TIME_REF_COUNT)
	MOVQ AX, RES(9)
	STEP(8) // PARAM(2) messages, each consumed: ExpirationTimes rise, DeliveryTimes follow them
	XORQ BX, BX
	LEAQ RES(16), DI
tper:
	HLTUNTIL(SI, tpw, tpg)
	CMPL AX, $0x80000010
	JNE tfail
	MOVQ 24(SI), AX
	MOVQ AX, 0(DI)
	MOVQ 32(SI), R10
	MOVQ R10, 8(DI)
	CMPQ R10, AX
	JCS tfail
	CONSUME(SI, tpc)
	ADDQ $16, DI
	INCQ BX
	CMPQ BX, PARAM(2)
	JCS tper
	STEP(9) // CONFIG 0 stops it: a message in flight is consumed, then none comes
	XORQ R9, R9
	WRMSRR(MSR_STIMER0_CONFIG, R9)
	RDMSRI(MSR_TIME_REF_COUNT)
	MOVQ AX, RES(32)
	CONSUME(SI, tc2)
	QUIET(PARAM(3), tq2)
	MOVL 0(SI), AX
	TESTL AX, AX
	JNE tfail
	STEP(10) // AutoEnable, Periodic, SINT3 without Enable: nothing starts
	MOVQ $(2|8|3<<16), R9
	WRMSRR(MSR_STIMER0_CONFIG, R9)
	QUIET(PARAM(3), tq3)
	MOVL 0(SI), AX
	TESTL AX, AX
	JNE tfail
	STEP(11) // a non-zero COUNT sets Enable; messages come
	MOVQ PARAM(1), R9
	WRMSRR(MSR_STIMER0_COUNT, R9)
	RDMSRI(MSR_STIMER0_CONFIG)
	MOVQ AX, RES(33)
	TESTQ $1, AX
	JEQ tfail
	HLTUNTIL(SI, taw1, tag1)
	MOVQ 24(SI), AX
	MOVQ AX, RES(35)
	CONSUME(SI, tac1)
	HLTUNTIL(SI, taw2, tag2)
	MOVQ 24(SI), AX
	MOVQ AX, RES(36)
	CONSUME(SI, tac2)
	STEP(12) // COUNT 0 clears Enable: none comes after
	XORQ R9, R9
	WRMSRR(MSR_STIMER0_COUNT, R9)
	RDMSRI(MSR_STIMER0_CONFIG)
	MOVQ AX, RES(34)
	TESTQ $1, AX
	JNE tfail
	CONSUME(SI, tac3)
	QUIET(PARAM(3), tq4)
	MOVL 0(SI), AX
	TESTL AX, AX
	JNE tfail
	STEP(13) // direct mode, one-shot: vector 0xed through the local APIC, no message
	MOVQ $(STIMER_VECTOR<<4|1<<12), R9
	WRMSRR(MSR_STIMER0_CONFIG, R9)
	MOVQ D_COUNT(R11), R10
	INCQ R10
	RDMSRI(MSR_TIME_REF_COUNT)
	ADDQ PARAM(0), AX
	MOVQ AX, BX
	MOVQ AX, RES(40)
	WRMSRR(MSR_STIMER0_COUNT, BX)
	MOVQ $(STIMER_VECTOR<<4|1<<12|1), R9
	WRMSRR(MSR_STIMER0_CONFIG, R9)
	HLTCOUNT(R10, tdw1, tdg1)
	MOVQ D_COUNT(R11), AX
	DECQ AX
	SHLQ $5, AX
	MOVL (D_LOG+8)(R11)(AX*1), AX
	CMPL AX, $STIMER_VECTOR
	JNE tfail
	RDMSRI(MSR_STIMER0_CONFIG)
	MOVQ AX, RES(41)
	TESTQ $1, AX
	JNE tfail
	MOVL 0(SI), AX
	TESTL AX, AX
	JNE tfail
	STEP(14) // direct mode, periodic: PARAM(2) interrupts, then CONFIG 0 stops them (one in flight at most)
	MOVQ PARAM(1), R9
	WRMSRR(MSR_STIMER0_COUNT, R9)
	MOVQ D_COUNT(R11), R10
	MOVQ R10, RES(44)
	ADDQ PARAM(2), R10
	RDMSRI(MSR_TIME_REF_COUNT)
	MOVQ AX, RES(42)
	MOVQ $(STIMER_VECTOR<<4|1<<12|3), R9
	WRMSRR(MSR_STIMER0_CONFIG, R9)
	HLTCOUNT(R10, tdw2, tdg2)
	XORQ R9, R9
	WRMSRR(MSR_STIMER0_CONFIG, R9)
	RDMSRI(MSR_TIME_REF_COUNT)
	MOVQ AX, RES(43)
	MOVQ D_COUNT(R11), R10
	QUIET(PARAM(3), tq5)
	MOVQ D_COUNT(R11), AX
	MOVQ AX, RES(45)
	SUBQ R10, AX
	CMPQ AX, $1
	JHI tfail
	STEP(15) // lazy periodic, message mode, the slot kept busy: after the EOM the latest expiration
	MOVQ PARAM(1), R9
	WRMSRR(MSR_STIMER0_COUNT, R9)
	MOVQ $(7|3<<16), R9
	WRMSRR(MSR_STIMER0_CONFIG, R9)
	HLTUNTIL(SI, tlw1, tlg1)
	MOVQ 24(SI), AX
	MOVQ AX, RES(48)
	QUIET(PARAM(4), tq6)
	MOVBLZX 5(SI), AX
	MOVQ AX, RES(49)
	CONSUME(SI, tlc1)
	HLTUNTIL(SI, tlw2, tlg2)
	MOVQ 24(SI), AX
	MOVQ AX, RES(50)
	CONSUME(SI, tlc2)
	HLTUNTIL(SI, tlw3, tlg3)
	MOVQ 24(SI), AX
	MOVQ AX, RES(51)
	XORQ R9, R9
	WRMSRR(MSR_STIMER0_CONFIG, R9)
	CONSUME(SI, tlc3)
	STEP(16) // the same without Lazy: the held expiration, then the missed ones one by one
	MOVQ $(3|3<<16), R9
	WRMSRR(MSR_STIMER0_CONFIG, R9)
	HLTUNTIL(SI, tnw1, tng1)
	MOVQ 24(SI), AX
	MOVQ AX, RES(56)
	QUIET(PARAM(4), tq7)
	MOVBLZX 5(SI), AX
	MOVQ AX, RES(57)
	CONSUME(SI, tnc1)
	LEAQ RES(58), DI
	MOVQ $4, BX
tnext:
	HLTUNTIL(SI, tnw2, tng2)
	MOVQ 24(SI), AX
	MOVQ AX, 0(DI)
	CONSUME(SI, tnc2)
	ADDQ $8, DI
	DECQ BX
	JNE tnext
	XORQ R9, R9
	WRMSRR(MSR_STIMER0_CONFIG, R9)
	CONSUME(SI, tnc3)
	MOVQ D_TSCMS(R11), R9
	QUIET(R9, tq8)
	EXIT(0)
tfail:
	FAILEXIT
	END

// hvCrash: the crash MSRs as Linux's hyperv_report_panic writes them.
// PARAM(0..4) the values for CRASH_P0-P4, (5) for CRASH_CTL. The
// partition should end at step 4's write.
TEXT ·hvCrash(SB), NOSPLIT|NOFRAME, $0
	PROLOGUE
	HVUP
	STEP(1) // CRASH_CTL reads what may be reported: CrashNotify | CrashMessage
	RDMSRI(MSR_CRASH_CTL)
	MOVQ $0xc000000000000000, R9
	CMPQ AX, R9
	JNE cfail
	STEP(2) // a reserved CRASH_CTL bit: #GP, and the partition goes on
	MOVL $MSR_CRASH_CTL, CX
	MOVL $1, AX
	XORL DX, DX
	EXPECTGP(WRMSR, cfail)
	STEP(3) // P0-P4, each read back
	XORQ BX, BX
cparam:
	MOVQ (D_PARAMS)(R11)(BX*8), R9
	LEAL MSR_CRASH_P0(BX), CX
	MOVQ R9, AX
	MOVQ R9, DX
	SHRQ $32, DX
	WRMSR
	LEAL MSR_CRASH_P0(BX), CX
	RDMSR
	SHLQ $32, DX
	ORQ DX, AX
	CMPQ AX, R9
	JNE cfail
	INCQ BX
	CMPQ BX, $5
	JCS cparam
	STEP(4) // CRASH_CTL: the partition ends here
	MOVQ PARAM(5), R9
	WRMSRR(MSR_CRASH_CTL, R9)
	STEP(5) // still running: the crash was not taken
cfail:
	FAILEXIT
	END

// hvCallTable: the hypercalls of the table at D_TABLE, each through the
// page. PARAM(0) the number of cases; PARAM(1) non-zero: set the SynIC up
// first. Case i is 32 bytes: RCX, RDX, R8, and the RAX it must return;
// RES(i) gets the RAX it did return. Exit 100+i when case i returns
// another.
TEXT ·hvCallTable(SB), NOSPLIT|NOFRAME, $0
	PROLOGUE
	HVUP
	SWENABLE
	STEP(1)
	CMPQ PARAM(1), $0
	JEQ ctcalls
	SYNICUP
ctcalls:
	STEP(2)
	XORQ BX, BX
	MOVQ $(APIC_DATA+D_TABLE), SI
ctloop:
	CMPQ BX, PARAM(0)
	JCC ctdone
	MOVQ 0(SI), CX
	MOVQ 8(SI), DX
	MOVQ 16(SI), R8
	HVCALL
	MOVQ AX, (D_RESULTS)(R11)(BX*8)
	CMPQ AX, 24(SI)
	JNE ctbad
	ADDQ $32, SI
	INCQ BX
	JMP ctloop
ctbad:
	LEAQ 100(BX), AX
	MOVW $0xf4, DX
	OUTL
	HLT
ctdone:
	EXIT(0)
	END

// hvMSRTable: the MSR accesses of the table at D_TABLE after the SynIC is
// set up, then what must still work. Case i is 32 bytes: the MSR, a value,
// the operation (0 RDMSR must #GP, 1 WRMSR of the value must #GP, 2 WRMSR
// must not, 3 RDMSR must read the fourth qword, 4 WRMSR must not fault and
// RDMSR must then read the fourth qword); RES(i) gets what RDMSR read.
// Exit 100+i when case i does otherwise. PARAM(0) the number of cases,
// (1) the I/O APIC version the guest must still read afterwards (RES(250)),
// (2) a connection to post the input page the root wrote to (0: none) and
// (3) the result that post must get (RES(251)), (4) an event connection to
// signal with flag 1 (0: none) and (5) its result (RES(252)).
TEXT ·hvMSRTable(SB), NOSPLIT|NOFRAME, $0
	PROLOGUE
	HVUP
	SWENABLE
	SYNICUP
	CLI
	STEP(1)
	XORQ BX, BX
	MOVQ $(APIC_DATA+D_TABLE), SI
mtloop:
	CMPQ BX, PARAM(0)
	JCC mtdone
	MOVL 0(SI), CX
	MOVQ 8(SI), AX
	MOVQ AX, DX
	SHRQ $32, DX
	MOVQ 16(SI), R9
	MOVQ $2, R14
	XORQ R15, R15
	CMPQ R9, $0
	JEQ mtread
	CMPQ R9, $3
	JEQ mtread
	WRMSR
	CMPQ R9, $1
	JEQ mtgp
	TESTQ R15, R15
	JNE mtbad
	CMPQ R9, $2
	JEQ mtnext
	MOVL 0(SI), CX
	MOVQ $2, R14
mtread:
	RDMSR
	SHLQ $32, DX
	ORQ DX, AX
	MOVQ AX, (D_RESULTS)(R11)(BX*8)
	CMPQ R9, $0
	JEQ mtgp
	TESTQ R15, R15
	JNE mtbad
	CMPQ AX, 24(SI)
	JNE mtbad
	JMP mtnext
mtgp:
	CMPQ R15, $13
	JNE mtbad
mtnext:
	ADDQ $32, SI
	INCQ BX
	JMP mtloop
mtbad:
	LEAQ 100(BX), AX
	MOVW $0xf4, DX
	OUTL
	HLT
mtdone:
	STEP(2) // the I/O APIC still answers with its version
	MOVQ $IOAPIC_PAGE, R10
	MOVL $1, 0(R10)
	MOVL 0x10(R10), AX
	MOVQ AX, RES(250)
	CMPL AX, PARAM(1)
	JNE mtfail
	STEP(3) // a post to PARAM(2) gets PARAM(3)
	CMPQ PARAM(2), $0
	JEQ mtsignal
	HC(0x5c, $HV_INPUT)
	MOVQ AX, RES(251)
	CMPQ AX, PARAM(3)
	JNE mtfail
mtsignal:
	STEP(4) // a signal to PARAM(4) gets PARAM(5)
	CMPQ PARAM(4), $0
	JEQ mtend
	MOVQ $1, R9
	SHLQ $32, R9
	ORQ PARAM(4), R9
	HC(0x1005d, R9)
	MOVQ AX, RES(252)
	CMPQ AX, PARAM(5)
	JNE mtfail
mtend:
	STEP(5) // hypercalls still work
	HC(0x10008, $0)
	WANT(0, mtfail)
	EXIT(0)
mtfail:
	FAILEXIT
	END

// hvStorm: what a hostile guest can throw at the SynIC and its timers.
// PARAM(0) the echo connection, (1) posts to flood it with, (2) EOM writes
// in the storm, (3) TSC ticks of the period-1 direct timer, (4) TSC ticks
// of the period-1 message-mode timer. Results: [0] posts accepted, [1]
// refused, [2] TSC at the direct storm's start, [3] at its end, [4] its
// interrupts, [5] messages the guest consumed in the message-mode storm,
// [6] TSC at its start, [7] at its end.
TEXT ·hvStorm(SB), NOSPLIT|NOFRAME, $0
	PROLOGUE
	HVUP
	SWENABLE
	SYNICUP
	MOVQ $SINT3_VECTOR, R9
	WRMSRR(MSR_SINT3, R9)
	MOVQ $HV_INPUT, BX
	MOVQ $(HV_SIM+0x200), SI
	CLI
	STEP(1) // with IF clear, flood the echo port: the slot and the queue fill
	MOVL PARAM(0), AX
	MOVL AX, 0(BX)
	MOVL $0, 4(BX)
	MOVL $1, 8(BX)
	MOVL $8, 12(BX)
	XORQ R9, R9
	XORQ R10, R10
	XORQ DI, DI
sflood:
	MOVQ R9, 16(BX)
	HC(0x5c, BX)
	TESTQ AX, AX
	JNE srefused
	INCQ R10
	JMP snext
srefused:
	CMPQ AX, $0x13
	JNE sfail
	INCQ DI
snext:
	INCQ R9
	CMPQ R9, PARAM(1)
	JCS sflood
	MOVQ R10, RES(0)
	MOVQ DI, RES(1)
	STEP(2) // an EOM storm while the slot stays busy: nothing moves
	MOVQ PARAM(2), DI
seom:
	XORL AX, AX
	XORL DX, DX
	MOVL $MSR_EOM, CX
	WRMSR
	DECQ DI
	JNE seom
	MOVQ 16(SI), AX
	TESTQ AX, AX
	JNE sfail
	STEP(3) // drained afterwards, every accepted message in order
	XORQ DI, DI
sdrain:
	MOVL 0(SI), AX
	TESTL AX, AX
	JEQ sfail
	MOVQ 16(SI), AX
	CMPQ AX, DI
	JNE sfail
	CONSUME(SI, sc1)
	INCQ DI
	CMPQ DI, R10
	JCS sdrain
	STEP(4) // direct mode, periodic, period 1, interrupts on: rate-limited, and it stops
	MOVQ $1, R9
	WRMSRR(MSR_STIMER0_COUNT, R9)
	MOVQ D_COUNT(R11), BX
	TSCAX
	MOVQ AX, RES(2)
	MOVQ $(STORM_VECTOR<<4|1<<12|3), R9
	WRMSRR(MSR_STIMER0_CONFIG, R9)
	QUIET(PARAM(3), sq1)
	XORQ R9, R9
	WRMSRR(MSR_STIMER0_CONFIG, R9)
	TSCAX
	MOVQ AX, RES(3)
	MOVQ D_COUNT(R11), AX
	SUBQ BX, AX
	MOVQ AX, RES(4)
	TESTQ AX, AX
	JEQ sfail
	STEP(5) // message mode, period 1, SINT3: consumed as fast as the guest can
	MOVQ $(HV_SIM+0x300), SI
	MOVQ $1, R9
	WRMSRR(MSR_STIMER0_COUNT, R9)
	MOVQ $(3|3<<16), R9
	WRMSRR(MSR_STIMER0_CONFIG, R9)
	TSCAX
	MOVQ AX, RES(6)
	ADDQ PARAM(4), AX
	MOVQ AX, R10
	XORQ BX, BX
	STI
smsg:
	MOVL 0(SI), AX
	TESTL AX, AX
	JEQ smnext
	CONSUME(SI, smc)
	INCQ BX
smnext:
	TSCAX
	CMPQ AX, R10
	JCS smsg
	CLI
	XORQ R9, R9
	WRMSRR(MSR_STIMER0_CONFIG, R9)
	TSCAX
	MOVQ AX, RES(7)
	MOVQ BX, RES(5)
	TESTQ BX, BX
	JEQ sfail
	CONSUME(SI, sc2)
	MOVQ D_TSCMS(R11), R9
	QUIET(R9, sq2)
	EXIT(0)
sfail:
	FAILEXIT
	END

// hvBench: PARAM(0) iterations of one Hyper-V path, PARAM(1) which: 1 a
// fast HvCallNotifyLongSpinWait through the page, 2 a fast unknown code
// (0xffff) through the page, 3 a fast HvCallSignalEvent to the event
// connection PARAM(2), 4 HvCallPostMessage to the echo connection PARAM(2)
// until the reply is read from SINT2's slot (SINT2 masked: no interrupt),
// 5 the same with SINT2's interrupt taken first, 6 a direct-mode one-shot
// synthetic timer PARAM(3) ahead with the VP halted, 7 the same spinning,
// 8 the issue's KVM loop: PARAM(0) unknown-code (0xffff) VMCALLs or
// VMMCALLs between two TSC reads. Kinds 1-5 store each iteration's TSC
// delta at D_BENCH; 6 and 7 the timer's COUNT and the handler's TSC (16
// bytes each); 8 the whole loop's delta.
TEXT ·hvBench(SB), NOSPLIT|NOFRAME, $0
	PROLOGUE
	HVUP
	SWENABLE
	MOVQ PARAM(0), BX
	MOVQ PARAM(1), R10
	MOVQ $(APIC_DATA+D_BENCH), DI
	CLI
	STEP(1)
	CMPQ R10, $4
	JCS bnosynic
	CMPQ R10, $5
	JHI bnosynic
	SYNICUP
	MOVQ $HV_INPUT, R9
	MOVL PARAM(2), AX
	MOVL AX, 0(R9)
	MOVL $0, 4(R9)
	MOVL $1, 8(R9)
	MOVL $8, 12(R9)
	MOVQ $(HV_SIM+0x200), SI
	CMPQ R10, $5
	JEQ bnosynic
	SINTMASK(MSR_SINT2)
bnosynic:
	CMPQ R10, $6
	JCS btimer
	CMPQ R10, $7
	JHI btimer
	MOVQ $(HV_REFTSC|1), R9
	WRMSRR(MSR_REFERENCE_TSC, R9)
	MOVQ $(STIMER_VECTOR<<4|1<<12|8), R9
	WRMSRR(MSR_STIMER0_CONFIG, R9)
btimer:
	CMPQ R10, $8
	JEQ bkvm
	STEP(2)
bloop:
	CMPQ R10, $1
	JEQ bnull
	CMPQ R10, $2
	JEQ bunknown
	CMPQ R10, $3
	JEQ bsignal
	CMPQ R10, $4
	JEQ bpost
	CMPQ R10, $5
	JEQ bpostirq
	JMP bstimer
bnull:
	TSCAX
	MOVQ AX, R13
	MOVQ $0x10008, CX
	XORL DX, DX
	XORL R8, R8
	HVCALL
	MOVQ AX, R9
	TSCAX
	JMP bstore
bunknown:
	TSCAX
	MOVQ AX, R13
	MOVQ $0x1ffff, CX
	XORL DX, DX
	XORL R8, R8
	HVCALL
	MOVQ AX, R9
	TSCAX
	CMPQ R9, $2
	JNE bfail
	XORQ R9, R9
	JMP bstore
bsignal:
	TSCAX
	MOVQ AX, R13
	MOVQ $0x1005d, CX
	MOVQ PARAM(2), DX
	XORL R8, R8
	HVCALL
	MOVQ AX, R9
	TSCAX
	JMP bstore
bpost:
	TSCAX
	MOVQ AX, R13
	MOVQ $0x5c, CX
	MOVQ $HV_INPUT, DX
	XORL R8, R8
	HVCALL
	MOVQ AX, R9
bpwait:
	MOVL 0(SI), AX
	TESTL AX, AX
	JEQ bpwait
	MOVQ 16(SI), AX
	MOVL $0, 0(SI)
	TSCAX
	JMP bstore
bpostirq:
	MOVQ $0, D_COUNT(R11)
	STI
	TSCAX
	MOVQ AX, R13
	MOVQ $0x5c, CX
	MOVQ $HV_INPUT, DX
	XORL R8, R8
	HVCALL
	MOVQ AX, R9
bpiwait:
	CMPQ D_COUNT(R11), $0
	JEQ bpiwait
	MOVQ 16(SI), AX
	MOVL $0, 0(SI)
	TSCAX
	CLI
	JMP bstore
bstore:
	SUBQ R13, AX
	MOVQ AX, 0(DI)
	TESTQ R9, R9
	JNE bfail
	ADDQ $8, DI
	DECQ BX
	JNE bloop
	EXIT(0)
bstimer:
	MOVQ $0, D_COUNT(R11)
	RDMSRI(MSR_TIME_REF_COUNT)
	ADDQ PARAM(3), AX
	MOVQ AX, 0(DI)
	MOVQ AX, R9
	WRMSRR(MSR_STIMER0_COUNT, R9)
	CMPQ R10, $7
	JEQ bspin
	HLTCOUNT($1, bhw, bhg)
	JMP bgot
bspin:
	STI
bsw:
	CMPQ D_COUNT(R11), $0
	JEQ bsw
	CLI
bgot:
	STEP(3) // exactly one interrupt, the timer's
	CMPQ D_COUNT(R11), $1
	JNE bfail
	MOVL (D_LOG+8)(R11), AX
	CMPL AX, $STIMER_VECTOR
	JNE bfail
	MOVQ D_LOG(R11), AX
	MOVQ AX, 8(DI)
	ADDQ $16, DI
	DECQ BX
	JNE bstimer
	EXIT(0)
bkvm:
	STEP(4)
	XORL AX, AX
	XORL CX, CX
	CPUID
	XORQ R10, R10
	CMPL BX, $0x756e6547 // "Genu"
	JNE bkvmstart
	MOVQ $1, R10
bkvmstart:
	MOVQ PARAM(0), BX
	TSCAX
	MOVQ AX, R13
	TESTQ R10, R10
	JNE bkvmintel
bkvmamd:
	MOVL $0xffff, CX
	VMMCALL
	MOVQ AX, R9
	DECQ BX
	JNE bkvmamd
	JMP bkvmend
bkvmintel:
	MOVL $0xffff, CX
	VMCALL
	MOVQ AX, R9
	DECQ BX
	JNE bkvmintel
bkvmend:
	TSCAX
	SUBQ R13, AX
	MOVQ AX, 0(DI)
	CMPQ R9, $2
	JNE bfail
	EXIT(0)
bfail:
	FAILEXIT
	END

// hypervBlobAddrs stores the blobs' addresses (their ABI0 entry points)
// in *p, in HyperVProgram order.
TEXT ·hypervBlobAddrs(SB), NOSPLIT, $0-8
	MOVQ p+0(FP), DI
	MOVQ $·hvDiscovery(SB), AX
	MOVQ AX, 0(DI)
	MOVQ $·hvRefTime(SB), AX
	MOVQ AX, 8(DI)
	MOVQ $·hvSynICMessage(SB), AX
	MOVQ AX, 16(DI)
	MOVQ $·hvSynICEvent(SB), AX
	MOVQ AX, 24(DI)
	MOVQ $·hvTimers(SB), AX
	MOVQ AX, 32(DI)
	MOVQ $·hvCrash(SB), AX
	MOVQ AX, 40(DI)
	MOVQ $·hvCallTable(SB), AX
	MOVQ AX, 48(DI)
	MOVQ $·hvMSRTable(SB), AX
	MOVQ AX, 56(DI)
	MOVQ $·hvStorm(SB), AX
	MOVQ AX, 64(DI)
	MOVQ $·hvBench(SB), AX
	MOVQ AX, 72(DI)
	RET
