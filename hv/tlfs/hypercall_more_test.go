package tlfs

import (
	"encoding/binary"
	"errors"
	"testing"
)

// TestFlushNumbersMatchTheTLFS pins the flush flags, the HV_VP_SET formats
// and the input sizes to the TLFS's values, written out again here.
func TestFlushNumbersMatchTheTLFS(t *testing.T) {
	for _, c := range []struct {
		name      string
		got, want uint64
	}{
		{"HV_FLUSH_ALL_PROCESSORS", FlushAllProcessors, 0x1},
		{"HV_FLUSH_ALL_VIRTUAL_ADDRESS_SPACES", FlushAllVirtualAddressSpaces, 0x2},
		{"HV_FLUSH_NON_GLOBAL_MAPPINGS_ONLY", FlushNonGlobalMappingsOnly, 0x4},
		{"HV_FLUSH_USE_EXTENDED_RANGE_FORMAT", FlushUseExtendedRangeFormat, 0x8},
		{"HV_GENERIC_SET_SPARSE_4K", GenericSetSparse4K, 0},
		{"HV_GENERIC_SET_ALL", GenericSetAll, 1},
		{"VPs per bank", VPsPerSparseBank, 64},
		{"HV_MAX_SPARSE_VCPU_BANKS", MaxSparseBanks, 64},
		{"HV_VP_SET fixed part", VPSetFixedSize, 16},
		{"flush input (AddressSpace, Flags, ProcessorMask)", FlushInputSize, 24},
		{"flush Ex fixed header (AddressSpace, Flags, Format, ValidBanksMask)", FlushExInputFixedSize, 32},
		{"GVA range element", GVARangeSize, 8},
		{"HvCallSignalEvent input", SignalEventInputSize, 8},
		{"HvCallNotifyLongSpinWait input", NotifyLongSpinWaitInputSize, 8},
		{"HvCallFlushVirtualAddressList", HvCallFlushVirtualAddressList, 0x3},
		{"HvCallFlushVirtualAddressSpaceEx", HvCallFlushVirtualAddressSpaceEx, 0x13},
		{"HvCallFlushVirtualAddressListEx", HvCallFlushVirtualAddressListEx, 0x14},
	} {
		if c.got != c.want {
			t.Errorf("%s = %#x, the TLFS says %#x", c.name, c.got, c.want)
		}
	}
}

// TestGVARange: the low 12 bits count the pages beyond the first, so one
// element covers 1 to 4096 pages (TLFS "HvCallFlushVirtualAddressList").
func TestGVARange(t *testing.T) {
	for _, c := range []struct {
		r     GVARange
		base  uint64
		pages uint64
	}{
		{0x7fff_1234_5000, 0x7fff_1234_5000, 1},
		{0x7fff_1234_5001, 0x7fff_1234_5000, 2},
		{0xffff_8000_0000_0fff, 0xffff_8000_0000_0000, 4096},
	} {
		if c.r.Base() != c.base || c.r.Pages() != c.pages {
			t.Errorf("%#x: base %#x pages %d, want %#x %d", uint64(c.r), c.r.Base(), c.r.Pages(), c.base, c.pages)
		}
		if r, ok := MakeGVARange(c.base|0x123, c.pages); !ok || r != c.r {
			t.Errorf("MakeGVARange(%#x, %d) = %#x, %v", c.base, c.pages, uint64(r), ok)
		}
	}
	for _, pages := range []uint64{0, 4097} {
		if _, ok := MakeGVARange(0x1000, pages); ok {
			t.Errorf("MakeGVARange accepted %d pages", pages)
		}
	}
}

// TestVPSetTheTLFSExample is the TLFS's own HV_VP_SET example: VPs
// {0, 5, 130} are banks {0, 2}, ValidBanksMask 0x5, BankContents
// {0x21, 0x04}.
func TestVPSetTheTLFSExample(t *testing.T) {
	b := words(GenericSetSparse4K, 0x5, 0x21, 0x04, 0xdead)
	s, n, err := ParseVPSet(b)
	if err != nil || n != 32 {
		t.Fatalf("ParseVPSet: %d bytes, %v", n, err)
	}
	for vp := uint32(0); vp < 5000; vp++ {
		want := vp == 0 || vp == 5 || vp == 130
		if s.Contains(vp) != want {
			t.Errorf("Contains(%d) = %v", vp, !want)
		}
	}
	all := VPSet{Format: GenericSetAll}
	if !all.Contains(0) || !all.Contains(1<<20) {
		t.Error("the all-VPs set lacks a VP")
	}
	// A set built by hand with fewer masks than its valid mask names
	// (never one ParseVPSet returns) contains none of the missing banks.
	short := VPSet{Format: GenericSetSparse4K, ValidBanksMask: 0x3, BankContents: words(^uint64(0))}
	if !short.Contains(63) || short.Contains(64) {
		t.Error("short bank contents")
	}
	if (VPSet{Format: 7, ValidBanksMask: 1, BankContents: words(1)}).Contains(0) {
		t.Error("a set of an unknown format contains a VP")
	}
}

// TestParseVPSetRefuses: an unknown format, and bank masks missing from
// the input.
func TestParseVPSetRefuses(t *testing.T) {
	for _, c := range []struct {
		name string
		b    []byte
		err  error
	}{
		{"short fixed part", words(0)[:8], ErrShortInput},
		{"format 2", words(2, 0), ErrVPSetFormat},
		{"format with high bits", words(1<<32|GenericSetAll, 0), ErrVPSetFormat},
		{"two banks named, one present", words(GenericSetSparse4K, 0x3, 1), ErrShortInput},
		{"all 64 banks named, none present", words(GenericSetSparse4K, ^uint64(0)), ErrShortInput},
	} {
		if _, _, err := ParseVPSet(c.b); !errors.Is(err, c.err) {
			t.Errorf("%s: %v, want %v", c.name, err, c.err)
		}
	}
	if s, n, err := ParseVPSet(words(GenericSetAll, 0)); err != nil || n != 16 || !s.Contains(9999) {
		t.Errorf("the all set: %d, %v", n, err)
	}
}

// TestParseFlushInputs decodes a plain and an Ex header as Linux lays them
// out (struct hv_tlb_flush and hv_tlb_flush_ex).
func TestParseFlushInputs(t *testing.T) {
	f, err := ParseFlushVirtualAddressInput(words(0x1234_5000, FlushNonGlobalMappingsOnly, 0x51))
	if err != nil || f.AddressSpace != 0x1234_5000 || f.Flags != FlushNonGlobalMappingsOnly {
		t.Fatalf("plain: %+v, %v", f, err)
	}
	for vp := uint32(0); vp < 128; vp++ {
		if want := vp == 0 || vp == 4 || vp == 6; f.Includes(vp) != want {
			t.Errorf("mask 0x51 includes %d: %v", vp, !want)
		}
	}
	f.Flags |= FlushAllProcessors
	if !f.Includes(77) {
		t.Error("HV_FLUSH_ALL_PROCESSORS does not include every VP")
	}
	if _, err := ParseFlushVirtualAddressInput(make([]byte, 23)); !errors.Is(err, ErrShortInput) {
		t.Errorf("short plain input: %v", err)
	}

	f, n, err := ParseFlushVirtualAddressExInput(words(0x9000, 0, GenericSetSparse4K, 0x6, 0x1, 0x8000_0000_0000_0000, 0xffff))
	if err != nil || n != 48 || f.AddressSpace != 0x9000 {
		t.Fatalf("Ex: %+v, %d, %v", f, n, err)
	}
	if !f.Includes(64) || !f.Includes(191) || f.Includes(0) || f.Includes(65) || f.Includes(192) {
		t.Error("Ex banks 1 and 2")
	}
	for _, b := range [][]byte{make([]byte, 31), words(0, 0, 3, 0), words(0, 0, 0, 1)} {
		if _, _, err := ParseFlushVirtualAddressExInput(b); err == nil {
			t.Errorf("% x accepted", b)
		}
	}
}

// FuzzParseVPSet: no input panics the decoder, and what it accepts has
// exactly the masks its valid mask names.
func FuzzParseVPSet(f *testing.F) {
	f.Add(words(GenericSetSparse4K, 0x5, 0x21, 0x04))
	f.Add(words(GenericSetAll, 0))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, n, err := ParseVPSet(b)
		if err != nil {
			return
		}
		if n > len(b) || len(s.BankContents) != n-VPSetFixedSize {
			t.Fatalf("size %d of %d, %d bytes of masks", n, len(b), len(s.BankContents))
		}
		for vp := uint32(0); vp < 64*65; vp += 7 {
			s.Contains(vp)
		}
	})
}

func words(v ...uint64) []byte {
	b := make([]byte, 8*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint64(b[8*i:], x)
	}
	return b
}
