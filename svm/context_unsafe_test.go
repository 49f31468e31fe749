package svm

import (
	"testing"
	"unsafe"
)

// TestRunContextLayout pins the offsets vmrun's assembly uses.
func TestRunContextLayout(t *testing.T) {
	var c runContext
	if off := unsafe.Offsetof(c.vmcbPA); off != 128 {
		t.Errorf("vmcbPA at %d", off)
	}
	if off := unsafe.Offsetof(c.hostPA); off != 136 {
		t.Errorf("hostPA at %d", off)
	}
	if off := unsafe.Offsetof(c.guestFX); off != 144 {
		t.Errorf("guestFX at %d", off)
	}
	if off := unsafe.Offsetof(c.hostFX); off != 152 {
		t.Errorf("hostFX at %d", off)
	}
	if off := unsafe.Offsetof(c.exitReq); off != 160 {
		t.Errorf("exitReq at %d", off)
	}
	if ctxGuestFX%16 != 0 || ctxHostFX%16 != 0 || ctxHostFX-ctxGuestFX < 512 || ctxHostFX+512 > 4096 {
		t.Error("FXSAVE areas misplaced")
	}
}
