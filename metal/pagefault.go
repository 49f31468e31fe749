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
		return faultSegv // present: a protection fault
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
