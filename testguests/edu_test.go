package testguests

import (
	"bytes"
	"testing"
)

// TestEduGuestCode: the edu guest's code ends in its marker within a page
// and uses the parameter page above DataBase.
func TestEduGuestCode(t *testing.T) {
	c, err := textAt(eduGuestAddr())
	if err != nil {
		t.Fatal(err)
	}
	if len(c) > 4096 || !bytes.HasSuffix(c, endMarker) {
		t.Fatalf("%d bytes", len(c))
	}
	if EduParams < DataBase+0x3000 || EduParams+8*eduPWords > StackTop && EduParams < CodeBase {
		t.Fatalf("EduParams %#x overlaps the guest's buffers or the environment", EduParams)
	}
}
