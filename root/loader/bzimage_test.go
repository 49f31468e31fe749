package loader

import (
	"encoding/binary"
	"errors"
	"os"
	"strings"
	"testing"

	"gohv/x86"
)

const debianHead = "testdata/vmlinuz-6.1.0-57-amd64.head"

// debianKernelHead is the first 16 KiB of Debian's 6.1 kernel (testdata/README.md).
func debianKernelHead(t testing.TB) []byte {
	t.Helper()
	b, err := os.ReadFile(debianHead)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// padded extends a kernel's first bytes with zeros to the length its
// setup_sects and syssize give, as if the protected-mode code were there.
func padded(head []byte) []byte {
	sects := uint64(head[hdrSetupSects])
	if sects == 0 {
		sects = 4
	}
	n := (sects+1)*512 + uint64(binary.LittleEndian.Uint32(head[hdrSysSize:]))*16
	img := make([]byte, max(n, uint64(len(head))))
	copy(img, head)
	return img
}

// debianKernel is Debian's kernel header with zeros for the code: 8 MiB.
func debianKernel(t testing.TB) []byte { return padded(debianKernelHead(t)) }

// smallKernel is Debian's header with syssize cut to 4 KiB of code (its
// init_size and everything else unchanged), and mutations applied to the
// header before padding.
func smallKernel(t testing.TB, mut ...func(h []byte)) []byte {
	h := debianKernelHead(t)
	binary.LittleEndian.PutUint32(h[hdrSysSize:], 0x100)
	for _, m := range mut {
		m(h)
	}
	img := padded(h)
	// A recognisable first and last byte of the protected-mode code.
	sects := int(h[hdrSetupSects])
	if sects == 0 {
		sects = 4
	}
	if so := (sects + 1) * 512; so < len(img) {
		img[so] = 0xe9
		img[len(img)-1] = 0xc3
	}
	return img
}

func put8(off int, v uint8) func([]byte) { return func(h []byte) { h[off] = v } }
func put16(off int, v uint16) func([]byte) {
	return func(h []byte) { binary.LittleEndian.PutUint16(h[off:], v) }
}
func put32(off int, v uint32) func([]byte) {
	return func(h []byte) { binary.LittleEndian.PutUint32(h[off:], v) }
}
func put64(off int, v uint64) func([]byte) {
	return func(h []byte) { binary.LittleEndian.PutUint64(h[off:], v) }
}

// TestParseSetupHeaderDebian reads the values off Debian's 6.1 kernel
// (linux-image-6.1.0-57-amd64 6.1.192-3), as `xxd -s 0x1f1 -l 0x7b`
// shows them, and its config (CONFIG_PHYSICAL_START 0x1000000,
// CONFIG_PHYSICAL_ALIGN 0x200000, CONFIG_RELOCATABLE=y).
func TestParseSetupHeaderDebian(t *testing.T) {
	h, err := ParseSetupHeader(debianKernel(t))
	if err != nil {
		t.Fatal(err)
	}
	want := SetupHeader{
		Version:           0x020f, // 2.15
		SetupSects:        0x27,
		SysSize:           0x7d820,
		LoadFlags:         loadFlagLoadedHigh,
		XLoadFlags:        0x7f, // KERNEL_64, CAN_BE_LOADED_ABOVE_4G, EFI_HANDOVER_32/64, EFI_KEXEC, 5LEVEL, 5LEVEL_ENABLED
		InitrdAddrMax:     0x7fffffff,
		KernelAlignment:   0x200000,
		RelocatableKernel: true,
		MinAlignment:      0x15,
		CmdlineSize:       0x7ff,
		PrefAddress:       0x1000000,
		InitSize:          0x3f98000,
		HeaderEnd:         0x26c, // jump EB 6A
		KernelVersion:     "",    // its string is at 0x44c0, past the 16 KiB kept
	}
	if h != want {
		t.Fatalf("header\n got %+v\nwant %+v", h, want)
	}
	if h.SetupSize() != 20480 || h.KernelSize() != 8225280 || h.ProtocolString() != "2.15" {
		t.Fatalf("setup %d, kernel %d, protocol %s", h.SetupSize(), h.KernelSize(), h.ProtocolString())
	}
}

// The committed 16 KiB alone is a truncated kernel, refused with the count
// of missing bytes.
func TestParseSetupHeaderDebianHeadIsTruncated(t *testing.T) {
	_, err := ParseSetupHeader(debianKernelHead(t))
	if !errors.Is(err, ErrTruncated) || !strings.Contains(err.Error(), "8229376 bytes missing") {
		t.Fatalf("err %v", err)
	}
}

func TestParseSetupHeaderKernelVersion(t *testing.T) {
	img := smallKernel(t, put16(hdrKernelVersion, 0x1000))
	copy(img[0x1200:], "6.1.0-57-amd64 (debian-kernel@lists.debian.org) #1\x00")
	h, err := ParseSetupHeader(img)
	if err != nil || h.KernelVersion != "6.1.0-57-amd64 (debian-kernel@lists.debian.org) #1" {
		t.Fatalf("%q %v", h.KernelVersion, err)
	}
	for _, off := range []uint16{0xffff, 0x4fff, 0} { // past the setup code, its last byte, none
		h, err := ParseSetupHeader(smallKernel(t, put16(hdrKernelVersion, off)))
		if err != nil || h.KernelVersion != "" {
			t.Fatalf("kernel_version %#x: %q %v", off, h.KernelVersion, err)
		}
	}
}

// TestParseSetupHeaderRefuses: every refusal names its field.
func TestParseSetupHeaderRefuses(t *testing.T) {
	for _, c := range []struct {
		name string
		img  func(t *testing.T) []byte
		is   error
		want string
	}{
		{"empty", func(t *testing.T) []byte { return nil }, ErrNotBzImage, "too short for a setup header"},
		{"zeros", func(t *testing.T) []byte { return make([]byte, 64<<10) }, ErrNotBzImage, "boot_flag (0x1fe) is 0x0000"},
		{"an ELF file", func(t *testing.T) []byte { return append([]byte("\x7fELF"), make([]byte, 4096)...) }, ErrNotBzImage, "boot_flag"},
		{"no HdrS", func(t *testing.T) []byte { return smallKernel(t, put32(hdrHeader, 0)) }, ErrNotBzImage, `header (0x202) is "\x00\x00\x00\x00"`},
		{"protocol 2.11", func(t *testing.T) []byte { return smallKernel(t, put16(hdrVersion, 0x020b)) }, nil, "version (0x206): boot protocol 2.11 (0x020b) is older than 2.12"},
		{"protocol 2.00", func(t *testing.T) []byte { return smallKernel(t, put16(hdrVersion, 0x0200)) }, nil, "boot protocol 2.00"},
		{"header before init_size", func(t *testing.T) []byte { return smallKernel(t, put8(hdrJump+1, 0x50)) }, nil, "jump (0x200): the setup header ends at 0x252, before init_size"},
		{"header past boot_params' room", func(t *testing.T) []byte { return smallKernel(t, put8(hdrJump+1, 0xff)) }, nil, "ends at 0x301, past its room in boot_params (0x290)"},
		{"header past the file", func(t *testing.T) []byte { return debianKernelHead(t)[:0x260] }, ErrTruncated, "jump (0x200): the setup header ends at 0x26c, past the file's 608 bytes"},
		{"truncated by one byte", func(t *testing.T) []byte { k := smallKernel(t); return k[:len(k)-1] }, ErrTruncated, "setup_sects (39) and syssize (0x100) say 24576: 1 bytes missing"},
		{"truncated setup", func(t *testing.T) []byte { return debianKernelHead(t)[:0x1000] }, ErrTruncated, "8241664 bytes missing"},
		{"syssize 0", func(t *testing.T) []byte { return smallKernel(t, put32(hdrSysSize, 0)) }, nil, "syssize (0x1f4) is 0"},
		{"zImage", func(t *testing.T) []byte { return smallKernel(t, put8(hdrLoadFlags, 0)) }, nil, "loadflags (0x211) is 0x00 without LOADED_HIGH"},
		{"32-bit only", func(t *testing.T) []byte { return smallKernel(t, put16(hdrXLoadFlags, 0x7e)) }, nil, "xloadflags (0x236) is 0x007e without XLF_KERNEL_64: a 32-bit-only kernel"},
		{"alignment 3 MiB", func(t *testing.T) []byte { return smallKernel(t, put32(hdrKernelAlignment, 3<<20)) }, nil, "kernel_alignment (0x230) is 0x300000, want a power of two"},
		{"alignment 0", func(t *testing.T) []byte { return smallKernel(t, put32(hdrKernelAlignment, 0)) }, nil, "kernel_alignment (0x230) is 0x0"},
		{"alignment 2 KiB", func(t *testing.T) []byte { return smallKernel(t, put32(hdrKernelAlignment, 2048)) }, nil, "kernel_alignment (0x230) is 0x800"},
		{"init_size below the code", func(t *testing.T) []byte { return smallKernel(t, put32(hdrInitSize, 0xfff)) }, nil, "init_size (0x260) is 0xfff, less than the 0x1000 bytes"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseSetupHeader(c.img(t))
			if err == nil || !strings.Contains(err.Error(), c.want) || (c.is != nil && !errors.Is(err, c.is)) {
				t.Fatalf("err %v\nwant %q (is %v)", err, c.want, c.is)
			}
		})
	}
}

// TestParseSetupHeaderSetupSectsZero: setup_sects 0 means 4 (boot.rst).
func TestParseSetupHeaderSetupSectsZero(t *testing.T) {
	h, err := ParseSetupHeader(smallKernel(t, put8(hdrSetupSects, 0)))
	if err != nil || h.SetupSects != 4 || h.SetupSize() != 2560 {
		t.Fatalf("%+v %v", h, err)
	}
}

// FuzzParseSetupHeader: whatever the image, no panic; what is accepted
// fits the file and boot_params, and LoadLinux of it into a partition
// neither panics nor writes outside RAM (the fake memory refuses that).
func FuzzParseSetupHeader(f *testing.F) {
	head, err := os.ReadFile(debianHead)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(head) // the real kernel's first 16 KiB: refused as truncated
	// The same header with setup_sects 4 and syssize cut to what the 16 KiB
	// hold: accepted.
	fits := append([]byte(nil), head...)
	fits[hdrSetupSects] = 4
	binary.LittleEndian.PutUint32(fits[hdrSysSize:], (16384-2560)/16)
	f.Add(fits)
	f.Add(head[:0x300])
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := ParseSetupHeader(b)
		if err != nil {
			return
		}
		if h.HeaderEnd > bpHdrAreaEnd || h.HeaderEnd < hdrInitSizeEnd || h.HeaderEnd > len(b) ||
			h.SetupSize()+h.KernelSize() > uint64(len(b)) || h.Version < MinProtocol || h.SetupSects == 0 ||
			uint64(h.InitSize) < h.KernelSize() {
			t.Fatalf("accepted an inconsistent header %+v (file %d bytes)", h, len(b))
		}
		m := newFakeMem(0, 256<<20)
		r, err := LoadLinux(m, Linux{Kernel: b, Initrd: []byte("initrd"), Cmdline: "console=ttyS0"})
		if err != nil {
			return
		}
		load := r.RIP - entry64Offset
		if load < legacyEnd || load < h.PrefAddress || load+uint64(h.InitSize) > IdentityMapSize || r.GPR[x86.RSI] != ZeroPageBase {
			t.Fatalf("entry RIP %#x RSI %#x for %+v", r.RIP, r.GPR[x86.RSI], h)
		}
	})
}
