// Package vcputest holds test doubles for the vendor contract: host
// physical memory made of Go arrays, for the host tests of the core and of
// the backends. Test code only.
package vcputest

import (
	"errors"
	"fmt"

	"gohv/x86"
)

// FakeHost is vcpu.HostMemory over Go arrays. Pages are handed out at
// increasing addresses from 1 MiB, skipping any address in Holes (to break
// contiguous runs); Limit > 0 caps how many pages may be held at once.
// FreePage refuses a page it does not hold (a double free).
type FakeHost struct {
	Pages map[uint64]*[x86.PageSize]byte
	Limit int
	Holes map[uint64]bool
	next  uint64
}

// NewFakeHost makes an empty host.
func NewFakeHost() *FakeHost {
	return &FakeHost{Pages: map[uint64]*[x86.PageSize]byte{}, Holes: map[uint64]bool{}, next: 0x10_0000}
}

// ErrOutOfPages is AllocPage's error at the Limit.
var ErrOutOfPages = errors.New("fake host: out of pages")

func (h *FakeHost) AllocPage() (uint64, error) {
	if h.Limit > 0 && len(h.Pages) >= h.Limit {
		return 0, ErrOutOfPages
	}
	for h.Holes[h.next] {
		h.next += x86.PageSize
	}
	pa := h.next
	h.next += x86.PageSize
	h.Pages[pa] = new([x86.PageSize]byte)
	return pa, nil
}

func (h *FakeHost) FreePage(pa uint64) error {
	if h.Pages[pa] == nil {
		return fmt.Errorf("fake host: double free %#x", pa)
	}
	delete(h.Pages, pa)
	return nil
}

// Page returns the page holding pa (any offset within it), or nil.
func (h *FakeHost) Page(pa uint64) *[x86.PageSize]byte { return h.Pages[pa&^(x86.PageSize-1)] }
