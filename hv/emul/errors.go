package emul

import (
	"errors"
	"fmt"
)

// PageFault is the error Walk returns (and Emulate passes on from
// Memory.Translate) when the guest's own page tables deny an access. The
// caller injects #PF with Code as the error code and loads CR2 with Addr.
type PageFault struct {
	Addr uint64 // faulting linear address: the value for CR2
	Code uint32 // error code: the x86.PFErr* bits (SDM Vol. 3A 4.7)
}

// Error describes the fault. It allocates: for reports, not the exit path.
func (f *PageFault) Error() string {
	return fmt.Sprintf("emul: page fault at linear address %#x, error code %#x", f.Addr, f.Code)
}

// Exception is an architectural fault other than #PF that the emulated
// instruction raises: #GP(0)/#SS(0) for a non-canonical address, #UD for a
// LOCK prefix on an instruction that does not take one. The caller injects
// it; RIP and registers are left as they were before the instruction
// (except the iterations a REP string instruction completed). A #PF is
// always a *PageFault, never an Exception.
type Exception struct {
	Vector       uint8 // x86.VectorGP, x86.VectorSS or x86.VectorUD
	ErrorCode    uint32
	HasErrorCode bool
}

// Error describes the fault. It allocates: for reports, not the exit path.
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

// Error names the instruction for the partition's crash reason. It
// allocates: for reports, not the exit path.
func (e *UnsupportedError) Error() string {
	if e.Inst == "(bad)" {
		return fmt.Sprintf("emul: unsupported instruction \"(bad) % x\" at rip %#x", e.Bytes[:e.N], e.RIP)
	}
	return fmt.Sprintf("emul: unsupported instruction \"%s\" at rip %#x", e.Inst, e.RIP)
}

// Is makes errors.Is(err, ErrUnsupported) true. Must not allocate.
func (e *UnsupportedError) Is(target error) bool { return target == ErrUnsupported }
