#include "textflag.h"

// Test guests: 64-bit code copied into a child partition's RAM and run there
// (never in the host). Each is position independent (relative jumps only)
// and ends with END, a UD2 followed by a marker the loader searches for.
// Convention: the guest reports through the debug-exit port (0xf4): status
// 0 when every step passed, else the number of the first failed step. The
// fault handlers set R15 to the vector and resume R14 bytes past the
// faulting instruction, so a guest can test "this raises #GP" in line.

#define END BYTE $0x0F; BYTE $0x0B; BYTE $'G'; BYTE $'o'; BYTE $'H'; BYTE $'v'; BYTE $'E'; BYTE $'n'; BYTE $'D'
#define VMMCALL BYTE $0x0F; BYTE $0x01; BYTE $0xD9
// GUEST_OS_ID identifies the guest (HV_X64_MSR_GUEST_OS_ID = 1, any
// non-zero value): hypercalls raise #UD until it is set (TLFS 3.13).
// Clobbers AX, CX, DX.
#define GUEST_OS_ID MOVL $0x40000000, CX; MOVL $1, AX; XORL DX, DX; WRMSR
#define VMRUN BYTE $0x0F; BYTE $0x01; BYTE $0xD8
#define EXIT(status) MOVL $status, AX; MOVW $0xf4, DX; OUTL; HLT
#define PUTC(c) MOVB $c, AL; MOVW $0x3f8, DX; OUTB

// #GP handler: pop the error code, note the vector, skip the instruction.
TEXT ·handlerGP(SB), NOSPLIT|NOFRAME, $0
	POPQ R13
	MOVQ $13, R15
	ADDQ R14, 0(SP)
	IRETQ
	END

// #UD handler (no error code).
TEXT ·handlerUD(SB), NOSPLIT|NOFRAME, $0
	MOVQ $6, R15
	ADDQ R14, 0(SP)
	IRETQ
	END

// External-interrupt handler (vectors 0x30, 0x31): count in R15, then
// EOI to the local APIC (its page at 0xFEE00000, EOI at 0xB0).
TEXT ·handlerIRQ(SB), NOSPLIT|NOFRAME, $0
	INCQ R15
	PUSHQ AX
	MOVQ $0xfee000b0, AX
	MOVL $0, (AX)
	POPQ AX
	IRETQ
	END

// guestInterrupts checks external-interrupt injection through its local
// APIC, which it software-enables first. Port 0xe1 makes the
// root queue vector 0x30 at once; port 0xe2 makes it queue 0x31 after a
// delay. Exit status: the failed step.
TEXT ·guestInterrupts(SB), NOSPLIT|NOFRAME, $0
	XORQ R15, R15
	// 0: software-enable the local APIC (SVR: bit 8, spurious vector 0xFF).
	MOVQ $0xfee000f0, AX
	MOVL $0x1ff, (AX)
	// 1: with IF clear a queued interrupt waits.
	CLI
	MOVW $0xe1, DX
	OUTB
	MOVQ $20000, CX
iwait:
	PAUSE
	DECQ CX
	JNE iwait
	CMPQ R15, $0
	JNE ifail1
	// 2: STI lets it in (an emulator may take a few instructions to notice:
	// QEMU checks at translation-block ends).
	STI
	MOVQ $100, CX
iopen:
	PAUSE
	DECQ CX
	JNE iopen
	CMPQ R15, $1
	JNE ifail2
	// 3: HLT sleeps until the delayed interrupt arrives.
	CLI
	MOVW $0xe2, DX
	OUTB
	STI
	HLT
	CMPQ R15, $2
	JNE ifail3
	CLI
	PUTC('i'); PUTC('r'); PUTC('q'); PUTC(' '); PUTC('o'); PUTC('k'); PUTC('\n')
	EXIT(0)
ifail1:
	EXIT(1)
ifail2:
	EXIT(2)
ifail3:
	EXIT(3)
	END

// guestExits: CPUID, MSR, port I/O and VMMCALL round trips.
TEXT ·guestExits(SB), NOSPLIT|NOFRAME, $0
	// 1: the hypervisor leaf says "Microsoft Hv" (the Hyper-V interface).
	MOVL $0x40000000, AX
	XORL CX, CX
	CPUID
	CMPL BX, $0x7263694d // "Micr"
	JNE fail1
	CMPL DX, $0x76482074 // "t Hv"
	JNE fail1
	// 2: leaf 1 says a hypervisor is present.
	MOVL $1, AX
	XORL CX, CX
	CPUID
	BTL $31, CX
	JCC fail2
	// 3: SVM is hidden (8000_0001h ECX bit 2).
	MOVL $0x80000001, AX
	CPUID
	BTL $2, CX
	JCS fail3
	// 4: RDMSR EFER shows LME and LMA, not SVME.
	MOVL $0xC0000080, CX
	RDMSR
	ANDL $0x1500, AX
	CMPL AX, $0x500
	JNE fail4
	// 5: WRMSR to an MSR the model does not have raises #GP.
	MOVQ $2, R14
	XORQ R15, R15
	MOVL $0x12345, CX
	XORL AX, AX
	XORL DX, DX
	WRMSR
	CMPQ R15, $13
	JNE fail5
	// 6: an unknown hypercall code returns HV_STATUS_INVALID_HYPERCALL_CODE
	// (once the guest has set its OS ID).
	GUEST_OS_ID
	MOVQ $0xffff, CX
	XORL AX, AX
	VMMCALL
	CMPQ AX, $2
	JNE fail6
	// 7: HvCallNotifyLongSpinWait succeeds.
	MOVQ $0x10008, CX // HvCallNotifyLongSpinWait, fast
	MOVQ $99, AX
	VMMCALL
	TESTQ AX, AX
	JNE fail7
	// 8: the UART scratch register keeps what is written to it.
	MOVW $0x3ff, DX
	MOVB $0xA5, AL
	OUTB
	XORL AX, AX
	INB
	CMPB AL, $0xA5
	JNE fail8
	// 9: a port nobody claims reads as all ones.
	MOVW $0x2f0, DX
	XORL AX, AX
	INL
	CMPL AX, $0xffffffff
	JNE fail9
	// 10: RDMSR of PAT gives the reset value.
	MOVL $0x277, CX
	RDMSR
	CMPL AX, $0x00070406
	JNE fail10
	// 11: REP OUTSB of "rep\n" from the stack to COM1.
	MOVQ $0x0a706572, AX
	PUSHQ AX
	MOVQ SP, SI
	MOVQ $4, CX
	MOVW $0x3f8, DX
	CLD
	REP; OUTSB
	POPQ AX
	CMPQ CX, $0
	JNE fail11
	// 12: REP INSB of the UART scratch register (0xA5 from step 8).
	PUSHQ CX
	MOVQ SP, DI
	MOVQ $2, CX
	MOVW $0x3ff, DX
	REP; INSB
	POPQ AX
	CMPW AX, $0xa5a5
	JNE fail12
	PUTC('e'); PUTC('x'); PUTC('i'); PUTC('t'); PUTC('s'); PUTC(' '); PUTC('o'); PUTC('k'); PUTC('\n')
	EXIT(0)
fail11:
	EXIT(11)
fail12:
	EXIT(12)
fail1:
	EXIT(1)
fail2:
	EXIT(2)
fail3:
	EXIT(3)
fail4:
	EXIT(4)
fail5:
	EXIT(5)
fail6:
	EXIT(6)
fail7:
	EXIT(7)
fail8:
	EXIT(8)
fail9:
	EXIT(9)
fail10:
	EXIT(10)
	END

// guestPattern fills [RSI, RDI) with the qword in RBX, verifies it, then
// reads the qword at R8 when R8 is not zero (an isolation probe), and
// exits 0. Exit 1: the pattern did not read back.
TEXT ·guestPattern(SB), NOSPLIT|NOFRAME, $0
	MOVQ DI, R9
	SUBQ SI, R9
	SHRQ $3, R9
	MOVQ R9, CX
	MOVQ SI, R10
	MOVQ SI, DI
	MOVQ BX, AX
	CLD
	REP; STOSQ
	MOVQ R10, DI
	MOVQ R9, CX
	REP; SCASQ
	JNE patfail
	TESTQ R8, R8
	JEQ patdone
	MOVQ 0(R8), AX
	MOVQ BX, 0(R8)
patdone:
	PUTC('f'); PUTC('i'); PUTC('l'); PUTC('l'); PUTC('e'); PUTC('d'); PUTC('\n')
	EXIT(0)
patfail:
	EXIT(1)
	END

// guestTripleFault raises #UD with no IDT: #UD, #GP, #DF, shutdown.
TEXT ·guestTripleFault(SB), NOSPLIT|NOFRAME, $0
	PUTC('b'); PUTC('y'); PUTC('e'); PUTC('\n')
	UD2
	END

// guestSpin never exits. (Not a jump to itself: Bochs treats that as an
// idle loop.)
TEXT ·guestSpin(SB), NOSPLIT|NOFRAME, $0
spin:
	INCQ AX
	JMP spin
	END

// guestHalt halts with interrupts disabled, forever.
TEXT ·guestHalt(SB), NOSPLIT|NOFRAME, $0
	CLI
halt:
	HLT
	JMP halt
	END

// guestHostile tries state changes the hardware or the CPU model must
// refuse with #GP or #UD.
TEXT ·guestHostile(SB), NOSPLIT|NOFRAME, $0
	// 1: EFER with a reserved bit (20).
	MOVL $0xC0000080, CX
	RDMSR
	MOVQ AX, R12
	ORL $0x100000, AX
	MOVQ $2, R14
	XORQ R15, R15
	WRMSR
	CMPQ R15, $13
	JNE hfail1
	// 2: EFER.SVME (hidden by the model).
	MOVQ R12, AX
	ORL $0x1000, AX
	XORQ R15, R15
	WRMSR
	CMPQ R15, $13
	JNE hfail2
	// 3: clearing EFER.LME while paging is on.
	MOVQ R12, AX
	ANDL $~0x100, AX
	XORQ R15, R15
	WRMSR
	CMPQ R15, $13
	JNE hfail3
	// 5: VMRUN in the guest is #UD (RAX page aligned: a bad RAX is #GP
	// before the intercept).
	MOVQ $0x10000, AX
	MOVQ $3, R14
	XORQ R15, R15
	VMRUN
	CMPQ R15, $6
	JNE hfail5
	// 6: XSETBV (XSAVE is hidden) is #UD.
	XORL CX, CX
	MOVL $3, AX
	XORL DX, DX
	XORQ R15, R15
	XSETBV
	CMPQ R15, $6
	JNE hfail6
	// 7: EFER still reads back unchanged.
	MOVL $0xC0000080, CX
	RDMSR
	CMPQ AX, R12
	JNE hfail7
	PUTC('r'); PUTC('e'); PUTC('f'); PUTC('u'); PUTC('s'); PUTC('e'); PUTC('d'); PUTC('\n')
	EXIT(0)
hfail1:
	EXIT(1)
hfail2:
	EXIT(2)
hfail3:
	EXIT(3)
hfail4:
	EXIT(4)
hfail5:
	EXIT(5)
hfail6:
	EXIT(6)
hfail7:
	EXIT(7)
	END

// guestBadCR4 sets a reserved CR4 bit (40): the CPU raises #GP (status 13),
// or, where an emulated CPU takes the value, the next entry fails the
// hardware's guest-state checks and the partition is stopped.
TEXT ·guestBadCR4(SB), NOSPLIT|NOFRAME, $0
	MOVQ CR4, AX
	MOVQ $0x10000000000, BX
	ORQ BX, AX
	MOVQ $3, R14
	XORQ R15, R15
	MOVQ AX, CR4
	CMPQ R15, $13
	JNE cr4taken
	EXIT(13)
cr4taken:
	EXIT(0)
	END

// guestBadCR3 loads CR3 with a table outside its RAM: the next page walk
// leaves the partition's memory map (or the CPU refuses the value with #GP,
// reported as status 13).
TEXT ·guestBadCR3(SB), NOSPLIT|NOFRAME, $0
	MOVQ $3, R14
	XORQ R15, R15
	MOVQ $0x7f00000000, AX
	MOVQ AX, CR3
	NOP
	NOP
	EXIT(13)
	END

// guestHello prints its greeting (RSI points at a NUL-terminated string)
// and exits 0.
TEXT ·guestHello(SB), NOSPLIT|NOFRAME, $0
	MOVW $0x3f8, DX
hloop:
	MOVB 0(SI), AL
	TESTB AL, AL
	JEQ hdone
	OUTB
	INCQ SI
	JMP hloop
hdone:
	EXIT(0)
	END

// guestLoop runs RCX iterations of one exit kind for the benchmark; R11
// selects it (0 none: the native baseline, 1 CPUID, 2 the hypercall
// instruction of the CPU's vendor — VMCALL on Intel, VMMCALL elsewhere — as
// a guest picks it, 3 OUT to the UART scratch port). Each iteration's TSC
// delta goes to the qword array at RDI. Exits 0.
TEXT ·guestLoop(SB), NOSPLIT|NOFRAME, $0
	MOVQ CX, R12
	GUEST_OS_ID
	XORL AX, AX
	XORL CX, CX
	CPUID
	XORQ R10, R10
	CMPL BX, $0x756e6547 // "Genu"
	JNE lnext
	MOVQ $1, R10
lnext:
	RDTSC
	SHLQ $32, DX
	ORQ DX, AX
	MOVQ AX, R13
	CMPQ R11, $1
	JEQ lcpuid
	CMPQ R11, $2
	JEQ lcall
	CMPQ R11, $3
	JEQ lout
	JMP lmeasure
lcpuid:
	MOVL $1, AX
	XORL CX, CX
	CPUID
	JMP lmeasure
lcall:
	MOVQ $0x10008, CX // HvCallNotifyLongSpinWait, fast
	TESTQ R10, R10
	JNE lvmcall
	VMMCALL
	JMP lmeasure
lvmcall:
	BYTE $0x0F; BYTE $0x01; BYTE $0xC1 // VMCALL
	JMP lmeasure
lout:
	MOVW $0x3ff, DX
	OUTB
lmeasure:
	RDTSC
	SHLQ $32, DX
	ORQ DX, AX
	SUBQ R13, AX
	MOVQ AX, 0(DI)
	ADDQ $8, DI
	DECQ R12
	JNE lnext
	EXIT(0)
	END

// guestMMIO exercises the instruction emulator on an MMIO range at RBX
// whose bytes start as (offset*7+3) & 0xff. Exit status: the failed step.
TEXT ·guestMMIO(SB), NOSPLIT|NOFRAME, $0
	// 1: byte load.
	MOVB 0x10(BX), AL
	CMPB AL, $0x73
	JNE mfail1
	// 2: 32-bit immediate store, 32-bit load.
	MOVL $0x11223344, 0x20(BX)
	MOVL 0x20(BX), CX
	CMPL CX, $0x11223344
	JNE mfail2
	// 3: 64-bit register store, 16-bit load from its middle.
	MOVQ $0x0102030405060708, R8
	MOVQ R8, 0x28(BX)
	MOVW 0x2a(BX), DX
	CMPW DX, $0x0506
	JNE mfail3
	// 4: MOVZX byte to 32 bits (upper half cleared).
	MOVQ $-1, AX
	MOVBLZX 0x28(BX), AX
	CMPQ AX, $0x08
	JNE mfail4
	// 5: MOVSX byte to 64 bits: (0x13*7+3) & 0xff = 0x88.
	MOVBQSX 0x13(BX), AX
	CMPQ AX, $-0x78
	JNE mfail5
	// 6: REP STOSQ into the device, REP MOVSQ from it into RAM.
	LEAQ 0x100(BX), DI
	MOVQ $4, CX
	MOVQ $0x0dd0feca0df0adde, AX
	CLD
	REP; STOSQ
	LEAQ 0x100(BX), SI
	MOVQ $0x200000, DI
	MOVQ $4, CX
	REP; MOVSQ
	MOVQ $0x200000, DI
	CMPQ 24(DI), AX
	JNE mfail6
	CMPQ CX, $0
	JNE mfail6
	// 7: LODSB from the device.
	LEAQ 0x11(BX), SI
	LODSB
	CMPB AL, $0x7a
	JNE mfail7
	// 8: 16-bit immediate store, byte load of its high half.
	MOVW $0xbeef, 0x40(BX)
	MOVB 0x41(BX), AL
	CMPB AL, $0xbe
	JNE mfail8
	// 9: read-modify-write ADD on the device.
	ADDL $1, 0x20(BX)
	MOVL 0x20(BX), CX
	CMPL CX, $0x11223345
	JNE mfail9
	PUTC('m'); PUTC('m'); PUTC('i'); PUTC('o'); PUTC(' '); PUTC('o'); PUTC('k'); PUTC('\n')
	EXIT(0)
mfail1:
	EXIT(1)
mfail2:
	EXIT(2)
mfail3:
	EXIT(3)
mfail4:
	EXIT(4)
mfail5:
	EXIT(5)
mfail6:
	EXIT(6)
mfail7:
	EXIT(7)
mfail8:
	EXIT(8)
mfail9:
	EXIT(9)
	END

// Addresses of the blobs (their ABI0 entry points).
TEXT ·blobAddrs(SB), NOSPLIT, $0-8
	MOVQ p+0(FP), DI
	MOVQ $·handlerGP(SB), AX
	MOVQ AX, 0(DI)
	MOVQ $·handlerUD(SB), AX
	MOVQ AX, 8(DI)
	MOVQ $·guestExits(SB), AX
	MOVQ AX, 16(DI)
	MOVQ $·guestPattern(SB), AX
	MOVQ AX, 24(DI)
	MOVQ $·guestTripleFault(SB), AX
	MOVQ AX, 32(DI)
	MOVQ $·guestSpin(SB), AX
	MOVQ AX, 40(DI)
	MOVQ $·guestHalt(SB), AX
	MOVQ AX, 48(DI)
	MOVQ $·guestHostile(SB), AX
	MOVQ AX, 56(DI)
	MOVQ $·guestBadCR3(SB), AX
	MOVQ AX, 64(DI)
	MOVQ $·guestHello(SB), AX
	MOVQ AX, 72(DI)
	MOVQ $·guestLoop(SB), AX
	MOVQ AX, 80(DI)
	MOVQ $·guestBadCR4(SB), AX
	MOVQ AX, 88(DI)
	MOVQ $·guestMMIO(SB), AX
	MOVQ AX, 96(DI)
	MOVQ $·handlerIRQ(SB), AX
	MOVQ AX, 104(DI)
	MOVQ $·guestInterrupts(SB), AX
	MOVQ AX, 112(DI)
	RET
