package metal

import (
	"errors"
	"fmt"

	"gohv/x86"
)

// Physical pages for the hypervisor: VMCBs/VMCSs, permission maps, nested
// page tables and guest RAM. They come from the same allocator as kernel
// frames and are reached through the physical map. These run on Go threads;
// the allocator is only touched with interrupts off (one CPU: that makes
// each call atomic with respect to the kernel's own page faults).

// ErrNoMemory is returned when no physical page is free.
var ErrNoMemory = errors.New("metal: out of physical memory")

// AllocPage returns the physical address of a zeroed 4 KiB page.
func AllocPage() (uint64, error) {
	f := x86.CLI()
	pa, ok := allocFrame()
	if ok {
		hvPages++
	}
	x86.RestoreFlags(f)
	if !ok {
		return 0, ErrNoMemory
	}
	return pa, nil
}

// FreePage returns a page from AllocPage. Freeing a page that is not
// allocated is a bug in the caller and is reported, not ignored.
func FreePage(pa uint64) error {
	f := x86.CLI()
	ok := pa&(pageSize-1) == 0 && pages.Free(pa)
	if ok {
		hvPages--
	}
	x86.RestoreFlags(f)
	if !ok {
		return fmt.Errorf("metal: free of page %#x that is not allocated", pa)
	}
	return nil
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
