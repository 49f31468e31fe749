package linuxtest

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"gohv/tools/debian/initramfs"
)

// storageInit's dd writes the pattern where Check expects it: block 256 of
// 4096 bytes on LUN 0, at block 0 on LUN 1.
func TestStorageInitWritesWhereCheckLooks(t *testing.T) {
	if !strings.Contains(storageInit, " bs="+strconv.Itoa(storagePatSize)+" ") {
		t.Errorf("storageInit's dd does not write blocks of %d bytes", storagePatSize)
	}
	m := regexp.MustCompile(`(?m)^\[ -z "\$rw" \] \|\| trywrite \$rw (\d+)$`).FindStringSubmatch(storageInit)
	if m == nil {
		t.Fatal("storageInit does not trywrite LUN 0")
	}
	if n, _ := strconv.Atoi(m[1]); n*storagePatSize != storageWriteAt {
		t.Errorf("storageInit writes LUN 0 at block %s of %d bytes, not at %d", m[1], storagePatSize, storageWriteAt)
	}
}

// storageLog is the serial log of a storage boot that went right, as gohv
// prints it, with the disks named against their LUNs' order (sda at LUN 1),
// as sd may.
func storageLog(s *Storage, edit func(string) string) []byte {
	lines := []string{
		"gohv: vmbus: connected partition=linux0 version=5.3",
		"gohv: storvsp: protocol negotiated partition=linux0 controller=0 version=6.0",
		"linux0: [    0.912345] Run /init as init process",
	}
	for _, m := range s.loaded {
		lines = append(lines, "linux0: guest: insmod."+m+" ok")
	}
	for _, d := range []struct {
		name, hctl string
		size       int
		ro         string
		md5        string
	}{
		{"sda", "0:0:0:1", storageROSize, "1", md5Hex(s.ro)},
		{"sdb", "0:0:0:0", storageDiskSize, "0", md5Hex(s.disk)},
	} {
		lines = append(lines,
			"linux0: guest: "+d.name+"-hctl "+d.hctl,
			fmt.Sprintf("linux0: guest: %s-size %d", d.name, d.size),
			"linux0: guest: "+d.name+"-ro "+d.ro,
			"linux0: guest: "+d.name+"-md5 "+d.md5)
	}
	lines = append(lines,
		"linux0: guest: sdb-write succeeded",
		"linux0: guest: sdb-md5-after "+md5Hex(s.written),
		"linux0: guest: sda-write failed",
		"linux0: guest: sda-md5-after "+md5Hex(s.ro),
		"linux0: guest: poweroff",
		`gohv: partition ended partition=linux0 state=stopped reason="power-off: ACPI S5" ran=6s exits="io 40000"`,
		"gohv: verdict PASS")
	log := strings.Join(lines, "\r\n") + "\r\n"
	if edit != nil {
		log = edit(log)
	}
	return []byte(log)
}

// Check passes the storage boot that went right and names what went wrong
// in one that did not.
func TestStorageCheck(t *testing.T) {
	s := newStorage()
	s.loaded = []string{"scsi_mod", "hv_vmbus", "hv_storvsc", "sd_mod"}
	problems := func(log []byte) []string {
		b := initramfs.ParseConsole(Lines(log, storagePartition))
		e, _ := EndOf(log, storagePartition)
		return s.problems(log, b, e)
	}
	if p := problems(storageLog(s, nil)); len(p) != 0 {
		t.Fatalf("a good boot: %q", p)
	}
	for _, c := range []struct {
		name      string
		from, to  string
		wantAmong string
	}{
		{"no VMBus", "gohv: vmbus: connected", "gohv: vmbus: refused", "vmbus: connected"},
		{"storage protocol 5.2", "version=6.0", "version=5.2", "storvsp: protocol negotiated"},
		{"insmod failed", "insmod.hv_storvsc ok", "insmod.hv_storvsc failed", `insmod.hv_storvsc "failed"`},
		{"disks timeout", "linux0: guest: poweroff", "linux0: guest: disks-timeout sda\r\nlinux0: guest: poweroff", "did not all appear"},
		{"no LUN 0", "sdb-hctl 0:0:0:0", "sdb-hctl 0:0:0:2", "no disk at LUN 0"},
		{"lost write", "sdb-md5-after " + md5Hex(s.written), "sdb-md5-after " + md5Hex(s.disk), "sdb-md5-after"},
		{"read-only written", "sda-write failed", "sda-write succeeded", "sda-write"},
		{"no Write Protect", "sda-ro 1", "sda-ro 0", "sda-ro"},
		{"short disk", fmt.Sprintf("sda-size %d", storageROSize), "sda-size 512", "sda-size"},
		{"panic", "linux0: guest: poweroff", "linux0: Kernel panic - not syncing: Fatal exception", "kernel panic"},
		{"crashed", "state=stopped", "state=crashed", "want state=stopped"},
	} {
		t.Run(c.name, func(t *testing.T) {
			log := storageLog(s, func(l string) string {
				if !strings.Contains(l, c.from) {
					t.Fatalf("the good log has no %q", c.from)
				}
				return strings.Replace(l, c.from, c.to, 1)
			})
			p := problems(log)
			if !strings.Contains(strings.Join(p, "\n"), c.wantAmong) {
				t.Errorf("problems %q: want one about %q", p, c.wantAmong)
			}
		})
	}
}
