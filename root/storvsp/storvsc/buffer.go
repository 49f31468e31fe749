package storvsc

import (
	"fmt"
	"sync"

	"gohv/vmbus/client"
	"gohv/vmbus/proto"
)

// Buffer is a request's data buffer in the guest's own memory: whole 4 KiB
// pages from a client.Memory, which need not be contiguous, named to the
// host by frame number in a GPA-direct packet. The host reads (WRITE) or
// writes (READ) the pages directly while it serves the request; nothing is
// copied on the way.
//
// A Buffer may be a view of part of another (Slice): the views share the
// pages, and the range sent to the host starts at the view's first byte,
// so a view that does not start on a page boundary exercises the packet's
// byte_offset as Linux's scatterlists do.
//
// While a request that names a Buffer is in flight the host owns its
// bytes: the caller must not touch them. Free gives the pages back once no
// request holds them; a request abandoned by its context, or stranded by a
// channel that failed, keeps its pages until the host is known to be done
// with them.
type Buffer struct {
	pages *bufferPages
	off   int // from the first page's first byte
	n     int
}

// bufferPages are the pages behind a Buffer and its views.
type bufferPages struct {
	mem   client.Memory
	pfns  []uint64
	views [][]byte

	mu    sync.Mutex
	refs  int  // requests in flight that name the pages
	freed bool // Free was called
	gone  bool // the pages went back to mem
}

// NewBuffer allocates a buffer of n bytes (n > 0) from mem: ceil(n/4096)
// pages, zeroed.
func NewBuffer(mem client.Memory, n int) (*Buffer, error) {
	if n <= 0 || n > maxBufferBytes {
		return nil, fmt.Errorf("%w: buffer of %d bytes (1 to %d)", ErrInvalid, n, maxBufferBytes)
	}
	count := (n + proto.PageSize - 1) / proto.PageSize
	pfns, views, err := mem.AllocPages(count)
	if err != nil {
		return nil, fmt.Errorf("storvsc: allocate %d buffer pages: %w", count, err)
	}
	if len(pfns) != count || len(views) != count {
		mem.FreePages(pfns)
		return nil, fmt.Errorf("%w: asked Memory for %d pages, got %d frames and %d views", ErrInvalid, count, len(pfns), len(views))
	}
	for i, v := range views {
		if len(v) != proto.PageSize {
			mem.FreePages(pfns)
			return nil, fmt.Errorf("%w: Memory returned page %d of %d bytes", ErrInvalid, i, len(v))
		}
		clear(v)
	}
	return &Buffer{pages: &bufferPages{mem: mem, pfns: pfns, views: views}, n: n}, nil
}

// maxBufferBytes bounds one buffer: 16 MiB, far above any host's
// max_transfer_bytes.
const maxBufferBytes = 16 << 20

// Len is the buffer's length in bytes.
func (b *Buffer) Len() int { return b.n }

// Slice is the view of n bytes at off: the same pages, not a copy.
func (b *Buffer) Slice(off, n int) (*Buffer, error) {
	if off < 0 || n <= 0 || off > b.n || n > b.n-off {
		return nil, fmt.Errorf("%w: slice of %d bytes at %d of a %d-byte buffer", ErrInvalid, n, off, b.n)
	}
	return &Buffer{pages: b.pages, off: b.off + off, n: n}, nil
}

// ReadAt copies the buffer's bytes at off into p (io.ReaderAt): all of p,
// or an error.
func (b *Buffer) ReadAt(p []byte, off int64) (int, error) {
	return b.walk(p, off, func(page, p []byte) { copy(p, page) })
}

// WriteAt copies p into the buffer at off (io.WriterAt): all of p, or an
// error.
func (b *Buffer) WriteAt(p []byte, off int64) (int, error) {
	return b.walk(p, off, func(page, p []byte) { copy(page, p) })
}

// Bytes is a copy of the buffer's contents.
func (b *Buffer) Bytes() []byte {
	out := make([]byte, b.n)
	b.ReadAt(out, 0)
	return out
}

// walk applies f to p page by page from off.
func (b *Buffer) walk(p []byte, off int64, f func(page, p []byte)) (int, error) {
	if off < 0 || off > int64(b.n) || int64(len(p)) > int64(b.n)-off {
		return 0, fmt.Errorf("%w: %d bytes at %d of a %d-byte buffer", ErrInvalid, len(p), off, b.n)
	}
	b.pages.mu.Lock()
	freed := b.pages.freed
	b.pages.mu.Unlock()
	if freed {
		return 0, fmt.Errorf("%w: buffer freed", ErrInvalid)
	}
	pos := b.off + int(off)
	done := 0
	for done < len(p) {
		i, in := pos/proto.PageSize, pos%proto.PageSize
		k := min(proto.PageSize-in, len(p)-done)
		f(b.pages.views[i][in:in+k], p[done:done+k])
		done += k
		pos += k
	}
	return done, nil
}

// Range is the buffer as a GPA-direct range: its offset into its first
// page, its length and exactly the frames it spans.
func (b *Buffer) Range() client.Range {
	first := b.off / proto.PageSize
	off := b.off % proto.PageSize
	count := proto.GPARangePages(uint32(off), uint32(b.n))
	return client.Range{Offset: uint32(off), Len: uint32(b.n), PFNs: b.pages.pfns[first : first+count]}
}

// Free gives the pages back to the Memory, at once if no request holds
// them, else when the last one lets go. Using the buffer (or any view of
// it) after Free is an error; a second Free does nothing.
func (b *Buffer) Free() {
	p := b.pages
	p.mu.Lock()
	p.freed = true
	release := p.refs == 0 && !p.gone
	if release {
		p.gone = true
	}
	p.mu.Unlock()
	if release {
		p.mem.FreePages(p.pfns)
	}
}

// acquire marks a request in flight on the pages.
func (b *Buffer) acquire() error {
	p := b.pages
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.freed {
		return fmt.Errorf("%w: buffer freed", ErrInvalid)
	}
	p.refs++
	return nil
}

// release ends a request's hold: the host no longer uses the pages for it.
func (b *Buffer) release() {
	p := b.pages
	p.mu.Lock()
	p.refs--
	free := p.refs == 0 && p.freed && !p.gone
	if free {
		p.gone = true
	}
	p.mu.Unlock()
	if free {
		p.mem.FreePages(p.pfns)
	}
}
