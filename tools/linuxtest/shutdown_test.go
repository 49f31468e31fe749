package linuxtest

import (
	"io"
	"slices"
	"strings"
	"testing"
)

// The typist waits for each boot's negotiation and ready line, in either
// order, types Ctrl-] r and Ctrl-] s between them, and is done at the
// verdict; the boot IDs reach Check.
func TestShutdownTypist(t *testing.T) {
	s := &Shutdown{}
	con, in, done := s.Type(t)
	const negotiated = "gohv: ic: versions negotiated partition=linux0 service=shutdown framework=3.0 message=3.2\r\n"
	keys := func(want string) {
		b := make([]byte, len(want))
		if _, err := io.ReadFull(in, b); err != nil || string(b) != want {
			t.Fatalf("typed %q (%v), want %q", b, err, want)
		}
	}
	io.WriteString(con, "linux0: guest: ready boot-id one\r\n"+negotiated)
	keys("\x1dr")
	io.WriteString(con, "gohv: partition restarting partition=linux0\r\n"+negotiated+"linux0: guest: ready boot-id two\r\n")
	keys("\x1ds")
	io.WriteString(con, "gohv: verdict PASS\r\n")
	if err := done(); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(s.bootIDs, []string{"one", "two"}) {
		t.Errorf("boot IDs %q", s.bootIDs)
	}
}

// A boot that ends before the second boot is ready ends the typist with
// what it waited for.
func TestShutdownTypistConsoleEnds(t *testing.T) {
	s := &Shutdown{}
	con, in, done := s.Type(t)
	io.WriteString(con, "gohv: ic: versions negotiated partition=linux0 service=shutdown \nlinux0: guest: ready boot-id one\n")
	io.ReadFull(in, make([]byte, 2))
	io.WriteString(con, "gohv: partition restarting partition=linux0\n")
	if err := done(); err == nil || !strings.Contains(err.Error(), "before boot 2 negotiated the shutdown IC") {
		t.Errorf("done: %v", err)
	}
}

// The boot's DMA warnings (cmd/gohv's, with an IOMMU found or not) are the
// machine's and pass; a warning about the partition does not.
func TestHostDMAWarning(t *testing.T) {
	for _, l := range []string{
		"gohv: warning: IOMMU not enabled (1 amd-vi unit: AMD-Vi is not supported yet): DMA is not confined and device assignment is unavailable",
		"gohv: warning: no IOMMU (no usable ACPI DMAR or IVRS table): DMA is not confined and device assignment is unavailable",
	} {
		if !hostDMAWarning.MatchString(l) {
			t.Errorf("%q not taken for the host's DMA warning", l)
		}
	}
	if l := "gohv: warning: vmbus: channel closed partition=linux0 relid=3"; hostDMAWarning.MatchString(l) {
		t.Errorf("%q taken for the host's DMA warning", l)
	}
}
