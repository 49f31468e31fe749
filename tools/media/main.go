// Command media builds gohv's boot media from the image `make image` makes:
//
//	go run ./tools/media iso  -kernel build/gohv -out build/gohv.iso
//	go run ./tools/media pxe  -kernel build/gohv -out build/pxe
//	go run ./tools/media disk -kernel build/gohv -out build/gohv.img
//	go run ./tools/media all  -kernel build/gohv -out DIR   (DIR/gohv.iso, DIR/pxe, DIR/gohv.img)
//	go run ./tools/media grub-cfg -medium iso               (print the generated grub.cfg)
//
// It needs GRUB (grub-common, grub-pc-bin, grub-efi-amd64-bin), xorriso and
// mtools from Debian. The work is done by package bootmedia.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"

	"gohv/tools/media/bootmedia"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

const usage = `usage: go run ./tools/media COMMAND [flags]

commands:
  iso       hybrid ISO: CD-ROM and USB stick, BIOS and UEFI   -out build/gohv.iso
  pxe       TFTP root for network boot (GRUB netboot images)  -out build/pxe
  disk      raw GPT disk image: BIOS boot partition and ESP   -out build/gohv.img
  all       all three into one directory                      -out DIR
  grub-cfg  print the grub.cfg a medium carries               -medium iso|pxe|disk

Run "go run ./tools/media COMMAND -h" for the flags of a command.
`

// run is the program, minus the process: it returns the exit status.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "-help" || args[0] == "help" {
		fmt.Fprint(stderr, usage)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	cmd := args[0]
	switch cmd {
	case "iso", "pxe", "disk", "all", "grub-cfg":
	default:
		fmt.Fprintf(stderr, "media: unknown command %q\n\n%s", cmd, usage)
		return 2
	}
	fs := flag.NewFlagSet("media "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	c := bootmedia.DefaultConfig()
	var (
		kernel  = fs.String("kernel", "build/gohv", "the gohv image (Multiboot2 kernel) to put on the medium")
		out     = fs.String("out", "", "where to write the medium (a file for iso and disk, a directory for pxe and all)")
		extra   = fs.String("args", "", "further kernel command-line words for every menu entry, space-separated")
		grubDir = fs.String("grub-dir", bootmedia.DefaultGrubLib, "directory holding GRUB's i386-pc and x86_64-efi directories")
		sizeMiB = fs.Int("size-mib", bootmedia.DefaultDiskMiB, "disk image size in MiB (disk, all)")
		medium  = fs.String("medium", bootmedia.MediumISO, "which medium's grub.cfg to print (grub-cfg)")
		verbose = fs.Bool("v", false, "print each step and the GRUB tools' output")
	)
	fs.StringVar(&c.Default, "default", c.Default, "menu entry booted after the timeout: run (the default configuration) or selftest")
	fs.IntVar(&c.Timeout, "timeout", c.Timeout, "seconds the GRUB menu waits; 0 boots the default entry at once")
	fs.IntVar(&c.SerialUnit, "serial-unit", c.SerialUnit, "GRUB serial unit for the console: 0 is COM1 (0x3f8)")
	fs.IntVar(&c.Baud, "baud", c.Baud, "serial console speed (8N1)")
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "media %s: unexpected arguments %q\n", cmd, fs.Args())
		return 2
	}
	c.Args = strings.Fields(*extra)
	if err := c.Validate(); err != nil {
		fmt.Fprintf(stderr, "media %s: %v\n", cmd, err)
		return 2
	}

	if cmd == "grub-cfg" {
		cfg, err := bootmedia.GrubConfig(c, *medium)
		if err != nil {
			fmt.Fprintf(stderr, "media: %v\n", err)
			return 2
		}
		stdout.Write(cfg)
		return 0
	}
	if *out == "" {
		fmt.Fprintf(stderr, "media %s: -out is required\n", cmd)
		return 2
	}
	k, err := bootmedia.ReadKernel(*kernel)
	if err != nil {
		fmt.Fprintf(stderr, "media: %v\n", err)
		return 1
	}
	b := &bootmedia.Builder{Kernel: k, Config: c, GrubLib: *grubDir}
	if *verbose {
		b.Log = stderr
	}
	disk := bootmedia.DiskOptions{SizeMiB: *sizeMiB}
	type job struct {
		what, path string
		build      func(context.Context, string) error
	}
	jobs := map[string]job{
		"iso":  {"ISO", *out, b.ISO},
		"pxe":  {"PXE tree", *out, b.PXE},
		"disk": {"disk image", *out, func(ctx context.Context, p string) error { return b.Disk(ctx, p, disk) }},
	}
	var todo []job
	if cmd == "all" {
		if err := os.MkdirAll(*out, 0o755); err != nil {
			fmt.Fprintf(stderr, "media: %v\n", err)
			return 1
		}
		for name, file := range map[string]string{"iso": "gohv.iso", "pxe": "pxe", "disk": "gohv.img"} {
			j := jobs[name]
			j.path = filepath.Join(*out, file)
			jobs[name] = j
		}
		todo = []job{jobs["iso"], jobs["pxe"], jobs["disk"]}
	} else {
		todo = []job{jobs[cmd]}
		if err := os.MkdirAll(filepath.Dir(*out), 0o755); err != nil {
			fmt.Fprintf(stderr, "media: %v\n", err)
			return 1
		}
	}
	for _, j := range todo {
		if err := j.build(ctx, j.path); err != nil {
			fmt.Fprintf(stderr, "%v\n", err)
			return 1
		}
		fmt.Fprintf(stdout, "media: %s %s (default entry %q, timeout %d s, console COM%d %d)\n",
			j.what, j.path, c.Default, c.Timeout, c.SerialUnit+1, c.Baud)
	}
	return 0
}
