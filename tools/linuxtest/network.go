package linuxtest

import (
	"bytes"
	"fmt"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"gohv/tools/debian/initramfs"
)

// The network test's switch, partitions and addresses.
const (
	netSwitch     = "lan0"
	netRootAddr   = "10.0.0.1" // the root partition's port on lan0
	netPrefix     = "/24"
	netServer     = "net0" // listens for the TCP transfer
	netClient     = "net1" // sends it
	netServerAddr = "10.0.0.2"
	netClientAddr = "10.0.0.3"
	netServerMAC  = "00:15:5d:00:00:10" // 00:15:5d: Microsoft's OUI, Hyper-V's own
	netClientMAC  = "00:15:5d:00:00:11"
	netPort       = 5001 // the TCP transfer
	netFinishPort = 5002 // the end handshake
	netBlockSize  = 64 << 10
	netDefaultMiB = 16
	netDefaultMem = 256
)

// netModules are the modules the network guests ask for; Guest.Modules
// adds their dependencies (none but hv_vmbus for hv_netvsc).
var netModules = []string{"hv_vmbus", "hv_netvsc"}

// netApplets are the busybox applets the network init runs beyond
// DefaultApplets. Debian's busybox-static (1.35) has them all; its nc is
// the small one (-l, -p, -w, -e; no -q, -N or -z), and its wget has no
// -T, so timeout bounds it.
var netApplets = []string{"ip", "ping", "nc", "wget", "timeout", "md5sum"}

// NetLink is a piece of a network test guest's /init, after
// initramfs.Prologue has loaded hv_netvsc: shell functions that bring eth0
// up, every wait bounded in guest time.
//
//	now                   guest time in hundredths of a second (/proc/uptime)
//	within SECONDS COND   evaluate COND every 0.2 s until it holds, for at most SECONDS
//	link PREFIX           wait for eth0 (20 s), give it $addr (ADDR/PREFIXLEN), bring it
//	                      up, wait for its carrier (20 s); report "guest: PREFIXeth0
//	                      present <MAC>|missing <interfaces>", "PREFIXaddress ok|failed",
//	                      "PREFIXcarrier up|down"; fail at the first that does not hold
//
// It needs busybox's ip applet (NetApplets).
const NetLink = `# now: guest time in hundredths of a second (/proc/uptime has two decimals).
now() {
	read -r u _ < /proc/uptime
	echo $((${u%.*} * 100 + 1${u#*.} - 100))
}
# within SECONDS CONDITION: evaluate CONDITION every 0.2 s until it holds,
# for at most SECONDS of guest time.
within() {
	end=$(($(now) + $1 * 100))
	until eval "$2"; do
		[ $(now) -lt $end ] || return 1
		sleep 0.2
	done
}
# link PREFIX: wait for eth0, give it its address, bring it up, wait for
# its carrier; report PREFIXeth0, PREFIXaddress, PREFIXcarrier.
link() {
	if ! within 20 '[ -e /sys/class/net/eth0 ]'; then
		echo "guest: ${1}eth0 missing $(ls /sys/class/net | tr '\n' ' ')"
		return 1
	fi
	echo "guest: ${1}eth0 present $(cat /sys/class/net/eth0/address)"
	if ip addr add $addr dev eth0 && ip link set eth0 up; then
		echo "guest: ${1}address ok"
	else
		echo "guest: ${1}address failed"
		return 1
	fi
	if within 20 '[ "$(cat /sys/class/net/eth0/carrier 2>/dev/null)" = 1 ]'; then
		echo "guest: ${1}carrier up"
	else
		echo "guest: ${1}carrier down"
		return 1
	fi
}
`

// NetApplets are the busybox applets NetLink needs beyond
// initramfs.DefaultApplets.
var NetApplets = []string{"ip"}

// netInit is the network guests' /init, the same in both partitions: the
// kernel command line says which it is (gohv.role=server or client,
// gohv.ip, gohv.peer, gohv.root, and on the client gohv.blocks). After
// initramfs.Prologue has loaded hv_vmbus and hv_netvsc it reports, one
// "guest: key value" line each, in steps (every wait bounded in guest
// time, so a failure ends the run instead of hanging it):
//
//  1. eth0 present <MAC> (/sys/class/net/eth0/address) once hv_netvsc has
//     probed the synthetic NIC, within 20 s; or "eth0 missing <the
//     interfaces there are>".
//  2. address ok|failed (ip addr add, ip link set eth0 up), then carrier
//     up|down (/sys/class/net/eth0/carrier within 20 s). Steps 1 and 2 are
//     the link; without it the init reports "net stopped link" and powers
//     off.
//  3. ping-peer and ping-root: "ok 3/3 ADDR" or "failed N/3 ADDR": after up
//     to 30 s for the address to answer a ping at all (the peer may not be
//     up yet), ping -c 3 -W 2, ok when all three replies came.
//  4. The TCP transfer with busybox nc. The client concatenates /etc/block
//     (netBlockSize random bytes the test made) gohv.blocks times into
//     /tmp/send, reports tcp-send-bytes and tcp-send-md5, then connects to
//     the server's port 5001, retrying for up to 60 s while the server is
//     not listening yet: tcp-send ok|failed <nc's complaint>, and
//     tcp-seconds, the guest time (/proc/uptime) of the successful
//     connection. The server listens once (up to 120 s) with nc -e: its
//     stdin is the socket, so the transfer ends when the client has sent
//     everything (nc's own stdin would cut it short: at its EOF nc shuts
//     its side down and the client stops); it reports tcp-recv ok|failed,
//     tcp-recv-bytes and tcp-recv-md5.
//  5. diag ok partitions=net0,net1 bytes=N when wget fetched the root's
//     /partitions (within 30 s) and it names both partitions as JSON
//     strings; "diag failed ..." says what was missing. diag-head is the
//     page's first 200 bytes, for the log.
//  6. The driver's reload: relink-rmmod ok|failed (rmmod hv_netvsc, and
//     eth0 gone), relink-insmod ok|failed (the module again, from the path
//     the Prologue loaded it from), then steps 1 and 2 again as
//     relink-eth0, relink-address and relink-carrier, and relink-ping, a
//     ping of the peer as in step 3.
//  7. The end handshake: the server listens on port 5002 (up to 60 s), the
//     client connects to it (retrying for up to 60 s), each after its step
//     6, so neither powers off while the other still pings it: finish
//     ok|failed. Then "net done", "poweroff", and poweroff -f.
var netInit = `#!/bin/sh
# gohv network test guest /init (tools/linuxtest network.go).
` + initramfs.Prologue + `role= addr= peer= root= blocks=0
for w in $(cat /proc/cmdline); do
	case $w in
	gohv.role=*) role=${w#*=} ;;
	gohv.ip=*) addr=${w#*=} ;;
	gohv.peer=*) peer=${w#*=} ;;
	gohv.root=*) root=${w#*=} ;;
	gohv.blocks=*) blocks=${w#*=} ;;
	esac
done
echo "guest: net-role $role $addr"
` + NetLink + `md5() { md5sum < "$1" | cut -d ' ' -f 1; }
size() { echo $(($(wc -c < "$1"))); }
stop() {
	echo "guest: net stopped $1"
	echo "guest: poweroff"
	poweroff -f
}
# pingcheck KEY ADDR: up to 30 s for ADDR to answer, then ping -c 3 -W 2.
pingcheck() {
	within 30 "ping -c 1 -W 1 $2 > /dev/null 2>&1"
	got=$(ping -c 3 -W 2 $2 2>&1 | sed -n 's/.* \([0-9]*\) packets received.*/\1/p')
	if [ "${got:-0}" = 3 ]; then
		echo "guest: $1 ok ${got}/3 $2"
	else
		echo "guest: $1 failed ${got:-0}/3 $2"
	fi
}
# Steps 1 and 2.
link "" || stop link
# Step 3.
pingcheck ping-peer $peer
pingcheck ping-root $root
# Step 4.
if [ "$role" = server ]; then
	if timeout 120 nc -l -p ` + strconv.Itoa(netPort) + ` -e sh -c 'cat > /tmp/recv'; then
		echo "guest: tcp-recv ok"
	else
		echo "guest: tcp-recv failed"
	fi
	: >> /tmp/recv
	echo "guest: tcp-recv-bytes $(size /tmp/recv)"
	echo "guest: tcp-recv-md5 $(md5 /tmp/recv)"
else
	i=0
	while [ $i -lt $blocks ]; do
		cat /etc/block
		i=$((i + 1))
	done > /tmp/send
	echo "guest: tcp-send-bytes $(size /tmp/send)"
	echo "guest: tcp-send-md5 $(md5 /tmp/send)"
	sent=failed
	deadline=$(($(now) + 6000))
	while :; do
		start=$(now)
		if timeout 120 nc -w 5 $peer ` + strconv.Itoa(netPort) + ` < /tmp/send 2> /tmp/nc.err; then
			sent=ok
			break
		fi
		[ $(now) -lt $deadline ] || break
		sleep 0.5
	done
	t=$(($(now) - start))
	if [ $sent = ok ]; then
		echo "guest: tcp-send ok"
		echo "guest: tcp-seconds $((t / 100)).$((t / 10 % 10))$((t % 10))"
	else
		echo "guest: tcp-send failed $(tr '\n' ' ' < /tmp/nc.err)"
	fi
fi
# Step 5.
if page=$(timeout 30 wget -q -O - http://$root/partitions 2> /tmp/wget.err); then
	echo "guest: diag-head $(echo "$page" | head -c 200 | tr '\n' ' ')"
	missing=
	for p in ` + netServer + ` ` + netClient + `; do
		case $page in
		*\"$p\"*) ;;
		*) missing="$missing $p" ;;
		esac
	done
	if [ -z "$missing" ]; then
		echo "guest: diag ok partitions=` + netServer + `,` + netClient + ` bytes=${#page}"
	else
		echo "guest: diag failed no partition$missing in ${#page} bytes"
	fi
else
	echo "guest: diag failed wget: $(tr '\n' ' ' < /tmp/wget.err)"
fi
# Step 6.
if rmmod hv_netvsc && within 10 '[ ! -e /sys/class/net/eth0 ]'; then
	echo "guest: relink-rmmod ok"
else
	echo "guest: relink-rmmod failed"
fi
if insmod /$(grep '/hv_netvsc\.ko$' /` + initramfs.ModulesList + `); then
	echo "guest: relink-insmod ok"
else
	echo "guest: relink-insmod failed"
fi
if link relink-; then
	pingcheck relink-ping $peer
else
	echo "guest: relink-ping failed no link"
fi
# Step 7.
if [ "$role" = server ]; then
	timeout 60 nc -l -p ` + strconv.Itoa(netFinishPort) + ` -e sh -c 'cat > /tmp/finish'
	f=$(cat /tmp/finish 2> /dev/null)
else
	within 60 "echo finished | nc -w 5 $peer ` + strconv.Itoa(netFinishPort) + ` 2> /dev/null"
	f=finished
fi
if [ "$f" = finished ]; then
	echo "guest: finish ok"
else
	echo "guest: finish failed"
fi
echo "guest: net done"
echo "guest: poweroff"
poweroff -f
`

// NetworkOptions size the network test; the zero value is the full test.
type NetworkOptions struct {
	// TransferMiB is how much the client sends the server over TCP: 16
	// MiB when 0.
	TransferMiB int
	// MemoryMiB is each partition's memory: 256 MiB when 0.
	MemoryMiB int
}

// Network is the network test, the same on both vendors (TestLinuxNetwork
// in tools/imagetest on AMD-V, TestLinuxNetworkVTx in tools/bochstest on
// VT-x): it proves the network path with Linux's own hv_netvsc. Two
// partitions, net0 and net1 (on_reboot = "stop"), each with one NIC of a
// fixed MAC on the switch lan0, where the root partition has 10.0.0.1/24
// and serves its diagnostic page; net0 is 10.0.0.2 and net1 10.0.0.3.
// Each guest (netInit) brings eth0 up, pings the other and the root, net1
// sends net0 16 MiB over TCP, both fetch the root's /partitions, reload
// hv_netvsc and ping the other again, and power off.
//
// Boot Config with Files, then Check the serial log.
type Network struct {
	// Switches and Partitions are the configuration: lan0, net0 and net1.
	Switches   []Switch
	Partitions []Partition
	// Files are the boot modules besides the configuration: the kernel
	// and the initramfs.
	Files []Module

	block  []byte   // /etc/block, what the client sends blocks times
	blocks int      // TransferMiB in blocks
	loaded []string // the modules the guests insmod, as the kernel names them
}

// newNetwork makes the block the client sends, pseudo-random and
// deterministic so a failure repeats, and the partitions.
func newNetwork(o NetworkOptions) *Network {
	if o.TransferMiB == 0 {
		o.TransferMiB = netDefaultMiB
	}
	if o.MemoryMiB == 0 {
		o.MemoryMiB = netDefaultMem
	}
	n := &Network{
		Switches: []Switch{{Name: netSwitch, RootAddress: netRootAddr + netPrefix}},
		block:    randomBytes(5, netBlockSize),
		blocks:   o.TransferMiB << 20 / netBlockSize,
	}
	words := func(role, addr, peer string) string {
		return fmt.Sprintf("%s gohv.role=%s gohv.ip=%s%s gohv.peer=%s gohv.root=%s", Cmdline, role, addr, netPrefix, peer, netRootAddr)
	}
	n.Partitions = []Partition{
		{Name: netServer, MemoryMiB: o.MemoryMiB, Kernel: "vmlinuz", Initrd: "initrd", OnReboot: "stop",
			Cmdline: words("server", netServerAddr, netClientAddr),
			NICs:    []NIC{{Switch: netSwitch, MAC: netServerMAC}}},
		{Name: netClient, MemoryMiB: o.MemoryMiB, Kernel: "vmlinuz", Initrd: "initrd", OnReboot: "stop",
			Cmdline: words("client", netClientAddr, netServerAddr) + " gohv.blocks=" + strconv.Itoa(n.blocks),
			NICs:    []NIC{{Switch: netSwitch, MAC: netClientMAC}}},
	}
	return n
}

// Network writes the network test's initramfs into dir (one the test
// owns) and returns the configuration and boot modules to boot.
func (g *Guest) Network(t testing.TB, dir string, o NetworkOptions) *Network {
	t.Helper()
	n := newNetwork(o)
	spec := initramfs.Spec{
		Busybox: g.Busybox,
		Init:    netInit,
		Applets: append(append([]string(nil), initramfs.DefaultApplets...), netApplets...),
		Files:   []initramfs.File{{Name: "etc/block", Data: n.block}},
	}
	n.loaded = g.AddModules(t, &spec, netModules...)
	initrd := filepath.Join(dir, "initrd.cpio")
	if err := spec.WriteFile(initrd); err != nil {
		t.Fatal(err)
	}
	n.Files = []Module{{Name: "vmlinuz", Path: g.Kernel}, {Name: "initrd", Path: initrd}}
	return n
}

// Config is the configuration's TOML text.
func (n *Network) Config() string { return ConfigWithSwitches(n.Switches, n.Partitions...) }

// TransferBytes is how much the client sends the server.
func (n *Network) TransferBytes() int { return n.blocks * netBlockSize }

// transfer is what the client sends: the block, blocks times.
func (n *Network) transfer() []byte { return bytes.Repeat(n.block, n.blocks) }

// NetworkFigures are the figures of a network run worth noting.
type NetworkFigures struct {
	// TCPSeconds is the client's guest time for the transfer (its
	// /proc/uptime, to a hundredth of a second); 0 when it did not report
	// one.
	TCPSeconds float64
	// Ends are gohv's account of each partition's end, by name.
	Ends map[string]Ended
}

// MiBPerSecond is the transfer's rate by the client's clock, 0 without
// one.
func (f NetworkFigures) MiBPerSecond(n *Network) float64 {
	if f.TCPSeconds <= 0 {
		return 0
	}
	return float64(n.TransferBytes()) / (1 << 20) / f.TCPSeconds
}

// netConnected is gohv's side of the VMBus connection, in each partition.
func netConnected(name string) *regexp.Regexp {
	return regexp.MustCompile(`(?m)^gohv: vmbus: connected partition=` + name + ` version=5\.3\b`)
}

// Check judges the run's serial log (the caller judges the verdict). For
// each partition: gohv connected its VMBus; the guest ran /init without a
// panic and loaded every module; and each step of netInit held — eth0
// with the configured MAC, its address and carrier; replies from the
// peer and the root; the transfer's bytes and MD5 those the test made, on
// both sides; the root's /partitions naming both partitions; after the
// reload of hv_netvsc, eth0 back with the same MAC and the peer answering
// again; the end handshake — and it reported "net done" and powered off
// through ACPI S5. Each problem names the partition and the step. It
// prints nothing and returns the figures.
func (n *Network) Check(t testing.TB, log []byte) NetworkFigures {
	t.Helper()
	f, problems := n.judge(log)
	for _, p := range problems {
		t.Error(p)
	}
	return f
}

// netCheck is one line a step of netInit must print: its key, and the
// value wanted (exactly, or as a prefix when prefix is set).
type netCheck struct {
	key, want string
	prefix    bool
}

// netStep is one of netInit's steps as one partition must report it.
type netStep struct {
	n      int
	what   string
	checks []netCheck
}

// steps are the steps partition name (with its MAC, peer and role) must
// report.
func (n *Network) steps(mac, peer string, server bool) []netStep {
	sum := md5Hex(n.transfer())
	size := strconv.Itoa(n.TransferBytes())
	link := func(pre string) []netCheck {
		return []netCheck{
			{key: pre + "eth0", want: "present " + mac},
			{key: pre + "address", want: "ok"},
			{key: pre + "carrier", want: "up"},
		}
	}
	tcp := []netCheck{{key: "tcp-send-bytes", want: size}, {key: "tcp-send-md5", want: sum}, {key: "tcp-send", want: "ok"}}
	if server {
		tcp = []netCheck{{key: "tcp-recv", want: "ok"}, {key: "tcp-recv-bytes", want: size}, {key: "tcp-recv-md5", want: sum}}
	}
	return []netStep{
		{1, "eth0", link("")[:1]},
		{2, "address and carrier", link("")[1:]},
		{3, "ping", []netCheck{{key: "ping-peer", want: "ok 3/3 " + peer}, {key: "ping-root", want: "ok 3/3 " + netRootAddr}}},
		{4, "TCP transfer", tcp},
		{5, "diagnostic page", []netCheck{{key: "diag", want: "ok partitions=" + netServer + "," + netClient + " ", prefix: true}}},
		{6, "reload of hv_netvsc", append(append([]netCheck{{key: "relink-rmmod", want: "ok"}, {key: "relink-insmod", want: "ok"}},
			link("relink-")...), netCheck{key: "relink-ping", want: "ok 3/3 " + peer})},
		{7, "end handshake", []netCheck{{key: "finish", want: "ok"}}},
	}
}

// judge reads both partitions' reports off log and says what is wrong,
// one sentence each.
func (n *Network) judge(log []byte) (NetworkFigures, []string) {
	var out []string
	f := NetworkFigures{Ends: map[string]Ended{}}
	for _, p := range []struct {
		name, mac, peer string
		server          bool
	}{
		{netServer, netServerMAC, netClientAddr, true},
		{netClient, netClientMAC, netServerAddr, false},
	} {
		role := map[bool]string{true: "server", false: "client"}[p.server]
		bad := func(format string, args ...any) {
			out = append(out, fmt.Sprintf("%s (%s): ", p.name, role)+fmt.Sprintf(format, args...))
		}
		if !netConnected(p.name).Match(log) {
			bad("log has no line matching %q", netConnected(p.name))
		}
		b := initramfs.ParseConsole(Lines(log, p.name))
		if !b.HasRunInit || b.Init != "/init" {
			bad("no \"Run /init as init process\" line")
		}
		if b.Panic != "" {
			bad("kernel panic: %s", b.Panic)
		}
		for _, m := range n.loaded {
			if got := b.Report["insmod."+m]; got != "ok" {
				bad("guest: insmod.%s %q, want ok", m, got)
			}
		}
	steps:
		for _, s := range n.steps(p.mac, p.peer, p.server) {
			for _, c := range s.checks {
				got, ok := b.Report[c.key]
				switch {
				case !ok:
					why := "the init got no further"
					if v, ok := b.Report["net"]; ok && v != "done" {
						why = "guest: net " + v
					}
					bad("step %d (%s): no \"guest: %s\" line (%s)", s.n, s.what, c.key, why)
					break steps
				case c.prefix && !strings.HasPrefix(got, c.want), !c.prefix && !strings.EqualFold(got, c.want):
					bad("step %d (%s): guest: %s %q, want %q", s.n, s.what, c.key, got, c.want+map[bool]string{true: "...", false: ""}[c.prefix])
				}
			}
		}
		if !p.server {
			if v, ok := b.Report["tcp-seconds"]; ok {
				if s, err := strconv.ParseFloat(v, 64); err == nil {
					f.TCPSeconds = s
				} else {
					bad("step 4 (TCP transfer): guest: tcp-seconds %q is not a number", v)
				}
			}
		}
		if got := b.Report["net"]; got != "done" {
			bad("the init did not get to \"guest: net done\" (guest: net %q)", got)
		}
		if !b.PoweredOff() {
			bad("the init did not get to \"guest: poweroff\"")
		}
		e, ok := EndOf(log, p.name)
		f.Ends[p.name] = e
		switch {
		case !ok:
			bad("no \"gohv: partition ended\" line")
		case e.State != "stopped" || e.Reason != PoweredOff:
			bad("%s; want state=stopped reason=%q", e.Line, PoweredOff)
		}
	}
	return f, out
}

// NICClosed is gohv's "netvsp: channel closed" event for one NIC of a
// partition (root/worker), logged when the guest closes the NIC's channel
// — at its power-off, or when hv_netvsc is unloaded: the frames the VSP
// carried each way and the SynIC signals its channel took.
type NICClosed struct {
	NIC                              int
	TxFrames, RxFrames               int // from the guest, to the guest
	TxDropped, RxDropped             int
	SignalsToGuest, SignalsFromGuest int
	Line                             string // the whole line
}

// Frames is the frames the NIC carried, both ways.
func (c NICClosed) Frames() int { return c.TxFrames + c.RxFrames }

// Signals is the SynIC signals its channel took, both ways.
func (c NICClosed) Signals() int { return c.SignalsToGuest + c.SignalsFromGuest }

var nicClosedRE = regexp.MustCompile(`^gohv: netvsp: channel closed (.*)$`)

// NICClosedOf returns partition name's "netvsp: channel closed" events in
// the order logged (a NIC whose driver was reloaded has one per open), or
// an error naming a line whose counts are not numbers.
func NICClosedOf(log []byte, name string) ([]NICClosed, error) {
	var out []NICClosed
	for _, l := range strings.Split(string(log), "\n") {
		l = strings.TrimRight(l, "\r")
		m := nicClosedRE.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		kv := attrs(m[1])
		if kv["partition"] != name {
			continue
		}
		c := NICClosed{Line: l}
		for _, f := range []struct {
			key string
			v   *int
		}{
			{"nic", &c.NIC}, {"tx_frames", &c.TxFrames}, {"rx_frames", &c.RxFrames},
			{"tx_dropped", &c.TxDropped}, {"rx_dropped", &c.RxDropped},
			{"signals_to_guest", &c.SignalsToGuest}, {"signals_from_guest", &c.SignalsFromGuest},
		} {
			n, err := strconv.Atoi(kv[f.key])
			if err != nil || n < 0 {
				return nil, fmt.Errorf("linuxtest: %q: %s is not a count", l, f.key)
			}
			*f.v = n
		}
		out = append(out, c)
	}
	return out, nil
}
