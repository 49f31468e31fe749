package bootmedia

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
)

// Multiboot2 header facts (Multiboot2 specification, section 3.1.1): the
// header is 8-byte aligned within the first 32768 bytes of the file, starts
// with the magic, the architecture (0 = i386 protected mode), the header
// length, and a checksum that makes the four fields sum to zero.
const (
	mb2Magic    = 0xe85250d6
	mb2Search   = 32768
	mb2Align    = 8
	mb2ArchI386 = 0
)

// FindMultiboot2Header returns the file offset of the Multiboot2 header in a
// kernel image, or an error if there is none.
func FindMultiboot2Header(k []byte) (int, error) {
	n := min(len(k), mb2Search)
	for off := 0; off+16 <= n; off += mb2Align {
		le := binary.LittleEndian
		magic := le.Uint32(k[off:])
		if magic != mb2Magic {
			continue
		}
		arch, length, sum := le.Uint32(k[off+4:]), le.Uint32(k[off+8:]), le.Uint32(k[off+12:])
		if magic+arch+length+sum != 0 {
			continue
		}
		if arch != mb2ArchI386 {
			return 0, fmt.Errorf("Multiboot2 header at %#x is for architecture %d, not i386 (0)", off, arch)
		}
		if length < 16 || uint64(off)+uint64(length) > uint64(len(k)) {
			return 0, fmt.Errorf("Multiboot2 header at %#x has length %d past the end of the file", off, length)
		}
		return off, nil
	}
	return 0, fmt.Errorf("no Multiboot2 header in the first %d bytes", mb2Search)
}

// Kernel is a gohv image read from disk and checked to be bootable by GRUB's
// multiboot2 command.
type Kernel struct {
	Path string
	Data []byte
}

// ReadKernel reads and checks the kernel at path (build/gohv from
// `make image`).
func ReadKernel(path string) (*Kernel, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("kernel: %w", err)
	}
	if _, err := FindMultiboot2Header(data); err != nil {
		return nil, fmt.Errorf("kernel %s: %w (want build/gohv from `make image`)", path, err)
	}
	return &Kernel{Path: path, Data: data}, nil
}

// SumFile is the content of SumPath: the kernel's SHA-256 in the format of
// sha256sum(1), which GRUB's `sha256sum --check` reads.
func (k *Kernel) SumFile() []byte {
	h := sha256.Sum256(k.Data)
	return fmt.Appendf(nil, "%s  %s\n", hex.EncodeToString(h[:]), KernelPath)
}

// stagedFile is one file of a medium: its path there and its content.
type stagedFile struct {
	path string
	data []byte
}

// files lists the files every medium carries: the kernel, the boot modules,
// their checksums and grub.cfg.
func (b *Builder) files(medium string) ([]stagedFile, error) {
	cfg, err := GrubConfig(b.Config, medium)
	if err != nil {
		return nil, err
	}
	if len(b.Modules) != len(b.Config.Modules) {
		return nil, fmt.Errorf("%d module files for %d modules in the boot configuration", len(b.Modules), len(b.Config.Modules))
	}
	files := []stagedFile{
		{KernelPath, b.Kernel.Data},
		{SumPath, b.Kernel.SumFile()},
		{ConfigPath, cfg},
	}
	for i, m := range b.Modules {
		if m.Name != b.Config.Modules[i] {
			return nil, fmt.Errorf("module file %d is %q, the boot configuration's module %d %q", i, m.Name, i, b.Config.Modules[i])
		}
		files = append(files, stagedFile{ModulePath(m.Name), m.Data}, stagedFile{ModuleSumPath(m.Name), m.SumFile()})
	}
	return files, nil
}

// stage writes the files every medium carries under root, a directory that
// stands for the medium's root.
func (b *Builder) stage(root, medium string) error {
	files, err := b.files(medium)
	if err != nil {
		return err
	}
	for _, f := range files {
		p := filepath.Join(root, filepath.FromSlash(f.path))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, f.data, 0o644); err != nil {
			return err
		}
	}
	return nil
}
