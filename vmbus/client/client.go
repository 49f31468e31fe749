package client

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"gohv/hv/tlfs"
	"gohv/vmbus/proto"
)

// Transport is what the client needs of the hypervisor below it: the two
// hypercalls a guest's VMBus driver makes. Both are called on the
// goroutine of the client call that needs them and must not call back
// into the client.
type Transport interface {
	// PostMessage is HvCallPostMessage: payload (at most
	// proto.MaxMessageSize bytes) as a message of type
	// proto.SynICMessageType to connectionID. It returns an error
	// wrapping ErrBusy when the host's queue is full for now (the client
	// retries), ErrInvalidConnection when the connection names no port,
	// any other error when the message cannot be posted. StatusError
	// turns a hypercall status into such an error.
	PostMessage(connectionID uint32, payload []byte) error
	// SignalEvent is HvCallSignalEvent with flag number 0: it kicks the
	// host on a channel's connection. It must not block. The client
	// counts its failures and otherwise ignores them, as Linux does.
	SignalEvent(connectionID uint32) error
}

// Memory is the client's own guest-physical memory: the pages its rings,
// its connection pages and its GPA-direct buffers live in.
type Memory interface {
	// AllocPages returns n pages of 4 KiB (proto.PageSize), their frame
	// numbers and the client's views of them (each exactly PageSize
	// bytes, 4-byte aligned). The contents need not be zero.
	AllocPages(n int) (pfns []uint64, pages [][]byte, err error)
	// FreePages gives back pages AllocPages returned. The client frees
	// only pages the host no longer uses.
	FreePages(pfns []uint64)
}

// Errors. Each error the client returns wraps one of these (or a
// context's error) and says which call and which channel it was.
var (
	// ErrBusy is what a Transport wraps when the host's message queue is
	// full for now (HV_STATUS_INSUFFICIENT_BUFFERS or
	// HV_STATUS_INSUFFICIENT_MEMORY): the client retries.
	ErrBusy = errors.New("vmbus/client: host message queue full")
	// ErrInvalidConnection is what a Transport wraps when the connection
	// ID names no port (HV_STATUS_INVALID_CONNECTION_ID): for
	// INITIATE_CONTACT it means the version's connection does not exist,
	// and the client tries the next version; other messages are retried.
	ErrInvalidConnection = errors.New("vmbus/client: invalid connection ID")

	ErrNotConnected     = errors.New("vmbus/client: not connected")
	ErrAlreadyConnected = errors.New("vmbus/client: already connected or connecting")
	// ErrNoVersion: the host accepted none of the versions asked for.
	ErrNoVersion = errors.New("vmbus/client: the host accepted no protocol version")
	// ErrRefused: the host answered a request with a failure status (a
	// GPADL it did not create, an open it did not do) or an answer the
	// client cannot use.
	ErrRefused = errors.New("vmbus/client: refused by the host")
	// ErrNoOffer: no channel is offered with that relid.
	ErrNoOffer = errors.New("vmbus/client: no such offer")
	// ErrInUse: the offer's channel is open or being opened.
	ErrInUse = errors.New("vmbus/client: channel already open")
	// ErrRescinded: the host took the offer back. Pending waits on the
	// channel end with it; Close the channel to release its relid.
	ErrRescinded = errors.New("vmbus/client: offer rescinded")
	// ErrClosed: the channel was closed.
	ErrClosed = errors.New("vmbus/client: channel closed")
	// ErrUnloaded: the connection ended (Unload, Disconnect) under the
	// call.
	ErrUnloaded = errors.New("vmbus/client: connection unloaded")
	// ErrUnexpected: a host message that matches no request and no
	// state of the client (a reply nobody waits for, an offer before
	// the connection, a duplicate relid). It is dropped.
	ErrUnexpected = errors.New("vmbus/client: unexpected message from the host")
	// ErrInvalid: the caller's arguments are out of range.
	ErrInvalid = errors.New("vmbus/client: invalid argument")
)

// StatusError is a hypercall status as an error, for Transports: Is
// matches ErrBusy for HV_STATUS_INSUFFICIENT_BUFFERS and
// HV_STATUS_INSUFFICIENT_MEMORY and ErrInvalidConnection for
// HV_STATUS_INVALID_CONNECTION_ID.
type StatusError tlfs.Status

func (e StatusError) Error() string {
	return fmt.Sprintf("vmbus/client: hypercall failed: %v", tlfs.Status(e))
}

// Is makes errors.Is see the retryable statuses as ErrBusy and an unknown
// connection as ErrInvalidConnection.
func (e StatusError) Is(target error) bool {
	switch tlfs.Status(e) {
	case tlfs.StatusInsufficientBuffers, tlfs.StatusInsufficientMemory:
		return target == ErrBusy
	case tlfs.StatusInvalidConnectionID:
		return target == ErrInvalidConnection
	}
	return false
}

// Status is s as an error: nil for HV_STATUS_SUCCESS, else a
// StatusError.
func Status(s tlfs.Status) error {
	if s == tlfs.StatusSuccess {
		return nil
	}
	return StatusError(s)
}

// Config configures a Client.
type Config struct {
	// Versions are the protocol versions to ask for, in order (nil:
	// proto.Linux61Versions, Linux 6.1's order).
	Versions []proto.Version
	// VP is the VP index the host sends messages and channel interrupts
	// to: INITIATE_CONTACT's target_vcpu and OPENCHANNEL's target_vp.
	VP uint32
	// Log receives what the client drops or refuses (nil: discarded).
	Log *slog.Logger
}

// connState is where the connection is.
type connState int

const (
	disconnected connState = iota
	contacting             // Connect is negotiating
	connected              // a version was accepted
)

// Client is the guest end of one VMBus connection.
type Client struct {
	t   Transport
	mem Memory
	cfg Config
	log *slog.Logger

	nextGPADL atomic.Uint32

	// chans maps a relid to its open channel for DeliverEvent, which
	// reads it without a lock.
	chans [proto.MaxChannelRelIDs]atomic.Pointer[Channel]

	mu      sync.Mutex
	state   connState
	epoch   uint64 // counts connections: a Channel of an older one is gone
	version proto.Version
	msgConn uint32
	// connPages are the interrupt page and the two monitor pages
	// INITIATE_CONTACT names.
	connPages []uint64
	offers    map[uint32]*offer
	// offersChanged is closed, and replaced, when an offer comes or goes.
	offersChanged chan struct{}
	waiters       map[waitKey]*waiter
	channels      map[uint32]*Channel
	// leaked are pages the host may still use, of Opens whose wait
	// ended with its context: the next Unload frees them.
	leaked [][]uint64
	// bg is the connection's context for the posts the client makes on
	// its own (RELID_RELEASED after a rescind); bgDone ends it.
	bg     context.Context
	bgDone context.CancelFunc
	bgWG   *sync.WaitGroup // one per connection, so Wait and Add never overlap
}

// offer is the client's state of one offered relid.
type offer struct {
	Offer
	rescinded bool
	// inUse: an Open is in progress or a Channel holds the relid; the
	// one holding it sends RELID_RELEASED after a rescind.
	inUse bool
}

// Offer is a channel the host offered (OFFERCHANNEL): its device class
// (InterfaceType), instance, relid (ChildRelID), connection ID and flags.
type Offer struct {
	proto.OfferChannel
}

// RelID is the offer's child_relid.
func (o Offer) RelID() uint32 { return o.ChildRelID }

func (o Offer) String() string {
	return fmt.Sprintf("relid %d (class %v, instance %v, connection %#x)", o.ChildRelID, o.InterfaceType, o.InterfaceInstance, o.ConnectionID)
}

// gpadlBase is the first GPADL handle, as Linux chooses them (0xE1E10,
// then one more for each GPADL).
const gpadlBase = 0xe1e10

// New makes a client that speaks over t and takes its pages from mem.
// Nothing is sent until Connect.
func New(t Transport, mem Memory, cfg Config) *Client {
	if cfg.Versions == nil {
		cfg.Versions = proto.Linux61Versions[:]
	}
	log := cfg.Log
	if log == nil {
		log = slog.New(discard{})
	}
	c := &Client{
		t: t, mem: mem, cfg: cfg, log: log,
		offers:        make(map[uint32]*offer),
		offersChanged: make(chan struct{}),
		waiters:       make(map[waitKey]*waiter),
		channels:      make(map[uint32]*Channel),
	}
	c.nextGPADL.Store(gpadlBase)
	return c
}

// Version is the negotiated protocol version, 0 when not connected.
func (c *Client) Version() proto.Version {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state != connected {
		return 0
	}
	return c.version
}

// MessageConnectionID is the connection the client posts messages to
// once connected: the VERSION_RESPONSE's msg_conn_id from 5.0, 1 below.
func (c *Client) MessageConnectionID() uint32 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.msgConn
}

// waitKey names a reply the way Linux matches it: VERSION_RESPONSE,
// ALLOFFERS_DELIVERED and UNLOAD_RESPONSE by type, GPADL_CREATED by relid
// and handle, OPENCHANNEL_RESULT by relid and open ID, GPADL_TORNDOWN by
// handle.
type waitKey struct {
	typ   proto.MessageType
	relid uint32
	id    uint32
}

// waiter is one request waiting for its reply.
type waiter struct {
	relid uint32 // the channel whose rescind fails the wait; 0: none
	done  chan result
}

type result struct {
	msg proto.Message
	err error
}

// expectLocked registers a wait for reply k before the request goes out,
// so that a reply the host sends at once is not missed.
func (c *Client) expectLocked(k waitKey, relid uint32) (*waiter, error) {
	if c.waiters[k] != nil {
		return nil, fmt.Errorf("%w: a %v for relid %d id %#x is already awaited", ErrInUse, k.typ, k.relid, k.id)
	}
	w := &waiter{relid: relid, done: make(chan result, 1)}
	c.waiters[k] = w
	return w, nil
}

func (c *Client) expect(k waitKey, relid uint32) (*waiter, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.expectLocked(k, relid)
}

// forget drops a wait that will not be waited for.
func (c *Client) forget(k waitKey, w *waiter) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.waiters[k] == w {
		delete(c.waiters, k)
	}
}

// await waits for w's reply or the end of ctx.
func (c *Client) await(ctx context.Context, k waitKey, w *waiter) (proto.Message, error) {
	select {
	case r := <-w.done:
		return r.msg, r.err
	case <-ctx.Done():
		c.forget(k, w)
		// The reply may have come between the two.
		select {
		case r := <-w.done:
			return r.msg, r.err
		default:
		}
		return nil, fmt.Errorf("waiting for %v: %w", k.typ, context.Cause(ctx))
	}
}

// completeLocked hands reply m to its waiter, reporting whether there
// was one.
func (c *Client) completeLocked(k waitKey, m proto.Message) bool {
	w := c.waiters[k]
	if w == nil {
		return false
	}
	delete(c.waiters, k)
	w.done <- result{msg: m}
	return true
}

// failLocked ends the waits that match with err.
func (c *Client) failLocked(match func(waitKey, *waiter) bool, err error) {
	for k, w := range c.waiters {
		if match(k, w) {
			delete(c.waiters, k)
			w.done <- result{err: err}
		}
	}
}

// postTries bounds the posts of one message, as Linux's vmbus_post_msg
// gives up after 100.
const postTries = 100

// post sends m to connection conn, retrying with growing delays while the
// host is busy (and, except for INITIATE_CONTACT, while it does not know
// the connection, as Linux does), at most postTries times and until ctx
// ends.
func (c *Client) post(ctx context.Context, conn uint32, m proto.Message) error {
	b, err := proto.Marshal(m)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	delay := 20 * time.Microsecond
	var timer *time.Timer
	for try := 1; ; try++ {
		err := c.t.PostMessage(conn, b)
		if err == nil {
			return nil
		}
		retry := errors.Is(err, ErrBusy) ||
			(errors.Is(err, ErrInvalidConnection) && m.Type() != proto.ChannelMsgInitiateContact)
		if !retry || try == postTries {
			return fmt.Errorf("post %v to connection %d (try %d): %w", m.Type(), conn, try, err)
		}
		if timer == nil {
			timer = time.NewTimer(delay)
			defer timer.Stop()
		} else {
			timer.Reset(delay)
		}
		select {
		case <-timer.C:
		case <-ctx.Done():
			return fmt.Errorf("post %v to connection %d: %w (last: %v)", m.Type(), conn, context.Cause(ctx), err)
		}
		delay = min(2*delay, 100*time.Millisecond)
	}
}

// postMsg posts m to the negotiated message connection.
func (c *Client) postMsg(ctx context.Context, m proto.Message) error {
	c.mu.Lock()
	conn, ok := c.msgConn, c.state == connected
	c.mu.Unlock()
	if !ok {
		return ErrNotConnected
	}
	return c.post(ctx, conn, m)
}

// DeliverMessage takes one message the host sent: the payload of the SIM
// slot of SINT proto.MessageSINT (its PayloadSize bytes), for a slot
// whose message type is proto.SynICMessageType. The transport's owner
// calls it, on any goroutine, once per message and in the order they
// came; it does not block and does not keep payload. The message is
// consumed whatever the result: an error (wrapping proto.ErrMessage for a
// malformed one, ErrUnexpected for one that fits no state) says it was
// dropped, and is logged too.
func (c *Client) DeliverMessage(payload []byte) error {
	err := c.deliver(payload)
	if err != nil {
		c.log.Warn("vmbus/client: dropped a message from the host", "err", err)
	}
	return err
}

func (c *Client) deliver(payload []byte) error {
	msg, err := proto.ParseChannelMessage(payload)
	if err != nil {
		return fmt.Errorf("vmbus/client: message from the host: %w", err)
	}
	if !msg.Type().FromHost() {
		return fmt.Errorf("vmbus/client: %w: %v is a guest's message", ErrUnexpected, msg.Type())
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	k := waitKey{typ: msg.Type()}
	switch m := msg.(type) {
	case proto.OfferChannel:
		return c.offerLocked(m)
	case proto.RescindChannelOffer:
		return c.rescindLocked(m.ChildRelID)
	case proto.GPADLCreated:
		k.relid, k.id = m.ChildRelID, m.GPADL
	case proto.OpenChannelResult:
		k.relid, k.id = m.ChildRelID, m.OpenID
	case proto.GPADLTorndown:
		k.id = m.GPADL
	case proto.VersionResponse, proto.AllOffersDelivered, proto.UnloadResponse:
	default:
		// MODIFYCHANNEL_RESPONSE, TL_CONNECT_RESULT: the client sends
		// neither request.
		return fmt.Errorf("vmbus/client: %w: %v", ErrUnexpected, msg.Type())
	}
	if !c.completeLocked(k, msg) {
		return fmt.Errorf("vmbus/client: %w: %v (relid %d, id %#x) answers no request", ErrUnexpected, k.typ, k.relid, k.id)
	}
	return nil
}

// offerLocked records an OFFERCHANNEL.
func (c *Client) offerLocked(m proto.OfferChannel) error {
	relid := m.ChildRelID
	switch {
	case c.state != connected:
		return fmt.Errorf("vmbus/client: %w: offer of relid %d before the connection", ErrUnexpected, relid)
	case relid == 0 || relid >= proto.MaxChannelRelIDs:
		return fmt.Errorf("vmbus/client: %w: offer of relid %d, outside 1..%d", ErrUnexpected, relid, proto.MaxChannelRelIDs-1)
	case m.ConnectionID&^tlfs.ConnectionIDMask != 0:
		return fmt.Errorf("vmbus/client: %w: offer of relid %d with connection ID %#x above 24 bits", ErrUnexpected, relid, m.ConnectionID)
	case c.offers[relid] != nil:
		return fmt.Errorf("vmbus/client: %w: second offer of relid %d before it was released", ErrUnexpected, relid)
	}
	for _, o := range c.offers {
		if !o.rescinded && o.InterfaceType == m.InterfaceType && o.InterfaceInstance == m.InterfaceInstance && o.SubChannelIndex == m.SubChannelIndex {
			return fmt.Errorf("vmbus/client: %w: relid %d offers the channel relid %d has (%v %v #%d)", ErrUnexpected, relid, o.ChildRelID, m.InterfaceType, m.InterfaceInstance, m.SubChannelIndex)
		}
	}
	c.offers[relid] = &offer{Offer: Offer{m}}
	c.offersChangedLocked()
	return nil
}

// rescindLocked handles RESCIND_CHANNELOFFER: the offer goes, the waits
// on its channel end with ErrRescinded, and the relid is released now if
// nothing holds it, else by the one holding it.
func (c *Client) rescindLocked(relid uint32) error {
	o := c.offers[relid]
	if o == nil || o.rescinded {
		return fmt.Errorf("vmbus/client: %w: rescind of relid %d, which is not offered", ErrUnexpected, relid)
	}
	o.rescinded = true
	c.failLocked(func(_ waitKey, w *waiter) bool { return w.relid == relid }, fmt.Errorf("relid %d: %w", relid, ErrRescinded))
	if ch := c.channels[relid]; ch != nil {
		ch.rescind()
	}
	c.offersChangedLocked()
	if !o.inUse {
		delete(c.offers, relid)
		c.goLocked(func(ctx context.Context) { c.releaseRelID(ctx, relid) })
	}
	return nil
}

// releaseRelID tells the host it may reuse relid.
func (c *Client) releaseRelID(ctx context.Context, relid uint32) error {
	if err := c.postMsg(ctx, proto.RelIDReleased{ChildRelID: relid}); err != nil {
		c.log.Warn("vmbus/client: RELID_RELEASED not sent", "relid", relid, "err", err)
		return fmt.Errorf("vmbus/client: release relid %d: %w", relid, err)
	}
	return nil
}

// goLocked runs f on its own goroutine with the connection's context: the
// posts the client makes from DeliverMessage, which must not block.
func (c *Client) goLocked(f func(ctx context.Context)) {
	if c.bg == nil {
		return
	}
	ctx, wg := c.bg, c.bgWG
	wg.Add(1)
	go func() {
		defer wg.Done()
		f(ctx)
	}()
}

// finishUse ends an Open's or a Channel's hold on o's relid and reports
// whether the relid must now be released (it was rescinded meanwhile).
func (c *Client) finishUse(o *offer) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	o.inUse = false
	if o.rescinded && c.offers[o.ChildRelID] == o {
		delete(c.offers, o.ChildRelID)
		return true
	}
	return false
}

// leak keeps pages the host may still use until an Unload.
func (c *Client) leak(pfns []uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.leaked = append(c.leaked, pfns)
}

func (c *Client) offersChangedLocked() {
	close(c.offersChanged)
	c.offersChanged = make(chan struct{})
}

// DeliverEvent takes the host's signal on event flag relid of SINT
// proto.MessageSINT (the transport's owner found the flag set and cleared
// it): it wakes the channel's Receive and a Send waiting for room. Any
// goroutine; it does not block or allocate. A flag that names no open
// channel is ignored, as Linux ignores it.
func (c *Client) DeliverEvent(relid uint32) {
	if relid >= proto.MaxChannelRelIDs {
		return
	}
	if ch := c.chans[relid].Load(); ch != nil {
		ch.kick()
	}
}

// discard is a slog handler that drops everything.
type discard struct{}

func (discard) Enabled(context.Context, slog.Level) bool  { return false }
func (discard) Handle(context.Context, slog.Record) error { return nil }
func (d discard) WithAttrs([]slog.Attr) slog.Handler      { return d }
func (d discard) WithGroup(string) slog.Handler           { return d }
