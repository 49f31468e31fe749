package bochstest

import (
	"testing"
	"time"

	"gohv/tools/bochs"
)

// TestLinuxShutdownFromRootVTx proves the console's Ctrl-] r and Ctrl-] s
// with Linux's own hv_utils on Intel VT-x: linuxtest.Shutdown, the test
// tools/imagetest's TestLinuxShutdownFromRoot runs on AMD-V. The keys
// reach gohv's console through the Bochs runner's console input
// (bochs.Config.Input: COM1 over a loopback socket). Once gohv has
// negotiated the shutdown IC with the guest's hv_utils and the guest is
// ready, Ctrl-] r asks it to restart: the guest accepts, runs
// /sbin/reboot, resets, and gohv starts the partition again; the new boot
// negotiates again and gets ready. Ctrl-] s then asks it to shut down:
// the guest accepts, runs /sbin/poweroff, powers off through ACPI S5, and
// the run passes (Shutdown.Check says what must hold).
//
// It takes about 3.5 minutes of wall time under Bochs on a 2-core machine
// (two boots of the partition).
func TestLinuxShutdownFromRootVTx(t *testing.T) {
	img, g := linuxGuest(t)
	t.Parallel()
	s := g.Shutdown(t, t.TempDir())
	con, in, typed := s.Type(t)
	r := bootLinuxWith(t, img, "shutdown.iso", bochs.Config{Timeout: 12 * time.Minute, Console: con, Input: in},
		s.Partitions, s.Files...)
	if err := typed(); err != nil {
		t.Error(err)
	}
	if !r.Passed() {
		t.Errorf("want verdict PASS and a power-off: %s", r.Describe())
	}
	s.Check(t, r.Log)
}
