package acpi

import "fmt"

// Memory reads physical memory. The image implements it over its
// physical-memory map; tests and tools implement it over captured dumps.
type Memory interface {
	// ReadAt fills p from physical address pa. It returns an error if
	// any byte of [pa, pa+len(p)) is not readable; p's contents are then
	// undefined.
	ReadAt(p []byte, pa uint64) error
}

// Region is a Memory holding Data at physical addresses [Base,
// Base+len(Data)).
type Region struct {
	Base uint64
	Data []byte
}

// ReadAt implements Memory.
func (r Region) ReadAt(p []byte, pa uint64) error {
	n := uint64(len(p))
	if pa < r.Base || pa-r.Base > uint64(len(r.Data)) || uint64(len(r.Data))-(pa-r.Base) < n {
		return fmt.Errorf("acpi: physical range [%#x, %#x) outside region [%#x, %#x)",
			pa, pa+n, r.Base, r.Base+uint64(len(r.Data)))
	}
	copy(p, r.Data[pa-r.Base:])
	return nil
}

// Regions is a sparse Memory: a read may span regions that touch, but
// every byte must lie in one of them. Regions may be in any order but must
// not overlap.
type Regions []Region

// ReadAt implements Memory.
func (rs Regions) ReadAt(p []byte, pa uint64) error {
	start := pa
	for len(p) > 0 {
		n := 0
		for _, r := range rs {
			if pa >= r.Base && pa-r.Base < uint64(len(r.Data)) {
				n = copy(p, r.Data[pa-r.Base:])
				break
			}
		}
		if n == 0 {
			return fmt.Errorf("acpi: physical address %#x (reading %d bytes at %#x) not in any region",
				pa, uint64(len(p))+(pa-start), start)
		}
		p = p[n:]
		pa += uint64(n)
		if pa == 0 && len(p) > 0 { // wrapped past the top of the address space
			return fmt.Errorf("acpi: read at %#x wraps the address space", start)
		}
	}
	return nil
}
