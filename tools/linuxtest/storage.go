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
)

// The storage test's partition, its disks and the block its guest writes.
const (
	storagePartition = "linux0"
	storageMemMiB    = 256
	storageDiskSize  = 4 << 20 // disk.img: LUN 0, writable
	storageROSize    = 1 << 20 // ro.img: LUN 1, read-only
	storageWriteAt   = 1 << 20 // where the guest writes the pattern on LUN 0
	storagePatSize   = 4096    // storageInit's dd: bs=4096 seek=256
)

// storageModules are the modules the storage guest asks for; Guest.Modules
// adds their dependencies (scsi_mod, scsi_transport_fc, t10-pi, the CRCs).
var storageModules = []string{"hv_vmbus", "hv_storvsc", "sd_mod"}

// storageInit is the storage guest's /init. It loads the modules
// initramfs.ModulesList names (initramfs.Prologue, as DefaultInit does),
// waits up to 20 s of guest time for the two disks, tells them apart by
// their SCSI LUN (sd names disks in the order it probes them, which need
// not be the LUNs'), and reports for each sdX
//
//	sdX-hctl      its SCSI address host:channel:target:lun
//	sdX-size      its size in bytes
//	sdX-ro        whether the kernel made it read-only (the disk's Write
//	              Protect bit)
//	sdX-md5       the MD5 of the whole disk
//
// then writes /etc/pattern at offset 1 MiB of LUN 0 with O_DIRECT
// (so the write reaches the disk now, not the page cache), drops the
// caches and reports LUN 0's MD5 again as sdX-md5-after; and tries the
// same write on LUN 1: "sdX-write failed" or "sdX-write succeeded", and
// sdX-md5-after. Then it powers off.
//
// The write to LUN 1 fails in the kernel, before any SCSI command: the
// VSP's MODE SENSE sets Write Protect, sd makes the disk read-only, and
// opening it for writing gives EROFS (blockdev --setrw would not help: it
// clears the block device's flag, not the disk's). That the VSP refuses a
// WRITE to a read-only disk with DATA PROTECT is root/storvsp's unit
// tests' to show.
const storageInit = `#!/bin/sh
# gohv storage test guest /init (tools/linuxtest storage.go).
` + initramfs.Prologue + `i=0
while [ ! -b /dev/sda ] || [ ! -b /dev/sdb ]; do
	i=$((i + 1))
	if [ $i -gt 100 ]; then
		echo "guest: disks-timeout $(ls /sys/block | tr '\n' ' ')"
		break
	fi
	sleep 0.2
done
rw= ro=
for b in /sys/block/sd*; do
	[ -e "$b" ] || continue
	d=${b##*/}
	hctl=$(readlink "$b/device")
	hctl=${hctl##*/}
	echo "guest: $d-hctl $hctl"
	case $hctl in
	*:0) rw=$d ;;
	*:1) ro=$d ;;
	esac
	echo "guest: $d-size $(blockdev --getsize64 /dev/$d)"
	echo "guest: $d-ro $(blockdev --getro /dev/$d)"
	echo "guest: $d-md5 $(md5sum < /dev/$d | cut -d ' ' -f 1)"
done
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
	echo "guest: $1-md5-after $(md5sum < /dev/$1 | cut -d ' ' -f 1)"
}
[ -z "$rw" ] || trywrite $rw 256
[ -z "$ro" ] || trywrite $ro 0
echo "guest: poweroff"
poweroff -f
`

// Storage is the storage test, the same on both vendors (TestLinuxStorage
// in tools/imagetest on AMD-V, TestLinuxStorageVTx in tools/bochstest on
// VT-x): it proves the storage path with Linux's own drivers. Debian's
// kernel loads its unmodified hv_vmbus, hv_storvsc and sd_mod in one
// partition, linux0 (256 MiB), given two disks by [[partition.disk]] —
// disk.img, 4 MiB, writable at controller 0 LUN 0, and ro.img, 1 MiB,
// read-only at LUN 1 — and gohv's VMBus server and storage VSP
// (root/storvsp) serve them. The guest (storageInit) reads both disks
// whole, writes a block to the writable one and tries the read-only one.
//
// Boot Partitions with Files, then Check the serial log.
type Storage struct {
	// Partitions is the configuration: linux0 with its two disks.
	Partitions []Partition
	// Files are the boot modules besides the configuration: the kernel,
	// the initramfs and the two disk images.
	Files []Module

	disk, ro []byte   // the images
	pattern  []byte   // the block the guest writes, /etc/pattern
	written  []byte   // disk.img with the pattern at storageWriteAt
	loaded   []string // the modules the guest insmods, as the kernel names them
}

// newStorage makes the disks and the pattern: pseudo-random and
// deterministic, so a failure repeats.
func newStorage() *Storage {
	s := &Storage{
		disk:    randomBytes(1, storageDiskSize),
		ro:      randomBytes(2, storageROSize),
		pattern: randomBytes(3, storagePatSize),
	}
	s.written = append([]byte(nil), s.disk...)
	copy(s.written[storageWriteAt:], s.pattern)
	return s
}

// Storage writes the storage test's disks and initramfs into dir (one the
// test owns) and returns the partitions and boot modules to boot.
func (g *Guest) Storage(t testing.TB, dir string) *Storage {
	t.Helper()
	s := newStorage()
	mods, err := g.Modules(context.Background(), storageModules...)
	if err != nil {
		t.Fatal(err)
	}
	spec := initramfs.Spec{
		Busybox: g.Busybox,
		Init:    storageInit,
		Applets: append(append([]string(nil), initramfs.DefaultApplets...), "md5sum", "blockdev", "readlink"),
		Files:   []initramfs.File{{Name: "etc/pattern", Data: s.pattern}},
	}
	for _, m := range mods {
		spec.Files = append(spec.Files, initramfs.File{Name: m.Path, Source: m.File})
		spec.Modules = append(spec.Modules, m.Path)
		s.loaded = append(s.loaded, m.Name)
	}
	t.Logf("modules: %s", strings.Join(s.loaded, " "))

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
	s.Partitions = []Partition{{Name: storagePartition, MemoryMiB: storageMemMiB, Kernel: "vmlinuz", Initrd: "initrd",
		Cmdline: Cmdline, OnReboot: "stop", Disks: []Disk{
			{Module: "disk.img", Controller: 0, LUN: 0},
			{Module: "ro.img", Controller: 0, LUN: 1, ReadOnly: true},
		}}}
	return s
}

// storageNegotiated are gohv's side of the storage path: the guest's
// VMBus connection at protocol 5.3 and the storage VSP's negotiation with
// hv_storvsc on controller 0, at 6.0 (Linux offers 6.2 first, which the
// VSP refuses: root/storvsp).
var storageNegotiated = []*regexp.Regexp{
	regexp.MustCompile(`(?m)^gohv: vmbus: connected partition=` + storagePartition + ` version=5\.3\b`),
	regexp.MustCompile(`(?m)^gohv: storvsp: protocol negotiated partition=` + storagePartition + ` controller=0 version=6\.0\b`),
}

// Check judges a boot's serial log (the caller judges the verdict): gohv
// reports linux0 powered off through ACPI S5 and logs the VMBus and
// storage negotiations; the guest loaded every module, saw both disks
// within its 20 s, ran to its power-off without a panic, and reported
//
//   - at LUN 0: disk.img's size and MD5, not read-only, the write done,
//     and the MD5 read back with the caches dropped that of disk.img with
//     the pattern at 1 MiB;
//   - at LUN 1: ro.img's size and MD5, read-only (the VSP's MODE SENSE
//     says Write Protect), the write refused and the disk unchanged.
//
// It logs the guest's report and returns it with gohv's account of the
// partition's end.
func (s *Storage) Check(t testing.TB, log []byte) (initramfs.Boot, Ended) {
	t.Helper()
	b := initramfs.ParseConsole(Lines(log, storagePartition))
	for _, k := range b.Keys {
		t.Logf("guest: %s %s", k, b.Report[k])
	}
	e, _ := EndOf(log, storagePartition)
	for _, p := range s.problems(log, b, e) {
		t.Error(p)
	}
	return b, e
}

// problems is what Check finds wrong, one sentence each.
func (s *Storage) problems(log []byte, b initramfs.Boot, e Ended) []string {
	var out []string
	bad := func(format string, args ...any) { out = append(out, fmt.Sprintf(format, args...)) }
	if e.State != "stopped" || e.Reason != PoweredOff {
		bad("%s: %q; want state=stopped reason=%q", storagePartition, e.Line, PoweredOff)
	}
	for _, re := range storageNegotiated {
		if !re.Match(log) {
			bad("log has no line matching %q", re)
		}
	}
	if b.Panic != "" {
		bad("kernel panic: %s", b.Panic)
	}
	for _, m := range s.loaded {
		if got := b.Report["insmod."+m]; got != "ok" {
			bad("guest: insmod.%s %q, want ok", m, got)
		}
	}
	if v, ok := b.Report["disks-timeout"]; ok {
		bad("guest: the disks did not all appear in 20 s; /sys/block: %s", v)
	}
	// The disks by LUN, whatever sd named them.
	dev := map[string]string{}
	for _, k := range b.Keys {
		if d, ok := strings.CutSuffix(k, "-hctl"); ok {
			h := strings.Split(b.Report[k], ":")
			dev[h[len(h)-1]] = d
		}
	}
	want := func(d, key, want string) {
		if got, ok := b.Report[d+"-"+key]; !ok {
			bad("guest: no %s-%s line", d, key)
		} else if got != want {
			bad("guest: %s-%s %q, want %q", d, key, got, want)
		}
	}
	if d := dev["0"]; d == "" {
		bad("guest: no disk at LUN 0")
	} else {
		want(d, "size", strconv.Itoa(storageDiskSize))
		want(d, "ro", "0")
		want(d, "md5", md5Hex(s.disk))
		want(d, "write", "succeeded")
		want(d, "md5-after", md5Hex(s.written))
	}
	if d := dev["1"]; d == "" {
		bad("guest: no disk at LUN 1")
	} else {
		want(d, "size", strconv.Itoa(storageROSize))
		want(d, "ro", "1") // the VSP's MODE SENSE says Write Protect
		want(d, "md5", md5Hex(s.ro))
		want(d, "write", "failed")
		want(d, "md5-after", md5Hex(s.ro))
	}
	if !b.PoweredOff() {
		bad("the init did not get to \"guest: poweroff\"")
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
