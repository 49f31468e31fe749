package ic

import (
	"context"

	"gohv/root/ic/protocol"
)

// ShutdownVersions are the shutdown versions offered, newest first: all
// Linux 6.1 accepts (it picks 3.2). The message is the same in each.
var ShutdownVersions = [...]protocol.Version{protocol.Shutdown3_2, protocol.Shutdown3_1, protocol.Shutdown3, protocol.Shutdown1}

// Shutdown is the shutdown service of one open channel: the root asks the
// guest to shut down or restart gracefully.
type Shutdown struct {
	e *endpoint
}

// NewShutdown makes the shutdown service for a channel the guest has just
// opened; make a new one each time it reopens it.
func NewShutdown(ch Channel, cfg Config) (*Shutdown, error) {
	e, err := newEndpoint(ShutdownOffer.Name, ch, cfg, ShutdownVersions[:])
	if err != nil {
		return nil, err
	}
	return &Shutdown{e: e}, nil
}

// Run negotiates and then serves RequestShutdown until ctx ends (nil) or
// the channel fails (the error; close the channel).
func (s *Shutdown) Run(ctx context.Context) error {
	return s.e.run(ctx, func(ctx context.Context) error {
		select {
		case <-ctx.Done():
			return nil
		case <-s.e.closed:
			return s.e.failure()
		}
	})
}

// RequestShutdown asks the guest to shut down (or, with reboot, to
// restart) and returns its answer's status. It waits for negotiation and
// for any request outstanding; ctx bounds the whole wait. Linux 6.1
// answers HV_S_OK and then powers off (orderly_poweroff) or reboots
// (orderly_reboot); a status other than HV_S_OK is returned with an error
// wrapping ErrRefused. An error wrapping ErrTimeout leaves the request
// outstanding — nothing else is sent on the channel until the guest
// answers it — and one wrapping ErrClosed means the service has stopped.
func (s *Shutdown) RequestShutdown(ctx context.Context, reboot bool) (protocol.Status, error) {
	if err := s.e.waitNegotiated(ctx); err != nil {
		return 0, err
	}
	if err := s.e.acquire(ctx); err != nil {
		return 0, err
	}
	msg := protocol.ShutdownMsg{ReasonCode: protocol.ShutdownReasonPlanned} // timeout 0, no message: as OpenVMM
	if reboot {
		msg.Flags = protocol.ShutdownRestart
	}
	r, err := s.e.send(protocol.MsgShutdown, msg.Append(nil), nil)
	if err != nil {
		return 0, err
	}
	status, err := s.e.wait(ctx, r)
	if err != nil {
		return 0, err
	}
	what := "shutdown"
	if reboot {
		what = "restart"
	}
	if status != protocol.StatusOK {
		s.e.log.Warn("ic: guest refused a "+what, "service", s.e.name, "status", status.String())
		return status, s.e.errorf("%s: %v: %w", what, status, ErrRefused)
	}
	s.e.log.Info("ic: guest accepted a "+what, "service", s.e.name)
	return status, nil
}

// HandlePacket takes one packet the guest sent on the channel (its payload
// after the VMBus descriptor, and the descriptor's trans_id). It returns
// an error, wrapping ErrMalformed, ErrNoCommonVersion or ErrClosed, when
// the channel must close; it keeps nothing of payload.
func (s *Shutdown) HandlePacket(payload []byte, transactionID uint64) error {
	return s.e.handlePacket(payload, transactionID)
}

// Versions is what negotiation settled on; false before it has.
func (s *Shutdown) Versions() (Versions, bool) { return s.e.Versions() }
