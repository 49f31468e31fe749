package imagetest

import (
	"testing"

	"gohv/tools/linuxtest"
)

// TestLinuxShutdownFromRoot proves the console's Ctrl-] r and Ctrl-] s
// with Linux's own hv_utils on AMD-V: linuxtest.Shutdown, the test
// tools/bochstest's TestLinuxShutdownFromRootVTx runs on Intel VT-x.
// gohvctl run -input boots a partition with on_reboot = "restart" whose
// guest loads hv_vmbus and hv_utils. Once gohv has negotiated the
// shutdown IC with it and the guest is ready, Ctrl-] r asks it to
// restart: the guest accepts, runs /sbin/reboot, resets, and gohv starts
// the partition again; the new boot negotiates again and gets ready.
// Ctrl-] s then asks it to shut down: the guest accepts, runs
// /sbin/poweroff, powers off through ACPI S5, and the run passes
// (Shutdown.Check says what must hold).
func TestLinuxShutdownFromRoot(t *testing.T) {
	img, g := linuxGuest(t)
	t.Parallel()
	dir := t.TempDir()
	s := g.Shutdown(t, dir)
	args := []string{"run", "-kernel", img, "-input", "-icount", "-skip-idle", "-timeout", "4m",
		"-config", linuxtest.Modules(t, dir, s.Partitions)[0].Path}
	for _, f := range s.Files {
		args = append(args, "-module", f.Name+"="+f.Path)
	}
	// The typist's pipe is an OS pipe, as in TestRunShell.
	con, in, typed := s.Type(t)
	hostQuiet.RLock()
	defer hostQuiet.RUnlock()
	code, log := runGohvctl(t, in, con, args...)
	if err := typed(); err != nil {
		t.Error(err)
	}
	if code != 0 {
		t.Errorf("gohvctl run: exit status %d, want 0 (verdict PASS)", code)
	}
	s.Check(t, []byte(log))
}
