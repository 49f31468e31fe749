package client

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	"gohv/vmbus/proto"
)

// This file: the connection — version negotiation, offers, unload.

// Connect negotiates a protocol version and collects the host's offers.
// It sends INITIATE_CONTACT for each of Config.Versions in turn — on
// connection 4 with messages on SINT 2 for 5.0 and later, on connection 1
// with the interrupt page below — until a VERSION_RESPONSE accepts one
// (a version whose connection the host does not have counts as
// rejected), then REQUESTOFFERS, and returns once ALLOFFERS_DELIVERED
// came. Offers that come later (hot-add) are recorded as they come. If
// ctx ends after a version was accepted, the client stays connected with
// the offers it has (Disconnect ends the connection).
func (c *Client) Connect(ctx context.Context) error {
	c.mu.Lock()
	if c.state != disconnected {
		c.mu.Unlock()
		return fmt.Errorf("vmbus/client: connect: %w", ErrAlreadyConnected)
	}
	c.state = contacting
	c.mu.Unlock()

	v, conn, err := c.negotiate(ctx)
	if err != nil {
		c.mu.Lock()
		c.state = disconnected
		c.mu.Unlock()
		return fmt.Errorf("vmbus/client: connect: %w", err)
	}

	c.mu.Lock()
	c.state, c.version, c.msgConn = connected, v, conn
	c.epoch++
	c.bg, c.bgDone = context.WithCancel(context.Background())
	c.bgWG = new(sync.WaitGroup)
	k := waitKey{typ: proto.ChannelMsgAllOffersDelivered}
	w, err := c.expectLocked(k, 0)
	c.mu.Unlock()
	if err != nil {
		return fmt.Errorf("vmbus/client: connect: %w", err)
	}
	c.log.Info("vmbus/client: connected", "version", v.String(), "msg_conn_id", conn)
	if err := c.post(ctx, conn, proto.RequestOffers{}); err != nil {
		c.forget(k, w)
		return fmt.Errorf("vmbus/client: connect (version %v): %w", v, err)
	}
	if _, err := c.await(ctx, k, w); err != nil {
		return fmt.Errorf("vmbus/client: connect (version %v): %w", v, err)
	}
	return nil
}

// negotiate finds the version, as Linux's vmbus_connect does: one
// INITIATE_CONTACT at a time, each waiting for its VERSION_RESPONSE.
func (c *Client) negotiate(ctx context.Context) (proto.Version, uint32, error) {
	if len(c.connPages) == 0 {
		// The shared interrupt page (versions below 5.0) and the two
		// monitor pages, zeroed, as Linux supplies them.
		pfns, pages, err := c.mem.AllocPages(3)
		if err != nil {
			return 0, 0, fmt.Errorf("allocate the connection pages: %w", err)
		}
		for _, p := range pages {
			clear(p)
		}
		c.connPages = pfns
	}
	var lastErr error
	for _, v := range c.cfg.Versions {
		m := proto.InitiateContact{
			VersionRequested: v,
			TargetVCPU:       c.cfg.VP,
			MonitorPage1:     c.connPages[1] * proto.PageSize,
			MonitorPage2:     c.connPages[2] * proto.PageSize,
		}
		conn := uint32(proto.MessageConnectionID)
		if v >= proto.VersionWin10V5 {
			conn = proto.MessageConnectionID4
			m.MessageSINT = proto.MessageSINT
		} else {
			m.InterruptPage = c.connPages[0] * proto.PageSize
		}
		k := waitKey{typ: proto.ChannelMsgVersionResponse}
		w, err := c.expect(k, 0)
		if err != nil {
			return 0, 0, err
		}
		if err := c.post(ctx, conn, m); err != nil {
			c.forget(k, w)
			if ctx.Err() != nil {
				return 0, 0, fmt.Errorf("version %v: %w", v, err)
			}
			// Linux goes on to the next version whatever the
			// failure; connection 4 unknown is the usual one.
			c.log.Info("vmbus/client: INITIATE_CONTACT not posted", "version", v.String(), "err", err)
			lastErr = err
			continue
		}
		msg, err := c.await(ctx, k, w)
		if err != nil {
			return 0, 0, fmt.Errorf("version %v: %w", v, err)
		}
		r := msg.(proto.VersionResponse)
		if !r.VersionSupported {
			c.log.Info("vmbus/client: version rejected", "version", v.String())
			continue
		}
		if v < proto.VersionWin10V5 {
			return v, proto.MessageConnectionID, nil
		}
		if r.MessageConnectionID == 0 || r.MessageConnectionID > 0xff_ffff {
			// Linux would post everything after to it; refuse rather
			// than talk to a connection that cannot exist.
			return 0, 0, fmt.Errorf("version %v: %w: VERSION_RESPONSE names message connection %#x", v, ErrRefused, r.MessageConnectionID)
		}
		return v, r.MessageConnectionID, nil
	}
	// Every contact that got through was rejected: the host holds none
	// of the pages.
	c.mem.FreePages(c.connPages)
	c.connPages = nil
	if lastErr != nil {
		return 0, 0, fmt.Errorf("%w (tried %v; last post failed: %v)", ErrNoVersion, c.cfg.Versions, lastErr)
	}
	return 0, 0, fmt.Errorf("%w (tried %v)", ErrNoVersion, c.cfg.Versions)
}

// Offers returns the channels on offer now, by relid, rescinded ones
// left out.
func (c *Client) Offers() []Offer {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.offersLocked()
}

func (c *Client) offersLocked() []Offer {
	out := make([]Offer, 0, len(c.offers))
	for _, o := range c.offers {
		if !o.rescinded {
			out = append(out, o.Offer)
		}
	}
	slices.SortFunc(out, func(a, b Offer) int { return cmp.Compare(a.ChildRelID, b.ChildRelID) })
	return out
}

// WaitOffer returns the first offer (by relid) that match accepts,
// waiting for one to come until ctx ends.
func (c *Client) WaitOffer(ctx context.Context, match func(Offer) bool) (Offer, error) {
	for {
		c.mu.Lock()
		for _, o := range c.offersLocked() {
			if match(o) {
				c.mu.Unlock()
				return o, nil
			}
		}
		changed := c.offersChanged
		c.mu.Unlock()
		select {
		case <-changed:
		case <-ctx.Done():
			return Offer{}, fmt.Errorf("vmbus/client: wait for an offer: %w", context.Cause(ctx))
		}
	}
}

// WaitRescind waits until relid is no longer on offer.
func (c *Client) WaitRescind(ctx context.Context, relid uint32) error {
	for {
		c.mu.Lock()
		o := c.offers[relid]
		changed := c.offersChanged
		c.mu.Unlock()
		if o == nil || o.rescinded {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return fmt.Errorf("vmbus/client: wait for the rescind of relid %d: %w", relid, context.Cause(ctx))
		}
	}
}

// Unload ends the connection the way a guest that kexecs does: UNLOAD,
// then UNLOAD_RESPONSE, after which the host has closed every channel and
// released every GPADL. Channels still open end with ErrUnloaded and
// their pages are freed; Connect may start a new connection. Below
// protocol 3.0 there is no UNLOAD (Linux sends none) and Unload fails;
// use Disconnect. If the response does not come, nothing is freed and
// the client stays connected.
func (c *Client) Unload(ctx context.Context) error {
	c.mu.Lock()
	if c.state != connected {
		c.mu.Unlock()
		return fmt.Errorf("vmbus/client: unload: %w", ErrNotConnected)
	}
	if c.version < proto.VersionWin8_1 {
		c.mu.Unlock()
		return fmt.Errorf("vmbus/client: unload: %w: protocol %v has no UNLOAD", ErrInvalid, c.version)
	}
	k := waitKey{typ: proto.ChannelMsgUnloadResponse}
	w, err := c.expectLocked(k, 0)
	conn := c.msgConn
	c.mu.Unlock()
	if err != nil {
		return fmt.Errorf("vmbus/client: unload: %w", err)
	}
	if err := c.post(ctx, conn, proto.Unload{}); err != nil {
		c.forget(k, w)
		return fmt.Errorf("vmbus/client: unload: %w", err)
	}
	if _, err := c.await(ctx, k, w); err != nil {
		return fmt.Errorf("vmbus/client: unload: %w", err)
	}
	c.teardown(true)
	return nil
}

// Disconnect ends the connection the way a guest that unloads its VMBus
// driver does: it closes every open channel (CLOSECHANNEL, GPADL
// teardown), then unloads (from protocol 3.0) and frees the connection's
// pages. The client is disconnected afterwards even if something failed;
// pages the host may still use (a channel whose teardown was not
// confirmed, every page when UNLOAD was not answered) are not freed.
func (c *Client) Disconnect(ctx context.Context) error {
	c.mu.Lock()
	if c.state != connected {
		c.mu.Unlock()
		return fmt.Errorf("vmbus/client: disconnect: %w", ErrNotConnected)
	}
	chans := make([]*Channel, 0, len(c.channels))
	for _, ch := range c.channels {
		chans = append(chans, ch)
	}
	v := c.version
	c.mu.Unlock()
	var errs []error
	for _, ch := range chans {
		if err := ch.Close(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	released := len(errs) == 0
	if v >= proto.VersionWin8_1 {
		if err := c.Unload(ctx); err != nil {
			errs = append(errs, err)
			released = false
		} else {
			return errors.Join(errs...)
		}
	}
	c.teardown(released)
	if len(errs) > 0 {
		return fmt.Errorf("vmbus/client: disconnect: %w", errors.Join(errs...))
	}
	return nil
}

// teardown forgets the connection: offers, waits, channels, the
// background posts. released says the host no longer uses any page of
// it, so the pages can be freed.
func (c *Client) teardown(released bool) {
	c.mu.Lock()
	c.state = disconnected
	c.epoch++
	c.version, c.msgConn = 0, 0
	clear(c.offers)
	c.offersChangedLocked()
	c.failLocked(func(waitKey, *waiter) bool { return true }, ErrUnloaded)
	chans := make([]*Channel, 0, len(c.channels))
	for relid, ch := range c.channels {
		chans = append(chans, ch)
		delete(c.channels, relid)
		c.chans[relid].Store(nil)
	}
	if c.bgDone != nil {
		c.bgDone()
	}
	wg := c.bgWG
	c.bg, c.bgDone, c.bgWG = nil, nil, nil
	connPages := c.connPages
	leaked := c.leaked
	c.connPages, c.leaked = nil, nil
	c.mu.Unlock()

	if wg != nil {
		wg.Wait()
	}
	for _, ch := range chans {
		ch.stop(ErrUnloaded)
		if released {
			ch.freePages()
		}
	}
	if released {
		if connPages != nil {
			c.mem.FreePages(connPages)
		}
		for _, pfns := range leaked {
			c.mem.FreePages(pfns)
		}
	}
}
