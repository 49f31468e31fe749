package linuxtest

import (
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"os/exec"
	"strings"
	"testing"
)

// smpLog is the log a good run of s writes, edited by edit.
func smpLog(s *SMP, edit func(string) string) []byte {
	sum := md5.Sum(make([]byte, smpWorkMiB<<20))
	var b strings.Builder
	for _, p := range s.Partitions {
		fmt.Fprintf(&b, "%s: [    0.010000] Hyper-V: Using hypercall for remote TLB flush\n", p.Name)
		fmt.Fprintf(&b, "%s: [    0.011000] Hyper-V: Using IPI hypercalls\n", p.Name)
		fmt.Fprintf(&b, "%s: [    0.012000] Hyper-V: PV spinlocks enabled\n", p.Name)
		fmt.Fprintf(&b, "%s: guest: cpus-online 0-%d\n%s: guest: nproc %d\n", p.Name, p.VPs-1, p.Name, p.VPs)
		for i := range p.VPs {
			fmt.Fprintf(&b, "%s: guest: work-%d ok %s\n%s: guest: cpu%d-ticks %d\n", p.Name, i, hex.EncodeToString(sum[:]), p.Name, i, 40+i)
		}
		fmt.Fprintf(&b, "%s: guest: smp done\n", p.Name)
		fmt.Fprintf(&b, "gohv: partition ended partition=%s state=stopped reason=\"power-off: ACPI S5\" ran=7s exits=io:1\n", p.Name)
	}
	return []byte(edit(b.String()))
}

func TestSMPCheck(t *testing.T) {
	s := &SMP{Partitions: []Partition{{Name: "smp2", VPs: 2}, {Name: "smp4", VPs: 4}}}
	ticks, problems := s.judge(smpLog(s, func(l string) string { return l }))
	if len(problems) != 0 || len(ticks["smp4"]) != 4 || ticks["smp4"][3] != 43 {
		t.Fatalf("a good log: %v, ticks %v", problems, ticks)
	}
	for _, c := range []struct{ name, from, to, want string }{
		{"an AP missing", "smp4: guest: cpus-online 0-3", "smp4: guest: cpus-online 0-2", "smp4: cpus-online"},
		{"nproc", "smp2: guest: nproc 2", "smp2: guest: nproc 1", "smp2: nproc"},
		{"a job on no CPU", "smp4: guest: cpu2-ticks 42", "smp4: guest: cpu2-ticks 0", "smp4: cpu2-ticks"},
		{"a wrong hash", "smp2: guest: work-1 ok ", "smp2: guest: work-1 ok 00", "smp2: work-1"},
		{"no end", "smp2: guest: smp done", "", "smp2: no \"smp done\""},
		{"no flush hypercall", "smp2: [    0.010000] Hyper-V: Using hypercall for remote TLB flush", "", "smp2: the kernel did not say \"Using hypercall"},
		{"native spinlocks", "Hyper-V: PV spinlocks enabled", "Hyper-V: PV spinlocks disabled", "smp2: the kernel did not say \"PV spinlocks enabled\""},
		{"crashed", "partition=smp4 state=stopped reason=\"power-off: ACPI S5\"", "partition=smp4 state=crashed reason=\"triple fault\"", "smp4: did not power off"},
	} {
		_, problems := s.judge(smpLog(s, func(l string) string { return strings.Replace(l, c.from, c.to, 1) }))
		if len(problems) == 0 || !strings.Contains(strings.Join(problems, "\n"), c.want) {
			t.Errorf("%s: problems %q, want one about %q", c.name, problems, c.want)
		}
	}
}

func TestSMPInitIsShell(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh")
	}
	if out, err := exec.Command(sh, "-n", "-c", smpInit).CombinedOutput(); err != nil {
		t.Fatalf("sh -n: %v\n%s", err, out)
	}
	for _, key := range []string{"cpus-online", "nproc", "work-$i ok", "cpu$i-ticks", "smp done"} {
		if !strings.Contains(smpInit, "guest: "+key) {
			t.Errorf("the init never prints %q", key)
		}
	}
}
