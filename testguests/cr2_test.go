package testguests

import (
	"bytes"
	"testing"

	"golang.org/x/arch/x86/x86asm"
)

// TestCR2BlobsDecode: both CR2 blobs are found, end with the marker and
// decode as 64-bit code up to it; the handler reads CR2 after its first
// exit (the OUT), not before.
func TestCR2BlobsDecode(t *testing.T) {
	var addrs [2]uintptr
	cr2BlobAddrs(&addrs)
	var insns [2][]x86asm.Inst
	for i, a := range addrs {
		var buf [apicBlobLimit]byte
		n := apicText(&buf, a)
		if n == 0 || !bytes.HasSuffix(buf[:n], endMarker) {
			t.Fatalf("blob %d: no end marker", i)
		}
		body := buf[:n-len(endMarker)]
		for pc := 0; pc < len(body); {
			in, err := x86asm.Decode(body[pc:], 64)
			if err != nil {
				t.Fatalf("blob %d: offset %#x: %v", i, pc, err)
			}
			insns[i] = append(insns[i], in)
			pc += in.Len
		}
	}
	out, cr2 := -1, -1
	for j, in := range insns[1] {
		switch {
		case in.Op == x86asm.OUT && out < 0:
			out = j
		case in.Op == x86asm.MOV && in.Args[1] == x86asm.CR2:
			cr2 = j
		}
	}
	if out < 0 || cr2 < out {
		t.Errorf("handler: first OUT at %d, MOV from CR2 at %d: want the read after an exit", out, cr2)
	}
}
