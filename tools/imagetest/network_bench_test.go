package imagetest

import (
	"fmt"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"gohv/tools/debian/initramfs"
	"gohv/tools/linuxtest"
)

// The network benchmark's switch, partitions and workloads.
const (
	nbSwitch    = "lan0"
	nbRoot      = "10.0.0.1" // the root's stack on lan0: discard on TCP 9
	nbSink      = "10.0.0.2" // net0: receives
	nbSource    = "10.0.0.3" // net1: sends
	nbTCPMiB    = 64
	nbUDPCount  = 50000
	nbUDPSize   = 64 // payload bytes: 106-byte Ethernet frames
	nbRRCount   = 2000
	nbTCPPort   = 5001
	nbUDPPort   = 5002
	nbEchoPort  = 5003
	nbDiscard   = 9
	nbMemoryMiB = 256
)

// nbBoot is what one boot of the network benchmark measured: the guests'
// net.* figures (the number that starts each value), and the sums over
// both partitions of their exits by kind (total under "") and of their
// NICs' frames and SynIC signals.
type nbBoot struct {
	net                        map[string]float64
	exits                      map[string]int
	frames, toGuest, fromGuest int
	dropped                    int
}

// BenchmarkLinuxNetwork measures the network path between Linux
// partitions under QEMU -cpu EPYC -icount shift=0,sleep=off, in guest
// time: two partitions, net0 (10.0.0.2) and net1 (10.0.0.3), each with
// one NIC on the switch lan0 where the root has 10.0.0.1, Debian's
// hv_vmbus and hv_netvsc, and tools/guestnet in the guests. Three boots of
// the same partitions, the same but for what the inits run once eth0 is
// up:
//
//   - idle: nothing (the exits and frames of booting, bringing eth0 up
//     and powering off);
//   - tcp: net1 sends net0 64 MiB, then the root's discard service 64
//     MiB, then 2,000 1-byte round trips with net0: MiB/s each way and
//     the median round trip;
//   - udp: net1 sends net0 50,000 datagrams of 64 bytes as fast as its
//     socket takes them: datagrams per second received, and the loss.
//
// Frames are those gohv's network VSP carried, both ways, summed over the
// NICs ("netvsp: channel closed", logged at each guest's power-off); a
// frame from net1 to net0 counts twice, once at each NIC. The exits and
// SynIC signals per frame of a loaded boot are its exits (signals) less
// the idle boot's, over its frames less the idle boot's.
func BenchmarkLinuxNetwork(b *testing.B) {
	img := needImage(b)
	g := linuxtest.FetchOrSkip(b, *guestCache, scratch, "bench")
	dir := b.TempDir()
	guestnet := buildGuestTool(b, dir, "guestnet")
	initrd := func(name, addr, run string) string {
		spec := initramfs.Spec{
			Busybox: g.Busybox,
			Init: `#!/bin/sh
# gohv network benchmark guest /init (tools/imagetest network_bench_test.go).
` + initramfs.Prologue + `addr=` + addr + `/24
` + linuxtest.NetLink + `if link ""; then
	:
` + run + `
	s=/sys/class/net/eth0/statistics
	echo "guest: eth0-stats rx_packets=$(cat $s/rx_packets) tx_packets=$(cat $s/tx_packets) rx_dropped=$(cat $s/rx_dropped) tx_dropped=$(cat $s/tx_dropped) $(grep Udp: /proc/net/snmp | tr '\n' ' ')"
else
	echo "guest: net stopped link"
fi
echo "guest: poweroff"
poweroff -f
`,
			Applets: append(append([]string(nil), initramfs.DefaultApplets...), linuxtest.NetApplets...),
			Files:   []initramfs.File{{Name: "bin/guestnet", Mode: 0o755, Source: guestnet}},
		}
		g.AddModules(b, &spec, "hv_vmbus", "hv_netvsc")
		p := filepath.Join(dir, name+".cpio")
		if err := spec.WriteFile(p); err != nil {
			b.Fatal(err)
		}
		return p
	}
	to := func(addr string, port int) string { return addr + ":" + strconv.Itoa(port) }
	type boot struct{ sink, source string } // what net0 and net1 run
	boots := map[string]boot{
		"idle": {},
		"tcp": {
			sink: fmt.Sprintf("guestnet -recv %d\nguestnet -echo %d", nbTCPPort, nbEchoPort),
			source: fmt.Sprintf("guestnet -send %s -mib %d\nguestnet -send %s -mib %d -key tcp-send-root\nguestnet -rr %s -count %d",
				to(nbSink, nbTCPPort), nbTCPMiB, to(nbRoot, nbDiscard), nbTCPMiB, to(nbSink, nbEchoPort), nbRRCount),
		},
		"udp": {
			sink:   fmt.Sprintf("guestnet -udp-sink %d", nbUDPPort),
			source: fmt.Sprintf("guestnet -udp %s -count %d -size %d", to(nbSink, nbUDPPort), nbUDPCount, nbUDPSize),
		},
	}

	// run boots both partitions with what boot name has them run.
	run := func(name string) nbBoot {
		bt := boots[name]
		ps := []linuxtest.Partition{
			{Name: "net0", MemoryMiB: nbMemoryMiB, Kernel: "vmlinuz", Initrd: "initrd0", Cmdline: linuxtest.Cmdline, OnReboot: "stop",
				NICs: []linuxtest.NIC{{Switch: nbSwitch, MAC: "00:15:5d:00:00:20"}}},
			{Name: "net1", MemoryMiB: nbMemoryMiB, Kernel: "vmlinuz", Initrd: "initrd1", Cmdline: linuxtest.Cmdline, OnReboot: "stop",
				NICs: []linuxtest.NIC{{Switch: nbSwitch, MAC: "00:15:5d:00:00:21"}}},
		}
		config := linuxtest.ConfigWithSwitches([]linuxtest.Switch{{Name: nbSwitch, RootAddress: nbRoot + "/24"}}, ps...)
		r := linuxBootConfig(b, img, 1024, config,
			linuxtest.Module{Name: "vmlinuz", Path: g.Kernel},
			linuxtest.Module{Name: "initrd0", Path: initrd(name+"-net0", nbSink, bt.sink)},
			linuxtest.Module{Name: "initrd1", Path: initrd(name+"-net1", nbSource, bt.source)})
		if !r.Passed() {
			b.Fatalf("%s: %s\n%s", name, r.Describe(), r.Log)
		}
		m := nbBoot{net: map[string]float64{}, exits: map[string]int{}}
		for _, p := range ps {
			e, ok := linuxtest.EndOf(r.Log, p.Name)
			if !ok || e.Reason != linuxtest.PoweredOff {
				b.Fatalf("%s: %s: %q\n%s", name, p.Name, e.Line, r.Log)
			}
			rep := initramfs.ParseConsole(linuxtest.Lines(r.Log, p.Name)).Report
			for _, k := range []string{"net.error", "net"} {
				if v, ok := rep[k]; ok {
					b.Fatalf("%s: %s: guest: %s %s\n%s", name, p.Name, k, v, r.Log)
				}
			}
			for k, v := range rep {
				if what, ok := strings.CutPrefix(k, "net."); ok {
					f, err := strconv.ParseFloat(strings.Fields(v)[0], 64)
					if err != nil {
						b.Fatalf("%s: %s: guest: %s %q", name, p.Name, k, v)
					}
					m.net[what] = f
					b.Logf("%s: %s: guest: %s %s", name, p.Name, k, v)
				}
			}
			b.Logf("%s: %s: guest: eth0-stats %s", name, p.Name, rep["eth0-stats"])
			b.Logf("%s: %s: exits %s", name, p.Name, e.Exits)
			exits, err := e.ExitCounts()
			if err != nil {
				b.Fatal(err)
			}
			for k, n := range exits {
				m.exits[k] += n
			}
			nics, err := linuxtest.NICClosedOf(r.Log, p.Name)
			if err != nil {
				b.Fatal(err)
			}
			if len(nics) != 1 {
				b.Fatalf("%s: %s: %d \"netvsp: channel closed\" lines, want 1 (the NIC's close at power-off)\n%s", name, p.Name, len(nics), r.Log)
			}
			c := nics[0]
			m.frames += c.Frames()
			m.toGuest += c.SignalsToGuest
			m.fromGuest += c.SignalsFromGuest
			m.dropped += c.TxDropped + c.RxDropped
			b.Logf("%s: %s: partition ran %s; %s", name, p.Name, e.Ran, strings.TrimPrefix(c.Line, "gohv: netvsp: channel closed "))
		}
		return m
	}
	// perFrame reports boot name's exits and signals per frame, less the
	// idle boot's, and logs its exits per frame by kind.
	perFrame := func(name string, idle, m nbBoot) {
		frames := float64(m.frames - idle.frames)
		if frames <= 0 {
			b.Fatalf("%s: %d frames, the idle boot %d", name, m.frames, idle.frames)
		}
		b.ReportMetric(float64(m.exits[""]-idle.exits[""])/frames, "exits/frame-"+name)
		b.ReportMetric(float64(m.toGuest+m.fromGuest-idle.toGuest-idle.fromGuest)/frames, "signals/frame-"+name)
		var kinds []string
		for k := range m.exits {
			if k != "" {
				kinds = append(kinds, k)
			}
		}
		sort.Strings(kinds)
		var per []string
		for _, k := range kinds {
			if d := m.exits[k] - idle.exits[k]; d != 0 {
				per = append(per, fmt.Sprintf("%s %.3f", k, float64(d)/frames))
			}
		}
		b.Logf("%s: %d frames (idle boot %d), %d dropped; signals per frame: to the guests %.3f, from them %.3f; exits per frame, by kind: %s",
			name, m.frames, idle.frames, m.dropped,
			float64(m.toGuest-idle.toGuest)/frames, float64(m.fromGuest-idle.fromGuest)/frames, strings.Join(per, ", "))
	}
	for b.Loop() {
		idle, tcp, udp := run("idle"), run("tcp"), run("udp")
		for _, k := range []string{"tcp-send-mib-s", "tcp-send-root-mib-s", "tcp-rr-median-us", "udp-recv-pps", "udp-send-pps"} {
			if _, ok := tcp.net[k]; !ok {
				if _, ok := udp.net[k]; !ok {
					b.Fatalf("guestnet reported no net.%s", k)
				}
			}
		}
		b.ReportMetric(tcp.net["tcp-send-mib-s"], "tcp-child-child-MiB/s")
		b.ReportMetric(tcp.net["tcp-send-root-mib-s"], "tcp-child-root-MiB/s")
		b.ReportMetric(tcp.net["tcp-rr-median-us"], "tcp-rr-median-us")
		b.ReportMetric(udp.net["udp-recv-pps"], "udp-64B-recv-pps")
		b.ReportMetric(udp.net["udp-send-pps"], "udp-64B-send-pps")
		b.ReportMetric(udp.net["udp-loss-pct"], "udp-loss-%")
		perFrame("tcp", idle, tcp)
		perFrame("udp", idle, udp)
	}
}
