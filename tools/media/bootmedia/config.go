// Package bootmedia builds gohv's boot media with GRUB from Debian: a hybrid
// ISO (CD and USB stick, BIOS and UEFI), a TFTP tree for PXE, and a raw GPT
// disk image (BIOS boot partition and EFI system partition) to write onto a
// server's disk.
//
// Every medium carries the same files — the Multiboot2 kernel at
// /boot/gohv/kernel, its SHA-256 beside it, the boot modules (the partition
// configuration and the kernels it names, module.go) with theirs, and a
// grub.cfg generated from one template (grub.cfg.tmpl) — so the boot
// configuration is written in one place. GRUB checks the kernel and every
// module against its checksum before loading any: GRUB's Multiboot2 loader
// reads a kernel with an address tag without noticing that the file is
// short, so a truncated kernel would otherwise be jumped into, and a short
// module would reach the image as a shorter file.
package bootmedia

import (
	"fmt"
	"regexp"
	"strings"
)

// Menu entry ids, also the values of Config.Default.
const (
	EntryRun      = "run"      // the default configuration
	EntrySelftest = "selftest" // the self-checks, ending in a verdict and power-off
)

// Paths on every medium (relative to GRUB's root device). The kernel is not
// at /boot/gohv so that GRUB's "FILE: OK" and "FILE: HASH MISMATCH" lines do
// not read as "gohv:" protocol lines.
const (
	KernelPath = "/boot/gohv/kernel"
	SumPath    = "/boot/gohv/kernel.sha256"
	ConfigPath = "/boot/grub/grub.cfg"
)

// Config is what the boot configuration says.
type Config struct {
	// Default is the menu entry booted when the timeout runs out: EntryRun
	// or EntrySelftest.
	Default string
	// Timeout is how many seconds the menu waits; 0 boots Default at once.
	Timeout int
	// SerialUnit is GRUB's serial unit: 0 is COM1 (I/O port 0x3f8), the port
	// gohv's console uses.
	SerialUnit int
	// Baud is the serial speed (8N1).
	Baud int
	// Args are further kernel command-line words for every entry.
	Args []string
	// Modules names the boot modules GRUB loads beside the kernel, in
	// order (module2 FILE NAME); Builder.Modules holds their files.
	Modules []string
}

// DefaultConfig is the configuration of the media `make media` builds: the
// default configuration after a 5-second menu, console on COM1 at 115200.
func DefaultConfig() Config {
	return Config{Default: EntryRun, Timeout: 5, SerialUnit: 0, Baud: 115200}
}

// safeWord is what a kernel command-line word may contain: it is written into
// grub.cfg unquoted, so nothing GRUB's script parser would interpret.
var safeWord = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9=,._:/+-]*$`)

var bauds = map[int]bool{1200: true, 2400: true, 4800: true, 9600: true, 19200: true, 38400: true, 57600: true, 115200: true}

// Validate reports the first thing wrong with c.
func (c Config) Validate() error {
	switch c.Default {
	case EntryRun, EntrySelftest:
	default:
		return fmt.Errorf("default entry %q: want %q or %q", c.Default, EntryRun, EntrySelftest)
	}
	if c.Timeout < 0 || c.Timeout > 3600 {
		return fmt.Errorf("timeout %d s: want 0..3600", c.Timeout)
	}
	if c.SerialUnit < 0 || c.SerialUnit > 3 {
		return fmt.Errorf("serial unit %d: want 0..3 (COM1..COM4)", c.SerialUnit)
	}
	if !bauds[c.Baud] {
		return fmt.Errorf("serial speed %d: not a standard rate", c.Baud)
	}
	for _, a := range c.Args {
		if !safeWord.MatchString(a) {
			return fmt.Errorf("kernel argument %q: only letters, digits and = , . _ : / + - are allowed", a)
		}
		if a == EntrySelftest {
			return fmt.Errorf("kernel argument %q: choose the selftest entry with the default entry instead", a)
		}
	}
	return checkModuleNames(c.Modules)
}

// ConsoleArg is the command-line word that names the console, e.g.
// "console=com1,115200".
func (c Config) ConsoleArg() string {
	return fmt.Sprintf("console=com%d,%d", c.SerialUnit+1, c.Baud)
}

// Entry is one menu entry of the generated grub.cfg.
type Entry struct {
	ID    string
	Title string
	Args  []string // the kernel command line
	// Automated entries end every boot with a verdict: if GRUB cannot load
	// the kernel the entry prints "gohv: verdict FAIL ..." and powers off, as
	// the kernel itself would, so a test harness never waits on a menu.
	Automated bool
}

// CmdLine is the entry's kernel command line.
func (e Entry) CmdLine() string { return strings.Join(e.Args, " ") }

// Entries lists the menu entries in menu order.
func (c Config) Entries() []Entry {
	base := append([]string{c.ConsoleArg()}, c.Args...)
	return []Entry{
		// Unattended media (no menu timeout) end in a verdict from either
		// entry; a person at a menu gets the menu back from "run" instead.
		{ID: EntryRun, Title: "gohv: run the default configuration", Args: base, Automated: c.Timeout == 0},
		{ID: EntrySelftest, Title: "gohv: self-test (selftest)", Args: append(append([]string(nil), base...), EntrySelftest), Automated: true},
	}
}
