package loader

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"testing"

	"gohv/hv/emul"
	"gohv/hv/vcpu"
	"gohv/x86"
)

// pattern is n bytes that differ from page to page.
func pattern(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = seed + byte(i) + byte(i>>12)
	}
	return b
}

// platform is what a partition's ACPI and device models would reserve.
var platform = []Range{
	{0xe0000, 0x20000, E820ACPI},       // RSDP and tables in the legacy area
	{0xfec00000, 0x1000, E820Reserved}, // IOAPIC
	{0xfee00000, 0x1000, E820Reserved}, // local APIC
}

// TestLoadLinuxDebian loads Debian's kernel header (the code zeros) with an
// initrd into 256 MiB and checks every byte the kernel reads.
func TestLoadLinuxDebian(t *testing.T) {
	kernel := debianKernel(t)
	copy(kernel[20480:], "startup_32")
	copy(kernel[20480+0x200:], "startup_64")
	kernel[20480+8225280-1] = 0x5a
	initrd := pattern(3<<20+123, 7)
	const cmdline = "console=ttyS0 panic=-1 quiet"
	m := newFakeMem(0, 256*mib1)
	r, err := LoadLinux(m, Linux{Kernel: kernel, Initrd: initrd, Cmdline: cmdline, RSDP: 0xe0000, Reserved: platform})
	if err != nil {
		t.Fatal(err)
	}

	// The protected-mode code at pref_address, the setup sectors dropped.
	const load = 0x1000000
	if got := m.read(load, 10); string(got) != "startup_32" {
		t.Fatalf("kernel at %#x: %q", load, got)
	}
	if got := m.read(load+0x200, 10); string(got) != "startup_64" {
		t.Fatalf("64-bit entry: %q", got)
	}
	if got := m.read(load+8225280-1, 2); got[0] != 0x5a || got[1] != 0 {
		t.Fatalf("kernel end: % x", got)
	}

	// The initrd at the top of RAM, page-aligned.
	wantInitrd := uint64(256*mib1-len(initrd)) &^ 0xfff
	if !bytes.Equal(m.read(wantInitrd, len(initrd)), initrd) {
		t.Fatalf("initrd not at %#x", wantInitrd)
	}
	if got := m.read(CmdlineBase, len(cmdline)+1); string(got) != cmdline+"\x00" {
		t.Fatalf("command line %q", got)
	}
	if m.u16(BDAEBDASegment) != 0 || m.u16(BDABaseMemKiB) != 636 {
		t.Fatalf("BDA: EBDA %#x, base memory %d KiB", m.u16(BDAEBDASegment), m.u16(BDABaseMemKiB))
	}

	// boot_params.
	zp := m.read(ZeroPageBase, bootParamsSize)
	le := binary.LittleEndian
	for _, c := range []struct {
		name      string
		got, want uint64
	}{
		{"acpi_rsdp_addr", le.Uint64(zp[0x070:]), 0xe0000},
		{"ext_ramdisk_image", uint64(le.Uint32(zp[0x0c0:])), 0},
		{"ext_ramdisk_size", uint64(le.Uint32(zp[0x0c4:])), 0},
		{"ext_cmd_line_ptr", uint64(le.Uint32(zp[0x0c8:])), 0},
		{"e820_entries", uint64(zp[0x1e8]), 6},
		{"sentinel", uint64(zp[0x1ef]), 0},
		{"hdr.setup_sects", uint64(zp[0x1f1]), 0x27},
		{"hdr.boot_flag", uint64(le.Uint16(zp[0x1fe:])), 0xaa55},
		{"hdr.header", uint64(le.Uint32(zp[0x202:])), 0x53726448},
		{"hdr.version", uint64(le.Uint16(zp[0x206:])), 0x020f},
		{"hdr.type_of_loader", uint64(zp[0x210]), 0xff},
		{"hdr.loadflags", uint64(zp[0x211]), 0x01},
		{"hdr.ramdisk_image", uint64(le.Uint32(zp[0x218:])), wantInitrd},
		{"hdr.ramdisk_size", uint64(le.Uint32(zp[0x21c:])), uint64(len(initrd))},
		{"hdr.cmd_line_ptr", uint64(le.Uint32(zp[0x228:])), CmdlineBase},
		{"hdr.kernel_alignment", uint64(le.Uint32(zp[0x230:])), 0x200000},
		{"hdr.cmdline_size", uint64(le.Uint32(zp[0x238:])), 0x7ff},
		{"hdr.hardware_subarch", uint64(le.Uint32(zp[0x23c:])), 0},
		{"hdr.setup_data", le.Uint64(zp[0x250:]), 0},
		{"hdr.pref_address", le.Uint64(zp[0x258:]), 0x1000000},
		{"hdr.init_size", uint64(le.Uint32(zp[0x260:])), 0x3f98000},
	} {
		if c.got != c.want {
			t.Errorf("boot_params %s = %#x, want %#x", c.name, c.got, c.want)
		}
	}
	// Everything outside the header and the fields written is zero: the
	// image's sentinel (0xFF at 0x1EF) and whatever lies beyond the header
	// end (0x26C) were not copied.
	written := map[int]bool{}
	for _, f := range [][2]int{{0x070, 8}, {0x1e8, 1}, {0x1f1, 0x26c - 0x1f1}, {0x2d0, 6 * 20}} {
		for i := range f[1] {
			written[f[0]+i] = true
		}
	}
	for i, b := range zp {
		if b != 0 && !written[i] {
			t.Fatalf("boot_params byte %#x is %#x", i, b)
		}
	}
	// The header is the image's, except the fields a loader writes.
	hdr := append([]byte(nil), kernel[0x1f1:0x26c]...)
	hdr[0x210-0x1f1] = 0xff
	copy(hdr[0x218-0x1f1:], zp[0x218:0x220])
	copy(hdr[0x228-0x1f1:], zp[0x228:0x22c])
	if !bytes.Equal(zp[0x1f1:0x26c], hdr) {
		t.Fatalf("setup header in boot_params differs from the image's")
	}

	var e820 []Range
	for i := range int(zp[0x1e8]) {
		e := zp[0x2d0+20*i:]
		e820 = append(e820, Range{le.Uint64(e), le.Uint64(e[8:]), E820Type(le.Uint32(e[16:]))})
	}
	want := []Range{
		{0, 0x9f000, E820RAM},
		{0x9f000, 0x41000, E820Reserved},
		{0xe0000, 0x20000, E820ACPI},
		{mib1, 255 * mib1, E820RAM},
		{0xfec00000, 0x1000, E820Reserved},
		{0xfee00000, 0x1000, E820Reserved},
	}
	if fmt.Sprint(e820) != fmt.Sprint(want) {
		t.Errorf("e820\n got %v\nwant %v", e820, want)
	}

	checkEntryState(t, r, load)
	checkIdentityMap(t, m, r, []uint64{
		0, 0x40e, GDTBase, ZeroPageBase, ZeroPageBase + 0xfff, CmdlineBase, CmdlineBase + 2047,
		0x9d000, 0x9efff, // the decompressor's trampoline
		0xe0000, // the RSDP
		load, load + 0x200, load + 0x3f98000 - 1,
		wantInitrd, wantInitrd + uint64(len(initrd)) - 1,
		IdentityMapSize - 1,
	})
}

// checkEntryState wants the 64-bit boot protocol's entry state.
func checkEntryState(t *testing.T, r vcpu.Regs, load uint64) {
	t.Helper()
	code64 := x86.SegTypeCodeXRA | x86.SegS | x86.SegP | x86.SegL | x86.SegG
	flat := x86.SegTypeDataRWA | x86.SegS | x86.SegP | x86.SegDB | x86.SegG
	for _, c := range []struct {
		name      string
		got, want uint64
	}{
		{"RIP", r.RIP, load + 0x200},
		{"RSI", r.GPR[x86.RSI], ZeroPageBase},
		{"RFLAGS", r.RFLAGS, x86.RFLAGSFixed},
		{"CR0 PE|PG", r.CR0 & (x86.CR0PE | x86.CR0PG), x86.CR0PE | x86.CR0PG},
		{"CR0 CD|NW", r.CR0 & (x86.CR0CD | x86.CR0NW), 0},
		{"CR3", r.CR3, PageTablesBase},
		{"CR4", r.CR4, x86.CR4PAE},
		{"EFER", r.EFER, x86.EFERLME | x86.EFERLMA},
		{"CS", uint64(r.CS.Selector), 0x10},
		{"CS attributes", uint64(r.CS.Attrib), uint64(code64)},
		{"DS", uint64(r.DS.Selector), 0x18},
		{"ES", uint64(r.ES.Selector), 0x18},
		{"SS", uint64(r.SS.Selector), 0x18},
		{"SS attributes", uint64(r.SS.Attrib), uint64(flat)},
		{"DS base", r.DS.Base, 0},
		{"DS limit", uint64(r.DS.Limit), 0xffff_ffff},
		{"GDTR base", r.GDTR.Base, GDTBase},
		{"GDTR limit", uint64(r.GDTR.Limit), 0x1f},
		{"IDTR limit", uint64(r.IDTR.Limit), 0},
		{"TR type", uint64(r.TR.Attrib & x86.SegTypeMask), x86.SegTypeTSSBusy},
		{"PAT", r.PAT, x86.PATReset},
	} {
		if c.got != c.want {
			t.Errorf("%s = %#x, want %#x", c.name, c.got, c.want)
		}
	}
	if !r.LongMode() || r.CPL() != 0 || r.RFLAGS&x86.RFLAGSIF != 0 {
		t.Errorf("not CPL 0 long mode with interrupts off: %+v", r)
	}
}

// checkIdentityMap walks the loader's page tables with the core's walker
// (as the CPU would on the first fetch and access) and wants every address
// translated to itself, writable and executable.
func checkIdentityMap(t *testing.T, m *fakeMem, r vcpu.Regs, addrs []uint64) {
	t.Helper()
	pg := emul.Paging{CR0: r.CR0, CR3: r.CR3, CR4: r.CR4, EFER: r.EFER, MaxPhysAddr: 48}
	read := func(gpa uint64) (uint64, error) {
		var b [8]byte
		err := m.ReadRAM(gpa, b[:])
		return binary.LittleEndian.Uint64(b[:]), err
	}
	for _, la := range addrs {
		for _, acc := range []emul.Access{emul.AccessRead, emul.AccessWrite, emul.AccessFetch} {
			gpa, err := pg.Walk(la, acc, read)
			if err != nil || gpa != la {
				t.Errorf("walk %#x (access %#x): %#x, %v", la, acc, gpa, err)
			}
		}
	}
	if gpa, err := pg.Walk(IdentityMapSize, emul.AccessRead, read); err == nil {
		t.Errorf("%#x beyond the identity map translates to %#x", uint64(IdentityMapSize), gpa)
	}
	// The GDT the selectors point into.
	for sel, want := range map[uint16]uint16{SelBootCS: codeAttrib, SelBootDS: dataAttrib} {
		d := m.u64(r.GDTR.Base + uint64(sel))
		if x86.DescriptorAttrib(d) != want || x86.DescriptorBase(d) != 0 || x86.DescriptorLimit(d) != 0xfffff {
			t.Errorf("GDT[%#x] = %#x", sel, d)
		}
	}
	if m.u64(GDTBase) != 0 || m.u64(GDTBase+8) != 0 {
		t.Error("GDT entries 0 and 1 must be null")
	}
}

// TestLoadLinuxPlacement: where the kernel and the initrd go as RAM,
// reserved ranges and the header's limits vary.
func TestLoadLinuxPlacement(t *testing.T) {
	const initSize = 0x3f98000
	for _, c := range []struct {
		name       string
		ram        []uint64
		reserved   []Range
		mut        []func([]byte)
		initrd     int
		wantKernel uint64
		wantInitrd uint64
	}{
		{
			name: "pref_address, initrd at the top of RAM", ram: []uint64{0, 128 * mib1},
			initrd: 5 * mib1, wantKernel: 16 * mib1, wantInitrd: 123 * mib1,
		},
		{
			name: "large RAM: initrd below initrd_addr_max (2 GiB)", ram: []uint64{0, 3 * gib1, 4 * gib1, 4 * gib1},
			initrd: 10*mib1 + 1, wantKernel: 16 * mib1, wantInitrd: 2*gib1 - 10*mib1 - 4096,
		},
		{
			name: "initrd_addr_max 4 GiB - 1: the top of the RAM below the hole", ram: []uint64{0, 3 * gib1, 4 * gib1, 4 * gib1},
			mut:    []func([]byte){put32(hdrInitrdAddrMax, 0xffffffff)},
			initrd: 4096, wantKernel: 16 * mib1, wantInitrd: 3*gib1 - 4096,
		},
		{
			name: "no room above the kernel: the initrd goes below it", ram: []uint64{0, 16*mib1 + initSize + 2*mib1},
			initrd: 10 * mib1, wantKernel: 16 * mib1, wantInitrd: 6 * mib1,
		},
		{
			name: "pref_address reserved: the next 2 MiB-aligned RAM above it; the initrd in the lowest range that holds it", ram: []uint64{0, 256 * mib1},
			reserved: []Range{{16 * mib1, 0x1000, E820Reserved}},
			initrd:   mib1, wantKernel: 18 * mib1, wantInitrd: 15 * mib1,
		},
		{
			name: "pref_address in a hole: the next RAM range, aligned", ram: []uint64{0, 8 * mib1, 33*mib1 + 0x1000, 128 * mib1},
			initrd: mib1, wantKernel: 34 * mib1, wantInitrd: 7 * mib1,
		},
		{
			name: "unaligned pref_address of a relocatable kernel is rounded up", ram: []uint64{0, 256 * mib1},
			mut:    []func([]byte){put64(hdrPrefAddress, 0x1100000)},
			initrd: 0, wantKernel: 18 * mib1,
		},
		{
			name: "a non-relocatable kernel runs at pref_address, aligned or not", ram: []uint64{0, 256 * mib1},
			mut:    []func([]byte){put8(hdrRelocatableKernel, 0), put64(hdrPrefAddress, 0x1100000)},
			initrd: 0, wantKernel: 0x1100000,
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			m := newFakeMem(c.ram...)
			var initrd []byte
			if c.initrd > 0 {
				initrd = pattern(c.initrd, 3)
			}
			r, err := LoadLinux(m, Linux{Kernel: smallKernel(t, c.mut...), Initrd: initrd, Cmdline: "x", Reserved: c.reserved})
			if err != nil {
				t.Fatal(err)
			}
			if r.RIP != c.wantKernel+0x200 {
				t.Errorf("kernel at %#x, want %#x", r.RIP-0x200, c.wantKernel)
			}
			if m.read(c.wantKernel, 1)[0] != 0xe9 {
				t.Errorf("no kernel code at %#x", c.wantKernel)
			}
			if got := uint64(m.u32(ZeroPageBase + hdrRamdiskImage)); got != c.wantInitrd {
				t.Errorf("initrd at %#x, want %#x", got, c.wantInitrd)
			}
			if c.initrd > 0 && !bytes.Equal(m.read(c.wantInitrd, c.initrd), initrd) {
				t.Errorf("initrd bytes not at %#x", c.wantInitrd)
			}
			if got := m.u32(ZeroPageBase + hdrRamdiskSize); got != uint32(c.initrd) {
				t.Errorf("ramdisk_size %d", got)
			}
		})
	}
}

// TestLoadLinuxRefuses: each refusal says what is wrong and, for memory,
// how much is needed.
func TestLoadLinuxRefuses(t *testing.T) {
	const initSize = 0x3f98000 // Debian's: 63.6 MiB from 16 MiB on
	for _, c := range []struct {
		name string
		mem  []uint64
		l    func(t *testing.T) Linux
		is   error
		want string
	}{
		{"not a bzImage", []uint64{0, 256 * mib1}, func(t *testing.T) Linux { return Linux{Kernel: []byte("\x7fELF\x02\x01\x01")} },
			ErrNotBzImage, "linux: bzimage:"},
		{"old protocol", []uint64{0, 256 * mib1}, func(t *testing.T) Linux { return Linux{Kernel: smallKernel(t, put16(hdrVersion, 0x020a))} },
			nil, "boot protocol 2.10 (0x020a) is older than 2.12"},
		{"truncated", []uint64{0, 256 * mib1}, func(t *testing.T) Linux { return Linux{Kernel: debianKernelHead(t)} },
			ErrTruncated, "8229376 bytes missing"},
		{"32-bit only", []uint64{0, 256 * mib1}, func(t *testing.T) Linux { return Linux{Kernel: smallKernel(t, put16(hdrXLoadFlags, 0))} },
			nil, "32-bit-only kernel"},
		{"too little memory", []uint64{0, 64 * mib1}, func(t *testing.T) Linux { return Linux{Kernel: smallKernel(t)} },
			ErrMemoryTooSmall, "needs [0x1000000, 0x4f98000) (init_size 0x3f98000 = 64 MiB) in RAM below 4 GiB: give the partition at least 80 MiB of RAM"},
		{"too little memory with an initrd", []uint64{0, 64 * mib1}, func(t *testing.T) Linux { return Linux{Kernel: smallKernel(t), Initrd: make([]byte, 20*mib1)} },
			ErrMemoryTooSmall, "at least 100 MiB of RAM (with the 20971520-byte initrd)"},
		{"no room for the initrd", []uint64{0, 16*mib1 + initSize + 2*mib1}, func(t *testing.T) Linux { return Linux{Kernel: smallKernel(t), Initrd: make([]byte, 20*mib1)} },
			ErrMemoryTooSmall, "the initrd (20971520 bytes) fits in no RAM between 1 MiB and initrd_addr_max (0x7fffffff) beside the kernel at [0x1000000, 0x4f98000): give the partition at least 100 MiB"},
		{"initrd too large for initrd_addr_max", []uint64{0, 256 * mib1}, func(t *testing.T) Linux {
			return Linux{Kernel: smallKernel(t, put32(hdrInitrdAddrMax, 96*mib1-1)), Initrd: make([]byte, 20*mib1)}
		}, nil, "initrd too large: 20971520 bytes (20 MiB); below initrd_addr_max (0x22c) = 0x5ffffff and beside the kernel at [0x1000000, 0x4f98000) there are at most 17203200 bytes"},
		{"non-relocatable kernel, pref_address not RAM", []uint64{0, 8 * mib1, 32 * mib1, 128 * mib1}, func(t *testing.T) Linux {
			return Linux{Kernel: smallKernel(t, put8(hdrRelocatableKernel, 0))}
		}, ErrMemoryTooSmall, "the kernel (not relocatable, pref_address 0x1000000"},
		{"pref_address below 1 MiB, not relocatable", []uint64{0, 256 * mib1}, func(t *testing.T) Linux {
			return Linux{Kernel: smallKernel(t, put8(hdrRelocatableKernel, 0), put64(hdrPrefAddress, 0x10000), put32(hdrInitSize, 0x2000))}
		}, nil, "pref_address (0x258) is 0x10000, below 1 MiB"},
		{"kernel above 4 GiB only", []uint64{0, 16 * mib1, 4 * gib1, gib1}, func(t *testing.T) Linux { return Linux{Kernel: smallKernel(t)} },
			ErrMemoryTooSmall, "below 4 GiB"},
		{"command line too long", []uint64{0, 256 * mib1}, func(t *testing.T) Linux { return Linux{Kernel: smallKernel(t), Cmdline: strings.Repeat("x", 2048)} },
			nil, "command line is 2048 bytes; the kernel's cmdline_size (0x238) allows 2047"},
		{"command line past the loader's slot", []uint64{0, 256 * mib1}, func(t *testing.T) Linux {
			return Linux{Kernel: smallKernel(t, put32(hdrCmdlineSize, 1<<20)), Cmdline: strings.Repeat("x", 0x10000)}
		}, nil, "command line is 65536 bytes; the loader holds at most 65535"},
		{"NUL in the command line", []uint64{0, 256 * mib1}, func(t *testing.T) Linux { return Linux{Kernel: smallKernel(t), Cmdline: "a\x00b"} },
			nil, "command line has a NUL byte at 1"},
		{"no low memory", []uint64{mib1, 256 * mib1}, func(t *testing.T) Linux { return Linux{Kernel: smallKernel(t)} },
			nil, "no RAM at [0, 1 MiB)"},
		{"a reserved range in low memory", []uint64{0, 256 * mib1}, func(t *testing.T) Linux {
			return Linux{Kernel: smallKernel(t), Reserved: []Range{{0x9e000, 0x2000, E820ACPI}}}
		}, nil, "reserved range [0x9e000, 0xa0000) ACPI overlaps low memory [0, 0x9f000)"},
		{"memory map too large", []uint64{0, 256 * mib1}, func(t *testing.T) Linux {
			var rs []Range
			for i := range uint64(70) {
				rs = append(rs, Range{128*mib1 + 2*i*0x1000, 0x1000, E820Reserved})
			}
			return Linux{Kernel: smallKernel(t), Reserved: rs}
		}, ErrE820TooLarge, "linux: memory map: 143 entries"},
	} {
		t.Run(c.name, func(t *testing.T) {
			m := newFakeMem(c.mem...)
			_, err := LoadLinux(m, c.l(t))
			if err == nil || !strings.Contains(err.Error(), c.want) || (c.is != nil && !errors.Is(err, c.is)) {
				t.Fatalf("err %v\nwant %q (is %v)", err, c.want, c.is)
			}
			if len(m.pages) != 0 {
				t.Errorf("a refused load wrote %d pages", len(m.pages))
			}
		})
	}
}

// TestIdentityMapEntries pins the table format: 2 MiB pages, present and
// writable, PML4[0] and PDPT[0..3] only.
func TestIdentityMapEntries(t *testing.T) {
	b := identityMap(PageTablesBase)
	le := binary.LittleEndian
	if len(b) != 6*4096 || PageTablesBase+len(b) > 0xf000 {
		t.Fatalf("%d bytes", len(b))
	}
	if le.Uint64(b) != PageTablesBase+0x1000|3 || le.Uint64(b[8:]) != 0 {
		t.Fatalf("PML4 %#x %#x", le.Uint64(b), le.Uint64(b[8:]))
	}
	for i := range uint64(4) {
		if got := le.Uint64(b[0x1000+8*i:]); got != PageTablesBase+0x2000+0x1000*i|3 {
			t.Fatalf("PDPT[%d] %#x", i, got)
		}
	}
	if le.Uint64(b[0x1000+8*4:]) != 0 {
		t.Fatal("PDPT[4] present")
	}
	if got := le.Uint64(b[0x2000+8*3:]); got != 3*0x200000|0x83 {
		t.Fatalf("PD0[3] %#x", got)
	}
	if got := le.Uint64(b[0x5000+8*511:]); got != 0xffe00000|0x83 {
		t.Fatalf("PD3[511] %#x", got)
	}
}
