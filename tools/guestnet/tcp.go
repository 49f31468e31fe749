package main

import (
	"fmt"
	"io"
	"net"
	"slices"
	"time"
)

// sendBlock is the size of each write of -send.
const sendBlock = 256 << 10

// sendTCP connects to addr, writes total bytes, closes its write side and
// waits for the peer's EOF, so the time counts every byte's arrival (the
// peer reads to EOF before it closes). It reports
// "guest: net.<key>-mib-s", timed from the connection to the EOF.
func sendTCP(out io.Writer, addr, key string, total int64, deadline time.Time) error {
	c, err := dial(addr, deadline)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(deadline)
	buf := make([]byte, sendBlock)
	for i := range buf {
		buf[i] = byte(i * 7)
	}
	start := time.Now()
	for sent := int64(0); sent < total; {
		n := min(int64(len(buf)), total-sent)
		if _, err := c.Write(buf[:n]); err != nil {
			return fmt.Errorf("send to %s after %d bytes: %w", addr, sent, err)
		}
		sent += n
	}
	if err := c.CloseWrite(); err != nil {
		return fmt.Errorf("send to %s: close write: %w", addr, err)
	}
	if n, err := drain(c); err != nil || n != 0 {
		return fmt.Errorf("send to %s: waiting for EOF: %d bytes back, %v", addr, n, err)
	}
	d := time.Since(start)
	fmt.Fprintf(out, "guest: net.%s-mib-s %.2f (%d bytes in %.3f s to %s)\n", key, mibps(total, d), total, d.Seconds(), addr)
	return nil
}

// recvTCP accepts one connection, reads it to EOF and closes it, and
// reports "guest: net.tcp-recv-mib-s" (from the accept to the EOF) and
// "guest: net.tcp-recv-bytes".
func recvTCP(out io.Writer, ln net.Listener, deadline time.Time) error {
	c, err := accept(ln, deadline)
	if err != nil {
		return err
	}
	defer c.Close()
	start := time.Now()
	n, err := drain(c)
	if err != nil {
		return fmt.Errorf("receive from %s after %d bytes: %w", c.RemoteAddr(), n, err)
	}
	d := time.Since(start)
	fmt.Fprintf(out, "guest: net.tcp-recv-mib-s %.2f (%d bytes in %.3f s from %s)\n", mibps(n, d), n, d.Seconds(), c.RemoteAddr())
	fmt.Fprintf(out, "guest: net.tcp-recv-bytes %d\n", n)
	return nil
}

// echoTCP accepts one connection and sends back what arrives until EOF,
// a byte at a time as it comes (the peer of roundTrips).
func echoTCP(out io.Writer, ln net.Listener, deadline time.Time) error {
	c, err := accept(ln, deadline)
	if err != nil {
		return err
	}
	defer c.Close()
	n, err := io.CopyBuffer(c, struct{ io.Reader }{c}, make([]byte, 4096))
	if err != nil {
		return fmt.Errorf("echo to %s after %d bytes: %w", c.RemoteAddr(), n, err)
	}
	fmt.Fprintf(out, "guest: net.echo-bytes %d\n", n)
	return nil
}

// roundTrips connects to an echo at addr and times count round trips of
// one byte each; it reports "guest: net.tcp-rr-median-us" and, in its
// text, the 99th percentile.
func roundTrips(out io.Writer, addr string, count int, deadline time.Time) error {
	if count <= 0 {
		return fmt.Errorf("rr: count %d", count)
	}
	c, err := dial(addr, deadline)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(deadline)
	c.SetNoDelay(true)
	rtt := make([]time.Duration, count)
	b := []byte{0}
	start := time.Now()
	for i := range rtt {
		t := time.Now()
		b[0] = byte(i)
		if _, err := c.Write(b); err != nil {
			return fmt.Errorf("rr %d: %w", i, err)
		}
		if _, err := io.ReadFull(c, b); err != nil {
			return fmt.Errorf("rr %d: %w", i, err)
		}
		if b[0] != byte(i) {
			return fmt.Errorf("rr %d: got byte %d back", i, b[0])
		}
		rtt[i] = time.Since(t)
	}
	total := time.Since(start)
	c.CloseWrite()
	if n, err := drain(c); err != nil || n != 0 {
		return fmt.Errorf("rr: waiting for EOF: %d bytes, %v", n, err)
	}
	slices.Sort(rtt)
	us := func(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
	fmt.Fprintf(out, "guest: net.tcp-rr-median-us %.1f (%d round trips in %.3f s, p99 %.1f us, min %.1f us)\n",
		us(rtt[count/2]), count, total.Seconds(), us(rtt[count*99/100]), us(rtt[0]))
	return nil
}
