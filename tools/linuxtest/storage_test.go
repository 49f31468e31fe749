package linuxtest

import (
	"bytes"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"gohv/tools/debian/initramfs"
)

// storageInit's dd writes the pattern where Check expects it: block 256 of
// 4096 bytes on LUN 0, at block 0 on LUN 1; its guard against a lost
// ext4 write reads the same block of LUN 0.
func TestStorageInitWritesWhereCheckLooks(t *testing.T) {
	if !strings.Contains(storageInit, " bs="+strconv.Itoa(storagePatSize)+" ") {
		t.Errorf("storageInit's dd does not write blocks of %d bytes", storagePatSize)
	}
	m := regexp.MustCompile(`(?m)^\s*\[ -z "\$rw" \] \|\| trywrite \$rw (\d+)$`).FindStringSubmatch(storageInit)
	if m == nil {
		t.Fatal("storageInit does not trywrite LUN 0")
	}
	if n, _ := strconv.Atoi(m[1]); n*storagePatSize != storageWriteAt {
		t.Errorf("storageInit writes LUN 0 at block %s of %d bytes, not at %d", m[1], storagePatSize, storageWriteAt)
	}
	if !strings.Contains(storageInit, "bs="+strconv.Itoa(storagePatSize)+" skip="+m[1]+" count=1") {
		t.Errorf("storageInit's guard does not read block %s of LUN 0", m[1])
	}
}

// storageInit prints every key Check reads.
func TestStorageInitPrintsWhatCheckReads(t *testing.T) {
	if !strings.Contains(storageInit, "waitfor disks ") {
		t.Error("storageInit does not wait for the disks (waitfor disks: the disks-timeout line)")
	}
	for _, k := range []string{"ext4-mount", "boot", "boot1-known-md5", "reboot", "reboot-returned",
		"boot2-known-md5", "boot2-written-md5", "poweroff", "$d-hctl", "$d-size", "$d-ro", "$d-md5", "$1-write", "$1-md5-after"} {
		if !strings.Contains(storageInit, `echo "guest: `+k+` `) && !strings.Contains(storageInit, `echo "guest: `+k+`"`) {
			t.Errorf("storageInit prints no %q line", k)
		}
	}
	for _, k := range []string{"boot1-write", "boot1-umount", "boot2-umount"} {
		if !strings.Contains(storageInit, "okfail "+k+" ") {
			t.Errorf("storageInit reports no %q", k)
		}
	}
	if !strings.Contains(storageInit, "*:2) fs=") || !strings.Contains(storageInit, "cp /etc/pattern /mnt/written") ||
		!strings.Contains(storageInit, "md5 /mnt/known") {
		t.Error("storageInit does not find LUN 2, write /mnt/written from the pattern or read /mnt/known")
	}
}

// storageLog is the serial log of a storage boot that went right, as gohv
// prints it, with the disks named against their LUNs' order in boot 1
// (sda at LUN 1), as sd may.
func storageLog(s *Storage, edit func(string) string) []byte {
	start := func() []string {
		l := []string{
			"linux0: [    0.912345] Run /init as init process",
			"gohv: vmbus: connected partition=linux0 version=5.3 target_vp=0",
			"gohv: storvsp: protocol negotiated partition=linux0 controller=0 version=6.0",
		}
		for _, m := range s.loaded {
			l = append(l, "linux0: guest: insmod."+m+" ok")
		}
		return append(l, "linux0: [    2.217868] EXT4-fs (sdc): mounted filesystem with ordered data mode. Quota mode: none.",
			"linux0: guest: ext4-mount ok")
	}
	lines := append([]string{"gohv: configuration from the configuration module: 1 partitions"}, start()...)
	lines = append(lines, "linux0: guest: boot 1")
	for _, d := range []struct {
		name, hctl string
		size       int
		ro         string
		md5        string
	}{
		{"sda", "0:0:0:1", storageROSize, "1", md5Hex(s.ro)},
		{"sdb", "0:0:0:0", storageDiskSize, "0", md5Hex(s.disk)},
		{"sdc", "0:0:0:2", storageExt4Size, "0", ""},
	} {
		lines = append(lines,
			"linux0: guest: "+d.name+"-hctl "+d.hctl,
			fmt.Sprintf("linux0: guest: %s-size %d", d.name, d.size),
			"linux0: guest: "+d.name+"-ro "+d.ro)
		if d.md5 != "" {
			lines = append(lines, "linux0: guest: "+d.name+"-md5 "+d.md5)
		}
	}
	lines = append(lines,
		"linux0: guest: sdb-write succeeded",
		"linux0: guest: sdb-md5-after "+md5Hex(s.written),
		"linux0: dd: can't open '/dev/sda': Read-only file system",
		"linux0: guest: sda-write failed",
		"linux0: guest: sda-md5-after "+md5Hex(s.ro),
		"linux0: guest: boot1-known-md5 "+md5Hex(s.known),
		"linux0: guest: boot1-write ok",
		"linux0: [    2.509429] EXT4-fs (sdc): unmounting filesystem.",
		"linux0: guest: boot1-umount ok",
		"linux0: guest: reboot",
		"linux0: [    2.512230] reboot: machine restart",
		`gohv: partition ended partition=linux0 state=stopped reason="reboot requested: reset control register 0xCF9" ran=7.1s exits=io:40400`,
		"gohv: partition restarting partition=linux0")
	lines = append(lines, start()...)
	lines = append(lines,
		"linux0: guest: boot 2",
		"linux0: guest: boot2-known-md5 "+md5Hex(s.known),
		"linux0: guest: boot2-written-md5 "+md5Hex(s.pattern),
		"linux0: guest: boot2-umount ok",
		"linux0: guest: poweroff",
		`gohv: partition ended partition=linux0 state=stopped reason="power-off: ACPI S5" ran=6.8s exits=io:39435`,
		"gohv: verdict PASS")
	log := strings.Join(lines, "\r\n") + "\r\n"
	if edit != nil {
		log = edit(log)
	}
	return []byte(log)
}

// replaceNth replaces the nth (from 1) occurrence of from in s with to,
// and reports whether there was one.
func replaceNth(s, from, to string, n int) (string, bool) {
	at := 0
	for i := 1; ; i++ {
		j := strings.Index(s[at:], from)
		if j < 0 {
			return s, false
		}
		if i == n {
			return s[:at+j] + to + s[at+j+len(from):], true
		}
		at += j + len(from)
	}
}

// Check passes the storage boots that went right and names what went
// wrong in ones that did not.
func TestStorageCheck(t *testing.T) {
	s := newStorage()
	s.loaded = []string{"scsi_mod", "hv_vmbus", "hv_storvsc", "sd_mod", "crc32c_generic", "jbd2", "ext4"}
	judge := func(log []byte) ([]StorageBoot, []string) { return s.judge(log) }
	boots, p := judge(storageLog(s, nil))
	if len(p) != 0 {
		t.Fatalf("a good boot: %q", p)
	}
	if len(boots) != 2 || boots[0].Report["boot"] != "1" || boots[1].Report["boot"] != "2" ||
		!strings.HasPrefix(boots[0].End.Reason, "reboot requested") || boots[1].End.Reason != PoweredOff || !boots[1].HasRunInit {
		t.Fatalf("a good boot read as %+v", boots)
	}
	for _, c := range []struct {
		name      string
		from, to  string
		nth       int // which occurrence of from, counting from 1
		wantAmong string
	}{
		// Boot 1's raw disks, as before the restart joined the test.
		{"no VMBus", "gohv: vmbus: connected", "gohv: vmbus: refused", 1, "boot 1: log has no line matching \"(?m)^gohv: vmbus: connected"},
		{"storage protocol 5.2", "version=6.0", "version=5.2", 1, "boot 1: log has no line matching \"(?m)^gohv: storvsp: protocol negotiated"},
		{"insmod failed", "insmod.hv_storvsc ok", "insmod.hv_storvsc failed", 1, `boot 1: guest: insmod.hv_storvsc "failed"`},
		{"disks timeout", "linux0: guest: boot 1", "linux0: guest: disks-timeout sda sdb\r\nlinux0: guest: boot 1", 1, "did not all appear"},
		{"no LUN 0", "sdb-hctl 0:0:0:0", "sdb-hctl 0:0:0:3", 1, "no disk at LUN 0"},
		{"lost write", "sdb-md5-after " + md5Hex(s.written), "sdb-md5-after " + md5Hex(s.disk), 1, "sdb-md5-after"},
		{"read-only written", "sda-write failed", "sda-write succeeded", 1, "sda-write"},
		{"no Write Protect", "sda-ro 1", "sda-ro 0", 1, "sda-ro"},
		{"short disk", fmt.Sprintf("sda-size %d", storageROSize), "sda-size 512", 1, "sda-size"},
		{"panic", "linux0: guest: reboot\r\n", "linux0: Kernel panic - not syncing: Fatal exception\r\n", 1, "boot 1: kernel panic"},
		// Boot 1's ext4 disk and its end.
		{"no LUN 2", "sdc-hctl 0:0:0:2", "sdc-hctl 0:0:0:3", 1, "boot 1: guest: no disk at LUN 2"},
		{"ext4 disk read-only", "sdc-ro 0", "sdc-ro 1", 1, "sdc-ro"},
		{"ext4 disk short", fmt.Sprintf("sdc-size %d", storageExt4Size), "sdc-size 4096", 1, "sdc-size"},
		{"no crc32c", "insmod.crc32c_generic ok", "insmod.crc32c_generic failed", 1, `boot 1: guest: insmod.crc32c_generic "failed"`},
		{"crc32c driver missing", "linux0: guest: ext4-mount ok", "linux0: [    2.2] EXT4-fs (sdc): Cannot load crc32c driver.\r\nlinux0: guest: ext4-mount failed", 1, "boot 1: kernel: [    2.2] EXT4-fs (sdc): Cannot load crc32c driver."},
		{"mount failed", "guest: ext4-mount ok\r\nlinux0: guest: boot 1", "guest: ext4-mount failed\r\nlinux0: guest: boot none", 1, `boot 1: guest: ext4-mount "failed"`},
		{"known file wrong", "boot1-known-md5 " + md5Hex(s.known), "boot1-known-md5 " + md5Hex(s.pattern), 1, "boot 1: guest: boot1-known-md5"},
		{"write failed", "boot1-write ok", "boot1-write failed", 1, "boot1-write"},
		{"umount failed", "boot1-umount ok", "boot1-umount failed", 1, "boot1-umount"},
		{"I/O error", "linux0: guest: boot1-write ok", "linux0: [    2.4] blk_update_request: I/O error, dev sdc, sector 2048 op 0x1:(WRITE)\r\nlinux0: guest: boot1-write ok", 1, "boot 1: kernel: [    2.4] blk_update_request: I/O error"},
		{"ext4 error", "linux0: guest: boot1-umount ok", "linux0: [    2.5] EXT4-fs error (device sdc): ext4_validate_block_bitmap: bad block bitmap checksum\r\nlinux0: guest: boot1-umount ok", 1, "boot 1: kernel: [    2.5] EXT4-fs error"},
		{"powered off instead", `reason="reboot requested: reset control register 0xCF9"`, `reason="power-off: ACPI S5"`, 1, `want state=stopped reason="reboot requested: "`},
		{"reboot returned", "linux0: guest: reboot\r\n", "linux0: guest: reboot\r\nlinux0: guest: reboot-returned\r\n", 1, "reboot -f returned"},
		// The restart.
		{"not restarted", "gohv: partition restarting partition=linux0\r\n", "", 1, "restarted linux0 0 times"},
		{"restarted twice", "gohv: partition restarting partition=linux0\r\n", "gohv: partition restarting partition=linux0\r\ngohv: partition restarting partition=linux0\r\n", 1, "restarted linux0 2 times"},
		// Boot 2.
		{"boot 2 no VMBus", "gohv: vmbus: connected", "gohv: vmbus: refused", 2, "boot 2: log has no line matching \"(?m)^gohv: vmbus: connected"},
		{"boot 2 no storage", "version=6.0", "version=5.2", 2, "boot 2: log has no line matching \"(?m)^gohv: storvsp: protocol negotiated"},
		{"boot 2 no Run /init", "Run /init as init process", "Run /sbin/init as init process", 2, "boot 2: no \"Run /init as init process\" line"},
		{"boot 2 insmod ext4 failed", "insmod.ext4 ok", "insmod.ext4 failed", 2, `boot 2: guest: insmod.ext4 "failed"`},
		{"boot 2 mount failed", "guest: ext4-mount ok\r\nlinux0: guest: boot 2", "guest: ext4-mount failed\r\nlinux0: guest: boot none", 1, `boot 2: guest: ext4-mount "failed"`},
		{"boot 2 thinks it is boot 1", "linux0: guest: boot 2", "linux0: guest: boot 1", 1, `boot 2: guest: boot "1", want 2`},
		{"written file lost", "linux0: guest: boot 2", "linux0: guest: boot again", 1, "boot 2: guest: boot again: /mnt/written is missing after the restart"},
		{"written file wrong", "boot2-written-md5 " + md5Hex(s.pattern), "boot2-written-md5 " + md5Hex(make([]byte, storagePatSize)), 1, "boot 2: guest: boot2-written-md5"},
		{"written file missing", "linux0: guest: boot2-written-md5 " + md5Hex(s.pattern) + "\r\n", "", 1, "boot 2: guest: no boot2-written-md5 line"},
		{"known file changed", "boot2-known-md5 " + md5Hex(s.known), "boot2-known-md5 " + md5Hex(s.disk), 1, "boot 2: guest: boot2-known-md5"},
		{"boot 2 umount failed", "boot2-umount ok", "boot2-umount failed", 1, "boot2-umount"},
		{"boot 2 journal trouble", "linux0: guest: boot 2", "linux0: [    2.2] JBD2: Invalid checksum recovering block 1090 in log\r\nlinux0: guest: boot 2", 1, "boot 2: kernel: [    2.2] JBD2: Invalid checksum"},
		{"boot 2 panic", "linux0: guest: poweroff\r\n", "linux0: Kernel panic - not syncing: Fatal exception\r\n", 1, "boot 2: kernel panic"},
		{"boot 2 no poweroff", "linux0: guest: poweroff\r\n", "", 1, "boot 2: the init did not get to \"guest: poweroff\""},
		{"boot 2 crashed", "state=stopped reason=\"power-off", "state=crashed reason=\"power-off", 1, "boot 2: linux0:"},
	} {
		t.Run(c.name, func(t *testing.T) {
			log := storageLog(s, func(l string) string {
				out, ok := replaceNth(l, c.from, c.to, c.nth)
				if !ok {
					t.Fatalf("the good log has no occurrence %d of %q", c.nth, c.from)
				}
				return out
			})
			_, p := judge(log)
			if !strings.Contains(strings.Join(p, "\n"), c.wantAmong) {
				t.Errorf("problems %q: want one about %q", p, c.wantAmong)
			}
		})
	}
}

// The two boots are told apart by gohv's restart line, not by anything
// the guest prints: the second boot's report does not leak into the
// first's, though both print the same insmod and mount keys.
func TestSplitBoots(t *testing.T) {
	s := newStorage()
	s.loaded = []string{"ext4"}
	log := storageLog(s, func(l string) string {
		out, _ := replaceNth(l, "insmod.ext4 ok", "insmod.ext4 failed", 1) // boot 1 only
		return out
	})
	parts := splitBoots(log)
	if len(parts) != 2 || bytes.Contains(parts[0], []byte("restarting")) || bytes.Contains(parts[1], []byte("restarting")) {
		t.Fatalf("%d parts: %q", len(parts), parts)
	}
	b1 := initramfs.ParseConsole(Lines(parts[0], storagePartition))
	b2 := initramfs.ParseConsole(Lines(parts[1], storagePartition))
	if b1.Report["insmod.ext4"] != "failed" || b2.Report["insmod.ext4"] != "ok" || b1.Report["boot"] != "1" || b2.Report["boot"] != "2" {
		t.Errorf("boot 1 %v, boot 2 %v", b1.Report, b2.Report)
	}
	// Read as one boot, the log would hide boot 1's failure: a key keeps
	// its last value.
	if all := initramfs.ParseConsole(Lines(log, storagePartition)); all.Report["insmod.ext4"] != "ok" {
		t.Errorf("ParseConsole keeps %q for a repeated key", all.Report["insmod.ext4"])
	}
}
