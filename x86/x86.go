// Package x86 is the one home of gohv's architectural numbers and of the
// privileged x86-64 instructions its Go code executes.
//
// Numbers: MSR indexes, control-register, EFER and RFLAGS bits, exception
// vectors, segment-descriptor and page-table formats, CPUID leaves and
// feature bits, each named as the Intel SDM or AMD APM names it and pinned
// by a test against the manual's value.
//
// Instructions: CPUID, MSR access, control registers, segment selectors and
// descriptor tables, and the interrupt flag, used by metal's kernel code
// and the hypervisor packages alike. Each is a NOSPLIT leaf that neither
// allocates nor touches the goroutine descriptor, so kernel code may call
// them before the Go runtime runs. They run in ring 0 (the image runs
// everything there); CPUID also works on a host.
package x86

import "unsafe"

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

// Ptr turns a machine address that the Go heap does not manage (the
// kernel's identity and physical maps, the mmap window, the image's code,
// firmware tables) into a pointer. It reinterprets the integer's bits
// instead of converting uintptr to unsafe.Pointer, so go vet's unsafeptr
// check stays on for everything else: every such address crosses here.
//
//go:nosplit
func Ptr(addr uintptr) unsafe.Pointer { return *(*unsafe.Pointer)(unsafe.Pointer(&addr)) }
