// Package iommu is the vendor-neutral face of the host's DMA remapping
// hardware: what the root asks of an IOMMU unit, whichever vendor made it.
// Intel VT-d (package iommu/vtd) and AMD-Vi (iommu/amdvi, over the IVRS
// table's units) implement it.
//
// # Invariants
//
//   - After a successful BlockAll, translation is on and no device behind
//     the unit reaches memory by DMA: every request faults (and is
//     recorded, as far as the hardware's fault records reach) and none
//     reads or writes a byte.
//   - A unit whose BlockAll failed is in an unknown state and must be
//     reported as not confining DMA.
//   - Faults returns each hardware fault record once: reading clears it.
//
// A Domain (domain.go) is an I/O address space for device assignment: a
// device attached to it reaches exactly the host pages it maps, at the
// addresses it maps them (a partition's RAM at its guest-physical
// addresses), and every other access faults. A Unit that has domains is
// a Domains. Detaching a device returns it to the blocked state.
//
// A Remapper (remap.go) is a Unit that remaps interrupts: with remapping
// on, a device's write into the interrupt window 0xFEE00000-0xFEEFFFFF is
// an interrupt request the unit delivers only through an entry the root
// allocated to that device (to a host APIC ID and vector), and blocks
// otherwise.
//
// # Concurrency
//
// A Unit is not safe for concurrent use: the root owns it and calls it
// from one goroutine at a time.
package iommu

import "fmt"

// Unit is one DMA remapping unit (a VT-d DRHD, an AMD-Vi IVHD).
type Unit interface {
	// Name names the unit for the boot log, e.g. "vt-d unit 0xfed90000".
	Name() string
	// BlockAll turns translation on with no device mapped: from its
	// return no device behind the unit may DMA. Calling it again (after
	// Disable) blocks again. The error says which step failed.
	BlockAll() error
	// Disable turns translation off: devices reach memory untranslated
	// again, as before BlockAll. For the in-image check's control case
	// (and, later, handing the machine to another kernel); never on a
	// running system that relies on the confinement.
	Disable() error
	// Faults reads and clears the recorded faults, oldest first.
	Faults() []Fault
}

// Fault is one recorded DMA remapping fault.
type Fault struct {
	Source uint16 // requester ID: bus<<8 | device<<3 | function
	Addr   uint64 // the page of the faulting request's address; for an interrupt, see Interrupt
	Write  bool   // a write request (else a read)
	Reason string // the hardware's fault reason, spelled out
	// Interrupt is set for a blocked interrupt request (interrupt
	// remapping): Addr is then the interrupt index the unit computed
	// (VT-d) or the message address (AMD-Vi), and Write is set.
	Interrupt bool
}

// SourceString renders Source as bb:dd.f.
func (f Fault) SourceString() string {
	return fmt.Sprintf("%02x:%02x.%x", f.Source>>8, f.Source>>3&31, f.Source&7)
}

// String is the fault in the boot log's key=value form.
func (f Fault) String() string {
	if f.Interrupt {
		return fmt.Sprintf("source=%s interrupt=%#x reason=%q", f.SourceString(), f.Addr, f.Reason)
	}
	kind := "read"
	if f.Write {
		kind = "write"
	}
	return fmt.Sprintf("source=%s addr=%#x %s reason=%q", f.SourceString(), f.Addr, kind, f.Reason)
}
