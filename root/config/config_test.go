package config

import (
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"
)

// partition is a valid [[partition]] table with extra lines appended.
func partition(name string, extra ...string) string {
	return "[[partition]]\nname = \"" + name + "\"\nmemory_mib = 64\nkernel = \"vmlinuz\"\n" + strings.Join(extra, "\n") + "\n"
}

func TestParseExample(t *testing.T) {
	data, err := os.ReadFile("example.toml")
	if err != nil {
		t.Fatal(err)
	}
	c, err := Parse("example.toml", data)
	if err != nil {
		t.Fatalf("the example does not parse:\n%v", err)
	}
	want := []Partition{
		{Name: "linux0", MemoryMiB: 256, VPs: 1, HostCPUs: []int{}, Kernel: "vmlinuz", KernelFormat: FormatLinux, Initrd: "initrd.img",
			Cmdline: "console=ttyS0", Console: ConsoleCOM1, Autostart: true, OnReboot: OnRebootRestart,
			Disks: []Disk{{Module: "root.img"}, {Module: "data.img", LUN: 1, ReadOnly: true}},
			NICs:  []NIC{{Switch: "lan0", MAC: "02:00:00:00:00:01"}},
			PCI:   []string{"00:04.0"}},
		{Name: "mb0", MemoryMiB: 16, VPs: 1, Kernel: "mbkernel", Console: ConsoleCOM1, Autostart: true, OnReboot: OnRebootStop},
	}
	if !reflect.DeepEqual(c.Partitions, want) {
		t.Errorf("partitions\n%+v\nwant\n%+v", c.Partitions, want)
	}
	if want := []Switch{{Name: "lan0", RootAddress: "10.0.0.1/24", RootMAC: "00:15:5d:ff:ff:00"}}; !reflect.DeepEqual(c.Switches, want) {
		t.Errorf("switches %+v, want %+v", c.Switches, want)
	}
	if got := c.Modules(); !reflect.DeepEqual(got, []string{"vmlinuz", "initrd.img", "root.img", "data.img", "mbkernel"}) {
		t.Errorf("modules %q", got)
	}
	if err := c.Check(map[string]int{ModuleName: len(data), "vmlinuz": 1 << 20, "initrd.img": 1 << 19, "mbkernel": 4096,
		"root.img": 1 << 20, "data.img": 512}); err != nil {
		t.Errorf("Check with every module: %v", err)
	}
	// The example documents every key: the first partition sets each one.
	for _, k := range partitionKeys {
		if _, ok := c.lines[fieldPath(0, k.name)]; !ok {
			t.Errorf("example.toml's first partition does not show key %q", k.name)
		}
	}
	for _, k := range diskKeys {
		if _, ok := c.lines[diskPath(0, 0, k.name)]; !ok {
			t.Errorf("example.toml's first disk does not show key %q", k.name)
		}
	}
	for _, k := range nicKeys {
		if _, ok := c.lines[nicPath(0, 0, k.name)]; !ok {
			t.Errorf("example.toml's first NIC does not show key %q", k.name)
		}
	}
	for _, k := range switchKeys {
		if _, ok := c.lines[switchPath(0, k.name)]; !ok {
			t.Errorf("example.toml's first switch does not show key %q", k.name)
		}
	}
	// And every key of the Go types is one the file may set.
	for _, tc := range []struct {
		typ reflect.Type
		t   *table
	}{
		{reflect.TypeFor[Partition](), partitionTable},
		{reflect.TypeFor[Disk](), subTables["disk"]},
		{reflect.TypeFor[NIC](), subTables["nic"]},
		{reflect.TypeFor[Switch](), switchTable},
	} {
		for i := range tc.typ.NumField() {
			if _, ok := tc.t.key(tc.typ.Field(i).Tag.Get("toml")); !ok {
				t.Errorf("field %s.%s has no key", tc.typ.Name(), tc.typ.Field(i).Name)
			}
		}
		if len(tc.t.keys) != tc.typ.NumField() {
			t.Errorf("%s: %d keys for %d fields", tc.typ.Name(), len(tc.t.keys), tc.typ.NumField())
		}
	}
}

// The README documents the format with this example: keep them one.
func TestREADMEShowsTheExample(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Skip(err)
	}
	example, err := os.ReadFile("example.toml")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(readme), "```toml\n"+string(example)+"```\n") {
		t.Error("README.md does not show root/config/example.toml as it is: copy the file into its toml block")
	}
}

func TestParseDefaults(t *testing.T) {
	c, err := Parse("d.toml", []byte(partition("a")))
	if err != nil {
		t.Fatal(err)
	}
	want := Partition{Name: "a", MemoryMiB: 64, VPs: 1, Kernel: "vmlinuz", Console: ConsoleCOM1, Autostart: true, OnReboot: OnRebootRestart}
	if !reflect.DeepEqual(c.Partitions, []Partition{want}) {
		t.Errorf("got %+v, want %+v", c.Partitions, want)
	}
	c, err = Parse("d.toml", []byte(partition("a", "autostart = false", "console = \"none\"", "on_reboot = \"stop\"")))
	if err != nil {
		t.Fatal(err)
	}
	if p := c.Partitions[0]; p.Autostart || p.Console != ConsoleNone || p.OnReboot != OnRebootStop {
		t.Errorf("explicit values replaced by defaults: %+v", p)
	}
	if c.File() != "d.toml" {
		t.Errorf("File() = %q", c.File())
	}
}

// The array of inline tables is the same configuration as [[partition]]
// tables, with the same errors.
func TestParseInlineTables(t *testing.T) {
	c, err := Parse("i.toml", []byte("partition = [\n  {name = \"a\", memory_mib = 8, kernel = \"k\"},\n  {name = \"b\", memory_mib = 9, kernel = \"k\"},\n]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Partitions) != 2 || c.Partitions[1].Name != "b" || c.Partitions[1].VPs != 1 {
		t.Errorf("%+v", c.Partitions)
	}
	_, err = Parse("i.toml", []byte("partition = [\n  {name = \"a\", memory_mib = 8, kernel = \"k\"},\n  {name = \"b\", memory_mib = 1, kernel = \"k\"},\n]\n"))
	if want := "i.toml:3: partition[1].memory_mib: 1 MiB; a partition needs at least 2 MiB and at most 4064 MiB"; err == nil || err.Error() != want {
		t.Errorf("got %v\nwant %s", err, want)
	}
}

// Every error, with its exact message.
func TestParseErrors(t *testing.T) {
	long := strings.Repeat("x", 33)
	for _, tc := range []struct {
		name, file, want string
	}{
		{"empty file", "", "c.toml: partition: no partitions; add a [[partition]] table for each"},
		{"syntax", "[[partition]]\nname = 'a\n", "c.toml:2: TOML syntax: literal strings cannot have new lines"},
		{"unknown key", partition("a", "memory = 5"),
			"c.toml:5: partition[0].memory: unknown key; a partition takes name, memory_mib, vps, host_cpus, kernel, kernel_format, initrd, cmdline, console, autostart, on_reboot, disk, nic, pci"},
		{"unknown top-level key", "version = 2\n" + partition("a"), "c.toml:1: version: unknown key; the file holds [[partition]] and [[switch]] tables"},
		{"unknown table", partition("a") + "[machine]\nx = 1\n", "c.toml:6: machine: unknown table; the file holds [[partition]] and [[switch]] tables"},
		{"sub-table", partition("a") + "[partition.net]\nx = 1\n",
			"c.toml:6: partition[0].net: unknown table; a partition takes the keys name, memory_mib, vps, host_cpus, kernel, kernel_format, initrd, cmdline, console, autostart, on_reboot, disk, nic, pci"},
		{"dotted key", partition("a", "kernel_format.x = 1"), "c.toml:5: partition[0].kernel_format.x: kernel_format is a string, not a table"},
		{"single table", "[partition]\nname = \"a\"\n", "c.toml:1: partition: a single table; write [[partition]] (an array of tables), one per partition"},
		{"partition not an array", "partition = 3\n", "c.toml:1: partition: an integer; write [[partition]] tables, one per partition"},
		{"array of strings", "partition = [\"a\"]\n", "c.toml:1: partition: an array holding a string; each partition is a table"},
		{"wrong type", partition("a", "vps = \"one\""), "c.toml:5: partition[0].vps: a string; want an integer"},
		{"bool as integer", partition("a", "autostart = 1"), "c.toml:5: partition[0].autostart: an integer; want a boolean (true or false)"},
		{"float memory", "[[partition]]\nname = \"a\"\nmemory_mib = 1.5\nkernel = \"k\"\n", "c.toml:3: partition[0].memory_mib: a float; want an integer"},
		{"twice", partition("a", "name = \"b\""), "c.toml:5: partition[0].name: set twice (first on line 2)"},
		{"negative memory", "[[partition]]\nname = \"a\"\nmemory_mib = -5\nkernel = \"k\"\n",
			"c.toml:3: partition[0].memory_mib: out of range; a partition needs at least 2 MiB and at most 4064 MiB"},
		{"huge memory", "[[partition]]\nname = \"a\"\nmemory_mib = 99999999999999999999\nkernel = \"k\"\n",
			"c.toml:3: partition[0].memory_mib: out of range; a partition needs at least 2 MiB and at most 4064 MiB"},
		{"zero memory", partition("a") + "[[partition]]\nname = \"b\"\nmemory_mib = 0\nkernel = \"k\"\n",
			"c.toml:8: partition[1].memory_mib: 0 MiB; a partition needs at least 2 MiB and at most 4064 MiB"},
		{"too much memory", "[[partition]]\nname = \"a\"\nmemory_mib = 4065\nkernel = \"k\"\n",
			"c.toml:3: partition[0].memory_mib: 4065 MiB; a partition needs at least 2 MiB and at most 4064 MiB"},
		{"memory missing", "\n[[partition]]\nname = \"a\"\nkernel = \"k\"\n",
			"c.toml:2: partition[0].memory_mib: missing; a partition needs at least 2 MiB and at most 4064 MiB"},
		{"too many vps", partition("a", "vps = 16"), "c.toml:5: partition[0].vps: 16 VPs; a partition has 1 to 15 VPs"},
		{"no vps", partition("a", "vps = 0"), "c.toml:5: partition[0].vps: 0 VPs; a partition has 1 to 15 VPs"},
		{"huge vps", partition("a", "vps = 99999999999999999999"), "c.toml:5: partition[0].vps: out of range; a partition has 1 to 15 VPs"},
		{"name missing", "[[partition]]\nmemory_mib = 8\nkernel = \"k\"\n", "c.toml:1: partition[0].name: missing; every partition needs a name"},
		{"name with a space", partition("a b"),
			`c.toml:2: partition[0].name: "a b": a partition name uses letters, digits, '.', '_' and '-', and starts with a letter or digit`},
		{"name with a colon", partition("a:b"),
			`c.toml:2: partition[0].name: "a:b": a partition name uses letters, digits, '.', '_' and '-', and starts with a letter or digit`},
		{"name starting with a dot", partition(".a"),
			`c.toml:2: partition[0].name: ".a": a partition name uses letters, digits, '.', '_' and '-', and starts with a letter or digit`},
		{"name too long", partition(long), `c.toml:2: partition[0].name: "` + long + `": a partition name of 33 characters; at most 32`},
		{"name ending in gohv", partition("test-gohv"),
			`c.toml:2: partition[0].name: "test-gohv": a partition name may not end in "gohv" (its lines would read as gohv's own protocol lines)`},
		{"duplicate name", partition("web") + partition("db") + partition("web"),
			`c.toml:12: partition[2].name: "web" is also partition[0]'s name; names must be unique`},
		{"kernel missing", "[[partition]]\nname = \"a\"\nmemory_mib = 8\n",
			"c.toml:1: partition[0].kernel: missing; name the boot module that holds the partition's kernel"},
		{"kernel a path", "[[partition]]\nname = \"a\"\nmemory_mib = 8\nkernel = \"/boot/vmlinuz\"\n",
			`c.toml:4: partition[0].kernel: "/boot/vmlinuz": a boot-module name uses letters, digits, '.', '_' and '-', and starts with a letter or digit`},
		{"kernel name too long", "[[partition]]\nname = \"a\"\nmemory_mib = 8\nkernel = \"vmlinuz-6.1.0-28-amd64-x86\"\n",
			`c.toml:4: partition[0].kernel: "vmlinuz-6.1.0-28-amd64-x86": a boot-module name of 26 characters; at most 24`},
		{"kernel is the config", "[[partition]]\nname = \"a\"\nmemory_mib = 8\nkernel = \"config\"\n",
			`c.toml:4: partition[0].kernel: "config" is the configuration's own module`},
		{"initrd is the kernel", partition("a", "initrd = \"vmlinuz\""), `c.toml:5: partition[0].initrd: "vmlinuz" is also the kernel`},
		{"initrd is the config", partition("a", "initrd = \"config\""), `c.toml:5: partition[0].initrd: "config" is the configuration's own module`},
		{"initrd with a comma", partition("a", "initrd = \"a,b\""),
			`c.toml:5: partition[0].initrd: "a,b": a boot-module name uses letters, digits, '.', '_' and '-', and starts with a letter or digit`},
		{"pci address", partition("a", "pci = [\"00:04.0\", \"0:4.0\"]"),
			`c.toml:5: partition[0].pci[1]: "0:4.0"; want a PCI address bb:dd.f in hex (bus 00-ff, device 00-1f, function 0-7), e.g. "00:04.0"`},
		{"pci device out of range", partition("a", "pci = [\"00:20.0\"]"),
			`c.toml:5: partition[0].pci[0]: "00:20.0"; want a PCI address bb:dd.f in hex (bus 00-ff, device 00-1f, function 0-7), e.g. "00:04.0"`},
		{"pci twice", partition("a", "pci = [\"00:04.0\"]") + partition("b", "pci = [\"00:04.0\"]"),
			`c.toml:10: partition[1].pci[0]: 00:04.0 is also given to partition[0].pci[0]; a function belongs to one partition`},
		{"pci not strings", partition("a", "pci = [4]"), `c.toml:5: partition[0].pci: an array holding an integer; each PCI function is a string "bb:dd.f"`},
		{"format", partition("a", "kernel_format = \"elf\""),
			`c.toml:5: partition[0].kernel_format: "elf"; want "linux" or "multiboot" (or leave it out to tell them apart by their headers)`},
		{"cmdline too long", partition("a", "cmdline = \""+strings.Repeat("a", 2048)+"\""),
			"c.toml:5: partition[0].cmdline: 2048 bytes; at most 2047 (Linux's limit)"},
		{"cmdline newline", partition("a", "cmdline = \"quiet\\ninit=/bin/sh\""),
			`c.toml:5: partition[0].cmdline: a control character ('\n') at byte 5; separate words with spaces`},
		{"console", partition("a", "console = \"com2\""), `c.toml:5: partition[0].console: "com2"; want "com1" (COM1 on the root console) or "none"`},
		{"on_reboot", partition("a", "on_reboot = \"reset\""), `c.toml:5: partition[0].on_reboot: "reset"; want "restart" or "stop"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse("c.toml", []byte(tc.file))
			if err == nil {
				t.Fatalf("accepted: %+v", c)
			}
			if c != nil {
				t.Errorf("a configuration as well as an error")
			}
			if err.Error() != tc.want {
				t.Errorf("got\n%v\nwant\n%s", err, tc.want)
			}
			var es Errors
			if !errors.As(err, &es) || len(es) != 1 {
				t.Errorf("want one Error in an Errors, got %#v", err)
			}
		})
	}
}

// All the problems of a file are reported at once, in line order, each on a
// line of its own.
func TestParseReportsEveryProblem(t *testing.T) {
	file := "[[partition]]\nname = \"a\"\nmemory_mib = 1\nkernel = \"k\"\nvps = 16\n" +
		"[[partition]]\nname = \"a\"\nmemory_mib = 8\non_reboot = \"halt\"\n"
	_, err := Parse("m.toml", []byte(file))
	want := "m.toml:3: partition[0].memory_mib: 1 MiB; a partition needs at least 2 MiB and at most 4064 MiB\n" +
		"m.toml:5: partition[0].vps: 16 VPs; a partition has 1 to 15 VPs\n" +
		"m.toml:6: partition[1].kernel: missing; name the boot module that holds the partition's kernel\n" +
		"m.toml:7: partition[1].name: \"a\" is also partition[0]'s name; names must be unique\n" +
		"m.toml:9: partition[1].on_reboot: \"halt\"; want \"restart\" or \"stop\""
	if err == nil || err.Error() != want {
		t.Errorf("got\n%v\nwant\n%s", err, want)
	}
	_, err = Parse("u.toml", []byte(partition("a", "memory = 1", "cpus = 2")))
	want = "u.toml:5: partition[0].memory: unknown key; a partition takes name, memory_mib, vps, host_cpus, kernel, kernel_format, initrd, cmdline, console, autostart, on_reboot, disk, nic, pci\n" +
		"u.toml:6: partition[0].cpus: unknown key; a partition takes name, memory_mib, vps, host_cpus, kernel, kernel_format, initrd, cmdline, console, autostart, on_reboot, disk, nic, pci"
	if err == nil || err.Error() != want {
		t.Errorf("got\n%v\nwant\n%s", err, want)
	}
}

func TestParseNamesTheFile(t *testing.T) {
	if _, err := Parse("", nil); err == nil || !strings.HasPrefix(err.Error(), "configuration: ") {
		t.Errorf("unnamed input: %v", err)
	}
}

func TestCheck(t *testing.T) {
	c, err := Parse("c.toml", []byte(partition("a", "initrd = \"initrd.img\"")+partition("b")))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Check(map[string]int{"config": 100, "vmlinuz": 5000, "initrd.img": 10}); err != nil {
		t.Errorf("all there: %v", err)
	}
	for _, tc := range []struct {
		mods map[string]int
		want string
	}{
		{map[string]int{"config": 100, "initrd.img": 10},
			"c.toml:4: partition[0].kernel: no boot module \"vmlinuz\"; the boot loader passed config, initrd.img\n" +
				"c.toml:9: partition[1].kernel: no boot module \"vmlinuz\"; the boot loader passed config, initrd.img"},
		{map[string]int{"vmlinuz": 5000, "initrd.img": 0},
			"c.toml:5: partition[0].initrd: boot module \"initrd.img\" is empty"},
		{nil, "c.toml:4: partition[0].kernel: no boot module \"vmlinuz\"; the boot loader passed none\n" +
			"c.toml:5: partition[0].initrd: no boot module \"initrd.img\"; the boot loader passed none\n" +
			"c.toml:9: partition[1].kernel: no boot module \"vmlinuz\"; the boot loader passed none"},
	} {
		if err := c.Check(tc.mods); err == nil || err.Error() != tc.want {
			t.Errorf("Check(%v) =\n%v\nwant\n%s", tc.mods, err, tc.want)
		}
	}
}

func TestWhere(t *testing.T) {
	c, err := Parse("w.toml", []byte(partition("a", "initrd = \"i\"")))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		key, want string
	}{
		{"initrd", "w.toml:5: partition[0].initrd"},
		{"cmdline", "w.toml:1: partition[0].cmdline"}, // left out: the partition's line
		{"", "w.toml:1: partition[0]"},
	} {
		if got := c.Where(0, tc.key); got != tc.want {
			t.Errorf("Where(0, %q) = %q, want %q", tc.key, got, tc.want)
		}
	}
}

func TestDetectKernelFormat(t *testing.T) {
	linux := make([]byte, 0x1000)
	linux[0x1fe], linux[0x1ff] = 0x55, 0xaa
	copy(linux[0x202:], "HdrS")
	mb := make([]byte, 0x1000)
	le := func(b []byte, off int, v uint32) {
		b[off], b[off+1], b[off+2], b[off+3] = byte(v), byte(v>>8), byte(v>>16), byte(v>>24)
	}
	le(mb, 0x40, 0x1badb002)
	le(mb, 0x44, 0x10003)
	le(mb, 0x48, uint32(-(0x1badb002+0x10003)&0xffffffff))
	both := append([]byte(nil), linux...)
	copy(both[0x40:], mb[0x40:0x4c])
	for _, tc := range []struct {
		name string
		k    []byte
		want string
		err  string
	}{
		{"bzImage", linux, FormatLinux, ""},
		{"multiboot", mb, FormatMultiboot, ""},
		{"both", both, "", "both"},
		{"neither", make([]byte, 100), "", "neither a Linux bzImage"},
		{"empty", nil, "", "neither"},
		{"bad checksum", append(mb[:0x48:0x48], 1, 2, 3, 4), "", "neither"},
	} {
		got, err := DetectKernelFormat(tc.k)
		if got != tc.want || (err == nil) != (tc.err == "") || err != nil && !strings.Contains(err.Error(), tc.err) {
			t.Errorf("%s: %q, %v; want %q, an error about %q", tc.name, got, err, tc.want, tc.err)
		}
	}
	p := Partition{Name: "a", Kernel: "k"}
	if f, err := p.Format(mb); f != FormatMultiboot || err != nil {
		t.Errorf("Format detects: %q %v", f, err)
	}
	p.KernelFormat = FormatLinux
	if f, err := p.Format(mb); f != FormatLinux || err != nil {
		t.Errorf("Format overrides: %q %v", f, err)
	}
}

func TestCheckModuleName(t *testing.T) {
	for _, ok := range []string{"config", "vmlinuz", "initrd.img", "a", "A-1_b.c", strings.Repeat("x", 24)} {
		if err := CheckModuleName(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "a b", "a,b", "a/b", "-a", ".a", "a=b", "a;b", "\x00", "é", strings.Repeat("x", 25), "xgohv", "GOHV"} {
		if err := CheckModuleName(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestParseDisks(t *testing.T) {
	c, err := Parse("d.toml", []byte(partition("a",
		"[[partition.disk]]", `module = "r.img"`,
		"[[partition.disk]]", `module = "s.img"`, "controller = 1", "lun = 5",
		"[[partition.disk]]", `module = "t.img"`, "read_only = true",
	)+partition("b", `disk = [{module = "t.img", read_only = true}, {module = "u.img", lun = 9}]`)))
	if err != nil {
		t.Fatal(err)
	}
	want := []Disk{{Module: "r.img"}, {Module: "s.img", Controller: 1, LUN: 5}, {Module: "t.img", LUN: 2, ReadOnly: true}}
	if !reflect.DeepEqual(c.Partitions[0].Disks, want) {
		t.Errorf("disks %+v", c.Partitions[0].Disks)
	}
	if want := []Disk{{Module: "t.img", ReadOnly: true}, {Module: "u.img", LUN: 9}}; !reflect.DeepEqual(c.Partitions[1].Disks, want) {
		t.Errorf("inline disks %+v", c.Partitions[1].Disks)
	}
	if got := c.Modules(); !reflect.DeepEqual(got, []string{"vmlinuz", "r.img", "s.img", "t.img", "u.img"}) {
		t.Errorf("modules %q", got)
	}
	err = c.Check(map[string]int{"vmlinuz": 1, "r.img": 1024, "s.img": 1000, "t.img": 0})
	want2 := []string{
		`d.toml:8: partition[0].disk[1].module: boot module "s.img" holds 1000 bytes; a disk image is a whole number of 512-byte blocks, at least one`,
		`d.toml:12: partition[0].disk[2].module: boot module "t.img" holds 0 bytes; a disk image is a whole number of 512-byte blocks, at least one`,
		`d.toml:18: partition[1].disk[0].module: boot module "t.img" holds 0 bytes`,
		`d.toml:18: partition[1].disk[1].module: no boot module "u.img"; the boot loader passed r.img, s.img, t.img, vmlinuz`,
	}
	for _, w := range want2 {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("Check: %v\nwant a line with %s", err, w)
		}
	}
}

func TestParseDiskErrors(t *testing.T) {
	for _, tc := range []struct{ name, file, want string }{
		{"no module", partition("a", "[[partition.disk]]", "lun = 1"),
			"c.toml:5: partition[0].disk[0].module: missing; name the boot module that holds the disk image"},
		{"bad module name", partition("a", "[[partition.disk]]", `module = "a b"`),
			`c.toml:6: partition[0].disk[0].module: "a b": a boot-module name uses letters, digits, '.', '_' and '-', and starts with a letter or digit`},
		{"kernel as disk", partition("a", "[[partition.disk]]", `module = "vmlinuz"`),
			`c.toml:6: partition[0].disk[0].module: "vmlinuz" is also the configuration, kernel or initrd`},
		{"controller", partition("a", "[[partition.disk]]", `module = "d"`, "controller = 4"),
			"c.toml:7: partition[0].disk[0].controller: 4; want 0 to 3"},
		{"lun", partition("a", "[[partition.disk]]", `module = "d"`, "lun = 64"),
			"c.toml:7: partition[0].disk[0].lun: 64; want 0 to 63"},
		{"duplicate lun", partition("a", "[[partition.disk]]", `module = "d"`, "[[partition.disk]]", `module = "e"`, "lun = 0"),
			"c.toml:9: partition[0].disk[1].lun: controller 0 LUN 0 is also disk[0]'s; give each disk its own"},
		{"writable twice", partition("a", "[[partition.disk]]", `module = "d"`) + partition("b", "[[partition.disk]]", `module = "d"`),
			`c.toml:12: partition[1].disk[0].module: "d" is also partition[0].disk[0]'s image; a writable image backs one disk only (make both read_only to share it)`},
		{"read-only of a writable", partition("a", "[[partition.disk]]", `module = "d"`) + partition("b", "[[partition.disk]]", `module = "d"`, "read_only = true"),
			`c.toml:12: partition[1].disk[0].module: "d" is also partition[0].disk[0]'s writable image; an image another disk writes cannot be shared`},
		{"unknown disk key", partition("a", "[[partition.disk]]", `module = "d"`, "size = 3"),
			"c.toml:7: partition[0].disk[0].size: unknown key; a disk takes module, controller, lun, read_only"},
		{"wrong type", partition("a", "[[partition.disk]]", `module = "d"`, `read_only = "yes"`),
			"c.toml:7: partition[0].disk[0].read_only: a string; want a boolean (true or false)"},
		{"single disk table", partition("a") + "[partition.disk]\nmodule = \"d\"\n",
			"c.toml:6: partition[0].disk: a single table; write [[partition.disk]] (an array of tables), one per disk"},
		{"inline and tables", partition("a", `disk = [{module = "d"}]`, "[[partition.disk]]", `module = "e"`),
			"c.toml:6: key disk already exists as a value"}, // the TOML parser refuses it
		{"inline not tables", partition("a", `disk = [1]`),
			"c.toml:5: partition[0].disk: an array holding an integer; each disk is a table"},
		{"disk before any partition", "[[partition.disk]]\nmodule = \"d\"\n",
			"c.toml:1: partition.disk: unknown table; the file holds [[partition]] and [[switch]] tables"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("c.toml", []byte(tc.file))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v\nwant %s", err, tc.want)
			}
		})
	}
}

// swtch is a [[switch]] table named name with extra lines appended.
func swtch(name string, extra ...string) string {
	return "[[switch]]\nname = \"" + name + "\"\n" + strings.Join(extra, "\n") + "\n"
}

// Switches come before or after the partitions; NICs are tables or inline;
// MACs left out get their defaults and written ones come out in lower case.
func TestParseSwitchesAndNICs(t *testing.T) {
	file := swtch("lan0") +
		partition("a",
			"[[partition.nic]]", `switch = "lan0"`,
			"[[partition.nic]]", `switch = "lan1"`, `mac = "02:AA:bb:CC:dd:EE"`) +
		swtch("lan1", `root_address = "192.168.7.1/24"`, `root_mac = "06:00:00:00:00:0A"`) +
		"[[partition.nic]]\nswitch = \"lan1\"\n" + // still partition a's, after a [[switch]]
		partition("b", `nic = [{switch = "lan1"}, {mac = "0a:00:00:00:00:01", switch = "lan0"}]`) +
		partition("c")
	c, err := Parse("n.toml", []byte(file))
	if err != nil {
		t.Fatal(err)
	}
	wantSwitches := []Switch{
		{Name: "lan0", RootMAC: "00:15:5d:ff:ff:00"},
		{Name: "lan1", RootAddress: "192.168.7.1/24", RootMAC: "06:00:00:00:00:0a"},
	}
	if !reflect.DeepEqual(c.Switches, wantSwitches) {
		t.Errorf("switches %+v\nwant %+v", c.Switches, wantSwitches)
	}
	for i, want := range [][]NIC{
		{{Switch: "lan0", MAC: "00:15:5d:00:00:00"}, {Switch: "lan1", MAC: "02:aa:bb:cc:dd:ee"}, {Switch: "lan1", MAC: "00:15:5d:00:00:02"}},
		{{Switch: "lan1", MAC: "00:15:5d:00:01:00"}, {Switch: "lan0", MAC: "0a:00:00:00:00:01"}},
		nil,
	} {
		if got := c.Partitions[i].NICs; !reflect.DeepEqual(got, want) {
			t.Errorf("partition[%d] NICs %+v\nwant %+v", i, got, want)
		}
	}
	if got := c.Modules(); !reflect.DeepEqual(got, []string{"vmlinuz"}) {
		t.Errorf("modules %q: NICs name no modules", got)
	}
	// Lines and paths of the switch and NIC keys, for errors found later.
	for path, line := range map[string]int{
		"switch[0]": 1, "switch[1].root_mac": 16, "partition[0].nic[1].mac": 12,
		"partition[0].nic[2]": 17, "partition[1].nic[1]": 23,
	} {
		if got := c.line(path); got != line {
			t.Errorf("%s on line %d, want %d", path, got, line)
		}
	}

	// Switches as an array of inline tables, before any table header.
	c, err = Parse("i.toml", []byte("switch = [{name = \"lan0\"}, {name = \"lan1\", root_mac = \"02:00:00:00:00:01\"}]\n"+
		partition("a", `nic = [{switch = "lan1"}]`)))
	if err != nil {
		t.Fatal(err)
	}
	wantSwitches = []Switch{{Name: "lan0", RootMAC: "00:15:5d:ff:ff:00"}, {Name: "lan1", RootMAC: "02:00:00:00:00:01"}}
	if !reflect.DeepEqual(c.Switches, wantSwitches) || !reflect.DeepEqual(c.Partitions[0].NICs, []NIC{{Switch: "lan1", MAC: "00:15:5d:00:00:00"}}) {
		t.Errorf("inline: %+v %+v", c.Switches, c.Partitions[0].NICs)
	}
}

func TestDefaultMACs(t *testing.T) {
	for _, tc := range []struct{ got, want string }{
		{DefaultNICMAC(0, 0), "00:15:5d:00:00:00"},
		{DefaultNICMAC(1, 0), "00:15:5d:00:01:00"},
		{DefaultNICMAC(0, 7), "00:15:5d:00:00:07"},
		{DefaultNICMAC(0x1234, 5), "00:15:5d:12:34:05"},
		{DefaultRootMAC(0), "00:15:5d:ff:ff:00"},
		{DefaultRootMAC(3), "00:15:5d:ff:ff:03"},
	} {
		if tc.got != tc.want {
			t.Errorf("got %s, want %s", tc.got, tc.want)
		}
	}
	// Distinct, valid and unicast for every partition below 0xffff with
	// MaxNICs NICs and 256 switches.
	seen := map[string]bool{}
	add := func(mac string) {
		if seen[mac] {
			t.Fatalf("%s twice", mac)
		}
		seen[mac] = true
		if got, msg := checkMAC(mac, "mac"); got != mac {
			t.Fatalf("%s: %s", mac, msg)
		}
	}
	for sw := range 256 {
		add(DefaultRootMAC(sw))
	}
	for p := range 0xffff {
		for n := range MaxNICs {
			add(DefaultNICMAC(p, n))
		}
	}
}

// Every error about switches and NICs, with its exact message.
func TestParseNetworkErrors(t *testing.T) {
	nic := func(lines ...string) string { return "[[partition.nic]]\n" + strings.Join(lines, "\n") }
	lan0 := swtch("lan0") // 3 lines, the last empty
	nine := []string{}
	for range MaxNICs + 1 {
		nine = append(nine, nic(`switch = "lan0"`))
	}
	for _, tc := range []struct {
		name, file, want string
	}{
		// The walk.
		{"single switch table", "[switch]\nname = \"lan0\"\n" + partition("a"),
			"c.toml:1: switch: a single table; write [[switch]] (an array of tables), one per switch"},
		{"switch not an array", "switch = 3\n" + partition("a"),
			"c.toml:1: switch: an integer; write [[switch]] tables, one per switch"},
		{"switch array of strings", "switch = [\"lan0\"]\n" + partition("a"),
			"c.toml:1: switch: an array holding a string; each switch is a table"},
		{"unknown switch key", swtch("lan0", "vlan = 5") + partition("a"),
			"c.toml:3: switch[0].vlan: unknown key; a switch takes name, root_address, root_mac"},
		{"unknown inline switch key", "switch = [{name = \"lan0\", vlan = 5}]\n" + partition("a"),
			"c.toml:1: switch[0].vlan: unknown key; a switch takes name, root_address, root_mac"},
		{"switch sub-table", partition("a") + lan0 + "[switch.ports]\nx = 1\n",
			"c.toml:9: switch[0].ports: unknown table; a switch takes the keys name, root_address, root_mac"},
		{"switch dotted key", swtch("lan0", "root_mac.x = 1") + partition("a"),
			"c.toml:3: switch[0].root_mac.x: root_mac is a string, not a table"},
		{"switch wrong type", swtch("lan0", "root_address = 10") + partition("a"),
			"c.toml:3: switch[0].root_address: an integer; want a string"},
		{"switch key twice", swtch("lan0", `name = "lan1"`) + partition("a"),
			"c.toml:3: switch[0].name: set twice (first on line 2)"},
		{"unknown NIC key", partition("a", nic(`switch = "lan0"`, "vlan = 5")) + lan0,
			"c.toml:7: partition[0].nic[0].vlan: unknown key; a NIC takes switch, mac"},
		{"single NIC table", partition("a") + "[partition.nic]\nswitch = \"lan0\"\n" + lan0,
			"c.toml:6: partition[0].nic: a single table; write [[partition.nic]] (an array of tables), one per NIC"},
		{"inline NICs not tables", partition("a", "nic = [1]") + lan0,
			"c.toml:5: partition[0].nic: an array holding an integer; each NIC is a table"},
		{"NIC wrong type", partition("a", nic("mac = 5")) + lan0,
			"c.toml:6: partition[0].nic[0].mac: an integer; want a string"},
		{"NIC before any partition", nic(`switch = "lan0"`) + "\n" + partition("a") + lan0,
			"c.toml:1: partition.nic: unknown table; the file holds [[partition]] and [[switch]] tables"},

		// Switches.
		{"switch name missing", "[[switch]]\nroot_address = \"10.0.0.1/24\"\n" + partition("a"),
			"c.toml:1: switch[0].name: missing; every switch needs a name"},
		{"switch name with a space", swtch("lan 0") + partition("a"),
			`c.toml:2: switch[0].name: "lan 0": a switch name uses letters, digits, '.', '_' and '-', and starts with a letter or digit`},
		{"switch name too long", swtch(strings.Repeat("s", 33)) + partition("a"),
			`c.toml:2: switch[0].name: "` + strings.Repeat("s", 33) + `": a switch name of 33 characters; at most 32`},
		{"duplicate switch name", lan0 + partition("a") + lan0,
			`c.toml:10: switch[1].name: "lan0" is also switch[0]'s name; names must be unique`},
		{"root address without a prefix", swtch("lan0", `root_address = "10.0.0.1"`) + partition("a"),
			`c.toml:3: switch[0].root_address: "10.0.0.1"; want the root's IPv4 address and its network's prefix length, such as "10.0.0.1/24"`},
		{"root address not an address", swtch("lan0", `root_address = "router/24"`) + partition("a"),
			`c.toml:3: switch[0].root_address: "router/24"; want the root's IPv4 address and its network's prefix length, such as "10.0.0.1/24"`},
		{"root address IPv6", swtch("lan0", `root_address = "fd00::1/64"`) + partition("a"),
			`c.toml:3: switch[0].root_address: "fd00::1/64": not an IPv4 address; want the root's IPv4 address and its network's prefix length, such as "10.0.0.1/24"`},
		{"root address IPv4 in IPv6", swtch("lan0", `root_address = "::ffff:10.0.0.1/120"`) + partition("a"),
			`c.toml:3: switch[0].root_address: "::ffff:10.0.0.1/120": not an IPv4 address; want the root's IPv4 address and its network's prefix length, such as "10.0.0.1/24"`},
		{"root address /32", swtch("lan0", `root_address = "10.0.0.1/32"`) + partition("a"),
			`c.toml:3: switch[0].root_address: "10.0.0.1/32": a /32 prefix; want a prefix length of 1 to 30 (a network with room for the root and its guests)`},
		{"root address /31", swtch("lan0", `root_address = "10.0.0.1/31"`) + partition("a"),
			`c.toml:3: switch[0].root_address: "10.0.0.1/31": a /31 prefix; want a prefix length of 1 to 30 (a network with room for the root and its guests)`},
		{"root address /0", swtch("lan0", `root_address = "10.0.0.1/0"`) + partition("a"),
			`c.toml:3: switch[0].root_address: "10.0.0.1/0": a /0 prefix; want a prefix length of 1 to 30 (a network with room for the root and its guests)`},
		{"root address the network's", swtch("lan0", `root_address = "10.1.2.0/23"`) + partition("a"),
			`c.toml:3: switch[0].root_address: "10.1.2.0/23": the network address of 10.1.2.0/23; want a host address in it, such as "10.1.2.1/23"`},
		{"root address the broadcast", swtch("lan0", `root_address = "10.1.3.255/23"`) + partition("a"),
			`c.toml:3: switch[0].root_address: "10.1.3.255/23": the broadcast address of 10.1.2.0/23; want a host address in it, such as "10.1.2.1/23"`},
		{"root address loopback", swtch("lan0", `root_address = "127.0.0.1/8"`) + partition("a"),
			`c.toml:3: switch[0].root_address: "127.0.0.1/8": a loopback address; want an address the switch's guests can reach, such as "10.0.0.1/24"`},
		{"root address multicast", swtch("lan0", `root_address = "224.0.0.1/24"`) + partition("a"),
			`c.toml:3: switch[0].root_address: "224.0.0.1/24": a multicast address; want a unicast address, such as "10.0.0.1/24"`},
		{"root MAC format", swtch("lan0", `root_mac = "00-15-5d-00-00-01"`) + partition("a"),
			`c.toml:3: switch[0].root_mac: "00-15-5d-00-00-01"; a MAC address is six two-digit hex bytes separated by colons, such as "00:15:5d:00:01:00"`},
		{"root MAC multicast", swtch("lan0", `root_mac = "01:00:5e:00:00:01"`) + partition("a"),
			`c.toml:3: switch[0].root_mac: "01:00:5e:00:00:01": a multicast address (an odd first byte); want a unicast address (an even first byte), or leave root_mac out for gohv's default`},

		// NICs.
		{"NIC switch missing", partition("a", nic(`mac = "02:00:00:00:00:01"`)) + lan0 + swtch("lan1"),
			"c.toml:5: partition[0].nic[0].switch: missing; name the switch the NIC connects to: lan0, lan1"},
		{"NIC switch missing, no switches", partition("a", nic()),
			"c.toml:5: partition[0].nic[0].switch: missing; name the switch the NIC connects to (the file has none: add a [[switch]] table)"},
		{"NIC switch unknown", partition("a", nic(`switch = "wan"`)) + lan0 + swtch("lan1"),
			`c.toml:6: partition[0].nic[0].switch: "wan": no such switch; the file's switches are lan0, lan1`},
		{"NIC switch unknown, no switches", partition("a", `nic = [{switch = "lan0"}]`),
			`c.toml:5: partition[0].nic[0].switch: "lan0": no such switch; the file has none: add a [[switch]] table with name = "lan0"`},
		{"NIC MAC short", partition("a", nic(`switch = "lan0"`, `mac = "00:15:5d:00:01"`)) + lan0,
			`c.toml:7: partition[0].nic[0].mac: "00:15:5d:00:01"; a MAC address is six two-digit hex bytes separated by colons, such as "00:15:5d:00:01:00"`},
		{"NIC MAC not hex", partition("a", nic(`switch = "lan0"`, `mac = "00:15:5d:00:01:0g"`)) + lan0,
			`c.toml:7: partition[0].nic[0].mac: "00:15:5d:00:01:0g"; a MAC address is six two-digit hex bytes separated by colons, such as "00:15:5d:00:01:00"`},
		{"NIC MAC zero", partition("a", nic(`switch = "lan0"`, `mac = "00:00:00:00:00:00"`)) + lan0,
			`c.toml:7: partition[0].nic[0].mac: "00:00:00:00:00:00": all zeros; want a unicast address other than zero, or leave mac out for gohv's default`},
		{"NIC MAC broadcast", partition("a", nic(`switch = "lan0"`, `mac = "FF:FF:FF:FF:FF:FF"`)) + lan0,
			`c.toml:7: partition[0].nic[0].mac: "FF:FF:FF:FF:FF:FF": the broadcast address; want a unicast address (an even first byte), or leave mac out for gohv's default`},
		{"NIC MAC multicast", partition("a", nic(`switch = "lan0"`, `mac = "33:33:00:00:00:01"`)) + lan0,
			`c.toml:7: partition[0].nic[0].mac: "33:33:00:00:00:01": a multicast address (an odd first byte); want a unicast address (an even first byte), or leave mac out for gohv's default`},
		{"too many NICs", partition("a", nine...) + lan0,
			"c.toml:21: partition[0].nic[8]: 9 NICs; a partition has at most 8"},

		// Every MAC in the file is unique, written or by default.
		{"MAC twice", partition("a", nic(`switch = "lan0"`, `mac = "02:00:00:00:00:01"`)) +
			partition("b", nic(`switch = "lan0"`, `mac = "02:00:00:00:00:01"`)) + lan0,
			"c.toml:14: partition[1].nic[0].mac: 02:00:00:00:00:01 is also partition[0].nic[0].mac; MAC addresses must be unique in the file"},
		{"MAC twice, cases differ", partition("a", nic(`switch = "lan0"`, `mac = "02:00:00:00:00:0a"`)) + swtch("lan0", `root_mac = "02:00:00:00:00:0A"`),
			"c.toml:10: switch[0].root_mac: 02:00:00:00:00:0a is also partition[0].nic[0].mac; MAC addresses must be unique in the file"},
		{"MAC another's default", partition("a", nic(`switch = "lan0"`)) + partition("b", nic(`switch = "lan0"`, `mac = "00:15:5D:00:00:00"`)) + lan0,
			"c.toml:13: partition[1].nic[0].mac: 00:15:5d:00:00:00 is also partition[0].nic[0].mac (its default); MAC addresses must be unique in the file"},
		{"root MAC a switch's default", lan0 + swtch("lan1", `root_mac = "00:15:5d:ff:ff:00"`) + partition("a"),
			"c.toml:6: switch[1].root_mac: 00:15:5d:ff:ff:00 is also switch[0].root_mac (its default); MAC addresses must be unique in the file"},
		{"default MAC taken", swtch("lan0", `root_mac = "00:15:5d:00:00:01"`) + partition("a", nic(`switch = "lan0"`), nic(`switch = "lan0"`)),
			"c.toml:10: partition[0].nic[1].mac: 00:15:5d:00:00:01, the default, is also switch[0].root_mac; MAC addresses must be unique in the file (set mac to another)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse("c.toml", []byte(tc.file))
			if err == nil {
				t.Fatalf("accepted: %+v", c)
			}
			if err.Error() != tc.want {
				t.Errorf("got\n%v\nwant\n%s", err, tc.want)
			}
			var es Errors
			if !errors.As(err, &es) || len(es) != 1 {
				t.Errorf("want one Error in an Errors, got %#v", err)
			}
		})
	}
}

// A file's switch and NIC problems come at once, in line order, with the
// partitions'.
func TestParseReportsEveryNetworkProblem(t *testing.T) {
	file := swtch("lan0", `root_address = "10.0.0.0/24"`, `root_mac = "01:00:00:00:00:00"`) +
		"[[partition]]\nname = \"a\"\nmemory_mib = 1\nkernel = \"k\"\n" +
		"[[partition.nic]]\nswitch = \"lan9\"\nmac = \"zz\"\n" +
		"[[partition.nic]]\nmac = \"00:15:5d:00:00:01\"\n" +
		swtch("lan0")
	_, err := Parse("m.toml", []byte(file))
	want := `m.toml:3: switch[0].root_address: "10.0.0.0/24": the network address of 10.0.0.0/24; want a host address in it, such as "10.0.0.1/24"` + "\n" +
		`m.toml:4: switch[0].root_mac: "01:00:00:00:00:00": a multicast address (an odd first byte); want a unicast address (an even first byte), or leave root_mac out for gohv's default` + "\n" +
		`m.toml:7: partition[0].memory_mib: 1 MiB; a partition needs at least 2 MiB and at most 4064 MiB` + "\n" +
		`m.toml:10: partition[0].nic[0].switch: "lan9": no such switch; the file's switches are lan0` + "\n" +
		`m.toml:11: partition[0].nic[0].mac: "zz"; a MAC address is six two-digit hex bytes separated by colons, such as "00:15:5d:00:01:00"` + "\n" +
		`m.toml:12: partition[0].nic[1].switch: missing; name the switch the NIC connects to: lan0` + "\n" +
		`m.toml:15: switch[1].name: "lan0" is also switch[0]'s name; names must be unique`
	if err == nil || err.Error() != want {
		t.Errorf("got\n%v\nwant\n%s", err, want)
	}
}

// The walker counts lines itself (the parser's Shape rescans the file from
// its start for each key); it counts them as Shape does.
func TestWalkerLines(t *testing.T) {
	data, err := os.ReadFile("example.toml")
	if err != nil {
		t.Fatal(err)
	}
	data = append(data, "\n\n[[partition]]\r\nname = 'x'\n  [[ switch ]]\nname.x = 1"...)
	w := walker{c: &Config{lines: map[string]int{}}, present: map[string]bool{}}
	w.walk(data)
	p := w.p
	p.Reset(data)
	n := 0
	for p.NextExpression() {
		it := p.Expression().Key()
		for it.Next() {
			r := it.Node().Raw
			if got, want := w.line(r), p.Shape(r).Start.Line; got != want {
				t.Errorf("offset %d: line %d, want %d", r.Offset, got, want)
			}
			n++
		}
	}
	if n < 30 {
		t.Errorf("only %d keys compared", n)
	}
}

// TestHostCPUs: host_cpus reads as the VPs' host CPUs; an index beyond
// the host CPUs gohv runs, or a value that is not an integer, is an error
// naming the element.
func TestHostCPUs(t *testing.T) {
	base := "[[partition]]\nname = \"p\"\nmemory_mib = 16\nkernel = \"k\"\nvps = 2\n"
	c, err := Parse("c.toml", []byte(base+"host_cpus = [3, 1]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Partitions[0].HostCPUs; !reflect.DeepEqual(got, []int{3, 1}) {
		t.Errorf("host_cpus %v, want [3 1]", got)
	}
	for in, want := range map[string]string{
		"host_cpus = [0, 16]\n": "c.toml:6: partition[0].host_cpus[1]: host CPU 16; host CPUs are numbered 0 to 15",
		"host_cpus = [-1]\n":    "c.toml:6: partition[0].host_cpus[0]: host CPU -1; host CPUs are numbered 0 to 15",
		"host_cpus = [\"0\"]\n": "c.toml:6: partition[0].host_cpus: an array holding a string; each host CPU is an integer index",
	} {
		_, err := Parse("c.toml", []byte(base+in))
		if err == nil || err.Error() != want {
			t.Errorf("%q: got %v\nwant %s", in, err, want)
		}
	}
}
