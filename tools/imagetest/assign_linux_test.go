package imagetest

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"gohv/tools/debian/initramfs"
	"gohv/tools/linuxtest"
	"gohv/tools/qemu"
)

// QEMU's user networking (slirp) as the guest sees it: its address,
// the gateway (the emulator's virtual host, which answers ARP and ICMP
// echo itself and turns a TCP connection to it into one to the host's
// loopback), and the gateway's MAC (slirp's 52:55 followed by its IPv4
// address).
const (
	slirpGuestAddr  = "10.0.2.15/24"
	slirpGateway    = "10.0.2.2"
	slirpGatewayMAC = "52:55:0a:00:02:02"
	// e1000eSlot is where the test puts the e1000e on the host's bus 0,
	// clear of the IOMMU's own function (amd-iommu takes a slot).
	e1000eSlot = "00:05.0"
)

// assignedNICInit is the guest's /init: after initramfs.Prologue has
// loaded e1000e it reports, one "guest: key value" line each (every wait
// bounded in guest time):
//
//	pci-device ADDR VENDOR:DEVICE DRIVER   each function on its PCI bus, and its driver (none)
//	eth0, address, carrier                 linuxtest.NetLink's link steps, with gohv.ip
//	eth0-driver NAME                       the driver behind eth0
//	ping-gw ok|failed N/3 ADDR             ping -c 3 -W 2 of gohv.gw, after up to 30 s for a first reply
//	gw-neigh ENTRY                         the gateway's neighbour entry (ip neigh)
//	tcp-reply LINE|none ERR                what the host sent back over TCP: the guest connects to
//	                                       gohv.gw port gohv.port, sends "hello gohv.token", and prints
//	                                       the line the other end (the test, through slirp) answers
//	eth0-irq LINE;LINE;...                 eth0's lines of /proc/interrupts (its vectors and counts)
//	eth0-stats RX TX                       the interface's packet counters
//
// then "nic done", "poweroff", and poweroff -f. A missing link reports
// "nic stopped link" and powers off.
var assignedNICInit = `#!/bin/sh
# gohv assigned-NIC test guest /init (tools/imagetest assign_linux_test.go).
` + initramfs.Prologue + `addr= gw= port= token=
for w in $(cat /proc/cmdline); do
	case $w in
	gohv.ip=*) addr=${w#*=} ;;
	gohv.gw=*) gw=${w#*=} ;;
	gohv.port=*) port=${w#*=} ;;
	gohv.token=*) token=${w#*=} ;;
	esac
done
` + linuxtest.NetLink + `stop() {
	echo "guest: nic stopped $1"
	echo "guest: poweroff"
	poweroff -f
}
for d in /sys/bus/pci/devices/*; do
	[ -e "$d" ] || continue
	drv=none
	[ -e "$d/driver" ] && drv=$(basename "$(readlink "$d/driver")")
	echo "guest: pci-device ${d##*/} $(cat "$d/vendor"):$(cat "$d/device") $drv"
done
link "" || stop link
echo "guest: eth0-driver $(basename "$(readlink /sys/class/net/eth0/device/driver)")"
within 30 "ping -c 1 -W 1 $gw > /dev/null 2>&1"
got=$(ping -c 3 -W 2 $gw 2>&1 | sed -n 's/.* \([0-9]*\) packets received.*/\1/p')
if [ "${got:-0}" = 3 ]; then
	echo "guest: ping-gw ok ${got}/3 $gw"
else
	echo "guest: ping-gw failed ${got:-0}/3 $gw"
fi
echo "guest: gw-neigh $(ip neigh show $gw)"
reply=$( (echo "hello $token"; sleep 5) | timeout 30 nc $gw $port 2> /tmp/nc.err)
if [ -n "$reply" ]; then
	echo "guest: tcp-reply $reply"
else
	echo "guest: tcp-reply none $(tr '\n' ' ' < /tmp/nc.err)"
fi
echo "guest: eth0-irq $(grep eth0 /proc/interrupts | tr -s ' ' | tr '\n' ';')"
echo "guest: eth0-stats $(cat /sys/class/net/eth0/statistics/rx_packets) $(cat /sys/class/net/eth0/statistics/tx_packets)"
echo "guest: nic done"
echo "guest: poweroff"
poweroff -f
`

// tcpPeer is the host's end of the guest's TCP connection: it accepts
// one connection, reads the guest's line and answers with its own.
type tcpPeer struct {
	l     net.Listener
	reply string
	got   chan string // the guest's line, or what went wrong
}

func newTCPPeer(t *testing.T) *tcpPeer {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &tcpPeer{l: l, reply: "gohv-e1000e-reply-" + randomHex(t), got: make(chan string, 1)}
	go func() {
		c, err := l.Accept()
		if err != nil {
			p.got <- "accept: " + err.Error()
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(2 * time.Minute))
		line, err := bufio.NewReader(c).ReadString('\n')
		if err != nil {
			p.got <- fmt.Sprintf("read %q: %v", line, err)
			return
		}
		fmt.Fprintf(c, "%s\n", p.reply)
		p.got <- strings.TrimSuffix(line, "\n")
	}()
	t.Cleanup(func() { l.Close() })
	return p
}

func (p *tcpPeer) port() int { return p.l.Addr().(*net.TCPAddr).Port }

func randomHex(t *testing.T) string {
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// TestIOMMUAssignLinuxE1000e: an unmodified Linux child owns QEMU's
// e1000e, QEMU user networking behind it, named in the configuration
// (pci = ["00:05.0"]), on q35 with intel-iommu and with amd-iommu. The
// root assigns it (a domain over the partition's RAM, BARs in the host
// bridge's window, MSI and MSI-X routed through interrupt remapping);
// Debian's kernel finds it behind the DSDT's PCI0, its own e1000e module
// binds, takes MSI-X (its table trapped, each entry routed through interrupt
// remapping), brings eth0 up at 10.0.2.15/24 and reaches the emulator's
// gateway 10.0.2.2. What proves packets flowed both ways through the
// device: the gateway's ARP reply (its neighbour entry holds slirp's
// MAC), three ICMP echo replies from it, and a TCP exchange with the test
// itself — slirp turns the guest's connection to 10.0.2.2 into one to the
// host's loopback, where the test reads the guest's token and answers
// with a fresh one that must come back on the guest's console. Every
// frame crossed the device's DMA into and out of the partition's RAM
// through the IOMMU domain, and each receive was signalled by the
// remapped MSI-X (eth0-rx-0's interrupt count). The partition then
// powers off and the root resets the device and blocks it again.
//
// Without -icount: the guest's timeouts run against a real TCP peer.
func TestIOMMUAssignLinuxE1000e(t *testing.T) {
	img, g := linuxGuest(t)
	t.Parallel()
	spec := initramfs.Spec{
		Busybox: g.Busybox,
		Init:    assignedNICInit,
		Applets: append(append([]string(nil), initramfs.DefaultApplets...), "ip", "ping", "nc", "timeout", "basename", "readlink"),
	}
	g.AddModules(t, &spec, "e1000e")
	initrd := filepath.Join(t.TempDir(), "initrd.cpio")
	if err := spec.WriteFile(initrd); err != nil {
		t.Fatal(err)
	}
	for _, unit := range []string{"intel-iommu", "amd-iommu"} {
		t.Run(unit, func(t *testing.T) {
			peer := newTCPPeer(t)
			token := randomHex(t)
			p := linuxtest.Partition{Name: "nic0", MemoryMiB: 256, Kernel: "vmlinuz", Initrd: "initrd", OnReboot: "stop",
				Cmdline: fmt.Sprintf("%s gohv.ip=%s gohv.gw=%s gohv.port=%d gohv.token=%s", linuxtest.Cmdline, slirpGuestAddr, slirpGateway, peer.port(), token),
				PCI:     []string{e1000eSlot}}
			mods := linuxtest.Modules(t, t.TempDir(), []linuxtest.Partition{p},
				linuxtest.Module{Name: "vmlinuz", Path: g.Kernel}, linuxtest.Module{Name: "initrd", Path: initrd})
			hostQuiet.RLock()
			r := boot(t, qemu.Config{Kernel: img, Modules: qemuModules(mods), Machine: "q35", MemMiB: 512, Timeout: 5 * time.Minute,
				Extra: []string{"-device", unit, "-netdev", "user,id=n0", "-device", "e1000e,netdev=n0,addr=" + strings.TrimPrefix(e1000eSlot, "00:")}})
			hostQuiet.RUnlock()
			t.Logf("QEMU ran %.1f s wall", r.Elapsed.Seconds())
			if !r.Passed() {
				t.Errorf("want verdict PASS: %s", r.Describe())
			}
			checkAssignedNIC(t, r.Log, "nic0", token, peer)
		})
	}
}

// checkAssignedNIC checks the root's and the guest's account of the run.
func checkAssignedNIC(t *testing.T, log []byte, name, token string, peer *tcpPeer) {
	t.Helper()
	b := initramfs.ParseConsole(linuxtest.Lines(log, name))
	rep := b.Report
	if b.Panic != "" {
		t.Errorf("%s: kernel panic: %s", name, b.Panic)
	}
	s := string(log)
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, "gohv: assigned device") || strings.Contains(l, "gohv: PCI device assigned") ||
			strings.HasPrefix(l, name+": guest: ") || strings.Contains(l, "e1000e 0000:00:01.0") {
			t.Log(strings.TrimRight(l, "\r"))
		}
	}
	for _, want := range []string{
		"gohv: PCI device assigned partition=" + name + " device=" + e1000eSlot + " guest=00:01.0",
		"gohv: assigned device MSI routed partition=" + name + " device=" + e1000eSlot,
		"gohv: assigned device MSI-X routed partition=" + name + " device=" + e1000eSlot + " entries=5",
		"gohv: assigned device reset and blocked again partition=" + name + " device=" + e1000eSlot,
		name + ": guest: pci-device 0000:00:01.0 0x8086:0x10d3 e1000e",
		"NIC Link is Up",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("log lacks %q", want)
		}
	}
	for _, bad := range []string{"MSI interrupt test failed", "DMA fault partition=" + name, "interrupt blocked partition=" + name} {
		if strings.Contains(s, bad) {
			t.Errorf("log has %q", bad)
		}
	}
	for _, c := range []struct{ key, want string }{
		{"insmod.e1000e", "ok"},
		{"address", "ok"},
		{"carrier", "up"},
		{"eth0-driver", "e1000e"},
		{"ping-gw", "ok 3/3 " + slirpGateway},
		{"tcp-reply", peer.reply},
		{"nic", "done"},
	} {
		if got, ok := rep[c.key]; !ok {
			t.Errorf("%s: no \"guest: %s\" line", name, c.key)
		} else if got != c.want {
			t.Errorf("%s: guest: %s %q, want %q", name, c.key, got, c.want)
		}
	}
	if n := rep["gw-neigh"]; !strings.Contains(n, "lladdr "+slirpGatewayMAC) {
		t.Errorf("%s: the gateway's neighbour entry %q lacks slirp's MAC %s", name, n, slirpGatewayMAC)
	}
	select {
	case got := <-peer.got:
		if got != "hello "+token {
			t.Errorf("the test's TCP end read %q, want %q", got, "hello "+token)
		}
	default:
		t.Errorf("the guest's TCP connection never reached the test")
	}
	// In MSI-X mode e1000e names its vectors eth0-rx-0, eth0-tx-0 and
	// eth0 (the rest); in MSI mode there is one, eth0.
	rx := ""
	for _, l := range strings.Split(rep["eth0-irq"], ";") {
		if strings.HasSuffix(l, " eth0-rx-0") && strings.Contains(l, "PCI-MSI") {
			rx = l
		}
	}
	if f := strings.Fields(rx); len(f) < 2 {
		t.Errorf("%s: eth0 has no MSI-X receive vector: %q", name, rep["eth0-irq"])
	} else if n, err := strconv.Atoi(f[1]); err != nil || n == 0 {
		t.Errorf("%s: eth0's receive vector took no interrupts: %q", name, rx)
	}
	t.Logf("%s: eth0 interrupt %q; packets rx/tx %s; gateway %s", name, rep["eth0-irq"], rep["eth0-stats"], rep["gw-neigh"])
	if e, ok := linuxtest.EndOf(log, name); !ok || e.State != "stopped" || e.Reason != linuxtest.PoweredOff {
		t.Errorf("%s: %s; want state=stopped reason=%q", name, e.Line, linuxtest.PoweredOff)
	} else {
		t.Logf("%s: partition ran %s; exits %s", name, e.Ran, e.Exits)
	}
	if a, b := strings.Index(s, "assigned device reset and blocked again partition="+name), strings.Index(s, "gohv: partition ended partition="+name); a < 0 || b < 0 || a < b {
		t.Errorf("the device was not released after the partition ended")
	}
}
