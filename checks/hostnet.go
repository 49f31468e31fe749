package checks

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"time"

	"gohv/root/hostnet"
)

// checkHostnetLoopback runs gVisor's netstack (root/hostnet) in ring 0 on
// metal's system-call surface: two stacks joined by an in-memory wire
// resolve each other with ARP, answer a ping, and move 1 MiB each way over
// TCP with matching sha256 sums, all within a minute.
func checkHostnetLoopback(*Env) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	type result struct {
		detail string
		err    error
	}
	done := make(chan result, 1)
	go func() {
		d, err := hostnetLoopback(ctx)
		done <- result{d, err}
	}()
	select {
	case r := <-done:
		return r.detail, r.err
	case <-time.After(90 * time.Second):
		return "", errors.New("hostnet: no result after 90 s (a stack goroutine is stuck)")
	}
}

func hostnetLoopback(ctx context.Context) (string, error) {
	const size = 1 << 20
	addrA, addrB := netip.MustParsePrefix("10.0.0.1/24"), netip.MustParsePrefix("10.0.0.2/24")
	a, err := hostnet.New(hostnet.Config{MAC: [6]byte{0x00, 0x15, 0x5d, 0, 0, 1}, Address: addrA})
	if err != nil {
		return "", err
	}
	defer a.Close()
	b, err := hostnet.New(hostnet.Config{MAC: [6]byte{0x00, 0x15, 0x5d, 0, 0, 2}, Address: addrB})
	if err != nil {
		return "", err
	}
	defer b.Close()
	w := hostnet.Connect(a, b, 4096, nil)
	defer w.Disconnect()

	rtt, err := a.Ping(ctx, addrB.Addr(), []byte("gohv"))
	if err != nil {
		return "", err
	}
	if mac, ok := a.Neighbor(addrB.Addr()); !ok || mac != [6]byte{0x00, 0x15, 0x5d, 0, 0, 2} {
		return "", fmt.Errorf("hostnet: ARP resolved %s to %x (%v)", addrB.Addr(), mac, ok)
	}

	l, err := b.Listen(7)
	if err != nil {
		return "", err
	}
	defer l.Close()
	up, down := make([]byte, size), make([]byte, size)
	for i := range up {
		up[i], down[i] = byte(i*7+i>>8), byte(i*13+i>>12)
	}
	deadline, _ := ctx.Deadline()
	srv := make(chan error, 1)
	var gotUp [32]byte
	go func() {
		c, err := l.Accept()
		if err != nil {
			srv <- err
			return
		}
		defer c.Close()
		_ = c.SetDeadline(deadline)
		gotUp, err = swap(c, down)
		srv <- err
	}()
	start := time.Now()
	c, err := a.Dial(ctx, netip.AddrPortFrom(addrB.Addr(), 7))
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(deadline)
	gotDown, err := swap(c, up)
	if err != nil {
		return "", fmt.Errorf("hostnet: client: %w", err)
	}
	if err := <-srv; err != nil {
		return "", fmt.Errorf("hostnet: server: %w", err)
	}
	took := time.Since(start)
	if gotUp != sha256.Sum256(up) || gotDown != sha256.Sum256(down) {
		return "", fmt.Errorf("hostnet: sha256 mismatch: up %x want %x, down %x want %x", gotUp, sha256.Sum256(up), gotDown, sha256.Sum256(down))
	}
	s := a.Stats()
	return fmt.Sprintf("gvisor netstack: arp+ping rtt %v, 1 MiB each way over TCP in %v (sha256 match), a: %d frames in %d out, %d retransmits",
		rtt.Round(time.Microsecond), took.Round(time.Millisecond), s.FramesIn, s.FramesOut, s.TCPRetransmits), nil
}

// swap writes out to c, half-closes, and returns the sha256 of everything
// the peer sent until its EOF (which must be exactly len(out) bytes).
func swap(c net.Conn, out []byte) ([32]byte, error) {
	werr := make(chan error, 1)
	go func() {
		_, err := io.Copy(c, bytes.NewReader(out))
		if err == nil {
			err = c.(interface{ CloseWrite() error }).CloseWrite()
		}
		werr <- err
	}()
	h := sha256.New()
	n, rerr := io.Copy(h, c)
	if err := <-werr; err != nil {
		return [32]byte{}, fmt.Errorf("write: %w", err)
	}
	if rerr != nil {
		return [32]byte{}, fmt.Errorf("read after %d bytes: %w", n, rerr)
	}
	if n != int64(len(out)) {
		return [32]byte{}, fmt.Errorf("read %d bytes, want %d", n, len(out))
	}
	return [32]byte(h.Sum(nil)), nil
}
