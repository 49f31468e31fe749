// Package physmem tracks physical RAM: which page-aligned ranges are usable
// (Map), how a firmware memory map becomes such a set (MemoryMap), and which
// 4 KiB pages are free (Allocator).
//
// Everything here runs in the kernel's trap handlers and at early boot, before
// the Go runtime is initialised: no function allocates, none returns an
// error value (results are bools), none panics on bad input, and all state is
// pointer-free fixed-size arrays and integers. The single exception is the
// bitmap slice that Allocator.Init stores once at boot.
package physmem

import "gohv/x86"

// PageSize is the size of the pages this package hands out.
const PageSize = x86.PageSize

const pageMask = PageSize - 1

// lastPage is the highest page-aligned address. The page starting there ends
// at 2^64, which a Range cannot express, so it is never usable.
const lastPage = ^uint64(pageMask)

// Range is the physical address range [Start, End).
type Range struct{ Start, End uint64 }

// Size is the range's length in bytes.
func (r Range) Size() uint64 { return r.End - r.Start }

// MaxRanges is how many disjoint ranges a Map holds.
const MaxRanges = 128

// Map is a set of usable physical RAM ranges: sorted, non-overlapping,
// merged (no two ranges touch), page-aligned and non-empty. The zero value is
// the empty set.
type Map struct {
	n int
	r [MaxRanges]Range
}

// alignUp rounds x up to a page; ok is false if that overflows.
func alignUp(x uint64) (uint64, bool) {
	if x > lastPage {
		return 0, false
	}
	return (x + pageMask) &^ pageMask, true
}

// AddUsable adds the whole pages inside [start, end) (start rounds up, end
// rounds down), merging with ranges it overlaps or touches. It returns false,
// and leaves the map unchanged, if the result would need more than MaxRanges
// ranges. A range that holds no whole page adds nothing and returns true.
// Runs with interrupts off; must not allocate.
func (m *Map) AddUsable(start, end uint64) bool {
	s, ok := alignUp(start)
	e := end &^ pageMask
	if !ok || s >= e {
		return true
	}
	return m.add(s, e)
}

// add inserts the page-aligned, non-empty range [s, e).
// Runs with interrupts off; must not allocate.
func (m *Map) add(s, e uint64) bool {
	// Ranges [i, j) overlap or touch [s, e).
	i := 0
	for i < m.n && m.r[i].End < s {
		i++
	}
	j := i
	for j < m.n && m.r[j].Start <= e {
		j++
	}
	if i == j {
		if m.n == MaxRanges {
			return false
		}
		copy(m.r[i+1:m.n+1], m.r[i:m.n])
		m.r[i] = Range{s, e}
		m.n++
		return true
	}
	merged := Range{min(s, m.r[i].Start), max(e, m.r[j-1].End)}
	m.r[i] = merged
	copy(m.r[i+1:], m.r[j:m.n])
	m.n -= j - i - 1
	return true
}

// Reserve removes [start, end), widened to whole pages (start rounds down,
// end rounds up), splitting a range that holds it. When a split would need
// more than MaxRanges ranges, the smaller of the two pieces is dropped and
// Reserve returns false: the map then holds less RAM than it might, never
// reserved memory.
// Runs with interrupts off; must not allocate.
func (m *Map) Reserve(start, end uint64) bool {
	s := start &^ pageMask
	e, ok := alignUp(end)
	if !ok {
		e = lastPage
	}
	if s >= e {
		return true
	}
	exact := true
	for i := 0; i < m.n; i++ {
		r := m.r[i]
		if r.End <= s {
			continue
		}
		if r.Start >= e {
			break
		}
		left := r.Start < s
		right := e < r.End
		switch {
		case left && right:
			if m.n == MaxRanges {
				exact = false
				if s-r.Start >= r.End-e {
					m.r[i].End = s
				} else {
					m.r[i].Start = e
				}
				return exact
			}
			copy(m.r[i+2:m.n+1], m.r[i+1:m.n])
			m.r[i].End = s
			m.r[i+1] = Range{e, r.End}
			m.n++
			return exact
		case left:
			m.r[i].End = s
		case right:
			m.r[i].Start = e
			return exact
		default:
			copy(m.r[i:], m.r[i+1:m.n])
			m.n--
			i--
		}
	}
	return exact
}

// Len is the number of ranges.
// Runs with interrupts off; must not allocate.
func (m *Map) Len() int { return m.n }

// At returns range i, or the empty Range if i is out of bounds.
// Runs with interrupts off; must not allocate.
func (m *Map) At(i int) Range {
	if i < 0 || i >= m.n {
		return Range{}
	}
	return m.r[i]
}

// Total is the number of usable bytes.
// Runs with interrupts off; must not allocate.
func (m *Map) Total() uint64 {
	var t uint64
	for i := 0; i < m.n; i++ {
		t += m.r[i].End - m.r[i].Start
	}
	return t
}

// Highest is the end of the highest range, 0 for an empty map.
// Runs with interrupts off; must not allocate.
func (m *Map) Highest() uint64 {
	if m.n == 0 {
		return 0
	}
	return m.r[m.n-1].End
}

// Contains reports whether the page holding pa is usable.
// Runs with interrupts off; must not allocate.
func (m *Map) Contains(pa uint64) bool {
	lo, hi := 0, m.n
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		switch r := m.r[mid]; {
		case pa < r.Start:
			hi = mid
		case pa >= r.End:
			lo = mid + 1
		default:
			return true
		}
	}
	return false
}
