package imagetest

import (
	"testing"

	"gohv/tools/linuxtest"
)

// TestLinuxNetwork proves the network path on AMD-V with Linux's own
// hv_netvsc: linuxtest.Network, the test tools/bochstest's
// TestLinuxNetworkVTx runs on Intel VT-x. Two partitions, net0 and net1,
// each with a NIC on the switch lan0 where the root partition has
// 10.0.0.1, load Debian's unmodified hv_vmbus and hv_netvsc and reach
// gohv's network VSP and virtual switch: eth0 comes up with the
// configured MAC, each pings the other and the root, net1 sends net0 16
// MiB over TCP (busybox nc) and both sides' MD5 is that of what the test
// made, both fetch the root's diagnostic page (/partitions names them),
// reload hv_netvsc and ping each other again, and power off
// (Network.Check says what must hold).
func TestLinuxNetwork(t *testing.T) {
	img, g := linuxGuest(t)
	t.Parallel()
	n := g.Network(t, t.TempDir(), linuxtest.NetworkOptions{})
	r := linuxBootConfig(t, img, 1024, n.Config(), n.Files...)
	if !r.Passed() {
		t.Errorf("want verdict PASS: %s", r.Describe())
	}
	f := n.Check(t, r.Log)
	t.Logf("TCP: %d MiB in %.2f s of net1's guest time (%.1f MiB/s)", n.TransferBytes()>>20, f.TCPSeconds, f.MiBPerSecond(n))
	for _, p := range n.Partitions {
		e := f.Ends[p.Name]
		t.Logf("%s: partition ran %s; exits %s", p.Name, e.Ran, e.Exits)
	}
}
