// Command bochsrun boots the gohv image under Bochs (Intel VT-x) with the
// serial console on standard output:
//
//	go run ./tools/bochs/cmd/bochsrun -kernel build/gohv             (default configuration)
//	go run ./tools/bochs/cmd/bochsrun -kernel build/gohv -append selftest
//	go run ./tools/bochs/cmd/bochsrun -iso some.iso                  (an existing medium)
//
// It builds a GRUB ISO for the command line (package bochs, BuildISO), runs
// Bochs until the image has given its verdict and powered off, prints how the
// run ended on standard error, and exits 0 only on a pass. `make run-bochs`
// runs it.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"time"

	"gohv/tools/bochs"
)

func main() { os.Exit(run()) }

// run is the program; it returns the exit status, so that deferred clean-up
// runs.
func run() int {
	var (
		kernel  = flag.String("kernel", "build/gohv", "the gohv image to boot (ignored with -iso)")
		iso     = flag.String("iso", "", "boot this ISO instead of building one for -kernel")
		appendW = flag.String("append", "", "kernel command-line words, e.g. selftest, hvtest, bench; empty is the default configuration")
		mem     = flag.Int("m", bochs.DefaultMemMiB, "guest memory in MiB")
		cpu     = flag.String("cpu", bochs.DefaultCPUModel, "Bochs CPU model (bochs --help cpu)")
		ips     = flag.Int64("ips", bochs.DefaultIPS, "emulated instructions per second of emulated time")
		timeout = flag.Duration("timeout", bochs.DefaultTimeout, "kill Bochs after this long")
		keep    = flag.String("keep", "", "keep bochsrc, serial.log and bochs.log in this directory")
	)
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: go run ./tools/bochs/cmd/bochsrun [flags]\n\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() > 0 {
		flag.Usage()
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()

	medium := *iso
	if medium == "" {
		dir, err := os.MkdirTemp("", "gohv-bochsrun-")
		if err != nil {
			return fail(err)
		}
		defer os.RemoveAll(dir)
		medium = filepath.Join(dir, "gohv.iso")
		t := time.Now()
		if err := bochs.BuildISOContext(ctx, *kernel, *appendW, medium); err != nil {
			return fail(err)
		}
		fmt.Fprintf(os.Stderr, "bochsrun: ISO for %q built in %v\n", *appendW, time.Since(t).Round(time.Millisecond))
	}
	r, err := bochs.Run(ctx, bochs.Config{ISO: medium, MemMiB: *mem, CPUModel: *cpu, IPS: *ips,
		Timeout: *timeout, Console: os.Stdout, WorkDir: *keep})
	if err != nil {
		if r != nil {
			fmt.Fprintf(os.Stderr, "\nbochsrun: %s\n", r.Describe())
		}
		return fail(err)
	}
	fmt.Fprintf(os.Stderr, "\nbochsrun: %s\n", r.Describe())
	if !r.Passed() {
		if len(r.BochsLog) > 0 && !r.PoweredOff {
			fmt.Fprintf(os.Stderr, "---- bochs.log (tail) ----\n%s---- end ----\n", r.BochsLog)
		}
		return 1
	}
	return 0
}

func fail(err error) int {
	fmt.Fprintf(os.Stderr, "bochsrun: %v\n", err)
	return 1
}
