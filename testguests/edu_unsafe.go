package testguests

import (
	"bytes"
	"fmt"
	"unsafe"

	"gohv/x86"
)

// textAt copies guest code from addr up to and including its end marker.
func textAt(addr uintptr) ([]byte, error) {
	const limit = 16 << 10
	text := unsafe.Slice((*byte)(x86.Ptr(addr)), limit)
	i := bytes.Index(text, endMarker)
	if i < 0 {
		return nil, fmt.Errorf("no end marker in %d bytes", limit)
	}
	return append([]byte(nil), text[:i+len(endMarker)]...), nil
}
