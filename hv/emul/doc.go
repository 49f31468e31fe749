// Package emul emulates single guest instructions that touch emulated
// (MMIO) memory, and walks guest page tables.
//
// The hypervisor calls Emulate after a nested-page fault on a GPA that is
// routed to an emulated device. Neither AMD SVM under QEMU TCG (no decode
// assists, no NRIP) nor the general case gives the instruction bytes or
// length, so Emulate fetches them from guest memory at CS:RIP, decodes them
// with golang.org/x/arch/x86/x86asm, performs the access through the
// caller's Memory, updates the guest registers and advances RIP.
//
// Everything read from the guest is hostile: every address and length is
// checked, every failure is returned as an error, nothing panics.
package emul
