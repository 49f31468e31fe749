package worker

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"gohv/hv"
	"gohv/root/ic"
	"gohv/vmbus/proto"
	"gohv/vmbus/server"
)

// icDevice is one integration service's VMBus device (hv_utils' side):
// each open of its channel runs a fresh service until the channel closes.
type icDevice struct {
	offer ic.Offer
	// start makes the service for an open channel.
	start func(ch ic.Channel) (ic.Service, error)
	srv   *server.Server
	log   *slog.Logger

	mu      sync.Mutex
	current ic.Service // the open channel's service; nil when closed
}

func (d *icDevice) Offer() server.Offer {
	o := server.Offer{InterfaceType: d.offer.Class, InterfaceInstance: d.offer.Instance, ChannelFlags: proto.ChannelNamedPipeMode}
	binary.LittleEndian.PutUint32(o.UserDefined[:], proto.PipeTypeMessage)
	return o
}

func (d *icDevice) Open(ch *server.Channel) (server.Handler, error) {
	h := &icChannel{d: d, ch: ch}
	svc, err := d.start(h)
	if err != nil {
		return nil, err
	}
	h.svc = svc
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	h.ran = make(chan struct{})
	d.mu.Lock()
	d.current = svc
	d.mu.Unlock()
	relid := ch.RelID()
	go func() {
		defer close(h.ran)
		if err := svc.Run(ctx); err != nil && ctx.Err() == nil {
			d.log.Warn("integration service failed; closing its channel", "service", d.offer.Name, "err", err)
			d.srv.Rescind(relid)
		}
	}()
	return h, nil
}

// service is the open channel's service, nil when the guest has not
// opened the channel (hv_utils not loaded) or closed it.
func (d *icDevice) service() ic.Service {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.current
}

// icChannel joins one open of an IC channel to its service.
type icChannel struct {
	d      *icDevice
	ch     *server.Channel
	svc    ic.Service
	cancel context.CancelFunc
	ran    chan struct{}
}

// Send writes a service's request: an in-band packet, no completion
// requested (the guest answers with an in-band packet of its own).
func (h *icChannel) Send(payload []byte, transactionID uint64) error {
	return h.ch.SendInband(0, transactionID, payload)
}

// Packet hands the guest's answer to the service. Guest-controlled: p.
func (h *icChannel) Packet(p *proto.Packet) error {
	if p.Type != proto.PktDataInband {
		return fmt.Errorf("ic %s: %v packet; the guest answers in band: %w", h.d.offer.Name, p.Type, ic.ErrMalformed)
	}
	return h.svc.HandlePacket(p.Payload, p.TransactionID)
}

func (h *icChannel) Close(error) {
	h.cancel()
	<-h.ran
	h.d.mu.Lock()
	if h.d.current == h.svc {
		h.d.current = nil
	}
	h.d.mu.Unlock()
}

// partitionClock is the time the time-sync service hands the guest: the
// partition's reference time and the root's wall clock.
type partitionClock struct{ p *hv.Partition }

func (c partitionClock) ReferenceTime() uint64 { return c.p.ReferenceTime() }
func (c partitionClock) Now() time.Time        { return time.Now() }

// addIntegrationServices offers shutdown, heartbeat and time sync.
func (w *Worker) addIntegrationServices() error {
	cfg := ic.Config{Logger: w.log}
	w.shutdown = &icDevice{offer: ic.ShutdownOffer, srv: w.srv, log: w.log,
		start: func(ch ic.Channel) (ic.Service, error) { return ic.NewShutdown(ch, cfg) }}
	w.heartbeat = &icDevice{offer: ic.HeartbeatOffer, srv: w.srv, log: w.log,
		start: func(ch ic.Channel) (ic.Service, error) {
			return ic.NewHeartbeat(ch, ic.HeartbeatConfig{Config: cfg})
		}}
	timesync := &icDevice{offer: ic.TimeSyncOffer, srv: w.srv, log: w.log,
		start: func(ch ic.Channel) (ic.Service, error) {
			return ic.NewTimeSync(ch, ic.TimeSyncConfig{Config: cfg, Clock: partitionClock{w.p}})
		}}
	for _, d := range []*icDevice{w.shutdown, w.heartbeat, timesync} {
		if _, err := w.srv.AddDevice(d); err != nil {
			return fmt.Errorf("integration service %s: %w", d.offer.Name, err)
		}
	}
	return nil
}

// ErrNoShutdownChannel: the guest has not opened the shutdown channel.
var ErrNoShutdownChannel = errors.New("the guest has not opened its shutdown channel (is Linux's hv_utils loaded?)")

// Shutdown asks the guest to shut down (or, with reboot, to restart)
// through its shutdown integration service, and waits for its answer
// (not for the power-off itself: the partition's end says that).
func (w *Worker) Shutdown(ctx context.Context, reboot bool) error {
	s, ok := w.shutdown.service().(*ic.Shutdown)
	if !ok {
		return fmt.Errorf("worker: partition %s: %w", w.p.Name, ErrNoShutdownChannel)
	}
	if _, err := s.RequestShutdown(ctx, reboot); err != nil {
		return fmt.Errorf("worker: partition %s: shutdown: %w", w.p.Name, err)
	}
	return nil
}

// Heartbeat is the guest's heartbeat so far; false when its channel is
// not open.
func (w *Worker) Heartbeat() (ic.HeartbeatStatus, bool) {
	h, ok := w.heartbeat.service().(*ic.Heartbeat)
	if !ok {
		return ic.HeartbeatStatus{}, false
	}
	return h.Status(), true
}
