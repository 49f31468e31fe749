package metal

import (
	"encoding/binary"

	"gohv/x86"
)

// The descriptor tables: the IDT, shared by every CPU, and each CPU's GDT
// with its TSS (in its cpu), and the per-CPU MSRs that route SYSCALL to the
// kernel. Set up at boot, with interrupts off; nothing here allocates.

// The IDT (Intel SDM Vol. 3A 6.10): the same handlers on every CPU.
var (
	idt  [512]uint64 // 256 16-byte gates
	idtr [10]byte
)

// Interrupt stack table slots (SDM Vol. 3A 6.14.5): every vector runs on
// IST1, the top of the CPU's kernel stack where the entry frame goes; the
// three that can arrive on a broken stack have their own.
const (
	istKernel = 1
	istDF     = 2
	istNMI    = 3
	istMC     = 4
)

// tssIST is the byte offset of IST slot n in a TSS.
func tssIST(n int) int { return x86.TSS64IST1 + 8*(n-1) }

// initCPUTables builds the IDT and the boot CPU's GDT and TSS, loads them,
// routes SYSCALL, and saves a clean FPU/SSE image for new threads.
func initCPUTables() {
	buildIDT()
	c := thisCPU()
	c.buildGDT()
	c.loadDescriptorTables()
	enableSyscall()
	x86.LDMXCSR(x86.MXCSRReset)
	x86.FXSAVE(initialFX())
}

// buildIDT points vectors 0-63 and vecSpurious at their entry stubs, as
// interrupt gates (interrupts stay off in the kernel) on their IST stacks.
func buildIDT() {
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
	idtr = x86.PseudoDescriptor(addrOfWords(idt[:]), uint16(len(idt)*8-1))
}

// buildGDT fills in c's TSS (its stacks, SDM Vol. 3A 8.7) and its GDT: the
// boot GDT's descriptors (boot_amd64.s) plus the TSS.
func (c *cpu) buildGDT() {
	le := binary.LittleEndian
	le.PutUint64(c.tss[x86.TSS64RSP0:], uint64(c.kstackTop)) // unused: everything is ring 0
	le.PutUint64(c.tss[tssIST(istKernel):], uint64(c.kstackTop))
	le.PutUint64(c.tss[tssIST(istDF):], stackTop(c.istDFStack[:]))
	le.PutUint64(c.tss[tssIST(istNMI):], stackTop(c.istNMIStack[:]))
	le.PutUint64(c.tss[tssIST(istMC):], stackTop(c.istMCStack[:]))
	le.PutUint16(c.tss[x86.TSS64IOMapBase:], x86.TSS64Size) // no I/O permission bitmap

	c.gdt[gdtKernelCode] = x86.DescriptorFlatCode64
	c.gdt[gdtKernelData] = x86.DescriptorFlatData
	d := x86.SystemDescriptor64(addrOfBytes(c.tss[:]), uint32(len(c.tss)-1), x86.SegTypeTSSAvail|x86.SegP)
	c.gdt[gdtTSS], c.gdt[gdtTSS+1] = d[0], d[1]
	c.gdtr = x86.PseudoDescriptor(addrOfWords(c.gdt[:]), uint16(len(c.gdt)*8-1))
}

// loadDescriptorTables makes c's GDT and TSS and the shared IDT the running
// CPU's; c must be thisCPU().
func (c *cpu) loadDescriptorTables() {
	x86.LGDT(&c.gdtr)
	x86.LTR(selTSS)
	x86.LIDT(&idtr)
}

// enableSyscall routes this CPU's SYSCALL instruction to syscallEntry with
// the kernel's selectors, clearing IF, DF, TF and AC on entry.
func enableSyscall() {
	x86.WRMSR(x86.MsrEFER, x86.RDMSR(x86.MsrEFER)|x86.EFERSCE)
	x86.WRMSR(x86.MsrSTAR, uint64(selKernelCode)<<x86.STARSyscallCSShift)
	x86.WRMSR(x86.MsrLSTAR, uint64(syscallEntryAddr()))
	x86.WRMSR(x86.MsrFMASK, x86.RFLAGSIF|x86.RFLAGSDF|x86.RFLAGSTF|x86.RFLAGSAC)
}
