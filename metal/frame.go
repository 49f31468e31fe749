package metal

import "gohv/x86"

// The register frame every trap builds, the kernel stack it lands on, and
// the segment layout, all shared with the assembly. Each CPU's entry state
// (the stack, where the frame and FPU image go) is in its cpu (cpu.go).

// Sizes and the syscall pseudo-vector (the assembly reads them through
// go_asm.h).
const (
	kstackSize      = 128 << 10
	kstackGuard     = 4 << 10 // kernel g's stackguard: overflow faults loudly, never calls morestack
	kstackFrameArea = 1024    // top of kstack reserved for the entry TrapFrame
	vectorSyscall   = 0x100   // TrapFrame.Vector of a SYSCALL: above every hardware vector
	trapFrameSize   = 22 * 8  // Sizeof(TrapFrame{}), checked in cpu_unsafe.go
	fxAreaSize      = x86.FXSaveAreaSize
)

// The GDT's layout (the boot GDT in boot_amd64.s has the first three): null,
// 64-bit kernel code, kernel data, and the 64-bit TSS in two slots. Selectors
// are slot numbers shifted past RPL 0 and TI 0.
const (
	gdtKernelCode = 1
	gdtKernelData = 2
	gdtTSS        = 3
	gdtEntries    = 5

	selKernelCode = gdtKernelCode << x86.SelectorIndexShift
	selKernelData = gdtKernelData << x86.SelectorIndexShift
	selTSS        = gdtTSS << x86.SelectorIndexShift
)

// TrapFrame is the register state of an interrupted thread, in the order the
// entry code pushes it (lowest address first). The last five words are the
// IRETQ frame.
type TrapFrame struct {
	R15, R14, R13, R12, R11, R10, R9, R8 uint64
	RBP, RDI, RSI, RDX, RCX, RBX, RAX    uint64
	Vector, ErrorCode                    uint64
	RIP, CS, RFLAGS, RSP, SS             uint64
}
