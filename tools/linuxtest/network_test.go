package linuxtest

import (
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"testing"
)

// netInit prints every key Check reads, in the form Check reads it.
func TestNetInitPrintsWhatCheckReads(t *testing.T) {
	n := newNetwork(NetworkOptions{})
	for _, server := range []bool{true, false} {
		for _, s := range n.steps(netServerMAC, netClientAddr, server) {
			for _, c := range s.checks {
				key := c.key
				if k, ok := strings.CutPrefix(key, "relink-"); ok && (k == "eth0" || k == "address" || k == "carrier") {
					key = k // link relink- prints them
				}
				printed := strings.Contains(netInit, `echo "guest: `+key+` `) ||
					strings.Contains(netInit, `echo "guest: ${1}`+key+` `) ||
					strings.Contains(netInit, "pingcheck "+key+" ")
				if !printed {
					t.Errorf("step %d: netInit prints no %q line", s.n, c.key)
				}
			}
		}
	}
	for _, s := range []string{
		`echo "guest: net done"`, `echo "guest: poweroff"`, `echo "guest: tcp-seconds `,
		`echo "guest: $1 ok ${got}/3 $2"`, // pingcheck's ok, as steps want it
		`link "" || stop link`, `link relink-; then`,
		`echo "guest: ${1}eth0 present $(cat /sys/class/net/eth0/address)"`,
		`diag ok partitions=` + netServer + `,` + netClient + ` bytes=`,
		`insmod /$(grep '/hv_netvsc\.ko$' /etc/modules.load)`,
		`cat /etc/block`, // what transfer repeats
		"-p " + strconv.Itoa(netPort) + " -e sh -c 'cat > /tmp/recv'",
		"$peer " + strconv.Itoa(netPort) + " < /tmp/send",
	} {
		if !strings.Contains(netInit, s) {
			t.Errorf("netInit lacks %q", s)
		}
	}
}

// netInit is a shell script the host's sh can parse (busybox ash reads
// the same syntax).
func TestNetInitParses(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh on the host")
	}
	cmd := exec.Command(sh, "-n")
	cmd.Stdin = strings.NewReader(netInit)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("sh -n: %v\n%s", err, out)
	}
}

// The configuration: one switch with the root's port, two partitions with
// one NIC each on it, and the command lines netInit reads.
func TestNetworkConfig(t *testing.T) {
	n := newNetwork(NetworkOptions{})
	want := `# written by gohv/tools/linuxtest

[[switch]]
name = "lan0"
root_address = "10.0.0.1/24"

[[partition]]
name = "net0"
memory_mib = 256
kernel = "vmlinuz"
initrd = "initrd"
cmdline = "console=ttyS0 panic=-1 gohv.role=server gohv.ip=10.0.0.2/24 gohv.peer=10.0.0.3 gohv.root=10.0.0.1"
on_reboot = "stop"

[[partition.nic]]
switch = "lan0"
mac = "00:15:5d:00:00:10"

[[partition]]
name = "net1"
memory_mib = 256
kernel = "vmlinuz"
initrd = "initrd"
cmdline = "console=ttyS0 panic=-1 gohv.role=client gohv.ip=10.0.0.3/24 gohv.peer=10.0.0.2 gohv.root=10.0.0.1 gohv.blocks=256"
on_reboot = "stop"

[[partition.nic]]
switch = "lan0"
mac = "00:15:5d:00:00:11"
`
	if got := n.Config(); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	if n.TransferBytes() != 16<<20 {
		t.Errorf("transfer %d bytes, want 16 MiB", n.TransferBytes())
	}
	small := newNetwork(NetworkOptions{TransferMiB: 4, MemoryMiB: 128})
	if small.TransferBytes() != 4<<20 || !strings.HasSuffix(small.Partitions[1].Cmdline, " gohv.blocks=64") ||
		small.Partitions[0].MemoryMiB != 128 || small.Partitions[1].MemoryMiB != 128 {
		t.Errorf("4 MiB in 128 MiB partitions: %d bytes, %+v", small.TransferBytes(), small.Partitions)
	}
}

// netLog is the serial log of a network run that went right, both
// partitions' lines interleaved as gohv's console carries them.
func netLog(n *Network, edit func(string) string) []byte {
	sum := md5Hex(n.transfer())
	size := strconv.Itoa(n.TransferBytes())
	part := func(name, role, addr, mac, peer string) []string {
		l := []string{
			name + ": [    0.912345] Run /init as init process",
			"gohv: vmbus: connected partition=" + name + " version=5.3 target_vp=0",
		}
		for _, m := range n.loaded {
			l = append(l, name+": guest: insmod."+m+" ok")
		}
		l = append(l,
			name+": guest: net-role "+role+" "+addr+"/24",
			name+": [    1.2] hv_netvsc 000d3a00-0000-0000-0000-000000000000 eth0: VF slot 1 added",
			name+": guest: eth0 present "+mac,
			name+": guest: address ok",
			name+": guest: carrier up",
			name+": guest: ping-peer ok 3/3 "+peer,
			name+": guest: ping-root ok 3/3 10.0.0.1")
		if role == "server" {
			l = append(l, name+": guest: tcp-recv ok", name+": guest: tcp-recv-bytes "+size, name+": guest: tcp-recv-md5 "+sum)
		} else {
			l = append(l, name+": guest: tcp-send-bytes "+size, name+": guest: tcp-send-md5 "+sum,
				name+": guest: tcp-send ok", name+": guest: tcp-seconds 2.50")
		}
		return append(l,
			name+`: guest: diag-head [{"name":"net0","state":"running"},{"name":"net1","state":"running"}]`,
			name+": guest: diag ok partitions=net0,net1 bytes=70",
			name+": guest: relink-rmmod ok",
			name+": guest: relink-insmod ok",
			name+": guest: relink-eth0 present "+mac,
			name+": guest: relink-address ok",
			name+": guest: relink-carrier up",
			name+": guest: relink-ping ok 3/3 "+peer,
			name+": guest: finish ok",
			name+": guest: net done",
			name+": guest: poweroff",
			"gohv: partition ended partition="+name+` state=stopped reason="power-off: ACPI S5" ran=9.5s exits=io:40000`)
	}
	// The two boots interleave line by line, then each guest's steps come
	// whole (so a case can edit consecutive lines of one), then the ends.
	s := part(netServer, "server", netServerAddr, netServerMAC, netClientAddr)
	c := part(netClient, "client", netClientAddr, netClientMAC, netServerAddr)
	boot := 3 + len(n.loaded) // up to the hv_netvsc line
	lines := []string{"gohv: configuration from the configuration module: 2 partitions"}
	for i := range boot {
		lines = append(lines, s[i], c[i])
	}
	lines = append(lines, s[boot:len(s)-1]...)
	lines = append(lines, c[boot:len(c)-1]...)
	lines = append(lines, s[len(s)-1], c[len(c)-1], "gohv: verdict PASS")
	log := strings.Join(lines, "\r\n") + "\r\n"
	if edit != nil {
		log = edit(log)
	}
	return []byte(log)
}

// Check passes the network run that went right and names the partition
// and step of what went wrong in ones that did not.
func TestNetworkCheck(t *testing.T) {
	n := newNetwork(NetworkOptions{TransferMiB: 1})
	n.loaded = []string{"hv_vmbus", "hv_netvsc"}
	f, p := n.judge(netLog(n, nil))
	if len(p) != 0 {
		t.Fatalf("a good run: %q", p)
	}
	if f.TCPSeconds != 2.5 || f.MiBPerSecond(n) != 0.4 || f.Ends[netServer].Reason != PoweredOff || f.Ends[netClient].Reason != PoweredOff {
		t.Errorf("a good run's figures: %+v", f)
	}
	other := md5Hex([]byte("not the transfer"))
	for _, c := range []struct {
		name      string
		from, to  string
		nth       int // which occurrence of from, counting from 1
		wantAmong string
	}{
		{"no VMBus", "gohv: vmbus: connected partition=net1", "gohv: vmbus: refused partition=net1", 1,
			`net1 (client): log has no line matching "(?m)^gohv: vmbus: connected partition=net1`},
		{"insmod failed", "net0: guest: insmod.hv_netvsc ok", "net0: guest: insmod.hv_netvsc failed", 1, `net0 (server): guest: insmod.hv_netvsc "failed", want ok`},
		{"missing eth0", "net0: guest: eth0 present " + netServerMAC, "net0: guest: eth0 missing lo \r\nnet0: guest: net stopped link", 1,
			`net0 (server): step 1 (eth0): guest: eth0 "missing lo", want "present 00:15:5d:00:00:10"`},
		{"no eth0 line", "net1: guest: eth0 present " + netClientMAC + "\r\n", "", 1, `net1 (client): step 1 (eth0): no "guest: eth0" line (the init got no further)`},
		{"wrong MAC", "net1: guest: eth0 present " + netClientMAC, "net1: guest: eth0 present 00:15:5d:00:00:99", 1, `net1 (client): step 1 (eth0): guest: eth0 "present 00:15:5d:00:00:99"`},
		{"MAC in capitals", "net1: guest: eth0 present " + netClientMAC, "net1: guest: eth0 present " + strings.ToUpper(netClientMAC), 1, ""},
		{"no carrier", "net1: guest: carrier up", "net1: guest: carrier down", 1, `net1 (client): step 2 (address and carrier): guest: carrier "down", want "up"`},
		{"ping failed", "net0: guest: ping-peer ok 3/3 10.0.0.3", "net0: guest: ping-peer failed 0/3 10.0.0.3", 1, `net0 (server): step 3 (ping): guest: ping-peer "failed 0/3 10.0.0.3"`},
		{"ping lost one", "net1: guest: ping-peer ok 3/3 10.0.0.2", "net1: guest: ping-peer failed 2/3 10.0.0.2", 1, `net1 (client): step 3 (ping): guest: ping-peer "failed 2/3 10.0.0.2"`},
		{"root silent", "net1: guest: ping-root ok 3/3 10.0.0.1", "net1: guest: ping-root failed 0/3 10.0.0.1", 1, `net1 (client): step 3 (ping): guest: ping-root "failed 0/3 10.0.0.1"`},
		{"md5 mismatch", "net0: guest: tcp-recv-md5 " + md5Hex(n.transfer()), "net0: guest: tcp-recv-md5 " + other, 1, `net0 (server): step 4 (TCP transfer): guest: tcp-recv-md5 "` + other + `"`},
		{"short receive", "tcp-recv-bytes " + strconv.Itoa(n.TransferBytes()), "tcp-recv-bytes 10240", 1, `net0 (server): step 4 (TCP transfer): guest: tcp-recv-bytes "10240"`},
		{"sender's data wrong", "net1: guest: tcp-send-md5 " + md5Hex(n.transfer()), "net1: guest: tcp-send-md5 " + other, 1, `net1 (client): step 4 (TCP transfer): guest: tcp-send-md5`},
		{"never connected", "net1: guest: tcp-send ok", "net1: guest: tcp-send failed nc: can't connect to remote host (10.0.0.2): Connection refused ", 1,
			`net1 (client): step 4 (TCP transfer): guest: tcp-send "failed nc: can't connect`},
		{"server timed out", "net0: guest: tcp-recv ok", "net0: guest: tcp-recv failed", 1, `net0 (server): step 4 (TCP transfer): guest: tcp-recv "failed", want "ok"`},
		{"bad seconds", "tcp-seconds 2.50", "tcp-seconds soon", 1, `net1 (client): step 4 (TCP transfer): guest: tcp-seconds "soon" is not a number`},
		{"no diag", "net0: guest: diag ok partitions=net0,net1 bytes=70", "net0: guest: diag failed wget: wget: can't connect to remote host (10.0.0.1): Connection refused ", 1,
			`net0 (server): step 5 (diagnostic page): guest: diag "failed wget: wget: can't connect`},
		{"diag without a partition", "net1: guest: diag ok partitions=net0,net1 bytes=70", "net1: guest: diag failed no partition net1 in 35 bytes", 1,
			`net1 (client): step 5 (diagnostic page): guest: diag "failed no partition net1 in 35 bytes", want "ok partitions=net0,net1 ..."`},
		{"rmmod failed", "net0: guest: relink-rmmod ok", "net0: guest: relink-rmmod failed", 1, `net0 (server): step 6 (reload of hv_netvsc): guest: relink-rmmod "failed"`},
		{"reload lost eth0", "net1: guest: relink-eth0 present " + netClientMAC + "\r\nnet1: guest: relink-address ok\r\nnet1: guest: relink-carrier up\r\nnet1: guest: relink-ping ok 3/3 10.0.0.2",
			"net1: guest: relink-eth0 missing lo \r\nnet1: guest: relink-ping failed no link", 1,
			`net1 (client): step 6 (reload of hv_netvsc): guest: relink-eth0 "missing lo", want "present 00:15:5d:00:00:11"`},
		{"relink failed", "net1: guest: relink-ping ok 3/3 10.0.0.2", "net1: guest: relink-ping failed 0/3 10.0.0.2", 1, `net1 (client): step 6 (reload of hv_netvsc): guest: relink-ping "failed 0/3 10.0.0.2"`},
		{"relink other MAC", "net0: guest: relink-eth0 present " + netServerMAC, "net0: guest: relink-eth0 present 00:15:5d:00:00:12", 1, `net0 (server): step 6 (reload of hv_netvsc): guest: relink-eth0 "present 00:15:5d:00:00:12"`},
		{"no finish", "net0: guest: finish ok", "net0: guest: finish failed", 1, `net0 (server): step 7 (end handshake): guest: finish "failed"`},
		{"no net done", "net1: guest: net done\r\n", "", 1, `net1 (client): the init did not get to "guest: net done"`},
		{"no poweroff", "net0: guest: poweroff\r\n", "", 1, `net0 (server): the init did not get to "guest: poweroff"`},
		{"panic", "net1: guest: poweroff\r\n", "net1: Kernel panic - not syncing: Attempted to kill init! exitcode=0x00000100\r\n", 1, "net1 (client): kernel panic: Attempted to kill init!"},
		{"crashed", `partition=net0 state=stopped reason="power-off: ACPI S5"`, `partition=net0 state=crashed reason="triple fault"`, 1, `net0 (server): gohv: partition ended partition=net0 state=crashed`},
		{"no end", `gohv: partition ended partition=net1 state=stopped reason="power-off: ACPI S5" ran=9.5s exits=io:40000` + "\r\n", "", 1, `net1 (client): no "gohv: partition ended" line`},
	} {
		t.Run(c.name, func(t *testing.T) {
			log := netLog(n, func(l string) string {
				out, ok := replaceNth(l, c.from, c.to, c.nth)
				if !ok {
					t.Fatalf("the good log has no occurrence %d of %q", c.nth, c.from)
				}
				return out
			})
			_, p := n.judge(log)
			all := strings.Join(p, "\n")
			if c.wantAmong == "" {
				if len(p) != 0 {
					t.Errorf("problems %q: want none", p)
				}
				return
			}
			if !strings.Contains(all, c.wantAmong) {
				t.Errorf("problems %q: want one about %q", p, c.wantAmong)
			}
			// The other partition is not blamed for this one's failure.
			other := map[bool]string{true: netClient, false: netServer}[strings.HasPrefix(c.wantAmong, netServer)]
			for _, q := range p {
				if strings.HasPrefix(q, other+" ") {
					t.Errorf("problem %q blames %s", q, other)
				}
			}
		})
	}
}

// The first missing line of a partition that stopped is the only step
// problem reported for it: later steps are not listed as missing too.
func TestNetworkCheckStopsAtTheFirstMissingLine(t *testing.T) {
	n := newNetwork(NetworkOptions{})
	log := netLog(n, func(l string) string {
		i := strings.Index(l, "net1: guest: eth0 present")
		j := strings.Index(l, "net1: guest: poweroff")
		return l[:i] + "net1: guest: eth0 missing lo \r\nnet1: guest: net stopped link\r\n" + l[j:]
	})
	_, p := n.judge(log)
	var steps []string
	for _, q := range p {
		if strings.HasPrefix(q, "net1 (client): step ") {
			steps = append(steps, q)
		}
	}
	want := []string{
		`net1 (client): step 1 (eth0): guest: eth0 "missing lo", want "present 00:15:5d:00:00:11"`,
		`net1 (client): step 2 (address and carrier): no "guest: address" line (guest: net stopped link)`,
	}
	if fmt.Sprint(steps) != fmt.Sprint(want) {
		t.Errorf("step problems\n%q\nwant\n%q\n(all: %q)", steps, want, p)
	}
}

// NICClosedOf reads root/worker's "netvsp: channel closed" lines of one
// partition, and refuses one whose counts are not numbers.
func TestNICClosedOf(t *testing.T) {
	log := []byte("gohv: netvsp: channel closed partition=net0 nic=0 tx_frames=10 rx_frames=20 tx_dropped=0 rx_dropped=1 tx_malformed=0 signals_to_guest=7 signals_from_guest=9\r\n" +
		"gohv: netvsp: channel closed partition=net1 nic=0 tx_frames=1 rx_frames=2 tx_dropped=0 rx_dropped=0 tx_malformed=0 signals_to_guest=3 signals_from_guest=4\n" +
		"net0: gohv: netvsp: channel closed partition=net0 nic=5\n" +
		"gohv: netvsp: channel closed partition=net0 nic=1 tx_frames=3 rx_frames=4 tx_dropped=2 rx_dropped=0 tx_malformed=0 signals_to_guest=5 signals_from_guest=6\n")
	got, err := NICClosedOf(log, "net0")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("got %d events, want 2: %+v", len(got), got)
	}
	if c := got[0]; c.NIC != 0 || c.TxFrames != 10 || c.RxFrames != 20 || c.RxDropped != 1 || c.Frames() != 30 || c.Signals() != 16 {
		t.Errorf("first %+v", c)
	}
	if c := got[1]; c.NIC != 1 || c.TxDropped != 2 || c.SignalsToGuest != 5 || c.SignalsFromGuest != 6 {
		t.Errorf("second %+v", c)
	}
	bad := []byte("gohv: netvsp: channel closed partition=net0 nic=0 tx_frames=x\n")
	if _, err := NICClosedOf(bad, "net0"); err == nil {
		t.Error("a line without counts is not an error")
	}
}
