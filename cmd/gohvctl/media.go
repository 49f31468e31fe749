package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"gohv/tools/media/bootmedia"
)

const mediaAbout = `usage: gohvctl media iso|pxe|disk|all|grub-cfg [flags]

Builds gohv's boot media with GRUB (Debian grub-common, grub-pc-bin,
grub-efi-amd64-bin, xorriso, mtools) from the image ` + "`make image`" + ` makes:

  iso       hybrid ISO: CD-ROM and USB stick, BIOS and UEFI   -out build/gohv.iso
  pxe       TFTP root for network boot (GRUB netboot images)  -out build/pxe
  disk      raw GPT disk image: BIOS boot partition and ESP   -out build/gohv.img
  all       all three into one directory                      -out DIR
            (DIR/gohv.iso, DIR/pxe, DIR/gohv.img)
  grub-cfg  print the grub.cfg a medium carries               -medium iso|pxe|disk

With -config FILE every medium also carries the partition configuration, as
the boot module "config", and the kernels and initrds it names, each from
the file -module NAME=PATH gives or else the file NAME beside the
configuration: under /boot/gohv/modules, each loaded by a module2 line of
grub.cfg after a SHA-256 check like the kernel's.
`

// mediaKinds are the words after "media"; each but grub-cfg builds.
var mediaKinds = []string{"iso", "pxe", "disk", "all", "grub-cfg"}

// mediumNames are the media as the command reports them.
var mediumNames = map[string]string{
	bootmedia.MediumISO:  "ISO",
	bootmedia.MediumPXE:  "PXE tree",
	bootmedia.MediumDisk: "disk image",
}

// mediaJob is one medium to build.
type mediaJob struct {
	medium string // bootmedia.MediumISO, MediumPXE or MediumDisk
	out    string
}

// mediaPlan is what a media command line asks for.
type mediaPlan struct {
	kind    string // one of mediaKinds
	kernel  string
	config  bootmedia.Config
	grubLib string
	disk    bootmedia.DiskOptions
	medium  string // grub-cfg: whose grub.cfg
	verbose bool
	// configFile and modules are -config and -module: the boot modules.
	configFile string
	modules    moduleFlags
	// out is -out; jobs are the media to build there (none for grub-cfg).
	out  string
	jobs []mediaJob
}

// mediaFlags declares the media command's flags; plan gives what they
// describe for kind once fs has parsed, or an error for a configuration
// that cannot be built.
func mediaFlags() (fs *flag.FlagSet, plan func(kind string) (mediaPlan, error)) {
	fs = flag.NewFlagSet("media", flag.ContinueOnError)
	p := mediaPlan{config: bootmedia.DefaultConfig()}
	c := &p.config
	var extra string
	fs.StringVar(&p.kernel, "kernel", "build/gohv", "the gohv image (Multiboot2 kernel) to put on the medium")
	fs.StringVar(&p.out, "out", "", "where to write the medium (a file for iso and disk, a directory for pxe and all)")
	fs.StringVar(&extra, "args", "", "further kernel command-line words for every menu entry, space-separated")
	fs.StringVar(&p.grubLib, "grub-dir", bootmedia.DefaultGrubLib, "directory holding GRUB's i386-pc and x86_64-efi directories")
	fs.IntVar(&p.disk.SizeMiB, "size-mib", bootmedia.DefaultDiskMiB, "disk image size in MiB (disk, all)")
	fs.StringVar(&p.medium, "medium", bootmedia.MediumISO, "which medium's grub.cfg to print (grub-cfg)")
	fs.BoolVar(&p.verbose, "v", false, "print each step and the GRUB tools' output")
	fs.StringVar(&c.Default, "default", c.Default, "menu entry booted after the timeout: run (the default configuration) or selftest")
	fs.IntVar(&c.Timeout, "timeout", c.Timeout, "seconds the GRUB menu waits; 0 boots the default entry at once")
	fs.IntVar(&c.SerialUnit, "serial-unit", c.SerialUnit, "GRUB serial unit for the console: 0 is COM1 (0x3f8)")
	fs.IntVar(&c.Baud, "baud", c.Baud, "serial console speed (8N1)")
	addModuleFlags(fs, &p.configFile, &p.modules)
	return fs, func(kind string) (mediaPlan, error) {
		p.kind = kind
		c.Args = words(extra)
		if err := c.Validate(); err != nil {
			return p, err
		}
		switch kind {
		case "grub-cfg":
			return p, nil
		case "all":
			p.jobs = []mediaJob{
				{bootmedia.MediumISO, filepath.Join(p.out, "gohv.iso")},
				{bootmedia.MediumPXE, filepath.Join(p.out, "pxe")},
				{bootmedia.MediumDisk, filepath.Join(p.out, "gohv.img")},
			}
		default:
			p.jobs = []mediaJob{{kind, p.out}}
		}
		if p.out == "" {
			return p, fmt.Errorf("-out is required")
		}
		return p, nil
	}
}

func (h *host) cmdMedia(ctx context.Context, args []string) int {
	kind := ""
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		kind, args = args[0], args[1:]
	}
	fs, plan := mediaFlags()
	if code, ok := h.parse(fs, mediaAbout, args); !ok {
		return code
	}
	switch {
	case kind == "":
		fmt.Fprintf(h.stderr, "gohvctl media: which medium? one of %s\n", strings.Join(mediaKinds, ", "))
		printUsage(h.stderr, fs, mediaAbout)
		return 2
	case !slices.Contains(mediaKinds, kind):
		fmt.Fprintf(h.stderr, "gohvctl media: unknown medium %q\n", kind)
		printUsage(h.stderr, fs, mediaAbout)
		return 2
	case !h.noArgs(fs, mediaAbout):
		return 2
	}
	p, err := plan(kind)
	if err != nil {
		fmt.Fprintf(h.stderr, "gohvctl media %s: %v\n", kind, err)
		return 2
	}
	if kind == "grub-cfg" {
		names, err := moduleNames(p.configFile, p.modules)
		if err != nil {
			h.fail("media "+kind, err)
			return 1
		}
		p.config.Modules = names
		cfg, err := bootmedia.GrubConfig(p.config, p.medium)
		if err != nil {
			fmt.Fprintf(h.stderr, "gohvctl media %s: %v\n", kind, err)
			return 2
		}
		h.stdout.Write(cfg)
		return 0
	}
	return h.buildMedia(ctx, p)
}

// buildMedia builds the plan's media, one after the other.
func (h *host) buildMedia(ctx context.Context, p mediaPlan) int {
	fail := func(err error) int {
		fmt.Fprintf(h.stderr, "gohvctl media %s: %v\n", p.kind, err)
		return 1
	}
	k, err := bootmedia.ReadKernel(p.kernel)
	if err != nil {
		return fail(err)
	}
	files, err := resolveModules(p.configFile, p.modules)
	if err != nil {
		h.fail("media "+p.kind, err)
		return 1
	}
	b := &bootmedia.Builder{Kernel: k, Config: p.config, GrubLib: p.grubLib}
	for _, f := range files {
		m, err := bootmedia.ReadModule(f.name, f.path)
		if err != nil {
			return fail(err)
		}
		b.Modules = append(b.Modules, m)
		b.Config.Modules = append(b.Config.Modules, m.Name)
	}
	if err := b.Config.Validate(); err != nil {
		return fail(err)
	}
	if p.verbose {
		b.Log = h.stderr
	}
	dir := filepath.Dir(p.out)
	if p.kind == "all" {
		dir = p.out
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fail(err)
	}
	for _, j := range p.jobs {
		if err := h.medium(ctx, b, j.medium, j.out, p.disk); err != nil {
			return fail(err)
		}
		mods := ""
		if len(b.Modules) > 0 {
			mods = ", modules " + strings.Join(b.Config.Modules, " ")
		}
		fmt.Fprintf(h.stdout, "gohvctl media: %s %s (default entry %q, timeout %d s, console COM%d %d%s)\n",
			mediumNames[j.medium], j.out, p.config.Default, p.config.Timeout, p.config.SerialUnit+1, p.config.Baud, mods)
	}
	return 0
}

// buildMedium is host.medium outside tests.
func buildMedium(ctx context.Context, b *bootmedia.Builder, medium, out string, disk bootmedia.DiskOptions) error {
	switch medium {
	case bootmedia.MediumISO:
		return b.ISO(ctx, out)
	case bootmedia.MediumPXE:
		return b.PXE(ctx, out)
	case bootmedia.MediumDisk:
		return b.Disk(ctx, out, disk)
	}
	return fmt.Errorf("no medium %q", medium)
}
