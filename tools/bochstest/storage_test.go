package bochstest

import (
	"testing"
	"time"
)

// TestLinuxStorageVTx proves the storage path on Intel VT-x with Linux's
// own drivers: linuxtest.Storage, the test tools/imagetest's
// TestLinuxStorage runs on AMD-V. Debian's unmodified hv_vmbus, hv_storvsc
// and sd_mod reach two disks through gohv's VMBus server and storage VSP;
// the guest reads both whole, writes a block to the writable one, and the
// read-only one shows Write Protect and refuses a write (Storage.Check
// says what must hold).
//
// It takes about 2 minutes 15 s of wall time under Bochs on a 2-core
// machine.
func TestLinuxStorageVTx(t *testing.T) {
	img, g := linuxGuest(t)
	t.Parallel()
	s := g.Storage(t, t.TempDir())
	r := bootLinux(t, img, "storage.iso", 8*time.Minute, s.Partitions, s.Files...)
	if !r.Passed() {
		t.Errorf("want verdict PASS and a power-off: %s", r.Describe())
	}
	b, e := s.Check(t, r.Log)
	t.Logf("linux0: \"Run /init\" at %.3f s guest time; partition ran %s; exits %s", b.RunInit.Seconds(), e.Ran, e.Exits)
}
