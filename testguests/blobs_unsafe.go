package testguests

import (
	"bytes"
	"fmt"
	"unsafe"

	"gohv/x86"
)

func blobAddrs(p *[numBlobs]uintptr)

// code returns the machine code of a blob, up to and including the end
// marker.
func code(b Program) ([]byte, error) {
	var addrs [numBlobs]uintptr
	blobAddrs(&addrs)
	const limit = 16 << 10
	text := unsafe.Slice((*byte)(x86.Ptr(addrs[b])), limit)
	i := bytes.Index(text, endMarker)
	if i < 0 {
		return nil, fmt.Errorf("testguests: blob %d has no end marker in %d bytes", b, limit)
	}
	return append([]byte(nil), text[:i+len(endMarker)]...), nil
}
