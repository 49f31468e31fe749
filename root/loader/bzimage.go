package loader

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
)

// Sentinel errors of ParseSetupHeader, for callers that branch (try the
// Multiboot loader when the file is no bzImage; name a damaged module).
var (
	ErrNotBzImage = errors.New("not a bzImage")
	ErrTruncated  = errors.New("truncated")
)

// SetupHeader is what the loader reads from a bzImage's setup header
// (boot.rst "THE REAL-MODE KERNEL HEADER"), validated by ParseSetupHeader.
type SetupHeader struct {
	Version           uint16 // boot protocol, 0xMMmm (0x020F is 2.15)
	SetupSects        uint8  // setup_sects, with 0 read as 4
	SysSize           uint32 // syssize: protected-mode code in 16-byte paragraphs
	LoadFlags         uint8  // loadflags
	XLoadFlags        uint16 // xloadflags
	InitrdAddrMax     uint32 // initrd_addr_max: highest address an initrd byte may occupy
	KernelAlignment   uint32 // kernel_alignment (a power of two, at least 4 KiB)
	RelocatableKernel bool   // relocatable_kernel
	MinAlignment      uint8  // min_alignment, log2
	CmdlineSize       uint32 // cmdline_size: longest command line, without its NUL
	PrefAddress       uint64 // pref_address: where a non-relocatable kernel must run
	InitSize          uint32 // init_size: memory the kernel needs from where it runs
	HeaderEnd         int    // 0x202 + the jump's offset byte: boot_params copies [0x1F1, HeaderEnd)
	KernelVersion     string // the string kernel_version points at; "" if it points nowhere sensible
}

// SetupSize is the file offset of the protected-mode code:
// (setup_sects + 1) * 512.
func (h SetupHeader) SetupSize() uint64 { return (uint64(h.SetupSects) + 1) * 512 }

// KernelSize is the length of the protected-mode code: syssize * 16.
func (h SetupHeader) KernelSize() uint64 { return uint64(h.SysSize) * 16 }

// ProtocolString is the boot protocol as boot.rst writes it ("2.15").
func (h SetupHeader) ProtocolString() string {
	return fmt.Sprintf("%d.%02d", h.Version>>8, h.Version&0xff)
}

// ParseSetupHeader reads and validates the setup header of a bzImage (the
// file as distributed, e.g. Debian's /boot/vmlinuz-*): boot_flag and
// "HdrS", protocol 2.12 or later, a header long enough for the fields read
// and short enough for boot_params, LOADED_HIGH, XLF_KERNEL_64, a file as
// long as setup_sects and syssize say, a power-of-two kernel_alignment and
// an init_size that holds the protected-mode code.
//
// image is hostile input: every offset and size it gives is checked
// against the file before use, and it never panics. Errors name the
// field; a file that is no bzImage wraps ErrNotBzImage, a short one
// ErrTruncated.
func ParseSetupHeader(image []byte) (SetupHeader, error) {
	var h SetupHeader
	le := binary.LittleEndian
	if len(image) < hdrVersion+2 {
		return h, fmt.Errorf("bzimage: %d bytes, too short for a setup header (%#x): %w", len(image), hdrVersion+2, ErrNotBzImage)
	}
	if f := le.Uint16(image[hdrBootFlag:]); f != bootFlagMagic {
		return h, fmt.Errorf("bzimage: boot_flag (%#x) is %#04x, want 0xaa55: %w", hdrBootFlag, f, ErrNotBzImage)
	}
	if m := le.Uint32(image[hdrHeader:]); m != headerMagic {
		return h, fmt.Errorf("bzimage: header (%#x) is %q, want \"HdrS\" (no setup header, or boot protocol older than 2.00): %w",
			hdrHeader, image[hdrHeader:hdrHeader+4], ErrNotBzImage)
	}
	h.Version = le.Uint16(image[hdrVersion:])
	if h.Version < MinProtocol {
		return h, fmt.Errorf("bzimage: version (%#x): boot protocol %s (%#04x) is older than 2.12 (0x020c), the first with xloadflags and a 64-bit entry point",
			hdrVersion, h.ProtocolString(), h.Version)
	}
	h.HeaderEnd = hdrJump + 2 + int(image[hdrJump+1])
	switch {
	case h.HeaderEnd < hdrInitSizeEnd:
		return h, fmt.Errorf("bzimage: jump (%#x): the setup header ends at %#x, before init_size (%#x-%#x), which protocol %s has",
			hdrJump, h.HeaderEnd, hdrInitSize, hdrInitSizeEnd, h.ProtocolString())
	case h.HeaderEnd > bpHdrAreaEnd:
		return h, fmt.Errorf("bzimage: jump (%#x): the setup header ends at %#x, past its room in boot_params (%#x)",
			hdrJump, h.HeaderEnd, bpHdrAreaEnd)
	case h.HeaderEnd > len(image):
		return h, fmt.Errorf("bzimage: jump (%#x): the setup header ends at %#x, past the file's %d bytes: %w",
			hdrJump, h.HeaderEnd, len(image), ErrTruncated)
	}

	h.SetupSects = image[hdrSetupSects]
	if h.SetupSects == 0 {
		h.SetupSects = 4
	}
	h.SysSize = le.Uint32(image[hdrSysSize:])
	h.LoadFlags = image[hdrLoadFlags]
	h.InitrdAddrMax = le.Uint32(image[hdrInitrdAddrMax:])
	h.KernelAlignment = le.Uint32(image[hdrKernelAlignment:])
	h.RelocatableKernel = image[hdrRelocatableKernel] != 0
	h.MinAlignment = image[hdrMinAlignment]
	h.XLoadFlags = le.Uint16(image[hdrXLoadFlags:])
	h.CmdlineSize = le.Uint32(image[hdrCmdlineSize:])
	h.PrefAddress = le.Uint64(image[hdrPrefAddress:])
	h.InitSize = le.Uint32(image[hdrInitSize:])
	h.KernelVersion = kernelVersion(image, h.SetupSize())

	if h.SysSize == 0 {
		return h, errors.New("bzimage: syssize (0x1f4) is 0: no protected-mode code")
	}
	if want := h.SetupSize() + h.KernelSize(); uint64(len(image)) < want {
		return h, fmt.Errorf("bzimage: the file is %d bytes, setup_sects (%d) and syssize (%#x) say %d: %d bytes missing: %w",
			len(image), h.SetupSects, h.SysSize, want, want-uint64(len(image)), ErrTruncated)
	}
	if h.LoadFlags&loadFlagLoadedHigh == 0 {
		return h, fmt.Errorf("bzimage: loadflags (%#x) is %#02x without LOADED_HIGH: a zImage, loaded at 0x10000, not a bzImage",
			hdrLoadFlags, h.LoadFlags)
	}
	if h.XLoadFlags&xlfKernel64 == 0 {
		return h, fmt.Errorf("bzimage: xloadflags (%#x) is %#04x without XLF_KERNEL_64: a 32-bit-only kernel, with no 64-bit entry point",
			hdrXLoadFlags, h.XLoadFlags)
	}
	if a := h.KernelAlignment; a < 4096 || bits.OnesCount32(a) != 1 {
		return h, fmt.Errorf("bzimage: kernel_alignment (%#x) is %#x, want a power of two of at least 4 KiB", hdrKernelAlignment, a)
	}
	if uint64(h.InitSize) < h.KernelSize() {
		return h, fmt.Errorf("bzimage: init_size (%#x) is %#x, less than the %#x bytes of protected-mode code (syssize %#x)",
			hdrInitSize, h.InitSize, h.KernelSize(), h.SysSize)
	}
	return h, nil
}

// kernelVersion returns the NUL-terminated string that kernel_version
// points at (its value + 0x200, inside the setup code), or "" when it
// points outside the setup code or at something not printable.
func kernelVersion(image []byte, setupSize uint64) string {
	off := uint64(binary.LittleEndian.Uint16(image[hdrKernelVersion:]))
	if off == 0 {
		return ""
	}
	off += 0x200
	end := min(setupSize, uint64(len(image)), off+256)
	if off >= end {
		return ""
	}
	s := image[off:end]
	for i, c := range s {
		if c == 0 {
			return string(s[:i])
		}
		if c < 0x20 || c > 0x7e {
			return ""
		}
	}
	return ""
}
