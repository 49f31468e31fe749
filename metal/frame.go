package metal

import (
	"unsafe"

	"gohv/x86"
)

// Kernel stack, trap frame and segment layout shared with the assembly.
const (
	kstackSize      = 128 << 10
	kstackGuard     = 4 << 10 // kernel g's stackguard: overflow faults loudly, never calls morestack
	kstackFrameArea = 1024    // top of kstack reserved for the entry TrapFrame
	vectorSyscall   = 0x100   // TrapFrame.Vector of a SYSCALL: above every hardware vector
	trapFrameSize   = int(unsafe.Sizeof(TrapFrame{}))
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

// Kernel entry state. The kernel stack and everything below are touched by
// the assembly entry paths; all of it is pointer-free.
var (
	kstack      [kstackSize]byte
	kstackTop   uintptr // 16-byte aligned; IST1 and the SYSCALL stack
	kframe      uintptr // kstackTop - trapFrameSize: where every entry's TrapFrame lands
	fxAreaBuf   [fxAreaSize + 16]byte
	fxArea      uintptr // 16-byte aligned FXSAVE image of the interrupted thread
	entryFSBase uint64  // FS base of the interrupted thread
	syscallSP   uint64  // scratch for the SYSCALL entry
	syscallRIP  uint64

	// inKernel is set while kernel code runs; a trap that finds it set is a
	// kernel bug (a fault in the kernel itself).
	inKernel bool
)

func entryFrame() *TrapFrame { return (*TrapFrame)(x86.Ptr(kframe)) }

func entryFX() *[fxAreaSize]byte { return (*[fxAreaSize]byte)(x86.Ptr(fxArea)) }

func initKernelStack() {
	kstackTop = (uintptr(unsafe.Pointer(&kstack[0])) + kstackSize) &^ 15
	kframe = kstackTop - uintptr(trapFrameSize)
	fxArea = (uintptr(unsafe.Pointer(&fxAreaBuf[0])) + 15) &^ 15
}
