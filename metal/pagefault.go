package metal

import (
	"gohv/metal/pagetable"
	"gohv/x86"
)

// Demand paging and user-pointer checks: a page of an mmap'd region is
// backed on the first touch, and every pointer a system call receives is
// checked (and backed) before the kernel uses it. Runs with interrupts off;
// must not allocate.

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
		// A not-present fault (the only kind that comes here) on a page
		// that is present now: another CPU backed it while this one
		// waited for the kernel lock. The access is retried.
		return faultFixed
	}
	if !backPage(addr) {
		return faultNoMem
	}
	return faultFixed
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

// releaseFrames unmaps and frees every backed page in [lo, hi). The frames
// of a batch are freed only after every other CPU flushed its TLB
// (shootdown), so none writes to a frame through a stale translation after
// it was handed out again.
func releaseFrames(lo, hi uint64) {
	var batch [64]uint64
	n := 0
	for va := lo; va < hi; va += pageSize {
		pa, _, _, ok := kpt.Lookup(kernelMem{}, va)
		if !ok {
			continue
		}
		kpt.Unmap(kernelMem{}, va, pageSize)
		if !hostTest {
			x86.INVLPG(uintptr(va))
		}
		batch[n] = pa &^ (pageSize - 1)
		if n++; n == len(batch) {
			freeFrames(batch[:n])
			n = 0
		}
	}
	freeFrames(batch[:n])
}

// freeFrames frees frames that no CPU may reach any more once the others
// have flushed their TLBs.
func freeFrames(pas []uint64) {
	if len(pas) == 0 && tablesPending == 0 {
		return
	}
	shootdown()
	for _, pa := range pas {
		pages.Free(pa)
		pagesFreed++
	}
	freePendingTables()
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
