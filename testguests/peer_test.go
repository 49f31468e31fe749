package testguests

import (
	"bytes"
	"encoding/binary"
	"testing"

	"gohv/hv/tlfs"
)

// TestPeerCodeIsTheIssuesLoop pins the peer guest's bytes to issue 15's
// listing: the loop KVM's figures were measured with.
func TestPeerCodeIsTheIssuesLoop(t *testing.T) {
	vmmcall := [3]byte{0x0f, 0x01, 0xd9}
	for _, c := range []struct {
		kind PeerKind
		body []byte
	}{
		{PeerNOP, []byte{0x90}},
		{PeerCPUID, []byte{0x31, 0xc0, 0x0f, 0xa2}},
		{PeerHypercall, []byte{0xb8, 0xff, 0xff, 0x00, 0x00, 0x0f, 0x01, 0xd9, 0x89, 0xc3}},
		{PeerOUT, []byte{0xe6, 0x10}},
	} {
		body, err := PeerBody(c.kind, vmmcall)
		if err != nil || !bytes.Equal(body, c.body) {
			t.Fatalf("kind %d: body % x, %v; want % x", c.kind, body, err, c.body)
		}
		want := []byte{0x0f, 0x31, 0x89, 0xc6, 0x89, 0xd7}
		want = append(want, c.body...)
		want = append(want, 0x4d, 0x75, byte(256-len(c.body)-3), 0x0f, 0x31, 0xe6, 0x11, 0xf4, 0xeb, 0xfd)
		if got := peerCode(body)[PeerLoopStart:]; !bytes.Equal(got, want) {
			t.Errorf("kind %d: loop % x, want % x", c.kind, got, want)
		}
	}
	if _, err := PeerBody(PeerOUT+1, vmmcall); err == nil {
		t.Error("an unknown body kind was accepted")
	}
	if got := binary.LittleEndian.Uint32(peerPrologue[1:]); got != tlfs.MsrGuestOSID {
		t.Errorf("the prologue writes MSR %#x, want HV_X64_MSR_GUEST_OS_ID %#x", got, tlfs.MsrGuestOSID)
	}
}
