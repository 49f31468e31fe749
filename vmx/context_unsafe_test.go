package vmx

import (
	"testing"
	"unsafe"
)

// TestRunContextLayout pins the offsets vmenter's assembly uses.
func TestRunContextLayout(t *testing.T) {
	var c runContext
	for _, f := range []struct {
		name string
		got  uintptr
		want uintptr
	}{
		{"launched", unsafe.Offsetof(c.launched), 128}, {"guestFX", unsafe.Offsetof(c.guestFX), 136},
		{"hostFX", unsafe.Offsetof(c.hostFX), 144}, {"fail", unsafe.Offsetof(c.fail), 152},
		{"cr2", unsafe.Offsetof(c.cr2), 160},
	} {
		if f.got != f.want {
			t.Errorf("%s at %d, insn_amd64.s uses %d", f.name, f.got, f.want)
		}
	}
	if ctxGuestFX%16 != 0 || ctxHostFX%16 != 0 || ctxHostFX-ctxGuestFX < 512 || ctxGuestMSRs < ctxHostFX+512 ||
		ctxGuestMSRs+16*len(swappedMSRs) > ctxHostMSRs || ctxHostMSRs+16*len(swappedMSRs) > 4096 {
		t.Error("run-context page areas overlap")
	}
}
