package imagetest

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// buildGuestTool builds one of gohv's guest programs (tools/guestio,
// guestnet, guestsmp) as a static linux/amd64 binary in dir, for a Linux
// partition's initramfs, and returns its path.
func buildGuestTool(tb testing.TB, dir, name string) string {
	tb.Helper()
	out := filepath.Join(dir, name)
	build := exec.Command("go", "build", "-o", out, "gohv/tools/"+name)
	build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64")
	if msg, err := build.CombinedOutput(); err != nil {
		tb.Fatalf("building %s: %v\n%s", name, err, msg)
	}
	return out
}
