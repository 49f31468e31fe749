package metal

import "gohv/x86"

// Declarations of metal's own assembly: the entry points in boot_amd64.s,
// trap_amd64.s and kdata_amd64.s. The generic privileged instructions are
// package x86's.

func boot32()
func entry64()
func apEntry64()
func cpuSelf() uintptr
func syscallEntry()
func idleLoop()
func resume()
func vectorAddr(i int) uintptr
func rt0Entry() uintptr
func idleLoopAddr() uintptr
func syscallEntryAddr() uintptr
func apEntry64Addr() uintptr

func bootSymbols() (boot32, entry64 uintptr)

// Architectural numbers the assembly uses, under this package's names so
// that go_asm.h (which holds only this package's constants) carries them
// into the .s files.
const (
	// boot32 (32-bit protected mode, boot_amd64.s).
	bootTableFlags = x86.PTEPresent | x86.PTEWrite                 // PML4E, PDPTE
	bootPDEFlags   = x86.PTEPresent | x86.PTEWrite | x86.PTEPS     // 2 MiB identity pages
	bootPageSize   = x86.PageSize2M                                // one PDE's reach
	bootCR4        = x86.CR4PAE                                    // set before paging
	bootMsrEFER    = x86.MsrEFER                                   // holds LME
	bootEFER       = x86.EFERLME                                   // set before paging
	bootCR0        = x86.CR0PG | x86.CR0PE                         // enters compatibility mode
	bootGDTCode    = x86.DescriptorFlatCode64                      // the boot GDT's slot gdtKernelCode
	bootGDTData    = x86.DescriptorFlatData                        // the boot GDT's slot gdtKernelData
	bootGDTLimit   = (gdtKernelData+1)<<x86.SelectorIndexShift - 1 // null, code, data

	// entry64 and apEntry64: SSE for Go code (SDM Vol. 3A 14.1.3): CR0.EM
	// and TS clear, MP and NE set, CR4.OSFXSR and OSXMMEXCPT set; and
	// caching on (CD and NW clear), which INIT leaves off on an
	// application processor (SDM Vol. 3A 9.1.1: CR0 60000010H after INIT).
	entryCR0Clear = x86.CR0EM | x86.CR0TS | x86.CR0CD | x86.CR0NW
	entryCR0Set   = x86.CR0MP | x86.CR0NE
	entryCR4Set   = x86.CR4OSFXSR | x86.CR4OSXMMEXCPT

	// entry64 and the trap paths switch FS between thread and kernel TLS;
	// entry64 points GS at the CPU's cpu.
	msrFSBase = x86.MsrFSBase
	msrGSBase = x86.MsrGSBase
)
