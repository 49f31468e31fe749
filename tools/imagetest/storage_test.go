package imagetest

import (
	"fmt"
	"testing"
)

// TestLinuxStorage proves the storage path on AMD-V with Linux's own
// drivers and file system: linuxtest.Storage, the test tools/bochstest's
// TestLinuxStorageVTx runs on Intel VT-x. Debian's unmodified hv_vmbus,
// hv_storvsc, sd_mod and ext4 reach three disks through gohv's VMBus
// server and storage VSP. In the first boot the guest reads the raw disks
// whole, writes a block to the writable one, the read-only one shows
// Write Protect and refuses a write, and it reads a known file off an
// ext4 disk, writes another and reboots; gohv restarts the partition, and
// in the second boot both files read back (Storage.Check says what must
// hold).
func TestLinuxStorage(t *testing.T) {
	img, g := linuxGuest(t)
	t.Parallel()
	s := g.Storage(t, t.TempDir())
	r := linuxBoot(t, img, 512, s.Partitions, s.Files...)
	if !r.Passed() {
		t.Errorf("want verdict PASS: %s", r.Describe())
	}
	for i, b := range s.Check(t, r.Log) {
		logBoot(t, fmt.Sprintf("linux0 boot %d", i+1), b.Boot, b.End)
	}
}
