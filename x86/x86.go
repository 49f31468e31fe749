// Package x86 is the one home of gohv's architectural numbers and of the
// privileged x86-64 instructions its Go code executes.
//
// Numbers: MSR indexes, control-register, EFER and RFLAGS bits, exception
// vectors, segment, gate and system descriptor formats, the 64-bit TSS,
// page-table formats, CPUID leaves and feature bits, each named as the Intel
// SDM or AMD APM names it and pinned by a test against the manual's value.
//
// Instructions (insn.go): CPUID, MSR access, control registers, segment
// selectors and descriptor tables, the task register, the interrupt flag,
// the time-stamp counter, RDRAND, port I/O, TLB invalidation, FPU/SSE state
// and HLT, used by metal's kernel code and the hypervisor packages alike.
// Each is a NOSPLIT leaf that neither allocates nor touches the goroutine
// descriptor, so kernel code may call them before the Go runtime runs and
// with interrupts off. They run in ring 0 (the image runs everything there);
// CPUID and RDTSC also work on a host.
package x86
