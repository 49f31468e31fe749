package imagetest

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"gohv/tools/debian/initramfs"
	"gohv/tools/linuxtest"
)

// The storage benchmark's scratch disk and its workloads.
const (
	benchDiskMiB   = 64
	benchSeqMiB    = 32    // read, then written, sequentially
	benchSeqBlock  = 65536 // bytes per sequential request
	benchRandReads = 4000  // 4 KiB random reads
)

// BenchmarkLinuxStorage measures the storage path from inside a Linux
// partition under QEMU -cpu EPYC -icount shift=0,sleep=off, in guest time:
// Debian's hv_vmbus, hv_storvsc and sd_mod on a 64 MiB scratch disk served
// by gohv's storage VSP, and tools/guestio with O_DIRECT in the guest.
// Three boots of the same partition, the same but for what the init runs
// once the disk is there:
//
//   - idle: nothing (the exits of booting, probing the disk and powering
//     off);
//   - random: 4,000 4 KiB random reads — their exits less the idle
//     boot's, over 4,000, are the exits one 4 KiB read costs, by kind;
//   - full: 32 MiB read and then written sequentially in 64 KiB requests,
//     and the 4,000 random reads: MiB/s and IOPS.
func BenchmarkLinuxStorage(b *testing.B) {
	img := needImage(b)
	g := linuxtest.FetchOrSkip(b, *guestCache, scratch, "bench")
	dir := b.TempDir()
	guestio := buildGuestTool(b, dir, "guestio")
	disk := filepath.Join(dir, "scratch.img")
	if err := os.WriteFile(disk, make([]byte, benchDiskMiB<<20), 0o644); err != nil {
		b.Fatal(err)
	}
	initrd := func(name, run string) string {
		spec := initramfs.Spec{
			Busybox: g.Busybox,
			Init: `#!/bin/sh
# gohv storage benchmark guest /init (tools/imagetest storage_bench_test.go).
` + initramfs.Prologue + `waitfor disk '[ -b /dev/sda ]'
` + run + `
echo "guest: poweroff"
poweroff -f
`,
			Files: []initramfs.File{{Name: "bin/guestio", Mode: 0o755, Source: guestio}},
		}
		g.AddModules(b, &spec, "hv_vmbus", "hv_storvsc", "sd_mod")
		p := filepath.Join(dir, name+".cpio")
		if err := spec.WriteFile(p); err != nil {
			b.Fatal(err)
		}
		return p
	}
	gio := func(mib, reads int) string {
		return fmt.Sprintf("guestio -dev /dev/sda -mib %d -block %d -random %d", mib, benchSeqBlock, reads)
	}
	idle, random, full := initrd("idle", ""), initrd("random", gio(0, benchRandReads)), initrd("full", gio(benchSeqMiB, benchRandReads))

	// run boots one initramfs and returns the guest's io.* figures and the
	// partition's exits by kind.
	run := func(initrd string) (map[string]float64, map[string]int) {
		ps := []linuxtest.Partition{{Name: "linux0", MemoryMiB: 256, Kernel: "vmlinuz", Initrd: "initrd",
			Cmdline: linuxtest.Cmdline, OnReboot: "stop", Disks: []linuxtest.Disk{{Module: "scratch.img"}}}}
		r := linuxBoot(b, img, 512+benchDiskMiB, ps,
			linuxtest.Module{Name: "vmlinuz", Path: g.Kernel},
			linuxtest.Module{Name: "initrd", Path: initrd},
			linuxtest.Module{Name: "scratch.img", Path: disk})
		e, ok := linuxtest.EndOf(r.Log, "linux0")
		if !r.Passed() || !ok || e.Reason != linuxtest.PoweredOff {
			b.Fatalf("%s: %s; linux0: %q\n%s", filepath.Base(initrd), r.Describe(), e.Line, r.Log)
		}
		boot := initramfs.ParseConsole(linuxtest.Lines(r.Log, "linux0"))
		if v, ok := boot.Report["io.error"]; ok {
			b.Fatalf("%s: guestio: %s", filepath.Base(initrd), v)
		}
		if _, ok := boot.Report["disk-timeout"]; ok {
			b.Fatalf("%s: no /dev/sda in 20 s", filepath.Base(initrd))
		}
		io := map[string]float64{}
		for k, v := range boot.Report {
			if name, ok := strings.CutPrefix(k, "io."); ok {
				f, err := strconv.ParseFloat(strings.Fields(v)[0], 64)
				if err != nil {
					b.Fatalf("guest: %s %q", k, v)
				}
				io[name] = f
				b.Logf("%s: guest: %s %s", filepath.Base(initrd), k, v)
			}
		}
		exits, err := e.ExitCounts()
		if err != nil {
			b.Fatal(err)
		}
		return io, exits
	}
	for b.Loop() {
		_, idleExits := run(idle)
		_, randExits := run(random)
		io, _ := run(full)
		for _, k := range []string{"seq-read-mibps", "seq-write-mibps", "rand-read-iops"} {
			if _, ok := io[k]; !ok {
				b.Fatalf("guestio reported no io.%s", k)
			}
		}
		b.ReportMetric(io["seq-read-mibps"], "seq-read-64k-MiB/s")
		b.ReportMetric(io["seq-write-mibps"], "seq-write-64k-MiB/s")
		b.ReportMetric(io["rand-read-iops"], "rand-read-4k-IOPS")
		b.ReportMetric(float64(randExits[""]-idleExits[""])/benchRandReads, "exits/4k-read")
		var kinds []string
		for k := range randExits {
			if k != "" {
				kinds = append(kinds, k)
			}
		}
		sort.Strings(kinds)
		var per []string
		for _, k := range kinds {
			if d := randExits[k] - idleExits[k]; d != 0 {
				per = append(per, fmt.Sprintf("%s %.2f", k, float64(d)/benchRandReads))
			}
		}
		b.Logf("exits per 4 KiB random read, by kind: %s", strings.Join(per, ", "))
	}
}
