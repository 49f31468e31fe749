package bootmedia

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// fakeKernel is a file with a valid Multiboot2 header at off (header and end
// tag only) and filler around it.
func fakeKernel(size, off int) []byte {
	k := make([]byte, size)
	for i := range k {
		k[i] = byte(i * 13)
	}
	le := binary.LittleEndian
	h := k[off:]
	le.PutUint32(h[0:], mb2Magic)
	le.PutUint32(h[4:], 0)
	le.PutUint32(h[8:], 24)
	magic, length := uint32(mb2Magic), uint32(24)
	le.PutUint32(h[12:], -(magic + length))
	if len(h) >= 24 { // room for the end tag: type 0, flags 0, size 8
		le.PutUint64(h[16:], 0)
		le.PutUint32(h[20:], 8)
	}
	return k
}

func TestFindMultiboot2Header(t *testing.T) {
	k := fakeKernel(64<<10, 0x880)
	if off, err := FindMultiboot2Header(k); err != nil || off != 0x880 {
		t.Fatalf("FindMultiboot2Header = %#x, %v", off, err)
	}
	// A Multiboot1 magic first and a bad checksum are passed over.
	k2 := fakeKernel(64<<10, 0x880)
	binary.LittleEndian.PutUint32(k2[0x800:], 0x1badb002)
	binary.LittleEndian.PutUint32(k2[0x100:], mb2Magic)
	if off, err := FindMultiboot2Header(k2); err != nil || off != 0x880 {
		t.Errorf("with decoys: %#x, %v", off, err)
	}
	for _, tc := range []struct {
		name string
		k    []byte
		want string
	}{
		{"beyond 32 KiB", fakeKernel(64<<10, 32768), "no Multiboot2 header"},
		{"unaligned", fakeKernel(64<<10, 0x884), "no Multiboot2 header"},
		{"empty", nil, "no Multiboot2 header"},
		{"bad checksum", func() []byte { k := fakeKernel(4096, 8); k[8+12]++; return k }(), "no Multiboot2 header"},
		{"arch", func() []byte {
			k := fakeKernel(4096, 8)
			binary.LittleEndian.PutUint32(k[8+4:], 4)
			magic, arch, length := uint32(mb2Magic), uint32(4), uint32(24)
			binary.LittleEndian.PutUint32(k[8+12:], -(magic + arch + length))
			return k
		}(), "architecture"},
		{"length past the end", fakeKernel(0x880+20, 0x880), "past the end"},
	} {
		if _, err := FindMultiboot2Header(tc.k); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error about %q", tc.name, err, tc.want)
		}
	}
}

func TestReadKernelAndSumFile(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "gohv")
	data := fakeKernel(40000, 0x880)
	os.WriteFile(good, data, 0o644)
	k, err := ReadKernel(good)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.Sum256(data)
	if got, want := string(k.SumFile()), hex.EncodeToString(h[:])+"  /boot/gohv/kernel\n"; got != want {
		t.Errorf("sum file %q, want %q", got, want)
	}
	bad := filepath.Join(dir, "elf")
	os.WriteFile(bad, []byte("\x7fELF not a multiboot kernel"), 0o644)
	if _, err := ReadKernel(bad); err == nil || !strings.Contains(err.Error(), "make image") {
		t.Errorf("ReadKernel(non-kernel) = %v", err)
	}
	if _, err := ReadKernel(filepath.Join(dir, "missing")); err == nil {
		t.Error("ReadKernel(missing) succeeded")
	}
}

// The report xorriso gave for a grub-mkrescue ISO on this project's machines.
const isoReport = `El Torito catalog  : 1611  1
El Torito cat path : /boot.catalog
El Torito images   :   N  Pltf  B   Emul  Ld_seg  Hdpt  Ldsiz         LBA
El Torito boot img :   1  BIOS  y   none  0x0000  0x00      4        2841
El Torito boot img :   2  UEFI  y   none  0x0000  0x00   5760          68
El Torito img path :   1  /boot/grub/i386-pc/eltorito.img
El Torito img opts :   1  boot-info-table grub2-boot-info
El Torito img path :   2  /efi.img
System area options: 0x00004201
System area summary: MBR protective-msdos-label grub2-mbr cyl-align-off GPT APM
ISO image size/512 : 21800
MBR partition table:   N Status  Type        Start       Blocks
MBR partition      :   1   0x00  0xee            1        21799
GPT partname local :   2  EFI boot partition
GPT type GUID      :   2  28732ac11ff8d211ba4b00a0c93ec93b
GPT start and size :   2  272  5760
`

func TestCheckISOReport(t *testing.T) {
	if err := CheckISOReport([]byte(isoReport)); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, from, to, want string
	}{
		{"no BIOS entry", "1  BIOS  y", "1  BIOS  n", "BIOS El Torito"},
		{"BIOS floppy emulation", "BIOS  y   none", "BIOS  y   fd1.44", "BIOS El Torito"},
		{"EFI only", "El Torito boot img :   1  BIOS  y   none  0x0000  0x00      4        2841\n", "", "BIOS El Torito"},
		{"no UEFI entry", "2  UEFI  y", "2  UEFI  n", "UEFI El Torito"},
		{"no grub mbr", "grub2-mbr ", "", "MBR"},
		{"no ESP", "28732ac11ff8d211ba4b00a0c93ec93b", "a2a0d0ebe5b9334487c068b6b72699c7", "EFI system partition"},
	} {
		r := strings.Replace(isoReport, tc.from, tc.to, 1)
		if r == isoReport {
			t.Fatalf("%s: edit did not apply", tc.name)
		}
		if err := CheckISOReport([]byte(r)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: CheckISOReport = %v, want an error about %q", tc.name, err, tc.want)
		}
	}
	// An MBR-only hybrid with an 0xEF partition serves UEFI sticks too.
	mbrOnly := strings.Replace(isoReport, "28732ac11ff8d211ba4b00a0c93ec93b", "x", 1) +
		"MBR partition      :   2   0x00  0xef          272         5760\n"
	if err := CheckISOReport([]byte(mbrOnly)); err != nil {
		t.Errorf("MBR ESP: %v", err)
	}
}

func TestRequire(t *testing.T) {
	lib := t.TempDir()
	os.MkdirAll(filepath.Join(lib, "i386-pc"), 0o755)
	os.WriteFile(filepath.Join(lib, "i386-pc", "moddep.lst"), nil, 0o644)
	os.MkdirAll(filepath.Join(lib, "x86_64-efi"), 0o755) // installed half: no moddep.lst
	b := &Builder{Kernel: &Kernel{}, GrubLib: lib, LookPath: func(name string) (string, error) {
		if name == "xorriso" || name == "mformat" {
			return "", exec.ErrNotFound
		}
		return "/usr/bin/" + name, nil
	}}
	_, err := b.require([]hostTool{toolMkrescue, toolXorriso, toolMformat, toolMcopy}, []grubPlatform{platformBIOS, platformEFI})
	var miss *MissingError
	if !errors.As(err, &miss) {
		t.Fatalf("require = %v, want a MissingError", err)
	}
	msg := err.Error()
	for _, want := range []string{"xorriso", "mformat", "x86_64-efi", "apt-get install xorriso mtools grub-efi-amd64-bin"} {
		if !strings.Contains(msg, want) {
			t.Errorf("%q lacks %q", msg, want)
		}
	}
	if strings.Contains(msg, "grub-common") || strings.Contains(msg, "grub-pc-bin") {
		t.Errorf("%q names packages that are there", msg)
	}
	// ISO refuses a GRUB directory grub-mkrescue would not use.
	if err := b.ISO(context.Background(), filepath.Join(t.TempDir(), "x.iso")); err == nil || !strings.HasPrefix(err.Error(), "media: iso: ") {
		t.Errorf("ISO with a custom GRUB dir: %v", err)
	}
}

func TestReplaceDir(t *testing.T) {
	dir := t.TempDir()
	final := filepath.Join(dir, "pxe")
	mk := func() string {
		tmp, err := os.MkdirTemp(dir, "tmp")
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(tmp, "new"), nil, 0o644)
		return tmp
	}
	if err := replaceDir(mk(), final, isPXETree); err != nil {
		t.Fatalf("fresh: %v", err)
	}
	// final now holds only "new": not a PXE tree, and not empty.
	if err := replaceDir(mk(), final, isPXETree); err == nil || !strings.Contains(err.Error(), "refusing") {
		t.Fatalf("replaced a foreign directory: %v", err)
	}
	if _, err := os.Stat(filepath.Join(final, "new")); err != nil {
		t.Fatal("foreign directory damaged")
	}
	os.MkdirAll(filepath.Join(final, "boot/grub/i386-pc"), 0o755)
	os.MkdirAll(filepath.Join(final, "boot/gohv"), 0o755)
	os.WriteFile(filepath.Join(final, PXEBootFileBIOS), nil, 0o644)
	os.WriteFile(filepath.Join(final, KernelPath), nil, 0o644)
	if err := replaceDir(mk(), final, isPXETree); err != nil {
		t.Fatalf("replacing a previous tree: %v", err)
	}
	if _, err := os.Stat(filepath.Join(final, KernelPath)); !os.IsNotExist(err) {
		t.Error("old tree left behind")
	}
	file := filepath.Join(dir, "file")
	os.WriteFile(file, nil, 0o644)
	if err := replaceDir(mk(), file, isPXETree); err == nil {
		t.Error("replaced a file with a directory")
	}
}

// TestBuildMedia builds all three media with the real GRUB tools (skipping
// where they are not installed) from a stand-in kernel, and reads each back:
// the kernel, checksum and grub.cfg on the medium are the ones given, and the
// ISO and disk pass their structural checks. Booting them is tools/mediatest's
// job.
func TestBuildMedia(t *testing.T) {
	b := &Builder{Config: DefaultConfig(), Kernel: &Kernel{}}
	if _, err := b.require([]hostTool{toolMkrescue, toolMknetdir, toolMkimage, toolXorriso, toolMformat, toolMcopy, toolMmd},
		[]grubPlatform{platformBIOS, platformEFI}); err != nil {
		t.Skip(err)
	}
	dir := t.TempDir()
	kpath := filepath.Join(dir, "gohv")
	os.WriteFile(kpath, fakeKernel(300000, 0x880), 0o644)
	k, err := ReadKernel(kpath)
	if err != nil {
		t.Fatal(err)
	}
	b.Kernel = k
	b.Config.Args = []string{"x=1"}
	initrd := make([]byte, 100000)
	for i := range initrd {
		initrd[i] = byte(i * 7)
	}
	b.Config.Modules = []string{"config", "initrd.img"}
	b.Modules = []*Module{{Name: "config", Data: []byte("[[partition]]\n")}, {Name: "initrd.img", Data: initrd}}
	var log bytes.Buffer
	b.Log = &log
	ctx := context.Background()
	iso, pxe, img := filepath.Join(dir, "gohv.iso"), filepath.Join(dir, "pxe"), filepath.Join(dir, "gohv.img")
	if err := b.ISO(ctx, iso); err != nil {
		t.Fatalf("%v\n%s", err, log.Bytes())
	}
	if err := b.PXE(ctx, pxe); err != nil {
		t.Fatalf("%v\n%s", err, log.Bytes())
	}
	// Twice: the second build replaces the first tree.
	if err := b.PXE(ctx, pxe); err != nil {
		t.Fatalf("rebuilding: %v\n%s", err, log.Bytes())
	}
	if err := b.Disk(ctx, img, DiskOptions{SizeMiB: 48}); err != nil {
		t.Fatalf("%v\n%s", err, log.Bytes())
	}
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".gohv-") {
			t.Errorf("work directory %s left behind", e.Name())
		}
	}

	want := map[string][]byte{KernelPath: k.Data, SumPath: k.SumFile()}
	for _, m := range b.Modules {
		want[ModulePath(m.Name)] = m.Data
		want[ModuleSumPath(m.Name)] = m.SumFile()
	}
	files := map[string]func(string) ([]byte, error){
		MediumPXE: func(p string) ([]byte, error) { return os.ReadFile(filepath.Join(pxe, p)) },
		MediumISO: func(p string) ([]byte, error) {
			out := filepath.Join(t.TempDir(), "f")
			if o, err := exec.Command("xorriso", "-osirrox", "on", "-indev", iso, "-extract", p, out).CombinedOutput(); err != nil {
				return nil, fmt.Errorf("%v: %s", err, o)
			}
			return os.ReadFile(out)
		},
		MediumDisk: func(p string) ([]byte, error) {
			disk, err := os.ReadFile(img)
			if err != nil {
				return nil, err
			}
			tbl, err := ReadGPT(disk)
			if err != nil {
				return nil, err
			}
			cmd := exec.Command("mtype", "-i", fmt.Sprintf("%s@@%d", img, tbl.Partitions[1].FirstLBA*SectorSize), "::"+p)
			cmd.Env = append(os.Environ(), "MTOOLS_SKIP_CHECK=1")
			return cmd.Output()
		},
	}
	for medium, read := range files {
		cfg, err := GrubConfig(b.Config, medium)
		if err != nil {
			t.Fatal(err)
		}
		want[ConfigPath] = cfg
		for p, w := range want {
			got, err := read(p)
			if err != nil {
				t.Errorf("%s: %s: %v", medium, p, err)
				continue
			}
			if !bytes.Equal(got, w) {
				t.Errorf("%s: %s differs from what was staged (%d bytes, want %d)", medium, p, len(got), len(w))
			}
		}
	}
	for _, f := range []string{PXEBootFileBIOS, PXEBootFileEFI} {
		if _, err := os.Stat(filepath.Join(pxe, f)); err != nil {
			t.Error(err)
		}
	}

	disk, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	if len(disk) != 48<<20 {
		t.Errorf("disk image is %d bytes", len(disk))
	}
	if err := CheckDiskImage(disk); err != nil {
		t.Error(err)
	}
	// The ESP boots on UEFI from the removable-media path.
	tbl, _ := ReadGPT(disk)
	cmd := exec.Command("mdir", "-b", "-i", fmt.Sprintf("%s@@%d", img, tbl.Partitions[1].FirstLBA*SectorSize), "::/EFI/BOOT")
	cmd.Env = append(os.Environ(), "MTOOLS_SKIP_CHECK=1")
	if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "BOOTX64.EFI") {
		t.Errorf("ESP /EFI/BOOT: %v %s", err, out)
	}
}

func TestReadModule(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "gohv.toml")
	os.WriteFile(p, []byte("x"), 0o644)
	m, err := ReadModule("config", p)
	if err != nil || m.Name != "config" || string(m.Data) != "x" || m.Path != p {
		t.Fatalf("ReadModule = %+v, %v", m, err)
	}
	h := sha256.Sum256([]byte("x"))
	if got, want := string(m.SumFile()), hex.EncodeToString(h[:])+"  /boot/gohv/modules/config\n"; got != want {
		t.Errorf("sum file %q, want %q", got, want)
	}
	for _, tc := range []struct{ name, path, want string }{
		{"a b", p, "boot-module name"},
		{"x", filepath.Join(dir, "missing"), "module x: "},
		{"x", dir, "not a regular file"},
	} {
		if _, err := ReadModule(tc.name, tc.path); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ReadModule(%q, %q) = %v, want an error about %q", tc.name, tc.path, err, tc.want)
		}
	}
}

// The files staged are the boot configuration's: module files and module
// names must agree.
func TestStagedFiles(t *testing.T) {
	k := &Kernel{Data: fakeKernel(4096, 0)}
	b := &Builder{Kernel: k, Config: DefaultConfig(), Modules: []*Module{{Name: "config", Data: []byte("c")}}}
	if _, err := b.files(MediumISO); err == nil || !strings.Contains(err.Error(), "1 module files for 0 modules") {
		t.Errorf("files without names: %v", err)
	}
	b.Config.Modules = []string{"other"}
	if _, err := b.files(MediumISO); err == nil || !strings.Contains(err.Error(), `"config"`) {
		t.Errorf("files with another name: %v", err)
	}
	b.Config.Modules = []string{"config"}
	files, err := b.files(MediumISO)
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	for _, f := range files {
		paths = append(paths, f.path)
	}
	if want := []string{KernelPath, SumPath, ConfigPath, "/boot/gohv/modules/config", "/boot/gohv/sums/config.sha256"}; strings.Join(paths, " ") != strings.Join(want, " ") {
		t.Errorf("staged %q, want %q", paths, want)
	}
}

func TestCheckESPRoom(t *testing.T) {
	g := GUID{1}
	layout, err := DiskLayout(64, DiskOptions{DiskGUID: g, BIOSGUID: GUID{2}, ESPGUID: GUID{3}})
	if err != nil {
		t.Fatal(err)
	}
	esp := layout.Partitions[1]
	b := &Builder{Kernel: &Kernel{Data: make([]byte, 4<<20)}, Modules: []*Module{{Name: "initrd", Data: make([]byte, 40<<20)}}}
	if err := b.checkESPRoom(64, esp); err != nil {
		t.Errorf("52 MiB on a 64 MiB disk: %v", err)
	}
	b.Modules[0].Data = make([]byte, 60<<20)
	err = b.checkESPRoom(64, esp)
	if err == nil || !strings.Contains(err.Error(), "need 72 MiB") || !strings.Contains(err.Error(), "-size-mib 7") {
		t.Errorf("72 MiB on a 64 MiB disk: %v", err)
	}
}
