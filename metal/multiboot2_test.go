package metal

import (
	"encoding/binary"
	"strings"
	"testing"
)

// mb2Image lays out Multiboot2 boot information at 0x9000 with the given tags.
func mb2Image(tags ...[]byte) (physWindow, uint64) {
	w := physWindow{mem: make([]byte, 0x10000), base: 0x1000}
	info := uint64(0x9000)
	b := make([]byte, 8)
	for _, t := range tags {
		for len(t)%8 != 0 {
			t = append(t, 0)
		}
		b = append(b, t...)
	}
	b = append(b, mb2Tag(mb2TagEnd, nil)...)
	binary.LittleEndian.PutUint32(b, uint32(len(b)))
	copy(w.mem[info-w.base:], b)
	return w, info
}

func mb2Tag(typ uint32, payload []byte) []byte {
	t := make([]byte, 8, 8+len(payload))
	binary.LittleEndian.PutUint32(t, typ)
	binary.LittleEndian.PutUint32(t[4:], uint32(8+len(payload)))
	return append(t, payload...)
}

func mb2MmapTag(entries []mbEntry) []byte {
	p := make([]byte, 8)
	binary.LittleEndian.PutUint32(p, 24)
	for _, e := range entries {
		x := make([]byte, 24)
		binary.LittleEndian.PutUint64(x, e.base)
		binary.LittleEndian.PutUint64(x[8:], e.length)
		binary.LittleEndian.PutUint32(x[16:], e.typ)
		p = append(p, x...)
	}
	return mb2Tag(mb2TagMmap, p)
}

func efiMmapTag(descs [][3]uint64) []byte {
	p := make([]byte, 8)
	binary.LittleEndian.PutUint32(p, 48)
	for _, d := range descs {
		x := make([]byte, 48)
		binary.LittleEndian.PutUint32(x, uint32(d[0]))
		binary.LittleEndian.PutUint64(x[8:], d[1])
		binary.LittleEndian.PutUint64(x[24:], d[2])
		p = append(p, x...)
	}
	return mb2Tag(mb2TagEFIMmap, p)
}

func TestParseMultiboot2(t *testing.T) {
	rsdp := []byte("RSD PTR \x00abcdefghijklmnopqrstuvwxyz0")
	w, info := mb2Image(
		mb2Tag(mb2TagCmdline, []byte("selftest console=ttyS0\x00")),
		mb2Tag(mb2TagLoaderName, []byte("GRUB 2.06\x00")),
		mb2MmapTag(qemuMap),
		mb2Tag(mb2TagACPIOld, rsdp[:20]),
		mb2Tag(mb2TagACPINew, rsdp[:36]),
	)
	var bi bootInfo
	if r := parseMultiboot2(w, info, &bi, 0); r != "" {
		t.Fatal(r)
	}
	if string(bi.cmdlineBytes()) != "selftest console=ttyS0" || string(bi.loader[:bi.loaderLen]) != "GRUB 2.06" {
		t.Errorf("cmdline %q loader %q", bi.cmdlineBytes(), bi.loader[:bi.loaderLen])
	}
	if bi.ram.Len() != 2 || bi.ram.At(1).End != 0x7fe0000 || bi.mmapSource != mmapMultiboot2 {
		t.Errorf("ram %v %v from %q", bi.ram.At(0), bi.ram.At(1), bi.mmapSource)
	}
	if bi.rsdpLen != 36 {
		t.Errorf("kept %d RSDP bytes, want the 36-byte ACPI 2.0 copy", bi.rsdpLen)
	}
}

func TestParseMultiboot2FallsBackToEFIMap(t *testing.T) {
	w, info := mb2Image(efiMmapTag([][3]uint64{
		{efiConventionalMemory, 0x100000, 0x700},
		{efiBootServicesData, 0x800000, 0x100},
		{6 /* runtime services data */, 0x900000, 0x10},
		{efiConventionalMemory, 0x910000, 0x10},
	}))
	var bi bootInfo
	if r := parseMultiboot2(w, info, &bi, 0); r != "" {
		t.Fatal(r)
	}
	if bi.ram.Total() != (0x700+0x100+0x10)*pageSize || bi.ram.Contains(0x900000) {
		t.Errorf("RAM %d bytes, runtime data usable=%v", bi.ram.Total(), bi.ram.Contains(0x900000))
	}
	if bi.mmapSource != mmapMultiboot2EFI {
		t.Errorf("source %q", bi.mmapSource)
	}
}

func TestParseMultiboot2Bad(t *testing.T) {
	for _, c := range []struct {
		name   string
		tags   [][]byte
		inject injectFlags
		want   string
	}{
		{"no map", [][]byte{mb2Tag(mb2TagCmdline, []byte("x\x00"))}, 0, "passed none"},
		{"injected missing", [][]byte{mb2MmapTag(qemuMap)}, injectMmapMissing, "passed none"},
		{"injected truncation", [][]byte{mb2MmapTag(qemuMap)}, injectMmapTruncated, "truncated"},
		{"entry size 8", [][]byte{mb2Tag(mb2TagMmap, []byte{8, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8})}, 0, "truncated"},
	} {
		t.Run(c.name, func(t *testing.T) {
			w, info := mb2Image(c.tags...)
			var bi bootInfo
			if r := parseMultiboot2(w, info, &bi, c.inject); !strings.Contains(r, c.want) {
				t.Errorf("got %q, want %q", r, c.want)
			}
		})
	}
	w, info := mb2Image(mb2MmapTag(qemuMap))
	binary.LittleEndian.PutUint32(w.mem[info+8+4-w.base:], 0xfff0) // tag size past the end
	var bi bootInfo
	if r := parseMultiboot2(w, info, &bi, 0); !strings.Contains(r, "runs past") {
		t.Errorf("oversized tag: %q", r)
	}
}

func FuzzParseMultiboot2(f *testing.F) {
	w, info := mb2Image(mb2Tag(mb2TagCmdline, []byte("selftest\x00")), mb2MmapTag(qemuMap),
		efiMmapTag([][3]uint64{{7, 0x100000, 16}}), mb2Tag(mb2TagACPINew, make([]byte, 36)))
	f.Add(w.mem[info-w.base : info-w.base+0x200])
	w, info = mb2Image(mb2Tag(mb2TagCmdline, []byte("selftest\x00")), mb2ModuleTag(qemuModules[0]), mb2MmapTag(qemuMap),
		mb2ModuleTag(testModule{0x1300000, 0x1400000, "vmlinuz"}), mb2ModuleTag(qemuModules[2]))
	f.Add(w.mem[info-w.base : info-w.base+0x200])
	f.Fuzz(func(t *testing.T, b []byte) {
		w := physWindow{mem: make([]byte, 0x10000), base: 0x1000}
		copy(w.mem[0x8000:], b)
		var bi bootInfo
		r := parseMultiboot2(w, 0x9000, &bi, 0)
		if r == "" && bi.ram.Total() == 0 {
			t.Fatal("accepted a map without RAM")
		}
		checkBootModules(&bi, testImageLo, testImageHi)
		if r == "" && !bi.moduleFault.bad() {
			checkAcceptedModules(t, &bi)
		}
	})
}
