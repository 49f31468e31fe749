package testguests

import (
	"encoding/binary"
	"slices"
	"testing"

	"golang.org/x/arch/x86/x86asm"
)

// TestAPICBlobsHaveEndMarkers: every APIC blob is found, ends with the
// marker, and the handler fits below the stubs.
func TestAPICBlobsHaveEndMarkers(t *testing.T) {
	for b := apicBlobHandler; b < numAPICBlobs; b++ {
		c, err := apicCode(b)
		if err != nil {
			t.Fatal(err)
		}
		if len(c) < 20 {
			t.Errorf("blob %d: only %d bytes", b, len(c))
		}
		if b == apicBlobHandler && len(c) > APICStubBase-APICHandlerBase {
			t.Errorf("handler: %d bytes overlap the stubs at %#x", len(c), APICStubBase)
		}
	}
	if _, err := apicCode(numAPICBlobs); err == nil {
		t.Error("a blob past the table was found")
	}
}

// TestAPICLayoutMatchesAssembly: the #defines of apic_amd64.s are the
// constants the root uses to read and write the data page.
func TestAPICLayoutMatchesAssembly(t *testing.T) {
	defs := asmDefines(t, "apic_amd64.s")
	for name, want := range map[string]uint64{
		"APIC_DATA": APICData, "D_MODE": apicMode, "D_COUNT": apicCount, "D_DEPTH": apicDepth,
		"D_STEP": apicStep, "D_LAPICHZ": apicLAPICHz, "D_TSCHZ": apicTSCHz, "D_TSCMS": apicTSCms,
		"D_SCRATCH": apicScratch, "D_ACTIONS": apicActions, "D_CHAIN": apicChain,
		"D_PARAMS": apicParams, "D_RESULTS": apicResults, "D_LOG": apicLog, "LOG_CAP": APICLogCap,
		"D_TABLE": apicTable, "D_BENCH": apicBenchArea, "RAM_PAGE": APICRAMPage,
		"ACT_SNAP": uint64(ActSnapshot), "ACT_NOEOI": uint64(ActNoEOI), "ACT_CHAIN": uint64(ActChain), "ACT_HOLD": uint64(ActHold),
		"APIC_BLOB_LIMIT": apicBlobLimit,
		"LAPIC_PAGE":      0xfee0_0000, "IOAPIC_PAGE": 0xfec0_0000,
	} {
		got, ok := defs[name]
		if !ok {
			t.Errorf("apic_amd64.s does not define %s", name)
		} else if got != want {
			t.Errorf("%s is %#x in apic_amd64.s, %#x in Go", name, got, want)
		}
	}
	// The regions do not overlap, and the data page stays inside a 4 MiB
	// partition's RAM.
	if apicScratch+apicRecordSize > apicActions || apicActions+256 > apicChain || apicChain+4*256 > apicParams ||
		apicLog+APICLogCap*apicRecordSize > apicTable || APICData+apicBenchArea >= APICRAMPage {
		t.Error("data page regions overlap")
	}
}

// TestAPICStubs decodes every vector's stub: a push of the vector and a
// jump to the handler; vectors below 16 have none.
func TestAPICStubs(t *testing.T) {
	const base, handler = APICStubBase, APICHandlerBase
	b := apicStubs(base, handler)
	if len(b) != 256*apicStubSize {
		t.Fatalf("%d bytes", len(b))
	}
	for v := 0; v < 256; v++ {
		s := b[v*apicStubSize : (v+1)*apicStubSize]
		if v < apicFirstVector {
			if slices.ContainsFunc(s, func(c byte) bool { return c != 0 }) {
				t.Errorf("vector %d has a stub", v)
			}
			continue
		}
		push, err := x86asm.Decode(s, 64)
		if err != nil || push.Op != x86asm.PUSH || push.Args[0] != x86asm.Imm(v) {
			t.Fatalf("vector %d: first instruction %v (%v)", v, push, err)
		}
		jmp, err := x86asm.Decode(s[push.Len:], 64)
		if err != nil || jmp.Op != x86asm.JMP {
			t.Fatalf("vector %d: second instruction %v (%v)", v, jmp, err)
		}
		rel, ok := jmp.Args[0].(x86asm.Rel)
		if to := int64(base+v*apicStubSize+push.Len+jmp.Len) + int64(rel); !ok || to != handler {
			t.Errorf("vector %d jumps to %#x, want %#x", v, to, handler)
		}
	}
}

// apicPage builds a data page holding the given records.
func apicPage(count uint64, recs ...[4]uint64) []byte {
	page := make([]byte, apicLog+len(recs)*apicRecordSize)
	le := binary.LittleEndian
	le.PutUint64(page[apicStep:], 7)
	le.PutUint64(page[apicCount:], count)
	le.PutUint64(page[apicResults+8:], 0x1234)
	for i, r := range recs {
		for j, w := range r {
			le.PutUint64(page[apicLog+apicRecordSize*i+8*j:], w)
		}
	}
	return page
}

func TestParseAPICState(t *testing.T) {
	// Record words: TSC; vector | depth<<32; ISR 0x40-0x7f; PPR.
	page := apicPage(3,
		[4]uint64{1000, 0x51 | 1<<32, 1 << 0x11, 0x50},
		[4]uint64{1100, 0x71 | 2<<32, 1<<0x11 | 1<<0x31, 0x70},
		[4]uint64{1200, 0x151 | 1<<32, 1 << 0x11, 0x50})
	s, err := ParseAPICState(page)
	if err != nil {
		t.Fatal(err)
	}
	if s.Step != 7 || s.Count != 3 || s.Results[1] != 0x1234 || len(s.Log) != 3 {
		t.Fatalf("%+v", s)
	}
	want := []uint16{0x51, 0x71, 0x151}
	if got := s.Vectors(); !slices.Equal(got, want) {
		t.Errorf("vectors %#x, want %#x", got, want)
	}
	r := s.Log[1]
	if r.TSC != 1100 || r.Depth != 2 || r.PPR != 0x70 || !r.InService(0x51) || !r.InService(0x71) || r.InService(0x5a) || r.After {
		t.Errorf("record 1: %v", r)
	}
	if !s.Log[2].After || s.Log[2].Vector != 0x51 {
		t.Errorf("record 2: %v", s.Log[2])
	}
}

// TestParseAPICStateRefusesBadRecords: the page is the guest's; a count
// past what the bytes hold and stray bits in a record are errors.
func TestParseAPICStateRefusesBadRecords(t *testing.T) {
	if _, err := ParseAPICState(apicPage(2, [4]uint64{1, 0x40})); err == nil {
		t.Error("a count past the records passed")
	}
	if _, err := ParseAPICState(apicPage(1, [4]uint64{1, 0x240})); err == nil {
		t.Error("a vector field with stray bits passed")
	}
	if _, err := ParseAPICState(make([]byte, 16)); err == nil {
		t.Error("a short page passed")
	}
	// A count past the log's capacity is clamped to it.
	page := make([]byte, apicStateSize)
	binary.LittleEndian.PutUint64(page[apicCount:], 1<<40)
	s, err := ParseAPICState(page)
	if err != nil || len(s.Log) != APICLogCap || s.Count != 1<<40 {
		t.Errorf("huge count: %d records, %v", len(s.Log), err)
	}
}

func FuzzParseAPICState(f *testing.F) {
	f.Add(apicPage(1, [4]uint64{5, 0x40 | 1<<32, 1, 0x40}))
	f.Add(apicPage(0))
	f.Fuzz(func(t *testing.T, page []byte) {
		s, err := ParseAPICState(page)
		if err != nil {
			return
		}
		if uint64(len(s.Log)) > s.Count || len(s.Log) > APICLogCap {
			t.Fatalf("%d records for count %d", len(s.Log), s.Count)
		}
	})
}
