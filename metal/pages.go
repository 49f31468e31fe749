package metal

import (
	"errors"
	"fmt"
	"syscall"

	"gohv/x86"
)

// Physical pages for the hypervisor: VMCBs/VMCSs, permission maps, nested
// page tables and guest RAM. They come from the same allocator as kernel
// frames and are reached through the physical map.
//
// The allocator changes only in kernel context: a Go thread reaches it
// through metal's own system calls below, served on the kernel stack with
// interrupts off like the runtime's. Run on the calling goroutine's stack
// instead, the allocator could be entered twice: a goroutine whose stack
// grows in the middle of it (the runtime copies the stack to fresh mmap'd
// pages) takes demand-paging faults whose handler allocates frames too, and
// one frame was handed out twice: a Go stack page that the hypervisor then
// zeroed as a guest's page.

// metal's own system calls, numbered far above Linux's.
const (
	sysMetalAllocPage = 0x6d74_0001 // () -> pa, or -ENOMEM
	sysMetalFreePage  = 0x6d74_0002 // (pa) -> 0, or -EINVAL for a page not allocated
)

// ErrNoMemory is returned when no physical page is free.
var ErrNoMemory = errors.New("metal: out of physical memory")

// AllocPage returns the physical address of a zeroed 4 KiB page.
func AllocPage() (uint64, error) {
	pa, _, e := syscall.Syscall(sysMetalAllocPage, 0, 0, 0)
	if e != 0 {
		return 0, ErrNoMemory
	}
	return uint64(pa), nil
}

// FreePage returns a page from AllocPage. Freeing a page that is not
// allocated is a bug in the caller and is reported, not ignored.
func FreePage(pa uint64) error {
	if _, _, e := syscall.Syscall(sysMetalFreePage, uintptr(pa), 0, 0); e != 0 {
		return fmt.Errorf("metal: free of page %#x that is not allocated", pa)
	}
	return nil
}

// sysAllocPageImpl serves AllocPage. Kernel stack, interrupts off; must not
// allocate.
func sysAllocPageImpl() uint64 {
	pa, ok := allocFrame()
	if !ok {
		return errno(ENOMEM)
	}
	hvPages++
	return pa
}

// sysFreePageImpl serves FreePage; pa is the caller's claim, checked by the
// allocator. Kernel stack, interrupts off; must not allocate.
func sysFreePageImpl(pa uint64) uint64 {
	if pa&(pageSize-1) != 0 || !pages.Free(pa) {
		return errno(EINVAL)
	}
	hvPages--
	return 0
}

// PhysPage returns the page at physical address pa (4 KiB aligned) through
// the physical map. The caller must own the page (AllocPage).
func PhysPage(pa uint64) *[4096]byte {
	return (*[4096]byte)(x86.Ptr(uintptr(physmapBase + pa&^(pageSize-1))))
}

// HypervisorPages is the number of pages handed out by AllocPage and not
// yet freed.
func HypervisorPages() uint64 { return hvPages }

var hvPages uint64
