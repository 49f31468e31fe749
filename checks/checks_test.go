package checks

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestFind(t *testing.T) {
	for _, c := range []struct {
		args []string
		word string
		only []string
	}{
		{[]string{"/boot/gohv", "console=com1,115200", "selftest"}, "selftest", nil},
		{[]string{"hvtest=exits-roundtrip,isolation"}, "hvtest", []string{"exits-roundtrip", "isolation"}},
		{[]string{"bench"}, "", nil},
		{nil, "", nil},
	} {
		s, only := Find(c.args)
		word := ""
		if s != nil {
			word = s.Word
		}
		if word != c.word || !slices.Equal(only, c.only) {
			t.Errorf("Find(%q) = %q %q, want %q %q", c.args, word, only, c.word, c.only)
		}
	}
}

// TestRunReportsEachCheck: one line per check in the serial protocol, a
// panic is that check's failure, unknown names fail the suite.
func TestRunReportsEachCheck(t *testing.T) {
	s := &Suite{Word: "t", Checks: []Check{
		{"good", func(*Env) (string, error) { return "fine", nil }},
		{"bad", func(*Env) (string, error) { return "", errors.New("broken") }},
		{"panics", func(*Env) (string, error) { panic("boom") }},
	}}
	var out strings.Builder
	if s.Run(&Env{Out: &out}, nil) {
		t.Fatal("a suite with failures passed")
	}
	want := "gohv: check good PASS fine\ngohv: check bad FAIL broken\ngohv: check panics FAIL panic: boom\n"
	if out.String() != want {
		t.Fatalf("got\n%s", out.String())
	}
	out.Reset()
	if !s.Run(&Env{Out: &out}, []string{"good"}) || out.String() != "gohv: check good PASS fine\n" {
		t.Fatalf("selection: %q", out.String())
	}
	out.Reset()
	if s.Run(&Env{Out: &out}, []string{"good", "nonesuch"}) || !strings.Contains(out.String(), "check nonesuch FAIL no such check in t") {
		t.Fatalf("unknown name: %q", out.String())
	}
}

func TestSetupFailureFailsTheSuite(t *testing.T) {
	ran := false
	s := &Suite{Word: "t", Setup: func(*Env) error { return errors.New("no VT-x") },
		Checks: []Check{{"c", func(*Env) (string, error) { ran = true; return "", nil }}}}
	var out strings.Builder
	if s.Run(&Env{Out: &out}, nil) || ran || out.String() != "gohv: check t-setup FAIL no VT-x\n" {
		t.Fatalf("ran %v: %q", ran, out.String())
	}
}

// TestNamesAreUnique: the host-side tests look checks up by name.
func TestNamesAreUnique(t *testing.T) {
	seen := map[string]string{}
	for _, s := range Suites {
		for _, n := range s.Names() {
			if prev, ok := seen[n]; ok {
				t.Errorf("check %q in both %s and %s", n, prev, s.Word)
			}
			seen[n] = s.Word
		}
	}
}

// TestStallPeriodsLost: each stall accounts for its own whole periods;
// the ones past the meter's list are added up first.
func TestStallPeriodsLost(t *testing.T) {
	m := &stallMeter{stalls: []time.Duration{9 * time.Millisecond, 25 * time.Millisecond, 41 * time.Millisecond}, more: 15 * time.Millisecond}
	if got := m.PeriodsLost(10 * time.Millisecond); got != 0+2+4+1 {
		t.Errorf("PeriodsLost(10ms) = %d, want 7", got)
	}
	if got := (*stallMeter)(nil).PeriodsLost(time.Millisecond); got != 0 {
		t.Errorf("a nil meter lost %d", got)
	}
}

// TestCheckThatCannotRunHere: a check this machine cannot run (it says so
// with errCannotRunHere) is left out of a run of the whole suite, with a
// line that says why, and fails a run that names it.
func TestCheckThatCannotRunHere(t *testing.T) {
	s := &Suite{Word: "t", Checks: []Check{
		{"good", func(*Env) (string, error) { return "fine", nil }},
		{"smp", func(*Env) (string, error) { return "", fmt.Errorf("%w: needs 3 CPUs", errCannotRunHere) }},
	}}
	var out strings.Builder
	if !s.Run(&Env{Out: &out}, nil) || out.String() != "gohv: check good PASS fine\ngohv: check smp not run: cannot run on this machine: needs 3 CPUs\n" {
		t.Fatalf("whole suite: %q", out.String())
	}
	out.Reset()
	if s.Run(&Env{Out: &out}, []string{"smp"}) || !strings.Contains(out.String(), "gohv: check smp FAIL") {
		t.Fatalf("named: %q", out.String())
	}
}
