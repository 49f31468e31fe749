package metal

import "gohv/x86"

// The boot sequence: kmain takes the CPU from entry64, reads what the boot
// loader handed over, brings up the machine piece by piece (features.go,
// memory.go, desc.go, pic.go, lapic.go, clock.go, thread.go) and hands the
// CPU to the Go runtime (handoff.go).

// kmain runs once, from entry64, before the Go runtime exists: on the kernel
// stack, interrupts off, with the kernel goroutine descriptor. It may not
// allocate, may not rely on package initialisers (they have not run), and
// hands the CPU to the runtime's entry point at the end.
func kmain(magic, info uint64) {
	entryTSC = x86.RDTSC()
	thisCPU().initEntryState()
	consoleInit()
	kputs("\ngohv: metal: long mode, kernel stack ready\n")
	w := physWindow{
		mem:  lowMemory(),
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
		parseMultiboot1Modules(w, info, &boot)
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
	if checkBootModules(&boot, imageStart, imageEnd); boot.moduleFault.bad() {
		failBootModule(&boot.moduleFault)
	}
	detectCPU()
	initMemory()
	initCPUTables()
	initPIC()
	initLocalAPIC()
	calibrate()
	c := thisCPU()
	c.setupIdleThread(bootIdleThread)
	c.online.Store(true)
	setupMainThread()
	forceOneShot = hasTimerOneShotWord(boot.cmdlineBytes())
	startTimer()
	reportBoot()
	enterRuntime()
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
	scratch := addrOfBytes(bootScratch[:])
	bootPages := uint64(h[mbHeaderScratch/4])
	if uint64(h[mbHeaderEntryAddr/4]) != uint64(b32) || uint64(h[mbHeaderEntry64/4]) != uint64(e64) ||
		bootPages < scratch || bootPages+7*pageSize > scratch+uint64(len(bootScratch)) {
		fatal("boot: Multiboot header does not match this image (rebuild with make image)")
	}
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
	kputs(" ms); timer ")
	kputs(timerModeName())
	if timerMode == timerOneShot && hasTSCDeadline {
		kputs(" (timer=oneshot)")
	} else if timerMode == timerOneShot {
		kputs(" (no TSC-deadline mode)")
	}
	kputs(", tickless\n")
	kputs("gohv: metal: command line \"")
	kputbytes(boot.cmdlineBytes())
	kputs("\"\n")
	reportBootModules(&boot)
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
