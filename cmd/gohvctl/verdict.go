package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"

	"gohv/tools/verdict"
)

const verdictAbout = `usage: gohvctl verdict [log]

Reads a serial log from the file log (stdin without one) and prints its
gohv: protocol lines: each check, each measure, then the verdict. Exits 0
when the log holds a single "gohv: verdict PASS" and no failed check, 1
otherwise, 2 when the log cannot be read.
`

func (h *host) cmdVerdict(_ context.Context, args []string) int {
	fs := flag.NewFlagSet("verdict", flag.ContinueOnError)
	if code, ok := h.parse(fs, verdictAbout, args); !ok {
		return code
	}
	in := h.stdin
	switch fs.NArg() {
	case 0:
	case 1:
		f, err := os.Open(fs.Arg(0))
		if err != nil {
			fmt.Fprintf(h.stderr, "gohvctl verdict: %v\n", err)
			return 2
		}
		defer f.Close()
		in = f
	default:
		fmt.Fprintf(h.stderr, "gohvctl verdict: at most one log file, not %q\n", fs.Args())
		return 2
	}
	b, err := io.ReadAll(in)
	if err != nil {
		fmt.Fprintf(h.stderr, "gohvctl verdict: %v\n", err)
		return 2
	}
	r := verdict.Parse(b)
	for _, c := range r.Checks {
		st := "PASS"
		if !c.Pass {
			st = "FAIL"
		}
		fmt.Fprintf(h.stdout, "check   %-22s %s %s\n", c.Name, st, c.Detail)
	}
	for _, m := range r.Measures {
		fmt.Fprintf(h.stdout, "measure %-22s %g %s %s\n", m.Name, m.Value, m.Unit, m.Detail)
	}
	if err := r.Err(); err != nil {
		fmt.Fprintln(h.stdout, err)
		return 1
	}
	fmt.Fprintln(h.stdout, "verdict PASS")
	return 0
}
