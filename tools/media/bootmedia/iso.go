package bootmedia

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// VolumeID is the ISO 9660 volume label of gohv.iso.
const VolumeID = "GOHV"

// ISO builds a hybrid ISO image at out with grub-mkrescue: El Torito boot
// entries for BIOS (GRUB's eltorito.img, no emulation) and UEFI (a FAT image
// holding GRUB for x86_64-efi), plus GRUB's isohybrid MBR and a GPT/MBR
// partition for the EFI image so the same file boots when written raw to a
// USB stick. grub-mkrescue uses xorriso to write the image and mtools to
// build the EFI image.
func (b *Builder) ISO(ctx context.Context, out string) error {
	if err := b.iso(ctx, out); err != nil {
		return fmt.Errorf("media: iso: %w", err)
	}
	return nil
}

func (b *Builder) iso(ctx context.Context, out string) error {
	if b.grubLib() != DefaultGrubLib {
		// grub-mkrescue -d would build for that one platform only.
		return fmt.Errorf("grub-mkrescue reads GRUB from %s; a GRUB directory of %s is not supported", DefaultGrubLib, b.grubLib())
	}
	tools, err := b.require([]hostTool{toolMkrescue, toolXorriso, toolMformat},
		[]grubPlatform{platformBIOS, platformEFI})
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	work, err := os.MkdirTemp(filepath.Dir(out), ".gohv-iso-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	root := filepath.Join(work, "root")
	if err := b.stage(root, MediumISO); err != nil {
		return err
	}
	tmp := filepath.Join(work, "gohv.iso")
	b.logf("iso: grub-mkrescue for %s and %s", platformBIOS.name, platformEFI.name)
	err = b.run(ctx, nil, tools[toolMkrescue.name],
		"--output="+tmp,
		"--xorriso="+tools[toolXorriso.name],
		"--locales=", "--fonts=", "--themes=",
		"--product-name=gohv",
		root,
		"-volid", VolumeID)
	if err != nil {
		return err
	}
	report, err := b.output(ctx, tools[toolXorriso.name], "-indev", tmp,
		"-report_el_torito", "plain", "-report_system_area", "plain")
	if err != nil {
		return fmt.Errorf("reading back %s: %w", tmp, err)
	}
	if err := CheckISOReport(report); err != nil {
		return fmt.Errorf("grub-mkrescue made an ISO that will not boot everywhere: %w", err)
	}
	if err := replaceFile(tmp, out); err != nil {
		return err
	}
	b.logf("iso: wrote %s", out)
	return nil
}

// CheckISOReport reads `xorriso -report_el_torito plain -report_system_area
// plain` and checks that the image boots from CD on BIOS and on UEFI (El
// Torito entries for both), and from a USB stick: GRUB's boot code in the MBR
// for BIOS, and an EFI system partition in the partition table for UEFI.
func CheckISOReport(report []byte) error {
	var bios, uefi, mbr, esp bool
	espType := hex.EncodeToString(TypeESP[:])
	sc := bufio.NewScanner(bytes.NewReader(report))
	for sc.Scan() {
		line := sc.Text()
		key, val, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		key = strings.TrimSpace(key)
		f := strings.Fields(val)
		switch {
		case key == "El Torito boot img" && len(f) >= 3:
			// N Pltf B Emul ...: platform, bootable flag, emulation
			bootable := f[2] == "y"
			switch f[1] {
			case "BIOS":
				bios = bios || (bootable && len(f) >= 4 && f[3] == "none")
			case "UEFI":
				uefi = uefi || bootable
			}
		case key == "System area summary":
			mbr = slices.Contains(f, "grub2-mbr")
		case key == "GPT type GUID" && len(f) == 2:
			esp = esp || f[1] == espType
		case key == "MBR partition" && len(f) >= 3:
			esp = esp || f[2] == "0xef"
		}
	}
	var miss []string
	if !bios {
		miss = append(miss, "no bootable BIOS El Torito entry")
	}
	if !uefi {
		miss = append(miss, "no bootable UEFI El Torito entry")
	}
	if !mbr {
		miss = append(miss, "no GRUB boot code in the MBR (a USB stick would not boot on BIOS)")
	}
	if !esp {
		miss = append(miss, "no EFI system partition in the partition table (a USB stick would not boot on UEFI)")
	}
	if len(miss) > 0 {
		return fmt.Errorf("%s", strings.Join(miss, "; "))
	}
	return nil
}
