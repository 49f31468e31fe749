package imagetest

import (
	"fmt"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"gohv/tools/debian/initramfs"
	"gohv/tools/linuxtest"
)

// The SMP benchmark's partitions and workloads.
const (
	sbMemoryMiB  = 256
	sbRoundTrips = 2000 // -pingpong round trips
	sbPairs      = 2000 // -shootdown mprotect pairs
	sbSpinMS     = 300  // -spin: ms of guest time
)

// sbCounts are the VP counts booted, one partition a boot, and the thread
// and CPU counts each workload takes, those a partition has.
var sbCounts = []int{1, 2, 4}

// sbBoot is what one boot of the SMP benchmark measured: the guest's smp.*
// figures (the number that starts each value) and the partition's exits
// by kind (total under "").
type sbBoot struct {
	smp   map[string]float64
	exits map[string]int
}

// guestsmpInitrd writes an initramfs at path whose /init reports the
// guest's online CPUs, runs the shell lines run (tools/guestsmp is
// /bin/guestsmp) and powers off.
func guestsmpInitrd(b *testing.B, g *linuxtest.Guest, guestsmp, path, run string) string {
	spec := initramfs.Spec{
		Busybox: g.Busybox,
		Init: `#!/bin/sh
# gohv SMP benchmark guest /init (tools/imagetest smp_bench_test.go).
` + initramfs.Prologue + `echo "guest: cpus-online $(cat /sys/devices/system/cpu/online)"
` + run + `
echo "guest: poweroff"
poweroff -f
`,
		Files: []initramfs.File{{Name: "bin/guestsmp", Mode: 0o755, Source: guestsmp}},
	}
	if err := spec.WriteFile(path); err != nil {
		b.Fatal(err)
	}
	return path
}

// BenchmarkLinuxSMP measures a Linux partition's VPs against each other
// under QEMU -cpu EPYC -icount shift=0,sleep=off, in guest time: one boot
// each of a partition of 1, 2 and 4 VPs (Debian's kernel, no modules),
// whose init runs tools/guestsmp's workloads that the VP count allows:
//
//   - pingpong (2 and 4 VPs): 2,000 round trips of a token between
//     threads on CPUs 0 and 1 through a pipe each way, each hop waking a
//     thread asleep in read(2) on the other CPU: the median and 90th
//     percentile round trip;
//   - shootdown N for N = 1, 2, 4 up to the VP count: 2,000 pairs of
//     mprotect(PROT_READ) and back on CPU 0 of a page that threads on
//     CPUs 1..N-1 spin reading, each a remote TLB flush (Linux does it
//     with gohv's HvCallFlushVirtualAddressSpace/List hypercalls): the
//     median per pair;
//   - spin T for T = 1, 2, 4 up to the VP count: T threads on CPUs 0..T-1
//     iterate xorshift64 for 300 ms: iterations per second, and the ratio
//     to one thread's in the same partition;
//   - offline (2 and 4 VPs): the control, spin 1 and shootdown 1 again
//     once CPUs 1.. are offline (echo 0 > .../cpuN/online), CPU 0 alone
//     as in the 1-VP partition.
//
// Exits: Linux flushes remote TLBs with one hypercall per mprotect while
// another CPU is online (whether or not a spinner runs there: the
// process's other threads have run there), so the hypercall exits of a
// partition, less the 1-VP partition's, over its shootdown pairs are the
// hypercalls a pair costs. The HLT and MSR-write exits of a partition,
// less the 1-VP partition's, over its round trips bound what a round trip
// costs from above (the spins and shootdowns take some too).
//
// The VPs take turns on the host's one CPU (hv.TimeSlice, 2 ms), so the
// guest's clock runs on while a VP waits for its turn.
func BenchmarkLinuxSMP(b *testing.B) {
	img := needImage(b)
	g := linuxtest.FetchOrSkip(b, *guestCache, scratch, "bench")
	dir := b.TempDir()
	guestsmp := buildGuestTool(b, dir, "guestsmp")
	initrd := func(vps int) string {
		run := sbWorkloads(vps)
		if vps >= 2 {
			// The control: CPU 0 alone online, as in the 1-VP partition.
			for cpu := 1; cpu < vps; cpu++ {
				run = append(run, fmt.Sprintf("echo 0 > /sys/devices/system/cpu/cpu%d/online", cpu))
			}
			run = append(run, fmt.Sprintf("guestsmp -spin -threads 1 -ms %d -suffix offline", sbSpinMS),
				fmt.Sprintf("guestsmp -shootdown -cpus 1 -n %d -suffix offline", sbPairs))
		}
		return guestsmpInitrd(b, g, guestsmp, filepath.Join(dir, fmt.Sprintf("smp%d.cpio", vps)), `if dmesg | grep -q "Using hypercall for remote TLB flush"; then
	echo "guest: remote-flush hypercall"
else
	echo "guest: remote-flush ipi"
fi
`+strings.Join(run, "\n"))
	}

	// run boots a partition of vps VPs with its workloads.
	run := func(vps int) sbBoot {
		name := fmt.Sprintf("smp%d", vps)
		ps := []linuxtest.Partition{{Name: name, MemoryMiB: sbMemoryMiB, VPs: vps, Kernel: "vmlinuz", Initrd: "initrd",
			Cmdline: linuxtest.Cmdline, OnReboot: "stop"}}
		r := linuxBoot(b, img, 512, ps,
			linuxtest.Module{Name: "vmlinuz", Path: g.Kernel},
			linuxtest.Module{Name: "initrd", Path: initrd(vps)})
		e, ok := linuxtest.EndOf(r.Log, name)
		if !r.Passed() || !ok || e.Reason != linuxtest.PoweredOff {
			b.Fatalf("%s: %s; %q\n%s", name, r.Describe(), e.Line, r.Log)
		}
		rep := initramfs.ParseConsole(linuxtest.Lines(r.Log, name)).Report
		if v, ok := rep["smp.error"]; ok {
			b.Fatalf("%s: guestsmp: %s\n%s", name, v, r.Log)
		}
		if w := fmt.Sprintf("0-%d", vps-1); vps > 1 && rep["cpus-online"] != w {
			b.Fatalf("%s: cpus-online %q, want %q\n%s", name, rep["cpus-online"], w, r.Log)
		}
		// How the kernel flushes other CPUs' TLBs: "ipi" while gohv does
		// not recommend the remote-flush hypercall (hv/hyperv.go says why).
		b.Logf("%s: remote TLB flushes by %s", name, rep["remote-flush"])
		m := sbBoot{smp: sbFigures(b, name, rep)}
		exits, err := e.ExitCounts()
		if err != nil {
			b.Fatal(err)
		}
		m.exits = exits
		b.Logf("%s: partition ran %s; %d exits: %s", name, e.Ran, exits[""], e.Exits)
		return m
	}
	for b.Loop() {
		boots := map[int]sbBoot{}
		for _, vps := range sbCounts {
			boots[vps] = run(vps)
		}
		// figure is boot vps's smp.<key>, which its init must have run.
		figure := func(vps int, key string) float64 {
			f, ok := boots[vps].smp[key]
			if !ok {
				b.Fatalf("smp%d: guestsmp reported no smp.%s", vps, key)
			}
			return f
		}
		for _, vps := range sbCounts {
			suffix := fmt.Sprintf("-%dvp", vps)
			if vps >= 2 {
				b.ReportMetric(figure(vps, "pingpong-median-us"), "pingpong-rtt-us"+suffix)
				b.ReportMetric(figure(vps, "pingpong-p90-us"), "pingpong-rtt-p90-us"+suffix)
			}
			for _, n := range sbCounts {
				if n <= vps {
					b.ReportMetric(figure(vps, fmt.Sprintf("shootdown%d-median-us", n)), fmt.Sprintf("shootdown%d-us/pair", n)+suffix)
				}
			}
			if vps >= 2 {
				b.ReportMetric(figure(vps, "shootdown1-median-offline-us"), "shootdown1-offline-us/pair"+suffix)
				b.ReportMetric(figure(vps, "spin1-offline-ips")/1e6, "spin1-offline-Mips"+suffix)
				e, e1 := boots[vps].exits, boots[1].exits
				var runs int // shootdown runs with CPUs 1.. online
				for _, n := range sbCounts {
					if n <= vps {
						runs++
					}
				}
				pairs := float64(runs * sbPairs)
				b.ReportMetric(float64(e["hypercall"]-e1["hypercall"])/pairs, "hypercalls/pair"+suffix)
				b.Logf("smp%d: per round trip at most %.2f HLT and %.2f MSR-write exits; per mprotect pair %.2f hypercalls",
					vps, float64(e["hlt"]-e1["hlt"])/sbRoundTrips, float64(e["msr-write"]-e1["msr-write"])/sbRoundTrips,
					float64(e["hypercall"]-e1["hypercall"])/pairs)
			}
			one := figure(vps, "spin1-ips")
			for _, n := range sbCounts {
				if n <= vps {
					ips := figure(vps, fmt.Sprintf("spin%d-ips", n))
					b.ReportMetric(ips/1e6, fmt.Sprintf("spin%d-Mips", n)+suffix)
					if n > 1 {
						b.ReportMetric(ips/one, fmt.Sprintf("spin%d/spin1", n)+suffix)
					}
				}
			}
			b.ReportMetric(float64(boots[vps].exits[""]), "exits"+suffix)
		}
		// The exits of the partitions with more VPs, by kind, against
		// the single VP's: what the extra VPs and their workloads cost.
		var kinds []string
		for k := range boots[4].exits {
			if k != "" {
				kinds = append(kinds, k)
			}
		}
		sort.Strings(kinds)
		for _, k := range kinds {
			b.Logf("exits %-16s 1 VP %7d  2 VPs %7d  4 VPs %7d", k, boots[1].exits[k], boots[2].exits[k], boots[4].exits[k])
		}
	}
}

// sbWorkloads is the guestsmp runs both SMP benchmarks make in a partition
// of vps VPs: pingpong between CPUs 0 and 1 (2 VPs or more), then
// shootdown N and spin T for each N and T of sbCounts up to vps.
func sbWorkloads(vps int) []string {
	var run []string
	if vps >= 2 {
		run = append(run, fmt.Sprintf("guestsmp -pingpong -from 0 -to 1 -n %d", sbRoundTrips))
	}
	for _, n := range sbCounts {
		if n <= vps {
			run = append(run, fmt.Sprintf("guestsmp -shootdown -cpus %d -n %d", n, sbPairs))
		}
	}
	for _, n := range sbCounts {
		if n <= vps {
			run = append(run, fmt.Sprintf("guestsmp -spin -threads %d -ms %d", n, sbSpinMS))
		}
	}
	return run
}

// sbFigures is partition name's guestsmp figures: each smp.<key> of its
// report, the key without the prefix, logged.
func sbFigures(b *testing.B, name string, rep map[string]string) map[string]float64 {
	b.Helper()
	figures := map[string]float64{}
	for k, v := range rep {
		if what, ok := strings.CutPrefix(k, "smp."); ok {
			f, err := strconv.ParseFloat(strings.Fields(v)[0], 64)
			if err != nil {
				b.Fatalf("%s: guest: %s %q", name, k, v)
			}
			figures[what] = f
			b.Logf("%s: guest: %s %s", name, k, v)
		}
	}
	return figures
}
