package initramfs

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

// The end of a bare boot of linux-image-6.1.0-57-amd64 under QEMU 7.2
// (-cpu EPYC -icount shift=0,sleep=off) with DefaultInit, CRLF as the
// serial port delivers it.
const bareLog = "[    1.686844] clocksource: Switched to clocksource tsc\r\n" +
	"[    1.686856] Run /init as init process\r\n" +
	"guest: uname-r 6.1.0-57-amd64\r\n" +
	"guest: hypervisor none\r\n" +
	"guest: hyperv no\r\n" +
	"guest: clocksource tsc\r\n" +
	"guest: memtotal-kib 210752\r\n" +
	"guest: cpus 1\r\n" +
	"guest: poweroff\r\n" +
	"[    1.709085] ACPI: PM: Preparing to enter system sleep state S5\r\n" +
	"[    1.709109] reboot: Power down\r\n"

func TestParseConsoleBareBoot(t *testing.T) {
	b := ParseConsole([]byte(bareLog))
	if !b.HasRunInit || b.RunInit != 1686856*time.Microsecond || b.Init != "/init" {
		t.Errorf("Run /init: %v %v %q", b.HasRunInit, b.RunInit, b.Init)
	}
	want := map[string]string{"uname-r": "6.1.0-57-amd64", "hypervisor": "none", "hyperv": "no", "clocksource": "tsc",
		"memtotal-kib": "210752", "cpus": "1", "poweroff": ""}
	if !reflect.DeepEqual(b.Report, want) {
		t.Errorf("report %q", b.Report)
	}
	if strings.Join(b.Keys, " ") != "uname-r hypervisor hyperv clocksource memtotal-kib cpus poweroff" {
		t.Errorf("keys %q", b.Keys)
	}
	if !b.PoweredOff() || b.Panic != "" {
		t.Errorf("powered off %v, panic %q", b.PoweredOff(), b.Panic)
	}
}

// Under gohv each partition line carries the partition's name.
func TestParseConsoleUnderGohv(t *testing.T) {
	log := "gohv: partition started partition=linux0\n" +
		"linux0: [    2.004000] Run /init as init process\n" +
		"linux0: guest: hypervisor Microsoft Hyper-V\n" +
		"linux0: guest: hyperv yes\n" +
		"linux0: guest: clocksource hyperv_clocksource_tsc_page\n" +
		"gohv: guest: not a report, the root's line\n"
	b := ParseConsole([]byte(log))
	if b.RunInit != 2004*time.Millisecond || b.Report["hypervisor"] != "Microsoft Hyper-V" ||
		b.Report["clocksource"] != "hyperv_clocksource_tsc_page" || b.PoweredOff() {
		t.Errorf("%+v", b)
	}
}

func TestParseConsoleFindsAPanicAndNoInit(t *testing.T) {
	b := ParseConsole([]byte("[    1.5] Kernel panic - not syncing: VFS: Unable to mount root fs on unknown-block(0,0)\n"))
	if b.HasRunInit || b.Panic != "VFS: Unable to mount root fs on unknown-block(0,0)" {
		t.Errorf("%+v", b)
	}
	// Only the first "Run" counts: a later one is a fallback init.
	b = ParseConsole([]byte("[ 1.000001] Run /init as init process\n[ 2.5] Run /sbin/init as init process\n"))
	if b.RunInit != time.Second+time.Microsecond || b.Init != "/init" {
		t.Errorf("%v %q", b.RunInit, b.Init)
	}
}

func TestPrintkTime(t *testing.T) {
	for _, tc := range []struct {
		sec, frac string
		want      time.Duration
		ok        bool
	}{
		{"1", "740000", 1740 * time.Millisecond, true},
		{"0", "5", 500 * time.Millisecond, true},
		{"12", "000000001", 12*time.Second + 1, true},
		{"1", "0000000001", 0, false},
		{"99999999999", "0", 0, false},
	} {
		d, ok := printkTime(tc.sec, tc.frac)
		if d != tc.want || ok != tc.ok {
			t.Errorf("printkTime(%s, %s) = %v, %v", tc.sec, tc.frac, d, ok)
		}
	}
}

func TestStopwatchSeesRunInitAcrossWrites(t *testing.T) {
	sw := NewStopwatch()
	if _, ok := sw.RunInit(); ok {
		t.Fatal("seen before any output")
	}
	for _, chunk := range []string{"[    0.1] early\r\n[    1.68", "6856] Run /in", "it as init process\r", "\nguest: cpus 1\n"} {
		sw.Write([]byte(chunk))
	}
	if d, ok := sw.RunInit(); !ok || d < 0 {
		t.Errorf("RunInit() = %v, %v", d, ok)
	}
}

// The console is the guest's to write: whatever it prints, ParseConsole
// and the Stopwatch return without a panic.
func FuzzParseConsole(f *testing.F) {
	f.Add([]byte(bareLog))
	f.Add([]byte("linux0: guest: x\n[ 99999999999.1] Run /init as init process\n"))
	f.Fuzz(func(t *testing.T, log []byte) {
		b := ParseConsole(log)
		if b.HasRunInit && b.RunInit < 0 {
			t.Fatalf("negative Run /init time %v", b.RunInit)
		}
		NewStopwatch().Write(log)
	})
}
