package storvsc

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"gohv/root/storvsp/protocol"
	"gohv/vmbus/client"
	"gohv/vmbus/proto"
)

// RingPages is the size of each of the channel's two rings in 4 KiB
// pages, control page included: 128 KiB each way, Linux 6.1's
// storvsc_ringbuffer_size.
const RingPages = 32

// UserDataSize is the OPENCHANNEL user data storvsc sends: a zeroed
// vmstorage_channel_properties.
const UserDataSize = protocol.ChannelPropsSize

// Special transaction IDs (Linux's VMBUS_RQST_INIT and VMBUS_RQST_RESET):
// the initialisation requests and the bus reset carry these; I/O requests
// carry small IDs from 1 up, and 0 from the host means "unsolicited".
const (
	TransactionInit  uint64 = 0xFFFF_FFFF_FFFF_FFFD
	TransactionReset uint64 = 0xFFFF_FFFF_FFFF_FFFC
)

// DefaultStepTimeout bounds each initialisation request and the reset, as
// Linux's storvsc waits 5 s for each before it gives up on the device.
const DefaultStepTimeout = 5 * time.Second

// Linux's layout of a GPA-direct packet: a transfer of at most
// linuxPFNSlots pages goes out in a fixed multipage buffer of that many
// PFN slots, the unused ones stale (linux-guest-hyperv-facts.md §6.4, the
// PFN-count trap); a longer one lists exactly its pages.
const linuxPFNSlots = 32

// StalePFN fills the PFN slots after a range's last page. Linux leaves
// whatever an earlier request put there; the client writes a frame no
// partition has, so a host that reads a slot it should not fails loudly
// instead of touching some other page.
const StalePFN = ^uint64(0)

// Errors. Everything the package returns wraps one of these, a
// *CommandError, a vmbus/client error or a context's error.
var (
	// ErrInvalid: the caller's arguments are out of range.
	ErrInvalid = errors.New("storvsc: invalid argument")
	// ErrNoVersion: the host refused every protocol version offered.
	ErrNoVersion = errors.New("storvsc: the host accepted no protocol version")
	// ErrRefused: an initialisation or reset request failed at the host
	// (a status other than success, or an answer that is no COMPLETE_IO).
	ErrRefused = errors.New("storvsc: refused by the host")
	// ErrBadCompletion: the host's answer to a request breaks the
	// protocol (wrong packet type or length, wrong operation, more data
	// than the request had room for). The request fails with it.
	ErrBadCompletion = errors.New("storvsc: malformed completion from the host")
	// ErrStopped: the controller stopped (closed, its channel rescinded,
	// its ring corrupt); the error also wraps the cause.
	ErrStopped = errors.New("storvsc: controller stopped")
)

// Config configures a Controller.
type Config struct {
	// Versions are the protocol versions to offer, in order, stopping at
	// the first the host accepts (nil: protocol.LinuxVersions, Linux
	// 6.1's 6.2, 6.0, 5.1).
	Versions []protocol.Version
	// StepTimeout bounds each initialisation request and a reset
	// (0: DefaultStepTimeout); the caller's context bounds them too.
	StepTimeout time.Duration
	// PortNumber is what the SRBs carry as port_number (Linux: its SCSI
	// host number; the host ignores it).
	PortNumber uint8
	// OnRescan is called, on the controller's receiving goroutine, when
	// the host sends ENUMERATE_BUS or REMOVE_DEVICE (trans_id 0): the
	// LUNs changed and the guest should scan again. It must not block.
	OnRescan func(op protocol.Operation)
	// Log receives what the controller drops or refuses (nil: discarded).
	Log *slog.Logger
}

// Controller is one synthetic SCSI controller: an open VMBus channel
// offered with the SCSI interface GUID, initialised, carrying SCSI
// requests to the host's storage VSP.
type Controller struct {
	ch    *client.Channel
	mem   client.Memory
	cfg   Config
	log   *slog.Logger
	props protocol.ChannelProperties
	ver   protocol.Version

	ctlMu sync.Mutex // one initialisation request or reset at a time

	mu      sync.Mutex
	pending map[uint64]*call
	freeIDs []uint64 // transaction IDs given back, reused first
	nextID  uint64
	stopErr error     // set once: the controller stopped
	orphans []*Buffer // buffers of requests the host may still hold after a stop
	done    chan struct{}

	recvDone chan struct{}

	requests, completions, unsolicited, dropped, bad atomic.Uint64
}

// call is one request waiting for its completion.
type call struct {
	tid  uint64
	buf  *Buffer // the data pages it holds, nil without data
	max  uint32  // data_transfer_length sent: the most the host may report
	done chan struct{}
	// Set by the receiver before done is closed.
	resp protocol.Packet
	err  error
	// abandoned: the waiter left (its context); the receiver releases
	// buf when the completion comes.
	abandoned bool
}

// Open opens offer's channel on vc with Linux's ring sizes and user data,
// starts the goroutine that takes the host's completions, and runs Linux
// 6.1's storvsc_channel_init: BEGIN_INITIALIZATION, QUERY_PROTOCOL_VERSION
// for each of cfg.Versions until one succeeds, QUERY_PROPERTIES,
// END_INITIALIZATION. mem is the guest memory data buffers come from (the
// same the client allocates its rings from). A failure closes the channel
// again.
func Open(ctx context.Context, vc *client.Client, mem client.Memory, offer client.Offer, cfg Config) (*Controller, error) {
	if offer.InterfaceType != proto.SCSIGUID {
		return nil, fmt.Errorf("%w: offer %v is not a SCSI controller", ErrInvalid, offer)
	}
	if cfg.Versions == nil {
		cfg.Versions = protocol.LinuxVersions[:]
	}
	if len(cfg.Versions) == 0 {
		return nil, fmt.Errorf("%w: no protocol version to offer", ErrInvalid)
	}
	if cfg.StepTimeout <= 0 {
		cfg.StepTimeout = DefaultStepTimeout
	}
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ch, err := vc.Open(ctx, offer, RingPages, RingPages, make([]byte, UserDataSize))
	if err != nil {
		return nil, fmt.Errorf("storvsc: %w", err)
	}
	c := &Controller{
		ch: ch, mem: mem, cfg: cfg, log: log.With("relid", ch.RelID()),
		pending: make(map[uint64]*call), nextID: 1,
		done: make(chan struct{}), recvDone: make(chan struct{}),
	}
	go c.receive()
	if err := c.initialise(ctx); err != nil {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.StepTimeout)
		defer cancel()
		if cerr := c.Close(cctx); cerr != nil {
			err = fmt.Errorf("%w; closing the channel: %v", err, cerr)
		}
		return nil, err
	}
	return c, nil
}

// initialise runs the VSTOR initialisation (linux-guest-hyperv-facts.md §6.3).
func (c *Controller) initialise(ctx context.Context) error {
	if _, err := c.control(ctx, protocol.OpBeginInitialization, nil, true); err != nil {
		return err
	}
	for _, v := range c.cfg.Versions {
		resp, err := c.control(ctx, protocol.OpQueryProtocolVersion, func(p *protocol.Packet) {
			p.SetProtocolVersion(protocol.ProtocolVersion{MajorMinor: v})
		}, false)
		if err != nil {
			return err
		}
		if resp.Status == protocol.StatusSuccess {
			c.ver = v
			c.log.Debug("storvsc: protocol negotiated", "version", v.String())
			break
		}
		c.log.Debug("storvsc: protocol version refused", "version", v.String(), "status", resp.Status.String())
	}
	if c.ver == 0 {
		return fmt.Errorf("storvsc: relid %d: %w (offered %v)", c.ch.RelID(), ErrNoVersion, c.cfg.Versions)
	}
	resp, err := c.control(ctx, protocol.OpQueryProperties, nil, true)
	if err != nil {
		return err
	}
	props, err := resp.ChannelProperties()
	if err != nil {
		return fmt.Errorf("storvsc: relid %d: QUERY_PROPERTIES: %w: %v", c.ch.RelID(), ErrBadCompletion, err)
	}
	// Linux: max_sectors = round_down(max_transfer_bytes, 4096)/512, so
	// anything below a page leaves it no I/O at all.
	if props.MaxTransferBytes < proto.PageSize {
		return fmt.Errorf("storvsc: relid %d: QUERY_PROPERTIES: %w: max_transfer_bytes %d", c.ch.RelID(), ErrRefused, props.MaxTransferBytes)
	}
	c.props = props
	if _, err := c.control(ctx, protocol.OpEndInitialization, nil, true); err != nil {
		return err
	}
	return nil
}

// control sends one initialisation request (or a reset) in-band with
// the special transaction ID and waits, at most StepTimeout, for its
// COMPLETE_IO. With mustSucceed a status other than success is
// ErrRefused.
func (c *Controller) control(ctx context.Context, op protocol.Operation, set func(*protocol.Packet), mustSucceed bool) (protocol.Packet, error) {
	c.ctlMu.Lock()
	defer c.ctlMu.Unlock()
	tid := TransactionInit
	if op == protocol.OpResetBus || op == protocol.OpResetAdapter || op == protocol.OpResetLUN {
		tid = TransactionReset
	}
	wrap := func(err error) error { return fmt.Errorf("storvsc: relid %d: %v: %w", c.ch.RelID(), op, err) }
	req := protocol.Packet{Operation: op, Flags: protocol.FlagRequestCompletion}
	if set != nil {
		set(&req)
	}
	payload := req.Marshal()
	ctx, cancel := context.WithTimeout(ctx, c.cfg.StepTimeout)
	defer cancel()
	cl, err := c.register(tid, nil, 0)
	if err != nil {
		return protocol.Packet{}, wrap(err)
	}
	if err := c.ch.SendInband(ctx, proto.PacketFlagCompletionRequested, tid, payload[:]); err != nil {
		c.unregister(cl)
		return protocol.Packet{}, wrap(err)
	}
	c.requests.Add(1)
	resp, err := c.wait(ctx, cl)
	if err != nil {
		return protocol.Packet{}, wrap(err)
	}
	if mustSucceed && resp.Status != protocol.StatusSuccess {
		return resp, wrap(fmt.Errorf("%w: status %v", ErrRefused, resp.Status))
	}
	return resp, nil
}

// register allocates a transaction ID (or takes the special one) and
// records the request before it is sent, so a completion that comes at
// once finds it. buf, if any, is already acquired.
func (c *Controller) register(tid uint64, buf *Buffer, max uint32) (*call, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopErr != nil {
		return nil, c.stopErr
	}
	if tid == 0 {
		if n := len(c.freeIDs); n > 0 {
			tid = c.freeIDs[n-1]
			c.freeIDs = c.freeIDs[:n-1]
		} else {
			tid = c.nextID
			c.nextID++
		}
	} else if c.pending[tid] != nil {
		return nil, fmt.Errorf("%w: transaction %#x in flight", ErrInvalid, tid)
	}
	cl := &call{tid: tid, buf: buf, max: max, done: make(chan struct{})}
	c.pending[tid] = cl
	return cl, nil
}

// unregister forgets a request that was never sent.
func (c *Controller) unregister(cl *call) {
	c.mu.Lock()
	if c.pending[cl.tid] == cl {
		c.forgetLocked(cl)
	}
	buf := cl.buf
	cl.buf = nil
	c.mu.Unlock()
	if buf != nil {
		buf.release()
	}
}

// forgetLocked drops cl from the pending set and frees its ID.
func (c *Controller) forgetLocked(cl *call) {
	delete(c.pending, cl.tid)
	if cl.tid != TransactionInit && cl.tid != TransactionReset {
		c.freeIDs = append(c.freeIDs, cl.tid)
	}
}

// wait waits for cl's completion. If ctx ends first the request stays
// registered: the host still holds it, and its buffer until it answers.
func (c *Controller) wait(ctx context.Context, cl *call) (protocol.Packet, error) {
	select {
	case <-cl.done:
	case <-ctx.Done():
		c.mu.Lock()
		select {
		case <-cl.done:
			c.mu.Unlock()
		default:
			cl.abandoned = true
			c.mu.Unlock()
			return protocol.Packet{}, context.Cause(ctx)
		}
	}
	if cl.buf != nil {
		cl.buf.release()
		cl.buf = nil
	}
	return cl.resp, cl.err
}

// receive takes the host's packets until the channel stops.
func (c *Controller) receive() {
	defer close(c.recvDone)
	buf := make([]byte, recvBufSize)
	for {
		p, err := c.ch.Receive(context.Background(), buf)
		switch {
		case err == nil:
			c.dispatch(&p, buf)
		case errors.Is(err, proto.ErrPacket):
			// Consumed and unparsable: nothing to match it to.
			c.dropped.Add(1)
			c.log.Warn("storvsc: host packet dropped", "err", err)
		default:
			// Rescinded, closed, unloaded, a corrupt ring, or a packet
			// longer than any the protocol has (it stays in the ring).
			c.stop(err)
			return
		}
	}
}

// recvBufSize holds any packet a host should send (80 bytes) with room to
// see, and refuse, longer ones.
const recvBufSize = 4096

// completionLen8 and completionOffset8 are the only shape of a host's
// completion Linux reads right: the 16-byte descriptor and the 64-byte
// vstor_packet, 80 bytes (§6.3: longer ones desynchronise its ring,
// shorter ones are dropped).
const (
	completionOffset8 = proto.DescriptorSize / 8
	completionLen8    = (proto.DescriptorSize + protocol.PacketSize) / 8
)

// dispatch handles one host packet: a completion is matched to its
// request by transaction ID; trans_id 0 is the host's own (a rescan
// request). Host-controlled: p and raw.
func (c *Controller) dispatch(p *proto.Packet, raw []byte) {
	if p.TransactionID == 0 {
		c.unsolicitedPacket(p)
		return
	}
	var err error
	d, _ := proto.ParseDescriptor(raw) // ParsePacket read it already
	switch {
	case p.Type != proto.PktComp:
		err = fmt.Errorf("%w: a %v packet, not a completion", ErrBadCompletion, p.Type)
	case d.DataOffset8 != completionOffset8 || d.Length8 != completionLen8:
		err = fmt.Errorf("%w: offset8 %d len8 %d, want %d and %d (a 64-byte vstor_packet after the descriptor)",
			ErrBadCompletion, d.DataOffset8, d.Length8, completionOffset8, completionLen8)
	}
	var resp protocol.Packet
	if err == nil {
		resp, err = protocol.ParsePacket(p.Payload)
		if err == nil && resp.Operation != protocol.OpCompleteIO {
			err = fmt.Errorf("%w: operation %v, want COMPLETE_IO", ErrBadCompletion, resp.Operation)
		}
	}

	c.mu.Lock()
	cl := c.pending[p.TransactionID]
	if cl == nil {
		c.mu.Unlock()
		c.dropped.Add(1)
		c.log.Warn("storvsc: completion for no request in flight", "transaction", p.TransactionID)
		return
	}
	if err == nil && cl.tid != TransactionInit && cl.tid != TransactionReset {
		err = checkSRB(&resp, cl.max)
	}
	c.forgetLocked(cl)
	var release *Buffer
	if cl.abandoned {
		release, cl.buf = cl.buf, nil
	}
	cl.resp, cl.err = resp, err
	close(cl.done)
	c.mu.Unlock()
	if err != nil {
		c.bad.Add(1)
		c.log.Warn("storvsc: bad completion", "transaction", p.TransactionID, "err", err)
	} else {
		c.completions.Add(1)
	}
	if release != nil {
		release.release()
	}
}

// checkSRB checks an EXECUTE_SRB's completion: a whole vmscsi_request, and
// no more data than the request had room for.
func checkSRB(resp *protocol.Packet, max uint32) error {
	srb, err := resp.SCSIRequest()
	if err != nil {
		return fmt.Errorf("%w: %v", ErrBadCompletion, err)
	}
	if srb.DataTransferLength > max {
		return fmt.Errorf("%w: data_transfer_length %d for a %d-byte buffer", ErrBadCompletion, srb.DataTransferLength, max)
	}
	return nil
}

// unsolicitedPacket handles a host packet with trans_id 0: ENUMERATE_BUS
// and REMOVE_DEVICE ask for a rescan (Linux: at least 4 bytes; a
// COMPLETE_IO with ID 0 is invalid).
func (c *Controller) unsolicitedPacket(p *proto.Packet) {
	if len(p.Payload) < 4 {
		c.dropped.Add(1)
		c.log.Warn("storvsc: unsolicited packet too short", "bytes", len(p.Payload))
		return
	}
	op := protocol.Operation(binary.LittleEndian.Uint32(p.Payload))
	switch op {
	case protocol.OpEnumerateBus, protocol.OpRemoveDevice:
		c.unsolicited.Add(1)
		if c.cfg.OnRescan != nil {
			c.cfg.OnRescan(op)
		}
	default:
		c.dropped.Add(1)
		c.log.Warn("storvsc: unsolicited packet ignored", "operation", op.String())
	}
}

// stop ends the controller with why: every request in flight fails. Their
// buffers stay held unless the host has let go of the channel (rescind,
// unload): Close releases them once the channel is closed.
func (c *Controller) stop(why error) {
	err := fmt.Errorf("%w: %w", ErrStopped, why)
	c.mu.Lock()
	if c.stopErr != nil {
		c.mu.Unlock()
		return
	}
	c.stopErr = err
	for _, cl := range c.pending {
		if cl.buf != nil {
			c.orphans = append(c.orphans, cl.buf)
			cl.buf = nil
		}
		if !cl.abandoned {
			cl.err = err
			close(cl.done)
		}
	}
	clear(c.pending)
	close(c.done)
	c.mu.Unlock()
	if errors.Is(why, client.ErrRescinded) || errors.Is(why, client.ErrUnloaded) {
		c.releaseOrphans() // the host dropped the channel and everything on it
	}
	c.log.Debug("storvsc: controller stopped", "err", why)
}

// releaseOrphans lets go of the buffers of requests the controller failed
// when it stopped: the host no longer holds them.
func (c *Controller) releaseOrphans() {
	c.mu.Lock()
	o := c.orphans
	c.orphans = nil
	c.mu.Unlock()
	for _, b := range o {
		b.release()
	}
}

// Close closes the channel (CLOSECHANNEL and the GPADL's teardown);
// requests in flight fail with ErrStopped. Once the host has confirmed,
// the buffers those requests held are released. A second Close returns
// what the first did.
func (c *Controller) Close(ctx context.Context) error {
	err := c.ch.Close(ctx)
	<-c.recvDone // Close stopped the channel: Receive returned
	c.stop(client.ErrClosed)
	if err == nil {
		c.releaseOrphans()
	}
	return err
}

// Done is closed when the controller stops: closed, or its channel
// rescinded or broken.
func (c *Controller) Done() <-chan struct{} { return c.done }

// Err is why the controller stopped (wrapping ErrStopped), nil while it
// runs.
func (c *Controller) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stopErr
}

// Version is the negotiated VSTOR protocol version.
func (c *Controller) Version() protocol.Version { return c.ver }

// Properties are the host's answer to QUERY_PROPERTIES.
func (c *Controller) Properties() protocol.ChannelProperties { return c.props }

// MaxTransferBytes is the most data one request may carry: the host's
// max_transfer_bytes rounded down to whole pages, as Linux uses it.
func (c *Controller) MaxTransferBytes() int {
	return int(c.props.MaxTransferBytes) &^ (proto.PageSize - 1)
}

// Channel is the VMBus channel the controller runs on.
func (c *Controller) Channel() *client.Channel { return c.ch }

// NewBuffer allocates a data buffer of n bytes from the controller's
// memory.
func (c *Controller) NewBuffer(n int) (*Buffer, error) { return NewBuffer(c.mem, n) }

// Stats count the controller's traffic.
type Stats struct {
	// Requests are the packets written to the ring (initialisation
	// included); Completions those the host answered well.
	Requests, Completions uint64
	// Unsolicited: ENUMERATE_BUS and REMOVE_DEVICE from the host.
	Unsolicited uint64
	// Dropped: host packets that matched nothing or did not parse.
	Dropped uint64
	// BadCompletions: answers that failed their request with
	// ErrBadCompletion.
	BadCompletions uint64
}

// Stats returns the counters.
func (c *Controller) Stats() Stats {
	return Stats{
		Requests: c.requests.Load(), Completions: c.completions.Load(),
		Unsolicited: c.unsolicited.Load(), Dropped: c.dropped.Load(), BadCompletions: c.bad.Load(),
	}
}

// ResetBus sends RESET_BUS (as Linux's host-reset handler does, with
// TransactionReset) and waits, at most StepTimeout, for its completion;
// the host completes it once the requests before it have completed.
func (c *Controller) ResetBus(ctx context.Context) error {
	_, err := c.control(ctx, protocol.OpResetBus, nil, true)
	return err
}
