package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"gohv/tools/bochs"
	"gohv/tools/media/bootmedia"
)

const bochsAbout = `usage: gohvctl bochs [flags]

Boots the gohv image under Bochs (Intel VT-x with EPT, VPID and
unrestricted guest) and streams its serial console to stdout. Bochs has no
-kernel: the command builds a GRUB ISO for -kernel and -append in a
temporary directory (or boots the medium -iso names) as a CD-ROM. Exits 0
when the image reports a single "gohv: verdict PASS" and then powers off,
1 otherwise. ` + "`make run-bochs`" + ` runs it.

With -input the serial console's input is stdin, as with gohvctl run
-input: gohv's console commands (Ctrl-] ?, s, r) and the partition's
shell.

With -config FILE the ISO also carries the partition configuration and the
kernels and initrds it names, as boot modules (the rules of gohvctl run).
`

// bochsPlan is what a bochs command line asks for: the run's configuration
// and, when it names no ISO, the kernel and command line to build one from.
type bochsPlan struct {
	kernel, cmdline string
	configFile      string
	modules         moduleFlags
	config          bochs.Config
}

// bochsFlags declares the bochs command's flags; plan gives what they
// describe once fs has parsed, or an error for flags that contradict each
// other.
func bochsFlags(stdin io.Reader) (fs *flag.FlagSet, plan func() (bochsPlan, error)) {
	fs = flag.NewFlagSet("bochs", flag.ContinueOnError)
	var p bochsPlan
	var input bool
	c := &p.config
	fs.StringVar(&p.kernel, "kernel", "build/gohv", "the gohv image to boot")
	fs.StringVar(&c.ISO, "iso", "", "boot this ISO instead of building one from -kernel and -append")
	fs.StringVar(&p.cmdline, "append", "", "kernel command-line words, e.g. selftest, hvtest, bench; empty is the default configuration")
	fs.IntVar(&c.MemMiB, "m", bochs.DefaultMemMiB, "guest memory in MiB")
	fs.StringVar(&c.CPUModel, "cpu", bochs.DefaultCPUModel, "Bochs CPU model (bochs --help cpu)")
	fs.Int64Var(&c.IPS, "ips", bochs.DefaultIPS, "emulated instructions per second of emulated time")
	fs.DurationVar(&c.Timeout, "timeout", bochs.DefaultTimeout, "kill Bochs after this long")
	fs.StringVar(&c.WorkDir, "keep", "", "keep bochsrc, serial.log and bochs.log in this directory")
	fs.BoolVar(&input, "input", false, "the serial console's input is stdin (COM1 over a loopback socket; Ctrl-C ends Bochs)")
	addModuleFlags(fs, &p.configFile, &p.modules)
	return fs, func() (bochsPlan, error) {
		if input {
			c.Input = stdin
		}
		if c.ISO != "" {
			var err error
			fs.Visit(func(f *flag.Flag) {
				if f.Name == "kernel" || f.Name == "append" || f.Name == "config" || f.Name == "module" {
					err = fmt.Errorf("-%s does not apply to a medium given by -iso", f.Name)
				}
			})
			if err != nil {
				return bochsPlan{}, err
			}
		}
		return p, nil
	}
}

func (h *host) cmdBochs(ctx context.Context, args []string) int {
	fs, plan := bochsFlags(h.stdin)
	if code, ok := h.parse(fs, bochsAbout, args); !ok {
		return code
	}
	if !h.noArgs(fs, bochsAbout) {
		return 2
	}
	p, err := plan()
	if err != nil {
		fmt.Fprintf(h.stderr, "gohvctl bochs: %v\n", err)
		return 2
	}
	c := p.config
	c.Console = h.stdout
	if c.ISO == "" {
		dir, err := os.MkdirTemp("", "gohvctl-bochs-")
		if err != nil {
			return h.bochsFail(err)
		}
		defer os.RemoveAll(dir)
		c.ISO = filepath.Join(dir, "gohv.iso")
		files, err := resolveModules(p.configFile, p.modules)
		if err != nil {
			h.fail("bochs", err)
			return 1
		}
		var mods []*bootmedia.Module
		for _, f := range files {
			m, err := bootmedia.ReadModule(f.name, f.path)
			if err != nil {
				return h.bochsFail(err)
			}
			mods = append(mods, m)
		}
		t := time.Now()
		if err := h.bochsISO(ctx, p.kernel, p.cmdline, c.ISO, mods); err != nil {
			return h.bochsFail(err)
		}
		fmt.Fprintf(h.stderr, "gohvctl bochs: ISO for %q built in %v\n", p.cmdline, time.Since(t).Round(time.Millisecond))
	}
	r, err := h.bochs(ctx, c)
	if err != nil {
		if r != nil {
			fmt.Fprintf(h.stderr, "\ngohvctl bochs: %s\n", r.Describe())
		}
		return h.bochsFail(err)
	}
	fmt.Fprintf(h.stderr, "\ngohvctl bochs: %s\n", r.Describe())
	if !r.Passed() {
		if len(r.BochsLog) > 0 && !r.PoweredOff {
			fmt.Fprintf(h.stderr, "---- bochs.log (tail) ----\n%s---- end ----\n", r.BochsLog)
		}
		return 1
	}
	return 0
}

func (h *host) bochsFail(err error) int {
	fmt.Fprintf(h.stderr, "gohvctl bochs: %v\n", err)
	return 1
}
