package iommu

import (
	"errors"
	"fmt"
)

// Interrupt remapping: a device's message-signalled interrupt is a DMA
// write into the interrupt window 0xFEE00000-0xFEEFFFFF, which the unit
// treats as an interrupt request rather than a memory write. With
// remapping on, the unit looks the request up in a table the root owns
// (VT-d's interrupt remapping table, AMD-Vi's per-device tables) and
// delivers the interrupt the entry names, on the host CPU and vector the
// root chose, or blocks it when no entry of that device is there. A
// device given to a partition is programmed with the handle of its entry
// (the remappable-format message Interrupt.Address and Data): whatever
// its guest makes it write to the window, it can reach only the entries
// allocated to it, and those deliver only to the root's vector.
//
// Invariants every implementation keeps:
//
//   - After EnableInterruptRemapping, an interrupt request from a device
//     that holds no entry is blocked (and recorded where the unit records
//     interrupt faults): none reaches a local APIC. A compatibility-format
//     request (VT-d) is blocked too.
//   - An entry delivers as fixed, edge-triggered, physical destination,
//     to exactly the vector and APIC ID it was allocated with, and only for
//     the requester ID it was allocated to (VT-d checks the source ID;
//     AMD-Vi's tables are per device).
//   - When AllocInterrupt or FreeInterrupt return, the unit no longer uses
//     anything it cached of the old entry (interrupt entry cache
//     invalidated, awaited).

// Target is where a remapped interrupt is delivered: a host CPU's local
// APIC, by its (physical, xAPIC) ID, and a vector. Fixed delivery, edge
// triggered.
type Target struct {
	APICID uint32
	Vector uint8
}

// Interrupt is one allocated remapping entry.
type Interrupt struct {
	Source uint16 // the device's requester ID
	Index  int    // the entry in the unit's table (VT-d) or the device's (AMD-Vi)
	Target Target
	// Address and Data are the message the device must be programmed
	// with (its MSI capability or MSI-X table entry): the entry's handle
	// in the remappable format the unit decodes.
	Address uint64
	Data    uint32
}

// Remapper is a Unit that remaps interrupts. Both vendors' drivers are.
type Remapper interface {
	Unit
	// EnableInterruptRemapping turns remapping on with no entry
	// allocated: every device's interrupt requests are blocked. It is an
	// error (wrapping ErrNoRemapping) on a unit that cannot
	// (InterruptRemapping says why). Called again, it keeps the entries
	// allocated so far.
	EnableInterruptRemapping() error
	// InterruptRemapping says whether remapping is on, and when not,
	// why (the unit lacks it, or it was not turned on).
	InterruptRemapping() (on bool, why string)
	// AllocInterrupt gives device source an entry delivering to t and
	// returns it with the message the device must send.
	AllocInterrupt(source uint16, t Target) (Interrupt, error)
	// FreeInterrupt clears the entry: the device's requests naming it
	// are blocked again.
	FreeInterrupt(Interrupt) error
}

// Errors interrupt remapping wraps, for callers that branch.
var (
	// ErrNoRemapping: the unit does not remap interrupts (not capable,
	// or EnableInterruptRemapping has not run).
	ErrNoRemapping = errors.New("iommu: interrupt remapping is off")
	// ErrNoEntry: every entry of the table is in use.
	ErrNoEntry = errors.New("iommu: no free interrupt remapping entry")
	// ErrNotAllocated: FreeInterrupt of an entry that is not allocated
	// (to that device).
	ErrNotAllocated = errors.New("iommu: interrupt remapping entry not allocated")
)

// CheckTarget validates a Target the same way for every driver: vectors
// 0-15 are reserved (SDM Vol. 3A 11.5.2: a local APIC refuses them as
// illegal), and a destination beyond 8 bits needs x2APIC destinations
// (VT-d EIM), which gohv does not set up.
func CheckTarget(t Target) error {
	switch {
	case t.Vector < 16:
		return fmt.Errorf("vector %#x: vectors 0-15 are reserved", t.Vector)
	case t.APICID > 0xff:
		return fmt.Errorf("APIC ID %#x: beyond the 8-bit xAPIC destination", t.APICID)
	}
	return nil
}
