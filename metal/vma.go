package metal

// The mmap regions of the one address space the Go runtime sees (VMAs):
// a sorted array, searched and edited with interrupts off, without
// allocating.

// vma is one mmap'd region with uniform protection. Only protRead|protWrite
// regions ever have frames behind them.
type vma struct {
	start, end uint64
	prot       uint8
}

var (
	vmas  [maxVMAs]vma // sorted by start, non-overlapping
	nvmas int
)

func vmaFind(addr uint64) int {
	for i := 0; i < nvmas; i++ {
		if addr < vmas[i].start {
			return -1
		}
		if addr < vmas[i].end {
			return i
		}
	}
	return -1
}

// rangeFree reports whether [start, end) overlaps no VMA.
func rangeFree(start, end uint64) bool {
	for i := 0; i < nvmas; i++ {
		if vmas[i].start >= end {
			return true
		}
		if vmas[i].end > start {
			return false
		}
	}
	return true
}

// findGap returns the lowest free, page-aligned range of n bytes at or above
// userBase whose start is aligned to align.
func findGap(n, align uint64) (uint64, bool) {
	cand := uint64(userBase)
	for i := 0; i <= nvmas; i++ {
		cand = (cand + align - 1) &^ (align - 1)
		limit := uint64(userLimit)
		if i < nvmas {
			limit = vmas[i].start
		}
		if cand+n <= limit && cand+n > cand {
			return cand, true
		}
		if i < nvmas && vmas[i].end > cand {
			cand = vmas[i].end
		}
	}
	return 0, false
}

// vmaInsert adds [start, end) with prot; the range must be free. Merges with
// equal-protection neighbours. Returns false if the table is full.
func vmaInsert(start, end uint64, prot uint8) bool {
	i := 0
	for i < nvmas && vmas[i].start < start {
		i++
	}
	left := i > 0 && vmas[i-1].end == start && vmas[i-1].prot == prot
	right := i < nvmas && vmas[i].start == end && vmas[i].prot == prot
	switch {
	case left && right:
		vmas[i-1].end = vmas[i].end
		copy(vmas[i:nvmas-1], vmas[i+1:nvmas])
		nvmas--
	case left:
		vmas[i-1].end = end
	case right:
		vmas[i].start = start
	default:
		if nvmas == maxVMAs {
			return false
		}
		copy(vmas[i+1:nvmas+1], vmas[i:nvmas])
		vmas[i] = vma{start, end, prot}
		nvmas++
	}
	return true
}

// vmaRemove takes [start, end) out of the map, splitting regions and
// releasing the frames behind removed readable/writable pages.
func vmaRemove(start, end uint64) bool {
	for i := 0; i < nvmas; i++ {
		v := vmas[i]
		if v.end <= start || v.start >= end {
			continue
		}
		lo, hi := max(v.start, start), min(v.end, end)
		if v.prot != protNone {
			releaseFrames(lo, hi)
		}
		switch {
		case lo == v.start && hi == v.end:
			copy(vmas[i:nvmas-1], vmas[i+1:nvmas])
			nvmas--
			i--
		case lo == v.start:
			vmas[i].start = hi
		case hi == v.end:
			vmas[i].end = lo
		default:
			if nvmas == maxVMAs {
				return false
			}
			copy(vmas[i+2:nvmas+1], vmas[i+1:nvmas])
			vmas[i].end = lo
			vmas[i+1] = vma{hi, v.end, v.prot}
			nvmas++
			i++
		}
	}
	return true
}
