package ring

import (
	"fmt"
	"sync/atomic"
	"unsafe"
)

// This file reaches the control page's words as uint32s for sync/atomic:
// the one place the ring steps outside Go's memory safety. Each
// constructor checks that the control page is 4-byte aligned.

// controlWords is the control page seen as 1024 32-bit words.
type controlWords = [PageSize / 4]uint32

// control views page (at least PageSize bytes, 4-aligned) as words.
func control(page []byte) (*controlWords, error) {
	if len(page) < PageSize {
		return nil, fmt.Errorf("%w: control page of %d bytes", ErrMemory, len(page))
	}
	if uintptr(unsafe.Pointer(unsafe.SliceData(page)))%4 != 0 {
		return nil, fmt.Errorf("%w: control page not 4-byte aligned", ErrMemory)
	}
	return (*controlWords)(unsafe.Pointer(unsafe.SliceData(page))), nil
}

// checkSize refuses a ring that is not a control page and a data area of
// whole pages, or whose data area the 32-bit indices cannot cover.
func checkSize(n int) error {
	if n%PageSize != 0 || n < 2*PageSize || n-PageSize > MaxDataSize {
		return fmt.Errorf("%w: %d bytes", ErrMemory, n)
	}
	return nil
}

// FlatMemory is a ring in one contiguous byte slice: tests, benchmarks,
// and a guest that maps its rings contiguously.
type FlatMemory struct {
	b    []byte
	ctrl *controlWords
}

// NewFlatMemory uses b as a ring: its first page is the control page, the
// rest the data area. len(b) must be a multiple of PageSize, at least two
// pages, and b 4-byte aligned (every Go allocation of a page is).
func NewFlatMemory(b []byte) (*FlatMemory, error) {
	if err := checkSize(len(b)); err != nil {
		return nil, err
	}
	c, err := control(b)
	if err != nil {
		return nil, err
	}
	return &FlatMemory{b: b[:len(b):len(b)], ctrl: c}, nil
}

func (m *FlatMemory) Len() int                   { return len(m.b) }
func (m *FlatMemory) ReadAt(p []byte, off int)   { copy(p, m.b[off:off+len(p)]) }
func (m *FlatMemory) WriteAt(p []byte, off int)  { copy(m.b[off:off+len(p)], p) }
func (m *FlatMemory) LoadU32(off int) uint32     { return atomic.LoadUint32(&m.ctrl[off/4]) }
func (m *FlatMemory) StoreU32(off int, v uint32) { atomic.StoreUint32(&m.ctrl[off/4], v) }

// PageMemory is a ring over a list of 4 KiB pages that need not be
// contiguous or in address order: how the host sees a ring in a guest's
// GPADL, one host mapping per guest page. pages[0] is the control page.
type PageMemory struct {
	pages [][]byte
	ctrl  *controlWords
}

// NewPageMemory uses pages, each exactly PageSize bytes, as a ring: the
// first is the control page (4-byte aligned), the others the data area in
// order. At least two pages. The list is copied; the pages are not.
func NewPageMemory(pages [][]byte) (*PageMemory, error) {
	if err := checkSize(len(pages) * PageSize); err != nil {
		return nil, err
	}
	own := make([][]byte, len(pages))
	for i, p := range pages {
		if len(p) != PageSize {
			return nil, fmt.Errorf("%w: page %d has %d bytes", ErrMemory, i, len(p))
		}
		own[i] = p[:PageSize:PageSize]
	}
	c, err := control(own[0])
	if err != nil {
		return nil, err
	}
	return &PageMemory{pages: own, ctrl: c}, nil
}

func (m *PageMemory) Len() int { return len(m.pages) * PageSize }

func (m *PageMemory) ReadAt(p []byte, off int) {
	for len(p) > 0 {
		n := copy(p, m.pages[off/PageSize][off%PageSize:])
		p, off = p[n:], off+n
	}
}

func (m *PageMemory) WriteAt(p []byte, off int) {
	for len(p) > 0 {
		n := copy(m.pages[off/PageSize][off%PageSize:], p)
		p, off = p[n:], off+n
	}
}

func (m *PageMemory) LoadU32(off int) uint32     { return atomic.LoadUint32(&m.ctrl[off/4]) }
func (m *PageMemory) StoreU32(off int, v uint32) { atomic.StoreUint32(&m.ctrl[off/4], v) }
