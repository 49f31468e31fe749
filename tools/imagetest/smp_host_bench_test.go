package imagetest

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"gohv/tools/debian/initramfs"
	"gohv/tools/linuxtest"
	"gohv/tools/qemu"
)

// shbHostCPUs is the host BenchmarkLinuxSMPHost boots: QEMU -smp 4, the
// issue's "4-CPU host".
const shbHostCPUs = 4

// BenchmarkLinuxSMPHost measures a Linux partition of 1, 2 and 4 VPs on a
// host of four CPUs (QEMU -cpu EPYC -smp 4, multi-threaded TCG, no
// -icount), one partition a boot, with BenchmarkLinuxSMP's workloads
// (tools/guestsmp): the round trip of a token between threads on the
// guest's CPUs 0 and 1 (pingpong: each hop wakes a halted VP, here on
// another host CPU: a kick IPI), 2,000 mprotect pairs of a page that
// threads on CPUs 1..N-1 spin reading (shootdown N: each pair flushes the
// other VPs' TLBs by hypercall, which waits until each target on another
// host CPU has left guest mode), and T threads on CPUs 0..T-1 iterating
// xorshift64 for sbSpinMS ms (spin T), whose ratio to one thread's in the
// same partition is the scaling. The guest's clock is the host's wall
// time here, so the figures are bounded by the cores the machine running
// QEMU gives its vCPU threads (on CI's two, at most 2x whatever gohv
// does), and by gohv's placement: the boot CPU runs no VP while others
// are online (hv/placement.go), so the four VPs share three host CPUs
// (moving when one is free, hv/migrate.go).
func BenchmarkLinuxSMPHost(b *testing.B) {
	img := needImage(b)
	g := linuxtest.FetchOrSkip(b, *guestCache, scratch, "bench")
	dir := b.TempDir()
	guestsmp := buildGuestTool(b, dir, "guestsmp")
	initrd := func(vps int) string {
		run := sbWorkloads(vps)
		return guestsmpInitrd(b, g, guestsmp, filepath.Join(dir, fmt.Sprintf("host-smp%d.cpio", vps)), strings.Join(run, "\n"))
	}
	// run boots a partition of vps VPs and returns its smp.<key> figures.
	run := func(vps int) map[string]float64 {
		name := fmt.Sprintf("smp%d", vps)
		ps := []linuxtest.Partition{{Name: name, MemoryMiB: sbMemoryMiB, VPs: vps, Kernel: "vmlinuz", Initrd: "initrd",
			Cmdline: linuxtest.Cmdline, OnReboot: "stop"}}
		mods := linuxtest.ConfigModules(b, b.TempDir(), linuxtest.Config(ps...),
			linuxtest.Module{Name: "vmlinuz", Path: g.Kernel}, linuxtest.Module{Name: "initrd", Path: initrd(vps)})
		hostQuiet.Lock() // four emulated CPUs want the host's cores
		r := boot(b, qemu.Config{Kernel: img, Modules: qemuModules(mods), MemMiB: 1024,
			Extra: []string{"-smp", strconv.Itoa(shbHostCPUs)}, Timeout: 5 * time.Minute})
		hostQuiet.Unlock()
		e, ok := linuxtest.EndOf(r.Log, name)
		if !r.Passed() || !ok || e.Reason != linuxtest.PoweredOff {
			b.Fatalf("%s: %s; %q\n%s", name, r.Describe(), e.Line, r.Log)
		}
		if want := fmt.Sprintf("gohv: metal: %d cpus online", shbHostCPUs); !strings.Contains(string(r.Log), want) {
			b.Fatalf("%s: the boot report does not say %q\n%s", name, want, r.Log)
		}
		rep := initramfs.ParseConsole(linuxtest.Lines(r.Log, name)).Report
		if v, ok := rep["smp.error"]; ok {
			b.Fatalf("%s: guestsmp: %s\n%s", name, v, r.Log)
		}
		if w := fmt.Sprintf("0-%d", vps-1); vps > 1 && rep["cpus-online"] != w {
			b.Fatalf("%s: cpus-online %q, want %q\n%s", name, rep["cpus-online"], w, r.Log)
		}
		figures := sbFigures(b, name, rep)
		b.Logf("%s: partition ran %s on %s; exits %s", name, e.Ran, hostCPUsOf(r.Log, name), e.Exits)
		return figures
	}
	for b.Loop() {
		for _, vps := range sbCounts {
			f := run(vps)
			// figure is the boot's smp.<key>, which its init must have run.
			figure := func(key string) float64 {
				v, ok := f[key]
				if !ok {
					b.Fatalf("smp%d: guestsmp reported no smp.%s", vps, key)
				}
				return v
			}
			suffix := fmt.Sprintf("-%dvp", vps)
			if vps >= 2 {
				b.ReportMetric(figure("pingpong-median-us"), "pingpong-rtt-us"+suffix)
				b.ReportMetric(figure("pingpong-p90-us"), "pingpong-rtt-p90-us"+suffix)
			}
			for _, n := range sbCounts {
				if n > vps {
					continue
				}
				b.ReportMetric(figure(fmt.Sprintf("shootdown%d-median-us", n)), fmt.Sprintf("shootdown%d-us/pair", n)+suffix)
				b.ReportMetric(figure(fmt.Sprintf("spin%d-ips", n))/1e6, fmt.Sprintf("spin%d-Mips", n)+suffix)
				if n > 1 {
					b.ReportMetric(figure(fmt.Sprintf("spin%d-ips", n))/figure("spin1-ips"), fmt.Sprintf("spin%d/spin1", n)+suffix)
				}
			}
		}
	}
}

// hostCPUsOf is the host CPUs partition name's VPs ran on, as its
// "partition ended" line gives them ("host-cpus=a,b"; absent on a host of
// one CPU).
func hostCPUsOf(log []byte, name string) string {
	for _, l := range strings.Split(string(log), "\n") {
		if strings.Contains(l, "partition ended partition="+name+" ") {
			if _, cpus, ok := strings.Cut(l, "host-cpus="); ok {
				return "host CPUs " + strings.Fields(cpus)[0]
			}
		}
	}
	return "the host's one CPU"
}
