package ic

import (
	"context"
	"fmt"
	"sync"
	"time"

	"gohv/root/ic/protocol"
)

// HeartbeatVersions are the heartbeat versions offered, newest first: both
// Linux 6.1 accepts (it picks 3.0).
var HeartbeatVersions = [...]protocol.Version{protocol.Heartbeat3, protocol.Heartbeat1}

// DefaultHeartbeatPeriod is how often a heartbeat request goes out unless
// HeartbeatConfig says otherwise: every two seconds, as Hyper-V does
// (hv_util.c: "Every two seconds, Hyper-V send us a heartbeat request").
const DefaultHeartbeatPeriod = 2 * time.Second

// HeartbeatConfig configures a Heartbeat.
type HeartbeatConfig struct {
	Config
	// Period between requests; 0 means DefaultHeartbeatPeriod.
	Period time.Duration
	// Now stamps the answers; nil means time.Now.
	Now func() time.Time
}

// HeartbeatStatus is what the heartbeat has seen.
type HeartbeatStatus struct {
	Sent     uint64 // requests sent
	Answered uint64 // answers received, each seq+1
	// Missed counts periods in which no request went out because the
	// previous one was still unanswered.
	Missed     uint64
	LastSeq    uint64    // seq_num of the guest's last answer
	LastAnswer time.Time // when it arrived; zero before the first
	Waiting    bool      // a request is unanswered now
}

// Heartbeat is the heartbeat service of one open channel: a request with
// an increasing sequence number every period, each answered by the guest
// with the number plus one.
type Heartbeat struct {
	e      *endpoint
	period time.Duration
	now    func() time.Time
	tick   ticker

	mu      sync.Mutex
	st      HeartbeatStatus
	nextSeq uint64
	missing bool // in a run of misses (logged once)
}

// NewHeartbeat makes the heartbeat service for a channel the guest has
// just opened; make a new one each time it reopens it.
func NewHeartbeat(ch Channel, cfg HeartbeatConfig) (*Heartbeat, error) {
	if cfg.Period < 0 {
		return nil, fmt.Errorf("ic: heartbeat: negative period %v", cfg.Period)
	}
	e, err := newEndpoint(HeartbeatOffer.Name, ch, cfg.Config, HeartbeatVersions[:])
	if err != nil {
		return nil, err
	}
	h := &Heartbeat{e: e, period: cfg.Period, now: cfg.Now, tick: realTicker, nextSeq: 1}
	if h.period == 0 {
		h.period = DefaultHeartbeatPeriod
	}
	if h.now == nil {
		h.now = time.Now
	}
	return h, nil
}

// Run negotiates, then sends a heartbeat at once and one every period
// until ctx ends (nil) or the channel fails (the error; close the
// channel). A period whose previous request is unanswered sends nothing
// and counts a miss.
func (h *Heartbeat) Run(ctx context.Context) error {
	return h.e.run(ctx, func(ctx context.Context) error {
		ticks, stop := h.tick(h.period)
		defer stop()
		for {
			if err := h.beat(); err != nil {
				return err
			}
			select {
			case <-ticks:
			case <-ctx.Done():
				return nil
			case <-h.e.closed:
				return h.e.failure()
			}
		}
	})
}

// beat sends one request unless one is outstanding.
func (h *Heartbeat) beat() error {
	if !h.e.tryAcquire() {
		h.mu.Lock()
		h.st.Missed++
		first := !h.missing
		h.missing = true
		seq := h.nextSeq - 1
		h.mu.Unlock()
		if first {
			h.e.log.Warn("ic: guest has not answered a heartbeat", "service", h.e.name, "seq", seq, "period", h.period.String())
		}
		return nil
	}
	h.mu.Lock()
	seq := h.nextSeq
	h.nextSeq++
	h.st.Sent++ // before the answer can arrive: Answered never exceeds Sent
	h.mu.Unlock()
	_, err := h.e.send(protocol.MsgHeartbeat, protocol.HeartbeatMsg{SeqNum: seq}.Append(nil), func(m *protocol.Message) error {
		hb, err := protocol.ParseHeartbeat(m.Body)
		if err != nil {
			return err
		}
		if hb.SeqNum != seq+1 {
			return fmt.Errorf("seq_num %d for request %d, want %d: %w", hb.SeqNum, seq, seq+1, ErrMalformed)
		}
		h.answered(hb.SeqNum, m.Header.Status)
		return nil
	})
	return err
}

func (h *Heartbeat) answered(seq uint64, status protocol.Status) {
	h.mu.Lock()
	h.st.Answered++
	h.st.LastSeq = seq
	h.st.LastAnswer = h.now()
	back := h.missing
	h.missing = false
	h.mu.Unlock()
	if back {
		h.e.log.Info("ic: guest answers heartbeats again", "service", h.e.name, "seq", seq)
	}
	if status != protocol.StatusOK {
		h.e.log.Warn("ic: heartbeat answered with a failure status", "service", h.e.name, "status", status.String())
	}
}

// HandlePacket takes one packet the guest sent on the channel (its payload
// after the VMBus descriptor, and the descriptor's trans_id). It returns
// an error, wrapping ErrMalformed, ErrNoCommonVersion or ErrClosed, when
// the channel must close; it keeps nothing of payload.
func (h *Heartbeat) HandlePacket(payload []byte, transactionID uint64) error {
	return h.e.handlePacket(payload, transactionID)
}

// Versions is what negotiation settled on; false before it has.
func (h *Heartbeat) Versions() (Versions, bool) { return h.e.Versions() }

// Status is what the heartbeat has seen so far.
func (h *Heartbeat) Status() HeartbeatStatus {
	waiting := h.e.outstanding()
	h.mu.Lock()
	defer h.mu.Unlock()
	st := h.st
	st.Waiting = waiting
	return st
}
