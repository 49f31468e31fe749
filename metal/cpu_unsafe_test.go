package metal

import (
	"testing"
	"unsafe"
)

// TestCPUOffsetsMatchTheAssembly pins every cpu field the assembly reaches
// by a constant offset (trap_amd64.s as off(GS), boot_amd64.s as off(BX))
// to where the compiler put it.
func TestCPUOffsetsMatchTheAssembly(t *testing.T) {
	var c cpu
	for _, f := range []struct {
		name     string
		offset   uintptr
		constant uintptr
	}{
		{"kstack", unsafe.Offsetof(c.kstack), cpuOffKstack},
		{"kstackTop", unsafe.Offsetof(c.kstackTop), cpuOffKstackTop},
		{"kframe", unsafe.Offsetof(c.kframe), cpuOffKframe},
		{"fxArea", unsafe.Offsetof(c.fxArea), cpuOffFXArea},
		{"entryFSBase", unsafe.Offsetof(c.entryFSBase), cpuOffEntryFSBase},
		{"kernelFS", unsafe.Offsetof(c.kernelFS), cpuOffKernelFS},
		{"syscallSP", unsafe.Offsetof(c.syscallSP), cpuOffSyscallSP},
		{"syscallRIP", unsafe.Offsetof(c.syscallRIP), cpuOffSyscallRIP},
		{"tls", unsafe.Offsetof(c.tls), cpuOffTLS},
		{"kernG", unsafe.Offsetof(c.kernG), cpuOffKernG},
	} {
		if f.offset != f.constant {
			t.Errorf("cpu.%s is at %d, the assembly uses %d", f.name, f.offset, f.constant)
		}
	}
	// entry64 sets FS base to &tls[1], so that -8(FS) is tls[0] = &kernG,
	// and writes the runtime g's first four words: stack.lo, stack.hi,
	// stackguard0, stackguard1.
	if len(c.tls) != 2 {
		t.Errorf("the kernel TLS block has %d words, want the g slot and the FS base", len(c.tls))
	}
	if unsafe.Sizeof(c.kernG) < 4*8 {
		t.Errorf("kernG is %d bytes, smaller than the words entry64 writes", unsafe.Sizeof(c.kernG))
	}
}

// TestTrapFrameMatchesThePushOrder pins TrapFrame's layout to the order
// trapCommon and the entry stubs push (trap_amd64.s): the CPU's IRETQ frame
// at the top, the stub's error code and vector below it, then RAX pushed
// first down to R15 pushed last, at the frame's start.
func TestTrapFrameMatchesThePushOrder(t *testing.T) {
	var f TrapFrame
	for i, off := range []uintptr{
		unsafe.Offsetof(f.R15), unsafe.Offsetof(f.R14), unsafe.Offsetof(f.R13), unsafe.Offsetof(f.R12),
		unsafe.Offsetof(f.R11), unsafe.Offsetof(f.R10), unsafe.Offsetof(f.R9), unsafe.Offsetof(f.R8),
		unsafe.Offsetof(f.RBP), unsafe.Offsetof(f.RDI), unsafe.Offsetof(f.RSI), unsafe.Offsetof(f.RDX),
		unsafe.Offsetof(f.RCX), unsafe.Offsetof(f.RBX), unsafe.Offsetof(f.RAX),
		unsafe.Offsetof(f.Vector), unsafe.Offsetof(f.ErrorCode),
		unsafe.Offsetof(f.RIP), unsafe.Offsetof(f.CS), unsafe.Offsetof(f.RFLAGS), unsafe.Offsetof(f.RSP), unsafe.Offsetof(f.SS),
	} {
		if off != uintptr(8*i) {
			t.Errorf("TrapFrame word %d is at offset %d", i, off)
		}
	}
	if unsafe.Sizeof(f) != trapFrameSize {
		t.Errorf("TrapFrame is %d bytes, trapFrameSize %d", unsafe.Sizeof(f), trapFrameSize)
	}
	// entry64 starts kmain kstackFrameArea below the top, clear of the
	// frame that every later entry builds there.
	if kstackFrameArea < trapFrameSize {
		t.Errorf("kstackFrameArea %d cannot hold a %d-byte frame", kstackFrameArea, trapFrameSize)
	}
}

// TestEntryStateIsOnTheCPUsOwnStack checks initEntryState's addresses: the
// frame ends at the aligned top of the CPU's kernel stack and the FXSAVE
// area is 16-byte aligned inside the CPU's buffer.
func TestEntryStateIsOnTheCPUsOwnStack(t *testing.T) {
	c := &cpus[0]
	c.initEntryState()
	lo := uintptr(unsafe.Pointer(&c.kstack[0]))
	if c.kstackTop%16 != 0 || c.kstackTop > lo+kstackSize || c.kstackTop < lo+kstackSize-15 {
		t.Errorf("kstackTop %#x for a stack at %#x", c.kstackTop, lo)
	}
	if c.kframe+trapFrameSize != c.kstackTop {
		t.Errorf("kframe %#x, kstackTop %#x", c.kframe, c.kstackTop)
	}
	buf := uintptr(unsafe.Pointer(&c.fxAreaBuf[0]))
	if c.fxArea%16 != 0 || c.fxArea < buf || c.fxArea+fxAreaSize > buf+uintptr(len(c.fxAreaBuf)) {
		t.Errorf("fxArea %#x in a buffer at %#x", c.fxArea, buf)
	}
	if c.self != uintptr(unsafe.Pointer(c)) {
		t.Errorf("self %#x, the cpu is at %p", c.self, c)
	}
	hostTest, hostCPU = true, 0
	if thisCPU() != c {
		t.Error("thisCPU is not the boot CPU")
	}
}
