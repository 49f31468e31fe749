package bochstest

import (
	"testing"
	"time"

	"gohv/tools/bochs"
	"gohv/tools/linuxtest"
)

// TestLinuxNetworkVTx proves the network path on Intel VT-x with Linux's
// own hv_netvsc: linuxtest.Network, the test tools/imagetest's
// TestLinuxNetwork runs on AMD-V. Two partitions, net0 and net1, each
// with a NIC on the switch lan0 where the root partition has 10.0.0.1,
// load Debian's unmodified hv_vmbus and hv_netvsc and reach gohv's
// network VSP and virtual switch: eth0 comes up with the configured MAC,
// each pings the other and the root, net1 sends net0 data over TCP
// (busybox nc) and both sides' MD5 is that of what the test made, both
// fetch the root's diagnostic page, reload hv_netvsc and ping each other
// again, and power off (Network.Check says what must hold).
//
// Lighter than the QEMU test, for Bochs's speed and its 512 MiB: 4 MiB
// over TCP instead of 16, and 128 MiB partitions instead of 256. Two
// Linux boots share the emulated CPU, so expect it to take longer than
// TestLinuxStorageVTx's 4 minutes.
func TestLinuxNetworkVTx(t *testing.T) {
	img, g := linuxGuest(t)
	t.Parallel()
	n := g.Network(t, t.TempDir(), linuxtest.NetworkOptions{TransferMiB: 4, MemoryMiB: 128})
	r := bootLinuxConfig(t, img, "network.iso", bochs.Config{Timeout: 15 * time.Minute}, n.Config(), n.Files...)
	if !r.Passed() {
		t.Errorf("want verdict PASS and a power-off: %s", r.Describe())
	}
	f := n.Check(t, r.Log)
	t.Logf("TCP: %d MiB in %.2f s of net1's guest time (%.2f MiB/s)", n.TransferBytes()>>20, f.TCPSeconds, f.MiBPerSecond(n))
	for _, p := range n.Partitions {
		e := f.Ends[p.Name]
		t.Logf("%s: partition ran %s; exits %s", p.Name, e.Ran, e.Exits)
	}
}
