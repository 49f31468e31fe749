package bootmedia

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"gohv/tools/verdict"
)

func TestConfigValidate(t *testing.T) {
	good := DefaultConfig()
	if err := good.Validate(); err != nil {
		t.Fatalf("default config: %v", err)
	}
	for _, tc := range []struct {
		name string
		edit func(*Config)
		want string
	}{
		{"default entry", func(c *Config) { c.Default = "bench" }, "default entry"},
		{"negative timeout", func(c *Config) { c.Timeout = -1 }, "timeout"},
		{"serial unit", func(c *Config) { c.SerialUnit = 4 }, "serial unit"},
		{"baud", func(c *Config) { c.Baud = 115201 }, "serial speed"},
		{"quote", func(c *Config) { c.Args = []string{"a'b"} }, "kernel argument"},
		{"semicolon", func(c *Config) { c.Args = []string{"a;halt"} }, "kernel argument"},
		{"dollar", func(c *Config) { c.Args = []string{"x=$root"} }, "kernel argument"},
		{"space", func(c *Config) { c.Args = []string{"a b"} }, "kernel argument"},
		{"brace", func(c *Config) { c.Args = []string{"}"} }, "kernel argument"},
		{"empty", func(c *Config) { c.Args = []string{""} }, "kernel argument"},
		{"selftest as arg", func(c *Config) { c.Args = []string{"selftest"} }, "selftest entry"},
		{"module with a space", func(c *Config) { c.Modules = []string{"a b"} }, "boot-module name"},
		{"module with a quote", func(c *Config) { c.Modules = []string{"a'b"} }, "boot-module name"},
		{"module path", func(c *Config) { c.Modules = []string{"boot/x"} }, "boot-module name"},
		{"module twice", func(c *Config) { c.Modules = []string{"config", "x", "config"} }, `module "config": given twice`},
		{"modules differing in case", func(c *Config) { c.Modules = []string{"Initrd", "initrd"} }, "differ in more than case"},
		{"too many modules", func(c *Config) {
			for i := range MaxModules + 1 {
				c.Modules = append(c.Modules, fmt.Sprint("m", i))
			}
		}, "33 modules: at most 32"},
	} {
		c := DefaultConfig()
		tc.edit(&c)
		err := c.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: Validate = %v, want an error about %q", tc.name, err, tc.want)
		}
		if _, err := GrubConfig(c, MediumISO); err == nil {
			t.Errorf("%s: GrubConfig accepted an invalid config", tc.name)
		}
	}
	c := DefaultConfig()
	c.Args = []string{"inject=mmap-missing", "log=debug,x/y:1.5+2-3"}
	if err := c.Validate(); err != nil {
		t.Errorf("ordinary words rejected: %v", err)
	}
}

func TestEntries(t *testing.T) {
	c := Config{Default: EntrySelftest, Baud: 9600, SerialUnit: 1, Args: []string{"x=1"}}
	es := c.Entries()
	if len(es) != 2 || es[0].ID != EntryRun || es[1].ID != EntrySelftest {
		t.Fatalf("entries %+v", es)
	}
	if got := es[0].CmdLine(); got != "console=com2,9600 x=1" {
		t.Errorf("run command line %q", got)
	}
	if got := es[1].CmdLine(); got != "console=com2,9600 x=1 selftest" {
		t.Errorf("selftest command line %q", got)
	}
	if !es[0].Automated || !es[1].Automated {
		t.Errorf("unattended (timeout 0): both entries must end in a verdict: %+v", es)
	}
	c.Timeout = 5
	if es := c.Entries(); es[0].Automated || !es[1].Automated {
		t.Errorf("with a menu: only the selftest entry ends in a verdict: %+v", es)
	}
}

// menuEntries splits a generated grub.cfg into its menu entries' bodies by id.
func menuEntries(t *testing.T, cfg string) map[string]string {
	t.Helper()
	re := regexp.MustCompile(`(?ms)^menuentry '([^']*)' --id (\S+) \{\n(.*?)^\}\n`)
	m := map[string]string{}
	for _, s := range re.FindAllStringSubmatch(cfg, -1) {
		m[s[2]] = s[3]
	}
	return m
}

func TestGrubConfig(t *testing.T) {
	c := Config{Default: EntrySelftest, Timeout: 0, SerialUnit: 0, Baud: 115200, Args: []string{"extra=1"},
		Modules: []string{"config", "vmlinuz"}}
	b, err := GrubConfig(c, MediumPXE)
	if err != nil {
		t.Fatal(err)
	}
	cfg := string(b)
	for _, want := range []string{
		"serial --unit=0 --speed=115200 --word=8 --parity=no --stop=1\n",
		"terminal_input serial console\n",
		"terminal_output serial console\n",
		"set timeout=0\n",
		"set default=selftest\n",
		"(pxe)",
	} {
		if !strings.Contains(cfg, want) {
			t.Errorf("grub.cfg lacks %q:\n%s", want, cfg)
		}
	}
	entries := menuEntries(t, cfg)
	if len(entries) != 2 {
		t.Fatalf("want 2 menu entries, found %d:\n%s", len(entries), cfg)
	}
	run, self := entries[EntryRun], entries[EntrySelftest]
	if !strings.Contains(run, "multiboot2 "+KernelPath+" console=com1,115200 extra=1; then") {
		t.Errorf("run entry does not boot the default configuration:\n%s", run)
	}
	if !strings.Contains(self, "multiboot2 "+KernelPath+" console=com1,115200 extra=1 selftest; then") {
		t.Errorf("selftest entry does not boot selftest:\n%s", self)
	}
	for id, body := range entries {
		// Every checksum is checked before anything is loaded, then the
		// kernel is loaded, then the modules in order, each with its name
		// and exactly as the file is (no decompression).
		load := strings.Index(body, "multiboot2 ")
		for _, sum := range []string{SumPath, "/boot/gohv/sums/config.sha256", "/boot/gohv/sums/vmlinuz.sha256"} {
			if check := strings.Index(body, "sha256sum --check "+sum+"; then"); check < 0 || load < 0 || check > load {
				t.Errorf("%s: no SHA-256 check of %s before multiboot2:\n%s", id, sum, body)
			}
		}
		cfgMod := strings.Index(body, "module2 --nounzip /boot/gohv/modules/config config; then")
		vmlinuz := strings.Index(body, "module2 --nounzip /boot/gohv/modules/vmlinuz vmlinuz; then")
		if cfgMod < load || vmlinuz < cfgMod {
			t.Errorf("%s: modules not loaded after the kernel, in order:\n%s", id, body)
		}
		if boot := strings.Index(body, "\t\tboot\n"); boot < vmlinuz {
			t.Errorf("%s: boots before loading the modules:\n%s", id, body)
		}
		for _, msg := range []string{"'module config: bad SHA-256'", "'module vmlinuz: bad SHA-256'", "'module vmlinuz: load failed'"} {
			if !strings.Contains(body, msg) {
				t.Errorf("%s: no error %s", id, msg)
			}
		}
	}
	if !strings.Contains(self, "halt") || !strings.Contains(self, "gohv: verdict FAIL") {
		t.Errorf("selftest entry does not end a failed load with a verdict and power-off:\n%s", self)
	}
	if !strings.Contains(run, "halt") || !strings.Contains(run, "gohv: verdict FAIL") {
		t.Errorf("unattended run entry does not end a failed load with a verdict:\n%s", run)
	}

	c.Default, c.Timeout, c.SerialUnit, c.Baud = EntryRun, 7, 1, 9600
	b, err = GrubConfig(c, MediumDisk)
	if err != nil {
		t.Fatal(err)
	}
	if run := menuEntries(t, string(b))[EntryRun]; strings.Contains(run, "halt") || strings.Contains(run, "verdict") {
		t.Errorf("run entry at a menu powers off or prints a verdict on failure; it should return to the menu:\n%s", run)
	}
	for _, want := range []string{"set default=run\n", "set timeout=7\n", "serial --unit=1 --speed=9600 ", "console=com2,9600", "(disk)"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("grub.cfg lacks %q", want)
		}
	}
	if _, err := GrubConfig(c, "floppy"); err == nil {
		t.Error("unknown medium accepted")
	}
}

// TestGrubConfigMessages renders every failure message the way GRUB's echo
// would and checks the lines a machine reads: they fit GRUB's 80-column serial
// terminal (which wraps longer lines and would split the verdict), and the
// verdict parses as exactly one FAIL with the whole reason.
func TestGrubConfigMessages(t *testing.T) {
	// The longest module name a configuration allows.
	longest := strings.Repeat("m", 24)
	b, err := GrubConfig(Config{Default: EntrySelftest, Baud: 115200, Timeout: 5, Modules: []string{longest}}, MediumISO)
	if err != nil {
		t.Fatal(err)
	}
	cfg := string(b)
	errs := regexp.MustCompile(`set gohv_error='([^']*)'`).FindAllStringSubmatch(cfg, -1)
	if len(errs) < 5 {
		t.Fatalf("found %d error messages, want one per failure:\n%s", len(errs), cfg)
	}
	echo := regexp.MustCompile(`(?m)^\s*echo ["']([^"']*)["']$`)
	verdicts := 0
	for _, e := range errs {
		msg := e[1]
		for _, line := range echo.FindAllStringSubmatch(cfg, -1) {
			text := strings.ReplaceAll(line[1], "${gohv_error}", msg)
			if len(text) >= 80 {
				t.Errorf("line %q is %d columns: GRUB's serial terminal wraps it", text, len(text))
			}
			if strings.HasPrefix(text, "gohv: verdict") {
				verdicts++
				v := verdict.Parse([]byte("GRUB noise\r\n" + text + "\r\n"))
				if v.Verdicts != 1 || v.Pass || v.Reason != "boot medium: "+msg {
					t.Errorf("verdict line %q parses as %+v", text, v)
				}
			}
		}
	}
	if verdicts != len(errs) {
		t.Errorf("checked %d verdict lines for %d messages", verdicts, len(errs))
	}
	// GRUB prints "FILE: OK" / "FILE: HASH MISMATCH" for the checked file;
	// the file names must not make those look like protocol lines.
	for _, f := range []string{KernelPath, ModulePath("config"), ModulePath(longest)} {
		if v := verdict.Parse([]byte(f + ": HASH MISMATCH\n" + f + ": OK\n")); len(v.Lines) != 0 {
			t.Errorf("GRUB's checksum report reads as gohv protocol lines: %q", v.Lines)
		}
	}
}

// TestGrubConfigSyntax runs GRUB's own parser over every generated file, when
// grub-script-check (grub-common) is installed.
func TestGrubConfigSyntax(t *testing.T) {
	check, err := exec.LookPath("grub-script-check")
	if err != nil {
		t.Skip("grub-script-check not installed (Debian: grub-common)")
	}
	dir := t.TempDir()
	for _, medium := range []string{MediumISO, MediumPXE, MediumDisk} {
		for _, def := range []string{EntryRun, EntrySelftest} {
			c := DefaultConfig()
			c.Default = def
			c.Args = []string{"a=b,c"}
			c.Modules = []string{"config", "vmlinuz-6.1", "initrd.img"}
			b, err := GrubConfig(c, medium)
			if err != nil {
				t.Fatal(err)
			}
			p := filepath.Join(dir, medium+"-"+def+".cfg")
			if err := os.WriteFile(p, b, 0o644); err != nil {
				t.Fatal(err)
			}
			if out, err := exec.Command(check, p).CombinedOutput(); err != nil {
				t.Errorf("%s: grub-script-check: %v\n%s\n%s", p, err, out, b)
			}
		}
	}
	// And the checker does reject a broken file, so the loop above means
	// something.
	bad := filepath.Join(dir, "bad.cfg")
	os.WriteFile(bad, []byte("menuentry 'x' {\n\tif true; then\n}\n"), 0o644)
	if err := exec.Command(check, bad).Run(); err == nil {
		t.Error("grub-script-check accepted a broken file")
	}
}
