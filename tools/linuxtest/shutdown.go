package linuxtest

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	rootconsole "gohv/root/console"
	"gohv/root/ic"
	"gohv/tools/debian/initramfs"
)

// shutdownModules are the modules the integration-services guest loads:
// Linux's VMBus driver and hv_utils, which serves the shutdown, heartbeat
// and time-sync ICs (Guest.Modules adds their dependencies).
var shutdownModules = []string{"hv_vmbus", "hv_utils"}

// shutdownPartition is the partition the shutdown test boots.
const shutdownPartition = "linux0"

// shutdownInit is the integration-services guest's /init, busybox sh as
// process 1. It loads the modules initramfs.ModulesList names, waits up to
// 20 s of guest time for hv_utils to bind the shutdown device (the VMBus
// device of the shutdown IC's class), prints
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
var shutdownInit = `#!/bin/sh
# gohv integration-services test guest /init (tools/linuxtest shutdown.go).
` + initramfs.StopTraps + initramfs.Prologue + `bound() {
	for d in /sys/bus/vmbus/devices/*; do
		case $(cat "$d/class_id" 2>/dev/null) in
		*` + ic.ShutdownOffer.Class.String() + `*) [ -e "$d/driver" ] && return 0 ;;
		esac
	done
	return 1
}
waitfor shutdown-device bound
echo "guest: ready boot-id $(cat /proc/sys/kernel/random/boot_id)"
while :; do
	sleep 1
done
`

// Shutdown is the shutdown-from-root test, the same on both vendors
// (TestLinuxShutdownFromRoot in tools/imagetest on AMD-V,
// TestLinuxShutdownFromRootVTx in tools/bochstest on VT-x): it proves the
// console's Ctrl-] r and Ctrl-] s with Linux's own hv_utils. One
// partition, linux0 (256 MiB, on_reboot = "restart"), boots a guest
// (shutdownInit) that loads hv_vmbus and hv_utils. Once gohv has
// negotiated the shutdown IC with it and the guest is ready, Ctrl-] r asks
// it to restart: the guest accepts (gohv logs it), runs /sbin/reboot,
// resets, and gohv ends the partition with a reboot request and starts it
// again; the new boot (another boot ID) negotiates again and gets ready.
// Ctrl-] s then asks it to shut down: the guest accepts, runs
// /sbin/poweroff, powers off through ACPI S5, and the run ends with the
// partition stopped and a PASS. Linux's reset goes through the real-mode
// reset vector (devices.ResetVectorCode), so the restart proves that too.
//
// Boot Partitions with Files and with the console and input Type gives,
// then, once Type's done has returned, Check the log.
type Shutdown struct {
	// Partitions is the configuration: linux0.
	Partitions []Partition
	// Files are the boot modules besides the configuration: the kernel
	// and the initramfs.
	Files []Module

	loaded  []string // the modules the guest insmods, as the kernel names them
	bootIDs []string // the boot IDs the ready lines gave, in order (drive)
}

// Shutdown writes the shutdown test's initramfs into dir (one the test
// owns) and returns the partitions and boot modules to boot.
func (g *Guest) Shutdown(t testing.TB, dir string) *Shutdown {
	t.Helper()
	s := &Shutdown{}
	spec := initramfs.Spec{
		Busybox: g.Busybox,
		Init:    shutdownInit,
		Files:   initramfs.StopperFiles(),
	}
	s.loaded = g.AddModules(t, &spec, shutdownModules...)
	initrd := filepath.Join(dir, "initrd.cpio")
	if err := spec.WriteFile(initrd); err != nil {
		t.Fatal(err)
	}
	// The partition has a disk whose driver (hv_storvsc) the guest never
	// loads: its offer stays pending through both boots, which must harm
	// nothing (Check allows no gohv warning).
	disk := filepath.Join(dir, "unused.img")
	if err := os.WriteFile(disk, make([]byte, 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	s.Files = []Module{{Name: "vmlinuz", Path: g.Kernel}, {Name: "initrd", Path: initrd}, {Name: "unused.img", Path: disk}}
	s.Partitions = []Partition{{Name: shutdownPartition, MemoryMiB: 256, Kernel: "vmlinuz", Initrd: "initrd",
		Cmdline: Cmdline, OnReboot: "restart", Disks: []Disk{{Module: "unused.img"}}}}
	return s
}

// Type starts the test's typist (drive) for a boot. It returns the
// console to give the boot's serial output to, the read end of a pipe to
// give it as the console's input, and done, to call once the boot is
// over: done closes both and returns what went wrong with the typing,
// nil when it got to the verdict. Should the test end sooner, its
// cleanup ends the typist.
func (s *Shutdown) Type(t testing.TB) (con *Console, in *os.File, done func() error) {
	t.Helper()
	con = NewConsole()
	in, typist, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	driven := make(chan error, 1)
	go func() {
		defer typist.Close()
		driven <- s.drive(typist, con)
	}()
	end := func() {
		con.Close()
		in.Close() // a key still being typed fails
	}
	t.Cleanup(end)
	return con, in, func() error {
		end()
		return <-driven
	}
}

var (
	shutdownReady      = regexp.MustCompile(`^` + shutdownPartition + `: guest: ready boot-id (\S+)$`)
	shutdownNegotiated = regexp.MustCompile(`^gohv: ic: versions negotiated partition=` + shutdownPartition + ` service=shutdown `)
)

// drive is the test's typist: it reads con (the console output, fed as
// it arrives) and types into in, the console's input. It waits for the
// first boot to negotiate the shutdown IC and get ready, types Ctrl-] r,
// waits for gohv's restart of the partition and the second boot's
// negotiation and ready line, types Ctrl-] s and waits for the verdict.
// It returns when the verdict arrived (nil), or the console ended or a
// write failed first (what it waited for or typed). Check runs only once
// it has returned (Type's done).
func (s *Shutdown) drive(in io.Writer, con *Console) error {
	from := 0
	// wait waits for a line matching re from from on; it moves from past
	// it.
	wait := func(what string, re *regexp.Regexp) (string, error) {
		var line string
		next, ok := con.WaitLine(from, func(l string) bool {
			if re.MatchString(l) {
				line = l
				return true
			}
			return false
		})
		if !ok {
			return "", errors.New("the console ended before " + what)
		}
		from = next
		return line, nil
	}
	// boot waits for a boot's negotiation and ready line, in either
	// order, from from on.
	boot := func(n int) error {
		start := from
		if _, err := wait(fmt.Sprintf("boot %d negotiated the shutdown IC", n), shutdownNegotiated); err != nil {
			return err
		}
		neg := from
		from = start
		l, err := wait(fmt.Sprintf("boot %d's ready line", n), shutdownReady)
		if err != nil {
			return err
		}
		s.bootIDs = append(s.bootIDs, shutdownReady.FindStringSubmatch(l)[1])
		from = max(from, neg)
		return nil
	}
	typ := func(k string) error {
		if _, err := in.Write([]byte(k)); err != nil {
			return fmt.Errorf("typing %q: %v", k, err)
		}
		return nil
	}
	line := func(what, re string) error {
		_, err := wait(what, regexp.MustCompile(re))
		return err
	}
	esc := string(rune(rootconsole.Escape))
	for _, step := range []func() error{
		func() error { return boot(1) },
		func() error { return typ(esc + "r") },
		func() error {
			return line("the restart", `^gohv: partition restarting partition=`+shutdownPartition+`$`)
		},
		func() error { return boot(2) },
		func() error { return typ(esc + "s") },
		func() error { return line("the verdict", `^gohv: verdict `) },
	} {
		if err := step(); err != nil {
			return err
		}
	}
	return nil
}

// shutdownSteps are what must happen, in this order of steps (a step's
// lines in any order, all after the step before): each boot negotiated
// the shutdown IC and got ready; each request was asked, accepted by the
// guest (gohv's log) and carried out by the guest's /sbin/reboot or
// /sbin/poweroff through its init; then the partition's end.
var shutdownSteps = func() [][]string {
	const p = shutdownPartition
	negotiated := `^gohv: ic: versions negotiated partition=` + p + ` service=shutdown framework=3\.0 message=3\.2$`
	return [][]string{
		{negotiated, `^` + p + `: guest: ready boot-id `},
		{`^gohv: asking ` + p + ` to restart$`},
		{`^gohv: ic: guest accepted a restart partition=` + p + ` service=shutdown$`,
			`^` + p + `: \[[ 0-9.]+\] hv_utils: Restart request received - graceful restart initiated$`,
			`^` + p + `: guest: ran /sbin/reboot$`},
		{`^` + p + `: guest: init-signal reboot$`},
		{`^gohv: partition ended partition=` + p + ` state=stopped reason="reboot requested: `},
		{`^gohv: partition restarting partition=` + p + `$`},
		{negotiated, `^` + p + `: guest: ready boot-id `},
		{`^gohv: asking ` + p + ` to shut down$`},
		{`^gohv: ic: guest accepted a shutdown partition=` + p + ` service=shutdown$`,
			`^` + p + `: \[[ 0-9.]+\] hv_utils: Shutdown request received - graceful shutdown initiated$`,
			`^` + p + `: guest: ran /sbin/poweroff$`},
		{`^` + p + `: guest: init-signal poweroff$`},
		{`^gohv: partition ended partition=` + p + ` state=stopped reason="` + regexp.QuoteMeta(PoweredOff) + `"`},
		{`^gohv: verdict PASS$`},
	}
}()

// Check judges the run's log (the caller judges the emulator's exit and
// the typist's error): the two boots had different boot IDs; the steps of
// shutdownSteps happened in order; the guest did not panic, loaded every
// module and saw hv_utils bind the shutdown device; nothing went wrong on
// the way (the kernel ran /sbin/reboot and /sbin/poweroff — it would force
// the reboot or power-off itself and say "Failed to start orderly ..." if
// it could not — and gohv warned of nothing but a heartbeat the guest did
// not answer while it shut down, which is no fault); and linux0 ended
// powered off. It logs the boot IDs and each step's lines.
func (s *Shutdown) Check(t testing.TB, log []byte) {
	t.Helper()
	t.Logf("boot IDs %q", s.bootIDs)
	if len(s.bootIDs) == 2 && s.bootIDs[0] == s.bootIDs[1] {
		t.Errorf("the restarted guest has the first boot's ID %s: not a new boot", s.bootIDs[0])
	}
	lines := strings.Split(strings.ReplaceAll(string(log), "\r", ""), "\n")
	from := 0
steps:
	for _, step := range shutdownSteps {
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
	b := initramfs.ParseConsole(Lines(log, shutdownPartition))
	if b.Panic != "" {
		t.Errorf("%s: kernel panic: %s", shutdownPartition, b.Panic)
	}
	for _, m := range s.loaded {
		if got := b.Report["insmod."+m]; got != "ok" {
			t.Errorf("%s: guest: insmod.%s %q, want ok", shutdownPartition, m, got)
		}
	}
	if _, ok := b.Report["shutdown-device-timeout"]; ok {
		t.Errorf("%s: hv_utils did not bind the shutdown device in 20 s", shutdownPartition)
	}
	for _, l := range lines {
		if strings.Contains(l, "Failed to start orderly") || strings.HasPrefix(l, "gohv: error: ") ||
			strings.HasPrefix(l, "gohv: warning: ") && !strings.Contains(l, "has not answered a heartbeat") && !hostDMAWarning.MatchString(l) {
			t.Errorf("unexpected line: %q", l)
		}
	}
	if e, ok := EndOf(log, shutdownPartition); !ok || e.State != "stopped" || e.Reason != PoweredOff {
		t.Errorf("%s did not power off: %s", shutdownPartition, e.Line)
	}
}

// hostDMAWarning is the boot's warning that no IOMMU confines DMA (none
// found, or none that could be enabled): the machine's, not the
// partition's.
var hostDMAWarning = regexp.MustCompile(`^gohv: warning: (no IOMMU|IOMMU not enabled) .*DMA is not confined`)
