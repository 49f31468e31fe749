package main

import "unsafe"

// aligned returns n bytes aligned to 4 KiB, as O_DIRECT wants.
func aligned(n int) []byte {
	b := make([]byte, n+4096)
	off := int(-uintptr(unsafe.Pointer(&b[0])) & 4095)
	return b[off : off+n]
}
