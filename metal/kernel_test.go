package metal

import (
	"encoding/binary"
	"reflect"
	"strings"
	"testing"
	"unsafe"

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
	physBase = (uint64(uintptr(unsafe.Pointer(&fakePhysMem[0]))) + pageSize - 1) &^ (pageSize - 1)
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
	runqHead, runqLen, needResched, threadCount = 0, 0, false, 0
	nextTID = 1
	sigactions = [65]sigaction{}
	fdKind = [maxFDs]uint8{fdConsole, fdConsole, fdConsole}
	epollFD, eventFD, eventfdCount, epollArmed = -1, -1, 0, false
	unsupportedSeen = [8]uint64{}
	initKernelStack()
	imageStart = uint64(uintptr(unsafe.Pointer(&userMem[0])))
	imageEnd = imageStart + uint64(len(userMem))
	tscMult = (uint64(1e9) << 32) / 1e9
	tscBase = x86.RDTSC()
	setupIdleThread()
	current = newThread()
	threads[current].state = tsRunning
}

func consoleText() string { return string(testConsole[:min(testConsoleLen, len(testConsole))]) }

// userAddr is the address of offset off in the thread-visible test buffer.
func userAddr(off int) uint64 { return uint64(uintptr(unsafe.Pointer(&userMem[off]))) }

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

func TestSyscallBasics(t *testing.T) {
	setupKernel(t)
	if r := sys(sysGetpid); r != 1 {
		t.Errorf("getpid = %d", r)
	}
	if r := sys(sysGettid); r != uint64(threads[current].tid) {
		t.Errorf("gettid = %d", r)
	}
	ts := userAddr(0)
	if r := sys(sysClockGettime, 1, ts); r != 0 {
		t.Fatalf("clock_gettime = %d", int64(r))
	}
	first := *userU64(ts)*1e9 + *userU64(ts + 8)
	sys(sysClockGettime, 1, ts)
	if second := *userU64(ts)*1e9 + *userU64(ts + 8); second < first {
		t.Errorf("monotonic clock went back: %d then %d", first, second)
	}
	if r := sys(sysClockGettime, 1, 0x10); r != errno(EFAULT) {
		t.Errorf("clock_gettime to page 0 = %d, want EFAULT", int64(r))
	}
	if r := sys(sysSchedGetaffinity, 0, 8192, userAddr(64)); r != 8 || *userU64(userAddr(64)) != 1 {
		t.Errorf("sched_getaffinity = %d mask %#x", r, *userU64(userAddr(64)))
	}
	if r := sys(sysFcntl, 1, 1); r != 0 {
		t.Errorf("fcntl(1, F_GETFD) = %d", int64(r))
	}
	if r := sys(sysFcntl, 9, 1); r != errno(EBADF) {
		t.Errorf("fcntl(9) = %d, want EBADF", int64(r))
	}
	if r := sys(sysOpenat, 0, userAddr(0), 0); r != errno(ENOENT) {
		t.Errorf("openat = %d, want ENOENT", int64(r))
	}
	if r := sys(sysArchPrctl, 0x1002, 0x1234000); r != 0 || entryFSBase != 0x1234000 {
		t.Errorf("arch_prctl(SET_FS) = %d, fs %#x", r, entryFSBase)
	}
}

func TestUnknownSyscallIsENOSYSAndReported(t *testing.T) {
	setupKernel(t)
	if r := sys(999); r != errno(ENOSYS) {
		t.Fatalf("syscall 999 = %d, want -ENOSYS", int64(r))
	}
	if !strings.Contains(consoleText(), "gohv: unsupported system call 999") {
		t.Errorf("console: %q", consoleText())
	}
	if LastUnsupportedSyscall() != 999 {
		t.Errorf("LastUnsupportedSyscall = %d", LastUnsupportedSyscall())
	}
}

func TestWriteGoesToConsole(t *testing.T) {
	setupKernel(t)
	copy(userMem[100:], "hello\n")
	if r := sys(sysWrite, 2, userAddr(100), 6); r != 6 {
		t.Fatalf("write = %d", int64(r))
	}
	if consoleText() != "hello\n" {
		t.Errorf("console %q", consoleText())
	}
	if r := sys(sysWrite, 1, 0x20000, 6); r != errno(EFAULT) {
		t.Errorf("write from unmapped memory = %d, want EFAULT", int64(r))
	}
}

func TestFutexWaitBlocksAndWakeResumesInFIFOOrder(t *testing.T) {
	setupKernel(t)
	word := userAddr(256)
	*userU32(word) = 7
	a := current
	b, c := newThread(), newThread()
	makeRunnable(b)
	makeRunnable(c)

	if r := sys(sysFutex, word, futexWait|futexPrivate, 8, 0); r != errno(EAGAIN) {
		t.Fatalf("wait on changed value = %d, want EAGAIN", int64(r))
	}
	sys(sysFutex, word, futexWait|futexPrivate, 7, 0)
	if threads[a].state != tsBlocked {
		t.Fatal("waiter did not block")
	}
	schedule()
	if current != b {
		t.Fatalf("scheduler ran %d, want %d", current, b)
	}
	sys(sysFutex, word, futexWait|futexPrivate, 7, 0)
	schedule()
	if current != c {
		t.Fatalf("scheduler ran %d, want %d", current, c)
	}
	// Wake one: the first waiter (a) goes first.
	if r := sys(sysFutex, word, futexWake|futexPrivate, 1, 0); r != 1 {
		t.Fatalf("wake = %d", r)
	}
	if threads[a].state != tsRunnable || threads[b].state != tsBlocked {
		t.Fatalf("woke the wrong waiter: a=%d b=%d", threads[a].state, threads[b].state)
	}
	if threads[a].frame.RAX != 0 {
		t.Errorf("woken waiter's result %d", threads[a].frame.RAX)
	}
	if r := sys(sysFutex, word, futexWake|futexPrivate, 10, 0); r != 1 {
		t.Errorf("second wake = %d, want 1", r)
	}
	if r := sys(sysFutex, word+1, futexWait, 7, 0); r != errno(EFAULT) {
		t.Errorf("unaligned futex = %d, want EFAULT", int64(r))
	}
}

func TestFutexTimeoutReturnsETIMEDOUT(t *testing.T) {
	setupKernel(t)
	word, ts := userAddr(256), userAddr(512)
	*userU32(word) = 1
	*userU64(ts), *userU64(ts + 8) = 0, 1000 // 1 µs
	a := current
	sys(sysFutex, word, futexWait, 1, ts)
	if threads[a].state != tsBlocked {
		t.Fatal("did not block")
	}
	schedule()
	wakeExpired(nanotime() + 1e6)
	if threads[a].state != tsRunnable || threads[a].frame.RAX != errno(ETIMEDOUT) {
		t.Errorf("after deadline: state %d result %d", threads[a].state, int64(threads[a].frame.RAX))
	}
}

func TestCloneStartsThreadAfterSyscall(t *testing.T) {
	setupKernel(t)
	f := entryFrame()
	*f = TrapFrame{RAX: sysClone, RDI: 0xd0f00, RSI: 0x5000, R8: 0x7000, RIP: 0x1234, R13: 42}
	doSyscall(f)
	tid := f.RAX
	var child *thread
	for i := range threads {
		if threads[i].tid == int32(tid) && i != int(current) {
			child = &threads[i]
		}
	}
	if child == nil || child.state != tsRunnable {
		t.Fatalf("no runnable child with tid %d", tid)
	}
	if child.frame.RAX != 0 || child.frame.RSP != 0x5000 || child.fsBase != 0x7000 || child.frame.RIP != 0x1234 || child.frame.R13 != 42 {
		t.Errorf("child frame %+v fs %#x", child.frame, child.fsBase)
	}
	if r := sys(sysClone, 0x11, 0, 0, 0, 0); r != errno(EINVAL) {
		t.Errorf("fork-style clone = %d, want EINVAL", int64(r))
	}
}

func TestMmapReservesWithoutBacking(t *testing.T) {
	setupKernel(t)
	free := pages.FreePages()
	a := sys(sysMmap, 0, 64<<20, protNone, mapPrivate|mapAnonymous, ^uint64(0), 0)
	if int64(a) < 0 || a < userBase {
		t.Fatalf("mmap = %#x", a)
	}
	// Commit a piece with MAP_FIXED, as the runtime's sysMap does.
	c := sys(sysMmap, a+4<<20, 4<<20, protRead|protWrite, mapPrivate|mapAnonymous|mapFixed, ^uint64(0), 0)
	if c != a+4<<20 {
		t.Fatalf("MAP_FIXED = %#x, want %#x", c, a+4<<20)
	}
	if nvmas != 3 {
		t.Errorf("%d VMAs, want 3 (none, rw, none)", nvmas)
	}
	if pages.FreePages() != free {
		t.Errorf("mmap used %d frames before any touch", free-pages.FreePages())
	}
	if handleUserFault(a, false) != faultSegv {
		t.Error("fault in PROT_NONE reservation was not SIGSEGV")
	}
	if handleUserFault(c+123, true) != faultFixed {
		t.Fatal("fault in committed memory not backed")
	}
	if handleUserFault(c+123, true) != faultSegv {
		t.Error("second fault on a present page was not a protection fault")
	}
	// madvise(DONTNEED) releases the frame; munmap drops the region.
	if r := sys(sysMadvise, c, 4<<20, madvDontneed); r != 0 {
		t.Fatalf("madvise = %d", int64(r))
	}
	if _, _, _, ok := kpt.Lookup(kernelMem{}, c); ok {
		t.Error("page still mapped after MADV_DONTNEED")
	}
	if r := sys(sysMunmap, a, 64<<20); r != 0 || nvmas != 0 {
		t.Errorf("munmap = %d, %d VMAs left", int64(r), nvmas)
	}
}

func TestMmapHintUsedOnlyWhenFree(t *testing.T) {
	setupKernel(t)
	hint := uint64(0x3000_0000_0000)
	if a := sys(sysMmap, hint, 1<<20, protNone, mapPrivate|mapAnonymous, ^uint64(0), 0); a != hint {
		t.Fatalf("free hint not used: %#x", a)
	}
	if a := sys(sysMmap, hint, 1<<20, protNone, mapPrivate|mapAnonymous, ^uint64(0), 0); a == hint {
		t.Fatal("overlapping hint reused")
	}
	if a := sys(sysMmap, 0x1000, 1<<20, protNone, mapPrivate|mapAnonymous, ^uint64(0), 0); a < userBase {
		t.Fatalf("hint below the user window honoured: %#x", a)
	}
	if r := sys(sysMmap, 0, 4096, protRead, mapPrivate, 3, 0); r != errno(ENODEV) {
		t.Errorf("file mapping = %d, want ENODEV", int64(r))
	}
	if r := sys(sysMmap, 0x1000, 4096, protRead, mapPrivate|mapAnonymous|mapFixed, ^uint64(0), 0); r != errno(EINVAL) {
		t.Errorf("MAP_FIXED over the kernel = %d, want EINVAL", int64(r))
	}
}

func TestMunmapSplitsAndMergesRegions(t *testing.T) {
	setupKernel(t)
	a := sys(sysMmap, 0, 16*pageSize, protRead|protWrite, mapPrivate|mapAnonymous, ^uint64(0), 0)
	sys(sysMunmap, a+4*pageSize, 4*pageSize)
	if nvmas != 2 || vmas[0].end != a+4*pageSize || vmas[1].start != a+8*pageSize {
		t.Fatalf("after hole: %v", vmas[:nvmas])
	}
	sys(sysMmap, a+4*pageSize, 4*pageSize, protRead|protWrite, mapPrivate|mapAnonymous|mapFixed, ^uint64(0), 0)
	if nvmas != 1 || vmas[0].start != a || vmas[0].end != a+16*pageSize {
		t.Fatalf("after refill: %v", vmas[:nvmas])
	}
}

func TestEpollReportsEventfdWrites(t *testing.T) {
	setupKernel(t)
	ep := sys(sysEpollCreate1, 0x80000)
	ev := sys(sysEventfd2, 0, 0x80800)
	evbuf := userAddr(1024)
	*userU32(evbuf) = 1
	binary.LittleEndian.PutUint64(userMem[1028:], 0xfeedface)
	if r := sys(sysEpollCtl, ep, 1, ev, evbuf); r != 0 {
		t.Fatalf("epoll_ctl = %d", int64(r))
	}
	out := userAddr(2048)
	if r := sys(sysEpollPwait, ep, out, 128, 0); r != 0 {
		t.Fatalf("poll with nothing pending = %d", r)
	}
	waiter := current
	sys(sysEpollPwait, ep, out, 128, ^uint64(0)) // block forever
	if threads[waiter].state != tsBlocked {
		t.Fatal("epoll_pwait(-1) did not block")
	}
	other := newThread()
	makeRunnable(other)
	schedule()
	*userU64(userAddr(4000)) = 1
	if r := sys(sysWrite, ev, userAddr(4000), 8); r != 8 {
		t.Fatalf("eventfd write = %d", int64(r))
	}
	if threads[waiter].state != tsRunnable || threads[waiter].frame.RAX != 1 {
		t.Fatalf("waiter state %d result %d", threads[waiter].state, threads[waiter].frame.RAX)
	}
	if *userU32(out) != 1 || *userU64(out + 4) != 0xfeedface {
		t.Errorf("event %#x data %#x", *userU32(out), *userU64(out + 4))
	}
	if r := sys(sysRead, ev, userAddr(4008), 8); r != 8 || *userU64(userAddr(4008)) != 1 {
		t.Errorf("eventfd read = %d value %d", int64(r), *userU64(userAddr(4008)))
	}
	if r := sys(sysRead, ev, userAddr(4008), 8); r != errno(EAGAIN) {
		t.Errorf("empty eventfd read = %d, want EAGAIN", int64(r))
	}
}

func TestSignalDeliveryAndReturn(t *testing.T) {
	setupKernel(t)
	act := userAddr(0)
	*userU64(act) = 0xaaaa // handler
	*userU64(act + 8) = saOnStack
	*userU64(act + 16) = 0xbbbb // restorer
	if r := sys(sysRtSigaction, SIGSEGV, act, 0, 8); r != 0 {
		t.Fatalf("rt_sigaction = %d", int64(r))
	}
	ss := userAddr(64)
	*userU64(ss), *userU64(ss + 8), *userU64(ss + 16) = userAddr(4096), 0, 32<<10
	if r := sys(sysSigaltstack, ss, 0); r != 0 {
		t.Fatalf("sigaltstack = %d", int64(r))
	}
	f := entryFrame()
	*f = TrapFrame{RIP: 0x4242, RSP: userAddr(900 << 10), RAX: 5, RBX: 6, RFLAGS: x86.RFLAGSIF | x86.RFLAGSFixed, Vector: x86.VectorPF}
	entryFX()[x86.FXSaveMXCSROffset] = 0x80 // mark the FPU image
	if !deliverSignal(f, SIGSEGV, segvMapErr, 0x8) {
		t.Fatal("not delivered")
	}
	if f.RIP != 0xaaaa || f.RDI != SIGSEGV || *userU64(f.RSP) != 0xbbbb {
		t.Fatalf("handler frame rip %#x rdi %d ret %#x", f.RIP, f.RDI, *userU64(f.RSP))
	}
	if f.RSP < userAddr(4096) || f.RSP >= userAddr(4096)+32<<10 {
		t.Errorf("handler stack %#x not on the alternate stack", f.RSP)
	}
	if *userU32(f.RSI) != SIGSEGV || *userU32(f.RSI + 8) != segvMapErr || *userU64(f.RSI + 16) != 0x8 {
		t.Error("siginfo fields wrong")
	}
	// The runtime redirects the context to sigpanic; rt_sigreturn applies it.
	uc := f.RDX
	g := (*[32]uint64)(x86.Ptr(uintptr(uc + ucMcontext)))
	if g[16] != 0x4242 || g[13] != 5 || g[11] != 6 {
		t.Fatalf("saved context rip %#x rax %d rbx %d", g[16], g[13], g[11])
	}
	g[16] = 0x5555
	entryFX()[x86.FXSaveMXCSROffset] = 0
	f.RSP += 8 // the handler's RET pops the restorer address
	f.RAX = sysRtSigreturn
	doSyscall(f)
	if f.RIP != 0x5555 || f.RAX != 5 || f.RBX != 6 || f.RFLAGS&x86.RFLAGSIF == 0 {
		t.Errorf("after sigreturn rip %#x rax %d rbx %d flags %#x", f.RIP, f.RAX, f.RBX, f.RFLAGS)
	}
	if entryFX()[x86.FXSaveMXCSROffset] != 0x80 {
		t.Error("FPU image not restored")
	}
}

func TestSyscallPathDoesNotAllocate(t *testing.T) {
	setupKernel(t)
	ts := userAddr(0)
	f := entryFrame()
	for _, c := range []struct {
		name string
		nr   uint64
		a0   uint64
		a1   uint64
	}{{"getpid", sysGetpid, 0, 0}, {"clock_gettime", sysClockGettime, 1, ts}, {"sched_yield", sysSchedYield, 0, 0}} {
		n := testing.AllocsPerRun(100, func() {
			*f = TrapFrame{RAX: c.nr, RDI: c.a0, RSI: c.a1}
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
	for _, v := range []any{thread{}, vma{}, TrapFrame{}, sigaction{}, bootInfo{}, physmem.Allocator{}} {
		typ := reflect.TypeOf(v)
		if typ == reflect.TypeOf(physmem.Allocator{}) {
			continue // holds the bitmap slice, stored once at boot
		}
		if hasPointers(typ) {
			t.Errorf("%v contains pointers", typ)
		}
	}
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
