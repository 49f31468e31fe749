// Command mkimage turns the linked gohv ELF into a Multiboot (v1) kernel.
//
// The Go linker lays the file out so that every PT_LOAD segment sits at the
// same (virtual address − file offset) distance; loading the file's first
// bytes linearly at that address is therefore exactly the ELF load. mkimage
// checks that, then writes a Multiboot header with the address fields
// ("a.out kludge", Multiboot Specification 0.6.96 §3.1.3) into the padding
// between the program headers and the first section, so QEMU's -kernel and
// GRUB's multiboot command load the 64-bit ELF without understanding it.
// Two extra words after the header tell the 32-bit entry stub where to go
// (metal/boot_amd64.s):
//
//	header+0x30: address of metal.entry64
//	header+0x34: address of metal.bootScratch rounded up to 4 KiB
//
// Usage: mkimage -in build/gohv.elf -out build/gohv
package main

import (
	"debug/elf"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"os"
)

const (
	headerOffset   = 0x800      // file offset of the Multiboot header
	headerAddr     = 0x1ff800   // where it lands; hard-coded in boot_amd64.s
	header2Offset  = 0x880      // file offset of the Multiboot2 header (8-byte aligned, < 32 KiB)
	mb2Magic       = 0xe85250d6 // Multiboot2 header magic (Multiboot2 Specification §3.1.1)
	mbMagic        = 0x1badb002 // Multiboot v1 header magic
	mbFlagMemInfo  = 1 << 1
	mbFlagAddrs    = 1 << 16
	scratchPages   = 7
	symBoot32      = "gohv/metal.boot32.abi0"
	symEntry64     = "gohv/metal.entry64.abi0"
	symBootScratch = "gohv/metal.bootScratch"
)

func main() {
	in := flag.String("in", "build/gohv.elf", "linked ELF from the Go toolchain")
	out := flag.String("out", "build/gohv", "Multiboot kernel to write")
	flag.Parse()
	if err := run(*in, *out); err != nil {
		fmt.Fprintln(os.Stderr, "mkimage:", err)
		os.Exit(1)
	}
}

// Layout is what mkimage learned from the ELF.
type Layout struct {
	LoadAddr, LoadEnd, BSSEnd uint64
	Boot32, Entry64, Scratch  uint64
	FirstSectionOffset        uint64
}

func run(in, out string) error {
	data, err := os.ReadFile(in)
	if err != nil {
		return err
	}
	f, err := elf.Open(in)
	if err != nil {
		return fmt.Errorf("%s: %w", in, err)
	}
	defer f.Close()
	l, err := inspect(f)
	if err != nil {
		return fmt.Errorf("%s: %w", in, err)
	}
	if err := patch(data, l); err != nil {
		return fmt.Errorf("%s: %w", in, err)
	}
	if err := os.WriteFile(out, data, 0o755); err != nil {
		return err
	}
	fmt.Printf("mkimage: %s: load %#x-%#x bss-end %#x entry %#x (entry64 %#x, scratch %#x), %d bytes loaded\n",
		out, l.LoadAddr, l.LoadEnd, l.BSSEnd, l.Boot32, l.Entry64, l.Scratch, l.LoadEnd-l.LoadAddr)
	return nil
}

func inspect(f *elf.File) (Layout, error) {
	var l Layout
	if f.Class != elf.ELFCLASS64 || f.Machine != elf.EM_X86_64 {
		return l, errors.New("not an x86-64 ELF64 file")
	}
	delta, first := uint64(0), true
	for _, p := range f.Progs {
		if p.Type != elf.PT_LOAD {
			continue
		}
		d := p.Vaddr - p.Off
		if first {
			if p.Off != 0 {
				return l, fmt.Errorf("first PT_LOAD starts at file offset %#x, want 0", p.Off)
			}
			delta, first = d, false
			l.LoadAddr = p.Vaddr
		} else if d != delta {
			return l, fmt.Errorf("PT_LOAD at %#x is not linear with the file (delta %#x, want %#x)", p.Vaddr, d, delta)
		}
		l.LoadEnd = max(l.LoadEnd, p.Vaddr+p.Filesz)
		l.BSSEnd = max(l.BSSEnd, p.Vaddr+p.Memsz)
	}
	if first {
		return l, errors.New("no PT_LOAD segments")
	}
	if l.BSSEnd > 1<<32 {
		return l, fmt.Errorf("image ends at %#x, above 4 GiB: Multiboot v1 cannot load it", l.BSSEnd)
	}
	if l.LoadAddr+headerOffset != headerAddr {
		return l, fmt.Errorf("image loads at %#x; boot_amd64.s expects the header at %#x (link with -T 0x200000)", l.LoadAddr, headerAddr)
	}
	l.FirstSectionOffset = ^uint64(0)
	for _, s := range f.Sections {
		if s.Type != elf.SHT_NULL && s.Offset != 0 && s.Type != elf.SHT_NOBITS {
			l.FirstSectionOffset = min(l.FirstSectionOffset, s.Offset)
		}
	}
	syms, err := f.Symbols()
	if err != nil {
		return l, fmt.Errorf("symbols (do not strip with -s): %w", err)
	}
	var scratchSize uint64
	for _, s := range syms {
		switch s.Name {
		case symBoot32:
			l.Boot32 = s.Value
		case symEntry64:
			l.Entry64 = s.Value
		case symBootScratch:
			l.Scratch, scratchSize = s.Value, s.Size
		}
	}
	for name, v := range map[string]uint64{symBoot32: l.Boot32, symEntry64: l.Entry64, symBootScratch: l.Scratch} {
		if v == 0 {
			return l, fmt.Errorf("symbol %s not found (did the linker drop it?)", name)
		}
	}
	aligned := (l.Scratch + 0xfff) &^ 0xfff
	if aligned+scratchPages*0x1000 > l.Scratch+scratchSize {
		return l, fmt.Errorf("%s (%d bytes at %#x) cannot hold %d aligned pages", symBootScratch, scratchSize, l.Scratch, scratchPages)
	}
	l.Scratch = aligned
	return l, nil
}

// Header builds the 56-byte Multiboot header plus the two stub words.
func Header(l Layout) []byte {
	h := make([]byte, 0x38)
	le := binary.LittleEndian
	flags := uint32(mbFlagMemInfo | mbFlagAddrs)
	le.PutUint32(h[0:], mbMagic)
	le.PutUint32(h[4:], flags)
	le.PutUint32(h[8:], -(mbMagic + flags))
	le.PutUint32(h[12:], headerAddr)
	le.PutUint32(h[16:], uint32(l.LoadAddr))
	le.PutUint32(h[20:], uint32(l.LoadEnd))
	le.PutUint32(h[24:], uint32(l.BSSEnd))
	le.PutUint32(h[28:], uint32(l.Boot32))
	le.PutUint32(h[0x30:], uint32(l.Entry64))
	le.PutUint32(h[0x34:], uint32(l.Scratch))
	return h
}

// Header2 builds the Multiboot2 header: the address tag (load like the v1
// header), the entry-address tag (the same 32-bit stub: it passes EAX/EBX
// through and metal tells the two protocols apart by magic), an
// information request for the command line and memory map, and the end tag.
func Header2(l Layout) []byte {
	le := binary.LittleEndian
	var h []byte
	tag := func(typ, flags uint16, payload ...uint32) {
		t := make([]byte, 8+4*len(payload))
		le.PutUint16(t[0:], typ)
		le.PutUint16(t[2:], flags)
		le.PutUint32(t[4:], uint32(len(t)))
		for i, v := range payload {
			le.PutUint32(t[8+4*i:], v)
		}
		for len(t)%8 != 0 {
			t = append(t, 0)
		}
		h = append(h, t...)
	}
	h = make([]byte, 16)
	tag(1, 0, 1, 6)                                                                                           // information request: cmdline, mmap
	tag(2, 0, headerAddr-headerOffset+header2Offset, uint32(l.LoadAddr), uint32(l.LoadEnd), uint32(l.BSSEnd)) // address
	tag(3, 0, uint32(l.Boot32))                                                                               // entry address (i386)
	tag(0, 0)                                                                                                 // end
	le.PutUint32(h[0:], mb2Magic)
	le.PutUint32(h[4:], 0) // architecture: i386 protected mode
	le.PutUint32(h[8:], uint32(len(h)))
	le.PutUint32(h[12:], -(mb2Magic + uint32(len(h))))
	return h
}

func patch(data []byte, l Layout) error {
	h1, h2 := Header(l), Header2(l)
	if headerOffset+len(h1) > header2Offset {
		return fmt.Errorf("Multiboot header overlaps the Multiboot2 header")
	}
	for _, p := range []struct {
		off int
		h   []byte
	}{{headerOffset, h1}, {header2Offset, h2}} {
		end := uint64(p.off + len(p.h))
		if end > l.FirstSectionOffset || end > uint64(len(data)) {
			return fmt.Errorf("no room for a header at %#x (first section at %#x)", p.off, l.FirstSectionOffset)
		}
		for _, b := range data[p.off:end] {
			if b != 0 {
				return fmt.Errorf("header area at %#x is not padding", p.off)
			}
		}
		copy(data[p.off:], p.h)
	}
	return nil
}
