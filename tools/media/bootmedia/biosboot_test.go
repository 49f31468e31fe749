package bootmedia

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fakeBootImg is shaped like GRUB's boot.img where it matters: a jump at 0,
// the drive-check jump at 0x66, the 0x55AA signature.
func fakeBootImg() []byte {
	b := make([]byte, SectorSize)
	b[0], b[1] = 0xeb, 0x63
	binary.LittleEndian.PutUint64(b[bootImgKernelSector:], 1)
	b[bootImgBootDrive] = 0xff
	b[bootImgDriveCheck], b[bootImgDriveCheck+1] = 0xeb, 0x05
	for i := 0x68; i < mbrNTMagic; i++ {
		b[i] = 0xcc // boot code
	}
	b[510], b[511] = 0x55, 0xaa
	return b
}

// fakeCoreImg is shaped like grub-mkimage -O i386-pc output of n bytes: the
// first block-list entry counts the sectors after the first and loads them
// at 0x820; grub-mkimage leaves its start at 2.
func fakeCoreImg(n int) []byte {
	c := make([]byte, n)
	for i := range c {
		c[i] = byte(i*7 + 1)
	}
	for i := blocklistFirst - 3*blocklistEntry; i < SectorSize; i++ {
		c[i] = 0
	}
	first := c[blocklistFirst:]
	binary.LittleEndian.PutUint64(first, 2)
	binary.LittleEndian.PutUint16(first[8:], uint16((n+SectorSize-1)/SectorSize-1))
	binary.LittleEndian.PutUint16(first[10:], 0x820)
	return c
}

func TestPatchBootImg(t *testing.T) {
	boot := fakeBootImg()
	if real, err := os.ReadFile(filepath.Join(DefaultGrubLib, "i386-pc", "boot.img")); err == nil {
		boot = real // GRUB's own, where grub-pc-bin is installed
	}
	tail := protectiveMBRTail(131072)
	mbr, err := PatchBootImg(boot, 2048, tail)
	if err != nil {
		t.Fatal(err)
	}
	le := binary.LittleEndian
	if got := le.Uint64(mbr[0x5c:]); got != 2048 {
		t.Errorf("kernel sector %d", got)
	}
	if mbr[0x64] != 0xff || mbr[0x66] != 0x90 || mbr[0x67] != 0x90 {
		t.Errorf("boot drive %#x, drive check % x", mbr[0x64], mbr[0x66:0x68])
	}
	for i := 0; i < mbrNTMagic; i++ {
		if i >= 0x5c && i < 0x68 {
			continue
		}
		if mbr[i] != boot[i] {
			t.Fatalf("boot code changed at %#x", i)
		}
	}
	if string(mbr[mbrNTMagic:]) != string(tail) {
		t.Error("partition table not in place")
	}
	if boot[0x66] != 0xeb {
		t.Error("PatchBootImg modified its input")
	}

	for _, tc := range []struct {
		name string
		boot []byte
		tail []byte
		want string
	}{
		{"short", boot[:511], tail, "bytes"},
		{"no signature", append(append([]byte(nil), boot[:510]...), 0, 0), tail, "signature"},
		{"not grub", func() []byte { b := append([]byte(nil), boot...); b[0x66] = 0x90; return b }(), tail, "drive-check"},
		{"tail", boot, tail[:10], "partition table"},
	} {
		if _, err := PatchBootImg(tc.boot, 2048, tc.tail); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: PatchBootImg = %v, want an error about %q", tc.name, err, tc.want)
		}
	}
}

func TestPatchCoreImg(t *testing.T) {
	in := fakeCoreImg(161597) // the size of the disk's real core.img
	core, err := PatchCoreImg(in, 2048)
	if err != nil {
		t.Fatal(err)
	}
	if len(core) != 316*SectorSize {
		t.Errorf("padded to %d bytes, want %d", len(core), 316*SectorSize)
	}
	le := binary.LittleEndian
	first := core[0x1f4:]
	if le.Uint64(first) != 2049 || le.Uint16(first[8:]) != 315 || le.Uint16(first[10:]) != 0x820 {
		t.Errorf("block list % x", first[:12])
	}
	if le.Uint16(core[0x1e8+8:]) != 0 {
		t.Error("no terminator below the first entry")
	}
	for i := SectorSize; i < len(in); i++ {
		if core[i] != in[i] {
			t.Fatalf("core.img changed at %#x", i)
		}
	}
	for i := len(in); i < len(core); i++ {
		if core[i] != 0 {
			t.Fatalf("padding not zero at %#x", i)
		}
	}

	wrongCount := fakeCoreImg(4096)
	binary.LittleEndian.PutUint16(wrongCount[0x1f4+8:], 3)
	wrongSeg := fakeCoreImg(4096)
	binary.LittleEndian.PutUint16(wrongSeg[0x1f4+10:], 0x800)
	for _, tc := range []struct {
		name string
		core []byte
		want string
	}{
		{"tiny", make([]byte, 600), "too small"},
		{"huge", fakeCoreImg(0x70001), "0x78000"},
		{"count", wrongCount, "sectors"},
		{"segment", wrongSeg, "segment"},
	} {
		if _, err := PatchCoreImg(tc.core, 2048); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: PatchCoreImg = %v, want an error about %q", tc.name, err, tc.want)
		}
	}
}

// testDiskImage assembles a disk the way Disk does, from fake GRUB images and
// a fake FAT32 boot sector.
func testDiskImage(t *testing.T) []byte {
	t.Helper()
	tbl, err := DiskLayout(40, testOptions())
	if err != nil {
		t.Fatal(err)
	}
	disk := encodeDisk(t, tbl)
	bios, esp := tbl.Partitions[0], tbl.Partitions[1]
	mbr, err := PatchBootImg(fakeBootImg(), bios.FirstLBA, disk[mbrNTMagic:SectorSize])
	if err != nil {
		t.Fatal(err)
	}
	copy(disk, mbr)
	core, err := PatchCoreImg(fakeCoreImg(100000), bios.FirstLBA)
	if err != nil {
		t.Fatal(err)
	}
	copy(disk[bios.FirstLBA*SectorSize:], core)
	bs := disk[esp.FirstLBA*SectorSize:]
	binary.LittleEndian.PutUint16(bs[0x0b:], SectorSize)
	binary.LittleEndian.PutUint32(bs[0x1c:], uint32(esp.FirstLBA))
	binary.LittleEndian.PutUint32(bs[0x20:], uint32(esp.Sectors()))
	copy(bs[0x52:], "FAT32   ")
	bs[510], bs[511] = 0x55, 0xaa
	return disk
}

func TestCheckDiskImage(t *testing.T) {
	good := testDiskImage(t)
	if err := CheckDiskImage(good); err != nil {
		t.Fatal(err)
	}
	espLBA := uint64(4096)
	for _, tc := range []struct {
		name   string
		damage func(d []byte)
		want   string
	}{
		{"mbr points elsewhere", func(d []byte) { binary.LittleEndian.PutUint64(d[0x5c:], 34) }, "loads core.img from LBA 34"},
		{"drive check kept", func(d []byte) { d[0x66] = 0xeb }, "drive check"},
		{"block list start", func(d []byte) { binary.LittleEndian.PutUint64(d[2048*SectorSize+0x1f4:], 2) }, "block list"},
		{"no terminator", func(d []byte) { d[2048*SectorSize+0x1e8+8] = 1 }, "terminator"},
		{"no FAT32", func(d []byte) { d[espLBA*SectorSize+0x52] = 'X' }, "FAT32"},
		{"hidden sectors", func(d []byte) { binary.LittleEndian.PutUint32(d[espLBA*SectorSize+0x1c:], 0) }, "starts at LBA 0"},
		{"fs too big", func(d []byte) { binary.LittleEndian.PutUint32(d[espLBA*SectorSize+0x20:], 1<<30) }, "partition of"},
		{"gpt", func(d []byte) { d[SectorSize+40]++ }, "CRC32"},
	} {
		d := append([]byte(nil), good...)
		tc.damage(d)
		if err := CheckDiskImage(d); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: CheckDiskImage = %v, want an error about %q", tc.name, err, tc.want)
		}
	}
}
