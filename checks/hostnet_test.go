package checks

import (
	"strings"
	"testing"
)

// TestHostnetLoopbackOnHost runs the in-image check on the host's Go
// runtime, so a failure in the image is metal's, not the check's.
func TestHostnetLoopbackOnHost(t *testing.T) {
	detail, err := checkHostnetLoopback(&Env{})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(detail, "sha256 match") {
		t.Errorf("detail %q", detail)
	}
	t.Log(detail)
}
