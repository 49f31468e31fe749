package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"time"

	"gohv/tools/qemu"
)

const runAbout = `usage: gohvctl run [flags]

Boots the gohv image under QEMU (TCG; -cpu EPYC has AMD-V with nested
paging) and streams its serial console to stdout. Exits 0 when the image
reports a single "gohv: verdict PASS" and QEMU's exit status agrees, 1
otherwise. ` + "`make run`" + ` runs it with the defaults.

With -input the serial console's input is gohvctl's standard input (make
run sets it): what is typed reaches the partition that has gohv's console
input (Ctrl-] then a digit, n or ? switches: see README), Ctrl-C included;
Ctrl-A x quits QEMU, Ctrl-A c is QEMU's monitor. Leave it off when gohvctl
runs in the background of a terminal: QEMU would stop reading it.

With -config FILE the partition configuration and the kernels and initrds
it names go to the image as Multiboot modules (QEMU's -initrd): the
configuration as the module "config", each other module from the file
-module NAME=PATH gives, or else the file NAME beside the configuration.
`

// runFlags declares run's flags; config gives the QEMU configuration they
// describe once fs has parsed, without its modules, and the partition
// configuration and module files to resolve them from. stdin is the
// console input -input gives.
func runFlags(stdin io.Reader) (fs *flag.FlagSet, config func() (qemu.Config, string, moduleFlags)) {
	fs = flag.NewFlagSet("run", flag.ContinueOnError)
	var (
		c          qemu.Config
		appendW    string
		extra      string
		configFile string
		mods       moduleFlags
		input      bool
	)
	fs.StringVar(&c.Kernel, "kernel", "build/gohv", "Multiboot kernel image to boot")
	fs.StringVar(&appendW, "append", "", "kernel command-line words, e.g. \"selftest\" or \"bench\"")
	fs.StringVar(&c.Machine, "M", "q35", "QEMU machine: pc or q35")
	fs.StringVar(&c.CPU, "cpu", "EPYC", "QEMU CPU model (EPYC has svm and npt)")
	fs.IntVar(&c.MemMiB, "m", 512, "guest memory in MiB")
	fs.BoolVar(&c.Icount, "icount", false, "-icount shift=0: deterministic timing, one instruction per TSC tick")
	fs.BoolVar(&c.SkipIdle, "skip-idle", false, "with -icount: sleep=off, the emulated clock skips idle time (the Linux boot measures)")
	fs.BoolVar(&input, "input", false, "the serial console's input is stdin (Ctrl-A x quits QEMU)")
	fs.DurationVar(&c.Timeout, "timeout", 10*time.Minute, "kill the emulator after this long")
	fs.StringVar(&extra, "qemu", "", "extra QEMU arguments, space separated")
	addModuleFlags(fs, &configFile, &mods)
	return fs, func() (qemu.Config, string, moduleFlags) {
		c.Append = words(appendW)
		c.Extra = words(extra)
		if input {
			c.Input = stdin
		}
		return c, configFile, mods
	}
}

func (h *host) cmdRun(ctx context.Context, args []string) int {
	fs, config := runFlags(h.stdin)
	if code, ok := h.parse(fs, runAbout, args); !ok {
		return code
	}
	if !h.noArgs(fs, runAbout) {
		return 2
	}
	c, configFile, mods := config()
	if configFile != "" || len(mods) > 0 {
		files, err := resolveModules(configFile, mods)
		if err != nil {
			h.fail("run", err)
			return 1
		}
		for _, f := range files {
			c.Modules = append(c.Modules, qemu.Module{Path: f.path, Name: f.name})
		}
		if err := c.Check(); err != nil {
			h.fail("run", err)
			return 1
		}
	}
	c.Console = h.stdout
	if c.SkipIdle && !c.Icount {
		fmt.Fprintf(h.stderr, "gohvctl run: -skip-idle goes with -icount\n")
		return 2
	}
	fmt.Fprintf(h.stderr, "gohvctl run: %s\n", c.CommandLine())
	r, err := h.qemu(ctx, c)
	if err != nil {
		fmt.Fprintf(h.stderr, "gohvctl run: %v\n", err)
		return 1
	}
	fmt.Fprintf(h.stderr, "gohvctl run: %s after %v\n", r.Describe(), r.Elapsed.Round(time.Millisecond))
	if r.Passed() {
		return 0
	}
	return 1
}
