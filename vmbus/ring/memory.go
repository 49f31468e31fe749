package ring

// Memory is one ring's memory as the ring sees it: the control page at
// offsets [0, PageSize) and the data area at [PageSize, Len()). Tests use
// a FlatMemory over a []byte; the host maps a channel's GPADL pages, which
// are not contiguous in its memory, as a PageMemory.
//
// The ring calls ReadAt and WriteAt only inside the data area, with
// 0 <= off and off+len(p) <= Len(), and LoadU32 and StoreU32 only on the
// control page, with off a multiple of 4; an implementation may panic
// otherwise (a bug in the ring, never the peer's doing). The peer writes
// the same memory concurrently: ReadAt and WriteAt are plain copies that
// may see torn data, and LoadU32 and StoreU32 are sequentially consistent
// atomic operations (sync/atomic's), which order the copies around them:
// a writer's copies before its StoreU32 of the write index are seen by a
// reader that LoadU32s that index, and the same for the read index the
// other way. No method may block or allocate.
type Memory interface {
	// Len is the ring's size in bytes: a multiple of PageSize, at least
	// two pages.
	Len() int
	// ReadAt copies len(p) bytes from off into p.
	ReadAt(p []byte, off int)
	// WriteAt copies p to off.
	WriteAt(p []byte, off int)
	// LoadU32 atomically loads the 32-bit word at off.
	LoadU32(off int) uint32
	// StoreU32 atomically stores v into the 32-bit word at off.
	StoreU32(off int, v uint32)
}
