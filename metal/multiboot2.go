package metal

import (
	"encoding/binary"

	"gohv/metal/physmem"
)

// Multiboot2 boot information (Multiboot2 Specification 1.0, §3.6): a
// total size, then 8-byte-aligned tags {type u32, size u32, payload}.
const (
	mb2TagEnd        = 0
	mb2TagCmdline    = 1
	mb2TagLoaderName = 2
	mb2TagMmap       = 6
	mb2TagACPIOld    = 14
	mb2TagACPINew    = 15
	mb2TagEFIMmap    = 17

	// UEFI 2.10 §7.2 EFI_MEMORY_TYPE values usable once boot services end.
	efiLoaderCode         = 1
	efiLoaderData         = 2
	efiBootServicesCode   = 3
	efiBootServicesData   = 4
	efiConventionalMemory = 7
)

// parseMultiboot2 copies the command line, loader name, memory map, ACPI
// RSDP and boot modules (modules.go) out of the tags. Returns a reason on failure, "" on success. Runs
// before the Go runtime; must not allocate.
func parseMultiboot2(w physWindow, info uint64, bi *bootInfo, inject injectFlags) string {
	total, ok := w.u32(info)
	if !ok || total < 16 {
		return "boot information (Multiboot2) outside memory or too short"
	}
	if _, ok := w.slice(info, uint64(total)); !ok {
		return "boot information (Multiboot2) runs outside memory"
	}
	var mm physmem.MemoryMap
	var efi physmem.MemoryMap
	haveMmap, haveEFI := false, false
	for off := uint64(8); off+8 <= uint64(total); {
		typ, _ := w.u32(info + off)
		size, _ := w.u32(info + off + 4)
		if size < 8 || uint64(size) > uint64(total)-off {
			return "boot information (Multiboot2): a tag runs past the structure"
		}
		tag, _ := w.slice(info+off, uint64(size))
		switch typ {
		case mb2TagEnd:
			off = uint64(total)
			continue
		case mb2TagCmdline:
			bi.cmdlineLen = copyCString(bi.cmdline[:], tag[8:])
		case mb2TagLoaderName:
			bi.loaderLen = copyCString(bi.loader[:], tag[8:])
		case mb2TagModule:
			mb2Module(tag, bi)
		case mb2TagACPIOld, mb2TagACPINew:
			if typ == mb2TagACPINew || bi.rsdpLen == 0 {
				bi.rsdpLen = copy(bi.rsdp[:], tag[8:])
			}
		case mb2TagMmap:
			if inject.hideMmap() {
				break
			}
			if r := mb2Mmap(tag, &mm, bi, inject); r != "" {
				return r
			}
			haveMmap = true
		case mb2TagEFIMmap:
			if inject.hideMmap() {
				break
			}
			if r := mb2EFIMmap(tag, &efi); r != "" {
				return r
			}
			haveEFI = true
		}
		off += (uint64(size) + 7) &^ 7
	}
	switch {
	case haveMmap:
		bi.mmapSource = mmapMultiboot2
	case haveEFI:
		mm = efi
		bi.mmapSource = mmapMultiboot2EFI
	default:
		return "memory map: the boot loader passed none (no Multiboot2 memory-map tag)"
	}
	if !mm.Build(&bi.ram) {
		kputs("gohv: metal: memory map has more ranges than the kernel tracks; some RAM is left unused\n")
	}
	mm.Reserved(&bi.reserved)
	if bi.ram.Total() == 0 {
		return "memory map: no usable RAM"
	}
	return ""
}

// mb2Mmap reads tag type 6: entry_size, entry_version, then entries of
// {base u64, length u64, type u32, reserved u32}.
func mb2Mmap(tag []byte, mm *physmem.MemoryMap, bi *bootInfo, inject injectFlags) string {
	if len(tag) < 16 {
		return "memory map: truncated (Multiboot2 tag shorter than its header)"
	}
	esize := uint64(binary.LittleEndian.Uint32(tag[8:]))
	body := tag[16:]
	body = body[:inject.truncateMmap(uint64(len(body)))]
	if esize < 24 || uint64(len(body))%esize != 0 {
		return "memory map: truncated (Multiboot2 entries do not fill the tag)"
	}
	for e := uint64(0); e+esize <= uint64(len(body)); e += esize {
		x := body[e:]
		mm.Add(binary.LittleEndian.Uint64(x[0:]), binary.LittleEndian.Uint64(x[8:]), binary.LittleEndian.Uint32(x[16:]))
		bi.mmapCount++
	}
	return ""
}

// mb2EFIMmap reads tag type 17: descriptor_size, descriptor_version, then
// EFI_MEMORY_DESCRIPTORs {type u32, pad, phys u64, virt u64, pages u64, attr u64}.
func mb2EFIMmap(tag []byte, mm *physmem.MemoryMap) string {
	if len(tag) < 16 {
		return "memory map: truncated (EFI memory-map tag shorter than its header)"
	}
	dsize := uint64(binary.LittleEndian.Uint32(tag[8:]))
	body := tag[16:]
	if dsize < 40 || uint64(len(body))%dsize != 0 {
		return "memory map: truncated (EFI descriptors do not fill the tag)"
	}
	for e := uint64(0); e+dsize <= uint64(len(body)); e += dsize {
		x := body[e:]
		typ := uint32(physmem.TypeReserved)
		switch binary.LittleEndian.Uint32(x[0:]) {
		case efiLoaderCode, efiLoaderData, efiBootServicesCode, efiBootServicesData, efiConventionalMemory:
			typ = physmem.TypeUsable
		}
		pages := binary.LittleEndian.Uint64(x[24:])
		if pages > 1<<40 {
			return "memory map: an EFI descriptor covers more than 2^52 bytes"
		}
		mm.Add(binary.LittleEndian.Uint64(x[8:]), pages*pageSize, typ)
	}
	return ""
}

func copyCString(dst, src []byte) int {
	n := 0
	for n < len(dst) && n < len(src) && src[n] != 0 {
		dst[n] = src[n]
		n++
	}
	return n
}
