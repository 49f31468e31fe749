// Command guestnet measures the network path from inside a Linux guest:
// TCP bandwidth to a peer partition or to the root's discard service, the
// rate of small UDP datagrams and TCP request/response latency. It is
// built for linux/amd64 at test time and put in a test guest's initramfs
// (tools/imagetest's BenchmarkLinuxNetwork); it prints "guest: net.<what>
// <value>" lines for the host to read off the serial console. The clock
// is the guest's own (CLOCK_MONOTONIC): under QEMU's -icount, guest time.
//
// One mode a run:
//
//	guestnet -send ADDR:PORT -mib N   TCP: write N MiB, close the write side, wait for the peer's EOF
//	guestnet -recv PORT               TCP: accept once, read to EOF, close (the sink for -send)
//	guestnet -udp ADDR:PORT -count N  UDP: N datagrams of -size bytes, as fast as the socket takes them
//	guestnet -udp-sink PORT           UDP: count what arrives until a quiet period after the sender's end
//	guestnet -rr ADDR:PORT -count N   TCP: N round trips of 1 byte; median and 99th percentile
//	guestnet -echo PORT               TCP: accept once, send back what arrives until EOF
//
// -udp and -udp-sink also talk TCP on the same port: the sender connects
// first (so it never sends before the sink listens) and, once done, writes
// how many datagrams it sent, so the sink can report the loss. Every wait
// is bounded by -timeout; a failure prints "guest: net.error <why>" and
// exits 1.
package main

import (
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"time"
)

func main() {
	send := flag.String("send", "", "TCP: send -mib MiB to ADDR:PORT")
	recv := flag.Int("recv", 0, "TCP: receive one transfer on PORT")
	udp := flag.String("udp", "", "UDP: send -count datagrams to ADDR:PORT")
	sink := flag.Int("udp-sink", 0, "UDP: count the datagrams arriving on PORT")
	rr := flag.String("rr", "", "TCP: -count 1-byte round trips with ADDR:PORT")
	echo := flag.Int("echo", 0, "TCP: echo one connection on PORT")
	mib := flag.Int("mib", 16, "MiB to send (-send)")
	count := flag.Int("count", 10000, "datagrams (-udp) or round trips (-rr)")
	size := flag.Int("size", 64, "UDP payload bytes (-udp)")
	key := flag.String("key", "tcp-send", "the report's key for -send: guest: net.<key>-mib-s")
	quiet := flag.Duration("quiet", 500*time.Millisecond, "how long -udp-sink waits for stragglers after the sender's end")
	timeout := flag.Duration("timeout", 120*time.Second, "the bound on every wait")
	flag.Parse()

	deadline := time.Now().Add(*timeout)
	var err error
	switch {
	case *send != "":
		err = sendTCP(os.Stdout, *send, *key, int64(*mib)<<20, deadline)
	case *recv != 0:
		err = withListener(*recv, func(ln net.Listener) error { return recvTCP(os.Stdout, ln, deadline) })
	case *udp != "":
		err = sendUDP(os.Stdout, *udp, *count, *size, deadline)
	case *sink != 0:
		// The UDP socket first: the sender sends once the TCP
		// connection is up.
		var pc net.PacketConn
		if pc, err = net.ListenPacket("udp", ":"+strconv.Itoa(*sink)); err == nil {
			err = withListener(*sink, func(ln net.Listener) error { return sinkUDP(os.Stdout, ln, pc, *quiet, deadline) })
			pc.Close()
		}
	case *rr != "":
		err = roundTrips(os.Stdout, *rr, *count, deadline)
	case *echo != 0:
		err = withListener(*echo, func(ln net.Listener) error { return echoTCP(os.Stdout, ln, deadline) })
	default:
		err = fmt.Errorf("no mode: one of -send, -recv, -udp, -udp-sink, -rr, -echo")
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "guestnet: %v\n", err)
		fmt.Printf("guest: net.error %v\n", err)
		os.Exit(1)
	}
}

// withListener runs f with a TCP listener on port, closed after.
func withListener(port int, f func(net.Listener) error) error {
	ln, err := net.Listen("tcp", ":"+strconv.Itoa(port))
	if err != nil {
		return err
	}
	defer ln.Close()
	return f(ln)
}

// dial connects to addr over TCP, retrying every 200 ms until deadline
// while the peer is not listening yet (it may still be booting).
func dial(addr string, deadline time.Time) (*net.TCPConn, error) {
	for {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err == nil {
			return c.(*net.TCPConn), nil
		}
		if time.Now().Add(200 * time.Millisecond).After(deadline) {
			return nil, fmt.Errorf("connect %s: %w", addr, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// accept takes one connection from ln, waiting until deadline.
func accept(ln net.Listener, deadline time.Time) (net.Conn, error) {
	if d, ok := ln.(interface{ SetDeadline(time.Time) error }); ok {
		d.SetDeadline(deadline)
	}
	c, err := ln.Accept()
	if err != nil {
		return nil, fmt.Errorf("accept on %s: %w", ln.Addr(), err)
	}
	c.SetDeadline(deadline)
	return c, nil
}

// mibps is n bytes over d in MiB/s.
func mibps(n int64, d time.Duration) float64 { return float64(n) / (1 << 20) / d.Seconds() }

// drain reads r to EOF and returns how many bytes it read.
func drain(r io.Reader) (int64, error) {
	buf := make([]byte, 256<<10)
	return io.CopyBuffer(io.Discard, struct{ io.Reader }{r}, buf)
}
