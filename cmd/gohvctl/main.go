// Command gohvctl is gohv's host-side command: it boots the image under QEMU
// or Bochs, builds its boot media and reads its verdict off a serial log.
//
//	gohvctl run [flags]                          boot build/gohv under QEMU (AMD-V)
//	gohvctl bochs [flags]                        boot build/gohv under Bochs (VT-x)
//	gohvctl media iso|pxe|disk|all|grub-cfg ...  build boot media, or print a grub.cfg
//	gohvctl verdict [log]                        summarise a serial log
//	gohvctl help [command]                       the commands, or one command's flags
//
// Each command lives in a file of its own; the emulators and media builders
// it drives are packages under tools/ (qemu, bochs, media/bootmedia).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"

	"gohv/tools/bochs"
	"gohv/tools/media/bootmedia"
	"gohv/tools/qemu"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	code := realHost().main(ctx, os.Args[1:])
	stop()
	os.Exit(code)
}

// host is the world a command acts on: its standard streams and the
// emulators and builders it drives. main uses the real ones; tests put
// recorders in their place and see what a command line turns into without
// booting anything.
type host struct {
	stdin          io.Reader
	stdout, stderr io.Writer

	qemu  func(context.Context, qemu.Config) (*qemu.Result, error)
	bochs func(context.Context, bochs.Config) (*bochs.Result, error)
	// bochsISO writes a GRUB ISO at out booting kernel with cmdline and
	// the boot modules mods.
	bochsISO func(ctx context.Context, kernel, cmdline, out string, mods []*bootmedia.Module) error
	// medium builds one medium (bootmedia.MediumISO, MediumPXE or
	// MediumDisk) at out; disk applies to MediumDisk only.
	medium func(ctx context.Context, b *bootmedia.Builder, medium, out string, disk bootmedia.DiskOptions) error
}

func realHost() *host {
	return &host{
		stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr,
		qemu:     qemu.Run,
		bochs:    bochs.Run,
		bochsISO: bochs.BuildISOModules,
		medium:   buildMedium,
	}
}

// A command is one word after gohvctl. run gets the arguments after that
// word and returns the exit status: 0 success, 1 failure (of the boot, the
// build, the verdict), 2 a bad command line.
type command struct {
	name    string
	summary string // one line for `gohvctl help`
	run     func(h *host, ctx context.Context, args []string) int
}

// commands in the order `gohvctl help` lists them. help itself is handled by
// main, which reads this table.
var commands = []command{
	{"run", "boot the image under QEMU (TCG, AMD-V), serial console on stdout", (*host).cmdRun},
	{"bochs", "boot the image under Bochs (Intel VT-x) from a GRUB ISO", (*host).cmdBochs},
	{"media", "build boot media (iso, pxe, disk, all) or print a grub.cfg (grub-cfg)", (*host).cmdMedia},
	{"guest", "Debian's kernel and busybox: fetch, build an initramfs, boot them bare under QEMU", (*host).cmdGuest},
	{"verdict", "summarise the gohv: lines of a serial log; exit 0 on a single PASS", (*host).cmdVerdict},
}

func lookup(name string) (command, bool) {
	for _, c := range commands {
		if c.name == name {
			return c, true
		}
	}
	return command{}, false
}

// usage prints the list of commands.
func usage(w io.Writer) {
	fmt.Fprint(w, "usage: gohvctl <command> [arguments]\n\ncommands:\n")
	for _, c := range commands {
		fmt.Fprintf(w, "  %-8s  %s\n", c.name, c.summary)
	}
	fmt.Fprintf(w, "  %-8s  %s\n", "help", "this list; `help <command>` is `<command> -h`")
	fmt.Fprint(w, "\n`gohvctl <command> -h` lists a command's flags.\n")
}

// main dispatches args (without the program name) and returns the exit
// status.
func (h *host) main(ctx context.Context, args []string) int {
	if len(args) == 0 {
		usage(h.stderr)
		return 2
	}
	name, rest := args[0], args[1:]
	switch name {
	case "help", "-h", "-help", "--help":
		if len(rest) == 0 {
			usage(h.stdout)
			return 0
		}
		c, ok := lookup(rest[0])
		if !ok || len(rest) > 1 {
			fmt.Fprintf(h.stderr, "gohvctl help: no command %q\n\n", strings.Join(rest, " "))
			usage(h.stderr)
			return 2
		}
		return c.run(h, ctx, []string{"-h"})
	}
	c, ok := lookup(name)
	if !ok {
		fmt.Fprintf(h.stderr, "gohvctl: unknown command %q\n\n", name)
		usage(h.stderr)
		return 2
	}
	return c.run(h, ctx, rest)
}

// parse parses a command's flags. The description about (synopsis and a
// paragraph) and the flags go to stdout for -h, which asked for them, and to
// stderr after a bad flag. ok is false when the command is to stop with
// status code.
func (h *host) parse(fs *flag.FlagSet, about string, args []string) (code int, ok bool) {
	fs.SetOutput(io.Discard)
	err := fs.Parse(args)
	switch {
	case err == nil:
		return 0, true
	case errors.Is(err, flag.ErrHelp):
		printUsage(h.stdout, fs, about)
		return 0, false
	default:
		fmt.Fprintf(h.stderr, "gohvctl %s: %v\n", fs.Name(), err)
		printUsage(h.stderr, fs, about)
		return 2, false
	}
}

// noArgs refuses arguments left after the flags of a command that takes
// none.
func (h *host) noArgs(fs *flag.FlagSet, about string) bool {
	if fs.NArg() == 0 {
		return true
	}
	fmt.Fprintf(h.stderr, "gohvctl %s: unexpected arguments %q\n", fs.Name(), fs.Args())
	printUsage(h.stderr, fs, about)
	return false
}

// fail prints err for command cmd, each of its lines (a configuration's
// errors are one a line) prefixed with the command.
func (h *host) fail(cmd string, err error) {
	for _, l := range strings.Split(err.Error(), "\n") {
		fmt.Fprintf(h.stderr, "gohvctl %s: %s\n", cmd, l)
	}
}

// words splits a flag's value at blanks; no words is nil, so a flag left
// empty leaves a configuration as its defaults have it.
func words(s string) []string {
	if w := strings.Fields(s); len(w) > 0 {
		return w
	}
	return nil
}

func printUsage(w io.Writer, fs *flag.FlagSet, about string) {
	fmt.Fprint(w, about)
	n := 0
	fs.VisitAll(func(*flag.Flag) { n++ })
	if n == 0 {
		return
	}
	fmt.Fprint(w, "\nflags:\n")
	fs.SetOutput(w)
	fs.PrintDefaults()
	fs.SetOutput(io.Discard)
}
