// Package verdict reads the gohv serial protocol: the lines a gohv image
// prints for machines, each starting with "gohv:", ending with exactly one
// "gohv: verdict PASS" or "gohv: verdict FAIL <reason>".
//
// The log is whatever came out of an emulator's serial port: it may hold
// firmware and boot-loader noise, partial lines and arbitrary bytes. Parse
// never fails on such input; it reports what it found.
package verdict

import (
	"bufio"
	"bytes"
	"fmt"
	"strconv"
	"strings"
)

// Prefix starts every machine-readable line.
const Prefix = "gohv:"

// Check is one "gohv: check <name> PASS|FAIL [detail]" line.
type Check struct {
	Name   string
	Pass   bool
	Detail string
}

// Measure is one "gohv: measure <name> <value> <unit> [detail]" line.
type Measure struct {
	Name   string
	Value  float64
	Unit   string
	Detail string
}

// Result is what a serial log says.
type Result struct {
	// HaveVerdict is set when exactly one or more verdict lines were found;
	// Verdicts counts them (the protocol wants exactly one).
	HaveVerdict bool
	Verdicts    int
	Pass        bool   // the last verdict was PASS
	Reason      string // the last FAIL verdict's reason
	Checks      []Check
	Measures    []Measure
	Lines       []string // every "gohv:" line, prefix included, in order
}

// OK reports whether the log ends the way a passing run must: exactly one
// verdict, PASS, and no failed check.
func (r *Result) OK() bool {
	if r.Verdicts != 1 || !r.Pass {
		return false
	}
	for _, c := range r.Checks {
		if !c.Pass {
			return false
		}
	}
	return true
}

// Err says why the log is not a pass, or nil.
func (r *Result) Err() error {
	switch {
	case r.Verdicts == 0:
		return fmt.Errorf("verdict: no verdict line (hang, crash or lost serial output)")
	case r.Verdicts > 1:
		return fmt.Errorf("verdict: %d verdict lines, want exactly one", r.Verdicts)
	case !r.Pass:
		if failed := r.failedChecks(); failed != "" {
			return fmt.Errorf("verdict: FAIL %s; failed: %s", r.Reason, failed)
		}
		return fmt.Errorf("verdict: FAIL %s", r.Reason)
	}
	for _, c := range r.Checks {
		if !c.Pass {
			return fmt.Errorf("verdict: PASS but check %s failed: %s", c.Name, c.Detail)
		}
	}
	return nil
}

// failedChecks names each failed check with its detail, for a FAIL verdict
// whose reason is only a summary.
func (r *Result) failedChecks() string {
	var b strings.Builder
	for _, c := range r.Checks {
		if !c.Pass {
			if b.Len() > 0 {
				b.WriteString("; ")
			}
			fmt.Fprintf(&b, "check %s: %s", c.Name, c.Detail)
		}
	}
	return b.String()
}

// Check returns the named check, if reported.
func (r *Result) Check(name string) (Check, bool) {
	for _, c := range r.Checks {
		if c.Name == name {
			return c, true
		}
	}
	return Check{}, false
}

// Measure returns the named measurement, if reported.
func (r *Result) Measure(name string) (Measure, bool) {
	for _, m := range r.Measures {
		if m.Name == name {
			return m, true
		}
	}
	return Measure{}, false
}

// Parse reads a serial log. A "gohv:" line may follow other text on the same
// physical line (firmware often leaves the cursor mid-line), so the prefix is
// searched for, not anchored; carriage returns are dropped.
func Parse(log []byte) *Result {
	r := &Result{}
	sc := bufio.NewScanner(bytes.NewReader(log))
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	sc.Split(scanLines)
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), "\r")
		i := strings.Index(line, Prefix)
		if i < 0 {
			continue
		}
		line = line[i:]
		r.Lines = append(r.Lines, line)
		r.parseLine(strings.TrimSpace(line[len(Prefix):]))
	}
	return r
}

// scanLines is bufio.ScanLines that also hands over an over-long line in
// pieces instead of stopping the scan.
func scanLines(data []byte, atEOF bool) (int, []byte, error) {
	adv, tok, err := bufio.ScanLines(data, atEOF)
	if adv == 0 && tok == nil && err == nil && len(data) >= 1<<19 {
		return len(data), data, nil
	}
	return adv, tok, err
}

func (r *Result) parseLine(rest string) {
	word, rest := cut(rest)
	switch word {
	case "verdict":
		v, reason := cut(rest)
		switch v {
		case "PASS":
			r.Verdicts++
			r.HaveVerdict = true
			r.Pass, r.Reason = true, ""
		case "FAIL":
			r.Verdicts++
			r.HaveVerdict = true
			r.Pass, r.Reason = false, reason
		}
	case "check":
		name, rest := cut(rest)
		status, detail := cut(rest)
		if name == "" || (status != "PASS" && status != "FAIL") {
			return
		}
		r.Checks = append(r.Checks, Check{Name: name, Pass: status == "PASS", Detail: detail})
	case "measure":
		name, rest := cut(rest)
		val, rest := cut(rest)
		unit, detail := cut(rest)
		f, err := strconv.ParseFloat(val, 64)
		if name == "" || err != nil {
			return
		}
		r.Measures = append(r.Measures, Measure{Name: name, Value: f, Unit: unit, Detail: detail})
	}
}

func cut(s string) (word, rest string) {
	s = strings.TrimLeft(s, " \t")
	i := strings.IndexAny(s, " \t")
	if i < 0 {
		return s, ""
	}
	return s[:i], strings.TrimLeft(s[i+1:], " \t")
}
