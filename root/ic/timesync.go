package ic

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"gohv/root/ic/protocol"
)

// TimeSyncVersions are the time-sync versions offered, newest first: all
// Linux 6.1 accepts (it picks 4.0, whose body carries the reference time).
var TimeSyncVersions = [...]protocol.Version{protocol.TimeSync4, protocol.TimeSync3, protocol.TimeSync1}

// DefaultTimeSyncPeriod is how often a SAMPLE goes out unless
// TimeSyncConfig says otherwise: OpenVMM's five seconds.
const DefaultTimeSyncPeriod = 5 * time.Second

// Clock is the time the time-sync service hands the guest.
type Clock interface {
	// ReferenceTime is the partition's reference time: the 100 ns count
	// the guest reads from HV_X64_MSR_TIME_REF_COUNT and its reference
	// TSC page (hv.Partition.ReferenceTime). Linux 6.1 adds the
	// difference between its own reading and this one to the host's
	// time, so it must be the same clock, not an approximation.
	ReferenceTime() uint64
	// Now is the host's wall-clock time; it goes out as UTC.
	Now() time.Time
}

// TimeSyncConfig configures a TimeSync.
type TimeSyncConfig struct {
	Config
	// Clock is read for every message; required.
	Clock Clock
	// Period between SAMPLE messages; 0 means DefaultTimeSyncPeriod.
	Period time.Duration
}

// TimeSyncStatus is what the time-sync service has done.
type TimeSyncStatus struct {
	Sent     uint64 // messages sent, SYNC and SAMPLE
	Answered uint64 // answers received
	// Skipped counts periods in which no SAMPLE went out because the
	// previous message was still unanswered.
	Skipped  uint64
	LastSent time.Time // the host time the last message carried
	Waiting  bool      // a message is unanswered now
}

// TimeSync is the time-synchronisation service of one open channel: a
// SYNC message (the guest sets its clock) once negotiated and on request,
// and a SAMPLE (a hint; Linux feeds its "hyperv" PTP clock) every period.
type TimeSync struct {
	e      *endpoint
	clock  Clock
	period time.Duration
	tick   ticker

	mu sync.Mutex
	st TimeSyncStatus
}

// NewTimeSync makes the time-sync service for a channel the guest has just
// opened; make a new one each time it reopens it.
func NewTimeSync(ch Channel, cfg TimeSyncConfig) (*TimeSync, error) {
	if cfg.Clock == nil {
		return nil, errors.New("ic: timesync: nil clock")
	}
	if cfg.Period < 0 {
		return nil, fmt.Errorf("ic: timesync: negative period %v", cfg.Period)
	}
	e, err := newEndpoint(TimeSyncOffer.Name, ch, cfg.Config, TimeSyncVersions[:])
	if err != nil {
		return nil, err
	}
	t := &TimeSync{e: e, clock: cfg.Clock, period: cfg.Period, tick: realTicker}
	if t.period == 0 {
		t.period = DefaultTimeSyncPeriod
	}
	return t, nil
}

// Run negotiates, sends a SYNC, then a SAMPLE every period until ctx ends
// (nil) or the channel fails (the error; close the channel). A period
// whose previous message is unanswered sends nothing and counts a skip.
func (t *TimeSync) Run(ctx context.Context) error {
	return t.e.run(ctx, func(ctx context.Context) error {
		if err := t.e.acquire(ctx); err != nil {
			return err
		}
		if _, err := t.sendLocked(protocol.TimeSyncSync); err != nil {
			return err
		}
		ticks, stop := t.tick(t.period)
		defer stop()
		for {
			select {
			case <-ticks:
			case <-ctx.Done():
				return nil
			case <-t.e.closed:
				return t.e.failure()
			}
			if !t.e.tryAcquire() {
				t.mu.Lock()
				t.st.Skipped++
				t.mu.Unlock()
				t.e.log.Debug("ic: time sample skipped: the last one is unanswered", "service", t.e.name)
				continue
			}
			if _, err := t.sendLocked(protocol.TimeSyncSample); err != nil {
				return err
			}
		}
	})
}

// Sync sends a SYNC now — the guest steps its clock to the host's — and
// waits for the answer: after negotiation, and after any request
// outstanding has been answered. ctx bounds the whole wait; an error
// wrapping ErrTimeout leaves the message outstanding.
func (t *TimeSync) Sync(ctx context.Context) error {
	if err := t.e.waitNegotiated(ctx); err != nil {
		return err
	}
	if err := t.e.acquire(ctx); err != nil {
		return err
	}
	r, err := t.sendLocked(protocol.TimeSyncSync)
	if err != nil {
		return err
	}
	_, err = t.e.wait(ctx, r)
	return err
}

// sendLocked sends one time message; the caller holds the slot.
func (t *TimeSync) sendLocked(flags protocol.TimeSyncFlags) (*request, error) {
	v, _ := t.e.Versions()
	ref := t.clock.ReferenceTime()
	now := t.clock.Now()
	var body []byte
	// hv_util.c: "if (ts_srv_version > TS_VERSION_3)" the body is
	// ictimesync_ref_data.
	if v.Message.Major > 3 || v.Message.Major == 3 && v.Message.Minor > 0 {
		body = protocol.TimeSyncRefMsg{ParentTime: protocol.FileTime(now), VMReferenceTime: ref, Flags: flags}.Append(nil)
	} else {
		body = protocol.TimeSyncMsg{ParentTime: protocol.FileTime(now), Flags: flags}.Append(nil)
	}
	t.mu.Lock()
	t.st.Sent++
	t.st.LastSent = now
	t.mu.Unlock()
	return t.e.send(protocol.MsgTimeSync, body, func(m *protocol.Message) error {
		t.mu.Lock()
		t.st.Answered++
		t.mu.Unlock()
		if m.Header.Status != protocol.StatusOK {
			t.e.log.Warn("ic: time message answered with a failure status", "service", t.e.name, "status", m.Header.Status.String())
		}
		return nil
	})
}

// HandlePacket takes one packet the guest sent on the channel (its payload
// after the VMBus descriptor, and the descriptor's trans_id). It returns
// an error, wrapping ErrMalformed, ErrNoCommonVersion or ErrClosed, when
// the channel must close; it keeps nothing of payload.
func (t *TimeSync) HandlePacket(payload []byte, transactionID uint64) error {
	return t.e.handlePacket(payload, transactionID)
}

// Versions is what negotiation settled on; false before it has.
func (t *TimeSync) Versions() (Versions, bool) { return t.e.Versions() }

// Status is what the service has done so far.
func (t *TimeSync) Status() TimeSyncStatus {
	waiting := t.e.outstanding()
	t.mu.Lock()
	defer t.mu.Unlock()
	st := t.st
	st.Waiting = waiting
	return st
}
