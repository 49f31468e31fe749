package imagetest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	rootconsole "gohv/root/console"
	"gohv/root/ic"
	"gohv/tools/debian/initramfs"
	"gohv/tools/linuxtest"
)

// icModules are the modules the integration-services guest loads:
// Linux's VMBus driver and hv_utils, which serves the shutdown, heartbeat
// and time-sync ICs (Guest.Modules adds their dependencies).
var icModules = []string{"hv_vmbus", "hv_utils"}

// icInit is the integration-services guest's /init, busybox sh as process
// 1. It loads the modules initramfs.ModulesList names, waits up to 20 s of
// guest time for hv_utils to bind the shutdown device (the VMBus device
// of the shutdown IC's class), prints
//
//	guest: ready boot-id <the kernel's random boot ID>
//
// (a new ID each boot: nothing of the guest survives gohv's restart of
// the partition, so the ID tells the boots apart) and idles.
//
// hv_utils answers a shutdown request with orderly_poweroff or
// orderly_reboot, which run /sbin/poweroff or /sbin/reboot
// (initramfs.StopperFiles): they say so on the console and signal process
// 1, which this init traps (initramfs.StopTraps) to power off or reset at
// once: ACPI S5, or the reset that gohv turns into a restart.
var icInit = `#!/bin/sh
# gohv integration-services test guest /init (tools/imagetest ic_test.go).
` + initramfs.StopTraps + initramfs.Prologue + `i=0
while :; do
	for d in /sys/bus/vmbus/devices/*; do
		case $(cat "$d/class_id" 2>/dev/null) in
		*` + ic.ShutdownOffer.Class.String() + `*) [ -e "$d/driver" ] && break 2 ;;
		esac
	done
	i=$((i + 1))
	if [ $i -gt 100 ]; then
		echo "guest: shutdown-device-timeout"
		break
	fi
	sleep 0.2
done
echo "guest: ready boot-id $(cat /proc/sys/kernel/random/boot_id)"
while :; do
	sleep 1
done
`

// TestLinuxShutdownFromRoot proves the console's Ctrl-] r and Ctrl-] s
// with Linux's own hv_utils: gohvctl run -input boots a partition with
// on_reboot = "restart" whose guest loads hv_vmbus and hv_utils. Once
// gohv has negotiated the shutdown IC with it and the guest is ready,
// Ctrl-] r asks it to restart: the guest accepts (gohv logs it), runs
// /sbin/reboot, resets, and gohv ends the partition with a reboot request
// and starts it again; the new boot (another boot ID) negotiates again
// and gets ready. Ctrl-] s then asks it to shut down: the guest accepts,
// runs /sbin/poweroff, powers off through ACPI S5, and the run ends with
// the partition stopped and a PASS. Linux's reset goes through the
// real-mode reset vector (devices.ResetVectorCode), so the restart proves
// that too. Its disk, whose driver the guest never loads, leaves the
// storage offer pending without harm.
func TestLinuxShutdownFromRoot(t *testing.T) {
	img, g := linuxGuest(t)
	t.Parallel()
	dir := t.TempDir()
	mods, err := g.Modules(context.Background(), icModules...)
	if err != nil {
		t.Fatal(err)
	}
	spec := initramfs.Spec{
		Busybox: g.Busybox,
		Init:    icInit,
		Files:   initramfs.StopperFiles(),
	}
	var loaded []string
	for _, m := range mods {
		spec.Files = append(spec.Files, initramfs.File{Name: m.Path, Source: m.File})
		spec.Modules = append(spec.Modules, m.Path)
		loaded = append(loaded, m.Name)
	}
	t.Logf("modules: %s", strings.Join(loaded, " "))
	initrd := filepath.Join(dir, "initrd.cpio")
	if err := spec.WriteFile(initrd); err != nil {
		t.Fatal(err)
	}
	// The partition has a disk whose driver (hv_storvsc) the guest never
	// loads: its offer stays pending through both boots, which must harm
	// nothing (no gohv warning, the same shutdown and restart).
	disk := filepath.Join(dir, "unused.img")
	if err := os.WriteFile(disk, make([]byte, 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	ps := []linuxtest.Partition{{Name: "linux0", MemoryMiB: 256, Kernel: "vmlinuz", Initrd: "initrd",
		Cmdline: linuxtest.Cmdline, OnReboot: "restart", Disks: []linuxtest.Disk{{Module: "unused.img"}}}}
	cfg := linuxtest.Modules(t, dir, ps)[0].Path

	con := newConsole()
	// Should runGohvctl fail the test, the typist below still ends.
	defer con.close()
	in, typist, err := os.Pipe() // an OS pipe, as in TestRunShell
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	var (
		ready      = regexp.MustCompile(`^linux0: guest: ready boot-id (\S+)$`)
		negotiated = regexp.MustCompile(`^gohv: ic: versions negotiated partition=linux0 service=shutdown `)
	)
	failed := make(chan string, 1)
	bootIDs := make(chan string, 2)
	go func() {
		defer typist.Close()
		defer close(failed)
		from := 0
		// wait waits for a line matching re from from on; it moves from
		// past it.
		wait := func(what string, re *regexp.Regexp) (string, bool) {
			var line string
			next, ok := con.waitLine(from, func(l string) bool {
				if re.MatchString(l) {
					line = l
					return true
				}
				return false
			})
			if !ok {
				failed <- "the console ended before " + what
				return "", false
			}
			from = next
			return line, true
		}
		// boot waits for a boot's negotiation and ready line, in either
		// order, from from on.
		boot := func(n int) bool {
			start := from
			if _, ok := wait(fmt.Sprintf("boot %d negotiated the shutdown IC", n), negotiated); !ok {
				return false
			}
			neg := from
			from = start
			l, ok := wait(fmt.Sprintf("boot %d's ready line", n), ready)
			if !ok {
				return false
			}
			bootIDs <- ready.FindStringSubmatch(l)[1]
			from = max(from, neg)
			return true
		}
		typ := func(s string) bool {
			if _, err := typist.Write([]byte(s)); err != nil {
				failed <- fmt.Sprintf("typing %q: %v", s, err)
				return false
			}
			return true
		}
		line := func(what, re string) bool {
			_, ok := wait(what, regexp.MustCompile(re))
			return ok
		}
		esc := string(rune(rootconsole.Escape))
		_ = boot(1) &&
			typ(esc+"r") &&
			line("the restart", `^gohv: partition restarting partition=linux0$`) &&
			boot(2) &&
			typ(esc+"s") &&
			line("the verdict", `^gohv: verdict `)
	}()
	hostQuiet.RLock()
	defer hostQuiet.RUnlock()
	code, log := runGohvctl(t, in, con, "run", "-kernel", img, "-input", "-icount", "-skip-idle", "-timeout", "4m",
		"-config", cfg, "-module", "vmlinuz="+g.Kernel, "-module", "initrd="+initrd, "-module", "unused.img="+disk)
	con.close()
	for msg := range failed {
		t.Error(msg)
	}
	close(bootIDs)
	var ids []string
	for id := range bootIDs {
		ids = append(ids, id)
	}
	t.Logf("boot IDs %q", ids)
	if len(ids) == 2 && ids[0] == ids[1] {
		t.Errorf("the restarted guest has the first boot's ID %s: not a new boot", ids[0])
	}
	if code != 0 {
		t.Errorf("gohvctl run: exit status %d, want 0 (verdict PASS)", code)
	}

	// What happened, in this order of steps (a step's lines in any order,
	// all after the step before): each boot negotiated the shutdown IC and
	// got ready; each request was asked, accepted by the guest (gohv's
	// log) and carried out by the guest's /sbin/reboot or /sbin/poweroff
	// through its init; then the partition's end.
	negotiatedLine := `^gohv: ic: versions negotiated partition=linux0 service=shutdown framework=3\.0 message=3\.2$`
	steps := [][]string{
		{negotiatedLine, `^linux0: guest: ready boot-id `},
		{`^gohv: asking linux0 to restart$`},
		{`^gohv: ic: guest accepted a restart partition=linux0 service=shutdown$`,
			`^linux0: \[[ 0-9.]+\] hv_utils: Restart request received - graceful restart initiated$`,
			`^linux0: guest: ran /sbin/reboot$`},
		{`^linux0: guest: init-signal reboot$`},
		{`^gohv: partition ended partition=linux0 state=stopped reason="reboot requested: `},
		{`^gohv: partition restarting partition=linux0$`},
		{negotiatedLine, `^linux0: guest: ready boot-id `},
		{`^gohv: asking linux0 to shut down$`},
		{`^gohv: ic: guest accepted a shutdown partition=linux0 service=shutdown$`,
			`^linux0: \[[ 0-9.]+\] hv_utils: Shutdown request received - graceful shutdown initiated$`,
			`^linux0: guest: ran /sbin/poweroff$`},
		{`^linux0: guest: init-signal poweroff$`},
		{`^gohv: partition ended partition=linux0 state=stopped reason="` + regexp.QuoteMeta(linuxtest.PoweredOff) + `"`},
		{`^gohv: verdict PASS$`},
	}
	lines := strings.Split(strings.ReplaceAll(log, "\r", ""), "\n")
	from := 0
steps:
	for _, step := range steps {
		next := from
		for _, w := range step {
			re := regexp.MustCompile(w)
			i := from
			for i < len(lines) && !re.MatchString(lines[i]) {
				i++
			}
			if i == len(lines) {
				t.Errorf("the log lacks, after line %d, a line matching %q", from+1, w)
				break steps
			}
			t.Logf("line %d: %s", i+1, lines[i])
			next = max(next, i+1)
		}
		from = next
	}
	b := initramfs.ParseConsole(linuxtest.Lines([]byte(log), "linux0"))
	if b.Panic != "" {
		t.Errorf("linux0: kernel panic: %s", b.Panic)
	}
	for _, m := range loaded {
		if got := b.Report["insmod."+m]; got != "ok" {
			t.Errorf("linux0: guest: insmod.%s %q, want ok", m, got)
		}
	}
	if _, ok := b.Report["shutdown-device-timeout"]; ok {
		t.Errorf("linux0: hv_utils did not bind the shutdown device in 20 s")
	}
	// Nothing went wrong on the way: the kernel ran /sbin/reboot and
	// /sbin/poweroff (it would force the reboot or power-off itself and say
	// "Failed to start orderly ..." if it could not), and gohv warned of
	// nothing — but a heartbeat the guest did not answer while it shut
	// down, which is no fault.
	for _, l := range lines {
		if strings.Contains(l, "Failed to start orderly") || strings.HasPrefix(l, "gohv: error: ") ||
			strings.HasPrefix(l, "gohv: warning: ") && !strings.Contains(l, "has not answered a heartbeat") {
			t.Errorf("unexpected line: %q", l)
		}
	}
	if e, ok := linuxtest.EndOf([]byte(log), "linux0"); !ok || e.State != "stopped" || e.Reason != linuxtest.PoweredOff {
		t.Errorf("linux0 did not power off: %s", e.Line)
	}
}
