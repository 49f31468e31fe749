package verdict

import (
	"strings"
	"testing"
)

func TestParsePass(t *testing.T) {
	log := "SeaBIOS (version 1.16)\r\nBooting from ROM...\r\n" +
		"gohv: banner gohv hypervisor (go1.26.8, linux/amd64)\n" +
		"gohv: check timers PASS sleep 10ms late by 1.4ms avg\n" +
		"gohv: measure syscall-getpid 205 tsc-cycles median per call\n" +
		"noise gohv: check gc PASS 2048 MiB\n" +
		"gohv: verdict PASS\n"
	r := Parse([]byte(log))
	if !r.OK() || r.Err() != nil {
		t.Fatalf("want OK, got %+v err %v", r, r.Err())
	}
	if len(r.Checks) != 2 || r.Checks[1].Name != "gc" || r.Checks[0].Detail != "sleep 10ms late by 1.4ms avg" {
		t.Fatalf("checks %+v", r.Checks)
	}
	m, ok := r.Measure("syscall-getpid")
	if !ok || m.Value != 205 || m.Unit != "tsc-cycles" || m.Detail != "median per call" {
		t.Fatalf("measure %+v %v", m, ok)
	}
	if len(r.Lines) != 5 {
		t.Fatalf("lines %q", r.Lines)
	}
}

func TestParseFailures(t *testing.T) {
	for _, tc := range []struct {
		name, log, errHas string
	}{
		{"none", "gohv: banner x\n", "no verdict"},
		{"fail", "gohv: verdict FAIL metal: memory map: missing\n", "FAIL metal: memory map: missing"},
		{"two", "gohv: verdict PASS\ngohv: verdict PASS\n", "2 verdict lines"},
		{"check", "gohv: check x FAIL broken\ngohv: verdict PASS\n", "check x failed: broken"},
		{"fail names its checks", "gohv: check a PASS fine\ngohv: check b FAIL late by 9ms\ngohv: verdict FAIL hvtest checks failed\n",
			"FAIL hvtest checks failed; failed: check b: late by 9ms"},
		{"truncated", "gohv: verdict PA", "no verdict"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := Parse([]byte(tc.log))
			if r.OK() {
				t.Fatal("OK on a failing log")
			}
			if err := r.Err(); err == nil || !strings.Contains(err.Error(), tc.errHas) {
				t.Fatalf("err %v, want %q", err, tc.errHas)
			}
		})
	}
}

func TestMalformedLinesIgnored(t *testing.T) {
	r := Parse([]byte("gohv:\ngohv: check\ngohv: check x MAYBE\ngohv: measure y notanumber z\ngohv: verdict\ngohv: verdict PASS\n"))
	if len(r.Checks) != 0 || len(r.Measures) != 0 || r.Verdicts != 1 || !r.OK() {
		t.Fatalf("%+v", r)
	}
}

func TestLongLine(t *testing.T) {
	log := strings.Repeat("x", 3<<20) + "\ngohv: verdict PASS\n"
	if r := Parse([]byte(log)); !r.OK() {
		t.Fatalf("%+v", r.Err())
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte("gohv: check a PASS b\ngohv: measure m 1.5 u d\ngohv: verdict FAIL r\n"))
	f.Add([]byte("\x00\xffgohv: verdict PASS\r\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		r := Parse(b)
		if r.OK() && r.Err() != nil || !r.OK() && r.Err() == nil {
			t.Fatalf("OK and Err disagree: %v %v", r.OK(), r.Err())
		}
		if r.Verdicts > 0 != r.HaveVerdict {
			t.Fatal("HaveVerdict disagrees with Verdicts")
		}
		for _, l := range r.Lines {
			if !strings.HasPrefix(l, Prefix) {
				t.Fatalf("line %q lacks prefix", l)
			}
		}
	})
}
