package iommu

import (
	"errors"
	"fmt"
)

// Perm is a device's access to a mapped range: what its DMA may do there.
type Perm uint8

const (
	Read  Perm = 1 << iota // the device may read (DMA from memory)
	Write                  // the device may write (DMA to memory)

	ReadWrite = Read | Write
)

func (p Perm) String() string {
	switch p {
	case Read:
		return "r"
	case Write:
		return "w"
	case ReadWrite:
		return "rw"
	}
	return fmt.Sprintf("Perm(%#x)", uint8(p))
}

// Page sizes a domain maps with: every unit has both.
const (
	Size4K uint64 = 1 << 12
	Size2M uint64 = 1 << 21
)

// Errors a domain's operations wrap, for callers that branch.
var (
	// ErrAttached: the device is attached to a domain already (this one
	// or another); detach it first.
	ErrAttached = errors.New("iommu: device already attached to a domain")
	// ErrNotAttached: Detach of a device the domain does not hold.
	ErrNotAttached = errors.New("iommu: device not attached to this domain")
	// ErrNoDomainID: the unit's domain IDs are all in use.
	ErrNoDomainID = errors.New("iommu: no free domain ID")
	// ErrOutside: a device ID outside what the unit translates.
	ErrOutside = errors.New("iommu: device not behind this unit")
	// ErrDestroyed: the domain was destroyed.
	ErrDestroyed = errors.New("iommu: domain destroyed")
)

// Domain is one I/O address space: devices attached to it reach memory
// through its mappings only (IOVA → host-physical, read and/or write),
// and every other address they use faults. Device assignment gives a
// partition's device a domain that maps exactly the partition's RAM at
// its guest-physical addresses.
//
// Invariants every implementation keeps:
//
//   - A device is attached to at most one domain of its unit; a device in
//     no domain is blocked as after BlockAll.
//   - When Map, Unmap, Attach or Detach return, the unit no longer uses
//     anything it cached of the old state: the invalidations the spec
//     asks for are done and awaited (bounded, ErrTimeout wrapped on a
//     unit that does not answer).
//   - Every operation is all-or-nothing: on error the mappings and
//     attachments are as before the call.
//   - Host pages that were mapped belong to the caller; after Unmap or
//     Detach returns, no device of the domain reaches them.
//
// A Domain is not safe for concurrent use; the root serialises calls
// with those of its Unit.
type Domain interface {
	// ID is the hardware domain ID (VT-d DID, AMD-Vi DomainID), for logs.
	ID() uint16
	// Attach moves the device with requester ID source (bus<<8 |
	// device<<3 | function) from the blocked state into the domain.
	Attach(source uint16) error
	// Detach returns the device to the blocked state.
	Detach(source uint16) error
	// Map maps [iova, iova+size) to [hpa, hpa+size) with perm (Read, or
	// Read|Write; write-only is refused: EPT-format tables cannot
	// express it and no user needs it). All three are multiples of 4
	// KiB; 2 MiB pages are used where both addresses and the length
	// allow. The range must be unmapped.
	Map(iova, hpa, size uint64, perm Perm) error
	// Unmap removes every mapping in [iova, iova+size) (holes are fine;
	// a 2 MiB page across an edge is split first).
	Unmap(iova, size uint64) error
	// Translate walks the domain's tables for iova as the unit would:
	// the host-physical address, the access allowed and the size of the
	// page that maps it; ok false where a device's access would fault.
	Translate(iova uint64) (hpa uint64, perm Perm, pageSize uint64, ok bool)
	// OnFault sets the function the unit's Faults passes each fault of a
	// device attached to this domain (nil: none). Faults still returns
	// them all.
	OnFault(fn func(Fault))
	// Destroy detaches every device (blocked again) and frees the tables
	// and the domain ID. The domain is unusable afterwards.
	Destroy() error
}

// Domains is a Unit that has domains: both vendors' drivers.
type Domains interface {
	Unit
	// NewDomain makes an empty domain (nothing mapped, no device).
	NewDomain() (Domain, error)
	// Covers says whether the unit translates the device with requester
	// ID source (its DRHD's scope, its IVHD's device table).
	Covers(source uint16) bool
}

// FaultRouter keeps the fault callback of each attached device and passes
// faults to them: a drivers' helper.
type FaultRouter struct {
	by map[uint16]*func(Fault)
}

// Set routes source's faults to *fn (the domain's current callback).
func (r *FaultRouter) Set(source uint16, fn *func(Fault)) {
	if r.by == nil {
		r.by = map[uint16]*func(Fault){}
	}
	r.by[source] = fn
}

// Clear stops routing source's faults.
func (r *FaultRouter) Clear(source uint16) { delete(r.by, source) }

// Route passes f to its device's domain callback, if any.
func (r *FaultRouter) Route(f Fault) {
	if fn := r.by[f.Source]; fn != nil && *fn != nil {
		(*fn)(f)
	}
}

// CheckMap validates Map's arguments the same way for every driver.
func CheckMap(iova, hpa, size uint64, perm Perm, space uint64) error {
	switch {
	case iova%Size4K != 0 || hpa%Size4K != 0 || size%Size4K != 0:
		return fmt.Errorf("iova %#x hpa %#x size %#x: not 4 KiB aligned", iova, hpa, size)
	case size == 0 || iova >= space || size > space-iova:
		return fmt.Errorf("iova %#x size %#x: outside the domain's %#x bytes of address space", iova, size, space)
	case hpa >= 1<<52 || size > 1<<52-hpa:
		return fmt.Errorf("hpa %#x size %#x: beyond 52 bits", hpa, size)
	case perm != Read && perm != ReadWrite:
		return fmt.Errorf("permission %v: Read or Read|Write", perm)
	}
	return nil
}
