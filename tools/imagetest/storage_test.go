package imagetest

import "testing"

// TestLinuxStorage proves the storage path on AMD-V with Linux's own
// drivers: linuxtest.Storage, the test tools/bochstest's
// TestLinuxStorageVTx runs on Intel VT-x. Debian's unmodified hv_vmbus,
// hv_storvsc and sd_mod reach two disks through gohv's VMBus server and
// storage VSP; the guest reads both whole, writes a block to the writable
// one, and the read-only one shows Write Protect and refuses a write
// (Storage.Check says what must hold).
func TestLinuxStorage(t *testing.T) {
	img, g := linuxGuest(t)
	t.Parallel()
	s := g.Storage(t, t.TempDir())
	r := linuxBoot(t, img, 512, s.Partitions, s.Files...)
	if !r.Passed() {
		t.Errorf("want verdict PASS: %s", r.Describe())
	}
	b, e := s.Check(t, r.Log)
	logBoot(t, "linux0", b, e)
}
