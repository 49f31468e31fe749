package loader

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"

	"gohv/hv"
	"gohv/hv/vcpu"
	"gohv/x86"
)

// Multiboot (v1) constants (Multiboot Specification 0.6.96, section 3).
const (
	MultibootHeaderMagic = 0x1badb002
	MultibootBootMagic   = 0x2badb002
	mbSearch             = 8192
	mbFlagAlign          = 1 << 0
	mbFlagMemInfo        = 1 << 1
	mbFlagVideo          = 1 << 2
	mbFlagAddresses      = 1 << 16

	mbInfoMem     = 1 << 0
	mbInfoCmdline = 1 << 2
	mbInfoMmap    = 1 << 6

	// Where the loader puts the boot information for the kernel.
	MultibootInfoBase = 0x9000
	mbCmdlineBase     = 0x9400
	mbMmapBase        = 0x9800
)

// MultibootKernel is a parsed kernel file: what to copy where and where to
// start.
type MultibootKernel struct {
	Segments []MultibootSegment
	Entry    uint32
}

// MultibootSegment is bytes to place at a guest-physical address, followed
// by zeroed memory up to MemSize.
type MultibootSegment struct {
	Addr    uint32
	Data    []byte
	MemSize uint32
}

// ParseMultiboot finds and checks the Multiboot header of a kernel file and
// returns its load plan: the header's address fields when flag 16 is set,
// else the ELF program headers. The file is untrusted input.
func ParseMultiboot(file []byte) (*MultibootKernel, error) {
	off := -1
	for i := 0; i+12 <= len(file) && i < mbSearch; i += 4 {
		if binary.LittleEndian.Uint32(file[i:]) != MultibootHeaderMagic {
			continue
		}
		flags := binary.LittleEndian.Uint32(file[i+4:])
		sum := binary.LittleEndian.Uint32(file[i+8:])
		if MultibootHeaderMagic+flags+sum == 0 {
			off = i
			break
		}
	}
	if off < 0 {
		return nil, errors.New("multiboot: no valid header (magic 0x1BADB002 with a matching checksum) in the first 8 KiB")
	}
	flags := binary.LittleEndian.Uint32(file[off+4:])
	if flags&mbFlagVideo != 0 {
		return nil, errors.New("multiboot: the kernel asks for a video mode; partitions have no display")
	}
	if flags&0xfffc&^mbFlagVideo != 0 {
		return nil, fmt.Errorf("multiboot: unsupported required flags %#x", flags&0xffff)
	}
	if flags&mbFlagAddresses != 0 {
		if off+32 > len(file) {
			return nil, errors.New("multiboot: header truncated before its address fields")
		}
		f := func(i int) uint32 { return binary.LittleEndian.Uint32(file[off+12+4*i:]) }
		hdr, load, loadEnd, bssEnd, entry := f(0), f(1), f(2), f(3), f(4)
		if load > hdr || hdr-load > uint32(off) {
			return nil, fmt.Errorf("multiboot: header_addr %#x / load_addr %#x do not fit the file", hdr, load)
		}
		start := off - int(hdr-load)
		size := len(file) - start
		if loadEnd != 0 {
			if loadEnd < load || uint64(loadEnd-load) > uint64(size) {
				return nil, fmt.Errorf("multiboot: load_end_addr %#x beyond the file", loadEnd)
			}
			size = int(loadEnd - load)
		}
		mem := uint32(size)
		if bssEnd != 0 {
			if bssEnd < load+uint32(size) {
				return nil, fmt.Errorf("multiboot: bss_end_addr %#x before the loaded image ends", bssEnd)
			}
			mem = bssEnd - load
		}
		return &MultibootKernel{Segments: []MultibootSegment{{load, file[start : start+size], mem}}, Entry: entry}, nil
	}
	ef, err := elf.NewFile(bytes.NewReader(file))
	if err != nil {
		return nil, fmt.Errorf("multiboot: no address fields and not ELF: %w", err)
	}
	k := &MultibootKernel{Entry: uint32(ef.Entry)}
	if ef.Entry > 0xffff_ffff {
		return nil, fmt.Errorf("multiboot: ELF entry %#x above 4 GiB", ef.Entry)
	}
	for _, ph := range ef.Progs {
		if ph.Type != elf.PT_LOAD || ph.Memsz == 0 {
			continue
		}
		if ph.Filesz > ph.Memsz || ph.Paddr+ph.Memsz > 1<<32 || ph.Off+ph.Filesz > uint64(len(file)) {
			return nil, fmt.Errorf("multiboot: ELF segment at %#x does not fit", ph.Paddr)
		}
		k.Segments = append(k.Segments, MultibootSegment{uint32(ph.Paddr), file[ph.Off : ph.Off+ph.Filesz], uint32(ph.Memsz)})
	}
	if len(k.Segments) == 0 {
		return nil, errors.New("multiboot: ELF has no loadable segments")
	}
	return k, nil
}

// LoadMultiboot places a kernel in p's RAM, writes the Multiboot
// information (memory sizes, a memory map of the partition's RAM, the
// command line) and sets VP 0 to the state the specification gives: 32-bit
// protected mode, paging off, flat segments, EAX = 0x2BADB002, EBX = the
// information's address, interrupts disabled.
func LoadMultiboot(p *hv.Partition, file []byte, cmdline string) error {
	r, err := loadMultiboot(p.Mem, file, cmdline)
	if err != nil {
		return err
	}
	p.VP(0).SetState(r)
	return nil
}

// loadMultiboot is LoadMultiboot over any Memory: it writes the kernel and
// its information into m and returns VP 0's entry state.
func loadMultiboot(m Memory, file []byte, cmdline string) (vcpu.Regs, error) {
	k, err := ParseMultiboot(file)
	if err != nil {
		return vcpu.Regs{}, err
	}
	for _, s := range k.Segments {
		end := uint64(s.Addr) + uint64(s.MemSize)
		if uint64(s.Addr) < 0x100000 || !isRAM(m, uint64(s.Addr), uint64(s.MemSize)) {
			return vcpu.Regs{}, fmt.Errorf("multiboot: segment %#x-%#x is not in the partition's RAM above 1 MiB", s.Addr, end)
		}
		if err := m.WriteRAM(uint64(s.Addr), s.Data); err != nil {
			return vcpu.Regs{}, fmt.Errorf("multiboot: %w", err)
		}
		if err := m.WriteRAM(uint64(s.Addr)+uint64(len(s.Data)), make([]byte, s.MemSize-uint32(len(s.Data)))); err != nil {
			return vcpu.Regs{}, fmt.Errorf("multiboot: bss: %w", err)
		}
	}
	if !isRAM(m, uint64(k.Entry), 1) {
		return vcpu.Regs{}, fmt.Errorf("multiboot: entry %#x is not in RAM", k.Entry)
	}
	if len(cmdline) > 1023 {
		return vcpu.Regs{}, errors.New("multiboot: command line longer than 1023 bytes")
	}
	if err := m.WriteRAM(mbCmdlineBase, append([]byte(cmdline), 0)); err != nil {
		return vcpu.Regs{}, err
	}
	var mmap []byte
	var upper uint64
	m.RAMRanges(func(gpa, size uint64) {
		if gpa == 0 && size > 0x9f000 {
			mmap = appendMmap(mmap, 0, 0x9f000)
			if size > 0x100000 {
				mmap = appendMmap(mmap, 0x100000, size-0x100000)
				upper = size - 0x100000
			}
			return
		}
		mmap = appendMmap(mmap, gpa, size)
	})
	if len(mmap) > 0x800 {
		return vcpu.Regs{}, errors.New("multiboot: memory map too large")
	}
	if err := m.WriteRAM(mbMmapBase, mmap); err != nil {
		return vcpu.Regs{}, err
	}
	info := make([]byte, 88)
	le := binary.LittleEndian
	le.PutUint32(info[0:], mbInfoMem|mbInfoCmdline|mbInfoMmap)
	le.PutUint32(info[4:], 0x9f000/1024)
	le.PutUint32(info[8:], uint32(upper/1024))
	le.PutUint32(info[16:], mbCmdlineBase)
	le.PutUint32(info[44:], uint32(len(mmap)))
	le.PutUint32(info[48:], mbMmapBase)
	if err := m.WriteRAM(MultibootInfoBase, info); err != nil {
		return vcpu.Regs{}, err
	}
	// Multiboot 1 machine state (spec 3.2): 32-bit protected mode, paging
	// off, flat 4 GiB code and data segments; the rest as after RESET.
	code := vcpu.Segment{Selector: 0x08, Attrib: x86.SegTypeCodeXRA | x86.SegS | x86.SegP | x86.SegDB | x86.SegG, Limit: 0xffff_ffff}
	data := vcpu.Segment{Selector: 0x10, Attrib: x86.SegTypeDataRWA | x86.SegS | x86.SegP | x86.SegDB | x86.SegG, Limit: 0xffff_ffff}
	r := vcpu.ResetRegs()
	r.RIP = uint64(k.Entry)
	r.CR0 = x86.CR0PE | x86.CR0ET
	r.CS, r.DS, r.ES, r.SS, r.FS, r.GS = code, data, data, data, data, data
	r.TR = vcpu.Segment{Attrib: x86.SegTypeTSSBusy | x86.SegP, Limit: 0x67}
	r.GPR[x86.RAX] = MultibootBootMagic
	r.GPR[x86.RBX] = MultibootInfoBase
	return r, nil
}

func appendMmap(b []byte, base, size uint64) []byte {
	e := make([]byte, 24)
	binary.LittleEndian.PutUint32(e[0:], 20)
	binary.LittleEndian.PutUint64(e[4:], base)
	binary.LittleEndian.PutUint64(e[12:], size)
	binary.LittleEndian.PutUint32(e[20:], 1)
	return append(b, e...)
}
