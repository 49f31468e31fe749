package netvsp

import "fmt"

// PageSize is the VMBus page size: GPADLs and PFNs count 4 KiB pages.
const PageSize = 4096

// maxPFN keeps pfn·PageSize inside 64 bits and x86-64's 52-bit physical
// addresses: a guest's GPA range naming a larger PFN is refused before
// any address is formed from it.
const maxPFN = 1<<40 - 1

// pageBuffer is a lent GPADL of whole pages seen as one byte range: byte
// i is pages[i/PageSize][i%PageSize]. The pages are the guest's RAM (the
// VMBus server checked each when the GPADL was created); their contents
// are guest-controlled and may change at any time.
type pageBuffer struct {
	handle uint32
	pages  []*[PageSize]byte
}

func (b pageBuffer) len() int { return len(b.pages) * PageSize }

// in reports whether n bytes at off lie inside the buffer.
func (b pageBuffer) in(off, n int) bool {
	return off >= 0 && n >= 0 && off <= b.len() && n <= b.len()-off
}

// readAt copies len(p) bytes at off into p; the caller checked in.
func (b pageBuffer) readAt(p []byte, off int) {
	for len(p) > 0 {
		pg, o := off/PageSize, off%PageSize
		k := copy(p, b.pages[pg][o:])
		p, off = p[k:], off+k
	}
}

// writeAt copies p into the buffer at off; the caller checked in.
func (b pageBuffer) writeAt(p []byte, off int) {
	for len(p) > 0 {
		pg, o := off/PageSize, off%PageSize
		k := copy(b.pages[pg][o:], p)
		p, off = p[k:], off+k
	}
}

func (b pageBuffer) String() string {
	return fmt.Sprintf("gpadl %d (%d pages)", b.handle, len(b.pages))
}
