package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"gohv/hv/tlfs"
	"gohv/vmbus/proto"
)

// Host is what the server needs of the hypervisor, for one partition.
type Host interface {
	// PostMessage delivers a channel-management message (payload at most
	// proto.MaxMessageSize bytes) to VP vp's SINT proto.MessageSINT with
	// SynIC message type proto.SynICMessageType. It returns an error
	// wrapping ErrBusy when the SINT's queue is full (the server retries),
	// any other error when the message cannot be delivered at all.
	PostMessage(vp uint32, payload []byte) error
	// Signal sets event flag relid in VP vp's SINT proto.MessageSINT
	// event flags and interrupts the VP if the flag was clear. Any
	// goroutine; must not block.
	Signal(vp uint32, relid uint32) error
	// Page is guest page pfn (4 KiB units) as the host sees it, or an
	// error if it is not the partition's RAM. The slice stays valid until
	// the server is closed.
	Page(pfn uint64) (*[proto.PageSize]byte, error)
	// VPCount is the number of the partition's VPs: valid VP indexes are
	// below it.
	VPCount() uint32
	// BindEvent makes the guest's HvCallSignalEvent on connection ID conn
	// reach HandleEvent(conn); UnbindEvent undoes it.
	BindEvent(conn uint32) error
	UnbindEvent(conn uint32)
}

// ErrBusy is what Host.PostMessage wraps when the guest's message queue is
// full for now.
var ErrBusy = errors.New("vmbus/server: guest message queue full")

// ErrClosed is returned by a closed channel's Send and by a closed
// server.
var ErrClosed = errors.New("vmbus/server: closed")

// ConnectionIDBase + relid is a channel's connection ID: what the guest
// names in HvCallSignalEvent. Above the message connections 1 and 4.
const ConnectionIDBase = 0x1_0000

// MaxChannels bounds the devices one server offers.
const MaxChannels = 256

// Config configures a Server.
type Config struct {
	// MaxVersion is the highest protocol version the server accepts (0:
	// the highest it knows, proto.VersionWin10V5_3).
	MaxVersion proto.Version
	// Log receives the server's events (nil: discarded).
	Log *slog.Logger
	// OnPanic is told of a panic the server recovered, in a Handler or in
	// its own code, after it closed what the panic touched. The root ends
	// the partition. Nil: the panic is only logged.
	OnPanic func(error)
	// PostTimeout bounds how long a message waits for the guest to free
	// its message queue before the server gives up on the connection
	// (0: 5 s).
	PostTimeout time.Duration
}

// Offer is how a device presents itself in OFFERCHANNEL.
type Offer struct {
	InterfaceType     proto.GUID
	InterfaceInstance proto.GUID
	ChannelFlags      uint16
	MMIOMegabytes     uint16
	UserDefined       [proto.UserDefinedSize]byte
}

// Device is a VSP: one channel the server offers.
type Device interface {
	// Offer describes the channel; it is read once, when the device is
	// added.
	Offer() Offer
	// Open is called when the guest opened the channel, its rings mapped:
	// the device returns the Handler serving this open, or an error that
	// fails the open (the guest sees a non-zero OPENCHANNEL_RESULT).
	// Called on the server's goroutine; must not block for long.
	Open(ch *Channel) (Handler, error)
}

// Handler serves one open of a channel.
type Handler interface {
	// Packet handles one guest-to-host packet, parsed from a private copy
	// that is valid until Packet returns. A returned error closes the
	// channel. Called on the channel's goroutine, one packet at a time.
	Packet(p *proto.Packet) error
	// Close ends the open: the guest closed the channel, the connection
	// was reset or unloaded, the server closed, or the channel failed
	// (err says why; nil for an orderly close). When it returns, the
	// Handler must no longer use the Channel (its Sends fail with
	// ErrClosed from now on anyway).
	Close(err error)
}

// Server is the VMBus channel server of one partition.
type Server struct {
	host Host
	cfg  Config
	log  *slog.Logger

	// in carries guest messages from HandleMessage to Run: fixed-size
	// values, so sending allocates nothing.
	in chan inMessage

	mu       sync.Mutex // guards devices and the fields Run shares with AddDevice/Rescind
	devices  [MaxChannels + 1]*device
	requests chan func() // work from other goroutines, run on Run's goroutine

	// chans maps relid to the open channel for HandleEvent: read without
	// a lock on the VP thread.
	chans [MaxChannels + 1]atomic.Pointer[Channel]

	// Owned by Run's goroutine.
	conn   connection
	gpadls map[uint32]*gpadl
	// gpadlPages is the sum of npages over gpadls: never above
	// gpadlPageLimit (MaxGPADLPages; tests lower it).
	gpadlPages, gpadlPageLimit int

	// signalFailed counts host-to-guest signals the SynIC refused (a
	// guest that disabled its SIEF page or masked SINT 2 under an open
	// channel).
	signalFailed atomic.Uint64

	closed    atomic.Bool
	closeOnce sync.Once
	done      chan struct{}
	stopped   chan struct{}
}

// inMessage is one message the guest posted.
type inMessage struct {
	vp   uint32
	n    uint8
	data [proto.MaxMessageSize]byte
}

// New makes a server that Run will serve. Devices are added with
// AddDevice.
func New(host Host, cfg Config) *Server {
	if cfg.MaxVersion == 0 {
		cfg.MaxVersion = proto.VersionWin10V5_3
	}
	if cfg.PostTimeout == 0 {
		cfg.PostTimeout = 5 * time.Second
	}
	log := cfg.Log
	if log == nil {
		log = slog.New(discard{})
	}
	return &Server{
		host:           host,
		cfg:            cfg,
		log:            log,
		in:             make(chan inMessage, 64),
		requests:       make(chan func(), 16),
		gpadls:         make(map[uint32]*gpadl),
		gpadlPageLimit: MaxGPADLPages,
		done:           make(chan struct{}),
		stopped:        make(chan struct{}),
	}
}

// HandleMessage takes a message the guest posted to connection 1 or 4
// (HvCallPostMessage) and queues it for Run. It returns the hypercall's
// status: HV_STATUS_INSUFFICIENT_BUFFERS while the queue is full (Linux
// retries). Runs on the VP thread; does not block or allocate.
// Guest-controlled: payload (already at most 240 bytes).
func (s *Server) HandleMessage(vp uint32, typ tlfs.MessageType, payload []byte) tlfs.Status {
	if s.closed.Load() {
		return tlfs.StatusInsufficientBuffers
	}
	if len(payload) > proto.MaxMessageSize {
		return tlfs.StatusInvalidParameter
	}
	var m inMessage
	m.vp, m.n = vp, uint8(len(payload))
	copy(m.data[:], payload)
	select {
	case s.in <- m:
		return tlfs.StatusSuccess
	default:
		return tlfs.StatusInsufficientBuffers
	}
}

// HandleEvent takes the guest's HvCallSignalEvent on a channel's
// connection and wakes the channel. Runs on the VP thread; does not block
// or allocate. Guest-controlled: conn (a bound one, but maybe of a channel
// that is not open).
func (s *Server) HandleEvent(conn uint32) tlfs.Status {
	relid := conn - ConnectionIDBase
	if conn < ConnectionIDBase || relid == 0 || relid > MaxChannels {
		return tlfs.StatusInvalidConnectionID
	}
	if c := s.chans[relid].Load(); c != nil {
		c.kick()
	}
	return tlfs.StatusSuccess
}

// AddDevice offers dev as a new channel and returns its relid. If the
// guest already asked for offers, the offer goes out now. Any goroutine.
func (s *Server) AddDevice(dev Device) (uint32, error) {
	if s.closed.Load() {
		return 0, ErrClosed
	}
	off := dev.Offer()
	s.mu.Lock()
	relid := uint32(0)
	for i := uint32(1); i <= MaxChannels; i++ {
		if s.devices[i] == nil {
			relid = i
			break
		}
	}
	if relid == 0 {
		s.mu.Unlock()
		return 0, fmt.Errorf("vmbus/server: more than %d devices", MaxChannels)
	}
	d := &device{dev: dev, offer: off, relid: relid}
	s.devices[relid] = d
	s.mu.Unlock()
	if err := s.host.BindEvent(d.conn()); err != nil {
		s.mu.Lock()
		s.devices[relid] = nil
		s.mu.Unlock()
		return 0, fmt.Errorf("vmbus/server: relid %d: bind connection %#x: %w", relid, d.conn(), err)
	}
	s.do(func() { s.offerLate(d) })
	return relid, nil
}

// Rescind takes device relid's offer back: its channel closes and the
// guest is told; the relid is reused only after the guest releases it.
// Any goroutine.
func (s *Server) Rescind(relid uint32) {
	s.do(func() { s.rescind(relid, nil) })
}

// do runs f on Run's goroutine (or drops it once the server closed).
func (s *Server) do(f func()) {
	select {
	case s.requests <- f:
	case <-s.done:
	}
}

// Run serves the guest's messages until ctx ends or Close is called, then
// closes every channel. Call it once, on its own goroutine.
func (s *Server) Run(ctx context.Context) {
	defer close(s.stopped)
	defer s.shutdown()
	for {
		if !s.step(ctx) {
			return
		}
	}
}

// step handles one message or request; false ends Run.
func (s *Server) step(ctx context.Context) (more bool) {
	defer func() {
		if r := recover(); r != nil {
			err := fmt.Errorf("vmbus/server: panic: %v\n%s", r, debug.Stack())
			s.log.Error("vmbus: server panicked; closing the connection", "err", err)
			s.reset()
			if s.cfg.OnPanic != nil {
				s.cfg.OnPanic(err)
			}
			more = false
		}
	}()
	select {
	case <-ctx.Done():
		return false
	case <-s.done:
		return false
	case m := <-s.in:
		s.handle(m.vp, m.data[:m.n])
	case f := <-s.requests:
		f()
	}
	return true
}

// Close stops Run (if it runs) and closes every channel; it returns once
// nothing of the server touches guest memory. Any goroutine except Run's
// and a Handler's.
func (s *Server) Close() {
	s.closeOnce.Do(func() {
		s.closed.Store(true)
		close(s.done)
	})
	<-s.stopped
}

// shutdown closes everything when Run ends.
func (s *Server) shutdown() {
	s.closed.Store(true)
	s.closeOnce.Do(func() { close(s.done) })
	s.reset()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, d := range s.devices {
		if d != nil {
			s.host.UnbindEvent(d.conn())
		}
	}
}

// send marshals m and posts it to the connection's target VP, retrying
// while the guest's queue is full, up to Config.PostTimeout. A message
// that cannot be delivered is logged: the guest, which made its queue
// unusable, waits for it.
func (s *Server) send(m proto.Message) {
	b, err := proto.Marshal(m)
	if err != nil {
		panic(fmt.Sprintf("vmbus/server: marshal %v: %v", m.Type(), err)) // a server bug: its own messages always fit
	}
	deadline := time.Now().Add(s.cfg.PostTimeout)
	delay := 50 * time.Microsecond
	for {
		err = s.host.PostMessage(s.conn.targetVP, b)
		if err == nil {
			return
		}
		if !errors.Is(err, ErrBusy) || time.Now().After(deadline) {
			s.log.Warn("vmbus: message not delivered", "msg", m.Type().String(), "vp", s.conn.targetVP, "err", err)
			return
		}
		select {
		case <-time.After(delay):
		case <-s.done:
			return
		}
		delay = min(2*delay, 10*time.Millisecond)
	}
}

// discard is a slog handler that drops everything.
type discard struct{}

func (discard) Enabled(context.Context, slog.Level) bool  { return false }
func (discard) Handle(context.Context, slog.Record) error { return nil }
func (d discard) WithAttrs([]slog.Attr) slog.Handler      { return d }
func (d discard) WithGroup(string) slog.Handler           { return d }
