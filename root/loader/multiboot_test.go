package loader

import (
	"encoding/binary"
	"strings"
	"testing"

	"gohv/x86"
)

// mbFile builds an address-field Multiboot kernel: header at 0, loaded at
// 1 MiB, entry after the header.
func mbFile(code []byte, bss uint32) []byte {
	f := make([]byte, 32)
	le := binary.LittleEndian
	const flags = 1<<1 | 1<<16
	le.PutUint32(f[0:], MultibootHeaderMagic)
	le.PutUint32(f[4:], flags)
	le.PutUint32(f[8:], -(MultibootHeaderMagic+flags)&0xffff_ffff)
	le.PutUint32(f[12:], 0x100000)
	le.PutUint32(f[16:], 0x100000)
	le.PutUint32(f[28:], 0x100020)
	f = append(f, code...)
	if bss != 0 {
		le.PutUint32(f[24:], 0x100000+uint32(len(f))+bss)
	}
	return f
}

func TestLoadMultiboot(t *testing.T) {
	m := newFakeMem(0, 4<<20)
	file := mbFile([]byte{0xf4}, 0x1000)
	r, err := loadMultiboot(m, file, "root=x")
	if err != nil {
		t.Fatal(err)
	}
	if r.RIP != 0x100020 || r.GPR[x86.RAX] != MultibootBootMagic || r.GPR[x86.RBX] != MultibootInfoBase ||
		r.CR0&x86.CR0PE == 0 || r.CR0&x86.CR0PG != 0 || r.CS.Attrib&x86.SegDB == 0 || r.RFLAGS&x86.RFLAGSIF != 0 {
		t.Fatalf("entry state %+v", r)
	}
	var info [88]byte
	m.ReadRAM(MultibootInfoBase, info[:])
	le := binary.LittleEndian
	if le.Uint32(info[0:])&(mbInfoMem|mbInfoMmap|mbInfoCmdline) != mbInfoMem|mbInfoMmap|mbInfoCmdline ||
		le.Uint32(info[4:]) != 636 || le.Uint32(info[8:]) != 3*1024 {
		t.Fatalf("info flags %#x lower %d upper %d", le.Uint32(info[0:]), le.Uint32(info[4:]), le.Uint32(info[8:]))
	}
	cmd := make([]byte, 7)
	m.ReadRAM(uint64(le.Uint32(info[16:])), cmd)
	if string(cmd) != "root=x\x00" {
		t.Fatalf("cmdline %q", cmd)
	}
	mm := make([]byte, le.Uint32(info[44:]))
	m.ReadRAM(uint64(le.Uint32(info[48:])), mm)
	if len(mm) != 48 || le.Uint64(mm[4+24:]) != 0x100000 || le.Uint64(mm[12+24:]) != 3<<20 {
		t.Fatalf("mmap % x", mm)
	}
	var code [1]byte
	m.ReadRAM(0x100020, code[:])
	if code[0] != 0xf4 {
		t.Fatal("code not loaded")
	}
}

func TestParseMultibootRejects(t *testing.T) {
	good := mbFile([]byte{0xf4}, 0)
	for _, c := range []struct {
		name string
		mut  func([]byte) []byte
		want string
	}{
		{"no header", func(b []byte) []byte { return make([]byte, 100) }, "no valid header"},
		{"checksum", func(b []byte) []byte { b[8]++; return b }, "no valid header"},
		{"video", func(b []byte) []byte {
			binary.LittleEndian.PutUint32(b[4:], 1<<2|1<<16)
			binary.LittleEndian.PutUint32(b[8:], -(MultibootHeaderMagic+(1<<2|1<<16))&0xffff_ffff)
			return b
		}, "video"},
		{"truncated", func(b []byte) []byte { return b[:20] }, "truncated"},
		{"header before load", func(b []byte) []byte { binary.LittleEndian.PutUint32(b[12:], 0x100100); return b }, "do not fit"},
		{"load end", func(b []byte) []byte { binary.LittleEndian.PutUint32(b[20:], 0x200000); return b }, "beyond the file"},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := c.mut(append([]byte(nil), good...))
			if _, err := ParseMultiboot(f); err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err %v, want %q", err, c.want)
			}
		})
	}
	if _, err := loadMultiboot(newFakeMem(0, 1<<20), good, ""); err == nil {
		t.Fatal("loaded a kernel at 1 MiB into 1 MiB of RAM")
	}
}

func FuzzParseMultiboot(f *testing.F) {
	f.Add(mbFile([]byte{0xf4}, 0x100))
	f.Add([]byte("\x7fELF"))
	f.Fuzz(func(t *testing.T, b []byte) {
		k, err := ParseMultiboot(b)
		if err != nil {
			return
		}
		for _, s := range k.Segments {
			if uint64(len(s.Data)) > uint64(s.MemSize) {
				t.Fatalf("segment data %d > memsize %d", len(s.Data), s.MemSize)
			}
		}
		loadMultiboot(newFakeMem(0, 2<<20), b, "x") // must not panic whatever the file says
	})
}
