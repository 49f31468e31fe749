package bootmedia

import (
	"encoding/binary"
	"fmt"
)

// BIOS boot from a GPT disk, the way grub-install sets it up (facts from
// GRUB's include/grub/i386/pc/boot.h, boot.S, diskboot.S and util/setup.c):
//
//   - boot.img (512 bytes) is the MBR's code. The BIOS runs it at 0x7c00; it
//     reads one sector, the first of core.img, from the 64-bit LBA stored at
//     offset 0x5c, from the drive at 0x64 (0xff: the drive the BIOS booted
//     from, in DL). At 0x66 is a 2-byte jump that skips a check for BIOSes
//     that pass a bad DL; grub-setup replaces it with two NOPs on hard disks.
//     The code ends before 0x1b8, where the disk signature and partition
//     table of the MBR begin, so it coexists with the protective MBR.
//   - core.img starts with diskboot.img, one sector that loads the rest of
//     core.img from the block list at its end: 12-byte entries (start LBA
//     u64, sector count u16, load segment u16) growing down from offset
//     0x1f4, ended by an entry of length 0. grub-mkimage fills the first
//     entry's count and segment (0x820); the installer writes the start.
//   - On GPT the installer embeds core.img in the BIOS boot partition, in
//     consecutive sectors, so one block-list entry covers it.
//   - core.img's prefix "(,gptN)/boot/grub" leaves the drive out: GRUB fills
//     in the drive it booted from, so the disk need not be the first one.
const (
	bootImgKernelSector = 0x5c
	bootImgBootDrive    = 0x64
	bootImgDriveCheck   = 0x66
	mbrNTMagic          = 0x1b8 // disk signature; the partition table follows
	mbrPartStart        = 0x1be

	blocklistEntry = 12
	blocklistFirst = SectorSize - blocklistEntry // 0x1f4
	coreLoadSeg    = 0x800 + SectorSize>>4       // 0x820: where diskboot puts the 2nd sector
	coreMaxBytes   = 0x78000 - 0x8000            // core.img is loaded at 0x8000 and must end below 0x78000
)

// PatchBootImg returns boot.img made into the MBR of a disk whose core.img
// starts at coreLBA, with mbrTail (bytes 0x1b8..0x1ff: the partition table)
// in place.
func PatchBootImg(bootImg []byte, coreLBA uint64, mbrTail []byte) ([]byte, error) {
	if len(bootImg) != SectorSize {
		return nil, fmt.Errorf("boot.img is %d bytes, want %d", len(bootImg), SectorSize)
	}
	if bootImg[510] != 0x55 || bootImg[511] != 0xaa {
		return nil, fmt.Errorf("boot.img has no 0x55AA signature")
	}
	if bootImg[bootImgDriveCheck] != 0xeb {
		return nil, fmt.Errorf("boot.img has %#x at %#x, want GRUB's drive-check jump (0xeb): not GRUB 2's boot.img?",
			bootImg[bootImgDriveCheck], bootImgDriveCheck)
	}
	if len(mbrTail) != SectorSize-mbrNTMagic {
		return nil, fmt.Errorf("MBR partition table is %d bytes, want %d", len(mbrTail), SectorSize-mbrNTMagic)
	}
	mbr := append([]byte(nil), bootImg...)
	binary.LittleEndian.PutUint64(mbr[bootImgKernelSector:], coreLBA)
	mbr[bootImgBootDrive] = 0xff                                  // the drive the BIOS booted
	mbr[bootImgDriveCheck], mbr[bootImgDriveCheck+1] = 0x90, 0x90 // hard disk: trust DL only if 0x80..0x8f
	copy(mbr[mbrNTMagic:], mbrTail)
	return mbr, nil
}

// PatchCoreImg returns core.img (from grub-mkimage -O i386-pc) padded to
// whole sectors, with its block list saying the sectors after the first lie
// consecutively from coreLBA+1.
func PatchCoreImg(coreImg []byte, coreLBA uint64) ([]byte, error) {
	if len(coreImg) < 2*SectorSize {
		return nil, fmt.Errorf("core.img is %d bytes: too small", len(coreImg))
	}
	if len(coreImg) > coreMaxBytes {
		return nil, fmt.Errorf("core.img is %d bytes, more than the %d that fit below 0x78000", len(coreImg), coreMaxBytes)
	}
	sectors := (len(coreImg) + SectorSize - 1) / SectorSize
	core := make([]byte, sectors*SectorSize)
	copy(core, coreImg)
	le := binary.LittleEndian
	first := core[blocklistFirst : blocklistFirst+blocklistEntry]
	if n := le.Uint16(first[8:]); int(n) != sectors-1 {
		return nil, fmt.Errorf("core.img block list counts %d sectors after the first, the file has %d: not from grub-mkimage -O i386-pc?", n, sectors-1)
	}
	if seg := le.Uint16(first[10:]); seg != coreLoadSeg {
		return nil, fmt.Errorf("core.img block list loads at segment %#x, want %#x", seg, coreLoadSeg)
	}
	le.PutUint64(first[0:], coreLBA+1)
	// The entry below the first must end the list.
	for i := blocklistFirst - blocklistEntry; i < blocklistFirst; i++ {
		core[i] = 0
	}
	return core, nil
}
