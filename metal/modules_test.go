package metal

import (
	"encoding/binary"
	"fmt"
	"strings"
	"testing"
)

// A module as a test lays it out: its range and its string.
type testModule struct {
	start, end uint32
	str        string
}

// Where mbImage's window leaves room for a module table and its strings
// (inside the 0x400 bytes after the info structure the fuzz seeds copy).
const (
	testModTable   = 0x92c0
	testModStrings = 0x9300
)

// withModules adds a Multiboot v1 module table to an mbImage.
func withModules(w physWindow, info uint64, mods []testModule) {
	le := binary.LittleEndian
	put32 := func(pa uint64, v uint32) { le.PutUint32(w.mem[pa-w.base:], v) }
	put32(info, le.Uint32(w.mem[info-w.base:])|mbFlagMods)
	put32(info+mbInfoModsCount, uint32(len(mods)))
	put32(info+mbInfoModsAddr, testModTable)
	str := uint64(testModStrings)
	for i, m := range mods {
		e := uint64(testModTable + i*mbModEntrySize)
		put32(e, m.start)
		put32(e+4, m.end)
		put32(e+8, uint32(str))
		copy(w.mem[str-w.base:], m.str+"\x00")
		str += uint64(len(m.str) + 1)
	}
}

func mb2ModuleTag(m testModule) []byte {
	p := make([]byte, 8, 8+len(m.str)+1)
	binary.LittleEndian.PutUint32(p, m.start)
	binary.LittleEndian.PutUint32(p[4:], m.end)
	return mb2Tag(mb2TagModule, append(append(p, m.str...), 0))
}

// The image as QEMU and GRUB load it: 2 MiB up to the end of its bss.
const testImageLo, testImageHi = 0x200000, 0x1200000

// QEMU's -initrd "build/gohv.toml config,/tmp/a,,b/vmlinuz vmlinuz": each
// string is the whole option (path, then name), modules page-aligned after
// the image.
var qemuModules = []testModule{
	{0x1201000, 0x1201123, "build/gohv.toml config"},
	{0x1202000, 0x1a00000, "/tmp/a,b/vmlinuz vmlinuz"},
	{0x1a00000, 0x1a00000, "/tmp/empty empty"},
}

func TestParseMultiboot1Modules(t *testing.T) {
	w, info := mbImage(mbFlagCmdline|mbFlagMmap, "build/gohv", qemuMap)
	withModules(w, info, qemuModules)
	var bi bootInfo
	if r := parseMultiboot1Mmap(w, info, &bi, 0); r != "" {
		t.Fatal(r)
	}
	parseMultiboot1Modules(w, info, &bi)
	checkBootModules(&bi, testImageLo, testImageHi)
	if bi.moduleFault.bad() {
		t.Fatalf("fault %+v", bi.moduleFault)
	}
	checkModules(t, &bi, []string{"config", "vmlinuz", "empty"}, qemuModules)

	hostTest, testConsoleLen = true, 0
	reportBootModules(&bi)
	if got, want := consoleText(), "gohv: metal: 3 boot modules: config (291 bytes), vmlinuz (8380416 bytes), empty (0 bytes)\n"; got != want {
		t.Errorf("report %q, want %q", got, want)
	}

	// The pages stay out of the allocator: RAM loses exactly the modules'
	// whole pages.
	before := bi.ram.Total()
	reserveBootModules(&bi, &bi.ram)
	if lost := before - bi.ram.Total(); lost != 0x1a00000-0x1201000 {
		t.Errorf("reserved %#x bytes, want %#x", lost, 0x1a00000-0x1201000)
	}
	for _, pa := range []uint64{0x1201000, 0x1201fff, 0x1202000, 0x19fffff} {
		if bi.ram.Contains(pa) {
			t.Errorf("%#x is still usable", pa)
		}
	}
	if !bi.ram.Contains(0x1a00000) || !bi.ram.Contains(0x1200fff) {
		t.Error("reserved more than the modules")
	}
}

func TestParseMultiboot2Modules(t *testing.T) {
	// GRUB's "module2 /boot/gohv/modules/config config": the string is the
	// arguments after the file.
	mods := []testModule{
		{0x7f00000, 0x7f00200, "config"},
		{0x7e00000, 0x7eff000, "vmlinuz"},
	}
	w, info := mb2Image(mb2Tag(mb2TagCmdline, []byte("selftest\x00")), mb2ModuleTag(mods[0]), mb2MmapTag(qemuMap), mb2ModuleTag(mods[1]))
	var bi bootInfo
	if r := parseMultiboot2(w, info, &bi, 0); r != "" {
		t.Fatal(r)
	}
	checkBootModules(&bi, testImageLo, testImageHi)
	if bi.moduleFault.bad() {
		t.Fatalf("fault %+v", bi.moduleFault)
	}
	checkModules(t, &bi, []string{"config", "vmlinuz"}, mods)
}

// checkModules compares what was parsed with the modules laid out, also as
// BootModules hands them to the Go side.
func checkModules(t *testing.T, bi *bootInfo, names []string, mods []testModule) {
	t.Helper()
	if bi.moduleCount != len(names) {
		t.Fatalf("%d modules, want %d", bi.moduleCount, len(names))
	}
	// A stand-in for physical memory: each page's bytes are its page number.
	view := func(pa uint64, n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte((pa + uint64(i)) >> 12)
		}
		return b
	}
	got := bootModules(bi, view)
	for i, m := range got {
		want := mods[i]
		if m.Name != names[i] || len(m.Data) != int(want.end-want.start) {
			t.Errorf("module %d: %q, %d bytes; want %q, %d bytes", i, m.Name, len(m.Data), names[i], want.end-want.start)
		}
		if len(m.Data) > 0 && m.Data[0] != byte(want.start>>12) {
			t.Errorf("module %d: data is not a view of its memory", i)
		}
	}
}

func TestModuleNameOf(t *testing.T) {
	for s, want := range map[string]string{
		"config":                 "config",
		"build/gohv.toml config": "config",
		"/tmp/x y/z  name  ":     "name",
		"build/initrd.img":       "initrd.img",
		"vmlinuz\tkernel":        "kernel",
		"":                       "",
		"   ":                    "",
		"dir/":                   "",
		"a b/c":                  "c",
	} {
		if got := string(moduleNameOf([]byte(s))); got != want {
			t.Errorf("name of %q: %q, want %q", s, got, want)
		}
	}
}

// Every bad module ends the boot with a reason that names it.
func TestBadBootModules(t *testing.T) {
	long := strings.Repeat("n", 65)
	type mb1 struct {
		mods   []testModule
		damage func(w physWindow, info uint64)
	}
	for _, tc := range []struct {
		name string
		v1   *mb1
		v2   [][]byte // Multiboot2 module tags
		want string
	}{
		{"table outside memory", &mb1{qemuModules, func(w physWindow, info uint64) {
			binary.LittleEndian.PutUint32(w.mem[info+mbInfoModsAddr-w.base:], 0xfffffff0)
		}}, nil, "boot modules: the Multiboot module table (3 entries at 0xfffffff0) lies outside memory"},
		{"too many (v1)", &mb1{qemuModules, func(w physWindow, info uint64) {
			binary.LittleEndian.PutUint32(w.mem[info+mbInfoModsCount-w.base:], 1000)
		}}, nil, "boot modules: more than 32 modules (1000)"},
		{"string outside memory", &mb1{qemuModules, func(w physWindow, info uint64) {
			binary.LittleEndian.PutUint32(w.mem[testModTable+mbModEntrySize+8-w.base:], 0xfffffff0)
		}}, nil, "boot module 2: its string at 0xfffffff0 lies outside memory"},
		{"string without NUL (v1)", &mb1{[]testModule{{0x1201000, 0x1202000, "a"}}, func(w physWindow, info uint64) {
			for i := testModStrings; i < testModStrings+moduleStringMax+1; i++ {
				w.mem[i-int(w.base)] = 'x'
			}
		}}, nil, `boot module 1 "` + strings.Repeat("x", 64) + `": its string has no terminating NUL within 4096 bytes`},
		{"truncated tag", nil, [][]byte{mb2Tag(mb2TagModule, []byte{0, 0, 0, 1, 0, 0})}, "boot module 1: truncated Multiboot2 module tag (14 bytes, at least 17)"},
		{"string without NUL (v2)", nil, [][]byte{mb2ModuleTag(testModule{0x1201000, 0x1202000, "ok"}),
			mb2Tag(mb2TagModule, []byte("\x00\x00\x30\x01\x00\x10\x30\x01initrd"))}, `boot module 2 "initrd": its string has no terminating NUL within 6 bytes`},
		{"too many (v2)", nil, func() [][]byte {
			var tags [][]byte
			for i := range 33 {
				tags = append(tags, mb2ModuleTag(testModule{uint32(0x1300000 + i*0x1000), uint32(0x1300000 + i*0x1000 + 10), fmt.Sprint("m", i)}))
			}
			return tags
		}(), "boot modules: more than 32 modules (33)"},
		{"no name", nil, [][]byte{mb2ModuleTag(testModule{0x1201000, 0x1202000, ""})}, "boot module 1: no name: its string is empty (GRUB: module2 FILE NAME)"},
		{"no name after the path", &mb1{[]testModule{{0x1201000, 0x1202000, "config"}, {0x1202000, 0x1203000, "dir/"}}, nil}, nil,
			"boot module 2: no name: its string is empty (GRUB: module2 FILE NAME)"},
		{"name too long", nil, [][]byte{mb2ModuleTag(testModule{0x1201000, 0x1202000, long})}, `boot module 1 "` + long[:64] + `": a name of 65 bytes; at most 64`},
		{"duplicate name", &mb1{[]testModule{{0x1201000, 0x1202000, "a/x x"}, {0x1202000, 0x1203000, "b"}, {0x1203000, 0x1204000, "c/x"}}, nil}, nil,
			`boot module 3 "x": boot module 1 has the same name`},
		{"ends before it starts", nil, [][]byte{mb2ModuleTag(testModule{0x1202000, 0x1201000, "config"})}, `boot module 1 "config": ends at 0x1201000, before its start 0x1202000`},
		{"outside RAM", nil, [][]byte{mb2ModuleTag(testModule{0x9f000, 0xa1000, "config"})}, `boot module 1 "config": 0x9f000-0xa1000 is not usable RAM`},
		{"past the end of RAM", nil, [][]byte{mb2ModuleTag(testModule{0x7fd0000, 0x7fe0001, "config"})}, `boot module 1 "config": 0x7fd0000-0x7fe0001 is not usable RAM`},
		{"in the image", &mb1{[]testModule{{0x1100000, 0x1300000, "x initrd"}}, nil}, nil,
			`boot module 1 "initrd": 0x1100000-0x1300000 overlaps the gohv image (0x200000-0x1200000)`},
		{"overlapping modules", nil, [][]byte{mb2ModuleTag(testModule{0x1300000, 0x1400000, "a"}), mb2ModuleTag(testModule{0x13ff000, 0x1500000, "b"})},
			`boot module 2 "b": 0x13ff000-0x1500000 overlaps boot module 1`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var bi bootInfo
			if tc.v1 != nil {
				w, info := mbImage(mbFlagMmap, "", qemuMap)
				withModules(w, info, tc.v1.mods)
				if tc.v1.damage != nil {
					tc.v1.damage(w, info)
				}
				if r := parseMultiboot1Mmap(w, info, &bi, 0); r != "" {
					t.Fatal(r)
				}
				parseMultiboot1Modules(w, info, &bi)
			} else {
				w, info := mb2Image(append([][]byte{mb2MmapTag(qemuMap)}, tc.v2...)...)
				if r := parseMultiboot2(w, info, &bi, 0); r != "" {
					t.Fatal(r)
				}
			}
			checkBootModules(&bi, testImageLo, testImageHi)
			if !bi.moduleFault.bad() {
				t.Fatalf("accepted: %d modules", bi.moduleCount)
			}
			hostTest, testConsoleLen = true, 0
			bi.moduleFault.print()
			if got := consoleText(); got != tc.want {
				t.Errorf("got  %q\nwant %q", got, tc.want)
			}
		})
	}
}

// Boot information without modules has none, and says so.
func TestNoBootModules(t *testing.T) {
	w, info := mbImage(mbFlagMmap, "", qemuMap)
	var bi bootInfo
	parseMultiboot1Mmap(w, info, &bi, 0)
	parseMultiboot1Modules(w, info, &bi)
	checkBootModules(&bi, testImageLo, testImageHi)
	if bi.moduleCount != 0 || bi.moduleFault.bad() {
		t.Fatalf("%d modules, fault %v", bi.moduleCount, bi.moduleFault.why)
	}
	hostTest, testConsoleLen = true, 0
	reportBootModules(&bi)
	if got := consoleText(); got != "gohv: metal: 0 boot modules\n" {
		t.Errorf("report %q", got)
	}
	if m := bootModules(&bi, nil); len(m) != 0 {
		t.Errorf("BootModules %v", m)
	}
}

// checkAcceptedModules is what the fuzz targets hold an accepted module
// list to.
func checkAcceptedModules(t *testing.T, bi *bootInfo) {
	for i := 0; i < bi.moduleCount; i++ {
		m := &bi.modules[i]
		if m.nameLen == 0 || m.nameLen > moduleNameMax || m.end < m.start ||
			(m.end > m.start && !ramHolds(&bi.ram, m.start, m.end)) || overlaps(m.start, m.end, testImageLo, testImageHi) {
			t.Fatalf("accepted module %d: %+v", i, m)
		}
		for j := range i {
			o := &bi.modules[j]
			if string(o.nameBytes()) == string(m.nameBytes()) || overlaps(m.start, m.end, o.start, o.end) {
				t.Fatalf("accepted modules %d and %d: %+v %+v", j, i, o, m)
			}
		}
	}
}
