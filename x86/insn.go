package x86

// Go declarations of the instruction leaves in insn_amd64.s. Each is NOSPLIT,
// does not allocate and does not read the goroutine descriptor: kernel code
// calls them before the Go runtime runs and with interrupts off.

// CPUID executes CPUID with EAX = leaf and ECX = sub.
func CPUID(leaf, sub uint32) (eax, ebx, ecx, edx uint32)

// RDMSR reads a model-specific register.
func RDMSR(msr uint32) uint64

// WRMSR writes a model-specific register.
func WRMSR(msr uint32, v uint64)

func ReadCR0() uint64
func WriteCR0(v uint64)

// ReadCR2 returns the linear address of the last page fault (SDM Vol. 3A
// 2.5).
func ReadCR2() uint64

func ReadCR3() uint64

// WriteCR3 loads a new page-table root, flushing the non-global TLB
// entries.
func WriteCR3(v uint64)

func ReadCR4() uint64
func WriteCR4(v uint64)

// Selectors reads CS, SS, DS, ES, FS, GS and the task register.
func Selectors() (cs, ss, ds, es, fs, gs, tr uint16)

// DescTables stores GDTR and IDTR (limit u16, base u64) with SGDT/SIDT.
//
//go:noescape
func DescTables(gdt, idt *[10]byte)

// LGDT loads GDTR from a pseudo-descriptor (see PseudoDescriptor).
//
//go:noescape
func LGDT(gdtr *[10]byte)

// LIDT loads IDTR from a pseudo-descriptor (see PseudoDescriptor).
//
//go:noescape
func LIDT(idtr *[10]byte)

// LTR loads the task register with a selector of an available TSS
// descriptor, which the CPU then marks busy (SDM Vol. 3A 8.2.4).
func LTR(sel uint16)

// CLI disables interrupts and returns the previous RFLAGS.
func CLI() uint64

// RestoreFlags reloads RFLAGS saved by CLI.
func RestoreFlags(f uint64)

// InterruptsEnabled reports RFLAGS.IF.
func InterruptsEnabled() bool

// Halt disables interrupts and halts this CPU for good: it never returns.
func Halt()

// RDTSC reads the time-stamp counter.
func RDTSC() uint64

// RDRAND returns a hardware random number, retrying up to ten times while
// the generator reports none ready (the retry count Intel's DRNG guide
// recommends); ok is false if it never did. The caller checks
// CPUID1ECXRDRAND first.
func RDRAND() (v uint64, ok bool)

// INB reads a byte from an I/O port.
func INB(port uint16) uint8

// INL reads a doubleword from an I/O port.
func INL(port uint16) uint32

// OUTB writes a byte to an I/O port.
func OUTB(port uint16, v uint8)

// OUTW writes a word to an I/O port.
func OUTW(port uint16, v uint16)

// OUTL writes a doubleword to an I/O port.
func OUTL(port uint16, v uint32)

// INVLPG invalidates the TLB entries for the page containing va.
func INVLPG(va uintptr)

// CLFLUSH writes back and invalidates the cache line holding va in every
// cache of the coherence domain (SDM Vol. 2A, CLFLUSH), so a device that
// does not snoop the caches reads what the CPU wrote.
func CLFLUSH(va uintptr)

// MFENCE orders every load and store before it (and CLFLUSH) ahead of
// every one after it (SDM Vol. 2B, MFENCE).
func MFENCE()

// FXSAVE stores the x87/MMX/SSE state into a 16-byte-aligned area (64-bit
// format, SDM Vol. 1 10.5.1).
//
//go:noescape
func FXSAVE(area *[FXSaveAreaSize]byte)

// LDMXCSR loads MXCSR.
func LDMXCSR(v uint32)

// Pause hints to the CPU that the caller is in a spin-wait loop (SDM Vol.
// 2B, PAUSE): it saves power and lets a sibling hyper-thread run, and
// under a hypervisor it may end a PAUSE-loop exit.
func Pause()
