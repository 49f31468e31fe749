package ring

import (
	"errors"
	"fmt"
	"time"
)

// ErrTimeout is returned by Pair.Send and Pair.Receive when the signal
// they wait for does not come within Pair.Timeout: with both ends
// following the signalling rules, a lost wakeup.
var ErrTimeout = errors.New("ring: no signal within the pair's timeout")

// Pair is both ends of one ring in one process, their signals wired to
// channels: for tests and benchmarks of the ring and of the protocols
// above it. Send and Receive wait as a real sender and receiver do, on
// the other end's signals only; each is for one goroutine at a time and
// the two may run concurrently.
type Pair struct {
	Sender   *Sender
	Receiver *Receiver
	// Readable receives a token when the Sender signals the Receiver,
	// Writable when the Receiver signals the Sender. Each holds one
	// token; further signals while one waits are merged into it.
	Readable <-chan struct{}
	Writable <-chan struct{}
	// Timeout bounds each wait of Send and Receive (default 10 s).
	Timeout time.Duration

	sendTimer, recvTimer *time.Timer
}

// NewPair is a Pair over a fresh FlatMemory whose data area is dataSize
// bytes (a multiple of PageSize).
func NewPair(dataSize int) (*Pair, error) {
	if dataSize <= 0 || dataSize > MaxDataSize {
		return nil, fmt.Errorf("%w: data area of %d bytes", ErrMemory, dataSize)
	}
	m, err := NewFlatMemory(make([]byte, PageSize+dataSize))
	if err != nil {
		return nil, err
	}
	return NewPairOn(m)
}

// NewPairOn is a Pair over m, which it initialises (Init).
func NewPairOn(m Memory) (*Pair, error) {
	if err := Init(m); err != nil {
		return nil, err
	}
	readable, writable := make(chan struct{}, 1), make(chan struct{}, 1)
	notify := func(c chan struct{}) func() {
		return func() {
			select {
			case c <- struct{}{}:
			default:
			}
		}
	}
	s, err := NewSender(m, notify(readable))
	if err != nil {
		return nil, err
	}
	r, err := NewReceiver(m, notify(writable))
	if err != nil {
		return nil, err
	}
	stopped := func() *time.Timer {
		t := time.NewTimer(time.Hour)
		t.Stop()
		return t
	}
	return &Pair{
		Sender: s, Receiver: r, Readable: readable, Writable: writable,
		Timeout: 10 * time.Second, sendTimer: stopped(), recvTimer: stopped(),
	}, nil
}

// wait takes a token from c, or fails after the timeout.
func (p *Pair) wait(c <-chan struct{}, t *time.Timer) error {
	select {
	case <-c:
		return nil
	default:
	}
	t.Reset(p.Timeout)
	defer t.Stop()
	select {
	case <-c:
		return nil
	case <-t.C:
		return ErrTimeout
	}
}

// Send writes one packet (as Sender.Write), and while the ring is full
// asks for space (RequestSpace) and waits for the Receiver's signal.
func (p *Pair) Send(header, payload []byte) error {
	for {
		err := p.Sender.Write(header, payload)
		if err != ErrFull {
			return err
		}
		ok, err := p.Sender.RequestSpace(len(header) + len(payload))
		if err != nil {
			return err
		}
		if !ok {
			if err := p.wait(p.Writable, p.sendTimer); err != nil {
				return err
			}
		}
	}
}

// Receive reads one packet into buf (as Receiver.Read), and while the
// ring is empty clears the interrupt mask, re-checks, and waits for the
// Sender's signal; it leaves the mask set while packets keep coming.
func (p *Pair) Receive(buf []byte) (int, error) {
	for {
		n, err := p.Receiver.Read(buf)
		if err != ErrEmpty {
			return n, err
		}
		if !p.Receiver.UnmaskInterrupts() {
			if err := p.wait(p.Readable, p.recvTimer); err != nil {
				return 0, err
			}
		}
		p.Receiver.MaskInterrupts()
	}
}
