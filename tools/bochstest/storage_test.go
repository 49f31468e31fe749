package bochstest

import (
	"testing"
	"time"
)

// TestLinuxStorageVTx proves the storage path on Intel VT-x with Linux's
// own drivers and file system: linuxtest.Storage, the test
// tools/imagetest's TestLinuxStorage runs on AMD-V. Debian's unmodified
// hv_vmbus, hv_storvsc, sd_mod and ext4 reach three disks through gohv's
// VMBus server and storage VSP. In the first boot the guest reads the raw
// disks whole, writes a block to the writable one, the read-only one
// shows Write Protect and refuses a write, and it reads a known file off
// an ext4 disk, writes another and reboots; gohv restarts the partition,
// and in the second boot both files read back (Storage.Check says what
// must hold).
//
// It takes about 4 minutes of wall time under Bochs on a 2-core machine
// (two boots of the partition).
func TestLinuxStorageVTx(t *testing.T) {
	img, g := linuxGuest(t)
	t.Parallel()
	s := g.Storage(t, t.TempDir())
	r := bootLinux(t, img, "storage.iso", 10*time.Minute, s.Partitions, s.Files...)
	if !r.Passed() {
		t.Errorf("want verdict PASS and a power-off: %s", r.Describe())
	}
	for i, b := range s.Check(t, r.Log) {
		t.Logf("linux0 boot %d: \"Run /init\" at %.3f s guest time; partition ran %s; exits %s", i+1, b.RunInit.Seconds(), b.End.Ran, b.End.Exits)
	}
}
