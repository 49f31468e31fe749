package metal

import (
	"encoding/binary"
	"unsafe"

	"gohv/x86"
)

// The CPU's descriptor tables: the GDT with its TSS, the IDT, and the
// SYSCALL MSRs. Set up once at boot, with interrupts off.

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
