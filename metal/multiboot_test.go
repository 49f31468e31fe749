package metal

import (
	"encoding/binary"
	"strings"
	"testing"
)

// mbImage builds boot information as a Multiboot v1 loader leaves it:
// the info structure at 0x9000, the command line at 0x9100, the memory
// map at 0x9200, all inside a window starting at 0x1000.
type mbEntry struct {
	base, length uint64
	typ          uint32
}

func mbImage(flags uint32, cmdline string, entries []mbEntry) (physWindow, uint64) {
	w := physWindow{mem: make([]byte, 0x10000), base: 0x1000}
	le := binary.LittleEndian
	info := uint64(0x9000)
	put32 := func(pa uint64, v uint32) { le.PutUint32(w.mem[pa-w.base:], v) }
	put32(info, flags)
	put32(info+16, 0x9100)
	copy(w.mem[0x9100-w.base:], cmdline+"\x00")
	off := uint64(0x9200)
	for _, e := range entries {
		put32(off, 20)
		le.PutUint64(w.mem[off+4-w.base:], e.base)
		le.PutUint64(w.mem[off+12-w.base:], e.length)
		put32(off+20, e.typ)
		off += 24
	}
	put32(info+44, uint32(off-0x9200))
	put32(info+48, 0x9200)
	return w, info
}

var qemuMap = []mbEntry{
	{0, 0x9fc00, 1},
	{0x9fc00, 0x400, 2},
	{0xf0000, 0x10000, 2},
	{0x100000, 0x7ee0000, 1},
	{0x7fe0000, 0x20000, 2},
	{0xfffc0000, 0x40000, 2},
}

func TestParseMultiboot1QEMUMap(t *testing.T) {
	w, info := mbImage(mbFlagCmdline|mbFlagMmap, "build/gohv selftest console=ttyS0", qemuMap)
	var bi bootInfo
	if r := parseMultiboot1Cmdline(w, info, &bi); r != "" {
		t.Fatal(r)
	}
	if got := string(bi.cmdlineBytes()); got != "build/gohv selftest console=ttyS0" {
		t.Errorf("cmdline %q", got)
	}
	if r := parseMultiboot1Mmap(w, info, &bi, 0); r != "" {
		t.Fatal(r)
	}
	if bi.mmapCount != 6 || bi.ram.Len() != 2 {
		t.Fatalf("%d entries, %d RAM ranges", bi.mmapCount, bi.ram.Len())
	}
	if r := bi.ram.At(0); r.Start != 0 || r.End != 0x9f000 {
		t.Errorf("low RAM %#x-%#x (the partial last page must be dropped)", r.Start, r.End)
	}
	if r := bi.ram.At(1); r.Start != 0x100000 || r.End != 0x7fe0000 {
		t.Errorf("high RAM %#x-%#x", r.Start, r.End)
	}
}

func TestParseMultiboot1ReservedWinsOverlap(t *testing.T) {
	w, info := mbImage(mbFlagMmap, "", []mbEntry{{0x100000, 0x1000000, 1}, {0x800000, 0x1000, 2}})
	var bi bootInfo
	if r := parseMultiboot1Mmap(w, info, &bi, 0); r != "" {
		t.Fatal(r)
	}
	if bi.ram.Len() != 2 || bi.ram.At(0).End != 0x800000 || bi.ram.At(1).Start != 0x801000 {
		t.Errorf("ranges %v %v", bi.ram.At(0), bi.ram.At(1))
	}
}

func TestParseMultiboot1BadMaps(t *testing.T) {
	for _, c := range []struct {
		name   string
		flags  uint32
		inject injectFlags
		damage func(w physWindow, info uint64)
		want   string
	}{
		{"missing", mbFlagCmdline, 0, nil, "passed none"},
		{"injected missing", mbFlagMmap, injectMmapMissing, nil, "passed none"},
		{"injected truncation", mbFlagMmap, injectMmapTruncated, nil, "truncated"},
		{"odd length", mbFlagMmap, 0, func(w physWindow, info uint64) {
			binary.LittleEndian.PutUint32(w.mem[info+44-w.base:], 24*6+3)
		}, "truncated"},
		{"entry size too small", mbFlagMmap, 0, func(w physWindow, info uint64) {
			binary.LittleEndian.PutUint32(w.mem[0x9200-w.base:], 4)
		}, "truncated"},
		{"buffer outside memory", mbFlagMmap, 0, func(w physWindow, info uint64) {
			binary.LittleEndian.PutUint32(w.mem[info+48-w.base:], 0xfffffff0)
		}, "outside memory"},
		{"no usable RAM", mbFlagMmap, 0, func(w physWindow, info uint64) {
			for off := uint64(0x9200); off < 0x9200+24*6; off += 24 {
				binary.LittleEndian.PutUint32(w.mem[off+20-w.base:], 2)
			}
		}, "no usable RAM"},
	} {
		t.Run(c.name, func(t *testing.T) {
			w, info := mbImage(c.flags, "x", qemuMap)
			if c.damage != nil {
				c.damage(w, info)
			}
			var bi bootInfo
			r := parseMultiboot1Mmap(w, info, &bi, c.inject)
			if !strings.Contains(r, c.want) || !strings.HasPrefix(r, "memory map: ") {
				t.Errorf("got %q, want a memory-map error containing %q", r, c.want)
			}
		})
	}
}

// The boot loader's structures are trusted less than code: any bytes must
// give a result or a reason, never a fault.
func FuzzParseMultiboot1(f *testing.F) {
	w, info := mbImage(mbFlagCmdline|mbFlagMmap, "selftest", qemuMap)
	f.Add(w.mem[info-w.base : info-w.base+0x400])
	withModules(w, info, qemuModules)
	f.Add(w.mem[info-w.base : info-w.base+0x400])
	f.Fuzz(func(t *testing.T, b []byte) {
		w := physWindow{mem: make([]byte, 0x10000), base: 0x1000}
		copy(w.mem[0x8000:], b)
		var bi bootInfo
		parseMultiboot1Cmdline(w, 0x9000, &bi)
		r := parseMultiboot1Mmap(w, 0x9000, &bi, 0)
		if r == "" && bi.ram.Total() == 0 {
			t.Fatal("accepted a map without RAM")
		}
		parseMultiboot1Modules(w, 0x9000, &bi)
		checkBootModules(&bi, testImageLo, testImageHi)
		if !bi.moduleFault.bad() {
			checkAcceptedModules(t, &bi)
		}
	})
}
