package emul

import (
	"errors"
	"fmt"
)

// Architectural #PF error-code bits, as pushed by the CPU and carried by
// [PageFault.Code].
const (
	PFPresent  uint32 = 1 << 0 // 0: not-present page; 1: protection or reserved-bit violation
	PFWrite    uint32 = 1 << 1 // the access was a write
	PFUser     uint32 = 1 << 2 // the access was a user-mode (CPL 3) access
	PFReserved uint32 = 1 << 3 // a reserved bit was set in a paging-structure entry
	PFFetch    uint32 = 1 << 4 // the access was an instruction fetch (only when NXE+PAE or SMEP)
)

// Exception vectors used by [Exception].
const (
	VectorUD = 6  // invalid opcode
	VectorSS = 12 // stack-segment fault
	VectorGP = 13 // general protection
	VectorPF = 14 // page fault (reported as *PageFault, never as *Exception)
)

// PageFault is the error Walk returns (and Emulate passes on from
// Memory.Translate) when the guest's own page tables deny an access. The
// caller injects #PF with Code as the error code and loads CR2 with Addr.
type PageFault struct {
	Addr uint64 // faulting linear address: the value for CR2
	Code uint32 // error code: PFPresent|PFWrite|PFUser|PFReserved|PFFetch
}

func (f *PageFault) Error() string {
	return fmt.Sprintf("emul: page fault at linear address %#x, error code %#x", f.Addr, f.Code)
}

// Exception is an architectural fault other than #PF that the emulated
// instruction raises: #GP(0)/#SS(0) for a non-canonical address, #UD for a
// LOCK prefix on an instruction that does not take one. The caller injects
// it; RIP and registers are left as they were before the instruction.
type Exception struct {
	Vector       uint8
	ErrorCode    uint32
	HasErrorCode bool
}

func (e *Exception) Error() string {
	if e.HasErrorCode {
		return fmt.Sprintf("emul: exception %d, error code %#x", e.Vector, e.ErrorCode)
	}
	return fmt.Sprintf("emul: exception %d", e.Vector)
}

// ErrUnsupported matches (with errors.Is) every *UnsupportedError.
var ErrUnsupported = errors.New("emul: unsupported instruction")

// UnsupportedError reports an instruction Emulate cannot decode or does not
// implement. The caller stops the partition with Error() as the reason.
type UnsupportedError struct {
	RIP   uint64   // guest RIP of the instruction
	Inst  string   // Intel-syntax text, or "(bad)" for undecodable bytes
	Bytes [15]byte // instruction bytes as fetched
	N     int      // number of valid bytes in Bytes
}

func (e *UnsupportedError) Error() string {
	if e.Inst == "(bad)" {
		return fmt.Sprintf("emul: unsupported instruction \"(bad) % x\" at rip %#x", e.Bytes[:e.N], e.RIP)
	}
	return fmt.Sprintf("emul: unsupported instruction \"%s\" at rip %#x", e.Inst, e.RIP)
}

// Is makes errors.Is(err, ErrUnsupported) true.
func (e *UnsupportedError) Is(target error) bool { return target == ErrUnsupported }
