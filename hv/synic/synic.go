package synic

import (
	"errors"
	"fmt"
	"math/bits"
	"sync"
	"sync/atomic"

	"gohv/hv/tlfs"
	"gohv/x86"
)

// Memory is the partition's RAM: page-granular access that refuses
// anything not RAM (a GPA outside the partition's memory, or MMIO). The
// SynIC touches only its SIM and SIEF pages through it, never across a
// page boundary. The guest runs while these calls happen: OrU32 and
// CmpxchgU32 must be atomic with respect to the guest's own locked
// instructions on the same word. None of the methods may call back into
// the SynIC; none may retain b.
type Memory interface {
	ReadRAM(gpa uint64, b []byte) error
	WriteRAM(gpa uint64, b []byte) error
	// OrU32 atomically ORs bits into the aligned 32-bit word at gpa and
	// returns its old value (event flags the guest clears concurrently
	// with sync_test_and_clear_bit). OrU32(gpa, 0) is an atomic load.
	OrU32(gpa uint64, bits uint32) (old uint32, err error)
	// CmpxchgU32 atomically replaces old with new at gpa (the slot's
	// message type), a full barrier as LOCK CMPXCHG is: every write the
	// SynIC made before it is visible to the guest before the new value.
	CmpxchgU32(gpa uint64, old, new uint32) (swapped bool, err error)
}

// Interrupter is the VP's local APIC, as the SynIC sees it.
type Interrupter interface {
	// Interrupt raises a fixed, edge-triggered interrupt on the VP's
	// local APIC: a SINT's vector or a direct-mode timer's. Never called
	// with a vector below 16. Safe from any goroutine; must not block.
	Interrupt(vector uint8)
	// SetAutoEOI tells the local APIC that vector is (on) or is no longer the
	// vector of an unmasked SINT with AutoEOI set: the APIC then acknowledges
	// it without entering it into ISR (apic.LAPIC.SetAutoEOI; TLFS "SINTx
	// Registers"). Called on the VP's thread, from WriteMSR and Reset.
	SetAutoEOI(vector uint8, on bool)
}

// Clock is the partition's reference time (100 ns units since the
// partition started, monotonic) and host timers (the same seam shape as
// apic.Clock's NewTimer/HostTimer).
type Clock interface {
	ReferenceTime() uint64
	// NewTimer makes a host timer that calls f, on a goroutine of the
	// clock's choosing, each time an expiry set by Arm passes. New calls
	// it once per synthetic timer.
	NewTimer(f func()) HostTimer
}

// HostTimer is one re-armable host timer.
type HostTimer interface {
	// Arm sets the timer to call f once ReferenceTime() >= at, replacing
	// any earlier expiry; an at already past fires as soon as possible.
	// The SynIC never arms further than MaxArmAhead past the present, so
	// converting at to host time cannot overflow. It must not call f
	// itself nor wait for a running f: the SynIC calls it with its mutex
	// held. Must not allocate.
	Arm(atReferenceTime uint64)
	// Stop cancels the pending expiry, if any. An f already started may
	// still run: the SynIC re-checks the time and ignores early or stale
	// calls. Same rules as Arm.
	Stop()
}

// Defaults and limits for Config.
const (
	// DefaultQueueDepth is how many messages wait per SINT when the slot
	// is busy: the sixteen guest message buffers the TLFS gives each port
	// (TLFS "Guest Message Buffers").
	DefaultQueueDepth = 16
	// MaxQueueDepth bounds Config.QueueDepth: the queues are allocated at
	// New, 16 SINTs × depth × 256 bytes.
	MaxQueueDepth = 256
	// DefaultMinTimerPeriod (100 µs in 100 ns units) caps a periodic
	// synthetic timer at 10 000 host callbacks and signals per second,
	// as apic.DefaultMinTimerPeriod caps the LAPIC timer.
	DefaultMinTimerPeriod = 1000
	// MaxArmAhead is the furthest in the future (in 100 ns units, about
	// 3.5 years) a host timer is armed; a later expiry is re-armed when
	// that early callback comes.
	MaxArmAhead = 1 << 50
	// CatchUpLimit is how many expirations a periodic, non-lazy timer
	// that fell behind still signals one by one ("period modulation", TLFS
	// "Periodic Timers"); the older ones are skipped.
	CatchUpLimit = 8
)

// Config describes one VP's SynIC. Zero values of the optional fields
// take the defaults named above.
type Config struct {
	VP          uint32      // the VP's index, for errors and logs
	Memory      Memory      // required
	Interrupter Interrupter // required
	Clock       Clock       // required

	// QueueDepth is how many messages wait per SINT behind a busy slot
	// before Post returns ErrQueueFull (1 to MaxQueueDepth; 0 means
	// DefaultQueueDepth).
	QueueDepth int
	// MinTimerPeriod bounds how often a periodic timer costs a host
	// callback and signals the guest, in 100 ns units (0 means
	// DefaultMinTimerPeriod).
	MinTimerPeriod uint64
	// DirectTimers: CPUID 0x40000003.EDX bit 19 (direct synthetic timers)
	// is advertised. Otherwise a STIMERx_CONFIG write with DirectMode set
	// raises #GP.
	DirectTimers bool
}

// SynIC is one VP's synthetic interrupt controller and its four synthetic
// timers (TLFS 11, 12).
type SynIC struct {
	mu sync.Mutex

	// Fixed at New.
	vp        uint32
	mem       Memory
	intr      Interrupter
	clock     Clock
	minPeriod uint64
	directOK  bool

	// Registers, guarded by mu. Guest-controlled: every value is checked
	// by WriteMSR before it is stored.
	scontrol uint64
	siefp    uint64
	simp     uint64
	sint     [tlfs.SINTCount]uint64
	timers   [tlfs.STimerCount]stimer

	// Messages waiting for their slot, guarded by mu.
	queues [tlfs.SINTCount]queue

	// waiting has bit n set while SINT n has a queued message or a held
	// timer expiration: EOI's lock-free fast path. Written under mu.
	waiting atomic.Uint32

	// autoEOI is the set of vectors the Interrupter was last told are
	// auto-EOI. Guarded by mu; only the VP thread changes it.
	autoEOI [4]uint64

	// scratch holds a message on its way to a slot. Guarded by mu.
	scratch [tlfs.MessageSize]byte

	stats counters
}

// New makes a VP's SynIC in its reset state (TLFS "SynIC MSRs": SCONTROL, SIEFP
// and SIMP 0, every SINT masked, every timer disabled) and allocates its
// message queues and host timers. A Config without its seams or with a
// queue depth out of range is a wiring bug: New panics.
func New(cfg Config) *SynIC {
	if cfg.Memory == nil || cfg.Interrupter == nil || cfg.Clock == nil {
		panic("synic: Config needs Memory, Interrupter and Clock")
	}
	depth := cfg.QueueDepth
	if depth == 0 {
		depth = DefaultQueueDepth
	}
	if depth < 1 || depth > MaxQueueDepth {
		panic(fmt.Sprintf("synic: queue depth %d outside 1-%d", cfg.QueueDepth, MaxQueueDepth))
	}
	s := &SynIC{
		vp:        cfg.VP,
		mem:       cfg.Memory,
		intr:      cfg.Interrupter,
		clock:     cfg.Clock,
		minPeriod: cfg.MinTimerPeriod,
		directOK:  cfg.DirectTimers,
	}
	if s.minPeriod == 0 {
		s.minPeriod = DefaultMinTimerPeriod
	}
	slab := make([]message, tlfs.SINTCount*depth)
	for i := range s.queues {
		s.queues[i].ring = slab[i*depth : (i+1)*depth : (i+1)*depth]
	}
	for i := range s.timers {
		s.timers[i].host = cfg.Clock.NewTimer(func() { s.timerCallback(i) })
	}
	s.resetLocked()
	return s
}

// VP returns the index of the VP the SynIC belongs to (Config.VP).
func (s *SynIC) VP() uint32 { return s.vp }

// Reset puts the SynIC in its reset state, as at an INIT or VP reset:
// registers to their reset values, timers stopped, queued messages and
// held timer expirations dropped (and counted in Stats.Dropped and
// TimerDropped), the local APIC's auto-EOI marks removed. The SIM and
// SIEF pages are guest RAM and are left as they are. VP thread.
func (s *SynIC) Reset() {
	s.mu.Lock()
	old := s.autoEOI
	s.resetLocked()
	s.mu.Unlock()
	s.applyAutoEOI(old, [4]uint64{})
}

func (s *SynIC) resetLocked() {
	s.scontrol, s.siefp, s.simp = 0, 0, 0
	for i := range s.sint {
		s.sint[i] = tlfs.SINTReset
	}
	for i := range s.timers {
		t := &s.timers[i]
		if t.held {
			s.stats.timerDropped.Add(1)
		}
		t.host.Stop()
		*t = stimer{host: t.host}
	}
	for i := range s.queues {
		q := &s.queues[i]
		s.stats.dropped.Add(uint64(q.n))
		q.head, q.n = 0, 0
	}
	s.autoEOI = [4]uint64{}
	s.noteWaitingLocked()
}

// Stats counts what a SynIC did, for reports and tests. Counters only
// grow. Messages Post accepted satisfy, between calls:
//
//	Posted == Delivered + Dropped + (messages now queued)
type Stats struct {
	Posted    uint64 // messages Post accepted into a SINT's queue
	Delivered uint64 // of those, written into their SIM slot
	Dropped   uint64 // of those, lost: the SIM page is outside RAM, or Reset emptied the queue
	QueueFull uint64 // Posts refused with ErrQueueFull
	Refused   uint64 // Posts and Signals refused with ErrDisabled or ErrMasked

	EventsSet     uint64 // Signals that set a flag (0→1)
	EventsMerged  uint64 // Signals that found the flag already set
	EventsDropped uint64 // Signals whose SIEF page is outside RAM

	Interrupts uint64 // vectors raised through the Interrupter
	EOMs       uint64 // EOM writes
	BadPages   uint64 // SIMP/SIEFP enables whose page could not be cleared (outside RAM)

	TimerSignals   uint64 // timer expirations signalled: message written into the slot, or direct vector raised
	TimerCoalesced uint64 // periodic expirations skipped: merged into a later signal (late, held or rate-limited)
	TimerDropped   uint64 // held timer messages lost: SIM page outside RAM, or Reset
}

type counters struct {
	posted, delivered, dropped, queueFull, refused atomic.Uint64
	eventsSet, eventsMerged, eventsDropped         atomic.Uint64
	interrupts, eoms, badPages                     atomic.Uint64
	timerSignals, timerCoalesced, timerDropped     atomic.Uint64
}

// Stats returns the counters. Any goroutine.
func (s *SynIC) Stats() Stats {
	c := &s.stats
	return Stats{
		Posted: c.posted.Load(), Delivered: c.delivered.Load(), Dropped: c.dropped.Load(),
		QueueFull: c.queueFull.Load(), Refused: c.refused.Load(),
		EventsSet: c.eventsSet.Load(), EventsMerged: c.eventsMerged.Load(), EventsDropped: c.eventsDropped.Load(),
		Interrupts: c.interrupts.Load(), EOMs: c.eoms.Load(), BadPages: c.badPages.Load(),
		TimerSignals: c.timerSignals.Load(), TimerCoalesced: c.timerCoalesced.Load(), TimerDropped: c.timerDropped.Load(),
	}
}

// Queued returns how many messages wait in SINT sint's queue (held timer
// expirations not included). Any goroutine.
func (s *SynIC) Queued(sint uint8) int {
	if sint >= tlfs.SINTCount {
		return 0
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.queues[sint].n
}

// Errors Post and Signal return. Status maps them to the TLFS status a
// hypercall returns.
var (
	// ErrQueueFull: the SINT's slot is busy and its queue holds
	// Config.QueueDepth messages already; nothing was queued.
	ErrQueueFull = errors.New("synic: SINT message queue full")
	// ErrDisabled: SCONTROL's enable bit, or the SIM page (Post) or SIEF
	// page (Signal), is off, so the VP is no target (TLFS "SynIC Messages").
	ErrDisabled = errors.New("synic: SynIC or its message/event page disabled")
	// ErrMasked: an event for a masked SINT (TLFS "Event Flag Delivery"); no
	// flag set.
	ErrMasked = errors.New("synic: SINT masked")
	// ErrNoPage: the SIM or SIEF page lies outside the partition's RAM,
	// so the message or event was dropped (and counted).
	ErrNoPage = errors.New("synic: message/event page outside RAM")
	// ErrBadArgument: a SINT above 15, a flag above 2047, a payload above
	// 240 bytes or message type 0: the caller's bug, not the guest's.
	ErrBadArgument = errors.New("synic: invalid SINT, flag, message type or payload size")
)

// Status is the TLFS status for an error Post or Signal returned, as
// HvCallPostMessage and HvCallSignalEvent report it (TLFS
// "HvCallPostMessage", "HvCallSignalEvent"): INSUFFICIENT_BUFFERS for a full
// queue, INVALID_SYNIC_STATE for a disabled SynIC, page or masked SINT,
// INVALID_PARAMETER for a bad argument. A page outside RAM is SUCCESS: on
// Hyper-V the pages are overlays that exist wherever the guest puts them, so
// the sender cannot tell; the target counts the drop.
func Status(err error) tlfs.Status {
	switch {
	case err == nil, errors.Is(err, ErrNoPage):
		return tlfs.StatusSuccess
	case errors.Is(err, ErrQueueFull):
		return tlfs.StatusInsufficientBuffers
	case errors.Is(err, ErrDisabled), errors.Is(err, ErrMasked):
		return tlfs.StatusInvalidSynicState
	}
	return tlfs.StatusInvalidParameter
}

// raises collects the vectors an operation raises, so that the
// Interrupter is called after the mutex is released. A value on the
// caller's stack; the locked helpers add to it.
type raises struct{ v [4]uint64 }

func (r *raises) add(v uint8) {
	if v >= tlfs.SINTMinVector {
		r.v[v>>6] |= 1 << (v & 63)
	}
}

// fire raises the collected vectors. Called without the mutex.
func (s *SynIC) fire(r *raises) {
	for i, w := range r.v {
		for w != 0 {
			b := bits.TrailingZeros64(w)
			w &^= 1 << b
			s.stats.interrupts.Add(1)
			s.intr.Interrupt(uint8(i*64 + b))
		}
	}
}

// raiseSINTLocked raises SINT n's vector unless it is masked or polling
// (TLFS "SINTx Registers": polling unmasks the source without an interrupt).
func (s *SynIC) raiseSINTLocked(n uint8, r *raises) {
	v := s.sint[n]
	if v&(tlfs.SINTMasked|tlfs.SINTPolling) == 0 {
		r.add(uint8(v & tlfs.SINTVectorMask))
	}
}

// noteWaitingLocked brings waiting in step with the queues and the held
// timer expirations.
func (s *SynIC) noteWaitingLocked() {
	var w uint32
	for i := range s.queues {
		if s.queues[i].n > 0 {
			w |= 1 << i
		}
	}
	for i := range s.timers {
		if t := &s.timers[i]; t.held {
			w |= 1 << t.sint()
		}
	}
	s.waiting.Store(w)
}

// pageBase is the guest-physical address of an overlay register's page.
func pageBase(reg uint64) uint64 { return reg &^ (x86.PageSize - 1) }

// zeroPage clears SIM and SIEF pages.
var zeroPage [x86.PageSize]byte

// satAdd is a + b, or the largest time if that overflows.
func satAdd(a, b uint64) uint64 {
	if s := a + b; s >= a {
		return s
	}
	return ^uint64(0)
}
