package storvsp

import (
	"errors"
	"fmt"
)

// GuestBuffers is the guest memory one EXECUTE_SRB's data lives in: the
// VMBus packet's GPA-direct page range, read and written by offset from
// the range's first byte. scsi.Buffer has the same methods, so a
// GuestBuffers is handed to the SCSI layer as it is.
//
// An implementation reaches only the pages the packet named and only
// inside the partition's RAM: NewGPADirect builds one over a GuestMemory
// that refuses anything else; a GPADL-backed one (VMBus's
// DATA_USING_GPADL) would check the GPADL's bounds the same way. It is
// used only during the HandlePacket call it came with.
type GuestBuffers interface {
	// Len is the range's length in bytes (its byte_count).
	Len() int
	// ReadAt copies guest bytes at off into p: all of p, or an error.
	ReadAt(p []byte, off int64) (int, error)
	// WriteAt copies p into the guest at off: all of p, or an error.
	WriteAt(p []byte, off int64) (int, error)
	// Check makes sure the first n bytes lie inside the range and every
	// page under them is the partition's RAM, changing nothing: nil, or
	// the error the first ReadAt or WriteAt over a bad page would have
	// given. The VSP calls it before a command runs, so a command over a
	// page outside RAM is refused before it touches the disk or the
	// guest; a partition's RAM does not change while it runs, so a page
	// found good stays good for the command. Must not allocate when
	// every page is good.
	Check(n int) error
}

// GuestMemory is a partition's RAM as the VSP may touch it, by guest
// physical address; every access lies within one 4 KiB page. Both
// methods refuse (with an error) any address outside the partition's RAM.
// *hv.GuestMemory satisfies it.
type GuestMemory interface {
	ReadRAM(gpa uint64, b []byte) error
	WriteRAM(gpa uint64, b []byte) error
}

// PageSize is the VMBus page size: PFNs count 4 KiB pages whatever the
// guest's own page size.
const PageSize = 4096

// maxPFN keeps pfn·PageSize inside 64 bits (and inside x86-64's 52-bit
// physical addresses).
const maxPFN = 1<<52 - 1

// PageRange is one range of a GPA-direct VMBus packet (vmbus_packet_mpb_array's
// hv_mpb_array / hv_multipage_buffer): ByteCount bytes starting ByteOffset
// bytes into the first page, over the pages PFNs lists. All of it is
// guest-controlled.
type PageRange struct {
	ByteCount  uint32
	ByteOffset uint32
	// PFNs may be longer than the range needs: for transfers of at most
	// 32 pages Linux sends a fixed 32-slot array whose unused slots hold
	// stale values (trap 9). Only the first PageCount are read.
	PFNs []uint64
}

// PageCount is how many pages the range covers, derived from its offset
// and length (never from the PFN array's size).
func (r PageRange) PageCount() int {
	return int((uint64(r.ByteOffset) + uint64(r.ByteCount) + PageSize - 1) / PageSize)
}

// NewGPADirect checks a GPA-direct packet's ranges and returns the guest
// buffers over them, or nil for a packet with no range. It refuses, with
// an error wrapping ErrMalformed: more than one range (storvsc sends
// exactly one), a byte offset outside the first page, fewer PFNs than the
// range covers, a PFN beyond 52 bits. Whether the pages are the
// partition's RAM is mem's to check, at each access.
func NewGPADirect(mem GuestMemory, ranges []PageRange) (GuestBuffers, error) {
	switch len(ranges) {
	case 0:
		return nil, nil
	case 1:
	default:
		return nil, fmt.Errorf("storvsp: GPA-direct packet with %d ranges, want 1: %w", len(ranges), ErrMalformed)
	}
	r := ranges[0]
	if r.ByteOffset >= PageSize {
		return nil, fmt.Errorf("storvsp: GPA-direct byte offset %d is not inside the first page: %w", r.ByteOffset, ErrMalformed)
	}
	n := r.PageCount()
	if len(r.PFNs) < n {
		return nil, fmt.Errorf("storvsp: GPA-direct range of %d bytes at offset %d covers %d pages, %d PFNs given: %w",
			r.ByteCount, r.ByteOffset, n, len(r.PFNs), ErrMalformed)
	}
	for i, pfn := range r.PFNs[:n] {
		if pfn > maxPFN {
			return nil, fmt.Errorf("storvsp: GPA-direct PFN %d is %#x: %w", i, pfn, ErrMalformed)
		}
	}
	return &gpaDirect{mem: mem, pfns: r.PFNs[:n], offset: r.ByteOffset, n: int(r.ByteCount)}, nil
}

type gpaDirect struct {
	mem    GuestMemory
	pfns   []uint64
	offset uint32
	n      int
	// probe is Check's scratch byte: it lives in the gpaDirect, already
	// on the heap, so a probe allocates nothing. A GuestBuffers serves
	// one HandlePacket call, one access at a time.
	probe [1]byte
}

// ErrOutOfRange is a GuestBuffers' refusal of an access beyond its length.
var ErrOutOfRange = errors.New("storvsp: access beyond the guest buffer")

func (g *gpaDirect) Len() int { return g.n }

func (g *gpaDirect) ReadAt(p []byte, off int64) (int, error) {
	return g.access(p, off, g.mem.ReadRAM)
}

func (g *gpaDirect) WriteAt(p []byte, off int64) (int, error) {
	return g.access(p, off, g.mem.WriteRAM)
}

// Check reads one byte of every page under the first n bytes (GuestMemory
// has no other way to ask), so data-out and data-in commands alike are
// refused before they start. Guest-controlled: the PFNs; n is at most
// Len, so at most PageCount pages are probed.
func (g *gpaDirect) Check(n int) error {
	if n < 0 || n > g.n {
		return fmt.Errorf("%w: %d bytes of %d", ErrOutOfRange, n, g.n)
	}
	if n == 0 {
		return nil
	}
	last := (uint64(g.offset) + uint64(n) - 1) / PageSize
	for page := uint64(0); page <= last; page++ {
		gpa := g.pfns[page] * PageSize
		if page == 0 {
			gpa += uint64(g.offset)
		}
		if err := g.mem.ReadRAM(gpa, g.probe[:]); err != nil {
			return fmt.Errorf("storvsp: guest page %#x (PFN %d of the range): %w", g.pfns[page], page, err)
		}
	}
	return nil
}

// access walks p page by page through the PFN list.
func (g *gpaDirect) access(p []byte, off int64, op func(uint64, []byte) error) (int, error) {
	if off < 0 || off > int64(g.n) || int64(len(p)) > int64(g.n)-off {
		return 0, fmt.Errorf("%w: %d bytes at %d of %d", ErrOutOfRange, len(p), off, g.n)
	}
	pos := uint64(g.offset) + uint64(off)
	done := 0
	for done < len(p) {
		page, in := pos/PageSize, pos%PageSize
		k := min(int(PageSize-in), len(p)-done)
		gpa := g.pfns[page]*PageSize + in
		if err := op(gpa, p[done:done+k]); err != nil {
			return done, fmt.Errorf("storvsp: guest page %#x (PFN %d of the range): %w", g.pfns[page], page, err)
		}
		done += k
		pos += uint64(k)
	}
	return done, nil
}

// window is a GuestBuffers cut to a request's data_transfer_length.
type window struct {
	b GuestBuffers
	n int
}

func (w window) Len() int { return w.n }

func (w window) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 || off > int64(w.n) || int64(len(p)) > int64(w.n)-off {
		return 0, fmt.Errorf("%w: %d bytes at %d of %d", ErrOutOfRange, len(p), off, w.n)
	}
	return w.b.ReadAt(p, off)
}

func (w window) WriteAt(p []byte, off int64) (int, error) {
	if off < 0 || off > int64(w.n) || int64(len(p)) > int64(w.n)-off {
		return 0, fmt.Errorf("%w: %d bytes at %d of %d", ErrOutOfRange, len(p), off, w.n)
	}
	return w.b.WriteAt(p, off)
}
