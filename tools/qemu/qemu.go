// Package qemu boots a gohv image (or boot medium) under qemu-system-x86_64
// and captures its serial console. It knows the image's conventions: the
// isa-debug-exit device at port 0xf4 that turns a verdict into an exit
// status, TCG acceleration (no /dev/kvm here), and the serial protocol read
// by package verdict.
package qemu

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"time"

	"gohv/tools/verdict"
)

// Binary is the emulator the package runs; tests may point it elsewhere.
var Binary = "qemu-system-x86_64"

// Exit statuses of QEMU with isa-debug-exit (status = value<<1 | 1) as the
// image uses them, and the status of an ordinary ACPI power-off.
const (
	ExitPowerOff = 0 // ACPI S5 or a clean shutdown: read the verdict off the log
	ExitPass     = 1 // the image wrote 0 to port 0xf4
	ExitFail     = 3 // the image wrote 1 to port 0xf4
)

// Config describes one boot.
type Config struct {
	Kernel string   // -kernel file (Multiboot); empty when booting a medium
	Append []string // kernel command-line words (with Kernel only)
	// Modules are loaded beside the kernel as Multiboot modules (-initrd;
	// with Kernel only).
	Modules []Module
	Machine string // pc or q35 (default q35)
	CPU     string // default EPYC
	MemMiB  int    // default 512
	Icount  bool   // -icount shift=0: one instruction per TSC tick, deterministic timing
	// SkipIdle adds sleep=off to Icount: while every CPU halts, the
	// emulated clock jumps to the next timer instead of following the
	// host's (Linux boot measurements use it; idle time costs no wall time).
	SkipIdle bool
	// NoDebugExit leaves out isa-debug-exit, so the image powers off through
	// ACPI S5 or halts instead.
	NoDebugExit bool
	Extra       []string      // further QEMU arguments (drives, firmware, netdev)
	Timeout     time.Duration // default 5 minutes; the emulator is killed after it
	// Console, if set, receives the serial output as it arrives.
	Console io.Writer
	// Input, if set, is the serial console's input: QEMU reads it as its
	// standard input (a terminal stays QEMU's, which puts it in raw mode).
	// The serial port is then multiplexed with QEMU's monitor, as
	// -serial mon:stdio does: Ctrl-C reaches the guest, Ctrl-A x quits
	// QEMU, Ctrl-A c switches to the monitor, Ctrl-A Ctrl-A sends Ctrl-A.
	Input io.Reader
}

// Result is what one boot produced.
type Result struct {
	Log      []byte // everything the serial port printed
	Stderr   []byte // QEMU's own complaints
	ExitCode int    // QEMU's exit status (-1 if killed)
	TimedOut bool
	Elapsed  time.Duration
	Verdict  *verdict.Result
}

// Args returns the QEMU command line for c (without the binary).
func (c Config) Args() []string {
	machine, cpu, mem := c.Machine, c.CPU, c.MemMiB
	if machine == "" {
		machine = "q35"
	}
	if cpu == "" {
		cpu = "EPYC"
	}
	if mem == 0 {
		mem = 512
	}
	a := []string{
		"-accel", "tcg",
		"-M", machine,
		"-cpu", cpu,
		"-m", strconv.Itoa(mem),
		"-display", "none",
		"-monitor", "none",
		"-serial", "stdio",
		"-no-reboot",
	}
	if c.Input != nil {
		a[slices.Index(a, "stdio")] = "mon:stdio"
	}
	if !c.NoDebugExit {
		a = append(a, "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04")
	}
	switch {
	case c.Icount && c.SkipIdle:
		a = append(a, "-icount", "shift=0,sleep=off")
	case c.Icount:
		a = append(a, "-icount", "shift=0")
	}
	if c.Kernel != "" {
		a = append(a, "-kernel", c.Kernel)
		if len(c.Append) > 0 {
			a = append(a, "-append", strings.Join(c.Append, " "))
		}
		if len(c.Modules) > 0 {
			a = append(a, "-initrd", InitrdArg(c.Modules))
		}
	}
	return append(a, c.Extra...)
}

// Module is a file QEMU loads beside a Multiboot kernel, and the name the
// image knows it by.
type Module struct {
	Path string
	Name string
}

// InitrdArg is QEMU's -initrd value for modules: "PATH NAME,PATH NAME".
// QEMU's Multiboot loader splits the list at single commas (a comma in a
// path is written twice), takes a module's file from its item up to the
// first space, and hands the image the whole item, "PATH NAME", as the
// module's string; gohv names a module by the string's last word. Check
// refuses what this syntax cannot say.
func InitrdArg(mods []Module) string {
	items := make([]string, len(mods))
	for i, m := range mods {
		items[i] = strings.ReplaceAll(m.Path, ",", ",,") + " " + strings.ReplaceAll(m.Name, ",", ",,")
	}
	return strings.Join(items, ",")
}

// Check reports what in c QEMU's command line cannot carry.
func (c Config) Check() error {
	if len(c.Modules) > 0 && c.Kernel == "" {
		return errors.New("qemu: modules need a kernel (-kernel): they are loaded by QEMU's Multiboot loader")
	}
	for _, m := range c.Modules {
		switch {
		case m.Path == "":
			return fmt.Errorf("qemu: module %q: no file", m.Name)
		case strings.ContainsAny(m.Path, " \t\n"):
			return fmt.Errorf("qemu: module %q: file %q: QEMU's -initrd cannot carry a path with blanks (it ends the path at the first space); link or copy the file to a path without them", m.Name, m.Path)
		case m.Name == "" || strings.ContainsAny(m.Name, " \t\n/"):
			return fmt.Errorf("qemu: module file %s: name %q: want one word without '/'", m.Path, m.Name)
		}
	}
	return nil
}

// CommandLine is the QEMU command for c as a shell would take it: the
// binary and Args, those holding blanks or quotes in single quotes.
func (c Config) CommandLine() string {
	a := append([]string{Binary}, c.Args()...)
	for i, s := range a {
		if s == "" || strings.ContainsAny(s, " \t\n'\"\\$`;&|<>()*?[]{}~#") {
			a[i] = "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
		}
	}
	return strings.Join(a, " ")
}

// ErrNoQEMU is returned when the emulator is not installed.
var ErrNoQEMU = errors.New("qemu: qemu-system-x86_64 not found (Debian: apt-get install qemu-system-x86)")

// Available reports whether the emulator can be run.
func Available() bool {
	_, err := exec.LookPath(Binary)
	return err == nil
}

// Run boots c and waits for the emulator to exit or the timeout to pass. An
// error means the emulator could not be run at all; a guest that fails or
// hangs is described by the Result (ExitCode, TimedOut, Verdict).
func Run(ctx context.Context, c Config) (*Result, error) {
	if !Available() {
		return nil, ErrNoQEMU
	}
	if err := c.Check(); err != nil {
		return nil, err
	}
	if c.Kernel != "" {
		if _, err := os.Stat(c.Kernel); err != nil {
			return nil, fmt.Errorf("qemu: kernel: %w", err)
		}
	}
	for _, m := range c.Modules {
		if _, err := os.Stat(m.Path); err != nil {
			return nil, fmt.Errorf("qemu: module %s: %w", m.Name, err)
		}
	}
	timeout := c.Timeout
	if timeout == 0 {
		timeout = 5 * time.Minute
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	var log, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, Binary, c.Args()...)
	cmd.Stdin = nil
	if c.Input != nil {
		in, done, err := inputFile(c.Input)
		if err != nil {
			return nil, fmt.Errorf("qemu: %w", err)
		}
		defer done()
		cmd.Stdin = in
	}
	if c.Console != nil {
		cmd.Stdout = io.MultiWriter(&log, c.Console)
	} else {
		cmd.Stdout = &log
	}
	cmd.Stderr = &stderr
	cmd.WaitDelay = 5 * time.Second
	start := time.Now()
	err := cmd.Run()
	r := &Result{Log: log.Bytes(), Stderr: stderr.Bytes(), Elapsed: time.Since(start)}
	r.Verdict = verdict.Parse(r.Log)
	var ee *exec.ExitError
	switch {
	case err == nil:
		r.ExitCode = 0
	case ctx.Err() == context.DeadlineExceeded:
		r.TimedOut, r.ExitCode = true, -1
	case errors.As(err, &ee):
		r.ExitCode = ee.ExitCode()
	default:
		return r, fmt.Errorf("qemu: %w", err)
	}
	return r, nil
}

// inputFile gives QEMU r as a file: r itself when it is one (a terminal
// stays a terminal), else a pipe fed from r. done closes the pipe, so a
// reader that never ends does not hold Run past QEMU's exit (the copying
// goroutine ends at r's next Read).
func inputFile(r io.Reader) (f *os.File, done func(), err error) {
	if f, ok := r.(*os.File); ok {
		return f, func() {}, nil
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		return nil, nil, err
	}
	go func() {
		io.Copy(pw, r)
		pw.Close()
	}()
	return pr, func() { pr.Close(); pw.Close() }, nil
}

// Describe is a one-line account of how the boot ended, for test failures.
func (r *Result) Describe() string {
	var s string
	switch {
	case r.TimedOut:
		s = fmt.Sprintf("timed out after %v", r.Elapsed.Round(time.Second))
	case r.ExitCode == ExitPass:
		s = "debug-exit PASS (status 1)"
	case r.ExitCode == ExitFail:
		s = "debug-exit FAIL (status 3)"
	case r.ExitCode == ExitPowerOff:
		s = "powered off (status 0)"
	default:
		s = fmt.Sprintf("exit status %d", r.ExitCode)
	}
	if err := r.Verdict.Err(); err != nil {
		s += "; " + err.Error()
	} else {
		s += "; verdict PASS"
	}
	if e := r.Complaints(); e != "" {
		s += "; qemu: " + e
	}
	return s
}

// Complaints is QEMU's stderr without the warnings every TCG boot of a named
// CPU model prints about features TCG cannot emulate.
func (r *Result) Complaints() string {
	var keep []string
	for _, l := range strings.Split(string(r.Stderr), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.Contains(l, "TCG doesn't support requested feature") {
			keep = append(keep, l)
		}
	}
	return strings.Join(keep, "; ")
}

// Passed reports a clean pass: the protocol's single PASS verdict, and an exit
// status that agrees with it (debug-exit PASS, or power-off without the
// debug-exit device).
func (r *Result) Passed() bool {
	return !r.TimedOut && r.Verdict.OK() && (r.ExitCode == ExitPass || r.ExitCode == ExitPowerOff)
}
