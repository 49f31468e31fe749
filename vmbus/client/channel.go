package client

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"gohv/vmbus/proto"
	"gohv/vmbus/ring"
)

// This file: opening a channel, its rings, closing it.

// MaxRingPages bounds the pages of one channel's two rings together: the
// GPADL's range array (8 bytes of range header, 8 per page) must fit
// GPADL_HEADER's 16-bit range_buflen.
const MaxRingPages = (0xffff - 8) / 8

// Channel is one open channel: the guest-to-host ring the client sends
// on and the host-to-guest ring it receives from, both in one GPADL of
// the client's pages.
type Channel struct {
	c     *Client
	o     *offer
	offer Offer
	epoch uint64 // the connection it was opened on
	gpadl uint32
	pfns  []uint64

	out *ring.Sender
	in  *ring.Receiver

	// readable and writable hold a token when the host signalled.
	readable, writable chan struct{}
	// done is closed by stop: the channel is closed or its connection
	// ended (why says which).
	done chan struct{}
	// rescinded is closed when the host rescinds the offer.
	rescinded   chan struct{}
	rescindOnce sync.Once

	sendMu  sync.Mutex // one sender at a time; guards hdr and ranges
	hdr     []byte
	ranges  []byte
	recvMu  sync.Mutex // one receiver at a time
	stateMu sync.Mutex // guards why, freed
	why     error
	freed   bool

	closeMu   sync.Mutex
	closeDone bool
	closeErr  error

	signalErrors atomic.Uint64
}

// Open opens offer's channel with rings of sendPages (guest to host) and
// recvPages (host to guest) pages, each ring one control page and the
// rest its data area, so at least 2 each. It allocates the pages,
// describes them to the host in one GPADL (GPADL_HEADER and as many
// GPADL_BODYs as it takes, then GPADL_CREATED), and opens the channel
// with them (OPENCHANNEL with userData, at most proto.UserDefinedSize
// bytes, then OPENCHANNEL_RESULT), interrupts to Config.VP. If ctx ends
// while the host holds a request, the pages stay allocated: the host may
// still use them.
func (c *Client) Open(ctx context.Context, offer Offer, sendPages, recvPages int, userData []byte) (*Channel, error) {
	relid := offer.ChildRelID
	wrap := func(err error) error { return fmt.Errorf("vmbus/client: open relid %d: %w", relid, err) }
	switch {
	case sendPages < 2 || recvPages < 2:
		return nil, wrap(fmt.Errorf("%w: rings of %d and %d pages; each needs a control page and a data page", ErrInvalid, sendPages, recvPages))
	case sendPages+recvPages > MaxRingPages:
		return nil, wrap(fmt.Errorf("%w: %d ring pages, above %d", ErrInvalid, sendPages+recvPages, MaxRingPages))
	case len(userData) > proto.UserDefinedSize:
		return nil, wrap(fmt.Errorf("%w: %d bytes of user data, above %d", ErrInvalid, len(userData), proto.UserDefinedSize))
	}
	c.mu.Lock()
	o := c.offers[relid]
	var err error
	switch {
	case c.state != connected:
		err = ErrNotConnected
	case o == nil || o.Offer != offer:
		err = ErrNoOffer
	case o.rescinded:
		err = ErrRescinded
	case o.inUse:
		err = ErrInUse
	default:
		o.inUse = true
	}
	epoch := c.epoch
	c.mu.Unlock()
	if err != nil {
		return nil, wrap(err)
	}
	ch, err := c.openChannel(ctx, o, epoch, sendPages, recvPages, userData)
	if err != nil {
		if c.finishUse(o) {
			c.mu.Lock()
			c.goLocked(func(ctx context.Context) { c.releaseRelID(ctx, relid) })
			c.mu.Unlock()
		}
		return nil, wrap(err)
	}
	return ch, nil
}

// openChannel does Open's work; o is held.
func (c *Client) openChannel(ctx context.Context, o *offer, epoch uint64, sendPages, recvPages int, userData []byte) (*Channel, error) {
	relid := o.ChildRelID
	n := sendPages + recvPages
	pfns, pages, err := c.mem.AllocPages(n)
	if err != nil {
		return nil, fmt.Errorf("allocate %d ring pages: %w", n, err)
	}
	if len(pfns) != n || len(pages) != n {
		c.mem.FreePages(pfns)
		return nil, fmt.Errorf("%w: asked Memory for %d pages, got %d frames and %d pages", ErrInvalid, n, len(pfns), len(pages))
	}
	ch := &Channel{
		c: c, o: o, offer: o.Offer, epoch: epoch, pfns: pfns,
		readable: make(chan struct{}, 1), writable: make(chan struct{}, 1),
		done: make(chan struct{}), rescinded: make(chan struct{}),
	}
	if err := ch.initRings(pages, sendPages); err != nil {
		c.mem.FreePages(pfns)
		return nil, err
	}

	// The GPADL: one range of whole pages, both rings.
	ch.gpadl = c.nextGPADL.Add(1) - 1
	array, err := proto.AppendGPARange(nil, uint32(n*proto.PageSize), 0, pfns)
	if err != nil {
		c.mem.FreePages(pfns)
		return nil, err
	}
	header, bodies, err := proto.SplitGPADL(relid, ch.gpadl, 1, array)
	if err != nil {
		c.mem.FreePages(pfns)
		return nil, err
	}
	k := waitKey{typ: proto.ChannelMsgGPADLCreated, relid: relid, id: ch.gpadl}
	w, err := c.expectRelID(k, o, epoch)
	if err != nil {
		c.mem.FreePages(pfns)
		return nil, err
	}
	conn := c.MessageConnectionID()
	if err := c.post(ctx, conn, header); err != nil {
		c.forget(k, w)
		c.mem.FreePages(pfns)
		return nil, fmt.Errorf("GPADL %#x: %w", ch.gpadl, err)
	}
	for i, b := range bodies {
		if err := c.post(ctx, conn, b); err != nil {
			c.forget(k, w)
			ch.leakPages(err)
			return nil, fmt.Errorf("GPADL %#x body %d of %d: %w (its %d pages are left allocated)", ch.gpadl, i+1, len(bodies), err, n)
		}
	}
	msg, err := c.await(ctx, k, w)
	if err != nil {
		ch.abandon(err)
		return nil, fmt.Errorf("GPADL %#x: %w", ch.gpadl, err)
	}
	if s := msg.(proto.GPADLCreated).CreationStatus; s != 0 {
		c.mem.FreePages(pfns)
		return nil, fmt.Errorf("GPADL %#x of %d pages: %w: creation status %#x", ch.gpadl, n, ErrRefused, s)
	}

	// Open. From here the host may signal: the channel takes events.
	k = waitKey{typ: proto.ChannelMsgOpenChannelResult, relid: relid, id: relid}
	c.mu.Lock()
	w, err = c.expectRelIDLocked(k, o, epoch)
	if err == nil {
		c.channels[relid] = ch
		c.chans[relid].Store(ch)
	}
	c.mu.Unlock()
	if err != nil {
		// Rescinded or unloaded since GPADL_CREATED: the host dropped
		// the GPADL.
		c.mem.FreePages(pfns)
		return nil, err
	}
	m := proto.OpenChannel{
		ChildRelID: relid, OpenID: relid, RingBufferGPADL: ch.gpadl,
		TargetVP: c.cfg.VP, DownstreamRingBufferPageOffset: uint32(sendPages),
	}
	copy(m.UserData[:], userData)
	if err := c.post(ctx, conn, m); err != nil {
		c.forget(k, w)
		ch.unregister()
		ch.stop(ErrClosed)
		// The host has the GPADL: take it back before freeing.
		if terr := ch.teardownGPADL(ctx); terr != nil {
			ch.leakPages(terr)
			return nil, fmt.Errorf("%w; then %v", err, terr)
		}
		ch.freePages()
		return nil, err
	}
	msg, err = c.await(ctx, k, w)
	if err != nil {
		ch.unregister()
		ch.stop(ErrClosed)
		ch.abandon(err)
		return nil, err
	}
	if s := msg.(proto.OpenChannelResult).Status; s != 0 {
		ch.unregister()
		ch.stop(ErrClosed)
		err := fmt.Errorf("%w: open status %#x", ErrRefused, s)
		if terr := ch.teardownGPADL(ctx); terr != nil {
			ch.leakPages(terr)
			return nil, fmt.Errorf("%w; then %v", err, terr)
		}
		ch.freePages()
		return nil, err
	}
	return ch, nil
}

// initRings lays out the rings in the pages: the first sendPages are the
// guest-to-host ring, the rest the host-to-guest one, each initialised.
func (ch *Channel) initRings(pages [][]byte, sendPages int) error {
	for i, p := range pages {
		if len(p) != proto.PageSize {
			return fmt.Errorf("%w: Memory returned page %d of %d bytes", ErrInvalid, i, len(p))
		}
		clear(p)
	}
	outMem, err := ring.NewPageMemory(pages[:sendPages])
	if err != nil {
		return err
	}
	inMem, err := ring.NewPageMemory(pages[sendPages:])
	if err != nil {
		return err
	}
	if err := ring.Init(outMem); err != nil {
		return err
	}
	if err := ring.Init(inMem); err != nil {
		return err
	}
	if ch.out, err = ring.NewSender(outMem, ch.signalHost); err != nil {
		return err
	}
	ch.in, err = ring.NewReceiver(inMem, ch.signalHost)
	return err
}

// expectRelID registers a wait on o's channel unless o was rescinded or
// the connection ended.
func (c *Client) expectRelID(k waitKey, o *offer, epoch uint64) (*waiter, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.expectRelIDLocked(k, o, epoch)
}

func (c *Client) expectRelIDLocked(k waitKey, o *offer, epoch uint64) (*waiter, error) {
	switch {
	case c.epoch != epoch:
		return nil, ErrUnloaded
	case o.rescinded:
		return nil, fmt.Errorf("relid %d: %w", o.ChildRelID, ErrRescinded)
	}
	return c.expectLocked(k, o.ChildRelID)
}

// abandon settles the pages after a wait on the host failed with err: a
// rescind or an unload means the host let go of them, anything else
// (ctx) that it may still hold them.
func (ch *Channel) abandon(err error) {
	if errors.Is(err, ErrRescinded) || errors.Is(err, ErrUnloaded) {
		ch.freePages()
		return
	}
	ch.leakPages(err)
}

// leakPages keeps the pages, which the host may still use, until the
// next Unload.
func (ch *Channel) leakPages(err error) {
	ch.c.log.Warn("vmbus/client: ring pages left allocated until an unload: the host may still use them", "relid", ch.offer.ChildRelID, "gpadl", ch.gpadl, "err", err)
	ch.stateMu.Lock()
	leak := !ch.freed
	ch.freed = true
	ch.stateMu.Unlock()
	if leak {
		ch.c.leak(ch.pfns)
	}
}

// teardownGPADL takes the ring GPADL back: GPADL_TEARDOWN, then
// GPADL_TORNDOWN. Nil means the host no longer uses the pages (it
// confirmed, or the offer was rescinded, or the connection unloaded).
func (ch *Channel) teardownGPADL(ctx context.Context) error {
	c := ch.c
	k := waitKey{typ: proto.ChannelMsgGPADLTorndown, id: ch.gpadl}
	w, err := c.expectRelID(k, ch.o, ch.epoch)
	if errors.Is(err, ErrRescinded) || errors.Is(err, ErrUnloaded) {
		// Linux sends no GPADL_TEARDOWN for a rescinded channel.
		return nil
	}
	if err != nil {
		return err
	}
	if err := c.postMsg(ctx, proto.GPADLTeardown{ChildRelID: ch.offer.ChildRelID, GPADL: ch.gpadl}); err != nil {
		c.forget(k, w)
		return fmt.Errorf("GPADL %#x teardown: %w", ch.gpadl, err)
	}
	if _, err := c.await(ctx, k, w); err != nil {
		if errors.Is(err, ErrRescinded) || errors.Is(err, ErrUnloaded) {
			return nil
		}
		return fmt.Errorf("GPADL %#x teardown: %w", ch.gpadl, err)
	}
	return nil
}

// unregister stops event delivery to the channel and drops it from the
// open set.
func (ch *Channel) unregister() {
	c := ch.c
	relid := ch.offer.ChildRelID
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.channels[relid] == ch {
		delete(c.channels, relid)
	}
	c.chans[relid].CompareAndSwap(ch, nil)
}

// Close closes the channel: CLOSECHANNEL, then GPADL_TEARDOWN and its
// GPADL_TORNDOWN, then the pages are freed. Sends and receives in
// progress end with ErrClosed. For a rescinded channel it sends no
// teardown (the host dropped the GPADL) and releases the relid
// (RELID_RELEASED). If a message cannot be posted or the host does not
// confirm the teardown before ctx ends, the pages stay allocated (an
// Unload frees them). A second Close returns what the first did.
func (ch *Channel) Close(ctx context.Context) error {
	ch.closeMu.Lock()
	defer ch.closeMu.Unlock()
	if ch.closeDone {
		return ch.closeErr
	}
	ch.closeDone = true
	if err := ch.close(ctx); err != nil {
		ch.closeErr = fmt.Errorf("vmbus/client: close relid %d: %w", ch.offer.ChildRelID, err)
	}
	return ch.closeErr
}

func (ch *Channel) close(ctx context.Context) error {
	c := ch.c
	relid := ch.offer.ChildRelID
	ch.stop(ErrClosed)
	c.chans[relid].CompareAndSwap(ch, nil)
	c.mu.Lock()
	gone := c.epoch != ch.epoch
	c.mu.Unlock()
	if gone {
		return nil // the connection ended; its teardown settled the pages
	}
	// Linux posts CLOSECHANNEL even for a rescinded channel.
	if err := c.postMsg(ctx, proto.CloseChannel{ChildRelID: relid}); err != nil {
		if errors.Is(err, ErrNotConnected) {
			return nil
		}
		return fmt.Errorf("%w (its ring pages are left allocated)", err)
	}
	if err := ch.teardownGPADL(ctx); err != nil {
		return fmt.Errorf("%w (its ring pages are left allocated)", err)
	}
	ch.unregister()
	ch.freePages()
	if c.finishUse(ch.o) {
		return c.releaseRelID(ctx, relid)
	}
	return nil
}

// stop ends the channel's sends and receives with why and waits for the
// ones in progress to leave the rings.
func (ch *Channel) stop(why error) {
	ch.stateMu.Lock()
	if ch.why == nil {
		ch.why = why
		close(ch.done)
	}
	ch.stateMu.Unlock()
	ch.sendMu.Lock()
	ch.sendMu.Unlock() //nolint:staticcheck // a barrier: the sender has left the ring
	ch.recvMu.Lock()
	ch.recvMu.Unlock() //nolint:staticcheck // the same for the receiver
}

// stopped is why the channel stopped, nil while it runs.
func (ch *Channel) stopped() error {
	select {
	case <-ch.done:
		ch.stateMu.Lock()
		defer ch.stateMu.Unlock()
		return ch.why
	default:
		return nil
	}
}

// freePages gives the ring pages back, once; the channel is stopped.
func (ch *Channel) freePages() {
	ch.stateMu.Lock()
	defer ch.stateMu.Unlock()
	if !ch.freed {
		ch.freed = true
		ch.c.mem.FreePages(ch.pfns)
	}
}

// rescind marks the channel rescinded: waits end, receives return what
// is left in the ring and then ErrRescinded.
func (ch *Channel) rescind() {
	ch.rescindOnce.Do(func() { close(ch.rescinded) })
}

func (ch *Channel) isRescinded() bool {
	select {
	case <-ch.rescinded:
		return true
	default:
		return false
	}
}

// kick wakes a receiver and a sender waiting for room.
func (ch *Channel) kick() {
	select {
	case ch.readable <- struct{}{}:
	default:
	}
	select {
	case ch.writable <- struct{}{}:
	default:
	}
}

// signalHost is both rings' signal: HvSignalEvent on the offer's
// connection.
func (ch *Channel) signalHost() {
	if err := ch.c.t.SignalEvent(ch.offer.ConnectionID); err != nil {
		ch.signalErrors.Add(1)
	}
}

// Offer is the offer the channel was opened from.
func (ch *Channel) Offer() Offer { return ch.offer }

// RelID is the channel's relid.
func (ch *Channel) RelID() uint32 { return ch.offer.ChildRelID }

// GPADL is the handle of the GPADL holding the rings.
func (ch *Channel) GPADL() uint32 { return ch.gpadl }

// Rescinded is closed when the host rescinds the channel's offer.
func (ch *Channel) Rescinded() <-chan struct{} { return ch.rescinded }

// SignalErrors counts the HvSignalEvent calls the Transport failed.
func (ch *Channel) SignalErrors() uint64 { return ch.signalErrors.Load() }

// MaxPacketSize is the largest packet (descriptor, extension and
// payload) the guest-to-host ring can hold.
func (ch *Channel) MaxPacketSize() int { return ch.out.MaxPacketSize() }
