package bootmedia

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"hash/crc32"
	"strings"
	"testing"
)

func TestGUID(t *testing.T) {
	// The ESP type GUID as it appears on disk (e.g. in xorriso's GPT report
	// of grub-mkrescue's ISO): first three fields byte-swapped.
	if got := hex.EncodeToString(TypeESP[:]); got != "28732ac11ff8d211ba4b00a0c93ec93b" {
		t.Errorf("ESP type on disk %s", got)
	}
	if got := hex.EncodeToString(TypeBIOSBoot[:]); got != "4861682149646f6e744e656564454649" {
		// On disk the BIOS boot GUID spells "Hah!IdontNeedEFI".
		t.Errorf("BIOS boot type on disk %s", got)
	}
	if string(TypeBIOSBoot[:]) != "Hah!IdontNeedEFI" {
		t.Errorf("BIOS boot type bytes %q", TypeBIOSBoot[:])
	}
	for _, s := range []string{"c12a7328-f81f-11d2-ba4b-00a0c93ec93b", "21686148-6449-6e6f-744e-656564454649", "00000000-0000-0000-0000-000000000001"} {
		g, err := ParseGUID(s)
		if err != nil || g.String() != s {
			t.Errorf("ParseGUID(%s) = %s, %v", s, g, err)
		}
	}
	for _, s := range []string{"", "c12a7328f81f11d2ba4b00a0c93ec93b", "c12a7328-f81f-11d2-ba4b-00a0c93ec93", "g12a7328-f81f-11d2-ba4b-00a0c93ec93b"} {
		if _, err := ParseGUID(s); err == nil {
			t.Errorf("ParseGUID(%q) accepted", s)
		}
	}
	a, err := RandomGUID()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := RandomGUID()
	if a == b || a.IsZero() {
		t.Errorf("random GUIDs %s %s", a, b)
	}
	if s := a.String(); s[14] != '4' || !strings.ContainsRune("89ab", rune(s[19])) {
		t.Errorf("random GUID %s is not version 4, RFC 4122 variant", s)
	}
}

func testOptions() DiskOptions {
	return DiskOptions{
		DiskGUID: MustGUID("11111111-2222-3333-4444-555555555555"),
		BIOSGUID: MustGUID("aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"),
		ESPGUID:  MustGUID("01234567-89ab-cdef-0123-456789abcdef"),
	}
}

// encodeDisk lays a table out on an in-memory disk.
func encodeDisk(t *testing.T, tbl *GPT) []byte {
	t.Helper()
	tail, blocks, err := tbl.Encode()
	if err != nil {
		t.Fatal(err)
	}
	disk := make([]byte, tbl.Sectors*SectorSize)
	copy(disk[mbrNTMagic:SectorSize], tail)
	for _, b := range blocks {
		copy(disk[b.LBA*SectorSize:], b.Data)
	}
	return disk
}

func TestDiskLayout(t *testing.T) {
	tbl, err := DiskLayout(64, testOptions())
	if err != nil {
		t.Fatal(err)
	}
	if tbl.Sectors != 131072 || tbl.FirstUsableLBA() != 34 || tbl.LastUsableLBA() != 131038 {
		t.Errorf("disk %d sectors, usable %d..%d", tbl.Sectors, tbl.FirstUsableLBA(), tbl.LastUsableLBA())
	}
	bios, esp := tbl.Partitions[0], tbl.Partitions[1]
	if bios.Type != TypeBIOSBoot || bios.FirstLBA != 2048 || bios.LastLBA != 4095 {
		t.Errorf("BIOS boot partition %+v", bios)
	}
	// The ESP runs from 2 MiB to the last whole MiB before the backup GPT.
	if esp.Type != TypeESP || esp.FirstLBA != 4096 || esp.LastLBA != 129023 {
		t.Errorf("ESP %+v", esp)
	}
	if esp.FirstLBA%2048 != 0 || (esp.LastLBA+1)%2048 != 0 {
		t.Errorf("ESP not 1 MiB aligned: %d..%d", esp.FirstLBA, esp.LastLBA)
	}
	for _, bad := range []int{0, 39, 2049} {
		if _, err := DiskLayout(bad, testOptions()); err == nil {
			t.Errorf("DiskLayout(%d MiB) accepted", bad)
		}
	}
	if _, err := DiskLayout(64, DiskOptions{}); err == nil {
		t.Error("DiskLayout without partition GUIDs accepted")
	}
}

func TestGPTRoundTrip(t *testing.T) {
	tbl, err := DiskLayout(40, testOptions())
	if err != nil {
		t.Fatal(err)
	}
	tbl.Partitions[1].Attributes = 1 << 60
	tbl.Partitions[1].Name = "Système EFI ✓" // UTF-16, not ASCII
	disk := encodeDisk(t, tbl)
	got, err := ReadGPT(disk)
	if err != nil {
		t.Fatal(err)
	}
	if got.DiskGUID != tbl.DiskGUID || got.Sectors != tbl.Sectors || len(got.Partitions) != 2 {
		t.Fatalf("read back %+v, wrote %+v", got, tbl)
	}
	for i := range got.Partitions {
		if got.Partitions[i] != tbl.Partitions[i] {
			t.Errorf("partition %d: read %+v, wrote %+v", i+1, got.Partitions[i], tbl.Partitions[i])
		}
	}

	// Field by field, from the specification rather than from ReadGPT.
	le := binary.LittleEndian
	n := tbl.Sectors
	h := disk[SectorSize : 2*SectorSize]
	if string(h[:8]) != "EFI PART" || le.Uint32(h[8:]) != 0x10000 || le.Uint32(h[12:]) != 92 ||
		le.Uint64(h[24:]) != 1 || le.Uint64(h[32:]) != n-1 || le.Uint64(h[72:]) != 2 ||
		le.Uint32(h[80:]) != 128 || le.Uint32(h[84:]) != 128 {
		t.Errorf("primary header fields wrong: % x", h[:92])
	}
	zeroed := append([]byte(nil), h[:92]...)
	copy(zeroed[16:20], []byte{0, 0, 0, 0})
	if crc32.ChecksumIEEE(zeroed) != le.Uint32(h[16:]) {
		t.Error("primary header CRC32 wrong")
	}
	if crc32.ChecksumIEEE(disk[2*SectorSize:34*SectorSize]) != le.Uint32(h[88:]) {
		t.Error("primary entry array CRC32 wrong")
	}
	bh := disk[(n-1)*SectorSize:]
	if le.Uint64(bh[24:]) != n-1 || le.Uint64(bh[32:]) != 1 || le.Uint64(bh[72:]) != n-33 {
		t.Errorf("backup header locations wrong")
	}
	if !bytes.Equal(disk[2*SectorSize:34*SectorSize], disk[(n-33)*SectorSize:(n-1)*SectorSize]) {
		t.Error("backup entry array differs")
	}
	pe := disk[0x1be : 0x1be+16]
	if pe[0] != 0 || pe[4] != 0xee || le.Uint32(pe[8:]) != 1 || uint64(le.Uint32(pe[12:])) != n-1 ||
		disk[510] != 0x55 || disk[511] != 0xaa {
		t.Errorf("protective MBR entry % x", pe)
	}
	e := disk[2*SectorSize+128:]
	if !bytes.Equal(e[:16], TypeESP[:]) || le.Uint64(e[32:]) != 4096 || le.Uint64(e[48:]) != 1<<60 {
		t.Errorf("second entry % x", e[:64])
	}
}

func TestReadGPTRejectsDamage(t *testing.T) {
	tbl, err := DiskLayout(40, testOptions())
	if err != nil {
		t.Fatal(err)
	}
	good := encodeDisk(t, tbl)
	n := tbl.Sectors
	for _, tc := range []struct {
		name   string
		damage func(d []byte)
		want   string
	}{
		{"mbr signature", func(d []byte) { d[511] = 0 }, "0x55AA"},
		{"mbr type", func(d []byte) { d[0x1be+4] = 0x83 }, "protective"},
		{"mbr size", func(d []byte) { d[0x1be+12]++ }, "covers"},
		{"second mbr partition", func(d []byte) { d[0x1ce+4] = 0x0c }, "not empty"},
		{"primary signature", func(d []byte) { d[SectorSize] = 'X' }, "signature"},
		{"primary header crc", func(d []byte) { d[SectorSize+40]++ }, "CRC32"},
		{"primary entries crc", func(d []byte) { d[2*SectorSize+100]++ }, "CRC32"},
		{"backup header crc", func(d []byte) { d[(n-1)*SectorSize+40]++ }, "CRC32"},
		{"backup entries crc", func(d []byte) { d[(n-33)*SectorSize+5]++ }, "CRC32"},
		{"header reserved bytes", func(d []byte) { d[SectorSize+200] = 1 }, "reserved"},
		{"truncated image", nil, "too small"},
	} {
		d := append([]byte(nil), good...)
		if tc.damage != nil {
			tc.damage(d)
		} else {
			d = d[:40*SectorSize]
		}
		_, err := ReadGPT(d)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: ReadGPT = %v, want an error about %q", tc.name, err, tc.want)
		}
	}
}

func TestGPTValidate(t *testing.T) {
	o := testOptions()
	base := func() *GPT {
		tbl, err := DiskLayout(40, o)
		if err != nil {
			t.Fatal(err)
		}
		return tbl
	}
	for _, tc := range []struct {
		name string
		edit func(*GPT)
		want string
	}{
		{"overlap", func(g *GPT) { g.Partitions[1].FirstLBA = 4095 }, "overlap"},
		{"before first usable", func(g *GPT) { g.Partitions[0].FirstLBA = 33 }, "outside"},
		{"after last usable", func(g *GPT) { g.Partitions[1].LastLBA = g.Sectors - 33 }, "outside"},
		{"reversed", func(g *GPT) { g.Partitions[0].LastLBA = 2000 }, "outside"},
		{"no type", func(g *GPT) { g.Partitions[0].Type = GUID{} }, "no type"},
		{"same guid", func(g *GPT) { g.Partitions[1].ID = g.Partitions[0].ID }, "same GUID"},
		{"long name", func(g *GPT) { g.Partitions[0].Name = strings.Repeat("x", 37) }, "longer"},
		{"tiny disk", func(g *GPT) { g.Sectors = 60; g.Partitions = nil }, "too small"},
	} {
		g := base()
		tc.edit(g)
		err := g.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: Validate = %v, want an error about %q", tc.name, err, tc.want)
		}
		if _, _, err := g.Encode(); err == nil {
			t.Errorf("%s: Encode accepted an invalid table", tc.name)
		}
	}
}

func TestProtectiveMBRLargeDisk(t *testing.T) {
	// Past 2 TiB the 32-bit size saturates at 0xFFFFFFFF.
	tail := protectiveMBRTail(1 << 33)
	e := tail[mbrPartStart-mbrNTMagic:]
	if got := binary.LittleEndian.Uint32(e[12:]); got != 0xffffffff {
		t.Errorf("size %#x, want 0xffffffff", got)
	}
	if len(tail) != 72 || tail[70] != 0x55 || tail[71] != 0xaa {
		t.Errorf("tail length %d / signature % x", len(tail), tail[70:])
	}
}
