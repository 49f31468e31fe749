package loader

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"

	"gohv/hv/vcpu"
	"gohv/x86"
)

// Where LoadLinux puts what it writes below 1 MiB (the package doc has the
// whole table). All of it is E820 RAM: the kernel copies boot_params and
// the command line before it allocates memory, and it runs on its own page
// tables and GDT from the decompressor on, so it may reuse these pages.
// None of it lies where the decompressor puts its trampoline (the two pages
// below LowRAMEnd) or in the legacy area above.
const (
	BDAEBDASegment = 0x40e   // BIOS data area: EBDA segment (u16), written 0: no EBDA
	BDABaseMemKiB  = 0x413   // BIOS data area: base memory in KiB (u16), written LowRAMEnd/1024
	GDTBase        = 0x1000  // the boot GDT: null, null, __BOOT_CS (0x10), __BOOT_DS (0x18)
	ZeroPageBase   = 0x7000  // boot_params, 4 KiB
	PageTablesBase = 0x9000  // PML4; the PDPT and four page directories follow, up to 0xF000
	CmdlineBase    = 0x20000 // the NUL-terminated command line
	cmdlineSlot    = 0x10000 // [CmdlineBase, +cmdlineSlot) is the command line's

	// KernelMinBase is the lowest address a relocated kernel is put at
	// when its pref_address is not usable.
	KernelMinBase = 16 << 20
	// IdentityMapSize is how much the boot page tables map, 1:1 with
	// 2 MiB pages. Everything LoadLinux places lies below it.
	IdentityMapSize = 4 << 30

	// __BOOT_CS and __BOOT_DS (arch/x86/include/asm/segment.h; boot.rst
	// "64-bit BOOT PROTOCOL").
	SelBootCS = 0x10
	SelBootDS = 0x18
)

// ErrMemoryTooSmall is returned when the partition's RAM cannot hold the
// kernel's init_size and the initrd; the message says how much it needs.
var ErrMemoryTooSmall = errors.New("partition memory too small")

// Linux is a Linux kernel to boot by the 64-bit boot protocol, with what
// the platform tells it.
type Linux struct {
	Kernel   []byte  // the bzImage file, as distributed (Debian's /boot/vmlinuz-*)
	Initrd   []byte  // may be nil
	Cmdline  string  // at most the kernel's cmdline_size bytes, no NUL
	RSDP     uint64  // guest-physical address of the ACPI RSDP (boot_params.acpi_rsdp_addr), not checked; 0: Linux scans 0xE0000-0xFFFFF
	Reserved []Range // platform ranges to mark in the E820 map (RAM under them is excluded); none below LowRAMEnd
}

// LoadLinux validates the image, lays out the kernel, boot_params (the zero
// page), the command line and the initrd in mem, and returns the register
// state the 64-bit boot protocol requires for VP 0 (boot.rst "64-bit BOOT
// PROTOCOL"): long mode with an identity map of the first 4 GiB, CS =
// __BOOT_CS (64-bit code), DS = ES = SS = __BOOT_DS (flat data), interrupts
// off, RSI = the zero page, RIP = the load address + 0x200.
//
// The kernel image is hostile: it is checked by ParseSetupHeader and every
// address it asks for is checked against mem's RAM before anything is
// written. On an error mem may hold a partial load; the registers are not
// to be used.
func LoadLinux(mem Memory, l Linux) (vcpu.Regs, error) {
	h, err := ParseSetupHeader(l.Kernel)
	if err != nil {
		return vcpu.Regs{}, fmt.Errorf("linux: %w", err)
	}
	p, err := planLinux(mem, h, l)
	if err != nil {
		return vcpu.Regs{}, fmt.Errorf("linux: %w", err)
	}
	if err := writeLinux(mem, h, l, p); err != nil {
		return vcpu.Regs{}, fmt.Errorf("linux: %w", err)
	}
	return linuxRegs(p), nil
}

// linuxPlan is where everything goes.
type linuxPlan struct {
	e820       []Range
	kernel     uint64 // load address = run address
	initrd     uint64 // 0 when there is none
	zeroPage   uint64
	cmdline    uint64
	pageTables uint64
}

func planLinux(mem Memory, h SetupHeader, l Linux) (linuxPlan, error) {
	p := linuxPlan{zeroPage: ZeroPageBase, cmdline: CmdlineBase, pageTables: PageTablesBase}
	if uint64(len(l.Cmdline)) > uint64(h.CmdlineSize) {
		return p, fmt.Errorf("command line is %d bytes; the kernel's cmdline_size (%#x) allows %d", len(l.Cmdline), hdrCmdlineSize, h.CmdlineSize)
	}
	if len(l.Cmdline) >= cmdlineSlot {
		return p, fmt.Errorf("command line is %d bytes; the loader holds at most %d", len(l.Cmdline), cmdlineSlot-1)
	}
	if i := strings.IndexByte(l.Cmdline, 0); i >= 0 {
		return p, fmt.Errorf("command line has a NUL byte at %d", i)
	}
	if !isRAM(mem, 0, legacyEnd) {
		return p, errors.New("the partition has no RAM at [0, 1 MiB): Linux needs low memory for its trampolines, the loader for boot_params and page tables")
	}
	for _, r := range l.Reserved {
		if r.overlaps(0, LowRAMEnd) {
			return p, fmt.Errorf("reserved range %v overlaps low memory [0, %#x), which Linux and the loader use", r, LowRAMEnd)
		}
	}
	var err error
	if p.e820, err = E820(mem, l.Reserved); err != nil {
		return p, fmt.Errorf("memory map: %w", err)
	}
	if p.kernel, err = placeKernel(h, p.e820, uint64(len(l.Initrd))); err != nil {
		return p, err
	}
	if len(l.Initrd) > 0 {
		kernel := Range{GPA: p.kernel, Size: uint64(h.InitSize)}
		if p.initrd, err = placeInitrd(uint64(len(l.Initrd)), h.InitrdAddrMax, kernel, p.e820); err != nil {
			return p, err
		}
	}
	return p, nil
}

// placeKernel picks the load address: pref_address (rounded up to
// kernel_alignment for a relocatable kernel) when [it, +init_size) is RAM
// below 4 GiB, else, for a relocatable kernel, the lowest kernel_alignment-
// aligned address at or above max(pref_address, 16 MiB) that is. The
// decompressor runs the kernel where it was loaded when that is aligned and
// at or above pref_address (LOAD_PHYSICAL_ADDR; compressed/head_64.S
// startup_64), so the load address is also the run address and
// [load, load+init_size) is all the memory the kernel takes before it
// reads the memory map.
func placeKernel(h SetupHeader, e820 []Range, initrd uint64) (uint64, error) {
	size := uint64(h.InitSize)
	align := uint64(h.KernelAlignment)
	fits := func(a uint64) bool {
		if a < legacyEnd || a+size < a || a+size > IdentityMapSize {
			return false
		}
		for _, e := range e820 {
			if e.Type == E820RAM && e.contains(a, size) {
				return true
			}
		}
		return false
	}
	if !h.RelocatableKernel && h.PrefAddress < legacyEnd {
		return 0, fmt.Errorf("pref_address (%#x) is %#x, below 1 MiB, and the kernel is not relocatable", hdrPrefAddress, h.PrefAddress)
	}
	pref := h.PrefAddress
	if h.RelocatableKernel {
		pref = alignUp(pref, align)
	}
	if pref != 0 && fits(pref) {
		return pref, nil
	}
	if h.RelocatableKernel {
		floor := max(h.PrefAddress, KernelMinBase)
		for _, e := range e820 {
			if e.Type != E820RAM || e.End() <= floor {
				continue
			}
			if a := alignUp(max(e.GPA, floor), align); a != 0 && fits(a) {
				return a, nil
			}
		}
	}
	at := max(pref, KernelMinBase)
	if !h.RelocatableKernel {
		at = h.PrefAddress
	}
	need := at + size + alignUp(initrd, x86.PageSize)
	what := "relocatable"
	if !h.RelocatableKernel {
		what = "not relocatable"
	}
	return 0, fmt.Errorf("%w: the kernel (%s, pref_address %#x, kernel_alignment %#x) needs [%#x, %#x) (init_size %#x = %d MiB) in RAM below 4 GiB: give the partition at least %d MiB of RAM%s",
		ErrMemoryTooSmall, what, h.PrefAddress, h.KernelAlignment, at, at+size, h.InitSize, mib(size), mib(need), initrdNote(initrd))
}

// placeInitrd puts the initrd at the highest page-aligned address of the
// lowest RAM entry that holds it below initrd_addr_max, above 1 MiB and
// outside the kernel's [load, load+init_size) (boot.rst: "as high as
// possible"; KASLR keeps the kernel off it).
func placeInitrd(size uint64, addrMax uint32, kernel Range, e820 []Range) (uint64, error) {
	limit := uint64(addrMax) + 1
	for _, e := range e820 {
		if e.Type != E820RAM {
			continue
		}
		lo, hi := max(e.GPA, legacyEnd), min(e.End(), limit)
		if hi <= lo {
			continue
		}
		// The free pieces of [lo, hi) beside the kernel, highest first.
		pieces := [][2]uint64{{lo, hi}}
		if kernel.overlaps(lo, hi-lo) {
			pieces = [][2]uint64{{max(lo, kernel.End()), hi}, {lo, min(hi, kernel.GPA)}}
		}
		for _, pc := range pieces {
			if pc[1] < pc[0] || pc[1]-pc[0] < size {
				continue
			}
			if a := alignDown(pc[1]-size, x86.PageSize); a >= pc[0] {
				return a, nil
			}
		}
	}
	var above, below uint64
	if limit > kernel.End() {
		above = limit - kernel.End()
	}
	if top := min(limit, kernel.GPA); top > legacyEnd {
		below = top - legacyEnd
	}
	room := max(above, below)
	if size > room {
		return 0, fmt.Errorf("initrd too large: %d bytes (%d MiB); below initrd_addr_max (%#x) = %#x and beside the kernel at [%#x, %#x) there are at most %d bytes",
			size, mib(size), hdrInitrdAddrMax, addrMax, kernel.GPA, kernel.End(), room)
	}
	need := kernel.End() + alignUp(size, x86.PageSize)
	return 0, fmt.Errorf("%w: the initrd (%d bytes) fits in no RAM between 1 MiB and initrd_addr_max (%#x) beside the kernel at [%#x, %#x): give the partition at least %d MiB of RAM",
		ErrMemoryTooSmall, size, addrMax, kernel.GPA, kernel.End(), mib(need))
}

func initrdNote(n uint64) string {
	if n == 0 {
		return ""
	}
	return fmt.Sprintf(" (with the %d-byte initrd)", n)
}

func alignUp(v, a uint64) uint64 {
	if v+a-1 < v {
		return 0
	}
	return (v + a - 1) &^ (a - 1)
}

func alignDown(v, a uint64) uint64 { return v &^ (a - 1) }

// mib rounds a byte count up to MiB.
func mib(n uint64) uint64 { return (n + 1<<20 - 1) >> 20 }

// writeLinux writes the plan into mem: the BIOS data area words, the GDT,
// the page tables, the command line, the kernel, the initrd and last the
// zero page. Only the syssize*16 bytes of protected-mode code are written;
// the rest of init_size is the kernel's to clear (the decompressor and the
// kernel zero their own BSS), so a partition's fresh RAM need not be zeroed
// again.
func writeLinux(mem Memory, h SetupHeader, l Linux, p linuxPlan) error {
	var bda [0x20]byte
	binary.LittleEndian.PutUint16(bda[BDAEBDASegment-0x400:], 0)
	binary.LittleEndian.PutUint16(bda[BDABaseMemKiB-0x400:], LowRAMEnd/1024)
	writes := []struct {
		what string
		gpa  uint64
		b    []byte
	}{
		{"BIOS data area", 0x400, bda[:]},
		{"GDT", GDTBase, bootGDT()},
		{"page tables", p.pageTables, identityMap(p.pageTables)},
		{"command line", p.cmdline, append([]byte(l.Cmdline), 0)},
		{"kernel", p.kernel, l.Kernel[h.SetupSize() : h.SetupSize()+h.KernelSize()]},
		{"initrd", p.initrd, l.Initrd},
		{"boot_params", p.zeroPage, zeroPage(h, l, p)},
	}
	for _, w := range writes {
		if len(w.b) == 0 {
			continue
		}
		if err := mem.WriteRAM(w.gpa, w.b); err != nil {
			return fmt.Errorf("writing the %s at %#x: %w", w.what, w.gpa, err)
		}
	}
	return nil
}

// bootGDT is the GDT boot.rst asks for: flat 4 GiB __BOOT_CS (execute/read,
// 64-bit) at 0x10 and __BOOT_DS (read/write) at 0x18.
func bootGDT() []byte {
	gdt := []uint64{0, 0,
		x86.SegmentDescriptor(0, 0xfffff, codeAttrib),
		x86.SegmentDescriptor(0, 0xfffff, dataAttrib)}
	b := make([]byte, 8*len(gdt))
	for i, d := range gdt {
		binary.LittleEndian.PutUint64(b[8*i:], d)
	}
	return b
}

const (
	codeAttrib = x86.SegTypeCodeXRA | x86.SegS | x86.SegP | x86.SegL | x86.SegG
	dataAttrib = x86.SegTypeDataRWA | x86.SegS | x86.SegP | x86.SegDB | x86.SegG
	gdtLimit   = 4*8 - 1
)

// zeroPage builds boot_params: all zero (sentinel 0, screen_info 0: no
// VGA; efi_info 0: not an EFI boot), the image's setup header at 0x1F1 as
// boot.rst says (bytes 0x1F1 up to 0x202 + the jump's offset byte, so the
// image's 0xFF sentinel at 0x1EF is not copied), then the fields a boot
// loader writes.
func zeroPage(h SetupHeader, l Linux, p linuxPlan) []byte {
	zp := make([]byte, bootParamsSize)
	le := binary.LittleEndian
	copy(zp[bpHdr:h.HeaderEnd], l.Kernel[bpHdr:h.HeaderEnd]) // HeaderEnd <= bpHdrAreaEnd and the file's length: ParseSetupHeader

	zp[hdrTypeOfLoader] = typeOfLoaderUndefined
	zp[hdrLoadFlags] &^= loadFlagCanUseHeap // no 16-bit setup runs, no heap_end_ptr
	le.PutUint32(zp[hdrCmdLinePtr:], uint32(p.cmdline))
	le.PutUint32(zp[bpExtCmdLinePtr:], uint32(p.cmdline>>32))
	n := uint64(len(l.Initrd))
	if n == 0 {
		p.initrd = 0
	}
	le.PutUint32(zp[hdrRamdiskImage:], uint32(p.initrd))
	le.PutUint32(zp[hdrRamdiskSize:], uint32(n))
	le.PutUint32(zp[bpExtRamdiskImage:], uint32(p.initrd>>32))
	le.PutUint32(zp[bpExtRamdiskSize:], uint32(n>>32))
	le.PutUint64(zp[bpACPIRSDPAddr:], l.RSDP)
	le.PutUint32(zp[hdrHardwareSubarch:], 0) // X86_SUBARCH_PC
	le.PutUint64(zp[hdrHardwareSubarchData:], 0)
	le.PutUint64(zp[hdrSetupData:], 0)

	zp[bpE820Entries] = uint8(len(p.e820)) // at most E820MaxEntries: checked by E820
	for i, e := range p.e820 {
		b := zp[bpE820Table+e820EntrySize*i:]
		le.PutUint64(b[0:], e.GPA)
		le.PutUint64(b[8:], e.Size)
		le.PutUint32(b[16:], uint32(e.Type))
	}
	return zp
}

// linuxRegs is VP 0 at the 64-bit entry: the RESET state with what boot.rst
// "64-bit BOOT PROTOCOL" requires set. Everything it leaves unset is
// don't-care to the kernel: RSP (startup_64 sets up its own stack before its
// first push), the IDT (limit 0: any exception before the kernel loads its
// own is a triple fault, which ends the partition with a clear reason) and
// the other GPRs (zero).
func linuxRegs(p linuxPlan) vcpu.Regs {
	code := vcpu.Segment{Selector: SelBootCS, Attrib: codeAttrib, Limit: 0xffff_ffff}
	data := vcpu.Segment{Selector: SelBootDS, Attrib: dataAttrib, Limit: 0xffff_ffff}
	r := vcpu.ResetRegs()
	r.RIP = p.kernel + entry64Offset
	r.RFLAGS = x86.RFLAGSFixed // IF = 0
	r.CR0 = x86.CR0PE | x86.CR0ET | x86.CR0NE | x86.CR0PG
	r.CR3 = p.pageTables
	r.CR4 = x86.CR4PAE
	r.EFER = x86.EFERLME | x86.EFERLMA
	r.CS, r.DS, r.ES, r.SS, r.FS, r.GS = code, data, data, data, data, data
	r.TR = vcpu.Segment{Attrib: x86.SegTypeTSSBusy | x86.SegP, Limit: 0x67}
	r.GDTR = vcpu.DescTable{Base: GDTBase, Limit: gdtLimit}
	r.IDTR = vcpu.DescTable{}
	r.GPR[x86.RSI] = p.zeroPage
	return r
}
