package svm

import "unsafe"

// Accessors of the VMCB's little-endian fields, as plain loads and stores
// (the VMCB is a page outside the Go heap; x86 is little-endian and every
// offset is its field's natural alignment). They run on every exit: an
// encoding/binary version costs two bounds checks per access, about 290
// instructions per round trip. Offsets are the constants in vmcb.go; an
// offset past the page panics (a gohv bug, never guest input).
func (v *VMCB) U8(off int) uint8         { return v[off] }
func (v *VMCB) SetU8(off int, x uint8)   { v[off] = x }
func (v *VMCB) U16(off int) uint16       { return *(*uint16)(unsafe.Pointer(&v[off])) }
func (v *VMCB) SetU16(off int, x uint16) { *(*uint16)(unsafe.Pointer(&v[off])) = x }
func (v *VMCB) U32(off int) uint32       { return *(*uint32)(unsafe.Pointer(&v[off])) }
func (v *VMCB) SetU32(off int, x uint32) { *(*uint32)(unsafe.Pointer(&v[off])) = x }
func (v *VMCB) U64(off int) uint64       { return *(*uint64)(unsafe.Pointer(&v[off])) }
func (v *VMCB) SetU64(off int, x uint64) { *(*uint64)(unsafe.Pointer(&v[off])) = x }
