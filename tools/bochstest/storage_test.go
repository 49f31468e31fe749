package bochstest

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"gohv/tools/debian/initramfs"
	"gohv/tools/linuxtest"
)

// The storage test's disks and the block its guest writes.
const (
	storageDiskSize = 4 << 20 // disk.img: LUN 0, writable
	storageROSize   = 1 << 20 // ro.img: LUN 1, read-only
	storageWriteAt  = 1 << 20 // where the guest writes the pattern on LUN 0
	storagePatSize  = 4096    // storageInit's dd: bs=4096 seek=256
)

// storageModules are the modules the storage guest asks for; Guest.Modules
// adds their dependencies (scsi_mod, scsi_transport_fc, t10-pi, the CRCs).
var storageModules = []string{"hv_vmbus", "hv_storvsc", "sd_mod"}

// storageInit is the storage guest's /init. It loads the modules
// initramfs.ModulesList names (as DefaultInit does), waits up to 20 s of
// guest time for the two disks, tells them apart by their SCSI LUN (sd
// names disks in the order it probes them, which need not be the LUNs'),
// and reports for each sdX
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
# gohv storage test guest /init (tools/bochstest storage_test.go).
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

// TestLinuxStorageVTx proves the storage path on Intel VT-x with Linux's
// own drivers: Debian's kernel loads its unmodified hv_vmbus, hv_storvsc
// and sd_mod in a child partition given two disks by [[partition.disk]] —
// disk.img writable at controller 0 LUN 0, ro.img read-only at LUN 1 —
// and gohv's VMBus server and storage VSP (root/storvsp) serve them. The
// guest reads both disks whole (their MD5s and sizes must be the host's),
// writes a block to the writable one (the MD5 read back, caches dropped,
// must be the host's image with that block), and the read-only one must
// show Write Protect and refuse a write, unchanged.
//
// It takes about 2 minutes 15 s of wall time under Bochs on a 2-core
// machine.
func TestLinuxStorageVTx(t *testing.T) {
	img := needImage(t)
	if *guestCache == "" {
		t.Skip("no -guest-cache: run `make test-bochs`")
	}
	g := linuxtest.Fetch(t, *guestCache, isoDir)
	t.Parallel()
	dir := t.TempDir()

	// The disks and the pattern: deterministic, so a failure repeats.
	disk := randomBytes(1, storageDiskSize)
	ro := randomBytes(2, storageROSize)
	pat := randomBytes(3, storagePatSize)
	diskPath, roPath := filepath.Join(dir, "disk.img"), filepath.Join(dir, "ro.img")
	for _, f := range []struct {
		path string
		data []byte
	}{{diskPath, disk}, {roPath, ro}} {
		if err := os.WriteFile(f.path, f.data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if storageWriteAt != 256*storagePatSize {
		t.Fatal("storageInit writes at 256 blocks of 4096 bytes")
	}
	written := append([]byte(nil), disk...)
	copy(written[storageWriteAt:], pat)

	mods, err := g.Modules(context.Background(), storageModules...)
	if err != nil {
		t.Fatal(err)
	}
	spec := initramfs.Spec{
		Busybox: g.Busybox,
		Init:    storageInit,
		Applets: append(append([]string(nil), initramfs.DefaultApplets...), "md5sum", "blockdev", "readlink"),
		Files:   []initramfs.File{{Name: "etc/pattern", Data: pat}},
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

	const memMiB = 256
	ps := []linuxtest.Partition{{Name: "linux0", MemoryMiB: memMiB, Kernel: "vmlinuz", Initrd: "initrd",
		Cmdline: linuxtest.Cmdline, OnReboot: "stop", Disks: []linuxtest.Disk{
			{Module: "disk.img", Controller: 0, LUN: 0},
			{Module: "ro.img", Controller: 0, LUN: 1, ReadOnly: true},
		}}}
	r := bootLinux(t, img, "storage.iso", 8*time.Minute, ps,
		linuxtest.Module{Name: "vmlinuz", Path: g.Kernel},
		linuxtest.Module{Name: "initrd", Path: initrd},
		linuxtest.Module{Name: "disk.img", Path: diskPath},
		linuxtest.Module{Name: "ro.img", Path: roPath})
	if !r.Passed() {
		t.Errorf("want verdict PASS and a power-off: %s", r.Describe())
	}
	if e, ok := linuxtest.EndOf(r.Log, "linux0"); !ok || e.State != "stopped" || e.Reason != linuxtest.PoweredOff {
		t.Errorf("linux0: %q; want state=stopped reason=%q", e.Line, linuxtest.PoweredOff)
	}

	// gohv's side: the guest's VMBus connection at protocol 5.3 and the
	// storage VSP's negotiation with hv_storvsc on controller 0, at 6.0
	// (Linux offers 6.2 first, which the VSP refuses: root/storvsp).
	for _, re := range []*regexp.Regexp{
		regexp.MustCompile(`(?m)^gohv: vmbus: connected partition=linux0 version=5\.3\b`),
		regexp.MustCompile(`(?m)^gohv: storvsp: protocol negotiated partition=linux0 controller=0 version=6\.0\b`),
	} {
		if !re.Match(r.Log) {
			t.Errorf("log has no line matching %q", re)
		}
	}

	lines := linuxtest.Lines(r.Log, "linux0")
	b := initramfs.ParseConsole(lines)
	for _, k := range b.Keys {
		t.Logf("guest: %s %s", k, b.Report[k])
	}
	if b.Panic != "" {
		t.Errorf("kernel panic: %s", b.Panic)
	}
	for _, m := range loaded {
		if got := b.Report["insmod."+m]; got != "ok" {
			t.Errorf("guest: insmod.%s %q, want ok", m, got)
		}
	}
	if v, ok := b.Report["disks-timeout"]; ok {
		t.Errorf("guest: the disks did not all appear in 20 s; /sys/block: %s", v)
	}
	// The disks by LUN, whatever sd named them.
	dev := map[string]string{}
	for _, k := range b.Keys {
		if d, ok := strings.CutSuffix(k, "-hctl"); ok {
			h := strings.Split(b.Report[k], ":")
			dev[h[len(h)-1]] = d
		}
	}
	check := func(d, key, want string) {
		t.Helper()
		if got, ok := b.Report[d+"-"+key]; !ok {
			t.Errorf("guest: no %s-%s line", d, key)
		} else if got != want {
			t.Errorf("guest: %s-%s %q, want %q", d, key, got, want)
		}
	}
	if d := dev["0"]; d == "" {
		t.Errorf("guest: no disk at LUN 0")
	} else {
		check(d, "size", strconv.Itoa(storageDiskSize))
		check(d, "ro", "0")
		check(d, "md5", md5Hex(disk))
		check(d, "write", "succeeded")
		check(d, "md5-after", md5Hex(written))
	}
	if d := dev["1"]; d == "" {
		t.Errorf("guest: no disk at LUN 1")
	} else {
		check(d, "size", strconv.Itoa(storageROSize))
		check(d, "ro", "1") // the VSP's MODE SENSE says Write Protect
		check(d, "md5", md5Hex(ro))
		check(d, "write", "failed")
		check(d, "md5-after", md5Hex(ro))
	}
	if !b.PoweredOff() {
		t.Errorf("the init did not get to \"guest: poweroff\"")
	}
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
