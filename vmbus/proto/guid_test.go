package proto

import (
	"bytes"
	"testing"

	"github.com/google/uuid"
)

// The research sheet's example (linux-guest-hyperv-facts.md §0): the SCSI
// class GUID as Linux's GUID_INIT and QEMU put it on the wire.
func TestGUIDIsMixedEndianOnTheWire(t *testing.T) {
	want := []byte{0xd9, 0x63, 0x61, 0xba, 0xa1, 0x04, 0x29, 0x4d, 0xb6, 0x05, 0x72, 0xe2, 0xff, 0xb1, 0xdc, 0x7f}
	if !bytes.Equal(SCSIGUID[:], want) {
		t.Fatalf("SCSIGUID on the wire = % x, want % x", SCSIGUID[:], want)
	}
	if got := SCSIGUID.String(); got != "ba6163d9-04a1-4d29-b605-72e2ffb1dc7f" {
		t.Fatalf("String = %s", got)
	}
	u := uuid.MustParse("{ba6163d9-04a1-4d29-b605-72e2ffb1dc7f}")
	if GUIDFromUUID(u) != SCSIGUID || SCSIGUID.UUID() != u {
		t.Fatal("uuid.UUID conversion does not round-trip")
	}
	if !bytes.Equal(u[:4], []byte{0xba, 0x61, 0x63, 0xd9}) {
		t.Fatal("uuid.UUID is not in RFC 4122 order: the test proves nothing")
	}
	// netvsc-facts.md §1: the NIC class's wire bytes.
	nic := []byte{0x63, 0x51, 0x61, 0xf8, 0x3e, 0xdf, 0xc5, 0x46, 0x91, 0x3f, 0xf2, 0xd2, 0xf9, 0x65, 0xed, 0x0e}
	if !bytes.Equal(NICGUID[:], nic) {
		t.Fatalf("NICGUID on the wire = % x", NICGUID[:])
	}
}

func TestClassGUIDs(t *testing.T) {
	for _, c := range []struct {
		g    GUID
		want string
	}{
		{SCSIGUID, "ba6163d9-04a1-4d29-b605-72e2ffb1dc7f"},
		{IDEGUID, "32412632-86cb-44a2-9b5c-50d1417354f5"},
		{SynthFCGUID, "2f9bcc4a-0069-4af3-b76b-6fd0be528cda"},
		{NICGUID, "f8615163-df3e-46c5-913f-f2d2f965ed0e"},
		{ShutdownGUID, "0e0b6031-5213-4934-818b-38d90ced39db"},
		{TimeSyncGUID, "9527e630-d0ae-497b-adce-e80ab0175caf"},
		{HeartbeatGUID, "57164f39-9115-4e78-ab55-382f3bd5422d"},
		{KVPGUID, "a9a0f4e7-5a45-4d96-b827-8a841e8c03e6"},
		{VSSGUID, "35fa2e29-ea23-4236-96ae-3a6ebacba440"},
		{FileCopyGUID, "34d14be3-dee4-41c8-9ae7-6b174977c192"},
	} {
		if c.g.String() != c.want {
			t.Errorf("%s: got %s", c.want, c.g)
		}
	}
}

func TestParseGUIDRefusesGarbage(t *testing.T) {
	if _, err := ParseGUID("ba6163d9-04a1-4d29-b605"); err == nil {
		t.Fatal("a short GUID parsed")
	}
}
