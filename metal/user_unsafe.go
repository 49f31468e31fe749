package metal

import (
	"unsafe"

	"gohv/x86"
)

// Views of thread memory at addresses userAccess has checked: the one place
// system calls turn a user address into a Go slice or pointer.

func userBytes(addr, n uint64) []byte {
	return unsafe.Slice((*byte)(x86.Ptr(uintptr(addr))), n)
}

func userU64(addr uint64) *uint64 { return (*uint64)(x86.Ptr(uintptr(addr))) }

func userU32(addr uint64) *uint32 { return (*uint32)(x86.Ptr(uintptr(addr))) }
