package linuxtest

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"gohv/tools/debian/initramfs"
	"gohv/tools/ext4img"
)

// The storage test's partition, its disks and what its guest writes.
const (
	storagePartition = "linux0"
	storageMemMiB    = 256
	storageDiskSize  = 4 << 20   // disk.img: LUN 0, writable
	storageROSize    = 1 << 20   // ro.img: LUN 1, read-only
	storageExt4Size  = 8 << 20   // ext4.img: LUN 2, writable, an ext4 file system
	storageKnownSize = 256 << 10 // the file ext4.img holds, /mnt/known in the guest
	storageWriteAt   = 1 << 20   // where the guest writes the pattern on LUN 0
	storagePatSize   = 4096      // storageInit's dd: bs=4096 seek=256
)

// storageModules are the modules the storage guest asks for; Guest.Modules
// adds their dependencies (scsi_mod, scsi_transport_fc, t10-pi and its
// CRCs for sd; jbd2, mbcache and crc16 for ext4). crc32c_generic is named
// because no module's depends= names it: ext4 and jbd2 ask the crypto API
// for "crc32c" when they mount a file system with metadata checksums, and
// the kernel's request for the module that provides it finds no modprobe
// in the initramfs, so the mount fails ("Cannot load crc32c driver")
// unless a crc32c driver is already loaded. The generic one, not
// crc32c-intel, so the guest does not depend on the CPU model's SSE4.2.
var storageModules = []string{"hv_vmbus", "hv_storvsc", "sd_mod", "crc32c_generic", "ext4"}

// storageInit is the storage guest's /init; the partition boots it twice
// (on_reboot = "restart"). Each boot loads the modules initramfs.ModulesList
// names (initramfs.Prologue, as DefaultInit does), waits up to 20 s of
// guest time for the three disks, tells them apart by their SCSI LUN (sd
// names disks in the order it probes them, which need not be the LUNs'),
// mounts the ext4 disk (LUN 2) on /mnt ("ext4-mount ok" or "failed") and
// tells the boots apart by what the file system holds: "boot 1" when
// /mnt/written is not there yet, "boot 2" when it is ("boot none" when
// the mount failed; "boot again" when /mnt/written is missing but LUN 0
// already holds the pattern the first boot writes: a restart that lost
// the file, which would otherwise reboot for ever).
//
// Boot 1 reports for each sdX
//
//	sdX-hctl      its SCSI address host:channel:target:lun
//	sdX-size      its size in bytes
//	sdX-ro        whether the kernel made it read-only (the disk's Write
//	              Protect bit)
//	sdX-md5       the MD5 of the whole disk (not for the ext4 disk, which
//	              the mount has changed)
//
// then writes /etc/pattern at offset 1 MiB of LUN 0 with O_DIRECT (so the
// write reaches the disk now, not the page cache), drops the caches and
// reports LUN 0's MD5 again as sdX-md5-after; and tries the same write on
// LUN 1: "sdX-write failed" or "sdX-write succeeded", and sdX-md5-after.
// On the ext4 disk it reports boot1-known-md5 (/mnt/known's MD5), copies
// /etc/pattern to /mnt/written and syncs ("boot1-write ok"), unmounts
// ("boot1-umount ok") and reboots ("guest: reboot", reboot -f).
//
// Boot 2 reports boot2-known-md5 and boot2-written-md5 (/mnt/written's
// MD5), read by a kernel that has not seen them before, unmounts
// ("boot2-umount ok") and powers off.
//
// The write to LUN 1 fails in the kernel, before any SCSI command: the
// VSP's MODE SENSE sets Write Protect, sd makes the disk read-only, and
// opening it for writing gives EROFS (blockdev --setrw would not help: it
// clears the block device's flag, not the disk's). That the VSP refuses a
// WRITE to a read-only disk with DATA PROTECT is root/storvsp's unit
// tests' to show.
const storageInit = `#!/bin/sh
# gohv storage test guest /init (tools/linuxtest storage.go): boots twice.
` + initramfs.Prologue + `mkdir -p /mnt
waitfor disks '[ -b /dev/sda ] && [ -b /dev/sdb ] && [ -b /dev/sdc ]'
rw= ro= fs=
for b in /sys/block/sd*; do
	[ -e "$b" ] || continue
	hctl=$(readlink "$b/device")
	case ${hctl##*/} in
	*:0) rw=${b##*/} ;;
	*:1) ro=${b##*/} ;;
	*:2) fs=${b##*/} ;;
	esac
done
md5() { md5sum < "$1" | cut -d ' ' -f 1; }
boot=none
if [ -n "$fs" ] && mount -t ext4 /dev/$fs /mnt; then
	echo "guest: ext4-mount ok"
	if [ -e /mnt/written ]; then
		boot=2
	elif [ -n "$rw" ] && [ "$(dd if=/dev/$rw bs=4096 skip=256 count=1 2>/dev/null | md5sum)" = "$(md5sum < /etc/pattern)" ]; then
		boot=again
	else
		boot=1
	fi
else
	echo "guest: ext4-mount failed"
fi
echo "guest: boot $boot"
# trywrite DEV SEEK: write /etc/pattern's block at SEEK, then report the
# disk's MD5 read back with the page cache dropped.
trywrite() {
	if dd if=/etc/pattern of=/dev/$1 bs=4096 seek=$2 count=1 oflag=direct conv=notrunc; then
		echo "guest: $1-write succeeded"
	else
		echo "guest: $1-write failed"
	fi
	blockdev --flushbufs /dev/$1
	echo 3 > /proc/sys/vm/drop_caches
	echo "guest: $1-md5-after $(md5 /dev/$1)"
}
# okfail KEY COMMAND...: run it, report "KEY ok" or "KEY failed".
okfail() {
	k=$1
	shift
	if "$@"; then
		echo "guest: $k ok"
	else
		echo "guest: $k failed"
	fi
}
if [ $boot = 1 ]; then
	for b in /sys/block/sd*; do
		[ -e "$b" ] || continue
		d=${b##*/}
		hctl=$(readlink "$b/device")
		echo "guest: $d-hctl ${hctl##*/}"
		echo "guest: $d-size $(blockdev --getsize64 /dev/$d)"
		echo "guest: $d-ro $(blockdev --getro /dev/$d)"
		[ "$d" = "$fs" ] || echo "guest: $d-md5 $(md5 /dev/$d)"
	done
	[ -z "$rw" ] || trywrite $rw 256
	[ -z "$ro" ] || trywrite $ro 0
	echo "guest: boot1-known-md5 $(md5 /mnt/known)"
	okfail boot1-write sh -c 'cp /etc/pattern /mnt/written && sync'
	okfail boot1-umount umount /mnt
	echo "guest: reboot"
	reboot -f
	echo "guest: reboot-returned"
fi
if [ $boot = 2 ]; then
	echo "guest: boot2-known-md5 $(md5 /mnt/known)"
	echo "guest: boot2-written-md5 $(md5 /mnt/written)"
	okfail boot2-umount umount /mnt
fi
echo "guest: poweroff"
poweroff -f
`

// Storage is the storage test, the same on both vendors (TestLinuxStorage
// in tools/imagetest on AMD-V, TestLinuxStorageVTx in tools/bochstest on
// VT-x): it proves the storage path with Linux's own drivers and file
// system. Debian's kernel loads its unmodified hv_vmbus, hv_storvsc,
// sd_mod and ext4 in one partition, linux0 (256 MiB, on_reboot =
// "restart"), given three disks by [[partition.disk]] — disk.img, 4 MiB,
// writable at controller 0 LUN 0; ro.img, 1 MiB, read-only at LUN 1; and
// ext4.img, an 8 MiB ext4 file system the test makes with mke2fs (tools/ext4img),
// writable at LUN 2 — and gohv's VMBus server and storage VSP
// (root/storvsp) serve them. In its first boot the guest (storageInit)
// reads the raw disks whole, writes a block to the writable one, tries
// the read-only one, reads a known file off the ext4 disk, writes a new
// one and reboots; gohv starts the partition again, and in its second
// boot the guest reads both files back.
//
// Boot Partitions with Files, then Check the serial log.
type Storage struct {
	// Partitions is the configuration: linux0 with its three disks.
	Partitions []Partition
	// Files are the boot modules besides the configuration: the kernel,
	// the initramfs and the three disk images.
	Files []Module

	disk, ro []byte   // the raw images
	known    []byte   // ext4.img's /known
	pattern  []byte   // the block the guest writes, /etc/pattern; also its /mnt/written
	written  []byte   // disk.img with the pattern at storageWriteAt
	loaded   []string // the modules the guest insmods, as the kernel names them
}

// newStorage makes the raw disks, the known file and the pattern:
// pseudo-random and deterministic, so a failure repeats.
func newStorage() *Storage {
	s := &Storage{
		disk:    randomBytes(1, storageDiskSize),
		ro:      randomBytes(2, storageROSize),
		pattern: randomBytes(3, storagePatSize),
		known:   randomBytes(4, storageKnownSize),
	}
	s.written = append([]byte(nil), s.disk...)
	copy(s.written[storageWriteAt:], s.pattern)
	return s
}

// Storage writes the storage test's disks and initramfs into dir (one the
// test owns) and returns the partitions and boot modules to boot. It
// needs e2fsprogs' mke2fs on the host, and fails the test, naming the
// package, without it.
func (g *Guest) Storage(t testing.TB, dir string) *Storage {
	t.Helper()
	s := newStorage()
	spec := initramfs.Spec{
		Busybox: g.Busybox,
		Init:    storageInit,
		Applets: append(append([]string(nil), initramfs.DefaultApplets...), "md5sum", "blockdev", "readlink"),
		Files:   []initramfs.File{{Name: "etc/pattern", Data: s.pattern}},
	}
	s.loaded = g.AddModules(t, &spec, storageModules...)

	initrd := filepath.Join(dir, "initrd.cpio")
	if err := spec.WriteFile(initrd); err != nil {
		t.Fatal(err)
	}
	s.Files = []Module{{Name: "vmlinuz", Path: g.Kernel}, {Name: "initrd", Path: initrd}}
	for _, f := range []struct {
		name string
		data []byte
	}{{"disk.img", s.disk}, {"ro.img", s.ro}} {
		p := filepath.Join(dir, f.name)
		if err := os.WriteFile(p, f.data, 0o644); err != nil {
			t.Fatal(err)
		}
		s.Files = append(s.Files, Module{Name: f.name, Path: p})
	}
	fs := filepath.Join(dir, "ext4.img")
	if err := ext4img.Build(context.Background(), fs, storageExt4Size>>20, []ext4img.File{{Name: "known", Data: s.known}}); err != nil {
		t.Fatal(err)
	}
	s.Files = append(s.Files, Module{Name: "ext4.img", Path: fs})
	s.Partitions = []Partition{{Name: storagePartition, MemoryMiB: storageMemMiB, Kernel: "vmlinuz", Initrd: "initrd",
		Cmdline: Cmdline, OnReboot: "restart", Disks: []Disk{
			{Module: "disk.img", Controller: 0, LUN: 0},
			{Module: "ro.img", Controller: 0, LUN: 1, ReadOnly: true},
			{Module: "ext4.img", Controller: 0, LUN: 2},
		}}}
	return s
}

// storageNegotiated are gohv's side of the storage path, in every boot:
// the guest's VMBus connection at protocol 5.3 and the storage VSP's
// negotiation with hv_storvsc on controller 0, at 6.0 (Linux offers 6.2
// first, which the VSP refuses: root/storvsp).
var storageNegotiated = []*regexp.Regexp{
	regexp.MustCompile(`(?m)^gohv: vmbus: connected partition=` + storagePartition + ` version=5\.3\b`),
	regexp.MustCompile(`(?m)^gohv: storvsp: protocol negotiated partition=` + storagePartition + ` controller=0 version=6\.0\b`),
}

// storageRestart is the line root/manager logs when it starts linux0
// again after the guest's reboot: the boundary between the two boots.
var storageRestart = regexp.MustCompile(`(?m)^gohv: partition restarting partition=` + storagePartition + `\r?$`)

// storageRebooted is the reason gohv gives for the first boot's end: the
// guest reset the machine (hv.ErrReboot's text; the device that carried
// the reset follows it).
const storageRebooted = "reboot requested: "

// storageKernelTrouble are kernel lines that mean the disks or the file
// system failed, whatever the init then reported: an I/O error sd or the
// block layer logged, or ext4 and jbd2 finding errors.
var storageKernelTrouble = regexp.MustCompile(`I/O error|EXT4-fs error|EXT4-fs warning|JBD2: .*([Ee]rror|[Ff]ailed|[Cc]orrupt|[Ii]nvalid)|Cannot load crc32c`)

// StorageBoot is one boot of the storage partition: what its guest
// printed and gohv's account of its end.
type StorageBoot struct {
	initramfs.Boot
	End Ended
}

// Check judges a boot's serial log (the caller judges the verdict). gohv
// restarts linux0 exactly once ("partition restarting"), which splits the
// log into its two boots; in each, gohv logs the VMBus and storage
// negotiations, and the guest runs /init without a panic, loads every
// module, sees its three disks within its 20 s, mounts the ext4 disk and
// prints no kernel line about I/O or ext4 errors.
//
// Boot 1 tells itself the first and ends in a reboot (gohv: reason
// "reboot requested"), after reporting
//
//   - at LUN 0: disk.img's size and MD5, not read-only, the write done,
//     and the MD5 read back with the caches dropped that of disk.img with
//     the pattern at 1 MiB;
//   - at LUN 1: ro.img's size and MD5, read-only (the VSP's MODE SENSE
//     says Write Protect), the write refused and the disk unchanged;
//   - at LUN 2: ext4.img's size, not read-only; /mnt/known's MD5 that of
//     the file the test put in the image; /mnt/written written and
//     synced, and the file system unmounted.
//
// Boot 2 tells itself the second, which is the first proof that the
// write survived the restart: /mnt/written is there. It reports
// /mnt/known's MD5 and /mnt/written's, that of the pattern boot 1 wrote,
// unmounts, and powers off (gohv: ACPI S5). So the disk image outlives
// the partition, the VSP and the guest's page cache, and ext4 finds its
// journal and checksums consistent on a second mount.
//
// It logs each boot's report and returns the boots it found.
func (s *Storage) Check(t testing.TB, log []byte) []StorageBoot {
	t.Helper()
	boots, problems := s.judge(log)
	for i, b := range boots {
		for _, k := range b.Keys {
			t.Logf("boot %d: guest: %s %s", i+1, k, b.Report[k])
		}
		t.Logf("boot %d: %s", i+1, b.End.Line)
	}
	for _, p := range problems {
		t.Error(p)
	}
	return boots
}

// splitBoots cuts log at each storageRestart line: one piece per boot of
// linux0, the restart line itself in neither.
func splitBoots(log []byte) [][]byte {
	var out [][]byte
	at := 0
	for _, m := range storageRestart.FindAllIndex(log, -1) {
		out = append(out, log[at:m[0]])
		at = m[1]
	}
	return append(out, log[at:])
}

// judge reads the boots off log and says what is wrong, one sentence each.
func (s *Storage) judge(log []byte) ([]StorageBoot, []string) {
	var out []string
	bad := func(format string, args ...any) { out = append(out, fmt.Sprintf(format, args...)) }
	parts := splitBoots(log)
	if n := len(parts) - 1; n != 1 {
		bad("gohv restarted %s %d times, want once (%q)", storagePartition, n, storageRestart)
	}
	var boots []StorageBoot
	for i, part := range parts {
		lines := Lines(part, storagePartition)
		b := StorageBoot{Boot: initramfs.ParseConsole(lines)}
		b.End, _ = EndOf(part, storagePartition)
		boots = append(boots, b)
		if i >= 2 {
			continue // reported above
		}
		n := i + 1
		badb := func(format string, args ...any) { bad("boot %d: "+format, append([]any{n}, args...)...) }
		for _, re := range storageNegotiated {
			if !re.Match(part) {
				badb("log has no line matching %q", re)
			}
		}
		if !b.HasRunInit || b.Init != "/init" {
			badb("no \"Run /init as init process\" line")
		}
		if b.Panic != "" {
			badb("kernel panic: %s", b.Panic)
		}
		for _, l := range strings.Split(string(lines), "\n") {
			if storageKernelTrouble.MatchString(l) {
				badb("kernel: %s", strings.TrimSpace(l))
			}
		}
		for _, m := range s.loaded {
			if got := b.Report["insmod."+m]; got != "ok" {
				badb("guest: insmod.%s %q, want ok", m, got)
			}
		}
		if v, ok := b.Report["disks-timeout"]; ok {
			badb("guest: the disks did not all appear in 20 s; /sys/block: %s", v)
		}
		if got := b.Report["ext4-mount"]; got != "ok" {
			badb("guest: ext4-mount %q, want ok (mounting LUN 2)", got)
		}
		if got := b.Report["boot"]; got == "again" {
			badb("guest: boot again: /mnt/written is missing after the restart, though LUN 0 holds the block boot 1 wrote: the ext4 disk lost the write")
		} else if got != strconv.Itoa(n) {
			badb("guest: boot %q, want %d", got, n)
		}
		if n == 1 {
			out = append(out, s.firstBoot(b)...)
		} else {
			out = append(out, s.secondBoot(b)...)
		}
	}
	return boots, out
}

// firstBoot is what is wrong with boot 1: the raw disks, the known file,
// the written file, the reboot.
func (s *Storage) firstBoot(b StorageBoot) []string {
	var out []string
	bad := func(format string, args ...any) { out = append(out, "boot 1: "+fmt.Sprintf(format, args...)) }
	if b.End.State != "stopped" || !strings.HasPrefix(b.End.Reason, storageRebooted) {
		bad("%s: %q; want state=stopped reason=%q...", storagePartition, b.End.Line, storageRebooted)
	}
	if b.Report["boot"] != "1" {
		return out // it did not get to the reports below: judge says why
	}
	// The disks by LUN, whatever sd named them.
	dev := map[string]string{}
	for _, k := range b.Keys {
		if d, ok := strings.CutSuffix(k, "-hctl"); ok {
			h := strings.Split(b.Report[k], ":")
			dev[h[len(h)-1]] = d
		}
	}
	want := func(key, want string) {
		if got, ok := b.Report[key]; !ok {
			bad("guest: no %s line", key)
		} else if got != want {
			bad("guest: %s %q, want %q", key, got, want)
		}
	}
	if d := dev["0"]; d == "" {
		bad("guest: no disk at LUN 0")
	} else {
		want(d+"-size", strconv.Itoa(storageDiskSize))
		want(d+"-ro", "0")
		want(d+"-md5", md5Hex(s.disk))
		want(d+"-write", "succeeded")
		want(d+"-md5-after", md5Hex(s.written))
	}
	if d := dev["1"]; d == "" {
		bad("guest: no disk at LUN 1")
	} else {
		want(d+"-size", strconv.Itoa(storageROSize))
		want(d+"-ro", "1") // the VSP's MODE SENSE says Write Protect
		want(d+"-md5", md5Hex(s.ro))
		want(d+"-write", "failed")
		want(d+"-md5-after", md5Hex(s.ro))
	}
	if d := dev["2"]; d == "" {
		bad("guest: no disk at LUN 2")
	} else {
		want(d+"-size", strconv.Itoa(storageExt4Size))
		want(d+"-ro", "0")
	}
	want("boot1-known-md5", md5Hex(s.known)) // the file the test put in the image
	want("boot1-write", "ok")
	want("boot1-umount", "ok")
	if _, ok := b.Report["reboot"]; !ok {
		bad("the init did not get to \"guest: reboot\"")
	}
	if _, ok := b.Report["reboot-returned"]; ok {
		bad("guest: reboot -f returned")
	}
	return out
}

// secondBoot is what is wrong with boot 2: both files read back, the
// power-off.
func (s *Storage) secondBoot(b StorageBoot) []string {
	var out []string
	bad := func(format string, args ...any) { out = append(out, "boot 2: "+fmt.Sprintf(format, args...)) }
	if b.End.State != "stopped" || b.End.Reason != PoweredOff {
		bad("%s: %q; want state=stopped reason=%q", storagePartition, b.End.Line, PoweredOff)
	}
	if !b.PoweredOff() {
		bad("the init did not get to \"guest: poweroff\"")
	}
	if b.Report["boot"] != "2" {
		return out // it did not get to the reports below: judge says why
	}
	for _, c := range []struct{ key, want, what string }{
		{"boot2-known-md5", md5Hex(s.known), "the file the test put in the image"},
		{"boot2-written-md5", md5Hex(s.pattern), "the pattern boot 1 wrote"},
		{"boot2-umount", "ok", ""},
	} {
		if got, ok := b.Report[c.key]; !ok {
			bad("guest: no %s line", c.key)
		} else if got != c.want && c.what != "" {
			bad("guest: %s %q, want %q (%s)", c.key, got, c.want, c.what)
		} else if got != c.want {
			bad("guest: %s %q, want %q", c.key, got, c.want)
		}
	}
	return out
}

// randomBytes returns n pseudo-random bytes, the same for the same seed.
func randomBytes(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, 0x676f6876)) // "gohv"
	b := make([]byte, n)
	for i := 0; i < n; i += 8 {
		v := r.Uint64()
		for j := 0; j < 8 && i+j < n; j++ {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	return b
}

func md5Hex(b []byte) string {
	s := md5.Sum(b)
	return hex.EncodeToString(s[:])
}
