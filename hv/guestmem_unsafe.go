package hv

import (
	"unsafe"

	"gohv/x86"
)

// tableView sees a host page as the 512 entries of a nested page table.
// The page is host physical memory outside the Go heap.
func tableView(pg *[x86.PageSize]byte) *[512]uint64 { return (*[512]uint64)(unsafe.Pointer(pg)) }

// qwordAt is the aligned qword at off in a page (off%8 == 0, checked by
// the caller).
func qwordAt(pg *[x86.PageSize]byte, off uint64) *uint64 { return (*uint64)(unsafe.Pointer(&pg[off])) }

// u32At is the aligned 32-bit word at off in a page (off%4 == 0, checked
// by the caller).
func u32At(pg *[x86.PageSize]byte, off uint64) *uint32 { return (*uint32)(unsafe.Pointer(&pg[off])) }
