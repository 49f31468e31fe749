package vcpu

import (
	"errors"
	"fmt"

	"gohv/x86"
)

// HostMemory gives the hypervisor physical pages: metal in the image, a
// fake in host tests. Page returns the page's bytes through the host's
// physical map.
type HostMemory interface {
	AllocPage() (uint64, error)
	FreePage(pa uint64) error
	Page(pa uint64) *[x86.PageSize]byte
}

// Pages is a set of host pages a backend holds for one owner (the backend
// itself or one VCPU): allocation with rollback and release in one place.
// Not safe for concurrent use.
type Pages struct {
	mem HostMemory
	pas []uint64
}

// NewPages starts an empty set over mem.
func NewPages(mem HostMemory) *Pages { return &Pages{mem: mem} }

// Alloc takes one zeroed page; what names it in the error.
func (s *Pages) Alloc(what string) (uint64, *[x86.PageSize]byte, error) {
	pa, err := s.mem.AllocPage()
	if err != nil {
		return 0, nil, fmt.Errorf("%s: %w", what, err)
	}
	s.pas = append(s.pas, pa)
	return pa, s.mem.Page(pa), nil
}

// AllocContiguous takes n physically contiguous zeroed pages (the SVM
// permission maps need 2 and 3, VMX's I/O bitmaps 2) and returns the
// first's address. fill, if not zero, is written to every byte (an all-ones
// I/O map intercepts every port).
func (s *Pages) AllocContiguous(n int, fill byte, what string) (uint64, error) {
	pa, err := allocContiguous(s.mem, n)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", what, err)
	}
	for i := 0; i < n; i++ {
		p := pa + uint64(i)*x86.PageSize
		s.pas = append(s.pas, p)
		if fill != 0 {
			pg := s.mem.Page(p)
			for j := range pg {
				pg[j] = fill
			}
		}
	}
	return pa, nil
}

// Page returns the bytes of a page in the set (or any host page).
func (s *Pages) Page(pa uint64) *[x86.PageSize]byte { return s.mem.Page(pa) }

// Free returns every page of the set; the set is then empty. It reports
// the first page the host refused.
func (s *Pages) Free() error {
	var errs []error
	for _, pa := range s.pas {
		if err := s.mem.FreePage(pa); err != nil {
			errs = append(errs, err)
		}
	}
	s.pas = nil
	return errors.Join(errs...)
}

// Len is how many pages the set holds.
func (s *Pages) Len() int { return len(s.pas) }

// allocContiguous returns n physically contiguous zeroed pages. The
// allocators hand out the lowest free page first, so a run usually forms at
// once; pages that do not fit the run are freed again.
func allocContiguous(h HostMemory, n int) (uint64, error) {
	var run, spare []uint64
	defer func() {
		for _, pa := range spare {
			h.FreePage(pa)
		}
	}()
	for tries := 0; len(run) < n; tries++ {
		if tries > 64*n {
			spare = append(spare, run...)
			return 0, fmt.Errorf("no %d contiguous physical pages", n)
		}
		pa, err := h.AllocPage()
		if err != nil {
			spare = append(spare, run...)
			return 0, fmt.Errorf("%d contiguous pages: %w", n, err)
		}
		if len(run) > 0 && pa != run[len(run)-1]+x86.PageSize {
			spare = append(spare, run...)
			run = run[:0]
		}
		run = append(run, pa)
	}
	return run[0], nil
}
