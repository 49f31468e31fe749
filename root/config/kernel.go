package config

import (
	"encoding/binary"
	"fmt"
)

// Kernel headers, as DetectKernelFormat looks for them.
const (
	// Linux x86 boot protocol (Documentation/arch/x86/boot.rst): boot_flag
	// 0xAA55 at 0x1FE and the magic "HdrS" at 0x202 of a bzImage.
	linuxBootFlagOff = 0x1fe
	linuxHeaderOff   = 0x202
	linuxHeaderMagic = "HdrS"

	// Multiboot Specification 0.6.96 §3.1.1: magic, flags and checksum
	// summing to zero, 4-byte aligned within the first 8192 bytes.
	multibootMagic  = 0x1badb002
	multibootSearch = 8192
)

// DetectKernelFormat tells a Linux bzImage (FormatLinux) from a Multiboot
// kernel (FormatMultiboot) by their headers, for a partition whose
// kernel_format is left out. A file with neither header, or with both, is
// an error that says so.
func DetectKernelFormat(kernel []byte) (string, error) {
	linux := len(kernel) >= linuxHeaderOff+4 &&
		binary.LittleEndian.Uint16(kernel[linuxBootFlagOff:]) == 0xaa55 &&
		string(kernel[linuxHeaderOff:linuxHeaderOff+4]) == linuxHeaderMagic
	mb := false
	for off := 0; off+12 <= min(len(kernel), multibootSearch); off += 4 {
		le := binary.LittleEndian
		magic, flags, sum := le.Uint32(kernel[off:]), le.Uint32(kernel[off+4:]), le.Uint32(kernel[off+8:])
		if magic == multibootMagic && magic+flags+sum == 0 {
			mb = true
			break
		}
	}
	switch {
	case linux && mb:
		return "", fmt.Errorf("the kernel has both a Linux boot header and a Multiboot header: set kernel_format")
	case linux:
		return FormatLinux, nil
	case mb:
		return FormatMultiboot, nil
	}
	return "", fmt.Errorf("the kernel is neither a Linux bzImage (no %q at %#x) nor a Multiboot kernel (no header in its first %d bytes)",
		linuxHeaderMagic, linuxHeaderOff, multibootSearch)
}

// Format is the partition's kernel format: KernelFormat when the file set
// it, else what DetectKernelFormat finds in kernel.
func (p *Partition) Format(kernel []byte) (string, error) {
	if p.KernelFormat != "" {
		return p.KernelFormat, nil
	}
	f, err := DetectKernelFormat(kernel)
	if err != nil {
		return "", fmt.Errorf("partition %s: kernel %q: %w", p.Name, p.Kernel, err)
	}
	return f, nil
}
