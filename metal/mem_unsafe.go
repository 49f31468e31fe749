package metal

import (
	"unsafe"

	"gohv/x86"
)

// Views of machine memory as Go slices and pointers, the one place kernel
// code turns an address range into a slice: thread memory at addresses
// userAccess has checked, physical memory through the physical map, and the
// identity-mapped low memory the boot loader left its structures in.

func userBytes(addr, n uint64) []byte {
	return unsafe.Slice((*byte)(x86.Ptr(uintptr(addr))), n)
}

func userU64(addr uint64) *uint64 { return (*uint64)(x86.Ptr(uintptr(addr))) }

func userU32(addr uint64) *uint32 { return (*uint32)(x86.Ptr(uintptr(addr))) }

// physBytes is physical memory [pa, pa+n) through the physical map; the
// caller has checked that the range is inside it.
func physBytes(pa uint64, n int) []byte {
	return unsafe.Slice((*byte)(x86.Ptr(uintptr(physmapBase+pa))), n)
}

// lowMemory is the identity-mapped memory from lowWindowBase to
// identityEnd, where the boot loader's structures are (boot.go).
func lowMemory() []byte {
	return unsafe.Slice((*byte)(x86.Ptr(uintptr(lowWindowBase))), identityEnd-lowWindowBase)
}
