// Boot entry: 32-bit protected mode (Multiboot) → 64-bit long mode → kmain.

#include "textflag.h"
#include "go_asm.h"

// Layout contract with tools/mkimage (see readImageBounds in boot.go):
//   The image is linked with -T 0x200000, so the file is loaded at
//   LoadBase = 0x1ff000 and the Multiboot header sits at file offset 0x800,
//   i.e. at 0x1ff800. mkimage appends two words after the 48-byte header:
//     0x1ff830: address of ·entry64
//     0x1ff834: address of ·bootScratch rounded up to 4 KiB (7 pages)
// Those absolute addresses are encoded in the 32-bit code below.

// boot32 is the Multiboot entry point. The loader enters in 32-bit protected
// mode with paging off, EAX = boot magic, EBX = boot information address.
// The Go assembler only emits 64-bit code, so the 32-bit path is spelled out
// byte by byte, one instruction a line. It identity-maps the first 4 GiB with
// 2 MiB pages, enables long mode and far-returns into ·entry64 with ESI = magic
// and EDI = boot information.
TEXT ·boot32(SB),NOSPLIT|NOFRAME,$0
	BYTE $0xfa                                                 // cli
	BYTE $0xfc                                                 // cld
	BYTE $0x89; BYTE $0xc6                                     // mov esi, eax      (magic)
	BYTE $0x89; BYTE $0xdf                                     // mov edi, ebx      (boot info)
	BYTE $0x8b; BYTE $0x2d; LONG $(const_mbHeaderAddr+const_mbHeaderScratch) // mov ebp, [0x1ff834] (scratch)
	BYTE $0x57                                                 // push edi
	BYTE $0x89; BYTE $0xef                                     // mov edi, ebp
	BYTE $0x31; BYTE $0xc0                                     // xor eax, eax
	BYTE $0xb9; LONG $0x00001c00                               // mov ecx, 7*1024
	BYTE $0xf3; BYTE $0xab                                     // rep stosd       (zero 7 pages)
	BYTE $0x5f                                                 // pop edi
	BYTE $0x8d; BYTE $0x85; LONG $(0x1000+const_bootTableFlags) // lea eax, [ebp+0x1003]
	BYTE $0x89; BYTE $0x45; BYTE $0x00                         // mov [ebp], eax   PML4[0] → PDPT
	BYTE $0x8d; BYTE $0x85; LONG $(0x2000+const_bootTableFlags) // lea eax, [ebp+0x2003]
	BYTE $0x89; BYTE $0x85; LONG $0x00001000                   // mov [ebp+0x1000], eax  PDPT[0] → PD0
	BYTE $0x05; LONG $0x00001000                               // add eax, 0x1000
	BYTE $0x89; BYTE $0x85; LONG $0x00001008                   // mov [ebp+0x1008], eax  PDPT[1] → PD1
	BYTE $0x05; LONG $0x00001000                               // add eax, 0x1000
	BYTE $0x89; BYTE $0x85; LONG $0x00001010                   // mov [ebp+0x1010], eax  PDPT[2] → PD2
	BYTE $0x05; LONG $0x00001000                               // add eax, 0x1000
	BYTE $0x89; BYTE $0x85; LONG $0x00001018                   // mov [ebp+0x1018], eax  PDPT[3] → PD3
	BYTE $0x8d; BYTE $0x95; LONG $0x00002000                   // lea edx, [ebp+0x2000]
	BYTE $0xb8; LONG $const_bootPDEFlags                        // mov eax, 0x83 (P|W|PS)
	BYTE $0xb9; LONG $0x00000800                               // mov ecx, 2048
	BYTE $0x89; BYTE $0x02                                     // 1: mov [edx], eax
	BYTE $0x05; LONG $const_bootPageSize                        //    add eax, 2 MiB
	BYTE $0x83; BYTE $0xc2; BYTE $0x08                         //    add edx, 8
	BYTE $0x49                                                 //    dec ecx
	BYTE $0x75; BYTE $0xf3                                     //    jnz 1b
	BYTE $0x0f; BYTE $0x20; BYTE $0xe0                         // mov eax, cr4
	BYTE $0x83; BYTE $0xc8; BYTE $const_bootCR4                 // or eax, CR4.PAE
	BYTE $0x0f; BYTE $0x22; BYTE $0xe0                         // mov cr4, eax
	BYTE $0x0f; BYTE $0x22; BYTE $0xdd                         // mov cr3, ebp
	BYTE $0xb9; LONG $const_bootMsrEFER                         // mov ecx, IA32_EFER
	BYTE $0x0f; BYTE $0x32                                     // rdmsr
	BYTE $0x0d; LONG $const_bootEFER                            // or eax, EFER.LME
	BYTE $0x0f; BYTE $0x30                                     // wrmsr
	BYTE $0x0f; BYTE $0x20; BYTE $0xc0                         // mov eax, cr0
	BYTE $0x0d; LONG $const_bootCR0                             // or eax, CR0.PG|CR0.PE
	BYTE $0x0f; BYTE $0x22; BYTE $0xc0                         // mov cr0, eax    (compatibility mode)
	BYTE $0xc7; BYTE $0x85; LONG $0x00006008; LONG $(const_bootGDTCode&0xffffffff) // GDT[1] low:  code64
	BYTE $0xc7; BYTE $0x85; LONG $0x0000600c; LONG $(const_bootGDTCode>>32)        // GDT[1] high: P, DPL0, code, L
	BYTE $0xc7; BYTE $0x85; LONG $0x00006010; LONG $(const_bootGDTData&0xffffffff) // GDT[2] low:  data
	BYTE $0xc7; BYTE $0x85; LONG $0x00006014; LONG $(const_bootGDTData>>32)        // GDT[2] high: P, DPL0, data, writable
	BYTE $0x66; BYTE $0xc7; BYTE $0x85; LONG $0x00006020; WORD $const_bootGDTLimit // GDTR.limit = 23
	BYTE $0x8d; BYTE $0x85; LONG $0x00006000                   // lea eax, [ebp+0x6000]
	BYTE $0x89; BYTE $0x85; LONG $0x00006022                   // mov [ebp+0x6022], eax  GDTR.base
	BYTE $0x0f; BYTE $0x01; BYTE $0x95; LONG $0x00006020       // lgdt [ebp+0x6020]
	BYTE $0x6a; BYTE $const_selKernelCode                       // push 0x08 (code64 selector)
	BYTE $0xff; BYTE $0x35; LONG $(const_mbHeaderAddr+const_mbHeaderEntry64) // push dword [0x1ff830] (entry64)
	BYTE $0xcb                                                 // retf → 64-bit mode

// CPU_ENTRY makes the cpu at BX this CPU's, in 64-bit mode with interrupts
// off: cpu.self holds its address and GS base points at it for good (the trap paths find the CPU's fields
// as off(GS)); SP is its kernel stack, below the trap frame area at the top;
// its kernel goroutine descriptor (cpu.kernG: stack bounds and guards) and
// the TLS word that points at it (cpu.tls[0], -8 from cpu.kernelFS) are
// set before the first Go function prologue reads them; SSE is on for Go
// code (CR0.EM=0 MP=1 NE=1 TS=0, CR4.OSFXSR|OSXMMEXCPT); FS is the kernel
// TLS. Clobbers AX, CX, DX. Used by entry64 and apEntry64.
#define CPU_ENTRY \
	MOVQ BX, const_cpuOffSelf(BX); \
	MOVQ BX, AX; \
	MOVQ BX, DX; \
	SHRQ $32, DX; \
	MOVL $const_msrGSBase, CX; \
	WRMSR; \
	LEAQ const_cpuOffKstack(BX), SP; \
	ADDQ $(const_kstackSize-const_kstackFrameArea), SP; \
	ANDQ $~15, SP; \
	LEAQ const_cpuOffKstack(BX), AX; \
	MOVQ AX, const_cpuOffKernG(BX); \
	LEAQ const_kstackSize(AX), CX; \
	MOVQ CX, (const_cpuOffKernG+8)(BX); \
	LEAQ const_kstackGuard(AX), CX; \
	MOVQ CX, (const_cpuOffKernG+16)(BX); \
	MOVQ CX, (const_cpuOffKernG+24)(BX); \
	LEAQ const_cpuOffKernG(BX), AX; \
	MOVQ AX, const_cpuOffTLS(BX); \
	LEAQ (const_cpuOffTLS+8)(BX), AX; \
	MOVQ AX, const_cpuOffKernelFS(BX); \
	MOVQ CR0, AX; \
	ANDQ $~const_entryCR0Clear, AX; \
	ORQ  $const_entryCR0Set, AX; \
	MOVQ AX, CR0; \
	MOVQ CR4, AX; \
	ORQ  $const_entryCR4Set, AX; \
	MOVQ AX, CR4; \
	BYTE $0xdb; BYTE $0xe3; \
	MOVQ const_cpuOffKernelFS(BX), AX; \
	MOVQ AX, DX; \
	SHRQ $32, DX; \
	MOVL $const_msrFSBase, CX; \
	WRMSR

// entry64 runs in 64-bit mode on the boot page tables with interrupts off.
// ESI = boot magic, EDI = boot information address (zero-extended below).
TEXT ·entry64(SB),NOSPLIT|NOFRAME,$0
	MOVL $const_selKernelData, AX
	BYTE $0x8e; BYTE $0xd8 // mov ds, ax
	BYTE $0x8e; BYTE $0xc0 // mov es, ax
	BYTE $0x8e; BYTE $0xd0 // mov ss, ax
	MOVL SI, SI
	MOVL DI, DI
	// This is the boot CPU: its state is cpus[0] (cpu.go), in BX from here
	// to the call.
	MOVQ $·cpus(SB), BX
	CPU_ENTRY
	SUBQ $16, SP
	MOVQ SI, 0(SP)
	MOVQ DI, 8(SP)
	CALL ·kmain(SB)
	// kmain never returns; if it does, stop here.
hang:
	CLI
	HLT
	JMP hang

// apEntry64 is where an application processor's start-up code (the
// trampoline, smp_trampoline.go) jumps once in 64-bit mode on the kernel's
// page tables, with interrupts off and DI = the address of its cpu, which
// StartCPUs prepared (initEntryState, buildGDT). It calls apMain, which
// never returns.
TEXT ·apEntry64(SB),NOSPLIT|NOFRAME,$0
	MOVL $const_selKernelData, AX
	BYTE $0x8e; BYTE $0xd8 // mov ds, ax
	BYTE $0x8e; BYTE $0xc0 // mov es, ax
	BYTE $0x8e; BYTE $0xd0 // mov ss, ax
	MOVQ DI, BX
	CPU_ENTRY
	SUBQ $16, SP
	MOVQ BX, 0(SP)
	CALL ·apMain(SB)
aphang:
	CLI
	HLT
	JMP aphang
