package acpi

import (
	"errors"
	"os"
	"testing"
)

// QEMU q35's MCFG: one range, segment 0, buses 0-255 at 0xb0000000.
func TestParseMCFGCaptured(t *testing.T) {
	b, err := os.ReadFile("testdata/qemu-q35/MCFG.bin")
	if err != nil {
		t.Fatal(err)
	}
	m, err := ParseMCFG(b)
	if err != nil {
		t.Fatal(err)
	}
	want := ECAMRange{Base: 0xb0000000, Segment: 0, StartBus: 0, EndBus: 255}
	if len(m.Ranges) != 1 || m.Ranges[0] != want {
		t.Errorf("ranges = %+v, want [%+v]", m.Ranges, want)
	}
}

func TestParseMCFGRejectsPartialEntry(t *testing.T) {
	body := cat(make([]byte, 8), le64(0xe0000000), le16(1), []byte{0, 3}, make([]byte, 4))
	m, err := ParseMCFG(mkTable(SigMCFG, 1, body))
	if err != nil || len(m.Ranges) != 1 || m.Ranges[0] != (ECAMRange{0xe0000000, 1, 0, 3}) {
		t.Fatalf("ParseMCFG = %+v, %v", m, err)
	}
	if _, err := ParseMCFG(mkTable(SigMCFG, 1, body[:20])); !errors.Is(err, ErrBadLength) {
		t.Errorf("partial entry: %v, want ErrBadLength", err)
	}
	if _, err := ParseMCFG(mkTable(SigHPET, 1, body)); !errors.Is(err, ErrSignature) {
		t.Errorf("wrong signature: %v, want ErrSignature", err)
	}
}

func FuzzParseMCFG(f *testing.F) {
	addCaptured(f, "MCFG.bin")
	f.Fuzz(func(t *testing.T, b []byte, fix bool) {
		if fix {
			b = fixTable(b, SigMCFG)
		}
		if m, err := ParseMCFG(b); err == nil && len(m.Ranges) != (int(m.Length)-mcfgEntries)/mcfgEntryLen {
			t.Errorf("%d ranges from Length %d", len(m.Ranges), m.Length)
		}
	})
}
