package metal

import "unsafe"

// Addresses of per-CPU state: computing them takes unsafe, so they are
// here, with the compile-time checks of what the assembly assumes.

// The assembly addresses cpu fields and the trap frame by the constants in
// cpu.go and frame.go. An index other than 0 into a one-element array does
// not compile, so each line below fails the build when a field moves.
var (
	_ = [1]struct{}{}[cpuOffKstackTop-unsafe.Offsetof(cpu{}.kstackTop)]
	_ = [1]struct{}{}[cpuOffKframe-unsafe.Offsetof(cpu{}.kframe)]
	_ = [1]struct{}{}[cpuOffFXArea-unsafe.Offsetof(cpu{}.fxArea)]
	_ = [1]struct{}{}[cpuOffEntryFSBase-unsafe.Offsetof(cpu{}.entryFSBase)]
	_ = [1]struct{}{}[cpuOffKernelFS-unsafe.Offsetof(cpu{}.kernelFS)]
	_ = [1]struct{}{}[cpuOffSyscallSP-unsafe.Offsetof(cpu{}.syscallSP)]
	_ = [1]struct{}{}[cpuOffSyscallRIP-unsafe.Offsetof(cpu{}.syscallRIP)]
	_ = [1]struct{}{}[cpuOffTLS-unsafe.Offsetof(cpu{}.tls)]
	_ = [1]struct{}{}[cpuOffKernG-unsafe.Offsetof(cpu{}.kernG)]
	_ = [1]struct{}{}[cpuOffSelf-unsafe.Offsetof(cpu{}.self)]
	_ = [1]struct{}{}[cpuOffKstack-unsafe.Offsetof(cpu{}.kstack)]
	_ = [1]struct{}{}[trapFrameSize-unsafe.Sizeof(TrapFrame{})]
)

// initEntryState computes the addresses c's entry paths use: the top of its
// kernel stack (also IST1 and the SYSCALL stack), where the trap frame lands
// below it, and its 16-byte-aligned FXSAVE area. Runs at boot with
// interrupts off; must not allocate.
func (c *cpu) initEntryState() {
	c.kstackTop = (uintptr(unsafe.Pointer(&c.kstack[0])) + kstackSize) &^ 15
	c.kframe = c.kstackTop - trapFrameSize
	c.fxArea = (uintptr(unsafe.Pointer(&c.fxAreaBuf[0])) + 15) &^ 15
	c.self = uintptr(unsafe.Pointer(c))
}

// isEntryFrame reports whether f is where c's entry paths put the
// interrupted thread's frame (an exception anywhere else came from kernel
// code). Must not allocate.
func (c *cpu) isEntryFrame(f *TrapFrame) bool { return uintptr(unsafe.Pointer(f)) == c.kframe }

// stackTop is the 16-byte-aligned top of the stack s.
func stackTop(s []byte) uint64 {
	return (uint64(uintptr(unsafe.Pointer(&s[0]))) + uint64(len(s))) &^ 15
}

// addrOfBytes and addrOfWords are the addresses of tables the CPU reads
// (descriptor tables, the TSS, boot scratch).
func addrOfBytes(b []byte) uint64   { return uint64(uintptr(unsafe.Pointer(&b[0]))) }
func addrOfWords(w []uint64) uint64 { return uint64(uintptr(unsafe.Pointer(&w[0]))) }
