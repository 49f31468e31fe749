package physmem

import "math/bits"

// The allocator's free-page index is a three-level bitmap tree, each set bit
// meaning "something free below":
//
//	leaf     bits[w]        bit b: page w*64+b is free (caller's memory, 1 bit per page)
//	summary  summary[s]     bit b: some leaf word in group s*64+b is non-zero
//	top      top[t]         bit b: summary word t*64+b is non-zero
//
// A group is 1<<shift consecutive leaf words; Init picks the smallest shift
// that lets summaryWords*64 groups cover the whole leaf bitmap (shift 2, four
// words, for 64 GiB of RAM). Finding the next free page at or after any
// position reads at most one leaf word, the rest of its group, one summary
// word, topWords top words and one more group: a small constant, however
// full or fragmented memory is.
const (
	summaryWords = 1024
	topWords     = summaryWords / 64
	maxGroups    = summaryWords * 64
)

// Allocator hands out 4 KiB physical pages from a Map. Pages are returned
// not zeroed: the kernel zeroes them through its physical map.
//
// Its state is integers and fixed arrays, plus the bitmap slice Init stores
// once at boot. It is not safe for concurrent use; the kernel calls it with
// interrupts off.
type Allocator struct {
	bits    []uint64 // leaf bitmap, set once by Init
	pages   uint64   // pages the bitmap covers: [0, pages*PageSize)
	shift   uint     // log2 of leaf words per summary bit
	hint    uint64   // page where the next Alloc starts looking
	free    uint64
	total   uint64
	ram     Map // usable pages, to reject frees of pages that never were
	summary [summaryWords]uint64
	top     [topWords]uint64
}

// BitmapWords is how many uint64 words Init needs for a map whose highest
// range ends at highest: one bit per page from 0 to highest.
func BitmapWords(highest uint64) int {
	pages := highest / PageSize
	return int((pages + 63) / 64)
}

// Init marks every page of m free and every other page used. It stores bitmap
// (only its first BitmapWords(m.Highest()) words are used) for the
// allocator's lifetime. It returns false, leaving a unusable, if bitmap is too
// small.
// Call once at boot, before the Go runtime starts; must not allocate.
func (a *Allocator) Init(m *Map, bitmap []uint64) bool {
	words := BitmapWords(m.Highest())
	if len(bitmap) < words {
		a.bits = nil
		a.pages, a.free, a.total = 0, 0, 0
		return false
	}
	a.bits = bitmap[:words:words]
	a.pages = m.Highest() / PageSize
	a.shift = 0
	for uint64(words) > uint64(maxGroups)<<a.shift {
		a.shift++
	}
	a.hint = 0
	a.ram = *m
	a.free, a.total = 0, 0
	clear(a.bits)
	clear(a.summary[:])
	clear(a.top[:])
	for i := 0; i < m.n; i++ {
		lo, hi := m.r[i].Start/PageSize, m.r[i].End/PageSize
		a.setRange(lo, hi)
		a.total += hi - lo
	}
	a.free = a.total
	for w := range a.bits {
		if a.bits[w] != 0 {
			a.markGroup(uint64(w))
		}
	}
	return true
}

// setRange marks pages [lo, hi) free in the leaf bitmap only.
// Runs at boot, before the Go runtime; must not allocate.
func (a *Allocator) setRange(lo, hi uint64) {
	for lo < hi && lo&63 != 0 {
		a.bits[lo>>6] |= 1 << (lo & 63)
		lo++
	}
	for ; lo+64 <= hi; lo += 64 {
		a.bits[lo>>6] = ^uint64(0)
	}
	for ; lo < hi; lo++ {
		a.bits[lo>>6] |= 1 << (lo & 63)
	}
}

// markGroup records that leaf word w has a free page.
// Runs with interrupts off; must not allocate.
func (a *Allocator) markGroup(w uint64) {
	g := w >> a.shift
	a.summary[g>>6] |= 1 << (g & 63)
	s := g >> 6
	a.top[s>>6] |= 1 << (s & 63)
}

// unmarkGroup records that leaf word w just became full, clearing the
// summary and top bits if its whole group is now full.
// Runs with interrupts off; must not allocate.
func (a *Allocator) unmarkGroup(w uint64) {
	g := w >> a.shift
	lo := g << a.shift
	hi := min(lo+1<<a.shift, uint64(len(a.bits)))
	for i := lo; i < hi; i++ {
		if a.bits[i] != 0 {
			return
		}
	}
	a.summary[g>>6] &^= 1 << (g & 63)
	s := g >> 6
	if a.summary[s] == 0 {
		a.top[s>>6] &^= 1 << (s & 63)
	}
}

// findFrom returns the lowest free page at or after page p.
// Runs with interrupts off; must not allocate.
func (a *Allocator) findFrom(p uint64) (uint64, bool) {
	if p >= a.pages {
		return 0, false
	}
	w := p >> 6
	if x := a.bits[w] & (^uint64(0) << (p & 63)); x != 0 {
		return w<<6 + uint64(bits.TrailingZeros64(x)), true
	}
	// The rest of w's group.
	g := w >> a.shift
	if p, ok := a.scanGroup(g, w+1); ok {
		return p, true
	}
	// The first later group with a free page: its summary word, then the
	// top level for later summary words.
	g++
	s := g >> 6
	if s < summaryWords {
		if x := a.summary[s] & (^uint64(0) << (g & 63)); x != 0 {
			return a.scanGroup(s<<6+uint64(bits.TrailingZeros64(x)), 0)
		}
	}
	s++
	for t := s >> 6; t < topWords; t++ {
		x := a.top[t]
		if t == s>>6 {
			x &= ^uint64(0) << (s & 63)
		}
		if x != 0 {
			sw := t<<6 + uint64(bits.TrailingZeros64(x))
			g := sw<<6 + uint64(bits.TrailingZeros64(a.summary[sw]))
			return a.scanGroup(g, 0)
		}
	}
	return 0, false
}

// scanGroup returns the first free page in group g's leaf words, starting at
// word from (or the group's first word, if later).
// Runs with interrupts off; must not allocate.
func (a *Allocator) scanGroup(g, from uint64) (uint64, bool) {
	lo := max(g<<a.shift, from)
	hi := min((g+1)<<a.shift, uint64(len(a.bits)))
	for w := lo; w < hi; w++ {
		if x := a.bits[w]; x != 0 {
			return w<<6 + uint64(bits.TrailingZeros64(x)), true
		}
	}
	return 0, false
}

// take marks free page p used.
// Runs with interrupts off; must not allocate.
func (a *Allocator) take(p uint64) {
	w := p >> 6
	a.bits[w] &^= 1 << (p & 63)
	if a.bits[w] == 0 {
		a.unmarkGroup(w)
	}
	a.free--
}

// Alloc returns a free page: the first one at or after a rotating hint (the
// page after the previous allocation), wrapping to the bottom of memory.
// The page is not zeroed.
// Runs with interrupts off; must not allocate.
func (a *Allocator) Alloc() (pa uint64, ok bool) {
	p, ok := a.findFrom(a.hint)
	if !ok {
		p, ok = a.findFrom(0)
		if !ok {
			return 0, false
		}
	}
	a.take(p)
	a.hint = p + 1
	return p * PageSize, true
}

// AllocBelow returns the lowest free page, provided it lies wholly below
// limit (for DMA and boot structures that must sit below, say, 4 GiB). The
// page is not zeroed. It does not move Alloc's hint.
// Runs with interrupts off; must not allocate.
func (a *Allocator) AllocBelow(limit uint64) (pa uint64, ok bool) {
	p, ok := a.findFrom(0)
	if !ok || p >= limit/PageSize {
		return 0, false
	}
	a.take(p)
	return p * PageSize, true
}

// page converts pa to a page number the allocator manages (a usable page).
// Runs with interrupts off; must not allocate.
func (a *Allocator) page(pa uint64) (uint64, bool) {
	if pa&pageMask != 0 || pa/PageSize >= a.pages || !a.ram.Contains(pa) {
		return 0, false
	}
	return pa / PageSize, true
}

// Free returns page pa to the allocator. It returns false, changing nothing,
// if pa is unaligned, outside the map, a page that was never usable, or
// already free (a double free).
// Runs with interrupts off; must not allocate.
func (a *Allocator) Free(pa uint64) bool {
	p, ok := a.page(pa)
	if !ok {
		return false
	}
	w := p >> 6
	bit := uint64(1) << (p & 63)
	if a.bits[w]&bit != 0 {
		return false
	}
	was := a.bits[w]
	a.bits[w] |= bit
	if was == 0 {
		a.markGroup(w)
	}
	a.free++
	return true
}

// Reserve takes the specific free page pa out of the allocator, as if Alloc
// had returned it (Free gives it back). It returns false, changing nothing,
// if pa is unaligned, not usable or not free.
// Runs with interrupts off; must not allocate.
func (a *Allocator) Reserve(pa uint64) bool {
	p, ok := a.page(pa)
	if !ok || a.bits[p>>6]&(1<<(p&63)) == 0 {
		return false
	}
	a.take(p)
	return true
}

// IsFree reports whether pa is a free page.
// Runs with interrupts off; must not allocate.
func (a *Allocator) IsFree(pa uint64) bool {
	p, ok := a.page(pa)
	return ok && a.bits[p>>6]&(1<<(p&63)) != 0
}

// FreePages is the number of free pages.
// Runs with interrupts off; must not allocate.
func (a *Allocator) FreePages() uint64 { return a.free }

// TotalPages is the number of usable pages, free or not.
// Runs with interrupts off; must not allocate.
func (a *Allocator) TotalPages() uint64 { return a.total }
