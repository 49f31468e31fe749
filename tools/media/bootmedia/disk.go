package bootmedia

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// Disk layout (512-byte blocks, partitions 1 MiB-aligned):
//
//	LBA 0            protective MBR carrying GRUB's boot.img
//	LBA 1..33        primary GPT
//	LBA 2048..4095   partition 1: BIOS boot partition (1 MiB) holding core.img
//	LBA 4096..       partition 2: EFI system partition, FAT32, to the last
//	                 1 MiB boundary before the backup GPT
//
// The ESP holds \EFI\BOOT\BOOTX64.EFI (the removable-media path UEFI firmware
// boots without a boot entry), grub.cfg, the kernel and its checksum. Both
// GRUB images have the modules the boot needs built in and read
// /boot/grub/grub.cfg from the ESP: BIOS GRUB through the prefix
// "(,gpt2)/boot/grub", UEFI GRUB from the partition it was loaded from.
const (
	diskAlign     = 2048 // 1 MiB
	biosPartLBA   = 2048
	biosPartSize  = 2048 // 1 MiB: core.img is well under 448 KiB
	espPartNumber = 2

	// DefaultDiskMiB is the image size: enough for a FAT32 ESP (which needs
	// at least 65525 clusters) with room to spare.
	DefaultDiskMiB = 64
	minDiskMiB     = 40
	// maxDiskMiB bounds the image: it only has to hold GRUB and the kernel
	// (the rest of a server's disk stays free), and it is read back whole.
	maxDiskMiB = 2048

	ESPLabel = "GOHV-ESP"
)

// GRUB modules built into the disk's GRUB images: disk access, the GPT and
// FAT drivers, the script engine and menu (normal), the commands grub.cfg
// uses, and a few for looking around from GRUB's shell.
var (
	diskModulesCommon = []string{"part_gpt", "fat", "normal", "configfile", "multiboot2", "multiboot",
		"serial", "terminal", "echo", "test", "hashsum", "gcry_sha256", "halt", "sleep", "ls", "cat", "search"}
	diskModulesBIOS = append([]string{"biosdisk"}, diskModulesCommon...)
	diskModulesEFI  = diskModulesCommon
)

// DiskOptions shape the raw disk image. Zero GUIDs are replaced by random ones.
type DiskOptions struct {
	SizeMiB  int // 0 means DefaultDiskMiB
	DiskGUID GUID
	BIOSGUID GUID // the BIOS boot partition's unique GUID
	ESPGUID  GUID // the EFI system partition's unique GUID
}

// DiskLayout is the partition table for a disk of sizeMiB.
func DiskLayout(sizeMiB int, o DiskOptions) (*GPT, error) {
	if sizeMiB < minDiskMiB || sizeMiB > maxDiskMiB {
		return nil, fmt.Errorf("disk size %d MiB: want %d to %d MiB", sizeMiB, minDiskMiB, maxDiskMiB)
	}
	t := &GPT{DiskGUID: o.DiskGUID, Sectors: uint64(sizeMiB) << 20 / SectorSize}
	espFirst := uint64(biosPartLBA + biosPartSize)
	espLast := (t.LastUsableLBA()+1)/diskAlign*diskAlign - 1
	t.Partitions = []Partition{
		{Type: TypeBIOSBoot, ID: o.BIOSGUID, FirstLBA: biosPartLBA, LastLBA: biosPartLBA + biosPartSize - 1, Name: "BIOS boot partition"},
		{Type: TypeESP, ID: o.ESPGUID, FirstLBA: espFirst, LastLBA: espLast, Name: "EFI system partition"},
	}
	return t, t.Validate()
}

// Disk builds a raw GPT disk image at out: GRUB for BIOS in the MBR and the
// BIOS boot partition, GRUB for UEFI and the kernel on the EFI system
// partition. Nothing is mounted: the FAT file system is made and filled with
// mtools in an image file, and the GPT is written by this package.
func (b *Builder) Disk(ctx context.Context, out string, o DiskOptions) error {
	if err := b.disk(ctx, out, o); err != nil {
		return fmt.Errorf("media: disk: %w", err)
	}
	return nil
}

func (b *Builder) disk(ctx context.Context, out string, o DiskOptions) error {
	tools, err := b.require([]hostTool{toolMkimage, toolMformat, toolMmd, toolMcopy},
		[]grubPlatform{platformBIOS, platformEFI})
	if err != nil {
		return err
	}
	size := o.SizeMiB
	if size == 0 {
		size = DefaultDiskMiB
	}
	for _, g := range []*GUID{&o.DiskGUID, &o.BIOSGUID, &o.ESPGUID} {
		if g.IsZero() {
			if *g, err = RandomGUID(); err != nil {
				return err
			}
		}
	}
	layout, err := DiskLayout(size, o)
	if err != nil {
		return err
	}
	biosPart, esp := layout.Partitions[0], layout.Partitions[1]
	if err := b.checkESPRoom(size, esp); err != nil {
		return err
	}

	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	work, err := os.MkdirTemp(filepath.Dir(out), ".gohv-disk-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)

	// GRUB images.
	coreImg := filepath.Join(work, "core.img")
	efiImg := filepath.Join(work, "BOOTX64.EFI")
	b.logf("disk: grub-mkimage for %s and %s", platformBIOS.name, platformEFI.name)
	if err := b.run(ctx, nil, tools[toolMkimage.name], append([]string{"--format=i386-pc",
		"--directory=" + b.platformDir(platformBIOS),
		fmt.Sprintf("--prefix=(,gpt%d)/boot/grub", espPartNumber),
		"--output=" + coreImg}, diskModulesBIOS...)...); err != nil {
		return err
	}
	if err := b.run(ctx, nil, tools[toolMkimage.name], append([]string{"--format=x86_64-efi",
		"--directory=" + b.platformDir(platformEFI),
		"--prefix=/boot/grub",
		"--output=" + efiImg}, diskModulesEFI...)...); err != nil {
		return err
	}
	bootImg, err := os.ReadFile(filepath.Join(b.platformDir(platformBIOS), "boot.img"))
	if err != nil {
		return err
	}
	core, err := os.ReadFile(coreImg)
	if err != nil {
		return err
	}
	core, err = PatchCoreImg(core, biosPart.FirstLBA)
	if err != nil {
		return err
	}
	if uint64(len(core)) > biosPart.Sectors()*SectorSize {
		return fmt.Errorf("core.img (%d bytes) does not fit the BIOS boot partition", len(core))
	}

	// The EFI system partition, as a FAT32 image file filled with mtools.
	root := filepath.Join(work, "esp")
	if err := b.stage(root, MediumDisk); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(root, "EFI", "BOOT"), 0o755); err != nil {
		return err
	}
	if err := os.Rename(efiImg, filepath.Join(root, "EFI", "BOOT", "BOOTX64.EFI")); err != nil {
		return err
	}
	espImg := filepath.Join(work, "esp.img")
	if err := makeFAT(ctx, b, tools, espImg, esp, layout.DiskGUID, root); err != nil {
		return err
	}

	// The disk.
	mbrTail, blocks, err := layout.Encode()
	if err != nil {
		return err
	}
	mbr, err := PatchBootImg(bootImg, biosPart.FirstLBA, mbrTail)
	if err != nil {
		return err
	}
	tmp := filepath.Join(work, "gohv.img")
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := f.Truncate(int64(layout.Sectors) * SectorSize); err != nil {
		return err
	}
	blocks = append(blocks, Block{0, mbr}, Block{biosPart.FirstLBA, core})
	for _, bl := range blocks {
		if _, err := f.WriteAt(bl.Data, int64(bl.LBA)*SectorSize); err != nil {
			return err
		}
	}
	if err := copyInto(f, int64(esp.FirstLBA)*SectorSize, espImg, int64(esp.Sectors())*SectorSize); err != nil {
		return fmt.Errorf("ESP: %w", err)
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := checkDisk(tmp); err != nil {
		return fmt.Errorf("reading back the image: %w", err)
	}
	if err := replaceFile(tmp, out); err != nil {
		return err
	}
	b.logf("disk: wrote %s (%d MiB, GPT %s; BIOS boot partition LBA %d..%d, ESP LBA %d..%d)",
		out, size, layout.DiskGUID, biosPart.FirstLBA, biosPart.LastLBA, esp.FirstLBA, esp.LastLBA)
	return nil
}

// espSlack is room on the ESP beyond the kernel and modules: GRUB's EFI
// image (about 2 MiB), grub.cfg, the checksums and the file system's own
// structures.
const espSlack = 8 << 20

// checkESPRoom says, before anything is built, when the kernel and modules
// will not fit the EFI system partition of a disk of sizeMiB, and what size
// would do.
func (b *Builder) checkESPRoom(sizeMiB int, esp Partition) error {
	need := uint64(len(b.Kernel.Data)) + espSlack
	for _, m := range b.Modules {
		need += uint64(len(m.Data))
	}
	have := esp.Sectors() * SectorSize
	if need <= have {
		return nil
	}
	want := sizeMiB + int((need-have+(1<<20)-1)>>20)
	return fmt.Errorf("the kernel and modules need %d MiB on the EFI system partition, which holds %d MiB on a %d MiB disk image: give -size-mib %d or more",
		need>>20, have>>20, sizeMiB, want)
}

// makeFAT makes a FAT32 file system image of the partition's size labelled
// ESPLabel and copies the tree at root into it. Its volume serial number comes
// from the disk GUID, and its hidden-sectors field is the partition's start,
// as a partitioned FAT's boot sector should say.
func makeFAT(ctx context.Context, b *Builder, tools map[string]string, img string, p Partition, disk GUID, root string) error {
	f, err := os.Create(img)
	if err != nil {
		return err
	}
	if err := f.Truncate(int64(p.Sectors()) * SectorSize); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	// mtools checks a floppy-style geometry unless told not to.
	env := []string{"MTOOLS_SKIP_CHECK=1"}
	serial := fmt.Sprintf("%02x%02x%02x%02x", disk[3], disk[2], disk[1], disk[0])
	if err := b.run(ctx, env, tools[toolMformat.name], "-i", img, "-F",
		"-v", ESPLabel, "-N", serial, "-H", fmt.Sprint(p.FirstLBA), "::"); err != nil {
		return err
	}
	// Directories first (parents before children), then files.
	var dirs, files []string
	err = filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil || path == root {
			return err
		}
		rel, err := filepath.Rel(root, path)
		if err != nil {
			return err
		}
		if d.IsDir() {
			dirs = append(dirs, "::/"+filepath.ToSlash(rel))
		} else {
			files = append(files, rel)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if len(dirs) > 0 {
		if err := b.run(ctx, env, tools[toolMmd.name], append([]string{"-i", img}, dirs...)...); err != nil {
			return err
		}
	}
	for _, rel := range files {
		if err := b.run(ctx, env, tools[toolMcopy.name], "-i", img,
			filepath.Join(root, rel), "::/"+filepath.ToSlash(rel)); err != nil {
			return err
		}
	}
	return nil
}

// copyInto copies the file at src (exactly size bytes) into f at off.
func copyInto(f *os.File, off int64, src string, size int64) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	n, err := io.Copy(io.NewOffsetWriter(f, off), in)
	if err != nil {
		return err
	}
	if n != size {
		return fmt.Errorf("%s is %d bytes, the partition %d", src, n, size)
	}
	return nil
}

// checkDisk re-reads a finished image and checks its partition table and
// both boot paths' first steps: the MBR points at core.img in the BIOS boot
// partition, and the ESP's boot sector is where the GPT says.
func checkDisk(path string) error {
	disk, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	return CheckDiskImage(disk)
}

// CheckDiskImage checks a disk image as Disk lays it out: a valid GPT with a
// BIOS boot partition and an ESP; an MBR whose boot code loads core.img from
// the start of the BIOS boot partition, whose block list covers the rest of
// core.img right after it; and a FAT32 boot sector at the start of the ESP
// that fits the partition.
func CheckDiskImage(disk []byte) error {
	t, err := ReadGPT(disk)
	if err != nil {
		return err
	}
	var bios, esp *Partition
	for i := range t.Partitions {
		switch p := &t.Partitions[i]; p.Type {
		case TypeBIOSBoot:
			bios = p
		case TypeESP:
			esp = p
		}
	}
	if bios == nil || esp == nil {
		return fmt.Errorf("want a BIOS boot partition and an EFI system partition, have %d partitions", len(t.Partitions))
	}
	le := binary.LittleEndian
	mbr := disk[:SectorSize]
	if got := le.Uint64(mbr[bootImgKernelSector:]); got != bios.FirstLBA {
		return fmt.Errorf("MBR loads core.img from LBA %d, the BIOS boot partition starts at %d", got, bios.FirstLBA)
	}
	if mbr[bootImgBootDrive] != 0xff || mbr[bootImgDriveCheck] != 0x90 || mbr[bootImgDriveCheck+1] != 0x90 {
		return fmt.Errorf("MBR boot drive %#x / drive check %#x %#x, want 0xff / NOP NOP",
			mbr[bootImgBootDrive], mbr[bootImgDriveCheck], mbr[bootImgDriveCheck+1])
	}
	diskboot := disk[bios.FirstLBA*SectorSize : (bios.FirstLBA+1)*SectorSize]
	first := diskboot[blocklistFirst:]
	start, n, seg := le.Uint64(first), le.Uint16(first[8:]), le.Uint16(first[10:])
	if start != bios.FirstLBA+1 || seg != coreLoadSeg || n == 0 || uint64(n)+1 > bios.Sectors() {
		return fmt.Errorf("core.img block list: %d sectors from LBA %d to segment %#x; want them from LBA %d within the BIOS boot partition",
			n, start, seg, bios.FirstLBA+1)
	}
	if term := diskboot[blocklistFirst-blocklistEntry : blocklistFirst]; le.Uint16(term[8:]) != 0 {
		return fmt.Errorf("core.img block list has no terminator")
	}
	boot := disk[esp.FirstLBA*SectorSize : (esp.FirstLBA+1)*SectorSize]
	if boot[510] != 0x55 || boot[511] != 0xaa || string(boot[0x52:0x5a]) != "FAT32   " {
		return fmt.Errorf("no FAT32 boot sector at the start of the ESP (LBA %d)", esp.FirstLBA)
	}
	if bps := le.Uint16(boot[0x0b:]); bps != SectorSize {
		return fmt.Errorf("ESP: %d bytes per sector", bps)
	}
	if hidden := le.Uint32(boot[0x1c:]); uint64(hidden) != esp.FirstLBA {
		return fmt.Errorf("ESP: boot sector says the partition starts at LBA %d, the GPT says %d", hidden, esp.FirstLBA)
	}
	if total := le.Uint32(boot[0x20:]); uint64(total) > esp.Sectors() {
		return fmt.Errorf("ESP: file system of %d sectors in a partition of %d", total, esp.Sectors())
	}
	return nil
}
