// Package hostnet is the root partition's own TCP/IP endpoint on a virtual
// switch port: gVisor's netstack (IPv4, ARP, ICMP echo, TCP, UDP) over one
// Ethernet NIC whose frames go out through an Uplink (a vswitch port) and
// come in through Deliver. The root serves its management and diagnostic
// services on it (package hostnet/diag) and tools and tests dial out of it.
//
// gVisor's stack is used rather than a TCP/IP stack of gohv's own: it is
// maintained, fuzzed and runs in production; this package adds only the
// link endpoint (link.go) and the configuration. It runs unchanged in the
// image, on metal's system-call surface (the check hostnet-loopback).
//
// Invariants:
//   - One NIC, one IPv4 address (Config.Address) with a route for its
//     subnet; no gateway, no IPv6, no forwarding.
//   - Deliver never retains the frame: it is copied into a packet buffer
//     before the stack sees it. Frames shorter than an Ethernet header or
//     longer than MTU+14 bytes are dropped and counted; anything else is
//     the stack's to validate (FuzzDeliver).
//   - Outbound, each packet is one frame (padded to 60 bytes) passed to
//     Uplink.Send; before Attach, and when Send reports a drop, the frame
//     is counted in Stats.DroppedOut and otherwise treated as lost on the
//     wire.
//   - The stack computes and checks every checksum (no offload): inbound
//     frames come from guests.
//
// Concurrency: Deliver runs on the caller's goroutine (the switch port's)
// and processes the frame there, up to queueing it on the stack's own TCP
// goroutines; it may call Uplink.Send (an ARP or echo reply) before it
// returns, so an Uplink must not call back into Deliver synchronously
// (Send queues and never blocks, as a vswitch port does). Every method is
// safe for concurrent use. After Close, Deliver drops and Listen and Dial
// fail.
package hostnet

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync/atomic"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/link/ethernet"
	"gvisor.dev/gvisor/pkg/tcpip/network/arp"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/icmp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/udp"
	"gvisor.dev/gvisor/pkg/waiter"
)

// Uplink is the switch port the stack sends on (*vswitch.Port satisfies
// it): Send copies the frame and never blocks; false means the switch
// dropped it.
type Uplink interface{ Send(frame []byte) bool }

// UplinkFunc is a function as an Uplink.
type UplinkFunc func(frame []byte) bool

// Send calls f.
func (f UplinkFunc) Send(frame []byte) bool { return f(frame) }

// Config is one stack's link and address.
type Config struct {
	// MAC is the NIC's address: unicast, not all zeros.
	MAC [6]byte
	// Address is the IPv4 address and its subnet, e.g. 10.0.0.1/24.
	Address netip.Prefix
	// MTU is the largest IP packet; 0 means 1500. At least 576 (RFC 791's
	// minimum datagram every host accepts), at most 65535.
	MTU int
	// Log receives the stack's events; nil discards them.
	Log *slog.Logger
}

// ErrClosed is returned by Listen, Dial and Ping after Close.
var ErrClosed = errors.New("hostnet: stack closed")

const nicID tcpip.NICID = 1

// Stack is one TCP/IP endpoint on a switch port.
type Stack struct {
	s      *stack.Stack
	link   *link
	addr   netip.Prefix
	log    *slog.Logger
	stats  counters
	closed atomic.Bool
	pingID atomic.Uint32
}

// New builds a stack with the configured address (IPv4, ARP, ICMP echo
// replies, TCP with SACK, UDP). Frames it sends are dropped until Attach.
func New(cfg Config) (*Stack, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if cfg.MTU == 0 {
		cfg.MTU = 1500
	}
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	n := &Stack{addr: cfg.Address, log: log}
	n.link = &link{mac: tcpip.LinkAddress(cfg.MAC[:]), stats: &n.stats}
	n.link.SetMTU(uint32(cfg.MTU))
	n.s = stack.New(stack.Options{
		NetworkProtocols:   []stack.NetworkProtocolFactory{ipv4.NewProtocol, arp.NewProtocol},
		TransportProtocols: []stack.TransportProtocolFactory{tcp.NewProtocol, udp.NewProtocol, icmp.NewProtocol4},
	})
	fail := func(what string, e tcpip.Error) (*Stack, error) {
		n.s.Close()
		n.s.Wait()
		return nil, fmt.Errorf("hostnet: %s: %s", what, e)
	}
	sack := tcpip.TCPSACKEnabled(true)
	if e := n.s.SetTransportProtocolOption(tcp.ProtocolNumber, &sack); e != nil {
		return fail("enable TCP SACK", e)
	}
	if e := n.s.CreateNIC(nicID, ethernet.New(n.link)); e != nil {
		return fail("create NIC", e)
	}
	pa := tcpip.ProtocolAddress{
		Protocol: ipv4.ProtocolNumber,
		AddressWithPrefix: tcpip.AddressWithPrefix{
			Address:   tcpip.AddrFrom4(cfg.Address.Addr().As4()),
			PrefixLen: cfg.Address.Bits(),
		},
	}
	if e := n.s.AddProtocolAddress(nicID, pa, stack.AddressProperties{}); e != nil {
		return fail(fmt.Sprintf("add address %s", cfg.Address), e)
	}
	n.s.SetRouteTable([]tcpip.Route{{Destination: pa.AddressWithPrefix.Subnet(), NIC: nicID}})
	log.Info("hostnet up", "address", cfg.Address.String(), "mac", net.HardwareAddr(cfg.MAC[:]).String(), "mtu", cfg.MTU)
	return n, nil
}

func (c *Config) validate() error {
	if !c.Address.IsValid() || !c.Address.Addr().Is4() {
		return fmt.Errorf("hostnet: address %q: want an IPv4 prefix such as 10.0.0.1/24", c.Address)
	}
	if a := c.Address.Addr(); a.IsUnspecified() || a.IsMulticast() || a == netip.AddrFrom4([4]byte{255, 255, 255, 255}) {
		return fmt.Errorf("hostnet: address %s: not a unicast address", c.Address)
	}
	if c.MAC == [6]byte{} || c.MAC[0]&1 != 0 {
		return fmt.Errorf("hostnet: MAC %s: want a unicast, non-zero address", net.HardwareAddr(c.MAC[:]))
	}
	if c.MTU != 0 && (c.MTU < 576 || c.MTU > 65535) {
		return fmt.Errorf("hostnet: MTU %d: want 576..65535 (0 for 1500)", c.MTU)
	}
	return nil
}

// Address is the stack's configured address and subnet.
func (n *Stack) Address() netip.Prefix { return n.addr }

// Attach makes up the port frames go out on from now on (before the first
// Attach they are dropped); a later Attach replaces it.
func (n *Stack) Attach(up Uplink) {
	if up == nil {
		n.link.up.Store(nil)
		return
	}
	n.link.up.Store(&uplinkRef{up: up})
	n.log.Info("hostnet attached", "address", n.addr.String())
}

// Deliver takes one Ethernet frame from the switch (without FCS). The
// frame is copied; it need stay valid only during the call.
func (n *Stack) Deliver(frame []byte) {
	if n.closed.Load() {
		n.stats.framesIn.Add(1)
		n.stats.droppedIn.Add(1)
		return
	}
	n.link.deliver(frame)
}

// Listen returns a TCP listener on the configured address and port.
func (n *Stack) Listen(port uint16) (net.Listener, error) {
	if n.closed.Load() {
		return nil, ErrClosed
	}
	l, err := gonet.ListenTCP(n.s, n.full(n.addr.Addr(), port), ipv4.ProtocolNumber)
	if err != nil {
		return nil, fmt.Errorf("hostnet: listen on %s port %d: %w", n.addr.Addr(), port, err)
	}
	return l, nil
}

// Dial opens a TCP connection to addr from the configured address; ctx
// bounds the handshake (and the ARP resolution before it).
func (n *Stack) Dial(ctx context.Context, addr netip.AddrPort) (net.Conn, error) {
	if n.closed.Load() {
		return nil, ErrClosed
	}
	if !addr.Addr().Is4() {
		return nil, fmt.Errorf("hostnet: dial %s: IPv4 only", addr)
	}
	c, err := gonet.DialContextTCP(ctx, n.s, n.full(addr.Addr(), addr.Port()), ipv4.ProtocolNumber)
	if err != nil {
		return nil, fmt.Errorf("hostnet: dial %s: %w", addr, err)
	}
	return c, nil
}

// Ping sends one ICMP echo request carrying payload to addr and waits for
// the matching reply (ctx bounds the wait); it returns the round trip.
func (n *Stack) Ping(ctx context.Context, addr netip.Addr, payload []byte) (time.Duration, error) {
	if n.closed.Load() {
		return 0, ErrClosed
	}
	if !addr.Is4() {
		return 0, fmt.Errorf("hostnet: ping %s: IPv4 only", addr)
	}
	var wq waiter.Queue
	ep, e := n.s.NewEndpoint(icmp.ProtocolNumber4, ipv4.ProtocolNumber, &wq)
	if e != nil {
		return 0, fmt.Errorf("hostnet: ping %s: %s", addr, e)
	}
	defer ep.Close()
	entry, readable := waiter.NewChannelEntry(waiter.ReadableEvents)
	wq.EventRegister(&entry)
	defer wq.EventUnregister(&entry)

	seq := uint16(n.pingID.Add(1))
	req := make([]byte, header.ICMPv4MinimumSize+len(payload))
	h := header.ICMPv4(req)
	h.SetType(header.ICMPv4Echo)
	h.SetSequence(seq) // the identifier is the endpoint's port: the stack sets it
	copy(h.Payload(), payload)
	start := time.Now()
	to := n.full(addr, 0)
	if _, e := ep.Write(bytes.NewReader(req), tcpip.WriteOptions{To: &to}); e != nil {
		return 0, fmt.Errorf("hostnet: ping %s: send: %s", addr, e)
	}
	var reply bytes.Buffer
	for {
		reply.Reset()
		_, e := ep.Read(&reply, tcpip.ReadOptions{})
		switch e.(type) {
		case nil:
			r := header.ICMPv4(reply.Bytes())
			if len(r) >= header.ICMPv4MinimumSize && r.Type() == header.ICMPv4EchoReply && r.Sequence() == seq && bytes.Equal(r.Payload(), payload) {
				return time.Since(start), nil
			}
			continue // someone else's reply
		case *tcpip.ErrWouldBlock:
		default:
			return 0, fmt.Errorf("hostnet: ping %s: receive: %s", addr, e)
		}
		select {
		case <-readable:
		case <-ctx.Done():
			return 0, fmt.Errorf("hostnet: ping %s: %w", addr, ctx.Err())
		}
	}
}

// Neighbor returns the MAC address ARP resolved for addr, if the stack's
// neighbour table holds a reachable (or stale, delayed, probing) entry.
func (n *Stack) Neighbor(addr netip.Addr) ([6]byte, bool) {
	if !addr.Is4() {
		return [6]byte{}, false
	}
	entries, e := n.s.Neighbors(nicID, ipv4.ProtocolNumber)
	if e != nil {
		return [6]byte{}, false
	}
	want := tcpip.AddrFrom4(addr.As4())
	for _, en := range entries {
		if en.Addr == want && len(en.LinkAddr) == 6 && en.State != stack.Unknown && en.State != stack.Incomplete && en.State != stack.Unreachable {
			var mac [6]byte
			copy(mac[:], en.LinkAddr)
			return mac, true
		}
	}
	return [6]byte{}, false
}

// Close stops the stack: its connections and listeners end, later frames
// are dropped, and the stack's goroutines have ended when it returns.
func (n *Stack) Close() {
	if n.closed.Swap(true) {
		return
	}
	n.s.Close()
	n.s.Wait()
	if e := n.s.RemoveNIC(nicID); e != nil {
		n.log.Warn("hostnet: remove NIC", "address", n.addr.String(), "err", e.String())
	}
	n.link.up.Store(nil)
	n.log.Info("hostnet closed", "address", n.addr.String())
}

// Stats are a stack's counters, as a switch port's are kept: frames on
// the link, and what the stack made of them.
type Stats struct {
	FramesIn, BytesIn uint64 // every frame Deliver was given
	DroppedIn         uint64 // of those: too short or long, or arriving detached or closed
	FramesOut         uint64 // frames the uplink accepted
	BytesOut          uint64
	DroppedOut        uint64 // frames sent before Attach or refused by the uplink

	IPMalformed       uint64 // IPv4 packets the stack dropped as malformed
	ARPMalformed      uint64 // ARP packets the stack dropped as malformed
	ICMPEchoReplies   uint64 // echo replies sent (answers to pings)
	TCPRetransmits    uint64 // TCP segments sent again
	TCPCurrentOpen    uint64 // TCP connections established now
	TCPConnectsFailed uint64 // active opens that failed
}

// Stats returns the current counters.
func (n *Stack) Stats() Stats {
	g := n.s.Stats()
	return Stats{
		FramesIn:          n.stats.framesIn.Load(),
		BytesIn:           n.stats.bytesIn.Load(),
		DroppedIn:         n.stats.droppedIn.Load(),
		FramesOut:         n.stats.framesOut.Load(),
		BytesOut:          n.stats.bytesOut.Load(),
		DroppedOut:        n.stats.droppedOut.Load(),
		IPMalformed:       g.IP.MalformedPacketsReceived.Value(),
		ARPMalformed:      g.ARP.MalformedPacketsReceived.Value(),
		ICMPEchoReplies:   g.ICMP.V4.PacketsSent.EchoReply.Value(),
		TCPRetransmits:    g.TCP.Retransmits.Value(),
		TCPCurrentOpen:    g.TCP.CurrentEstablished.Value(),
		TCPConnectsFailed: g.TCP.FailedConnectionAttempts.Value(),
	}
}

func (n *Stack) full(a netip.Addr, port uint16) tcpip.FullAddress {
	return tcpip.FullAddress{NIC: nicID, Addr: tcpip.AddrFrom4(a.As4()), Port: port}
}
