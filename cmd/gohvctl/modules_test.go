package main

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"gohv/tools/bochs"
	"gohv/tools/media/bootmedia"
	"gohv/tools/qemu"
)

// configDir writes a configuration naming the modules vmlinuz (two
// partitions) and initrd.img into a directory of its own, with the files
// given beside it, and returns the configuration's path.
func configDir(t *testing.T, files ...string) string {
	t.Helper()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "gohv.toml")
	write(t, cfg, "[[partition]]\nname = \"a\"\nmemory_mib = 64\nkernel = \"vmlinuz\"\ninitrd = \"initrd.img\"\n\n"+
		"[[partition]]\nname = \"b\"\nmemory_mib = 64\nkernel = \"vmlinuz\"\n")
	for _, f := range files {
		write(t, filepath.Join(dir, f), f+" data")
	}
	return cfg
}

func write(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

// recordQEMU makes f's host record the QEMU boots it is asked for.
func recordQEMU(f *fakeHost) *[]qemu.Config {
	var got []qemu.Config
	f.h.qemu = func(_ context.Context, c qemu.Config) (*qemu.Result, error) {
		got = append(got, c)
		return bootResult(qemu.ExitPass, "gohv: verdict PASS\n"), nil
	}
	return &got
}

// run -config passes the configuration first, then the modules it names in
// the order it names them, found beside it unless -module says otherwise.
func TestRunConfigModules(t *testing.T) {
	cfg := configDir(t, "vmlinuz", "initrd.img")
	dir := filepath.Dir(cfg)
	f := newFakeHost(t)
	boots := recordQEMU(f)
	if code := f.gohvctl("run", "-config", cfg); code != 0 {
		t.Fatalf("exit %d; stderr %q", code, f.stderr.String())
	}
	want := []qemu.Module{{Path: cfg, Name: "config"}, {Path: filepath.Join(dir, "vmlinuz"), Name: "vmlinuz"},
		{Path: filepath.Join(dir, "initrd.img"), Name: "initrd.img"}}
	if len(*boots) != 1 || !reflect.DeepEqual((*boots)[0].Modules, want) {
		t.Fatalf("modules %+v, want %+v", *boots, want)
	}
	if !strings.Contains(f.stderr.String(), "-initrd '"+cfg+" config,") {
		t.Errorf("the QEMU command line printed lacks the modules: %q", f.stderr.String())
	}

	// -module replaces the file beside the configuration, and may hold a
	// comma.
	other := filepath.Join(t.TempDir(), "a,b")
	write(t, other, "x")
	f = newFakeHost(t)
	boots = recordQEMU(f)
	if code := f.gohvctl("run", "-config", cfg, "-module", "initrd.img="+other); code != 0 {
		t.Fatalf("exit %d; stderr %q", code, f.stderr.String())
	}
	if got := (*boots)[0].Modules[2]; got != (qemu.Module{Path: other, Name: "initrd.img"}) {
		t.Errorf("initrd module %+v", got)
	}

	// Without -config, -module files go as they are.
	f = newFakeHost(t)
	boots = recordQEMU(f)
	if code := f.gohvctl("run", "-module", "x="+other); code != 0 {
		t.Fatalf("exit %d; stderr %q", code, f.stderr.String())
	}
	if got := (*boots)[0].Modules; !reflect.DeepEqual(got, []qemu.Module{{Path: other, Name: "x"}}) {
		t.Errorf("modules %+v", got)
	}
}

// Every problem with the configuration or its modules is said before
// anything boots, with the file, line and field.
func TestRunConfigErrors(t *testing.T) {
	cfg := configDir(t, "vmlinuz")
	bad := filepath.Join(t.TempDir(), "bad.toml")
	write(t, bad, "[[partition]]\nname = \"a\"\nmemory_mib = 1\nkernel = \"k\"\nvps = 16\n")
	empty := configDir(t, "initrd.img")
	write(t, filepath.Join(filepath.Dir(empty), "vmlinuz"), "")
	for _, tc := range []struct {
		name string
		args []string
		code int
		want []string
	}{
		{"missing module", []string{"-config", cfg}, 1, []string{
			cfg + `:5: partition[0].initrd: module "initrd.img": stat ` + filepath.Join(filepath.Dir(cfg), "initrd.img") +
				": no such file or directory (give the module's file with -module initrd.img=PATH)"}},
		{"missing -module file", []string{"-config", cfg, "-module", "vmlinuz=/nonexistent/vmlinuz", "-module", "initrd.img=/nonexistent/i"}, 1, []string{
			cfg + `:4: partition[0].kernel: module "vmlinuz": stat /nonexistent/vmlinuz: no such file`,
			cfg + `:5: partition[0].initrd: module "initrd.img": stat /nonexistent/i: no such file`}},
		{"module the configuration does not name", []string{"-config", cfg, "-module", "initrd.img=" + cfg, "-module", "vmlinux=" + cfg}, 1, []string{
			"-module vmlinux=" + cfg + ": " + cfg + ` names no module "vmlinux"`}},
		{"empty module", []string{"-config", empty}, 1, []string{empty + `:4: partition[0].kernel: boot module "vmlinuz" is empty`}},
		{"invalid configuration", []string{"-config", bad}, 1, []string{
			"gohvctl run: " + bad + ":3: partition[0].memory_mib: 1 MiB; a partition needs at least 2 MiB and at most 4064 MiB\n" +
				"gohvctl run: " + bad + ":5: partition[0].vps: 16 VPs; a partition has 1 to 15 VPs\n"}},
		{"no configuration file", []string{"-config", "/nonexistent/gohv.toml"}, 1, []string{"configuration: open /nonexistent/gohv.toml"}},
		{"module flag without =", []string{"-module", "vmlinuz"}, 2, []string{`"vmlinuz": want NAME=PATH`}},
		{"module flag named config", []string{"-module", "config=x"}, 2, []string{"give it with -config"}},
		{"module flag twice", []string{"-module", "a=x", "-module", "a=y"}, 2, []string{`module "a" given twice`}},
		{"module flag bad name", []string{"-module", "a b=x"}, 2, []string{"boot-module name"}},
		{"path with a space", []string{"-module", "a=" + filepath.Join(t.TempDir(), "my file")}, 1, []string{"cannot carry a path with blanks"}},
	} {
		f := newFakeHost(t) // a boot fails the test
		code := f.gohvctl(append([]string{"run"}, tc.args...)...)
		if code != tc.code {
			t.Errorf("%s: exit %d, want %d; stderr %q", tc.name, code, tc.code, f.stderr.String())
		}
		for _, w := range tc.want {
			if !strings.Contains(f.stderr.String(), w) {
				t.Errorf("%s: stderr\n%s\nlacks\n%s", tc.name, f.stderr.String(), w)
			}
		}
	}
}

func TestMediaConfigModules(t *testing.T) {
	kernel := fakeKernel(t)
	cfg := configDir(t, "vmlinuz")
	initrd := filepath.Join(t.TempDir(), "initrd")
	write(t, initrd, "an initrd")
	f := newFakeHost(t)
	calls := recordMedia(f)
	out := filepath.Join(t.TempDir(), "gohv.iso")
	if code := f.gohvctl("media", "iso", "-kernel", kernel, "-out", out, "-config", cfg, "-module", "initrd.img="+initrd); code != 0 {
		t.Fatalf("exit %d; stderr %q", code, f.stderr.String())
	}
	if len(*calls) != 1 {
		t.Fatalf("%d media built", len(*calls))
	}
	b := (*calls)[0].b
	cfgData, _ := os.ReadFile(cfg)
	want := []*bootmedia.Module{
		{Name: "config", Path: cfg, Data: cfgData},
		{Name: "vmlinuz", Path: filepath.Join(filepath.Dir(cfg), "vmlinuz"), Data: []byte("vmlinuz data")},
		{Name: "initrd.img", Path: initrd, Data: []byte("an initrd")},
	}
	if !reflect.DeepEqual(b.Modules, want) || !reflect.DeepEqual(b.Config.Modules, []string{"config", "vmlinuz", "initrd.img"}) {
		t.Errorf("modules %+v (names %q), want %+v", b.Modules, b.Config.Modules, want)
	}
	if !strings.Contains(f.stdout.String(), "modules config vmlinuz initrd.img") {
		t.Errorf("stdout %q does not list the modules", f.stdout.String())
	}

	// A missing module builds nothing.
	f = newFakeHost(t)
	if code := f.gohvctl("media", "iso", "-kernel", kernel, "-out", out, "-config", cfg); code != 1 ||
		!strings.Contains(f.stderr.String(), `partition[0].initrd: module "initrd.img"`) {
		t.Errorf("exit %d, stderr %q", code, f.stderr.String())
	}

	// grub-cfg shows the module lines without needing the files.
	f = newFakeHost(t)
	if code := f.gohvctl("media", "grub-cfg", "-config", cfg); code != 0 {
		t.Fatalf("grub-cfg: exit %d; stderr %q", code, f.stderr.String())
	}
	for _, m := range []string{"config", "vmlinuz", "initrd.img"} {
		if !strings.Contains(f.stdout.String(), "module2 --nounzip /boot/gohv/modules/"+m+" "+m+"; then") {
			t.Errorf("grub.cfg lacks module %s", m)
		}
	}
}

func TestBochsConfigModules(t *testing.T) {
	cfg := configDir(t, "vmlinuz", "initrd.img")
	f := newFakeHost(t)
	var names []string
	f.h.bochsISO = func(_ context.Context, _, _, _ string, mods []*bootmedia.Module) error {
		for _, m := range mods {
			names = append(names, m.Name)
		}
		return nil
	}
	f.h.bochs = func(context.Context, bochs.Config) (*bochs.Result, error) { return bochsPass(), nil }
	if code := f.gohvctl("bochs", "-config", cfg); code != 0 {
		t.Fatalf("exit %d; stderr %q", code, f.stderr.String())
	}
	if !reflect.DeepEqual(names, []string{"config", "vmlinuz", "initrd.img"}) {
		t.Errorf("ISO modules %q", names)
	}
	f = newFakeHost(t)
	if code := f.gohvctl("bochs", "-iso", "x.iso", "-config", cfg); code != 2 || !strings.Contains(f.stderr.String(), "-config does not apply") {
		t.Errorf("-iso with -config: exit %d, stderr %q", code, f.stderr.String())
	}
}
