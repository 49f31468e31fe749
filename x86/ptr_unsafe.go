package x86

import "unsafe"

// Ptr turns a machine address that the Go heap does not manage (the
// kernel's identity and physical maps, the mmap window, the image's code,
// firmware tables) into a pointer. It reinterprets the integer's bits
// instead of converting uintptr to unsafe.Pointer, so go vet's unsafeptr
// check stays on for everything else: every such address crosses here.
//
//go:nosplit
func Ptr(addr uintptr) unsafe.Pointer { return *(*unsafe.Pointer)(unsafe.Pointer(&addr)) }
