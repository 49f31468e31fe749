package linuxtest

import (
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"gohv/tools/debian/initramfs"
)

// smpWorkMiB is what each CPU's share of the parallel workload hashes.
const smpWorkMiB = 8

// smpInit is the SMP guest's /init: it reports
//
//	cpus-online   /sys/devices/system/cpu/online ("0-3")
//	nproc         the CPUs the scheduler may use
//
// then runs one md5sum per online CPU at once, each pinned to its CPU
// with taskset, over smpWorkMiB MiB of zeros, and reports
//
//	work-I        "ok MD5" (or "failed") for CPU I's job
//	cpuI-ticks    the user and system clock ticks CPU I spent while the
//	              jobs ran (/proc/stat before and after)
//
// and powers off ("smp done").
var smpInit = `#!/bin/sh
# gohv SMP test guest /init (tools/linuxtest smp.go).
` + initramfs.Prologue + `echo "guest: cpus-online $(cat /sys/devices/system/cpu/online)"
echo "guest: nproc $(nproc)"
n=$(nproc)
ticks() {
	# user + nice + system of every cpuN line of /proc/stat
	while read -r name user nice system rest; do
		case $name in cpu[0-9]*) echo "$name $((user + nice + system))" ;; esac
	done < /proc/stat
}
ticks > /tmp/before
i=0
while [ $i -lt $n ]; do
	taskset -c $i sh -c 'dd if=/dev/zero bs=1M count=` + strconv.Itoa(smpWorkMiB) + ` 2>/dev/null | md5sum' > /tmp/work$i &
	i=$((i + 1))
done
wait
ticks > /tmp/after
i=0
while [ $i -lt $n ]; do
	sum=$(cut -d' ' -f1 /tmp/work$i)
	if [ -n "$sum" ]; then echo "guest: work-$i ok $sum"; else echo "guest: work-$i failed"; fi
	b=$(grep "^cpu$i " /tmp/before | cut -d' ' -f2)
	a=$(grep "^cpu$i " /tmp/after | cut -d' ' -f2)
	echo "guest: cpu$i-ticks $((a - b))"
	i=$((i + 1))
done
echo "guest: smp done"
poweroff -f
`

// SMP is the SMP test, the same on both vendors: partitions of several
// VPs each (smp2 with 2, smp4 with 4, ...) boot Debian's unmodified
// kernel, which starts its application processors through its local
// APIC (INIT and SIPI) as on a PC, and runs a job pinned to each CPU.
type SMP struct {
	Partitions []Partition
	Files      []Module
}

// SMP prepares partitions of the given VP counts, memMiB each.
func (g *Guest) SMP(t testing.TB, memMiB int, vps ...int) *SMP {
	t.Helper()
	s := &SMP{}
	for _, n := range vps {
		s.Partitions = append(s.Partitions, Partition{Name: fmt.Sprintf("smp%d", n), MemoryMiB: memMiB, VPs: n,
			Kernel: "vmlinuz", Initrd: "initrd", Cmdline: Cmdline, OnReboot: "stop"})
	}
	s.Files = []Module{{"vmlinuz", g.Kernel}, {"initrd", g.Initrd(t, smpInit)}}
	return s
}

// Check judges every partition's report: all its VPs online, the kernel
// flushing remote TLBs by hypercall and its spinlocks paravirtualised
// (Hyper-V's GUEST_IDLE), each CPU's job hashed what it should, and each
// CPU did some of the work (at least one tick: the jobs ran on every CPU,
// not all on one), then the partition powered off. It returns each
// partition's ticks per CPU.
func (s *SMP) Check(t testing.TB, log []byte) map[string][]int {
	t.Helper()
	out, problems := s.judge(log)
	for _, p := range problems {
		t.Error(p)
	}
	return out
}

var smpLine = regexp.MustCompile(`(?m)^guest: (\S+) (.*)$`)

func (s *SMP) judge(log []byte) (map[string][]int, []string) {
	sum := md5.Sum(make([]byte, smpWorkMiB<<20))
	want := hex.EncodeToString(sum[:])
	ticks := map[string][]int{}
	var problems []string
	for _, p := range s.Partitions {
		bad := func(format string, a ...any) {
			problems = append(problems, p.Name+": "+fmt.Sprintf(format, a...))
		}
		got := map[string]string{}
		for _, m := range smpLine.FindAllSubmatch(Lines(log, p.Name), -1) {
			got[string(m[1])] = strings.TrimSpace(string(m[2]))
		}
		if w := fmt.Sprintf("0-%d", p.VPs-1); got["cpus-online"] != w {
			bad("cpus-online %q, want %q: the kernel did not bring up every VP", got["cpus-online"], w)
		}
		if w := strconv.Itoa(p.VPs); got["nproc"] != w {
			bad("nproc %q, want %s", got["nproc"], w)
		}
		for i := range p.VPs {
			if w := "ok " + want; got[fmt.Sprintf("work-%d", i)] != w {
				bad("work-%d %q, want %q", i, got[fmt.Sprintf("work-%d", i)], w)
			}
			n, err := strconv.Atoi(got[fmt.Sprintf("cpu%d-ticks", i)])
			if err != nil || n < 1 {
				bad("cpu%d-ticks %q: CPU %d did none of the work", i, got[fmt.Sprintf("cpu%d-ticks", i)], i)
			}
			ticks[p.Name] = append(ticks[p.Name], n)
		}
		// The kernel saw CPUID 0x40000004's remote-flush recommendation
		// and flushes other CPUs' TLBs by hypercall (hyperv_setup_mmu_ops);
		// with the synthetic-IPI recommendation and GUEST_IDLE in
		// 0x40000003.EAX its lock waiters idle on that MSR
		// (hv_init_spinlocks).
		kernel := string(Lines(log, p.Name))
		for _, m := range []string{"Using hypercall for remote TLB flush", "PV spinlocks enabled"} {
			if !strings.Contains(kernel, m) {
				bad("the kernel did not say %q", m)
			}
		}
		if _, ok := got["smp"]; !ok {
			bad("no \"smp done\": the init did not finish")
		}
		if e, ok := EndOf(log, p.Name); !ok || e.Reason != PoweredOff {
			bad("did not power off: %q", e.Line)
		}
	}
	return ticks, problems
}
