package metal

import (
	"unsafe"

	"gohv/metal/pagetable"
	"gohv/metal/physmem"
	"gohv/x86"
)

// kmain runs once, from entry64, before the Go runtime exists: on the kernel
// stack, interrupts off, with the kernel goroutine descriptor. It may not
// allocate, may not rely on package initialisers (they have not run), and
// hands the CPU to the runtime's entry point at the end.
func kmain(magic, info uint64) {
	entryTSC = x86.RDTSC()
	initKernelStack()
	consoleInit()
	kputs("\ngohv: metal: long mode, kernel stack ready\n")
	w := physWindow{
		mem:  unsafe.Slice((*byte)(x86.Ptr(uintptr(lowWindowBase))), identityEnd-lowWindowBase),
		base: lowWindowBase,
	}
	switch magic {
	case multiboot1Magic:
		if r := parseMultiboot1Cmdline(w, info, &boot); r != "" {
			fatal(r)
		}
		inject = parseInject(boot.cmdlineBytes())
		if r := parseMultiboot1Mmap(w, info, &boot, inject); r != "" {
			fatal(r)
		}
	case multiboot2Magic:
		// The command line comes from the same tags; parse twice so that
		// inject= words apply to the memory map.
		var probe bootInfo
		parseMultiboot2(w, info, &probe, 0)
		inject = parseInject(probe.cmdlineBytes())
		if r := parseMultiboot2(w, info, &boot, inject); r != "" {
			fatal(r)
		}
	default:
		kputs("gohv: boot magic ")
		kputhex(magic)
		kputs(" is neither Multiboot nor Multiboot2\n")
		fatal("boot: not started by a Multiboot or Multiboot2 loader")
	}
	readImageBounds()
	detectCPU()
	initMemory()
	initCPUTables()
	initInterruptControllers()
	calibrate()
	setupIdleThread()
	setupMainThread()
	reportBoot()
	startTimer()
	// Enter the Go runtime: the main thread's state is in the entry frame.
	current = mainThread
	threads[mainThread].state = tsRunning
	*entryFrame() = threads[mainThread].frame
	*entryFX() = threads[mainThread].fx
	entryFSBase = 0
	bootTSC = x86.RDTSC()
	resume()
}

// lowWindowBase: boot structures are read through a window that starts above
// page 0 (a Go slice may not start at address 0).
const lowWindowBase = 0x1000

var (
	boot     bootInfo
	inject   injectFlags
	bootTSC  uint64 // TSC when the runtime's entry point was entered
	entryTSC uint64 // TSC when kmain started
)

// Multiboot header fields written by tools/mkimage at a fixed address (see
// boot_amd64.s): load_addr at +16 and bss_end_addr at +24.
const mbHeaderAddr = 0x1ff800

// bootScratch holds the boot page tables and GDT built by boot32 (7 pages,
// 4 KiB-aligned inside this array).
var bootScratch [8 * pageSize]byte

func readImageBounds() {
	h := (*[14]uint32)(x86.Ptr(uintptr(mbHeaderAddr)))
	imageStart = uint64(h[4])
	imageEnd = uint64(h[6])
	b32, e64 := bootSymbols()
	scratch := uint64(uintptr(unsafe.Pointer(&bootScratch[0])))
	if uint64(h[7]) != uint64(b32) || uint64(h[12]) != uint64(e64) ||
		uint64(h[13]) < scratch || uint64(h[13])+7*pageSize > scratch+uint64(len(bootScratch)) {
		fatal("boot: Multiboot header does not match this image (rebuild with make image)")
	}
}

// injectFlags are test-only fault injections named on the command line
// (inject=NAME); each damages real input before the real code parses it.
type injectFlags uint32

const (
	injectMmapMissing injectFlags = 1 << iota
	injectMmapTruncated
	injectSyscallUnknown
	injectException
)

func parseInject(cmd []byte) injectFlags {
	var f injectFlags
	for _, word := range fields(cmd) {
		switch {
		case hasWord(word, "inject=mmap-missing"):
			f |= injectMmapMissing
		case hasWord(word, "inject=mmap-truncated"):
			f |= injectMmapTruncated
		case hasWord(word, "inject=syscall-unknown"):
			f |= injectSyscallUnknown
		case hasWord(word, "inject=exception"):
			f |= injectException
		}
	}
	return f
}

// fields splits on spaces into a fixed array (no allocation).
func fields(b []byte) [32][]byte {
	var out [32][]byte
	n := 0
	for i := 0; i < len(b) && n < len(out); {
		for i < len(b) && b[i] == ' ' {
			i++
		}
		j := i
		for j < len(b) && b[j] != ' ' {
			j++
		}
		if j > i {
			out[n] = b[i:j]
			n++
		}
		i = j
	}
	return out
}

func hasWord(w []byte, s string) bool {
	if len(w) != len(s) {
		return false
	}
	for i := range w {
		if w[i] != s[i] {
			return false
		}
	}
	return true
}

// CPU features that change how the kernel sets itself up.
var (
	hasNX, has1GPages, hasRDRAND, hasX2APIC bool
	cpuVendor                               [12]byte
	cpuBrand                                [48]byte
	maxExtLeaf                              uint32
)

func detectCPU() {
	_, b, c, d := x86.CPUID(0, 0)
	for i := 0; i < 4; i++ {
		cpuVendor[i] = byte(b >> (8 * i))
		cpuVendor[4+i] = byte(d >> (8 * i))
		cpuVendor[8+i] = byte(c >> (8 * i))
	}
	_, _, c1, _ := x86.CPUID(1, 0)
	hasRDRAND = c1&(1<<30) != 0
	hasX2APIC = c1&(1<<21) != 0
	maxExtLeaf, _, _, _ = x86.CPUID(0x80000000, 0)
	if maxExtLeaf >= 0x80000001 {
		_, _, _, d := x86.CPUID(0x80000001, 0)
		hasNX = d&(1<<20) != 0
		has1GPages = d&(1<<26) != 0
	}
	if maxExtLeaf >= 0x80000004 {
		for l := uint32(0); l < 3; l++ {
			a, b, c, d := x86.CPUID(0x80000002+l, 0)
			for i, r := range [4]uint32{a, b, c, d} {
				for k := 0; k < 4; k++ {
					cpuBrand[l*16+uint32(i)*4+uint32(k)] = byte(r >> (8 * k))
				}
			}
		}
	}
}

// initMemory builds the page allocator and the kernel's own page tables.
func initMemory() {
	// Never hand out the first MiB (BIOS, boot loader) or the image.
	boot.ram.Reserve(0, 1<<20)
	boot.ram.Reserve(imageStart&^(pageSize-1), imageEnd)
	ram := boot.ram
	if ram.Highest() > uint64(len(pageBits))*64*pageSize {
		kputs("gohv: RAM above 64 GiB is ignored\n")
		ram.Reserve(uint64(len(pageBits))*64*pageSize, ram.Highest())
	}
	if !pages.Init(&ram, pageBits[:physmem.BitmapWords(ram.Highest())]) {
		fatal("memory map: page bitmap too small")
	}
	if hasNX {
		x86.WRMSR(msrEFER, x86.RDMSR(msrEFER)|eferNXE)
		pageFlagsNX = pagetable.NoExecute
	}
	t, ok := pagetable.New(kernelMem{})
	if !ok {
		fatal("memory: no page for the kernel's PML4")
	}
	kpt = t
	rw := pagetable.Present | pagetable.Writable
	if !kpt.Map(kernelMem{}, nullGuard, nullGuard, identityEnd-nullGuard, rw, 2<<20) {
		fatal("memory: cannot build the identity map")
	}
	maxPage := uint64(2 << 20)
	if has1GPages {
		maxPage = 1 << 30
	}
	top := max(ram.Highest(), identityEnd)
	if !kpt.Map(kernelMem{}, physmapBase, 0, top, rw|pageFlagsNX, maxPage) {
		fatal("memory: cannot build the physical map")
	}
	x86.WriteCR3(kpt.Root)
	physBase = physmapBase
}

// GDT: null, 64-bit code, data, 64-bit TSS (two slots). TSS with IST stacks
// for #DF, NMI and #MC (Intel SDM Vol. 3A 7.7, 8.14.5).
var (
	gdt    [5]uint64
	gdtr   [10]byte
	tss    [104]byte
	idt    [512]uint64
	idtr   [10]byte
	istDF  [8 << 10]byte
	istNMI [8 << 10]byte
	istMC  [8 << 10]byte
)

func putU64(b []byte, v uint64) {
	for i := 0; i < 8; i++ {
		b[i] = byte(v >> (8 * i))
	}
}

func stackTop(s []byte) uint64 {
	return (uint64(uintptr(unsafe.Pointer(&s[0]))) + uint64(len(s))) &^ 15
}

func initCPUTables() {
	putU64(tss[4:], uint64(kstackTop))      // RSP0 (unused: everything is ring 0)
	putU64(tss[0x24:], uint64(kstackTop))   // IST1: every interrupt and exception
	putU64(tss[0x2c:], stackTop(istDF[:]))  // IST2: #DF
	putU64(tss[0x34:], stackTop(istNMI[:])) // IST3: NMI
	putU64(tss[0x3c:], stackTop(istMC[:]))  // IST4: #MC
	tss[102] = 104                          // no I/O permission bitmap

	base := uint64(uintptr(unsafe.Pointer(&tss[0])))
	limit := uint64(len(tss) - 1)
	gdt[1] = 0x00af9a000000ffff
	gdt[2] = 0x00cf92000000ffff
	gdt[3] = limit&0xffff | (base&0xffffff)<<16 | 0x89<<40 | (limit>>16&0xf)<<48 | (base>>24&0xff)<<56
	gdt[4] = base >> 32
	gdtr[0], gdtr[1] = byte(len(gdt)*8-1), 0
	putU64(gdtr[2:], uint64(uintptr(unsafe.Pointer(&gdt[0]))))
	x86.LGDT(&gdtr)
	x86.LTR(selTSS)

	for i := 0; i < 65; i++ {
		vec := i
		if i == 64 {
			vec = vecSpurious
		}
		ist := uint64(1)
		switch vec {
		case vecDF:
			ist = 2
		case vecNMI:
			ist = 3
		case vecMC:
			ist = 4
		}
		h := uint64(vectorAddr(i))
		idt[vec*2] = h&0xffff | selKernelCode<<16 | ist<<32 | 0x8e<<40 | (h>>16&0xffff)<<48
		idt[vec*2+1] = h >> 32
	}
	idtr[0], idtr[1] = byte((len(idt)*8-1)&0xff), byte((len(idt)*8-1)>>8)
	putU64(idtr[2:], uint64(uintptr(unsafe.Pointer(&idt[0]))))
	x86.LIDT(&idtr)

	// SYSCALL: target, kernel selectors, and the flags cleared on entry.
	x86.WRMSR(msrEFER, x86.RDMSR(msrEFER)|eferSCE)
	x86.WRMSR(msrSTAR, uint64(selKernelCode)<<32)
	x86.WRMSR(msrLSTAR, uint64(syscallEntryAddr()))
	x86.WRMSR(msrFMASK, flagIF|flagDF|flagTF|flagAC)

	// A clean FPU/SSE image for new threads.
	x86.LDMXCSR(0x1f80)
	x86.FXSAVE(initialFX())
}

// initInterruptControllers remaps and masks the 8259 PICs (their vectors
// would collide with exceptions) and enables the local APIC.
func initInterruptControllers() {
	x86.OUTB(0x20, 0x11)
	x86.OUTB(0xa0, 0x11)
	x86.OUTB(0x21, vecPICBase)
	x86.OUTB(0xa1, vecPICBase+8)
	x86.OUTB(0x21, 4)
	x86.OUTB(0xa1, 2)
	x86.OUTB(0x21, 1)
	x86.OUTB(0xa1, 1)
	x86.OUTB(0x21, 0xff)
	x86.OUTB(0xa1, 0xff)

	apicBase := x86.RDMSR(msrAPICBase)
	x86.WRMSR(msrAPICBase, apicBase|1<<11) // global enable
	localAPIC.Base = uint32(apicBase &^ 0xfff)
	*lapicReg(0xf0) = 0x100 | vecSpurious // SVR: enable, spurious vector
	*lapicReg(0x80) = 0                   // TPR: accept everything
}

// The Go runtime's main thread starts at its ELF entry with a System V
// process stack: argc, argv (the kernel command line, word by word), envp,
// auxv (AT_PAGESZ, AT_RANDOM).
const mainThread = 1

var mainStack [256 << 10]byte

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
	put(6) // AT_PAGESZ
	put(pageSize)
	put(25) // AT_RANDOM
	put(random)
	put(0) // AT_NULL
	put(0)

	t := &threads[mainThread]
	t.frame = TrapFrame{
		RIP:    uint64(rt0Entry()),
		CS:     selKernelCode,
		RFLAGS: flagIF | 2,
		RSP:    sp,
		SS:     selKernelData,
	}
	t.fx = *initialFX()
}

func pushString(sp *uint64, s string) uint64 {
	*sp -= uint64(len(s)) + 1
	b := userBytes(*sp, uint64(len(s))+1)
	copy(b, s)
	b[len(s)] = 0
	return *sp
}

func reportBoot() {
	kputs("gohv: metal: cpu ")
	kputbytes(cpuVendor[:])
	kputs(" \"")
	kputbytes(trimNUL(cpuBrand[:]))
	kputs("\"\ngohv: metal: memory ")
	kputdec(boot.ram.Total() >> 20)
	kputs(" MiB usable in ")
	kputdec(uint64(boot.ram.Len()))
	kputs(" ranges from ")
	kputdec(uint64(boot.mmapCount))
	kputs(" entries of the ")
	kputs(boot.mmapSource.String())
	kputs("; ")
	kputdec(pages.FreePages() * pageSize >> 20)
	kputs(" MiB free for the kernel\n")
	kputs("gohv: metal: tsc ")
	kputdec(tscHz / 1e6)
	kputs(" MHz, lapic timer ")
	kputdec(lapicHz / 1e6)
	kputs(" MHz (PIT-calibrated over ")
	kputdec(calibrateMS)
	kputs(" ms)\n")
	kputs("gohv: metal: command line \"")
	kputbytes(boot.cmdlineBytes())
	kputs("\"\n")
	if !hasRDRAND {
		kputs("gohv: metal: no RDRAND; random seeds come from the TSC\n")
	}
}

func trimNUL(b []byte) []byte {
	for i, c := range b {
		if c == 0 {
			return b[:i]
		}
	}
	for len(b) > 0 && b[0] == ' ' {
		b = b[1:]
	}
	return b
}
