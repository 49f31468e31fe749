package debian

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"reflect"
	"strings"
	"testing"
)

// moduleELF builds the smallest relocatable x86-64 ELF object that
// debug/elf reads and that has a .modinfo section holding modinfo:
// the ELF header, the section contents, then the section header table
// (null, .modinfo, .shstrtab), as a linker lays out a .ko.
func moduleELF(t testing.TB, modinfo string) []byte {
	t.Helper()
	shstrtab := "\x00.modinfo\x00.shstrtab\x00"
	const ehsize, shentsize = 64, 64
	modOff := uint64(ehsize)
	strOff := modOff + uint64(len(modinfo))
	shOff := (strOff + uint64(len(shstrtab)) + 7) &^ 7
	var b bytes.Buffer
	h := elf.Header64{
		Type: uint16(elf.ET_REL), Machine: uint16(elf.EM_X86_64), Version: uint32(elf.EV_CURRENT),
		Shoff: shOff, Ehsize: ehsize, Shentsize: shentsize, Shnum: 3, Shstrndx: 2,
	}
	copy(h.Ident[:], elf.ELFMAG)
	h.Ident[elf.EI_CLASS] = byte(elf.ELFCLASS64)
	h.Ident[elf.EI_DATA] = byte(elf.ELFDATA2LSB)
	h.Ident[elf.EI_VERSION] = byte(elf.EV_CURRENT)
	must := func(err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	must(binary.Write(&b, binary.LittleEndian, &h))
	b.WriteString(modinfo)
	b.WriteString(shstrtab)
	b.Write(make([]byte, int(shOff)-b.Len()))
	for _, s := range []elf.Section64{
		{},
		{Name: 1, Type: uint32(elf.SHT_PROGBITS), Flags: uint64(elf.SHF_ALLOC), Off: modOff, Size: uint64(len(modinfo)), Addralign: 1},
		{Name: 10, Type: uint32(elf.SHT_STRTAB), Off: strOff, Size: uint64(len(shstrtab)), Addralign: 1},
	} {
		must(binary.Write(&b, binary.LittleEndian, &s))
	}
	return b.Bytes()
}

// hv_storvsc's .modinfo from linux-image-6.1.0-57-amd64, cut short, with
// the NUL padding modpost leaves between strings.
const storvscModinfo = "description=Microsoft Hyper-V virtual storage driver\x00license=GPL\x00" +
	"alias=vmbus:4acc9b2f6900f34ab76b6fd0be528cda\x00\x00\x00" +
	"depends=scsi_mod,hv_vmbus,scsi_transport_fc,scsi_common\x00retpoline=Y\x00intree=Y\x00" +
	"name=hv_storvsc\x00vermagic=6.1.0-57-amd64 SMP preempt mod_unload modversions \x00"

func TestReadModinfoFromAnELFObject(t *testing.T) {
	mi, err := ReadModinfo(bytes.NewReader(moduleELF(t, storvscModinfo)))
	if err != nil {
		t.Fatal(err)
	}
	if mi.Name != "hv_storvsc" || mi.Vermagic != "6.1.0-57-amd64 SMP preempt mod_unload modversions " {
		t.Errorf("name %q vermagic %q", mi.Name, mi.Vermagic)
	}
	if want := []string{"scsi_mod", "hv_vmbus", "scsi_transport_fc", "scsi_common"}; !reflect.DeepEqual(mi.Depends, want) {
		t.Errorf("depends %q, want %q", mi.Depends, want)
	}
	if len(mi.Fields) != 8 || mi.Fields[2] != [2]string{"alias", "vmbus:4acc9b2f6900f34ab76b6fd0be528cda"} {
		t.Errorf("fields %q", mi.Fields)
	}
}

func TestParseModinfo(t *testing.T) {
	for _, tc := range []struct {
		sec     string
		name    string
		depends []string
		err     string
	}{
		{"depends=\x00name=scsi_common\x00", "scsi_common", nil, ""},
		{"name=snd-hda-intel\x00depends=snd-hda-codec, soundcore\x00", "snd_hda_intel", []string{"snd_hda_codec", "soundcore"}, ""},
		{"license=GPL\x00", "", nil, ""}, // no name=: the caller uses the file name
		{"", "", nil, ""},
		{"license\x00", "", nil, "not key=value"},
		{"=x\x00", "", nil, "not key=value"},
		{"name=a\x00name=b\x00", "", nil, "name= given twice"},
		{"depends=a\x00depends=b\x00", "", nil, "depends= given twice"},
	} {
		mi, err := ParseModinfo([]byte(tc.sec))
		switch {
		case tc.err != "":
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q: %v, want %q", tc.sec, err, tc.err)
			}
		case err != nil || mi.Name != tc.name || !reflect.DeepEqual(mi.Depends, tc.depends):
			t.Errorf("%q: %q %q %v, want %q %q", tc.sec, mi.Name, mi.Depends, err, tc.name, tc.depends)
		}
	}
}

func TestReadModinfoRefusesWhatIsNotAModule(t *testing.T) {
	noModinfo := moduleELF(t, "")
	// Rename the section: ".modinfo" -> ".modinfX".
	noModinfo = bytes.Replace(noModinfo, []byte(".modinfo\x00"), []byte(".modinfX\x00"), 1)
	exec := moduleELF(t, "name=x\x00")
	binary.LittleEndian.PutUint16(exec[16:], uint16(elf.ET_EXEC))
	for name, b := range map[string][]byte{
		"not ELF":           []byte("!<arch>\n"),
		"no .modinfo":       noModinfo,
		"an executable":     exec,
		"truncated section": moduleELF(t, "name=x\x00")[:70],
	} {
		if _, err := ReadModinfo(bytes.NewReader(b)); err == nil {
			t.Errorf("%s: read without an error", name)
		}
	}
}

func TestModuleName(t *testing.T) {
	for in, want := range map[string]string{
		"kernel/drivers/scsi/hv_storvsc.ko":     "hv_storvsc",
		"kernel/arch/x86/crypto/aesni-intel.ko": "aesni_intel",
		"kernel/fs/ext4/ext4.ko.xz":             "ext4",
		"kernel/drivers/scsi/scsi_mod.ko.zst":   "scsi_mod",
		"snd-hda-codec":                         "snd_hda_codec",
		"kernel/drivers/block/virtio_blk.ko.gz": "virtio_blk",
	} {
		if got := ModuleName(in); got != want {
			t.Errorf("ModuleName(%q) = %q, want %q", in, got, want)
		}
	}
}

func FuzzReadModinfo(f *testing.F) {
	f.Add(moduleELF(f, storvscModinfo))
	f.Fuzz(func(t *testing.T, b []byte) {
		ReadModinfo(bytes.NewReader(b)) // must not panic
	})
}
