package metal

import (
	"encoding/binary"
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
	bootTSC  uint64 // TSC when the runtime's entry point was entered
	entryTSC uint64 // TSC when kmain started
)

// tools/mkimage writes the Multiboot header at a fixed address (see
// boot_amd64.s), with two words of its own after the header's 48 bytes.
// Byte offsets of the fields metal reads (Multiboot Specification 0.6.96
// 3.1.1, then mkimage's):
const (
	mbHeaderAddr       = 0x1ff800
	mbHeaderLoadAddr   = 16 // load_addr: start of the loaded image
	mbHeaderBSSEndAddr = 24 // bss_end_addr: end of the image's memory
	mbHeaderEntryAddr  = 28 // entry_addr: boot32
	mbHeaderEntry64    = 48 // mkimage: address of entry64
	mbHeaderScratch    = 52 // mkimage: bootScratch rounded up to 4 KiB
)

// bootScratch holds the boot page tables and GDT built by boot32 (7 pages,
// 4 KiB-aligned inside this array).
var bootScratch [8 * pageSize]byte

func readImageBounds() {
	h := (*[(mbHeaderScratch + 4) / 4]uint32)(x86.Ptr(uintptr(mbHeaderAddr)))
	imageStart = uint64(h[mbHeaderLoadAddr/4])
	imageEnd = uint64(h[mbHeaderBSSEndAddr/4])
	b32, e64 := bootSymbols()
	scratch := uint64(uintptr(unsafe.Pointer(&bootScratch[0])))
	bootPages := uint64(h[mbHeaderScratch/4])
	if uint64(h[mbHeaderEntryAddr/4]) != uint64(b32) || uint64(h[mbHeaderEntry64/4]) != uint64(e64) ||
		bootPages < scratch || bootPages+7*pageSize > scratch+uint64(len(bootScratch)) {
		fatal("boot: Multiboot header does not match this image (rebuild with make image)")
	}
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
	_, b, c, d := x86.CPUID(x86.CPUIDVendor, 0)
	for i := 0; i < 4; i++ {
		cpuVendor[i] = byte(b >> (8 * i))
		cpuVendor[4+i] = byte(d >> (8 * i))
		cpuVendor[8+i] = byte(c >> (8 * i))
	}
	_, _, c1, _ := x86.CPUID(x86.CPUIDFeatures, 0)
	hasRDRAND = c1&x86.CPUID1ECXRDRAND != 0
	hasX2APIC = c1&x86.CPUID1ECXX2APIC != 0
	maxExtLeaf, _, _, _ = x86.CPUID(x86.CPUIDExtMax, 0)
	if maxExtLeaf >= x86.CPUIDExtFeaturesAMD {
		_, _, _, d := x86.CPUID(x86.CPUIDExtFeaturesAMD, 0)
		hasNX = d&x86.CPUIDExtEDXNX != 0
		has1GPages = d&x86.CPUIDExtEDXPage1GB != 0
	}
	// The brand string is three leaves of 16 bytes from CPUIDBrand0.
	if maxExtLeaf >= x86.CPUIDBrand0+2 {
		for l := uint32(0); l < 3; l++ {
			a, b, c, d := x86.CPUID(x86.CPUIDBrand0+l, 0)
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
		x86.WRMSR(x86.MsrEFER, x86.RDMSR(x86.MsrEFER)|x86.EFERNXE)
		pageFlagsNX = pagetable.NoExecute
	}
	t, ok := pagetable.New(kernelMem{})
	if !ok {
		fatal("memory: no page for the kernel's PML4")
	}
	kpt = t
	rw := pagetable.Present | pagetable.Writable
	if !kpt.Map(kernelMem{}, nullGuard, nullGuard, identityEnd-nullGuard, rw, x86.PageSize2M) {
		fatal("memory: cannot build the identity map")
	}
	maxPage := uint64(x86.PageSize2M)
	if has1GPages {
		maxPage = x86.PageSize1G
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
	gdt         [gdtEntries]uint64
	gdtr        [10]byte
	tss         [x86.TSS64Size]byte
	idt         [512]uint64
	idtr        [10]byte
	istDFStack  [8 << 10]byte
	istNMIStack [8 << 10]byte
	istMCStack  [8 << 10]byte
)

// Interrupt stack table slots: every vector runs on IST1 (the top of the
// kernel stack, where the entry frame goes); the three that can arrive on a
// broken stack have their own.
const (
	istKernel = 1
	istDF     = 2
	istNMI    = 3
	istMC     = 4
)

// tssIST is the byte offset of IST slot n in the TSS.
func tssIST(n int) int { return x86.TSS64IST1 + 8*(n-1) }

func stackTop(s []byte) uint64 {
	return (uint64(uintptr(unsafe.Pointer(&s[0]))) + uint64(len(s))) &^ 15
}

func initCPUTables() {
	le := binary.LittleEndian
	le.PutUint64(tss[x86.TSS64RSP0:], uint64(kstackTop)) // unused: everything is ring 0
	le.PutUint64(tss[tssIST(istKernel):], uint64(kstackTop))
	le.PutUint64(tss[tssIST(istDF):], stackTop(istDFStack[:]))
	le.PutUint64(tss[tssIST(istNMI):], stackTop(istNMIStack[:]))
	le.PutUint64(tss[tssIST(istMC):], stackTop(istMCStack[:]))
	le.PutUint16(tss[x86.TSS64IOMapBase:], x86.TSS64Size) // no I/O permission bitmap

	// The kernel's descriptors are the boot GDT's (boot_amd64.s), plus the TSS.
	gdt[gdtKernelCode] = x86.DescriptorFlatCode64
	gdt[gdtKernelData] = x86.DescriptorFlatData
	d := x86.SystemDescriptor64(uint64(uintptr(unsafe.Pointer(&tss[0]))), uint32(len(tss)-1), x86.SegTypeTSSAvail|x86.SegP)
	gdt[gdtTSS], gdt[gdtTSS+1] = d[0], d[1]
	gdtr = x86.PseudoDescriptor(uint64(uintptr(unsafe.Pointer(&gdt[0]))), uint16(len(gdt)*8-1))
	x86.LGDT(&gdtr)
	x86.LTR(selTSS)

	for i := 0; i < vectorStubs; i++ {
		vec := i
		if i == vectorStubs-1 {
			vec = vecSpurious
		}
		ist := uint8(istKernel)
		switch vec {
		case x86.VectorDF:
			ist = istDF
		case x86.VectorNMI:
			ist = istNMI
		case x86.VectorMC:
			ist = istMC
		}
		g := x86.GateDescriptor64(uint64(vectorAddr(i)), selKernelCode, ist, x86.SegTypeIntGate|x86.SegP)
		idt[vec*2], idt[vec*2+1] = g[0], g[1]
	}
	idtr = x86.PseudoDescriptor(uint64(uintptr(unsafe.Pointer(&idt[0]))), uint16(len(idt)*8-1))
	x86.LIDT(&idtr)

	// SYSCALL: target, kernel selectors, and the flags cleared on entry.
	x86.WRMSR(x86.MsrEFER, x86.RDMSR(x86.MsrEFER)|x86.EFERSCE)
	x86.WRMSR(x86.MsrSTAR, uint64(selKernelCode)<<x86.STARSyscallCSShift)
	x86.WRMSR(x86.MsrLSTAR, uint64(syscallEntryAddr()))
	x86.WRMSR(x86.MsrFMASK, x86.RFLAGSIF|x86.RFLAGSDF|x86.RFLAGSTF|x86.RFLAGSAC)

	// A clean FPU/SSE image for new threads.
	x86.LDMXCSR(x86.MXCSRReset)
	x86.FXSAVE(initialFX())
}

// initInterruptControllers remaps and masks the 8259 PICs (their vectors
// would collide with exceptions) and enables the local APIC.
func initInterruptControllers() {
	initPIC()
	initLocalAPIC()
}

// The Go runtime's main thread starts at its ELF entry with a System V
// process stack: argc, argv (the kernel command line, word by word), envp,
// auxv (AT_PAGESZ, AT_RANDOM).
const mainThread = 1

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
