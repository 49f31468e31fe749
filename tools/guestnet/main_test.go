package main

import (
	"bytes"
	"net"
	"regexp"
	"strconv"
	"sync"
	"testing"
	"time"
)

// serve runs a mode's server side on a loopback listener in the
// background; wait returns its output and error.
func serve(t *testing.T, f func(*bytes.Buffer, net.Listener) error) (addr string, wait func() (string, error)) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	var ferr error
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer ln.Close()
		ferr = f(&out, ln)
	}()
	return ln.Addr().String(), func() (string, error) { wg.Wait(); return out.String(), ferr }
}

func wantLine(t *testing.T, out, re string) []string {
	t.Helper()
	m := regexp.MustCompile(re).FindStringSubmatch(out)
	if m == nil {
		t.Errorf("no line matching %s in\n%s", re, out)
	}
	return m
}

func soon() time.Time { return time.Now().Add(10 * time.Second) }

// -send writes every byte, -recv reads them all to EOF, and each reports
// its rate; the sender's time runs to the receiver's close.
func TestSendRecv(t *testing.T) {
	addr, wait := serve(t, func(out *bytes.Buffer, ln net.Listener) error { return recvTCP(out, ln, soon()) })
	var out bytes.Buffer
	if err := sendTCP(&out, addr, "tcp-send", 3<<20+5, soon()); err != nil {
		t.Fatal(err)
	}
	got, err := wait()
	if err != nil {
		t.Fatal(err)
	}
	wantLine(t, out.String(), `^guest: net\.tcp-send-mib-s [0-9.]+ \(3145733 bytes in [0-9.]+ s to 127\.0\.0\.1:\d+\)\n$`)
	wantLine(t, got, `(?m)^guest: net\.tcp-recv-mib-s [0-9.]+ \(3145733 bytes in `)
	wantLine(t, got, `(?m)^guest: net\.tcp-recv-bytes 3145733$`)
}

// -key names the report, so one guest can send to two places.
func TestSendKey(t *testing.T) {
	addr, wait := serve(t, func(out *bytes.Buffer, ln net.Listener) error { return recvTCP(out, ln, soon()) })
	var out bytes.Buffer
	if err := sendTCP(&out, addr, "tcp-send-root", 1<<20, soon()); err != nil {
		t.Fatal(err)
	}
	wait()
	wantLine(t, out.String(), `^guest: net\.tcp-send-root-mib-s [0-9.]+ \(1048576 bytes`)
}

// -send retries while nothing listens, up to its deadline, and then says
// where it could not connect.
func TestSendRetriesThenGivesUp(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	start := time.Now()
	err = sendTCP(&bytes.Buffer{}, addr, "tcp-send", 1, time.Now().Add(700*time.Millisecond))
	if err == nil || !regexp.MustCompile(`^connect 127\.0\.0\.1:\d+: `).MatchString(err.Error()) {
		t.Errorf("err %v, want connect ...", err)
	}
	if d := time.Since(start); d < 400*time.Millisecond || d > 3*time.Second {
		t.Errorf("gave up after %v, want about 0.7 s", d)
	}

	// A listener that comes up late is found.
	late := make(chan string)
	go func() {
		time.Sleep(500 * time.Millisecond)
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			late <- err.Error()
			return
		}
		defer ln.Close()
		var out bytes.Buffer
		recvTCP(&out, ln, soon())
		late <- out.String()
	}()
	if err := sendTCP(&bytes.Buffer{}, addr, "tcp-send", 4096, soon()); err != nil {
		t.Fatal(err)
	}
	wantLine(t, <-late, `(?m)^guest: net\.tcp-recv-bytes 4096$`)
}

// -udp's datagrams reach -udp-sink, which counts them all (loopback loses
// none at this size) and reports the rate and 0 % loss.
func TestUDP(t *testing.T) {
	addr, wait := serve(t, func(out *bytes.Buffer, ln net.Listener) error {
		port := ln.Addr().(*net.TCPAddr).Port
		pc, err := net.ListenPacket("udp", "127.0.0.1:"+strconv.Itoa(port))
		if err != nil {
			return err
		}
		defer pc.Close()
		return sinkUDP(out, ln, pc, 300*time.Millisecond, soon())
	})
	var out bytes.Buffer
	if err := sendUDP(&out, addr, 200, 64, soon()); err != nil {
		t.Fatal(err)
	}
	got, err := wait()
	if err != nil {
		t.Fatal(err)
	}
	wantLine(t, out.String(), `^guest: net\.udp-send-pps [0-9]+ \(200 datagrams of 64 bytes in [0-9.]+ s to .*, 0 refused\)\n$`)
	wantLine(t, got, `(?m)^guest: net\.udp-recv-pps [0-9]+ \(200 of 200 datagrams in `)
	wantLine(t, got, `(?m)^guest: net\.udp-loss-pct 0\.00$`)
}

// The sink counts what never came as lost, once the sender has said how
// many it sent and a quiet period passed.
func TestUDPSinkCountsLoss(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	go func() {
		ctl, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			return
		}
		defer ctl.Close()
		u, err := net.Dial("udp", pc.LocalAddr().String())
		if err != nil {
			return
		}
		for range 3 {
			u.Write(make([]byte, 64))
		}
		ctl.Write([]byte("sent 4\n"))
		drain(ctl)
	}()
	var out bytes.Buffer
	start := time.Now()
	if err := sinkUDP(&out, ln, pc, 200*time.Millisecond, soon()); err != nil {
		t.Fatal(err)
	}
	wantLine(t, out.String(), `(?m)^guest: net\.udp-recv-pps [0-9]+ \(3 of 4 datagrams`)
	wantLine(t, out.String(), `(?m)^guest: net\.udp-loss-pct 25\.00$`)
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("the sink took %v to give up on the fourth", d)
	}
}

// -rr against -echo: every byte comes back, and the report has the
// median and the 99th percentile.
func TestRoundTrips(t *testing.T) {
	addr, wait := serve(t, func(out *bytes.Buffer, ln net.Listener) error { return echoTCP(out, ln, soon()) })
	var out bytes.Buffer
	if err := roundTrips(&out, addr, 300, soon()); err != nil {
		t.Fatal(err)
	}
	got, err := wait()
	if err != nil {
		t.Fatal(err)
	}
	wantLine(t, out.String(), `^guest: net\.tcp-rr-median-us [0-9.]+ \(300 round trips in [0-9.]+ s, p99 [0-9.]+ us, min [0-9.]+ us\)\n$`)
	wantLine(t, got, `(?m)^guest: net\.echo-bytes 300$`)
}
