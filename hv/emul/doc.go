// Package emul is gohv's x86 instruction emulator and guest page-table
// walker: what the hypervisor core uses when a guest instruction must be
// carried out in software because it touched an emulated device.
//
// Two entries do the work, both called on a VP's exit path:
//
//   - Emulate, after a nested-page fault on a GPA routed to an emulated
//     (MMIO) device. Neither AMD SVM under QEMU TCG (no decode assists, no
//     NRIP) nor the general case gives the instruction bytes or length, so
//     Emulate fetches them from guest memory at CS:RIP, decodes them with
//     golang.org/x/arch/x86/x86asm, performs the accesses through the
//     caller's Memory, updates the registers and advances RIP.
//   - StringIO, after an I/O exit for INS or OUTS: it moves data between a
//     PortIO device and guest memory, with REP, and leaves RIP to the
//     caller, which has the exit's instruction length.
//
// Paging.Walk and Paging.WalkAD translate linear addresses through the
// guest's own page tables; a caller's Memory.Translate normally uses them.
//
// Files: state.go (State, Memory, Result), emulate.go and stringio.go (the
// entries), decode.go (fetch and decode), operand.go (registers, ModRM/SIB
// effective addresses, segments, address-size masks), access.go
// (translation cache and data accesses), move.go, alu.go (and flags),
// string.go (the one REP loop MOVS/STOS/LODS/INS/OUTS share), walk.go and
// walk_levels.go (the page walker), errors.go.
//
// Invariants. Every address, length and instruction byte read from the
// guest is hostile: each is checked, each failure is an error value, nothing
// panics on guest input. Every page an iteration touches is translated
// before its first data or port access, so a fault leaves devices untouched;
// a REP string instruction keeps the iterations it completed. Data accesses
// have the operand's width and never cross a page (an operand that
// straddles one is split at the boundary, as the CPU does).
//
// Failure. *PageFault and *Exception are the guest's faults, for the caller
// to inject; *UnsupportedError (errors.Is ErrUnsupported) names an
// instruction the emulator does not do; anything else came from the
// caller's Memory.
//
// Allocation and concurrency. On the exit path nothing allocates except
// x86asm.Decode's own allocations and the error returned for a fault; a
// test measures both entries. State holds scratch space: keep one per VP
// and never share it between goroutines.
package emul
