package vswitch

import (
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"
)

// DefaultQueueLen is the ingress and egress queue length of a port whose
// PortConfig.QueueLen is 0; MaxQueueLen bounds a configured one.
const (
	DefaultQueueLen = 256
	MaxQueueLen     = 4096
)

// Errors Connect returns (wrapped with the switch and port names).
var (
	ErrClosed       = errors.New("vswitch: switch closed")
	ErrDuplicateMAC = errors.New("vswitch: MAC already configured on a connected port")
	ErrBadConfig    = errors.New("vswitch: bad port configuration")
)

// Switch is one virtual Ethernet switch. Its methods are safe for
// concurrent use.
type Switch struct {
	name string
	log  *slog.Logger

	// clock is the switch's monotonic time, for aging (tests replace it).
	clock func() time.Duration

	// kick wakes the forwarder: Send posts to it without blocking after
	// queueing a frame; capacity 1, so a pending wake-up is never lost.
	kick chan struct{}
	done chan struct{} // closed by Close: the forwarder returns
	fwd  sync.WaitGroup

	// mu guards ports, table and closed. The forwarder holds it for each
	// round over the ingress queues.
	mu     sync.Mutex
	ports  []*Port // connected, in Connect order
	table  table
	closed bool
}

// New returns a switch with no ports and starts its forwarding goroutine.
// log may be nil.
func New(name string, log *slog.Logger) *Switch {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	start := time.Now()
	s := &Switch{
		name:  name,
		log:   log.With("switch", name),
		clock: func() time.Duration { return time.Since(start) },
		kick:  make(chan struct{}, 1),
		done:  make(chan struct{}),
		table: newTable(),
	}
	s.fwd.Add(1)
	go s.forwarder()
	return s
}

// Name returns the switch's name.
func (s *Switch) Name() string { return s.name }

// Connect attaches a port with cfg's address and queues; the switch
// delivers its frames to ep on a goroutine of the port's own. It fails when
// the switch is closed, cfg is bad (no name, a zero or group address, a
// queue length outside 0..MaxQueueLen) or another connected port has
// cfg.MAC.
func (s *Switch) Connect(cfg PortConfig, ep Endpoint) (*Port, error) {
	if err := checkConfig(cfg, ep); err != nil {
		return nil, fmt.Errorf("vswitch %s: port %q: %w", s.name, cfg.Name, err)
	}
	if cfg.QueueLen == 0 {
		cfg.QueueLen = DefaultQueueLen
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, fmt.Errorf("vswitch %s: port %q: %w", s.name, cfg.Name, ErrClosed)
	}
	if s.table.isStatic(cfg.MAC) {
		return nil, fmt.Errorf("vswitch %s: port %q: %s: %w", s.name, cfg.Name, cfg.MAC, ErrDuplicateMAC)
	}
	p := newPort(s, cfg, ep)
	s.ports = append(s.ports, p)
	s.table.setStatic(cfg.MAC, p)
	go p.deliverer()
	s.log.Info("port connected", "port", cfg.Name, "mac", cfg.MAC.String(), "spoofing", cfg.AllowSpoofing, "queue", cfg.QueueLen)
	return p, nil
}

func checkConfig(cfg PortConfig, ep Endpoint) error {
	switch {
	case ep == nil:
		return fmt.Errorf("%w: nil Endpoint", ErrBadConfig)
	case cfg.Name == "":
		return fmt.Errorf("%w: no name", ErrBadConfig)
	case cfg.MAC.IsZero():
		return fmt.Errorf("%w: zero MAC", ErrBadConfig)
	case cfg.MAC.IsMulticast():
		return fmt.Errorf("%w: MAC %s is a group address", ErrBadConfig, cfg.MAC)
	case cfg.QueueLen < 0 || cfg.QueueLen > MaxQueueLen:
		return fmt.Errorf("%w: QueueLen %d outside 0..%d", ErrBadConfig, cfg.QueueLen, MaxQueueLen)
	}
	return nil
}

// Ports reports the connected ports in Connect order, for a diagnostic
// page.
func (s *Switch) Ports() []PortInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]PortInfo, 0, len(s.ports))
	for _, p := range s.ports {
		out = append(out, PortInfo{Name: p.cfg.Name, MAC: p.cfg.MAC, Stats: p.Stats()})
	}
	return out
}

// Close disconnects every port and stops the forwarder and every delivery
// goroutine; afterwards Connect fails and Send drops. Like Port.Close it
// waits for a Deliver in progress to return. Idempotent.
func (s *Switch) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	ports := slices.Clone(s.ports)
	for _, p := range ports {
		p.in.close()
	}
	s.mu.Unlock()
	close(s.done)
	s.fwd.Wait()
	for _, p := range ports {
		p.Close()
	}
	s.log.Info("switch closed")
}

// forwarder is the switch's one forwarding goroutine. Each round takes at
// most one frame from every port's ingress queue, in Connect order, so a
// port that sends flat out gets one frame forwarded per round like every
// other; it repeats rounds until every ingress queue is empty and then
// waits for a kick.
func (s *Switch) forwarder() {
	defer s.fwd.Done()
	for {
		select {
		case <-s.kick:
		case <-s.done:
			return
		}
		for s.round() {
			select {
			case <-s.done:
				return
			default:
			}
		}
	}
}

// round forwards one frame from each non-empty ingress queue and reports
// whether it forwarded any. Must not allocate once the queues' buffers
// have grown.
func (s *Switch) round() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.clock()
	moved := false
	for _, p := range s.ports {
		frame := p.in.peek()
		if frame == nil {
			continue
		}
		s.forward(p, frame, now)
		p.in.pop()
		moved = true
	}
	return moved
}

// forward sends one frame from port from to its destinations: the
// learned port of a unicast destination, every other port for a group or
// unknown destination, never from itself. Called with s.mu held. The frame
// passed Send's checks (length; source not a group address and, unless
// from allows spoofing, from's own address).
func (s *Switch) forward(from *Port, frame []byte, now time.Duration) {
	if !s.table.learn(src(frame), from, now) {
		from.spoofDropped.Add(1) // another port's configured address
		return
	}
	if d := dst(frame); !d.IsMulticast() {
		if to := s.table.lookup(d, now); to != nil {
			if to != from {
				to.enqueue(frame)
			}
			return // a frame for the port it came from is filtered
		}
	}
	for _, to := range s.ports {
		if to != from {
			to.enqueue(frame)
		}
	}
}
