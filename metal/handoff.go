package metal

import "gohv/x86"

// Handing the CPU to the Go runtime: the main thread's System V process
// stack (argv, envp, auxv) and the jump to the runtime's entry point.

// The Go runtime's main thread starts at its ELF entry with a System V
// process stack: argc, argv (the kernel command line, word by word), envp,
// auxv (AT_PAGESZ, AT_RANDOM).
const mainThread = firstThread

var mainStack [256 << 10]byte

// Auxiliary vector entry types (Linux include/uapi/linux/auxvec.h).
const (
	atNull   = 0
	atPagesz = 6
	atRandom = 25
)

var goEnv = [...]string{
	"GODEBUG=asyncpreemptoff=1,updatemaxprocs=0",
	"GOTRACEBACK=all",
}

func setupMainThread() {
	i := newThread()
	if i != mainThread {
		fatal("threads: main thread slot taken")
	}
	top := stackTop(mainStack[:])
	sp := top
	push := func(s []byte) uint64 {
		sp -= uint64(len(s)) + 1
		b := userBytes(sp, uint64(len(s))+1)
		copy(b, s)
		b[len(s)] = 0
		return sp
	}
	var argv [34]uint64
	argc := 0
	// Every command-line word becomes an argument. QEMU's -kernel puts the
	// image's path first and GRUB does not, so the path (if any) is simply
	// an argument nobody asks for.
	argv[argc] = push([]byte("gohv"))
	argc++
	for _, w := range fields(boot.cmdlineBytes()) {
		if len(w) == 0 || argc == len(argv)-1 {
			break
		}
		argv[argc] = push(w)
		argc++
	}
	var envp [len(goEnv)]uint64
	for k, e := range goEnv {
		envp[k] = pushString(&sp, e)
	}
	sp -= 16
	random := sp
	fillRandom(userBytes(random, 16))
	sp &^= 15
	// Words from the bottom: argc, argv..., 0, envp..., 0, auxv pairs, AT_NULL.
	nwords := 1 + argc + 1 + len(envp) + 1 + 4 + 2
	if nwords%2 != 0 {
		sp -= 8
	}
	sp -= uint64(nwords) * 8
	p := sp
	put := func(v uint64) { *userU64(p) = v; p += 8 }
	put(uint64(argc))
	for k := 0; k < argc; k++ {
		put(argv[k])
	}
	put(0)
	for _, e := range envp {
		put(e)
	}
	put(0)
	put(atPagesz)
	put(pageSize)
	put(atRandom)
	put(random)
	put(atNull)
	put(0)

	t := &threads[mainThread]
	t.frame = TrapFrame{
		RIP:    uint64(rt0Entry()),
		CS:     selKernelCode,
		RFLAGS: x86.RFLAGSIF | x86.RFLAGSFixed,
		RSP:    sp,
		SS:     selKernelData,
	}
	t.fx = *initialFX()
}

// enterRuntime switches to the main thread, whose entry state
// setupMainThread prepared, and never returns: resume restores the entry
// frame, so the CPU continues at the runtime's entry point.
func enterRuntime() {
	c := thisCPU()
	c.current = mainThread
	c.sliceStart, c.timerDirty = nanotime(), true
	threads[mainThread].state = tsRunning
	*entryFrame() = threads[mainThread].frame
	*entryFX() = threads[mainThread].fx
	c.entryFSBase = 0
	bootTSC = x86.RDTSC()
	resume()
}

func pushString(sp *uint64, s string) uint64 {
	*sp -= uint64(len(s)) + 1
	b := userBytes(*sp, uint64(len(s))+1)
	copy(b, s)
	b[len(s)] = 0
	return *sp
}
