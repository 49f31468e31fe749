package main

import (
	"bytes"
	"fmt"
	"regexp"
	"runtime"
	"strconv"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// cpus are the host CPUs this test may pin to, or a skip.
func cpus(t *testing.T, want int) []int {
	t.Helper()
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		t.Fatal(err)
	}
	var out []int
	for c := 0; c < runtime.NumCPU()*4 && len(out) < want; c++ {
		if set.IsSet(c) {
			out = append(out, c)
		}
	}
	if len(out) < want {
		t.Skipf("%d CPUs allowed, want %d", len(out), want)
	}
	return out
}

// figure returns the number that starts the value of guest: smp.<key>.
func figure(t *testing.T, out, key string) float64 {
	t.Helper()
	m := regexp.MustCompile(`(?m)^guest: smp\.` + regexp.QuoteMeta(key) + ` ([0-9.e+]+) \(.*\)$`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no guest: smp.%s line in\n%s", key, out)
	}
	f, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestPercentile(t *testing.T) {
	ds := []time.Duration{5, 1, 4, 2, 3, 10, 9, 8, 7, 6}
	s := summarise(ds)
	if s.median != 5 || s.p90 != 9 || s.max != 10 || s.mean != 5 || s.slow != 0 {
		t.Errorf("summarise 1..10 = %+v, want median 5, p90 9, max 10, mean 5", s)
	}
	if s := summarise([]time.Duration{time.Millisecond}); s.median != time.Millisecond || s.p90 != time.Millisecond || s.slow != 1 {
		t.Errorf("summarise [1ms] = %+v", s)
	}
}

func TestXorshiftIsMarsaglias(t *testing.T) {
	// Marsaglia, "Xorshift RNGs" (2003), 64-bit (13, 7, 17) from 1.
	if got := xorshift(1, 1); got != 1082269761 {
		t.Errorf("xorshift(1, 1) = %d, want 1082269761", got)
	}
	if xorshift(88172645463325252, 3) != xorshift(xorshift(88172645463325252, 1), 2) {
		t.Error("xorshift is not its own iteration")
	}
}

// -pingpong times every round trip and reports the median and p90 in µs.
func TestPingPong(t *testing.T) {
	c := cpus(t, 2)
	var out bytes.Buffer
	if err := pingPong(&out, c[0], c[1], 200); err != nil {
		t.Fatal(err)
	}
	med, p90 := figure(t, out.String(), "pingpong-median-us"), figure(t, out.String(), "pingpong-p90-us")
	if med <= 0 || p90 < med {
		t.Errorf("median %v µs, p90 %v µs\n%s", med, p90, out.String())
	}
	t.Logf("\n%s", out.String())
}

// -shootdown with one CPU and with two: both report the time per pair.
func TestShootdown(t *testing.T) {
	cpus(t, 2)
	for _, n := range []int{1, 2} {
		var out bytes.Buffer
		if err := shootDown(&out, n, 500); err != nil {
			t.Fatal(err)
		}
		key := "shootdown" + strconv.Itoa(n)
		if med := figure(t, out.String(), key+"-median-us"); med <= 0 {
			t.Errorf("%s median %v µs", key, med)
		}
		figure(t, out.String(), key+"-p90-us")
		t.Logf("\n%s", out.String())
	}
}

// -spin counts iterations on each thread; two threads on two CPUs get
// about twice one thread's throughput on an idle host (a loose bound:
// the host may be busy).
func TestSpin(t *testing.T) {
	cpus(t, 2)
	rate := map[int]float64{}
	for _, n := range []int{1, 2} {
		var out bytes.Buffer
		if err := spin(&out, n, 100*time.Millisecond); err != nil {
			t.Fatal(err)
		}
		rate[n] = figure(t, out.String(), "spin"+strconv.Itoa(n)+"-ips")
		t.Logf("\n%s", out.String())
	}
	if rate[1] <= 0 || rate[2] < rate[1]/2 {
		t.Errorf("iterations per second: 1 thread %.3g, 2 threads %.3g", rate[1], rate[2])
	}
	t.Logf("scaling 2/1: %.2f", rate[2]/rate[1])
}

// Bad arguments are errors, not hangs.
func TestBadArguments(t *testing.T) {
	var out bytes.Buffer
	for name, err := range map[string]error{
		"pingpong same CPU": pingPong(&out, 0, 0, 10),
		"shootdown 0 CPUs":  shootDown(&out, 0, 10),
		"spin 0 threads":    spin(&out, 0, time.Millisecond),
		"pin to CPU 4096":   onThreads([]int{4095}, func(int) error { return nil }),
	} {
		if err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

// -suffix goes before the unit, the last "-" field of the key.
func TestSuffix(t *testing.T) {
	var out bytes.Buffer
	w := &suffixWriter{w: &out, suffix: "offline"}
	fmt.Fprintf(w, "guest: smp.spin1-ips 7.5e+07 (1 threads)\n")
	fmt.Fprintf(w, "guest: smp.shootdown1-median-us 7.30 (a-b)\n")
	want := "guest: smp.spin1-offline-ips 7.5e+07 (1 threads)\nguest: smp.shootdown1-median-offline-us 7.30 (a-b)\n"
	if out.String() != want {
		t.Errorf("got\n%s\nwant\n%s", out.String(), want)
	}
}
