package metal

import (
	"reflect"
	"testing"

	"gohv/metal/pagetable"
	"gohv/metal/physmem"
	"gohv/x86"
)

// The kernel's logic runs here in an ordinary process: "physical memory" is
// a Go buffer (physBase points at it), the console is testConsole, and the
// thread's memory is a buffer inside [imageStart, imageEnd).

const fakePhys = 32 << 20

var (
	fakePhysMem []byte
	userMem     []byte
)

func setupKernel(t *testing.T) {
	t.Helper()
	hostTest = true
	testConsoleLen = 0
	if fakePhysMem == nil {
		fakePhysMem = make([]byte, fakePhys+pageSize)
		userMem = make([]byte, 1<<20)
	}
	physBase = (addrOfBytes(fakePhysMem) + pageSize - 1) &^ (pageSize - 1)
	var m physmem.Map
	m.AddUsable(pageSize, fakePhys)
	if !pages.Init(&m, pageBits[:physmem.BitmapWords(fakePhys)]) {
		t.Fatal("allocator init")
	}
	var ok bool
	if kpt, ok = pagetable.New(kernelMem{}); !ok {
		t.Fatal("page table")
	}
	nvmas = 0
	threads = [maxThreads]thread{}
	tablesPending = 0
	threadsHigh = 0
	hostCPU, cpuSlots = 0, 1
	for k := range cpus {
		cpus[k].online.Store(false)
		cpus[k].index, cpus[k].pinnedQueued, cpus[k].kicked = int32(k), 0, false
	}
	hostIPIs = [256]uint64{}
	c := thisCPU()
	c.online.Store(true)
	runqHead, runqLen, runqAny, wokenQueued = 0, 0, 0, 0
	c.needResched, threadCount = false, 0
	c.timerArmed, c.wakeAt, c.wakeStale, c.sliceStart, c.timerDirty = 0, 0, false, 0, true
	c.timerFire, c.timerAdvance, c.timerTSC, c.timerStale, c.timerArrival = 0, 0, 0, false, 0
	c.timerInterrupts, c.timerEarly, c.timerPrograms, c.timerSpinNS, c.idleWakeups = 0, 0, 0, 0, 0
	hostTimer, hostCountEnd = timerWrite{}, 0
	nextTID = 1
	sigactions = [65]sigaction{}
	fdKind = [maxFDs]uint8{fdConsole, fdConsole, fdConsole}
	epollFD, eventFD, eventfdCount, epollArmed = -1, -1, 0, false
	unsupportedSeen = [8]uint64{}
	c.initEntryState()
	imageStart = addrOfBytes(userMem)
	imageEnd = imageStart + uint64(len(userMem))
	tscMult = (uint64(1e9) << 32) / 1e9
	tscBase = x86.RDTSC()
	c.setupIdleThread(bootIdleThread)
	c.current = newThread()
	currentThread().state = tsRunning
}

func consoleText() string { return string(testConsole[:min(testConsoleLen, len(testConsole))]) }

// userAddr is the address of offset off in the thread-visible test buffer.
func userAddr(off int) uint64 { return addrOfBytes(userMem[off:]) }

func sys(nr uint64, args ...uint64) uint64 {
	f := entryFrame()
	*f = TrapFrame{RAX: nr}
	regs := []*uint64{&f.RDI, &f.RSI, &f.RDX, &f.R10, &f.R8, &f.R9}
	for i, a := range args {
		*regs[i] = a
	}
	doSyscall(f)
	return f.RAX
}

// The system call path runs on the kernel stack before and beside the Go
// runtime: dispatch, the per-CPU state it reads and the scheduler's switch
// must not allocate.
func TestSyscallPathDoesNotAllocate(t *testing.T) {
	setupKernel(t)
	ts, word, fs := userAddr(0), userAddr(256), userAddr(512)
	other := newThread()
	makeRunnable(other) // so sched_yield and nanosleep(0) switch threads
	f := entryFrame()
	for _, c := range []struct {
		name       string
		nr         uint64
		a0, a1, a2 uint64
	}{
		{"getpid", sysGetpid, 0, 0, 0},
		{"gettid", sysGettid, 0, 0, 0},
		{"clock_gettime", sysClockGettime, 1, ts, 0},
		{"sched_yield", sysSchedYield, 0, 0, 0},
		{"nanosleep(0)", sysNanosleep, userAddr(768), 0, 0},
		{"futex wake", sysFutex, word, futexWake | futexPrivate, 1},
		{"arch_prctl(ARCH_GET_FS)", sysArchPrctl, 0x1003, fs, 0},
	} {
		n := testing.AllocsPerRun(100, func() {
			*f = TrapFrame{RAX: c.nr, RDI: c.a0, RSI: c.a1, RDX: c.a2}
			doSyscall(f)
			schedule()
		})
		if n != 0 {
			t.Errorf("%s: %v allocations per call", c.name, n)
		}
	}
}

// Kernel state is touched with a fake goroutine descriptor and no write
// barriers: it must hold no Go pointers.
func TestKernelStateIsPointerFree(t *testing.T) {
	for _, typ := range []reflect.Type{
		reflect.TypeFor[cpu](),
		reflect.TypeFor[[maxCPUs]cpu](),
		reflect.TypeFor[thread](),
		reflect.TypeFor[vma](),
		reflect.TypeFor[TrapFrame](),
		reflect.TypeFor[sigaction](),
		reflect.TypeFor[bootInfo](),
		reflect.TypeFor[injectFlags](),
	} {
		if hasPointers(typ) {
			t.Errorf("%v contains pointers", typ)
		}
	}
	// physmem.Allocator holds the bitmap slice, stored once at boot.
}

func hasPointers(t reflect.Type) bool {
	switch t.Kind() {
	case reflect.Pointer, reflect.Slice, reflect.Map, reflect.Chan, reflect.Func, reflect.Interface, reflect.String, reflect.UnsafePointer:
		return true
	case reflect.Array:
		return t.Len() > 0 && hasPointers(t.Elem())
	case reflect.Struct:
		for i := 0; i < t.NumField(); i++ {
			if hasPointers(t.Field(i).Type) {
				return true
			}
		}
	}
	return false
}
