// Package x86 wraps the privileged x86-64 instructions the hypervisor's Go
// code executes outside metal: CPUID, MSR access, control registers,
// segment selectors and descriptor tables, and the interrupt flag. They run
// in ring 0 (the image runs everything there); CPUID also works on a host.
package x86

// CPUID executes CPUID with EAX = leaf and ECX = sub.
func CPUID(leaf, sub uint32) (eax, ebx, ecx, edx uint32)

// RDMSR reads a model-specific register.
func RDMSR(msr uint32) uint64

// WRMSR writes a model-specific register.
func WRMSR(msr uint32, v uint64)

func ReadCR0() uint64
func WriteCR0(v uint64)
func ReadCR3() uint64
func ReadCR4() uint64
func WriteCR4(v uint64)

// Selectors reads CS, SS, DS, ES, FS, GS and the task register.
func Selectors() (cs, ss, ds, es, fs, gs, tr uint16)

// DescTables stores GDTR and IDTR (limit u16, base u64) with SGDT/SIDT.
func DescTables(gdt, idt *[10]byte)

// CLI disables interrupts and returns the previous RFLAGS.
func CLI() uint64

// RestoreFlags reloads RFLAGS saved by CLI.
func RestoreFlags(f uint64)
