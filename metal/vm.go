package metal

import (
	"unsafe"

	"gohv/metal/pagetable"
	"gohv/metal/physmem"
	"gohv/x86"
)

// Address space. One set of page tables serves the kernel and the Go runtime:
//
//	[0, 64 KiB)                 not present: nil dereferences fault
//	[64 KiB, 4 GiB)             identity map (kernel image, boot data, MMIO)
//	[userBase, userLimit)       mmap window for the Go heap, backed on first touch
//	physmapBase + pa            every physical page (kernel access to frames)
const (
	nullGuard   = 64 << 10
	identityEnd = 4 << 30
	userBase    = 64 << 30
	userLimit   = 0x7f00_0000_0000
	physmapBase = 0xffff_8000_0000_0000

	pageSize = physmem.PageSize

	protNone  = 0
	protRead  = 1
	protWrite = 2
	protExec  = 4

	maxVMAs = 1024
)

var (
	pages       physmem.Allocator
	pageBits    [1 << 18]uint64 // one bit per 4 KiB page: 64 GiB of RAM
	kpt         pagetable.Table
	physBase    uint64 // 0 while the boot identity map is live, physmapBase after
	pageFlagsNX uint64

	// Demand-paging statistics.
	pagesBacked uint64
	pagesFreed  uint64
)

// kernelMem gives the page-table code its frames. Runs with interrupts off.
type kernelMem struct{}

func (kernelMem) AllocTable() (uint64, bool) {
	pa, ok := allocFrame()
	return pa, ok
}

func (kernelMem) FreeTable(pa uint64) { pages.Free(pa) }

func (kernelMem) Table(pa uint64) *[512]uint64 {
	return (*[512]uint64)(x86.Ptr(uintptr(physBase + pa)))
}

// allocFrame returns a zeroed physical page.
func allocFrame() (uint64, bool) {
	var pa uint64
	var ok bool
	if physBase == 0 {
		pa, ok = pages.AllocBelow(identityEnd)
	} else {
		pa, ok = pages.Alloc()
	}
	if !ok {
		return 0, false
	}
	clear((*[pageSize]byte)(x86.Ptr(uintptr(physBase + pa)))[:])
	return pa, true
}

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

// releaseFrames unmaps and frees every backed page in [lo, hi).
func releaseFrames(lo, hi uint64) {
	for va := lo; va < hi; va += pageSize {
		pa, _, _, ok := kpt.Lookup(kernelMem{}, va)
		if !ok {
			continue
		}
		kpt.Unmap(kernelMem{}, va, pageSize)
		if !hostTest {
			x86.INVLPG(uintptr(va))
		}
		pages.Free(pa &^ (pageSize - 1))
		pagesFreed++
	}
}

// backPage maps a zeroed frame at va. Returns false when memory is exhausted.
func backPage(va uint64) bool {
	pa, ok := allocFrame()
	if !ok {
		return false
	}
	if !kpt.Map4K(kernelMem{}, va&^(pageSize-1), pa, pagetable.Present|pagetable.Writable|pageFlagsNX) {
		pages.Free(pa)
		return false
	}
	pagesBacked++
	return true
}

// faultResult says what a page fault on a thread address means.
type faultResult uint8

const (
	faultFixed faultResult = iota // backed on demand; retry the access
	faultSegv                     // no mapping or wrong protection
	faultNoMem                    // out of physical memory
)

// handleUserFault resolves a fault at addr. Runs with interrupts off.
func handleUserFault(addr uint64, write bool) faultResult {
	i := vmaFind(addr)
	if i < 0 || vmas[i].prot&protRead == 0 || (write && vmas[i].prot&protWrite == 0) {
		return faultSegv
	}
	if _, _, _, ok := kpt.Lookup(kernelMem{}, addr); ok {
		return faultSegv // present: a protection fault
	}
	if !backPage(addr) {
		return faultNoMem
	}
	return faultFixed
}

// imageStart and imageEnd bound the loaded kernel (text, data, bss).
var imageStart, imageEnd uint64

// userAccess checks that [addr, addr+n) is memory a thread may hand to a
// system call — the kernel image or mapped readable regions — and backs any
// untouched pages so the kernel can copy without faulting. guest-controlled:
// every pointer argument goes through here before use.
func userAccess(addr, n uint64, write bool) bool {
	if n == 0 {
		return true
	}
	end := addr + n
	if end < addr {
		return false
	}
	if addr >= imageStart && end <= imageEnd {
		return true
	}
	for va := addr &^ (pageSize - 1); va < end; va += pageSize {
		i := vmaFind(va)
		if i < 0 || vmas[i].prot&protRead == 0 || (write && vmas[i].prot&protWrite == 0) {
			return false
		}
		if _, _, _, ok := kpt.Lookup(kernelMem{}, va); !ok {
			if !backPage(va) {
				return false
			}
		}
	}
	return true
}

func userBytes(addr, n uint64) []byte {
	return unsafe.Slice((*byte)(x86.Ptr(uintptr(addr))), n)
}

func userU64(addr uint64) *uint64 { return (*uint64)(x86.Ptr(uintptr(addr))) }
func userU32(addr uint64) *uint32 { return (*uint32)(x86.Ptr(uintptr(addr))) }
