package acpi

import (
	"encoding/binary"
	"errors"
	"testing"
)

func TestParseRSDP(t *testing.T) {
	v2 := mkRSDP(2, 0x1000, 0x2000)
	badSum := mkRSDP(0, 0x1000, 0)
	badSum[8]++
	badExt := mkRSDP(2, 0x1000, 0x2000)
	badExt[32]++
	shortLen := mkRSDP(2, 0x1000, 0x2000)
	binary.LittleEndian.PutUint32(shortLen[20:], 20)
	fixChecksum(shortLen, 8, rsdpV1Len)
	fixChecksum(shortLen, 32, rsdpV2Len)
	badSig := mkRSDP(0, 0x1000, 0)
	badSig[0] = 'X'

	tests := []struct {
		name    string
		in      []byte
		want    RSDP
		wantErr error
	}{
		{"revision 0 has 20 bytes", mkRSDP(0, 0x7fe1aa4, 0),
			RSDP{Checksum: mkRSDP(0, 0x7fe1aa4, 0)[8], OEMID: "GOHV", RsdtAddress: 0x7fe1aa4}, nil},
		{"revision 2 has 36 bytes", v2,
			RSDP{Checksum: v2[8], OEMID: "GOHV", Revision: 2, RsdtAddress: 0x1000, Length: 36, XsdtAddress: 0x2000, ExtChecksum: v2[32]}, nil},
		{"trailing bytes are ignored", append(mkRSDP(0, 0x1000, 0), 0xff, 0xff),
			RSDP{Checksum: mkRSDP(0, 0x1000, 0)[8], OEMID: "GOHV", RsdtAddress: 0x1000}, nil},
		{"empty", nil, RSDP{}, ErrTruncated},
		{"truncated below 20 bytes", mkRSDP(0, 0x1000, 0)[:19], RSDP{}, ErrTruncated},
		{"revision 2 truncated to 20 bytes", v2[:20], RSDP{}, ErrTruncated},
		{"bad signature", badSig, RSDP{}, ErrSignature},
		{"bad checksum", badSum, RSDP{}, ErrChecksum},
		{"bad extended checksum", badExt, RSDP{}, ErrChecksum},
		{"revision 2 Length below 36", shortLen, RSDP{}, ErrBadLength},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseRSDP(tt.in)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("ParseRSDP: error %v, want %v", err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("ParseRSDP = %+v, want %+v", got, tt.want)
			}
		})
	}
}

// lowMemory is the first MiB as FindRSDP sees it, EBDA at 0x9FC00.
func lowMemory() (Regions, []byte, []byte) {
	bda := make([]byte, 0x100)
	binary.LittleEndian.PutUint16(bda[bdaEBDASegment-0x400:], 0x9fc0)
	ebda := make([]byte, 0x400)
	bios := make([]byte, biosAreaEnd-biosAreaStart)
	return Regions{{Base: 0x400, Data: bda}, {Base: 0x9fc00, Data: ebda}, {Base: biosAreaStart, Data: bios}}, ebda, bios
}

func TestFindRSDP(t *testing.T) {
	good := mkRSDP(0, 0x1111, 0)
	other := mkRSDP(0, 0x2222, 0)
	bad := mkRSDP(0, 0x3333, 0)
	bad[8]++
	tests := []struct {
		name     string
		setup    func(ebda, bios []byte)
		wantAddr uint64
		wantRSDT uint32
		wantErr  []error
	}{
		{"missing RSDP", func(ebda, bios []byte) {}, 0, 0, []error{ErrNoRSDP}},
		{"in the BIOS area", func(ebda, bios []byte) { copy(bios[0x159d0:], good) }, 0xf59d0, 0x1111, nil},
		{"EBDA is searched first", func(ebda, bios []byte) {
			copy(ebda[0x40:], good)
			copy(bios[0x100:], other)
		}, 0x9fc40, 0x1111, nil},
		{"only 16-byte boundaries count", func(ebda, bios []byte) { copy(bios[0x108:], good) }, 0, 0, []error{ErrNoRSDP}},
		{"bad checksum is passed over", func(ebda, bios []byte) {
			copy(bios[0x100:], bad)
			copy(bios[0x200:], good)
		}, 0xe0200, 0x1111, nil},
		{"only a bad checksum", func(ebda, bios []byte) { copy(bios[0x100:], bad) }, 0, 0, []error{ErrNoRSDP, ErrChecksum}},
		{"structure running past 1 MiB", func(ebda, bios []byte) {
			copy(bios[len(bios)-rsdpAlign:], good[:16])
		}, 0, 0, []error{ErrNoRSDP, ErrTruncated}},
		{"revision 0 ending at 1 MiB", func(ebda, bios []byte) { copy(bios[len(bios)-32:], good) }, biosAreaEnd - 32, 0x1111, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mem, ebda, bios := lowMemory()
			tt.setup(ebda, bios)
			r, err := FindRSDP(mem)
			for _, want := range tt.wantErr {
				if !errors.Is(err, want) {
					t.Errorf("FindRSDP: error %v, want %v", err, want)
				}
			}
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("FindRSDP: %v", err)
				}
				if r.Address != tt.wantAddr || r.RsdtAddress != tt.wantRSDT {
					t.Errorf("found RSDT %#x at %#x, want %#x at %#x", r.RsdtAddress, r.Address, tt.wantRSDT, tt.wantAddr)
				}
			}
		})
	}
}

func TestFindRSDPToleratesHolesAndNoBDA(t *testing.T) {
	// No BDA, no EBDA, and the BIOS area only partly mapped.
	bios := make([]byte, 0x1000)
	copy(bios[0x9d0:], mkRSDP(0, 0x1111, 0))
	r, err := FindRSDP(Regions{{Base: 0xf5000, Data: bios}})
	if err != nil || r.Address != 0xf59d0 {
		t.Fatalf("FindRSDP = %#x, %v; want 0xf59d0", r.Address, err)
	}
	if _, err := FindRSDP(Regions{}); !errors.Is(err, ErrNoRSDP) {
		t.Fatalf("FindRSDP(no memory) = %v, want ErrNoRSDP", err)
	}
}

func TestFindRSDPReadsRevision2ExtendedChecksum(t *testing.T) {
	mem, _, bios := lowMemory()
	r2 := mkRSDP(2, 0x1111, 0x2222)
	r2[33] = 1 // reserved byte: breaks only the extended checksum
	copy(bios[0x100:], r2)
	if _, err := FindRSDP(mem); !errors.Is(err, ErrNoRSDP) || !errors.Is(err, ErrChecksum) {
		t.Fatalf("FindRSDP = %v, want ErrNoRSDP wrapping ErrChecksum", err)
	}
	fixChecksum(bios[0x100:], 32, rsdpV2Len)
	r, err := FindRSDP(mem)
	if err != nil || r.XsdtAddress != 0x2222 || r.Revision != 2 {
		t.Fatalf("FindRSDP = %+v, %v; want revision 2 with XSDT 0x2222", r, err)
	}
}
