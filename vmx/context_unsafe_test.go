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
		{"regs.GPR", unsafe.Offsetof(c.regs) + unsafe.Offsetof(c.regs.GPR), 0},
		{"regs.RIP", unsafe.Offsetof(c.regs) + unsafe.Offsetof(c.regs.RIP), 128},
		{"regs.CR2", unsafe.Offsetof(c.regs) + unsafe.Offsetof(c.regs.CR2), 152},
		{"launched", unsafe.Offsetof(c.launched), 360}, {"guestFX", unsafe.Offsetof(c.guestFX), 368},
		{"hostFX", unsafe.Offsetof(c.hostFX), 376}, {"fail", unsafe.Offsetof(c.fail), 384},
		{"reason", unsafe.Offsetof(c.reason), 392}, {"qual", unsafe.Offsetof(c.qual), 400},
		{"instrLen", unsafe.Offsetof(c.instrLen), 408}, {"idtVect", unsafe.Offsetof(c.idtVect), 416},
		{"intr", unsafe.Offsetof(c.intr), 424}, {"csAR", unsafe.Offsetof(c.csAR), 432},
		{"hostRSP", unsafe.Offsetof(c.hostRSP), 440}, {"mode", unsafe.Offsetof(c.mode), 448},
	} {
		if f.got != f.want {
			t.Errorf("%s at %d, insn_amd64.s uses %d", f.name, f.got, f.want)
		}
	}
	if unsafe.Sizeof(c) > ctxGuestFX || ctxGuestFX%16 != 0 || ctxHostFX%16 != 0 || ctxHostFX-ctxGuestFX < 512 || ctxGuestMSRs < ctxHostFX+512 ||
		ctxGuestMSRs+16*len(swappedMSRs) > ctxHostMSRs || ctxHostMSRs+16*len(swappedMSRs) > 4096 {
		t.Error("run-context page areas overlap")
	}
}
