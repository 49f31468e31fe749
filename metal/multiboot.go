package metal

import (
	"encoding/binary"

	"gohv/metal/physmem"
)

// Multiboot (v1) boot information, Multiboot Specification 0.6.96 §3.3.
const (
	multiboot1Magic = 0x2badb002
	multiboot2Magic = 0x36d76289

	mbFlagMem     = 1 << 0
	mbFlagCmdline = 1 << 2
	mbFlagMmap    = 1 << 6
	mbFlagLoader  = 1 << 9

	// Byte offsets in the boot information structure.
	mbInfoCmdline    = 16
	mbInfoMmapLength = 44
	mbInfoMmapAddr   = 48
	mbInfoLoaderName = 64
)

// bootInfo is what the kernel keeps from the boot loader, copied out of the
// loader's structures before their memory is reused. Pointer-free.
type bootInfo struct {
	loader     [48]byte
	loaderLen  int
	cmdline    [1024]byte
	cmdlineLen int
	mmapCount  int
	mmapSource mmapSource // which structure the memory map came from
	rsdp       [36]byte   // ACPI RSDP copied from a Multiboot2 tag
	rsdpLen    int
	ram        physmem.Map
	reserved   physmem.Map // firmware-reserved ranges, for the console report

	modules     [maxBootModules]bootModule // modules.go
	moduleCount int
	moduleFault moduleFault // the first bad module, reported once the image's bounds are known
}

func (b *bootInfo) cmdlineBytes() []byte { return b.cmdline[:b.cmdlineLen] }

// physWindow reads boot structures through a byte window onto physical
// memory: mem[i] is physical address base+i. All reads are bounds-checked, so
// a corrupt pointer from the loader yields an error, not a fault.
type physWindow struct {
	mem  []byte
	base uint64
}

func (w physWindow) slice(pa, n uint64) ([]byte, bool) {
	if pa < w.base || n > uint64(len(w.mem)) || pa-w.base > uint64(len(w.mem))-n {
		return nil, false
	}
	off := pa - w.base
	return w.mem[off : off+n], true
}

func (w physWindow) u32(pa uint64) (uint32, bool) {
	b, ok := w.slice(pa, 4)
	if !ok {
		return 0, false
	}
	return binary.LittleEndian.Uint32(b), true
}

// cstring copies the NUL-terminated string at pa into dst (truncating).
func (w physWindow) cstring(pa uint64, dst []byte) (int, bool) {
	n := 0
	for n < len(dst) {
		b, ok := w.slice(pa+uint64(n), 1)
		if !ok {
			return n, false
		}
		if b[0] == 0 {
			break
		}
		dst[n] = b[0]
		n++
	}
	return n, true
}

// parseMultiboot1Cmdline copies the command line and loader name. Returns a
// reason on failure, "" on success.
func parseMultiboot1Cmdline(w physWindow, info uint64, bi *bootInfo) string {
	flags, ok := w.u32(info)
	if !ok {
		return "boot information structure outside memory"
	}
	if flags&mbFlagCmdline != 0 {
		p, _ := w.u32(info + mbInfoCmdline)
		n, ok := w.cstring(uint64(p), bi.cmdline[:])
		if !ok {
			return "command line outside memory"
		}
		bi.cmdlineLen = n
	}
	if flags&mbFlagLoader != 0 {
		p, _ := w.u32(info + mbInfoLoaderName)
		bi.loaderLen, _ = w.cstring(uint64(p), bi.loader[:])
	}
	return ""
}

// parseMultiboot1Mmap reads the memory map (flags bit 6). A missing map, or a
// map whose length does not hold whole entries, is an error: the kernel must
// know where RAM and firmware reservations are before it allocates a page.
// Runs before the Go runtime; must not allocate.
func parseMultiboot1Mmap(w physWindow, info uint64, bi *bootInfo, inject injectFlags) string {
	flags, ok := w.u32(info)
	if !ok {
		return "memory map: boot information structure outside memory"
	}
	if inject.hideMmap() {
		flags &^= mbFlagMmap
	}
	if flags&mbFlagMmap == 0 {
		return "memory map: the boot loader passed none (Multiboot flags bit 6 clear)"
	}
	length, _ := w.u32(info + mbInfoMmapLength)
	addr, _ := w.u32(info + mbInfoMmapAddr)
	length = uint32(inject.truncateMmap(uint64(length)))
	if length == 0 {
		return "memory map: empty"
	}
	if _, ok := w.slice(uint64(addr), uint64(length)); !ok {
		return "memory map: buffer outside memory"
	}
	// Each entry: size u32 (not counting itself), base u64, length u64, type u32.
	var mm physmem.MemoryMap
	off := uint64(0)
	for off < uint64(length) {
		if uint64(length)-off < 4 {
			return "memory map: truncated (trailing bytes after the last entry)"
		}
		size, _ := w.u32(uint64(addr) + off)
		if size < 20 || uint64(size) > uint64(length)-off-4 {
			return "memory map: truncated (an entry runs past the map's length)"
		}
		e, _ := w.slice(uint64(addr)+off+4, 20)
		mm.Add(binary.LittleEndian.Uint64(e[0:]), binary.LittleEndian.Uint64(e[8:]), binary.LittleEndian.Uint32(e[16:]))
		bi.mmapCount++
		off += uint64(size) + 4
	}
	bi.mmapSource = mmapMultiboot1
	// Reserved wins wherever entries overlap; partial pages are reserved.
	if !mm.Build(&bi.ram) {
		kputs("gohv: metal: memory map has more ranges than the kernel tracks; some RAM is left unused\n")
	}
	mm.Reserved(&bi.reserved)
	if bi.ram.Total() == 0 {
		return "memory map: no usable RAM"
	}
	return ""
}

// mmapSource names the boot structure a memory map was read from.
type mmapSource uint8

const (
	mmapNone mmapSource = iota
	mmapMultiboot1
	mmapMultiboot2
	mmapMultiboot2EFI
)

func (m mmapSource) String() string {
	switch m {
	case mmapMultiboot1:
		return "Multiboot memory map"
	case mmapMultiboot2:
		return "Multiboot2 memory map"
	case mmapMultiboot2EFI:
		return "Multiboot2 EFI memory map"
	}
	return "no memory map"
}
