// Command gohvctl is gohv's host-side tool: it boots the image under QEMU and
// reads the verdict off the serial console.
//
//	gohvctl run [flags]        boot build/gohv, stream the console, exit 0 on PASS
//	gohvctl verdict [file]     parse a serial log (stdin without a file)
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"time"

	"gohv/tools/qemu"
	"gohv/tools/verdict"
)

const usage = `usage: gohvctl <command> [flags]

commands:
  run       boot the gohv image under QEMU (TCG) and stream its serial console;
            exits 0 when the image reports verdict PASS, 1 otherwise
  verdict   read a serial log from a file (or stdin) and summarise the
            gohv: protocol lines; exits 0 on a single PASS verdict
  help      this text

run flags:
`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		runFlags().PrintDefaults()
		os.Exit(2)
	}
	switch os.Args[1] {
	case "run":
		os.Exit(cmdRun(os.Args[2:]))
	case "verdict":
		os.Exit(cmdVerdict(os.Args[2:]))
	case "help", "-h", "-help", "--help":
		fmt.Print(usage)
		fs := runFlags()
		fs.SetOutput(os.Stdout)
		fs.PrintDefaults()
	default:
		fmt.Fprintf(os.Stderr, "gohvctl: unknown command %q\n\n%s", os.Args[1], usage)
		os.Exit(2)
	}
}

type runOpts struct {
	cfg     qemu.Config
	appendS string
	extra   string
}

var opts runOpts

func runFlags() *flag.FlagSet {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	c := &opts.cfg
	fs.StringVar(&c.Kernel, "kernel", "build/gohv", "Multiboot kernel image to boot")
	fs.StringVar(&opts.appendS, "append", "", "kernel command line words, e.g. \"selftest\" or \"bench\"")
	fs.StringVar(&c.Machine, "M", "q35", "QEMU machine: pc or q35")
	fs.StringVar(&c.CPU, "cpu", "EPYC", "QEMU CPU model (EPYC has svm and npt)")
	fs.IntVar(&c.MemMiB, "m", 512, "guest memory in MiB")
	fs.BoolVar(&c.Icount, "icount", false, "-icount shift=0: deterministic timing, one instruction per TSC tick")
	fs.DurationVar(&c.Timeout, "timeout", 10*time.Minute, "kill the emulator after this long")
	fs.StringVar(&opts.extra, "qemu", "", "extra QEMU arguments, space separated")
	return fs
}

func cmdRun(args []string) int {
	fs := runFlags()
	if err := fs.Parse(args); err != nil {
		return 2
	}
	c := opts.cfg
	c.Append = strings.Fields(opts.appendS)
	c.Extra = strings.Fields(opts.extra)
	c.Console = os.Stdout
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	fmt.Fprintf(os.Stderr, "gohvctl: %s %s\n", qemu.Binary, strings.Join(c.Args(), " "))
	r, err := qemu.Run(ctx, c)
	if err != nil {
		fmt.Fprintf(os.Stderr, "gohvctl: %v\n", err)
		return 1
	}
	fmt.Fprintf(os.Stderr, "gohvctl: %s after %v\n", r.Describe(), r.Elapsed.Round(time.Millisecond))
	if r.Passed() {
		return 0
	}
	return 1
}

func cmdVerdict(args []string) int {
	var in io.Reader = os.Stdin
	if len(args) > 1 {
		fmt.Fprintln(os.Stderr, "gohvctl verdict: at most one log file")
		return 2
	}
	if len(args) == 1 {
		f, err := os.Open(args[0])
		if err != nil {
			fmt.Fprintf(os.Stderr, "gohvctl verdict: %v\n", err)
			return 2
		}
		defer f.Close()
		in = f
	}
	b, err := io.ReadAll(in)
	if err != nil {
		fmt.Fprintf(os.Stderr, "gohvctl verdict: %v\n", err)
		return 2
	}
	r := verdict.Parse(b)
	for _, c := range r.Checks {
		st := "PASS"
		if !c.Pass {
			st = "FAIL"
		}
		fmt.Printf("check   %-22s %s %s\n", c.Name, st, c.Detail)
	}
	for _, m := range r.Measures {
		fmt.Printf("measure %-22s %g %s %s\n", m.Name, m.Value, m.Unit, m.Detail)
	}
	if err := r.Err(); err != nil {
		fmt.Println(err)
		return 1
	}
	fmt.Println("verdict PASS")
	return 0
}
