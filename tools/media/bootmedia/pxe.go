package bootmedia

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
)

// Boot files of the PXE tree, relative to the TFTP root: what the DHCP
// server names as the boot file for BIOS and for x86-64 UEFI clients.
const (
	PXEBootFileBIOS = "boot/grub/i386-pc/core.0"
	PXEBootFileEFI  = "boot/grub/x86_64-efi/core.efi"
)

// PXE builds a TFTP root at outDir with GRUB's network boot images
// (grub-mknetdir): core.0 for BIOS PXE ROMs, core.efi for UEFI network boot,
// each with its modules beside it. GRUB fetches grub.cfg and the kernel over
// TFTP from the server that handed it out, so the tree is self-contained:
// serve outDir as the TFTP root and point DHCP at one of the boot files.
func (b *Builder) PXE(ctx context.Context, outDir string) error {
	if err := b.pxe(ctx, outDir); err != nil {
		return fmt.Errorf("media: pxe: %w", err)
	}
	return nil
}

func (b *Builder) pxe(ctx context.Context, outDir string) error {
	tools, err := b.require([]hostTool{toolMknetdir}, []grubPlatform{platformBIOS, platformEFI})
	if err != nil {
		return err
	}
	parent := filepath.Dir(filepath.Clean(outDir))
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(parent, ".gohv-pxe-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if err := os.Chmod(tmp, 0o755); err != nil {
		return err
	}
	for _, p := range []grubPlatform{platformBIOS, platformEFI} {
		b.logf("pxe: grub-mknetdir for %s", p.name)
		err := b.run(ctx, nil, tools[toolMknetdir.name],
			"--net-directory="+tmp,
			"--subdir=boot/grub",
			"--directory="+b.platformDir(p),
			"--locales=", "--fonts=", "--themes=")
		if err != nil {
			return err
		}
	}
	for _, f := range []string{PXEBootFileBIOS, PXEBootFileEFI} {
		if _, err := os.Stat(filepath.Join(tmp, filepath.FromSlash(f))); err != nil {
			return fmt.Errorf("grub-mknetdir did not make %s: %w", f, err)
		}
	}
	if err := b.stage(tmp, MediumPXE); err != nil {
		return err
	}
	if err := replaceDir(tmp, outDir, isPXETree); err != nil {
		return err
	}
	b.logf("pxe: wrote %s (boot files %s, %s)", outDir, PXEBootFileBIOS, PXEBootFileEFI)
	return nil
}

// isPXETree reports whether dir looks like a tree PXE built.
func isPXETree(dir string) bool {
	for _, f := range []string{PXEBootFileBIOS, KernelPath} {
		if _, err := os.Stat(filepath.Join(dir, filepath.FromSlash(f))); err != nil {
			return false
		}
	}
	return true
}
