package ic

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"gohv/root/ic/protocol"
	"gohv/vmbus/proto"
)

// Channel is a service's way to the guest: the host→guest half of one
// open IC channel (the partition worker backs it with a vmbus/channel
// channel).
type Channel interface {
	// Send writes payload to the guest as one VMBus in-band packet:
	// type VM_PKT_DATA_INBAND (0x6), flags 0 (no completion requested:
	// the guest's answer is an in-band packet of its own, not a VMBus
	// completion, as with Hyper-V and OpenVMM), trans_id transactionID,
	// payload padded with zeros to 8 bytes. payload already begins with
	// the 8-byte pipe header; the caller adds nothing else. It is at
	// most MaxPayloadSize bytes, so the packet fits Linux's 4 KiB
	// receive buffer. Send may block until the ring has room; it must
	// not wait for the guest's answer (HandlePacket delivers that, maybe
	// before Send returns) and must not keep payload after it returns.
	// An error means the channel is gone; the service then stops.
	Send(payload []byte, transactionID uint64) error
}

// Service is what the partition worker drives on each open IC channel:
// Shutdown, Heartbeat and TimeSync are services.
type Service interface {
	// Run drives the channel from its open: NEGOTIATE, then the
	// service's requests, until ctx ends (nil) or the channel fails (an
	// error: close the channel). Call it once, after the guest's open
	// has succeeded (OPENCHANNEL_RESULT sent).
	Run(ctx context.Context) error
	// HandlePacket takes each in-band packet the guest sends on the
	// channel: the payload after the VMBus descriptor (pipe header
	// included, padding too) and the descriptor's trans_id. Linux sends
	// nothing else on an IC channel; another packet type is the ring
	// reader's to refuse. An error means close the channel.
	HandlePacket(payload []byte, transactionID uint64) error
	// Versions is what negotiation settled on; false before it has.
	Versions() (Versions, bool)
}

var (
	_ Service = (*Shutdown)(nil)
	_ Service = (*Heartbeat)(nil)
	_ Service = (*TimeSync)(nil)
)

// MaxPayloadSize bounds every payload a service sends: Linux 6.1's
// hv_utils reads packets into a 4096-byte buffer (VMBUS_DEFAULT_MAX_PKT_SIZE
// and HV_HYP_PAGE_SIZE in vmbus_recvpacket), descriptor included.
const MaxPayloadSize = 4096 - 16

// Errors. The ones HandlePacket and Run return mean "close the channel".
var (
	// ErrMalformed: the guest's packet is not an answer to the request
	// outstanding (short, inconsistent, unsolicited, another transaction,
	// wrong type or flags, a heartbeat not seq+1, a version the host did
	// not offer). The same sentinel as protocol.ErrMalformed.
	ErrMalformed = protocol.ErrMalformed
	// ErrNoCommonVersion: the guest answered NEGOTIATE with no version
	// (counts 0/0).
	ErrNoCommonVersion = errors.New("ic: guest shares no version with the host")
	// ErrTimeout: the guest did not answer in time. The request stays
	// outstanding: the service sends nothing more on the channel until
	// its answer comes (trap 12).
	ErrTimeout = errors.New("ic: guest did not answer")
	// ErrRefused: the guest answered a shutdown request with a status
	// other than HV_S_OK.
	ErrRefused = errors.New("ic: guest refused the request")
	// ErrClosed: the service has stopped (Run returned or a packet
	// failed); it sends and accepts nothing more.
	ErrClosed = errors.New("ic: service closed")
)

// Versions are a channel's negotiated framework and service versions.
type Versions struct {
	Framework, Message protocol.Version
}

func (v Versions) String() string {
	return "framework " + v.Framework.String() + ", message " + v.Message.String()
}

// FrameworkVersions are the IC framework versions every service offers,
// newest first: both that Linux 6.1 accepts (it picks 3.0).
var FrameworkVersions = [...]protocol.Version{protocol.Framework3, protocol.Framework1}

// DefaultNegotiateTimeout bounds the wait for the guest's NEGOTIATE answer
// unless Config says otherwise. Linux answers from its channel callback
// at once; a guest that opened the channel and says nothing for this long
// is broken.
const DefaultNegotiateTimeout = 30 * time.Second

// Config is what every service takes.
type Config struct {
	// Logger receives negotiation results and the guest's misses; nil
	// discards.
	Logger *slog.Logger
	// NegotiateTimeout bounds the wait for the NEGOTIATE answer; 0 means
	// DefaultNegotiateTimeout.
	NegotiateTimeout time.Duration
}

// Offer names an IC's VMBus offer: its class (the interface type Linux
// matches hv_utils on) and the instance GUID gohv offers it with. All are
// offered as message-mode named pipes (proto.ChannelNamedPipeMode,
// user_def pipe mode proto.PipeTypeMessage), like Hyper-V and OpenVMM;
// Linux does not check.
type Offer struct {
	Name     string
	Class    proto.GUID
	Instance proto.GUID
}

// The offers. The shutdown and time-sync instance GUIDs are OpenVMM's;
// the heartbeat's is gohv's own (Linux matches on the class only).
var (
	ShutdownOffer  = Offer{"shutdown", proto.ShutdownGUID, proto.MustParseGUID("b6650ff7-33bc-4840-8048-e0676786f393")}
	HeartbeatOffer = Offer{"heartbeat", proto.HeartbeatGUID, proto.MustParseGUID("fe388cf0-2b35-4c6a-9251-666627b0006e")}
	TimeSyncOffer  = Offer{"timesync", proto.TimeSyncGUID, proto.MustParseGUID("2dd1ce17-079e-403c-b352-a1921ee207ee")}
)

// endpoint is one IC channel's host end, shared by the services: version
// negotiation and the single outstanding request.
type endpoint struct {
	name  string
	ch    Channel
	log   *slog.Logger
	offer []protocol.Version // the service's message versions, newest first
	negTO time.Duration

	// slot holds one token from a request's Send until its answer has
	// been handled: one request outstanding per channel, even after its
	// waiter gave up (hv_utils' shutdown callback reads one packet per
	// interrupt; a second request queued behind an unread one would
	// never be signalled).
	slot       chan struct{}
	closed     chan struct{} // closed with err set
	negotiated chan struct{} // closed with versions set
	started    atomic.Bool

	mu       sync.Mutex
	pending  *request
	lastID   uint64
	versions Versions
	err      error
}

// request is the one outstanding request.
type request struct {
	id  uint64
	typ protocol.MsgType
	// check runs in HandlePacket, under endpoint.mu, on an answer whose
	// framing matched; an error fails the channel.
	check func(m *protocol.Message) error
	done  chan protocol.Status // buffered: HandlePacket never waits for the waiter
}

func newEndpoint(name string, ch Channel, cfg Config, offer []protocol.Version) (*endpoint, error) {
	if ch == nil {
		return nil, fmt.Errorf("ic: %s: nil channel", name)
	}
	if cfg.NegotiateTimeout < 0 {
		return nil, fmt.Errorf("ic: %s: negative negotiate timeout %v", name, cfg.NegotiateTimeout)
	}
	e := &endpoint{
		name:       name,
		ch:         ch,
		log:        cfg.Logger,
		offer:      offer,
		negTO:      cfg.NegotiateTimeout,
		slot:       make(chan struct{}, 1),
		closed:     make(chan struct{}),
		negotiated: make(chan struct{}),
	}
	if e.log == nil {
		e.log = slog.New(slog.DiscardHandler)
	}
	if e.negTO == 0 {
		e.negTO = DefaultNegotiateTimeout
	}
	return e, nil
}

func (e *endpoint) errorf(format string, args ...any) error {
	return fmt.Errorf("ic: %s: "+format, append([]any{e.name}, args...)...)
}

// Versions is what negotiation settled on; false before it has.
func (e *endpoint) Versions() (Versions, bool) {
	select {
	case <-e.negotiated:
		e.mu.Lock()
		defer e.mu.Unlock()
		return e.versions, true
	default:
		return Versions{}, false
	}
}

// run is every service's Run: negotiate, then body until ctx ends or the
// channel fails. It returns nil when ctx ended it and the error otherwise;
// either way the endpoint is closed on return.
func (e *endpoint) run(ctx context.Context, body func(context.Context) error) error {
	if !e.started.CompareAndSwap(false, true) {
		return e.errorf("Run called twice")
	}
	err := e.negotiate(ctx)
	if err == nil {
		err = body(ctx)
	}
	if ctx.Err() != nil {
		e.fail(e.errorf("%w: the channel closed", ErrClosed))
		return nil
	}
	if err == nil {
		err = e.errorf("%w", ErrClosed)
	}
	e.fail(err)
	return err
}

// fail closes the endpoint with err, once.
func (e *endpoint) fail(err error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.failLocked(err)
}

func (e *endpoint) failLocked(err error) {
	if e.err == nil {
		e.err = err
		close(e.closed)
	}
}

// closedErr is what calls after closing return. Called with mu held or
// after closed was seen.
func (e *endpoint) closedErr() error {
	if errors.Is(e.err, ErrClosed) {
		return e.err
	}
	return fmt.Errorf("%w: %w", ErrClosed, e.err)
}

func (e *endpoint) failure() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.closedErr()
}

// acquire takes the slot, waiting for the outstanding request's answer.
func (e *endpoint) acquire(ctx context.Context) error {
	select {
	case <-e.closed:
		return e.failure()
	default:
	}
	select {
	case e.slot <- struct{}{}:
		return nil
	case <-e.closed:
		return e.failure()
	case <-ctx.Done():
		return e.errorf("waiting for the previous request's answer: %w (%w)", ErrTimeout, ctx.Err())
	}
}

// tryAcquire takes the slot if no request is outstanding.
func (e *endpoint) tryAcquire() bool {
	select {
	case e.slot <- struct{}{}:
		return true
	default:
		return false
	}
}

// waitNegotiated waits until the versions are known.
func (e *endpoint) waitNegotiated(ctx context.Context) error {
	select {
	case <-e.negotiated:
		return nil
	case <-e.closed:
		return e.failure()
	case <-ctx.Done():
		return e.errorf("waiting for version negotiation: %w (%w)", ErrTimeout, ctx.Err())
	}
}

// send sends one request with body; the caller holds the slot, which the
// answer (or closing) gives back. check sees the answer in HandlePacket.
func (e *endpoint) send(typ protocol.MsgType, body []byte, check func(*protocol.Message) error) (*request, error) {
	e.mu.Lock()
	if e.err != nil {
		err := e.closedErr()
		e.mu.Unlock()
		<-e.slot
		return nil, err
	}
	e.lastID++
	r := &request{id: e.lastID, typ: typ, check: check, done: make(chan protocol.Status, 1)}
	h := protocol.Header{
		FrameworkVersion: e.versions.Framework, // 0.0 until negotiated, as OpenVMM sends NEGOTIATE
		Type:             typ,
		MessageVersion:   e.versions.Message,
		Flags:            protocol.FlagTransaction | protocol.FlagRequest,
	}
	e.pending = r
	e.mu.Unlock()

	payload, err := protocol.AppendMessage(make([]byte, 0, protocol.MessageHeaderSize+len(body)), h, body)
	if err == nil && len(payload) > MaxPayloadSize {
		err = fmt.Errorf("payload of %d bytes, at most %d", len(payload), MaxPayloadSize) // a gohv bug
	}
	if err == nil {
		err = e.ch.Send(payload, r.id)
	}
	if err != nil {
		err = e.errorf("send %v (transaction %d): %w", typ, r.id, err)
		e.fail(err)
		return nil, err
	}
	return r, nil
}

// wait waits for r's answer and returns its status.
func (e *endpoint) wait(ctx context.Context, r *request) (protocol.Status, error) {
	select {
	case s := <-r.done:
		return s, nil
	case <-e.closed:
		// An answer and a failure may race; the answer wins.
		select {
		case s := <-r.done:
			return s, nil
		default:
		}
		return 0, e.failure()
	case <-ctx.Done():
		return 0, e.errorf("%v (transaction %d): %w (%w)", r.typ, r.id, ErrTimeout, ctx.Err())
	}
}

// negotiate offers FrameworkVersions and the service's versions and
// records the guest's choice.
func (e *endpoint) negotiate(ctx context.Context) error {
	if err := e.acquire(ctx); err != nil {
		return err
	}
	r, err := e.sendNegotiate()
	if err != nil {
		return err
	}
	tctx, cancel := context.WithTimeout(ctx, e.negTO)
	defer cancel()
	if _, err := e.wait(tctx, r); err != nil {
		return err
	}
	v, _ := e.Versions()
	e.log.Info("ic: versions negotiated", "service", e.name, "framework", v.Framework.String(), "message", v.Message.String())
	return nil
}

// sendNegotiate sends NEGOTIATE; the caller holds the slot.
func (e *endpoint) sendNegotiate() (*request, error) {
	body, err := protocol.NegotiateMsg{Framework: FrameworkVersions[:], Message: e.offer}.Append(nil)
	if err != nil {
		<-e.slot
		return nil, e.errorf("%w", err) // a gohv bug: more than 100 versions
	}
	return e.send(protocol.MsgNegotiate, body, func(m *protocol.Message) error {
		res, err := protocol.ParseNegotiateResponse(m.Body)
		switch {
		case err != nil:
			return err
		case !res.OK:
			return fmt.Errorf("offered framework %v and message %v: %w", FrameworkVersions, e.offer, ErrNoCommonVersion)
		case !slices.Contains(FrameworkVersions[:], res.Framework) || !slices.Contains(e.offer, res.Message):
			return fmt.Errorf("guest chose framework %v and message %v, not among those offered: %w", res.Framework, res.Message, ErrMalformed)
		}
		e.versions = Versions{res.Framework, res.Message}
		close(e.negotiated)
		return nil
	})
}

// handlePacket matches a guest packet with the outstanding request. It
// keeps nothing of payload.
func (e *endpoint) handlePacket(payload []byte, transactionID uint64) error {
	e.mu.Lock()
	if e.err != nil {
		err := e.closedErr()
		e.mu.Unlock()
		return err
	}
	r := e.pending
	var status protocol.Status
	err := e.match(r, payload, transactionID, &status)
	if err != nil {
		e.failLocked(err)
		e.mu.Unlock()
		return err
	}
	e.pending = nil
	e.mu.Unlock()
	// Give the slot back before waking the waiter, so whatever it sends
	// next finds the slot free.
	<-e.slot
	r.done <- status
	return nil
}

func (e *endpoint) match(r *request, payload []byte, tid uint64, status *protocol.Status) error {
	if r == nil {
		return e.errorf("packet with transaction %d while no request is outstanding: %w", tid, ErrMalformed)
	}
	m, err := protocol.ParseMessage(payload)
	if err == nil {
		err = e.checkAnswer(r, tid, &m)
	}
	if err != nil {
		return e.errorf("answer to %v (transaction %d): %w", r.typ, r.id, err)
	}
	*status = m.Header.Status
	return nil
}

func (e *endpoint) checkAnswer(r *request, tid uint64, m *protocol.Message) error {
	const want = protocol.FlagTransaction | protocol.FlagResponse
	switch h := m.Header; {
	case tid != r.id:
		return fmt.Errorf("carries transaction %d: %w", tid, ErrMalformed)
	case h.Type != r.typ:
		return fmt.Errorf("has type %v: %w", h.Type, ErrMalformed)
	case h.Flags&(want|protocol.FlagRequest) != want:
		return fmt.Errorf("has icflags %#x, want TRANSACTION|RESPONSE: %w", h.Flags, ErrMalformed)
	case h.TransactionID != 0:
		return fmt.Errorf("has ictransaction_id %d, the request 0: %w", h.TransactionID, ErrMalformed)
	}
	if r.check != nil {
		return r.check(m)
	}
	return nil
}

// outstanding reports whether a request waits for its answer.
func (e *endpoint) outstanding() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.pending != nil
}

// ticker is a time.Ticker's channel and stop; tests replace it.
type ticker func(d time.Duration) (<-chan time.Time, func())

func realTicker(d time.Duration) (<-chan time.Time, func()) {
	t := time.NewTicker(d)
	return t.C, t.Stop
}
