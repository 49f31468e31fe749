package vswitch

import (
	"slices"
	"sync"
	"sync/atomic"
)

// Endpoint receives the frames the switch forwards to a port.
type Endpoint interface {
	// Deliver is called on the port's own delivery goroutine, one frame
	// at a time; frame is valid only until Deliver returns. A slow
	// Deliver only fills its own port's egress queue (the frames it
	// cannot take are counted in RxDropped). Deliver must not call its
	// own port's Close or the switch's Close: they wait for it.
	Deliver(frame []byte)
}

// PortConfig is how a port is connected.
type PortConfig struct {
	Name string // for logs and stats, e.g. "linux0/nic0" or "root"
	MAC  MAC    // the port's own address: not zero, not a group address
	// AllowSpoofing lets the port send with any source MAC (the root's
	// stack with several addresses, a later physical uplink) except a
	// group address or another connected port's MAC. Otherwise a frame
	// whose source is not MAC is dropped and counted.
	AllowSpoofing bool
	// QueueLen bounds the port's ingress and egress queues in frames
	// (0: DefaultQueueLen; at most MaxQueueLen).
	QueueLen int
}

// PortStats are a port's counters. Tx is from the port into the switch,
// Rx is delivered to the port.
type PortStats struct {
	TxFrames uint64 // frames Send queued
	TxBytes  uint64
	// TxDropped: Send found the port's ingress queue full or the port
	// closed.
	TxDropped uint64
	// SpoofDropped: the source was not the port's MAC (without
	// AllowSpoofing), a group address, or another connected port's MAC.
	// The last is found by the forwarder, after Send counted the frame in
	// TxFrames.
	SpoofDropped uint64
	// MalformedDropped: shorter than MinFrameSize or longer than
	// MaxFrameSize.
	MalformedDropped uint64
	RxFrames         uint64 // frames Deliver was called with
	RxBytes          uint64
	RxDropped        uint64 // the port's egress queue was full
}

// PortInfo describes a connected port for a diagnostic page.
type PortInfo struct {
	Name  string
	MAC   MAC
	Stats PortStats
}

// Port is one connection to the switch.
type Port struct {
	s   *Switch
	cfg PortConfig
	ep  Endpoint

	in  *queue // Send → forwarder
	out *queue // forwarder → deliverer

	kick      chan struct{} // wakes the deliverer; capacity 1
	done      chan struct{} // closed by Close: the deliverer returns
	exited    chan struct{} // closed by the deliverer as it returns
	closeOnce sync.Once

	txFrames, txBytes, txDropped   atomic.Uint64
	spoofDropped, malformedDropped atomic.Uint64
	rxFrames, rxBytes, rxDropped   atomic.Uint64
}

func newPort(s *Switch, cfg PortConfig, ep Endpoint) *Port {
	return &Port{
		s:      s,
		cfg:    cfg,
		ep:     ep,
		in:     newQueue(cfg.QueueLen),
		out:    newQueue(cfg.QueueLen),
		kick:   make(chan struct{}, 1),
		done:   make(chan struct{}),
		exited: make(chan struct{}),
	}
}

// Name returns the port's configured name.
func (p *Port) Name() string { return p.cfg.Name }

// MAC returns the port's configured address.
func (p *Port) MAC() MAC { return p.cfg.MAC }

// Send hands a frame from the port's owner to the switch. It copies the
// frame and never blocks; false means the frame was dropped and counted
// (ingress queue full or port closed: TxDropped; too short or too long:
// MalformedDropped; source not allowed: SpoofDropped). Safe for
// concurrent use.
//
// guest-controlled: frame comes from a partition; only its length and
// addresses are read. Called on a VMBus channel goroutine: must not
// allocate once the ingress queue's slot buffers have grown.
func (p *Port) Send(frame []byte) bool {
	if len(frame) < MinFrameSize || len(frame) > MaxFrameSize {
		p.malformedDropped.Add(1)
		return false
	}
	if sa := src(frame); sa.IsMulticast() || (!p.cfg.AllowSpoofing && sa != p.cfg.MAC) {
		p.spoofDropped.Add(1)
		return false
	}
	if !p.in.push(frame) {
		p.txDropped.Add(1)
		return false
	}
	p.txFrames.Add(1)
	p.txBytes.Add(uint64(len(frame)))
	select {
	case p.s.kick <- struct{}{}:
	default: // a wake-up is already pending
	}
	return true
}

// enqueue copies a forwarded frame into the egress queue and wakes the
// deliverer; a full queue drops it (RxDropped). Forwarder only.
func (p *Port) enqueue(frame []byte) {
	if !p.out.push(frame) {
		p.rxDropped.Add(1)
		return
	}
	select {
	case p.kick <- struct{}{}:
	default:
	}
}

// deliverer is the port's delivery goroutine: it hands the egress queue's
// frames to the Endpoint one at a time until Close.
func (p *Port) deliverer() {
	defer close(p.exited)
	for {
		select {
		case <-p.kick:
		case <-p.done:
			return
		}
		for {
			select {
			case <-p.done:
				return
			default:
			}
			frame := p.out.peek()
			if frame == nil {
				break
			}
			p.rxFrames.Add(1)
			p.rxBytes.Add(uint64(len(frame)))
			p.ep.Deliver(frame)
			p.out.pop()
		}
	}
}

// Close disconnects the port: Send drops from now on, the switch forgets
// the addresses learned on it (its configured MAC too, so another port
// may take it), the frames still queued for it are abandoned, and no
// Deliver runs after Close returns (Close waits for one in progress).
// Idempotent; must not be called from the port's own Deliver.
func (p *Port) Close() {
	p.closeOnce.Do(func() {
		p.in.close()
		s := p.s
		s.mu.Lock()
		if i := slices.Index(s.ports, p); i >= 0 {
			s.ports = slices.Delete(s.ports, i, i+1)
		}
		s.table.forget(p)
		s.mu.Unlock()
		close(p.done)
		<-p.exited
		s.log.Info("port disconnected", "port", p.cfg.Name, "mac", p.cfg.MAC.String())
	})
}

// Stats returns the port's counters; each is read atomically, the set is
// not a snapshot of one instant.
func (p *Port) Stats() PortStats {
	return PortStats{
		TxFrames:         p.txFrames.Load(),
		TxBytes:          p.txBytes.Load(),
		TxDropped:        p.txDropped.Load(),
		SpoofDropped:     p.spoofDropped.Load(),
		MalformedDropped: p.malformedDropped.Load(),
		RxFrames:         p.rxFrames.Load(),
		RxBytes:          p.rxBytes.Load(),
		RxDropped:        p.rxDropped.Load(),
	}
}
