package hv

import (
	"errors"
	"fmt"
)

// HostMemory gives the core physical pages: metal in the image, a fake in
// host tests. Page returns the page's bytes through the host's physical map.
type HostMemory interface {
	AllocPage() (uint64, error)
	FreePage(pa uint64) error
	Page(pa uint64) *[4096]byte
}

// PageSize is the granule of guest RAM and of every permission map.
const PageSize = 4096

// AllocContiguous returns n physically contiguous zeroed pages (the SVM
// permission maps need 2 and 3). The allocators hand out the lowest free page
// first, so a run usually forms at once; pages that do not fit the run are
// freed again.
func AllocContiguous(h HostMemory, n int) (uint64, error) {
	var run []uint64
	var spare []uint64
	defer func() {
		for _, pa := range spare {
			h.FreePage(pa)
		}
	}()
	for tries := 0; len(run) < n; tries++ {
		if tries > 64*n {
			for _, pa := range run {
				h.FreePage(pa)
			}
			return 0, fmt.Errorf("hv: no %d contiguous physical pages", n)
		}
		pa, err := h.AllocPage()
		if err != nil {
			for _, pa := range run {
				h.FreePage(pa)
			}
			return 0, fmt.Errorf("hv: %d contiguous pages: %w", n, err)
		}
		if len(run) > 0 && pa != run[len(run)-1]+PageSize {
			spare = append(spare, run...)
			run = run[:0]
		}
		run = append(run, pa)
	}
	return run[0], nil
}

// ErrOutsideMemory is the cause when a partition touches a guest-physical
// address its memory map does not have.
var ErrOutsideMemory = errors.New("outside the partition's memory map")
