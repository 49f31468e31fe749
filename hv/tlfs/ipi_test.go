package tlfs

import (
	"errors"
	"testing"
)

func TestSendIPIInputs(t *testing.T) {
	// Vector 0xfd (Linux's reschedule vector) to VPs 1 and 3.
	in := words(0xfd, 0b1010)
	s, err := ParseSendIPIInput(in)
	if err != nil || s.Vector != 0xfd || !s.Valid() || s.Processors.Contains(0) || !s.Processors.Contains(1) || !s.Processors.Contains(3) || s.Processors.Contains(64) {
		t.Fatalf("%+v %v", s, err)
	}
	// The Ex form: an HV_VP_SET of bank 1 (VPs 64-127) holding VP 65.
	ex := words(0xfc, GenericSetSparse4K, 0b10, 0b10)
	s, n, err := ParseSendIPIExInput(ex)
	if err != nil || n != 32 || !s.Processors.Contains(65) || s.Processors.Contains(1) || s.Vector != 0xfc {
		t.Fatalf("%+v %d %v", s, n, err)
	}
	// All processors.
	s, n, err = ParseSendIPIExInput(words(0x30, GenericSetAll, 0))
	if err != nil || n != 24 || !s.Processors.Contains(14) {
		t.Fatalf("%+v %d %v", s, n, err)
	}
	for name, bad := range map[string][]byte{
		"vector 15":   words(0x0f, 1),
		"vector 256":  words(0x100, 1),
		"target VTL":  words(0xfd|1<<32, 1),
		"reserved":    words(0xfd|1<<40, 1),
		"reserved hi": words(0xfd|1<<63, 1),
	} {
		if s, err := ParseSendIPIInput(bad); err != nil || s.Valid() {
			t.Errorf("%s: %+v %v, want parsed and not valid", name, s, err)
		}
	}
	if _, err := ParseSendIPIInput(make([]byte, 15)); !errors.Is(err, ErrShortInput) {
		t.Error("short plain input accepted")
	}
	if _, _, err := ParseSendIPIExInput(words(0xfd, 7, 0)); !errors.Is(err, ErrVPSetFormat) {
		t.Errorf("format 7: %v", err)
	}
	if _, _, err := ParseSendIPIExInput(words(0xfd, GenericSetSparse4K, 0b11, 1)); !errors.Is(err, ErrShortInput) {
		t.Errorf("two banks, one given: %v", err)
	}
}

func FuzzParseSendIPIExInput(f *testing.F) {
	f.Add(words(0xfc, GenericSetSparse4K, 0b10, 0b10))
	f.Add(words(0x30, GenericSetAll, 0))
	f.Fuzz(func(t *testing.T, in []byte) {
		s, n, err := ParseSendIPIExInput(in)
		if err != nil {
			return
		}
		if n > len(in) || n < SendIPIExInputFixedSize || len(s.Processors.BankContents) != n-SendIPIExInputFixedSize {
			t.Fatalf("size %d of %d bytes, %d bank bytes", n, len(in), len(s.Processors.BankContents))
		}
		for vp := uint32(0); vp < 4200; vp += 7 {
			s.Processors.Contains(vp)
		}
	})
}
