package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"gohv/tools/debian"
	"gohv/tools/debian/initramfs"
	"gohv/tools/ext4img"
	"gohv/tools/qemu"
)

const guestAbout = `usage: gohvctl guest fetch|initramfs|disk|run-bare [flags]

A real Linux guest from Debian's packages — the distribution's current
kernel (through the linux-image-amd64 metapackage, never a pinned version)
and busybox-static — cached under -cache:

  fetch      download what is missing (nothing when the cache is complete)
             and print the paths: kernel, busybox, the kernel package, and
             with -modules the modules and their dependencies
  initramfs  write a busybox initramfs (newc cpio) to -out: /init is -init
             FILE, -shell, or the test init that prints "guest: key value"
             lines (uname -r, hypervisor, clocksource, memory, CPUs) and
             powers off; -modules adds kernel modules for it to insmod
  disk       write an ext4 disk image of -size MiB to -out (make run's
             disk: the shell mounts it on /mnt), holding README.txt; needs
             mke2fs (Debian's e2fsprogs)
  run-bare   boot the kernel and an initramfs directly under QEMU TCG,
             without gohv (the bare reference for Linux partitions), console
             on stdout; then report the guest's printk time of "Run /init"
             and the wall time. Exit 0 when the guest ran /init and powered
             off without a panic.

On a host without apt-get, give -kernel (a Linux bzImage) and -busybox (a
static busybox) instead.
`

var guestKinds = []string{"fetch", "initramfs", "disk", "run-bare"}

// The programs fetch runs; tests point them elsewhere.
var guestAptGet, guestDpkgDeb = "apt-get", "dpkg-deb"

// errGuestNoApt is what a host without apt-get is told.
var errGuestNoApt = errors.New("no apt-get: provide a Linux bzImage with -kernel and a busybox binary with -busybox")

// guestPlan is what a guest command line asks for.
type guestPlan struct {
	kind          string
	cache         string
	kernelPackage string
	kernel        string // -kernel: no kernel fetch
	busybox       string // -busybox: no busybox fetch
	modules       []string
	init          string // -init FILE
	shell         bool
	gzip          bool
	out           string
	initrd        string // run-bare: boot this instead of building one
	qemu          qemu.Config
	icount        bool
	appendW       []string
	smp           int
	sizeMiB       int // disk
}

func guestFlags() (fs *flag.FlagSet, plan func(kind string) (guestPlan, error)) {
	fs = flag.NewFlagSet("guest", flag.ContinueOnError)
	var p guestPlan
	var modules, appendW, extra string
	fs.StringVar(&p.cache, "cache", debian.DefaultDir, "cache directory for the Debian packages and what is taken out of them")
	fs.StringVar(&p.kernelPackage, "kernel-package", debian.DefaultKernelPackage, "the metapackage that names the current kernel")
	fs.StringVar(&p.kernel, "kernel", "", "a Linux bzImage to use instead of Debian's (no kernel fetch)")
	fs.StringVar(&p.busybox, "busybox", "", "a static busybox to use instead of Debian's (no busybox fetch)")
	fs.StringVar(&modules, "modules", "", "kernel modules to take out of the kernel package with their dependencies, space-separated (fetch, initramfs, run-bare)")
	fs.StringVar(&p.init, "init", "", "a file holding the /init script (default: the test init)")
	fs.BoolVar(&p.shell, "shell", false, "/init starts a shell on the console instead of the test init")
	fs.BoolVar(&p.gzip, "gzip", false, "gzip the initramfs")
	fs.StringVar(&p.out, "out", "", "where initramfs and disk write (initramfs default: initramfs.cpio in the release directory)")
	fs.IntVar(&p.sizeMiB, "size", 64, "disk: the image's size in MiB")
	fs.StringVar(&p.initrd, "initrd", "", "run-bare: boot this initramfs instead of building one with the test init")
	fs.StringVar(&p.qemu.Machine, "M", "pc", "run-bare: QEMU machine")
	fs.StringVar(&p.qemu.CPU, "cpu", "EPYC", "run-bare: QEMU CPU model")
	fs.IntVar(&p.qemu.MemMiB, "m", 256, "run-bare: guest memory in MiB")
	fs.IntVar(&p.smp, "smp", 1, "run-bare: guest CPUs")
	fs.BoolVar(&p.icount, "icount", true, "run-bare: -icount shift=0,sleep=off (guest time counts instructions; idle time is skipped)")
	fs.StringVar(&appendW, "append", "", "run-bare: kernel command-line words after \"console=ttyS0 panic=-1\"")
	fs.DurationVar(&p.qemu.Timeout, "timeout", 5*time.Minute, "run-bare: kill QEMU after this long")
	fs.StringVar(&extra, "qemu", "", "run-bare: extra QEMU arguments, space separated")
	return fs, func(kind string) (guestPlan, error) {
		p.kind = kind
		p.modules = words(modules)
		p.appendW = words(appendW)
		p.qemu.Extra = words(extra)
		switch {
		case p.init != "" && p.shell:
			return p, errors.New("-init and -shell both name the /init")
		case len(p.modules) > 0 && p.kernel != "":
			return p, errors.New("-modules come from Debian's kernel package: they do not go with -kernel")
		case p.initrd != "" && (p.init != "" || p.shell || len(p.modules) > 0 || p.gzip):
			return p, errors.New("-initrd boots a ready initramfs: -init, -shell, -modules and -gzip build one")
		case kind == "run-bare" && p.shell:
			return p, errors.New("-shell: run-bare gives the guest no console input; write the initramfs and boot it by hand")
		case p.smp < 1:
			return p, fmt.Errorf("-smp %d: at least 1", p.smp)
		case kind == "disk" && p.out == "":
			return p, errors.New("disk: -out names the image to write")
		case kind == "disk" && p.sizeMiB < 16:
			return p, fmt.Errorf("-size %d: at least 16 MiB for an ext4 disk with a journal", p.sizeMiB)
		}
		return p, nil
	}
}

func (h *host) cmdGuest(ctx context.Context, args []string) int {
	kind := ""
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		kind, args = args[0], args[1:]
	}
	fs, plan := guestFlags()
	if code, ok := h.parse(fs, guestAbout, args); !ok {
		return code
	}
	switch {
	case kind == "":
		fmt.Fprintf(h.stderr, "gohvctl guest: what? one of %s\n", strings.Join(guestKinds, ", "))
		printUsage(h.stderr, fs, guestAbout)
		return 2
	case !slices.Contains(guestKinds, kind):
		fmt.Fprintf(h.stderr, "gohvctl guest: unknown %q: one of %s\n", kind, strings.Join(guestKinds, ", "))
		printUsage(h.stderr, fs, guestAbout)
		return 2
	case !h.noArgs(fs, guestAbout):
		return 2
	}
	p, err := plan(kind)
	if err != nil {
		fmt.Fprintf(h.stderr, "gohvctl guest %s: %v\n", kind, err)
		return 2
	}
	if kind == "disk" {
		if err := ext4img.Build(ctx, p.out, p.sizeMiB, []ext4img.File{{Name: "README.txt", Data: []byte(runDiskReadme)}}); err != nil {
			fmt.Fprintf(h.stderr, "gohvctl guest disk: %v\n", err)
			return 1
		}
		fmt.Fprintf(h.stdout, "disk %s\n", p.out)
		return 0
	}
	g, err := h.guestFiles(ctx, p)
	if err != nil {
		fmt.Fprintf(h.stderr, "gohvctl guest %s: %v\n", kind, err)
		return 1
	}
	switch kind {
	case "fetch":
		h.printGuest(g)
		return 0
	case "initramfs":
		out, err := h.writeInitramfs(p, g, "")
		if err != nil {
			fmt.Fprintf(h.stderr, "gohvctl guest initramfs: %v\n", err)
			return 1
		}
		fmt.Fprintf(h.stdout, "initramfs %s\n", out)
		return 0
	}
	return h.runBare(ctx, p, g)
}

// runDiskReadme is the file on the disk guest disk writes.
const runDiskReadme = `This is the partition's disk: an ext4 image that gohv's root partition
serves over VMBus (its storage VSP), which Linux's own hv_storvsc drives as
/dev/sda. Writes stay in the hypervisor's memory: they survive the
partition's reboots, not gohv's.
`

// guestFiles is what a plan works with: the kernel, busybox and modules,
// fetched unless the command line gave them.
type guestFiles struct {
	guest   *debian.Guest // nil when nothing was fetched
	kernel  string
	busybox string
	modules []debian.Module
}

func (h *host) guestFiles(ctx context.Context, p guestPlan) (guestFiles, error) {
	f := guestFiles{kernel: p.kernel, busybox: p.busybox}
	needKernel := p.kind == "run-bare"
	needBusybox := p.kind == "initramfs" || p.kind == "run-bare" && p.initrd == ""
	if p.kind != "fetch" && len(p.modules) == 0 && (!needKernel || f.kernel != "") && (!needBusybox || f.busybox != "") {
		return f, nil
	}
	c := &debian.Cache{Dir: p.cache, KernelPackage: p.kernelPackage, AptGet: guestAptGet, DpkgDeb: guestDpkgDeb, Log: h.stderr}
	g, err := c.Fetch(ctx)
	if errors.Is(err, debian.ErrNoAptGet) {
		return f, errGuestNoApt
	}
	if err != nil {
		return f, err
	}
	f.guest = g
	if f.kernel == "" {
		f.kernel = g.Kernel
	}
	if f.busybox == "" {
		f.busybox = g.Busybox
	}
	if len(p.modules) > 0 {
		if f.modules, err = g.Modules(ctx, p.modules...); err != nil {
			return f, err
		}
	}
	return f, nil
}

func (h *host) printGuest(f guestFiles) {
	g := f.guest
	fmt.Fprintf(h.stdout, "release %s\nkernel %s\nbusybox %s\nkernel-deb %s\nmanifest %s\n",
		g.Release, g.Kernel, g.Busybox, g.KernelDeb, g.Manifest)
	for _, p := range g.Packages {
		fmt.Fprintf(h.stdout, "package %s %s %s\n", p.Role, p.Name, p.Version)
	}
	for _, m := range f.modules {
		fmt.Fprintf(h.stdout, "module %s %s\n", m.Name, m.File)
	}
	if len(g.Downloaded) == 0 {
		fmt.Fprintln(h.stderr, "gohvctl guest fetch: cache complete, nothing downloaded")
	}
}

// writeInitramfs builds the plan's initramfs at -out, else at def, else
// in the release directory (or the cache directory without one).
func (h *host) writeInitramfs(p guestPlan, f guestFiles, def string) (string, error) {
	s := initramfs.Spec{Busybox: f.busybox, Gzip: p.gzip}
	switch {
	case p.shell:
		s.Init = initramfs.ShellInit
		s.Files = initramfs.StopperFiles()
	case p.init != "":
		b, err := os.ReadFile(p.init)
		if err != nil {
			return "", err
		}
		s.Init = string(b)
	}
	for _, m := range f.modules {
		s.Files = append(s.Files, initramfs.File{Name: m.Path, Source: m.File})
		s.Modules = append(s.Modules, m.Path)
	}
	out := p.out
	if out == "" {
		out = def
	}
	if out == "" {
		name := "initramfs.cpio"
		if p.gzip {
			name += ".gz"
		}
		dir := p.cache
		if f.guest != nil {
			dir = f.guest.Dir
		}
		out = filepath.Join(dir, name)
	}
	return out, s.WriteFile(out)
}

func (h *host) runBare(ctx context.Context, p guestPlan, f guestFiles) int {
	fail := func(err error) int {
		fmt.Fprintf(h.stderr, "gohvctl guest run-bare: %v\n", err)
		return 1
	}
	initrd := p.initrd
	if initrd == "" {
		dir, err := os.MkdirTemp("", "gohv-run-bare-")
		if err != nil {
			return fail(err)
		}
		defer os.RemoveAll(dir)
		if initrd, err = h.writeInitramfs(p, f, filepath.Join(dir, "initramfs.cpio")); err != nil {
			return fail(err)
		}
	}
	c := p.qemu
	c.Kernel = f.kernel
	c.Append = initramfs.KernelCmdline(p.appendW...)
	c.NoDebugExit = true
	extra := []string{"-initrd", initrd, "-smp", strconv.Itoa(p.smp)}
	if p.icount {
		extra = append(extra, "-icount", "shift=0,sleep=off")
	}
	c.Extra = append(extra, c.Extra...)
	sw := initramfs.NewStopwatch()
	c.Console = io.MultiWriter(h.stdout, sw)
	fmt.Fprintf(h.stderr, "gohvctl guest run-bare: %s %s\n", qemu.Binary, strings.Join(c.Args(), " "))
	sw.Start = time.Now()
	r, err := h.qemu(ctx, c)
	if err != nil {
		return fail(err)
	}
	b := initramfs.ParseConsole(r.Log)
	ok := b.HasRunInit && b.Panic == "" && !r.TimedOut && r.ExitCode == qemu.ExitPowerOff
	fmt.Fprint(h.stderr, bareSummary(b, r, sw))
	if !ok {
		return 1
	}
	return 0
}

// bareSummary says how a bare boot went, a line each: the figures, then
// the init's report.
func bareSummary(b initramfs.Boot, r *qemu.Result, sw *initramfs.Stopwatch) string {
	var s strings.Builder
	pre := "gohvctl guest run-bare: "
	if b.HasRunInit {
		wall, _ := sw.RunInit()
		fmt.Fprintf(&s, "%s\"Run %s\" at %.6f s guest time (printk), %.2f s wall\n", pre, b.Init, b.RunInit.Seconds(), wall.Seconds())
	} else {
		fmt.Fprintf(&s, "%sno \"Run /init\" line on the console\n", pre)
	}
	switch {
	case r.TimedOut:
		fmt.Fprintf(&s, "%stimed out after %.2f s wall\n", pre, r.Elapsed.Seconds())
	case r.ExitCode == qemu.ExitPowerOff:
		fmt.Fprintf(&s, "%sQEMU exited after %.2f s wall (status 0)\n", pre, r.Elapsed.Seconds())
	default:
		fmt.Fprintf(&s, "%sQEMU exit status %d after %.2f s wall\n", pre, r.ExitCode, r.Elapsed.Seconds())
	}
	if b.Panic != "" {
		fmt.Fprintf(&s, "%skernel panic: %s\n", pre, b.Panic)
	}
	for _, k := range b.Keys {
		fmt.Fprintf(&s, "%sguest: %s\n", pre, strings.TrimSpace(k+" "+b.Report[k]))
	}
	if e := r.Complaints(); e != "" {
		fmt.Fprintf(&s, "%sqemu: %s\n", pre, e)
	}
	return s.String()
}
