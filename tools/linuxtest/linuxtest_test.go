package linuxtest

import (
	"reflect"
	"strings"
	"testing"

	"gohv/root/config"
)

// The configuration Config writes is one root/config accepts, with every
// key it was given.
func TestConfigParses(t *testing.T) {
	text := Config(
		Partition{Name: "linux0", MemoryMiB: 256, Kernel: "vmlinuz", Initrd: "initrd", Cmdline: Cmdline, OnReboot: "stop", PCI: []string{"00:05.0", "00:06.0"}},
		Partition{Name: "mb1", MemoryMiB: 4, Kernel: "mb", Format: "multiboot", Disks: []Disk{
			{Module: "disk.img", LUN: 0},
			{Module: "ro.img", Controller: 1, LUN: 3, ReadOnly: true},
			{Module: "ro.img", LUN: 1, ReadOnly: true},
		}},
	)
	c, err := config.Parse("t.toml", []byte(text))
	if err != nil {
		t.Fatalf("%v\n%s", err, text)
	}
	if len(c.Partitions) != 2 {
		t.Fatalf("%d partitions", len(c.Partitions))
	}
	p := c.Partitions[0]
	if p.Name != "linux0" || p.MemoryMiB != 256 || p.Kernel != "vmlinuz" || p.Initrd != "initrd" ||
		p.Cmdline != Cmdline || p.OnReboot != "stop" || strings.Join(p.PCI, ",") != "00:05.0,00:06.0" {
		t.Errorf("partition 0: %+v", p)
	}
	if q := c.Partitions[1]; q.KernelFormat != "multiboot" || q.Initrd != "" || q.OnReboot != "restart" {
		t.Errorf("partition 1: %+v", q)
	}
	if len(p.Disks) != 0 {
		t.Errorf("partition 0: disks %+v, want none", p.Disks)
	}
	want := []config.Disk{
		{Module: "disk.img", LUN: 0},
		{Module: "ro.img", Controller: 1, LUN: 3, ReadOnly: true},
		{Module: "ro.img", LUN: 1, ReadOnly: true},
	}
	if got := c.Partitions[1].Disks; !reflect.DeepEqual(got, want) {
		t.Errorf("partition 1: disks %+v, want %+v", got, want)
	}
}

const log = "gohv: configuration from the configuration module: 2 partitions\r\n" +
	"linux0: [    1.38] Run /init as init process\r\n" +
	"linux1: guest: uname-r other\n" +
	"linux0: guest: uname-r 6.1.0-57-amd64\n" +
	"linux10: guest: uname-r not linux1\n" +
	`gohv: partition ended partition=linux1 state=crashed vp=0 reason="vp 0: the guest reported a crash: P0 0x0 P1 0x0: [ 2.7] Kernel panic - not syncing: sysrq triggered crash\n" ran=11.999046s exits=io:42996,msr-write:1284` + "\n" +
	`gohv: partition ended partition=linux0 state=stopped reason="power-off: ACPI S5" ran=5.997106s exits=io:39426,cpuid:999,hlt:1` + "\r\n"

// Lines keeps a partition's own lines, prefix taken off, and no other's.
func TestLines(t *testing.T) {
	if got := string(Lines([]byte(log), "linux0")); got != "[    1.38] Run /init as init process\nguest: uname-r 6.1.0-57-amd64\n" {
		t.Errorf("linux0: %q", got)
	}
	if got := string(Lines([]byte(log), "linux1")); got != "guest: uname-r other\n" {
		t.Errorf("linux1: %q", got)
	}
}

// EndOf reads gohv's partition-ended events, quoted reasons included.
func TestEndOf(t *testing.T) {
	e, ok := EndOf([]byte(log), "linux0")
	if !ok || e.State != "stopped" || e.Reason != PoweredOff || e.Ran != "5.997106s" || e.Exits != "io:39426,cpuid:999,hlt:1" {
		t.Errorf("linux0: %+v %v", e, ok)
	}
	e, ok = EndOf([]byte(log), "linux1")
	if !ok || e.State != "crashed" || e.Reason != "vp 0: the guest reported a crash: P0 0x0 P1 0x0: [ 2.7] Kernel panic - not syncing: sysrq triggered crash\n" ||
		e.Ran != "11.999046s" {
		t.Errorf("linux1: %+v %v", e, ok)
	}
	if _, ok := EndOf([]byte(log), "linux2"); ok {
		t.Error("an end for a partition that never ran")
	}
}

// ExitCounts reads the exits by kind and their total, and refuses what is
// not kind:count.
func TestExitCounts(t *testing.T) {
	n, err := Ended{Exits: "io:39121,interrupt:4098,hlt:1"}.ExitCounts()
	if err != nil || n["io"] != 39121 || n["interrupt"] != 4098 || n["hlt"] != 1 || n[""] != 43220 || len(n) != 4 {
		t.Fatalf("%v %v", n, err)
	}
	if n, err := (Ended{}).ExitCounts(); err != nil || len(n) != 0 {
		t.Fatalf("no exits: %v %v", n, err)
	}
	for _, bad := range []string{"io", "io:x", ":3", "io:-1", "io:1,,hlt:2"} {
		if _, err := (Ended{Exits: bad}).ExitCounts(); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// ConfigWithSwitches writes the [[switch]] tables first, then each
// partition with its [[partition.nic]] tables after its disks; without
// switches and NICs it is Config. The text only: root/config's parse of
// it is the network image tests' to exercise.
func TestConfigWithSwitches(t *testing.T) {
	sw := []Switch{{Name: "lan0", RootAddress: "10.0.0.1/24"}, {Name: "lan1"}}
	p := Partition{Name: "linux0", MemoryMiB: 256, Kernel: "vmlinuz", Disks: []Disk{{Module: "disk.img"}},
		NICs: []NIC{{Switch: "lan0", MAC: "00:15:5d:00:00:10"}, {Switch: "lan1"}}}
	want := `# written by gohv/tools/linuxtest

[[switch]]
name = "lan0"
root_address = "10.0.0.1/24"

[[switch]]
name = "lan1"

[[partition]]
name = "linux0"
memory_mib = 256
kernel = "vmlinuz"

[[partition.disk]]
module = "disk.img"
controller = 0
lun = 0
read_only = false

[[partition.nic]]
switch = "lan0"
mac = "00:15:5d:00:00:10"

[[partition.nic]]
switch = "lan1"
`
	if got := ConfigWithSwitches(sw, p); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	p.NICs = nil
	if got, want := ConfigWithSwitches(nil, p), Config(p); got != want {
		t.Errorf("without switches and NICs\n%s\nConfig gives\n%s", got, want)
	}
}
