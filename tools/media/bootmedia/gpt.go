package bootmedia

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"strings"
	"unicode/utf16"
)

// GPT as the UEFI specification (chapter 5, "GUID Partition Table Disk
// Layout") lays it out on a disk of 512-byte logical blocks:
//
//	LBA 0          protective MBR (one partition of type 0xEE over the disk)
//	LBA 1          primary GPT header
//	LBA 2..33      primary partition entry array (128 entries of 128 bytes)
//	LBA 34..N-34   usable space
//	LBA N-33..N-2  backup partition entry array
//	LBA N-1        backup GPT header
//
// Both headers carry a CRC32 of themselves (92 bytes, CRC field zeroed) and
// of the entry array; the CRC is the ordinary IEEE 802.3 CRC32.

const (
	SectorSize = 512

	gptSignature   = "EFI PART"
	gptRevision    = 0x00010000
	gptHeaderSize  = 92
	gptEntries     = 128
	gptEntrySize   = 128
	gptArrayBytes  = gptEntries * gptEntrySize
	gptArrayBlocks = gptArrayBytes / SectorSize // 32
	gptNameUnits   = 36                         // UTF-16 code units in a partition name

	mbrTypeProtective = 0xee
)

// GUID is a GUID in its on-disk (mixed-endian) byte order: the first three
// fields little-endian, the last two as written.
type GUID [16]byte

// ParseGUID reads the text form "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx".
func ParseGUID(s string) (GUID, error) {
	var g GUID
	parts := strings.Split(s, "-")
	if len(parts) != 5 || len(parts[0]) != 8 || len(parts[1]) != 4 || len(parts[2]) != 4 || len(parts[3]) != 4 || len(parts[4]) != 12 {
		return g, fmt.Errorf("guid %q: want xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx", s)
	}
	raw, err := hex.DecodeString(strings.Join(parts, ""))
	if err != nil {
		return g, fmt.Errorf("guid %q: %w", s, err)
	}
	// Data1 (4 bytes), Data2 and Data3 (2 bytes each) are stored little-endian.
	g[0], g[1], g[2], g[3] = raw[3], raw[2], raw[1], raw[0]
	g[4], g[5] = raw[5], raw[4]
	g[6], g[7] = raw[7], raw[6]
	copy(g[8:], raw[8:])
	return g, nil
}

// MustGUID is ParseGUID for constants.
func MustGUID(s string) GUID {
	g, err := ParseGUID(s)
	if err != nil {
		panic(err)
	}
	return g
}

func (g GUID) String() string {
	return fmt.Sprintf("%02x%02x%02x%02x-%02x%02x-%02x%02x-%x-%x",
		g[3], g[2], g[1], g[0], g[5], g[4], g[7], g[6], g[8:10], g[10:16])
}

// IsZero reports whether g is all zeros (an unused partition entry's type).
func (g GUID) IsZero() bool { return g == GUID{} }

// RandomGUID returns a random (version 4, RFC 4122 variant) GUID.
func RandomGUID() (GUID, error) {
	var raw [16]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return GUID{}, err
	}
	raw[6] = raw[6]&0x0f | 0x40 // version 4, in Data3's high nibble
	raw[8] = raw[8]&0x3f | 0x80 // RFC 4122 variant
	// raw is in text (big-endian) order; store Data1..Data3 little-endian.
	return MustGUID(fmt.Sprintf("%x-%x-%x-%x-%x", raw[0:4], raw[4:6], raw[6:8], raw[8:10], raw[10:16])), nil
}

// Partition type GUIDs.
var (
	// TypeBIOSBoot is GRUB's BIOS boot partition: raw space for core.img on
	// a GPT disk, where an MBR disk would use the gap after the MBR.
	TypeBIOSBoot = MustGUID("21686148-6449-6e6f-744e-656564454649")
	// TypeESP is the EFI system partition.
	TypeESP = MustGUID("c12a7328-f81f-11d2-ba4b-00a0c93ec93b")
)

// Partition is one GPT partition; FirstLBA and LastLBA are inclusive.
type Partition struct {
	Type       GUID
	ID         GUID
	FirstLBA   uint64
	LastLBA    uint64
	Attributes uint64
	Name       string
}

// Sectors is the partition's length in blocks.
func (p Partition) Sectors() uint64 { return p.LastLBA - p.FirstLBA + 1 }

// GPT is a disk's partition table.
type GPT struct {
	DiskGUID   GUID
	Sectors    uint64 // the disk's size in blocks
	Partitions []Partition
}

// FirstUsableLBA and LastUsableLBA bound where partitions may lie.
func (t *GPT) FirstUsableLBA() uint64 { return 2 + gptArrayBlocks }
func (t *GPT) LastUsableLBA() uint64  { return t.Sectors - 2 - gptArrayBlocks }

// Validate checks that the partitions fit the disk and do not overlap.
func (t *GPT) Validate() error {
	if t.Sectors < 2*(2+gptArrayBlocks)+1 {
		return fmt.Errorf("gpt: disk of %d sectors is too small", t.Sectors)
	}
	if len(t.Partitions) > gptEntries {
		return fmt.Errorf("gpt: %d partitions, at most %d", len(t.Partitions), gptEntries)
	}
	for i, p := range t.Partitions {
		if p.Type.IsZero() || p.ID.IsZero() {
			return fmt.Errorf("gpt: partition %d has no type or no unique GUID", i+1)
		}
		if p.FirstLBA < t.FirstUsableLBA() || p.LastLBA > t.LastUsableLBA() || p.FirstLBA > p.LastLBA {
			return fmt.Errorf("gpt: partition %d (LBA %d..%d) is outside the usable LBAs %d..%d",
				i+1, p.FirstLBA, p.LastLBA, t.FirstUsableLBA(), t.LastUsableLBA())
		}
		if len(utf16.Encode([]rune(p.Name))) > gptNameUnits {
			return fmt.Errorf("gpt: partition %d name %q is longer than %d UTF-16 units", i+1, p.Name, gptNameUnits)
		}
		for j, q := range t.Partitions[:i] {
			if p.ID == q.ID {
				return fmt.Errorf("gpt: partitions %d and %d have the same GUID", j+1, i+1)
			}
			if p.FirstLBA <= q.LastLBA && q.FirstLBA <= p.LastLBA {
				return fmt.Errorf("gpt: partitions %d and %d overlap", j+1, i+1)
			}
		}
	}
	return nil
}

// Block is a run of bytes to write at a block address.
type Block struct {
	LBA  uint64
	Data []byte
}

// Encode returns the blocks that hold the table: the partition-table part of
// the protective MBR (bytes 0x1b8..0x1ff of LBA 0; the boot code before it is
// the caller's), the primary header and entries, and the backup entries and
// header.
func (t *GPT) Encode() (mbrTail []byte, blocks []Block, err error) {
	if err := t.Validate(); err != nil {
		return nil, nil, err
	}
	array := make([]byte, gptArrayBytes)
	for i, p := range t.Partitions {
		e := array[i*gptEntrySize : (i+1)*gptEntrySize]
		copy(e[0:16], p.Type[:])
		copy(e[16:32], p.ID[:])
		binary.LittleEndian.PutUint64(e[32:], p.FirstLBA)
		binary.LittleEndian.PutUint64(e[40:], p.LastLBA)
		binary.LittleEndian.PutUint64(e[48:], p.Attributes)
		for k, u := range utf16.Encode([]rune(p.Name)) {
			binary.LittleEndian.PutUint16(e[56+2*k:], u)
		}
	}
	arrayCRC := crc32.ChecksumIEEE(array)
	last := t.Sectors - 1
	header := func(my, alt, entries uint64) []byte {
		h := make([]byte, SectorSize)
		copy(h[0:8], gptSignature)
		le := binary.LittleEndian
		le.PutUint32(h[8:], gptRevision)
		le.PutUint32(h[12:], gptHeaderSize)
		le.PutUint64(h[24:], my)
		le.PutUint64(h[32:], alt)
		le.PutUint64(h[40:], t.FirstUsableLBA())
		le.PutUint64(h[48:], t.LastUsableLBA())
		copy(h[56:72], t.DiskGUID[:])
		le.PutUint64(h[72:], entries)
		le.PutUint32(h[80:], gptEntries)
		le.PutUint32(h[84:], gptEntrySize)
		le.PutUint32(h[88:], arrayCRC)
		le.PutUint32(h[16:], crc32.ChecksumIEEE(h[:gptHeaderSize]))
		return h
	}
	blocks = []Block{
		{1, header(1, last, 2)},
		{2, array},
		{last - gptArrayBlocks, array},
		{last, header(last, 1, last-gptArrayBlocks)},
	}
	return protectiveMBRTail(t.Sectors), blocks, nil
}

// protectiveMBRTail is bytes 0x1b8..0x1ff of the protective MBR: no disk
// signature, one partition entry of type 0xEE from LBA 1 to the end of the
// disk (or 2^32-1 blocks), and the 0x55 0xAA boot signature.
func protectiveMBRTail(sectors uint64) []byte {
	tail := make([]byte, SectorSize-mbrNTMagic)
	e := tail[mbrPartStart-mbrNTMagic:]
	e[0] = 0x00                         // not active: UEFI requires 0 here
	e[1], e[2], e[3] = 0x00, 0x02, 0x00 // CHS of LBA 1
	e[4] = mbrTypeProtective
	e[5], e[6], e[7] = 0xff, 0xff, 0xff // CHS past the addressable range
	binary.LittleEndian.PutUint32(e[8:], 1)
	size := sectors - 1
	if size > 0xffffffff {
		size = 0xffffffff
	}
	binary.LittleEndian.PutUint32(e[12:], uint32(size))
	tail[len(tail)-2], tail[len(tail)-1] = 0x55, 0xaa
	return tail
}

// ReadGPT parses and checks the table on a disk image held in memory: the
// protective MBR, both headers (signature, sizes, CRCs, where each says the
// other is) and both entry arrays, which must be identical.
func ReadGPT(disk []byte) (*GPT, error) {
	if len(disk)%SectorSize != 0 || len(disk) < SectorSize*(2*(2+gptArrayBlocks)+1) {
		return nil, errors.New("gpt: image is not a whole number of blocks or too small")
	}
	n := uint64(len(disk) / SectorSize)
	lba := func(i uint64) []byte { return disk[i*SectorSize : (i+1)*SectorSize] }

	mbr := lba(0)
	if mbr[510] != 0x55 || mbr[511] != 0xaa {
		return nil, errors.New("gpt: no 0x55AA signature in the protective MBR")
	}
	pe := mbr[mbrPartStart : mbrPartStart+16]
	if pe[4] != mbrTypeProtective || binary.LittleEndian.Uint32(pe[8:]) != 1 {
		return nil, fmt.Errorf("gpt: MBR partition 1 is type %#x from LBA %d, want a protective 0xEE from LBA 1",
			pe[4], binary.LittleEndian.Uint32(pe[8:]))
	}
	if want := min(n-1, 0xffffffff); uint64(binary.LittleEndian.Uint32(pe[12:])) != want {
		return nil, fmt.Errorf("gpt: protective partition covers %d blocks, want %d", binary.LittleEndian.Uint32(pe[12:]), want)
	}
	for i := 1; i < 4; i++ {
		if !bytes.Equal(mbr[mbrPartStart+16*i:mbrPartStart+16*(i+1)], make([]byte, 16)) {
			return nil, fmt.Errorf("gpt: MBR partition %d is not empty", i+1)
		}
	}

	type hdr struct {
		my, alt, first, last, entries uint64
		disk                          GUID
		array                         []byte
	}
	readHeader := func(at uint64) (*hdr, error) {
		h := lba(at)
		le := binary.LittleEndian
		if string(h[0:8]) != gptSignature {
			return nil, fmt.Errorf("gpt: no header signature at LBA %d", at)
		}
		if le.Uint32(h[8:]) != gptRevision || le.Uint32(h[12:]) != gptHeaderSize {
			return nil, fmt.Errorf("gpt: header at LBA %d: revision %#x size %d", at, le.Uint32(h[8:]), le.Uint32(h[12:]))
		}
		c := append([]byte(nil), h[:gptHeaderSize]...)
		binary.LittleEndian.PutUint32(c[16:], 0)
		if got, want := crc32.ChecksumIEEE(c), le.Uint32(h[16:]); got != want {
			return nil, fmt.Errorf("gpt: header at LBA %d: CRC32 %#08x, header says %#08x", at, got, want)
		}
		if !bytes.Equal(h[gptHeaderSize:], make([]byte, SectorSize-gptHeaderSize)) || le.Uint32(h[20:]) != 0 {
			return nil, fmt.Errorf("gpt: header at LBA %d: reserved bytes are not zero", at)
		}
		r := &hdr{my: le.Uint64(h[24:]), alt: le.Uint64(h[32:]), first: le.Uint64(h[40:]),
			last: le.Uint64(h[48:]), entries: le.Uint64(h[72:])}
		copy(r.disk[:], h[56:72])
		if r.my != at {
			return nil, fmt.Errorf("gpt: header at LBA %d says it is at LBA %d", at, r.my)
		}
		if le.Uint32(h[80:]) != gptEntries || le.Uint32(h[84:]) != gptEntrySize {
			return nil, fmt.Errorf("gpt: header at LBA %d: %d entries of %d bytes, want %d of %d",
				at, le.Uint32(h[80:]), le.Uint32(h[84:]), gptEntries, gptEntrySize)
		}
		if r.entries+gptArrayBlocks > n {
			return nil, fmt.Errorf("gpt: header at LBA %d: entries at LBA %d run past the disk", at, r.entries)
		}
		r.array = disk[r.entries*SectorSize : (r.entries+gptArrayBlocks)*SectorSize]
		if got, want := crc32.ChecksumIEEE(r.array), le.Uint32(h[88:]); got != want {
			return nil, fmt.Errorf("gpt: entries of header at LBA %d: CRC32 %#08x, header says %#08x", at, got, want)
		}
		return r, nil
	}
	pri, err := readHeader(1)
	if err != nil {
		return nil, err
	}
	if pri.alt != n-1 {
		return nil, fmt.Errorf("gpt: primary header puts the backup at LBA %d, the disk ends at %d", pri.alt, n-1)
	}
	if pri.entries != 2 {
		return nil, fmt.Errorf("gpt: primary entries at LBA %d, want 2", pri.entries)
	}
	bak, err := readHeader(n - 1)
	if err != nil {
		return nil, err
	}
	if bak.alt != 1 || bak.entries != n-1-gptArrayBlocks {
		return nil, fmt.Errorf("gpt: backup header: alternate LBA %d, entries at %d", bak.alt, bak.entries)
	}
	if bak.first != pri.first || bak.last != pri.last || bak.disk != pri.disk || !bytes.Equal(bak.array, pri.array) {
		return nil, errors.New("gpt: backup header or entries differ from the primary")
	}
	t := &GPT{DiskGUID: pri.disk, Sectors: n}
	if pri.first != t.FirstUsableLBA() || pri.last != t.LastUsableLBA() {
		return nil, fmt.Errorf("gpt: usable LBAs %d..%d, want %d..%d", pri.first, pri.last, t.FirstUsableLBA(), t.LastUsableLBA())
	}
	for i := 0; i < gptEntries; i++ {
		e := pri.array[i*gptEntrySize : (i+1)*gptEntrySize]
		var p Partition
		copy(p.Type[:], e[0:16])
		if p.Type.IsZero() {
			continue
		}
		copy(p.ID[:], e[16:32])
		p.FirstLBA = binary.LittleEndian.Uint64(e[32:])
		p.LastLBA = binary.LittleEndian.Uint64(e[40:])
		p.Attributes = binary.LittleEndian.Uint64(e[48:])
		units := make([]uint16, 0, gptNameUnits)
		for k := 0; k < gptNameUnits; k++ {
			u := binary.LittleEndian.Uint16(e[56+2*k:])
			if u == 0 {
				break
			}
			units = append(units, u)
		}
		p.Name = string(utf16.Decode(units))
		t.Partitions = append(t.Partitions, p)
	}
	if err := t.Validate(); err != nil {
		return nil, err
	}
	return t, nil
}
