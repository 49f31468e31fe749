package hv

import (
	"errors"
	"fmt"
)

// Why a partition ended. Result.Err wraps exactly one of these; callers
// test with errors.Is (and errors.As for *InvalidStateError).
var (
	// ErrStopRequested: the root stopped the partition (Partition.Stop).
	ErrStopRequested = errors.New("stopped by the root")
	// ErrPowerOff: the guest turned itself off (ACPI S5, or a write to
	// its debug-exit port, whose value is Result.Status).
	ErrPowerOff = errors.New("power-off")
	// ErrReboot: the guest asked to be reset (the i8042's reset line, the
	// PCI reset-control register, ACPI reset). The root's configuration
	// says whether it restarts.
	ErrReboot = errors.New("reboot requested")
	// ErrTripleFault: a VP shut down (triple fault).
	ErrTripleFault = errors.New("triple fault (shutdown)")
	// ErrOutsideMemory: the guest touched a guest-physical address its
	// memory map does not have.
	ErrOutsideMemory = errors.New("outside the partition's memory map")
	// ErrInvalidState: the hardware refused to enter the guest with the
	// state it had; *InvalidStateError says which field.
	ErrInvalidState = errors.New("the hardware refused the guest state")
	// ErrUnsupported: the guest did something gohv does not emulate (an
	// unexpected exit, an instruction the emulator lacks on an MMIO access).
	ErrUnsupported = errors.New("not supported by gohv")
	// ErrHypervisor: the backend or the root failed, not the guest.
	ErrHypervisor = errors.New("hypervisor error")
)

// InvalidStateError is a failed VM entry, with the vendor's explanation:
// for VMX the VMCS field that failed the SDM's entry checks, for SVM the
// VMRUN consistency check. It matches ErrInvalidState.
type InvalidStateError struct {
	VP     int
	Detail string // "FIELD: what is wrong", in the vendor's terms
	CR0    uint64
	CR4    uint64
	EFER   uint64
}

func (e *InvalidStateError) Error() string {
	return fmt.Sprintf("vp %d: %v: %s (cr0 %#x cr4 %#x efer %#x)", e.VP, ErrInvalidState, e.Detail, e.CR0, e.CR4, e.EFER)
}

func (e *InvalidStateError) Is(target error) bool { return target == ErrInvalidState }
