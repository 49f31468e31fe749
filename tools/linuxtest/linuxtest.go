// Package linuxtest gives the image tests (tools/imagetest under QEMU,
// tools/bochstest under Bochs) a real Linux guest and the means to judge
// what it did in a partition: Debian's current kernel and busybox, fetched
// through tools/debian into the cache `make test` shares (build/guest, so
// CI downloads them once), busybox initramfs images with a chosen /init,
// partition configurations naming them as boot modules, and the checks of
// a partition's console lines and of gohv's account of its end.
//
// It is test support, like net/http/httptest: its helpers take a
// testing.TB and fail the test themselves.
package linuxtest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"

	"gohv/tools/debian"
	"gohv/tools/debian/initramfs"
)

// Guest is the fetched kernel and busybox, and the initramfs images built
// from them in this test binary.
type Guest struct {
	*debian.Guest
	dir string // where Initrd writes

	mu      sync.Mutex
	initrds map[string]*initrd // by the /init's SHA-256
}

type initrd struct {
	once sync.Once
	path string
	err  error
}

var fetched struct {
	once sync.Once
	g    *Guest
	err  error
}

// Fetch returns the current Debian guest from the cache directory cache,
// fetching what is missing with `apt-get download` the first time a test
// binary asks (later calls share the result). The initramfs images go to
// dir, a directory the caller owns for the binary's run. A failed fetch
// fails every test that asks.
func Fetch(t testing.TB, cache, dir string) *Guest {
	t.Helper()
	fetched.once.Do(func() {
		var log bytes.Buffer
		c := &debian.Cache{Dir: cache, Log: &log}
		g, err := c.Fetch(context.Background())
		if err != nil {
			fetched.err = fmt.Errorf("fetching Debian's kernel and busybox into %s: %w\n%s", cache, err, log.Bytes())
			return
		}
		if len(g.Downloaded) > 0 {
			t.Logf("fetched into %s: %s", cache, strings.Join(g.Downloaded, ", "))
		}
		fetched.g = &Guest{Guest: g, dir: dir, initrds: map[string]*initrd{}}
	})
	if fetched.err != nil {
		t.Fatal(fetched.err)
	}
	return fetched.g
}

// FetchOrSkip is Fetch, or a skip of the test when cache is "" (the test
// binary was given no -guest-cache); target names the make target that
// gives it one.
func FetchOrSkip(t testing.TB, cache, dir, target string) *Guest {
	t.Helper()
	if cache == "" {
		t.Skipf("no -guest-cache: run `make %s`", target)
	}
	return Fetch(t, cache, dir)
}

// Initrd returns an initramfs with busybox and init as /init
// (initramfs.DefaultInit, PanicInit, ShellInit or a script of the test's
// own), building it once per binary.
func (g *Guest) Initrd(t testing.TB, init string) string {
	t.Helper()
	sum := sha256.Sum256([]byte(init))
	key := hex.EncodeToString(sum[:8])
	g.mu.Lock()
	r := g.initrds[key]
	if r == nil {
		r = &initrd{}
		g.initrds[key] = r
	}
	g.mu.Unlock()
	r.once.Do(func() {
		r.path = filepath.Join(g.dir, "initramfs-"+key+".cpio")
		r.err = initramfs.Spec{Busybox: g.Busybox, Init: init}.WriteFile(r.path)
	})
	if r.err != nil {
		t.Fatal(r.err)
	}
	return r.path
}

// AddModules adds the modules names and their dependencies
// (debian.Guest.Modules) to spec for its /init to load, in load order,
// logs them and returns them as the kernel names them.
func (g *Guest) AddModules(t testing.TB, spec *initramfs.Spec, names ...string) []string {
	t.Helper()
	mods, err := g.Modules(context.Background(), names...)
	if err != nil {
		t.Fatal(err)
	}
	var loaded []string
	for _, m := range mods {
		spec.Files = append(spec.Files, initramfs.File{Name: m.Path, Source: m.File})
		spec.Modules = append(spec.Modules, m.Path)
		loaded = append(loaded, m.Name)
	}
	t.Logf("modules: %s", strings.Join(loaded, " "))
	return loaded
}

// Partition is one [[partition]] of a test configuration.
type Partition struct {
	Name      string
	MemoryMiB int
	VPs       int    // 0 leaves the default (1)
	Kernel    string // boot module name
	Format    string // "linux", "multiboot" or "" (told apart by the loader)
	Initrd    string // boot module name; "" for none
	Cmdline   string
	OnReboot  string   // "" leaves the default (restart)
	Disks     []Disk   // its [[partition.disk]] tables, in order
	NICs      []NIC    // its [[partition.nic]] tables, in order
	PCI       []string // host PCI functions assigned to it ("00:05.0"), its pci key
}

// NIC is one [[partition.nic]] of a partition: a synthetic network
// adapter the root's network VSP serves, a port of a switch.
type NIC struct {
	Switch string // the [[switch]] it plugs into
	MAC    string // "00:15:5d:00:00:10"; "" leaves gohv's choice
}

// Switch is one [[switch]] of a test configuration: a virtual switch in
// the root partition.
type Switch struct {
	Name string
	// RootAddress is the root partition's own port on the switch, an
	// address with its prefix ("10.0.0.1/24"); "" for none. The root
	// serves its HTTP diagnostic page there.
	RootAddress string
}

// Disk is one [[partition.disk]] of a partition: a SCSI disk the root's
// storage VSP serves from a boot module. Config writes every key, so the
// LUN is the one given, never the default by position.
type Disk struct {
	Module     string // boot module holding the image
	Controller int
	LUN        int
	ReadOnly   bool
}

// Cmdline is the kernel command line of the test partitions: the console
// on the partition's COM1, and a reboot instead of a hang should the
// kernel panic without reporting it (the partitions say on_reboot =
// "stop", so that ends them too).
const Cmdline = "console=ttyS0 panic=-1"

// Config is the TOML text of a configuration holding ps.
func Config(ps ...Partition) string { return ConfigWithSwitches(nil, ps...) }

// ConfigWithSwitches is the TOML text of a configuration holding the
// switches sw, then ps.
func ConfigWithSwitches(sw []Switch, ps ...Partition) string {
	var b strings.Builder
	b.WriteString("# written by gohv/tools/linuxtest\n")
	for _, s := range sw {
		fmt.Fprintf(&b, "\n[[switch]]\nname = %q\n", s.Name)
		if s.RootAddress != "" {
			fmt.Fprintf(&b, "root_address = %q\n", s.RootAddress)
		}
	}
	for _, p := range ps {
		fmt.Fprintf(&b, "\n[[partition]]\nname = %q\nmemory_mib = %d\nkernel = %q\n", p.Name, p.MemoryMiB, p.Kernel)
		if p.VPs != 0 {
			fmt.Fprintf(&b, "vps = %d\n", p.VPs)
		}
		if p.Format != "" {
			fmt.Fprintf(&b, "kernel_format = %q\n", p.Format)
		}
		if p.Initrd != "" {
			fmt.Fprintf(&b, "initrd = %q\n", p.Initrd)
		}
		if p.Cmdline != "" {
			fmt.Fprintf(&b, "cmdline = %q\n", p.Cmdline)
		}
		if p.OnReboot != "" {
			fmt.Fprintf(&b, "on_reboot = %q\n", p.OnReboot)
		}
		if len(p.PCI) > 0 {
			q := make([]string, len(p.PCI))
			for i, a := range p.PCI {
				q[i] = strconv.Quote(a)
			}
			fmt.Fprintf(&b, "pci = [%s]\n", strings.Join(q, ", "))
		}
		for _, d := range p.Disks {
			fmt.Fprintf(&b, "\n[[partition.disk]]\nmodule = %q\ncontroller = %d\nlun = %d\nread_only = %t\n",
				d.Module, d.Controller, d.LUN, d.ReadOnly)
		}
		for _, n := range p.NICs {
			fmt.Fprintf(&b, "\n[[partition.nic]]\nswitch = %q\n", n.Switch)
			if n.MAC != "" {
				fmt.Fprintf(&b, "mac = %q\n", n.MAC)
			}
		}
	}
	return b.String()
}

// Module is a boot module: the name the configuration gives it and the
// host file holding it.
type Module struct{ Name, Path string }

// Modules writes the configuration of ps into dir and returns the boot
// modules of a boot: the configuration ("config") first, then files, in
// order.
func Modules(t testing.TB, dir string, ps []Partition, files ...Module) []Module {
	t.Helper()
	return ConfigModules(t, dir, Config(ps...), files...)
}

// ConfigModules is Modules for a configuration's text (ConfigWithSwitches'
// or Network.Config's).
func ConfigModules(t testing.TB, dir, config string, files ...Module) []Module {
	t.Helper()
	p := filepath.Join(dir, "gohv.toml")
	if err := os.WriteFile(p, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	return append([]Module{{"config", p}}, files...)
}

// Lines returns the lines partition name wrote to its COM1, as gohv's
// console carried them ("name: text"), without the prefix.
func Lines(log []byte, name string) []byte {
	var out []byte
	pre := []byte(name + ": ")
	for _, l := range bytes.Split(log, []byte("\n")) {
		if rest, ok := bytes.CutPrefix(bytes.TrimRight(l, "\r"), pre); ok {
			out = append(append(out, rest...), '\n')
		}
	}
	return out
}

// Ended is gohv's "partition ended" event for one partition.
type Ended struct {
	State  string // stopped or crashed
	Reason string
	Ran    string // the partition's life by gohv's clock (a Go duration)
	Exits  string // its exits by kind, most frequent first
	Line   string // the whole line
}

var endedRE = regexp.MustCompile(`^gohv: partition ended (.*)$`)

// EndOf returns the last "gohv: partition ended" event of partition name,
// and whether there was one.
func EndOf(log []byte, name string) (Ended, bool) {
	var e Ended
	found := false
	for _, l := range strings.Split(string(log), "\n") {
		l = strings.TrimRight(l, "\r")
		m := endedRE.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		kv := attrs(m[1])
		if kv["partition"] != name {
			continue
		}
		e = Ended{State: kv["state"], Reason: kv["reason"], Ran: kv["ran"], Exits: kv["exits"], Line: l}
		found = true
	}
	return e, found
}

// ExitCounts parses Exits ("io:39121,interrupt:4098,...") into counts by
// kind, with their total under "".
func (e Ended) ExitCounts() (map[string]int, error) {
	n := map[string]int{}
	if e.Exits == "" {
		return n, nil
	}
	for _, kv := range strings.Split(e.Exits, ",") {
		k, v, ok := strings.Cut(kv, ":")
		c, err := strconv.Atoi(v)
		if !ok || k == "" || err != nil || c < 0 {
			return nil, fmt.Errorf("linuxtest: exits %q: %q is not kind:count", e.Exits, kv)
		}
		n[k] += c
		n[""] += c
	}
	return n, nil
}

// attrs splits the key=value attributes of a gohv: event line; values
// with blanks or quotes are Go-quoted (root/console's handler).
func attrs(s string) map[string]string {
	kv := map[string]string{}
	for s != "" {
		s = strings.TrimLeft(s, " ")
		k, rest, ok := strings.Cut(s, "=")
		if !ok || strings.Contains(k, " ") {
			break
		}
		var v string
		if strings.HasPrefix(rest, `"`) {
			q, err := strconv.QuotedPrefix(rest)
			if err != nil {
				break
			}
			v, _ = strconv.Unquote(q)
			rest = rest[len(q):]
		} else {
			v, rest, _ = strings.Cut(rest, " ")
		}
		kv[k] = v
		s = rest
	}
	return kv
}

// PoweredOff is the end gohv reports for a Linux partition that powered
// itself off through ACPI S5.
const PoweredOff = "power-off: ACPI S5"

// CheckBoot checks that partition name ran the test init
// (initramfs.DefaultInit) on the fetched kernel with memMiB of RAM and one
// VP: its "guest:" lines report the release, Microsoft Hyper-V, the
// Hyper-V TSC page clocksource, the memory and one CPU, it ran /init
// without a panic, and gohv reports it powered off through ACPI S5. It
// returns what the guest reported and gohv's account of its end.
func (g *Guest) CheckBoot(t testing.TB, log []byte, name string, memMiB int) (initramfs.Boot, Ended) {
	t.Helper()
	b := initramfs.ParseConsole(Lines(log, name))
	r := b.Report
	if !b.HasRunInit || b.Init != "/init" {
		t.Errorf("%s: no \"Run /init as init process\" line", name)
	}
	if b.Panic != "" {
		t.Errorf("%s: kernel panic: %s", name, b.Panic)
	}
	for _, c := range []struct{ key, want string }{
		{"uname-r", g.Release},
		{"hypervisor", "Microsoft Hyper-V"},
		{"hyperv", "yes"},
		{"clocksource", "hyperv_clocksource_tsc_page"},
		{"cpus", "1"},
	} {
		if got, ok := r[c.key]; !ok {
			t.Errorf("%s: no \"guest: %s\" line", name, c.key)
		} else if got != c.want {
			t.Errorf("%s: guest: %s %q, want %q", name, c.key, got, c.want)
		}
	}
	// MemTotal is the RAM less what the kernel keeps for itself (its image,
	// page tables, the initramfs while unpacked): most of it, never more.
	mem, err := strconv.Atoi(r["memtotal-kib"])
	if lo, hi := memMiB*1024*6/10, memMiB*1024; err != nil || mem < lo || mem > hi {
		t.Errorf("%s: guest: memtotal-kib %q, want %d-%d for %d MiB", name, r["memtotal-kib"], lo, hi, memMiB)
	}
	if !b.PoweredOff() {
		t.Errorf("%s: the init did not get to \"guest: poweroff\"", name)
	}
	e, ok := EndOf(log, name)
	switch {
	case !ok:
		t.Errorf("%s: no \"gohv: partition ended\" line", name)
	case e.State != "stopped" || e.Reason != PoweredOff:
		t.Errorf("%s: %s; want state=stopped reason=%q", name, e.Line, PoweredOff)
	}
	return b, e
}
