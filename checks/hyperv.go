package checks

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"gohv/hv"
	"gohv/hv/synic"
	"gohv/hv/tlfs"
	"gohv/testguests"
)

// The Hyper-V interface checks of hvtest (issue 10): each runs a Hyper-V
// test guest (testguests/hyperv_amd64.s) that does what a Linux guest
// does — reads the leaves, identifies itself, calls through the hypercall
// page, sets up its SynIC, talks to the root's ports, runs synthetic
// timers — and checks what it can from the inside; the check then proves
// the root's side from the guest's results and log, the SynIC's and the
// LAPIC's counters and, for ports, the root handlers' own records.
// Everything a guest wrote is evidence to check, never trusted.

// hvRAM is a Hyper-V guest partition's RAM (the APIC guests' 4 MiB: the
// guests' pages lie below 4 MiB).
const hvRAM = apicRAM

// Connection IDs the checks bind on the guests' partitions. Arbitrary
// 24-bit values, clear of VMBus's 1-4.
const (
	hvEchoConn    = 0x00_2001 // a root message port that posts each message back
	hvEventConn   = 0x00_2002 // a root event port that signals the flag back
	hvMsgConn     = 0x00_2003 // a root message port that only counts
	hvUnboundConn = 0xab_cdef // bound nowhere
	hvOtherConn   = 0x00_3001 // bound on a bystander partition only
)

// hvEchoSINT is the SINT the root's ports answer on: VMBus's.
const hvEchoSINT = 2

// hvMessageType is the message type the guests post: VMBus's.
const hvMessageType = 1

// startHV starts a Hyper-V guest in a new partition.
func (env *Env) startHV(name string, prog testguests.HyperVProgram, setup func(p *hv.Partition) error) (*hv.Partition, error) {
	return testguests.StartHyperV(env.hv, hv.Config{Name: name, RAMBytes: hvRAM, Console: env.Out}, prog, apicClocks(), setup)
}

// runHV runs a Hyper-V guest to its end (stopping it after timeout) and
// reads its data page.
func (env *Env) runHV(name string, prog testguests.HyperVProgram, setup func(p *hv.Partition) error,
	timeout time.Duration) (*hv.Partition, hv.Result, testguests.APICState, error) {
	p, err := env.startHV(name, prog, setup)
	if err != nil {
		return nil, hv.Result{}, testguests.APICState{}, err
	}
	r := p.WaitOrStop(timeout)
	s, err := testguests.ReadAPICState(p.Mem)
	return p, r, s, err
}

// echoPort is a root message port that posts every message back to the
// sender's VP, on hvEchoSINT, with the port's connection as the origin:
// the reply a VMBus server gives, minus the protocol. It returns the
// SynIC's verdict as the hypercall's status (INSUFFICIENT_BUFFERS when the
// guest's queue is full), as a VMBus server whose queue is the guest's.
// Called on the posting VP's thread.
type echoPort struct {
	p        *hv.Partition
	conn     uint32
	messages atomic.Uint64 // messages the port received
	refused  atomic.Uint64 // of those, replies the SynIC refused
}

func (e *echoPort) Message(vp uint32, typ tlfs.MessageType, payload []byte) tlfs.Status {
	e.messages.Add(1)
	err := e.p.VP(int(vp)).SynIC().Post(hvEchoSINT, typ, uint64(e.conn), payload)
	if err != nil {
		e.refused.Add(1)
	}
	return synic.Status(err)
}

// eventPort is a root event port that signals the guest's flag back to
// the sender's VP on hvEchoSINT, returning the SynIC's verdict. It keeps
// the flags it was asked for.
type eventPort struct {
	p     *hv.Partition
	mu    sync.Mutex
	flags []uint16
	set   int // signals that set a flag (0→1)
}

func (e *eventPort) Event(vp uint32, flag uint16) tlfs.Status {
	newly, err := e.p.VP(int(vp)).SynIC().Signal(hvEchoSINT, uint32(flag))
	e.mu.Lock()
	e.flags = append(e.flags, flag)
	if newly {
		e.set++
	}
	e.mu.Unlock()
	return synic.Status(err)
}

// countPort is a root port that only counts what reaches it.
type countPort struct{ n atomic.Uint64 }

func (c *countPort) Message(uint32, tlfs.MessageType, []byte) tlfs.Status {
	c.n.Add(1)
	return tlfs.StatusSuccess
}

func (c *countPort) Event(uint32, uint16) tlfs.Status {
	c.n.Add(1)
	return tlfs.StatusSuccess
}

// checkHyperVDiscovery: the guest finds "Microsoft Hv" and "Hv#1", the
// privileges and features it needs and none a child must not see, AutoEOI
// deprecated; its hypercall instruction #UDs until GUEST_OS_ID is set;
// the hypercall page enables only then, holds the vendor's instruction and
// RET, and calls through it succeed (NotifyLongSpinWait) or are refused
// by code; VP_INDEX is 0; the frequency MSRs equal the rates the root
// passed in registers; unknown synthetic MSRs #GP; GUEST_OS_ID 0 disables
// the page; the lock holds.
func checkHyperVDiscovery(env *Env) (string, error) {
	p, r, s, err := env.runHV("hvdiscover", testguests.HVDiscovery, nil, 30*time.Second)
	defer destroy(p)
	if err != nil {
		return "", err
	}
	if err := apicPassed(r, s, "discovery guest"); err != nil {
		return "", err
	}
	res := s.Results
	var page [4]byte
	if err := p.Mem.ReadRAM(testguests.HVHypercallPage, page[:]); err != nil {
		return "", err
	}
	insn := env.hv.Backend.HypercallInstruction()
	if want := [4]byte{insn[0], insn[1], insn[2], 0xc3}; page != want {
		return "", fmtErr("the hypercall page holds % x, want % x (%s's instruction, RET)", page, want, env.hv.Backend.Name())
	}
	if s.Count != 0 {
		return "", fmtErr("the guest took %d interrupts (%s), want none", s.Count, fmtVectors(s.Vectors()))
	}
	return fmt.Sprintf("max leaf %#x; privileges EAX %#x EBX %#x, features EDX %#x, recommendations %#x (spin retries %#x); "+
		"#UD before GUEST_OS_ID; page % x; NotifyLongSpinWait %#x, unknown codes %#x/%#x; VP_INDEX %d; TSC %d Hz, APIC %d Hz; GUEST_OS_ID 0 disables, lock holds (%#x)",
		res[0], res[1], res[2], res[3], res[4], res[5], page, res[8], res[9], res[10], res[11], res[12], res[13], res[14]), nil
}

// refRate bounds the rate of a counter read twice, each read between two
// TSC reads: counts r0 and r1, TSCs t0a ≤ read ≤ t0b and t1a ≤ read ≤ t1b.
// The counter's rate (per second, the TSC at tscHz) lies in [lo, hi]
// whatever each read's moment within its bracket; mid takes the brackets'
// middles. An error for readings out of order.
func refRate(t0a, r0, t0b, t1a, r1, t1b, tscHz uint64) (lo, hi, mid float64, err error) {
	if t0a > t0b || t0b > t1a || t1a > t1b || r1 <= r0 {
		return 0, 0, 0, fmtErr("readings out of order: TSC %d %d %d %d, counts %d %d", t0a, t0b, t1a, t1b, r0, r1)
	}
	d, hz := float64(r1-r0), float64(tscHz)
	lo = d * hz / float64(t1b-t0a)
	hi = d * hz / float64(t1a-t0b)
	mid = d * hz / (float64(t1a+t1b)/2 - float64(t0a+t0b)/2)
	return lo, hi, mid, nil
}

// refPage is a reference TSC page's scale and offset.
type refPage struct {
	scale  uint64
	offset int64
}

// readRefPage reads the reference TSC page at gpa; a sequence of 0 (not
// valid) is an error.
func readRefPage(m *hv.GuestMemory, gpa uint64) (refPage, error) {
	var b [24]byte
	if err := m.ReadRAM(gpa, b[:]); err != nil {
		return refPage{}, err
	}
	if binary.LittleEndian.Uint32(b[tlfs.RefTSCSequenceOffset:]) == tlfs.RefTSCInvalidSequence {
		return refPage{}, fmtErr("the reference TSC page at %#x is not valid (sequence 0)", gpa)
	}
	return refPage{binary.LittleEndian.Uint64(b[tlfs.RefTSCScaleOffset:]), int64(binary.LittleEndian.Uint64(b[tlfs.RefTSCOffsetOffset:]))}, nil
}

// ref is the reference time at tsc.
func (g refPage) ref(tsc uint64) uint64 { return tlfs.RefTime(tsc, g.scale, g.offset) }

// tscAt is the first TSC at which the page gives reference time ref or
// later. ok is false when no 64-bit TSC gets there.
func (g refPage) tscAt(ref uint64) (uint64, bool) {
	if g.scale == 0 {
		return 0, false
	}
	x := ref - uint64(g.offset) // (tsc*scale)>>64 must reach x
	if int64(x) <= 0 {
		return 0, true // reached at TSC 0 already
	}
	if x >= g.scale {
		return 0, false
	}
	q, r := bits.Div64(x, 0, g.scale) // ceil(x·2^64 / scale)
	if r != 0 {
		q++
	}
	// The ceiling gives (q*scale)>>64 >= x; step back while the previous
	// TSC still does (rounding), forward while this one does not.
	for q > 0 && g.ref(q-1) >= ref {
		q--
	}
	for g.ref(q) < ref {
		if q == ^uint64(0) {
			return 0, false
		}
		q++
	}
	return q, true
}

// checkHyperVRefTime: TIME_REF_COUNT runs at 10 MHz against the TSC
// whose rate the root passed (its two reads bracketed by TSC reads bound
// the rate); the reference TSC page, enabled before GUEST_OS_ID as Linux
// does, is valid at once with the TLFS scale for that TSC, and the time
// the guest computes from it brackets TIME_REF_COUNT within rounding — and
// so does it for the first read, made before the page existed; the
// read-only MSRs #GP; VP_RUNTIME trails the reference time; a moved page
// is valid at once.
func checkHyperVRefTime(env *Env) (string, error) {
	c := apicClocks()
	window := uint64(timerInterval) * c.TSCHz / 1e9
	p, r, s, err := env.runHV("hvreftime", testguests.HVRefTime, func(p *hv.Partition) error {
		return testguests.SetAPICParams(p.Mem, window)
	}, 30*time.Second)
	defer destroy(p)
	if err != nil {
		return "", err
	}
	if err := apicPassed(r, s, "reference-time guest"); err != nil {
		return "", err
	}
	res := s.Results
	lo, hi, mid, err := refRate(res[0], res[1], res[2], res[3], res[4], res[5], c.TSCHz)
	if err != nil {
		return "", err
	}
	// Each count is exact but for the floor of its multiplication: allow
	// two ticks over the whole span.
	slack := 2 / float64(res[4]-res[1])
	if lo > tlfs.ReferenceHz*(1+slack) || hi < tlfs.ReferenceHz*(1-slack) {
		return "", fmtErr("TIME_REF_COUNT ran at %.0f-%.0f Hz against the TSC's %d Hz, want %d", lo, hi, c.TSCHz, tlfs.ReferenceHz)
	}
	g := refPage{res[7], int64(res[8])}
	if want := tlfs.RefTSCScale(c.TSCHz); g.scale != want {
		return "", fmtErr("TscScale %#x, want %#x for a %d Hz TSC", g.scale, want, c.TSCHz)
	}
	// The first TIME_REF_COUNT read, 20 ms before the page was enabled,
	// agrees with the page too.
	if g.ref(res[0]) > res[1]+2 || res[1] > g.ref(res[2])+2 {
		return "", fmtErr("TIME_REF_COUNT %d read between TSC %d and %d, where the page gives %d-%d", res[1], res[0], res[2], g.ref(res[0]), g.ref(res[2]))
	}
	if after := p.ReferenceTime(); after < res[13] {
		return "", fmtErr("the root's reference time %d is behind the guest's last read %d", after, res[13])
	}
	return fmt.Sprintf("TIME_REF_COUNT at %.4f MHz against the %d Hz TSC (bounds %.4f-%.4f) over %v; page sequence %d, scale %#x, offset %d: page %d, MSR %d, page %d; read-only MSRs #GP; VP_RUNTIME %d ≤ %d; moved page sequence %d",
		mid/1e6, c.TSCHz, lo/1e6, hi/1e6, timerInterval, res[6], g.scale, g.offset, res[9], res[10], res[11], res[12], res[13], res[14]), nil
}

// fillPage writes b over a whole guest page.
func fillPage(m *hv.GuestMemory, gpa uint64, b byte) error {
	page := make([]byte, 4096)
	for i := range page {
		page[i] = b
	}
	return m.WriteRAM(gpa, page)
}

// synICAccounting checks the SynIC's message invariant: every message Post
// accepted was delivered, dropped or waits.
func synICAccounting(sy *synic.SynIC) error {
	st := sy.Stats()
	queued := uint64(0)
	for n := range uint8(tlfs.SINTCount) {
		queued += uint64(sy.Queued(n))
	}
	if st.Posted != st.Delivered+st.Dropped+queued {
		return fmtErr("the SynIC counted %d posted, %d delivered, %d dropped, %d queued", st.Posted, st.Delivered, st.Dropped, queued)
	}
	return nil
}

// onlyVectors fails when the log holds a vector outside want.
func onlyVectors(s testguests.APICState, want ...uint8) error {
	for i, rec := range s.Log {
		if !slices.Contains(want, rec.Vector) || rec.After {
			return fmtErr("interrupt %d was %v, want only %#x", i, rec, want)
		}
	}
	return nil
}

// checkSynICMessage: the SynIC set up in Linux's order, each register
// reading back and both pages cleared on enable; HvCallPostMessage to the
// root's echo port comes back in SINT2's slot — type, size, payload, the
// port as origin — when the call returns, with SINT2's vector after; a
// flood with IF clear fills the slot and the 16-deep queue, then
// INSUFFICIENT_BUFFERS; Linux's way of draining (clear the type, EOM while
// MessagePending) brings every accepted message in order; later messages
// arrive; an unbound connection, bad payload size or type, reserved bits,
// a misaligned, page-crossing, outside-RAM or MMIO input and the fast form
// each get their status; a masked SINT gets the message without the
// interrupt. The SynIC's and the port's counts agree with the guest's.
func checkSynICMessage(env *Env) (string, error) {
	const flood = 40
	echo := &echoPort{conn: hvEchoConn}
	p, r, s, err := env.runHV("hvmessage", testguests.HVSynICMessage, func(p *hv.Partition) error {
		echo.p = p
		if err := errors.Join(fillPage(p.Mem, testguests.HVSIMPage, 0xaa), fillPage(p.Mem, testguests.HVSIEFPage, 0xaa)); err != nil {
			return err
		}
		if err := p.Ports().AddMessagePort(hvEchoConn, echo); err != nil {
			return err
		}
		return testguests.SetAPICParams(p.Mem, hvEchoConn, hvUnboundConn, flood, hvMessageType)
	}, 30*time.Second)
	defer destroy(p)
	if err != nil {
		return "", err
	}
	if err := apicPassed(r, s, "message guest"); err != nil {
		return "", err
	}
	res := s.Results
	sy := p.VP(0).SynIC()
	st := sy.Stats()
	accepted, refused := res[2], res[3]
	// The echo port saw: the first post, the flood, a later one, one to
	// the masked SINT. Nothing the hypercall layer refused reached it.
	wantMsgs := uint64(1 + flood + 1 + 1)
	switch {
	case res[1] != hvEchoConn:
		return "", fmtErr("the reply's origin is %#x, want the echo connection %#x", res[1], hvEchoConn)
	case accepted != 1+synic.DefaultQueueDepth || refused != flood-accepted:
		return "", fmtErr("the flood of %d: %d accepted, %d refused; want %d accepted (the slot and a %d-deep queue)",
			flood, accepted, refused, 1+synic.DefaultQueueDepth, synic.DefaultQueueDepth)
	case echo.messages.Load() != wantMsgs || echo.refused.Load() != refused:
		return "", fmtErr("the echo port received %d messages and had %d replies refused; want %d and %d", echo.messages.Load(), echo.refused.Load(), wantMsgs, refused)
	case st.QueueFull != refused || st.Dropped != 0 || st.Delivered != wantMsgs-refused:
		return "", fmtErr("the SynIC counted %d delivered, %d queue-full, %d dropped; want %d, %d, 0", st.Delivered, st.QueueFull, st.Dropped, wantMsgs-refused, refused)
	case st.EOMs < accepted-1:
		return "", fmtErr("the SynIC counted %d EOMs for %d queued messages", st.EOMs, accepted-1)
	}
	if err := errors.Join(synICAccounting(sy), onlyVectors(s, testguests.HVSINT2Vector), apicStats(p.VP(0).LAPIC().Stats(), s.Count)); err != nil {
		return "", err
	}
	return fmt.Sprintf("echo in SINT2's slot from connection %#x with vector %#x; flood of %d: %d accepted, %d INSUFFICIENT_BUFFERS, drained in order by %d EOMs; "+
		"unbound %#x, size 241, type 0, hypervisor type, reserved bits, misaligned, page-crossing, outside-RAM and I/O APIC input, fast form: each its status; masked SINT: message, no interrupt; %d interrupts",
		res[1], testguests.HVSINT2Vector, flood, accepted, refused, st.EOMs, res[4], s.Count), nil
}

// checkSynICEvent: a fast HvCallSignalEvent to the root's event port,
// whose handler signals the flag back, sets flag 1234 of SINT2 in the
// SIEF page and raises SINT2's vector; nothing else is set; a second
// signal of a set flag merges; the slow form works; an unbound connection,
// a message port's connection, reserved bits and flag 2048 each get their
// status and never reach a handler; with SINT2 masked the root's signal is
// refused (INVALID_SYNIC_STATE) and no flag set; the slow form's input
// outside RAM is INVALID_ALIGNMENT.
func checkSynICEvent(env *Env) (string, error) {
	ev := &eventPort{}
	msg := &countPort{}
	p, r, s, err := env.runHV("hvevent", testguests.HVSynICEvent, func(p *hv.Partition) error {
		ev.p = p
		if err := errors.Join(p.Ports().AddEventPort(hvEventConn, ev), p.Ports().AddMessagePort(hvMsgConn, msg)); err != nil {
			return err
		}
		return testguests.SetAPICParams(p.Mem, hvEventConn, hvMsgConn, hvUnboundConn)
	}, 30*time.Second)
	defer destroy(p)
	if err != nil {
		return "", err
	}
	if err := apicPassed(r, s, "event guest"); err != nil {
		return "", err
	}
	ev.mu.Lock()
	flags, set := slices.Clone(ev.flags), ev.set
	ev.mu.Unlock()
	st := p.VP(0).SynIC().Stats()
	want := []uint16{1234, 7, 7, 9, 1234}
	switch {
	case !slices.Equal(flags, want):
		return "", fmtErr("the event port was asked for flags %v, want %v", flags, want)
	case set != 3 || st.EventsSet != 3 || st.EventsMerged != 1 || st.Refused != 1:
		return "", fmtErr("flags set %d (SynIC %d), merged %d, refused %d; want 3, 3, 1, 1", set, st.EventsSet, st.EventsMerged, st.Refused)
	case msg.n.Load() != 0:
		return "", fmtErr("the message port was reached %d times by signals", msg.n.Load())
	case s.Count < 2:
		return "", fmtErr("%d interrupts, want at least one for each of flags 1234 and 7", s.Count)
	}
	if err := errors.Join(onlyVectors(s, testguests.HVSINT2Vector), apicStats(p.VP(0).LAPIC().Stats(), s.Count)); err != nil {
		return "", err
	}
	return fmt.Sprintf("flag 1234 of SINT2 set and vector %#x raised (%d interrupts for %d flags set, %d merged); slow form; unbound connection, message port, reserved bits, flag 2048: their statuses, no handler reached; masked SINT2: INVALID_SYNIC_STATE, no flag; input outside RAM: INVALID_ALIGNMENT",
		testguests.HVSINT2Vector, s.Count, st.EventsSet, st.EventsMerged), nil
}

// Synthetic-timer parameters: in 100 ns units of reference time.
const (
	stimerDelay   = uint64(timerInterval / 100)         // the one-shots: 20 ms ahead
	stimerPeriod  = uint64(10 * time.Millisecond / 100) // the periodic timers
	stimerTicks   = 5                                   // periodic messages and interrupts taken
	stimerQuiet   = 2                                   // periods of each quiet spell
	stimerHold    = 55                                  // tenths of a period the slot is kept busy
	stimerMinSkip = 3                                   // periods a lazy timer must skip in that hold
)

// refLate is how late reference time got came after want, as a duration
// (negative: early).
func refLate(got, want uint64) time.Duration {
	return time.Duration(int64(got-want)) * 100
}

// periodicExpirations checks message-mode expirations of a periodic
// timer: each a whole number of periods after the last, at least one; it
// returns how many periods were skipped.
func periodicExpirations(exp []uint64, period uint64) (skipped uint64, err error) {
	for i := 1; i < len(exp); i++ {
		d := exp[i] - exp[i-1]
		if exp[i] <= exp[i-1] || d%period != 0 {
			return 0, fmtErr("expiration %d at %d, %d after the last: not a whole number of %d periods", i, exp[i], int64(d), period)
		}
		skipped += d/period - 1
	}
	return skipped, nil
}

// checkSynICTimers: synthetic timer 0 as a guest runs it. Message mode on
// SINT3: a one-shot's HvMessageTypeTimerExpired carries timer 0, its COUNT
// as ExpirationTime and a DeliveryTime not before it nor after
// TIME_REF_COUNT, clears Enable and fires once; periodic expirations are
// whole periods apart from the start; CONFIG 0 stops it; AutoEnable starts
// on a non-zero COUNT and COUNT 0 stops it; Lazy reports only the latest
// expiration after a busy slot, non-lazy catches up one by one. Direct
// mode: the vector arrives through the LAPIC without a message, one-shot
// and periodic. Each interrupt's lateness is measured at the guest's
// handler (its TSC through the reference TSC page) and none is early or
// later than timerLateBound.
func checkSynICTimers(env *Env) (string, error) {
	c := apicClocks()
	tscPer := func(d uint64) uint64 { return d * 100 * c.TSCHz / 1e9 } // 100 ns units to TSC ticks
	p, r, s, err := env.runHV("hvtimers", testguests.HVTimers, func(p *hv.Partition) error {
		return testguests.SetAPICParams(p.Mem, stimerDelay, stimerPeriod, stimerTicks,
			tscPer(stimerQuiet*stimerPeriod), tscPer(stimerHold*stimerPeriod/10))
	}, time.Minute)
	defer destroy(p)
	if err != nil {
		return "", err
	}
	if err := apicPassed(r, s, "timer guest"); err != nil {
		return "", err
	}
	g, err := readRefPage(p.Mem, testguests.HVRefTSCPage)
	if err != nil {
		return "", err
	}
	res := s.Results
	var parts []string

	// One-shot, message mode: the SynIC's stamps and the handler's arrival.
	if len(s.Log) == 0 || s.Log[0].Vector != testguests.HVSINT3Vector {
		return "", fmtErr("the first interrupt is not SINT3's: %s", fmtVectors(s.Vectors()))
	}
	exp, deliv := res[1], res[2]
	if exp != res[0] || deliv < exp || res[3] < deliv {
		return "", fmtErr("one-shot message: COUNT %d, expiration %d, delivery %d, TIME_REF_COUNT after %d", res[0], exp, deliv, res[3])
	}
	arrive := refLate(g.ref(s.Log[0].TSC), exp)
	if err := errors.Join(env.checkLateness("the one-shot's message", refLate(deliv, exp)), env.checkLateness("the one-shot's SINT3 interrupt", arrive)); err != nil {
		return "", err
	}
	parts = append(parts, fmt.Sprintf("one-shot message: delivered %v after expiry, handler %v", refLate(deliv, exp).Round(time.Microsecond), arrive.Round(time.Microsecond)))

	// Periodic, message mode: expirations from the start, whole periods
	// apart; deliveries after them.
	var pexp []uint64
	var worst time.Duration
	for k := range stimerTicks {
		e, d := res[16+2*k], res[17+2*k]
		pexp = append(pexp, e)
		if d < e {
			return "", fmtErr("periodic message %d delivered at %d, before its expiration %d", k, d, e)
		}
		worst = max(worst, refLate(d, e))
	}
	if first := pexp[0] - stimerPeriod; first < res[8] || first > res[9] {
		return "", fmtErr("the first periodic expiration %d is not a period after the enabling write (%d-%d)", pexp[0], res[8], res[9])
	}
	skipped, err := periodicExpirations(pexp, stimerPeriod)
	if err != nil {
		return "", err
	}
	if err := env.checkLateness("a periodic message", worst); err != nil {
		return "", err
	}
	parts = append(parts, fmt.Sprintf("periodic message: %d of %v, %d skipped, delivered at most %v late", stimerTicks, time.Duration(stimerPeriod*100), skipped, worst.Round(time.Microsecond)))

	// AutoEnable and COUNT 0.
	if res[33]&tlfs.STimerEnable == 0 || res[34]&tlfs.STimerEnable != 0 || res[36]-res[35] != stimerPeriod {
		return "", fmtErr("AutoEnable: CONFIG %#x after COUNT, %#x after COUNT 0, expirations %d, %d", res[33], res[34], res[35], res[36])
	}
	parts = append(parts, "AutoEnable on COUNT, COUNT 0 disables")

	// Direct mode: one-shot, then periodic; their vectors in the log.
	var direct []uint64
	for _, rec := range s.Log {
		if rec.Vector == testguests.HVSTimerVector {
			direct = append(direct, g.ref(rec.TSC))
		}
	}
	if n := uint64(len(direct)); n < 1+stimerTicks || n > 2+stimerTicks || n != res[45]-res[44]+1 {
		return "", fmtErr("%d direct-mode interrupts (the guest counted %d periodic), want 1 and %d or %d", n, res[45]-res[44], stimerTicks, stimerTicks+1)
	}
	oneShot := refLate(direct[0], res[40])
	if err := env.checkLateness("the direct one-shot", oneShot); err != nil {
		return "", err
	}
	f, err := fitPeriodic(direct[1:], res[42], float64(stimerPeriod), tlfs.ReferenceHz)
	if err != nil {
		return "", fmtErr("direct periodic: %v", err)
	}
	if err := env.checkLateness("a direct periodic interrupt", f.late[len(f.late)-1]); err != nil {
		return "", err
	}
	parts = append(parts, fmt.Sprintf("direct one-shot: vector %#x %v late, no message; direct periodic: mean period %v, lateness median %v max %v",
		testguests.HVSTimerVector, oneShot.Round(time.Microsecond), time.Duration(f.period*100).Round(time.Microsecond),
		f.late[len(f.late)/2].Round(time.Microsecond), f.late[len(f.late)-1].Round(time.Microsecond)))

	// Lazy and not: the slot kept busy for 5.5 periods.
	lazyFirst, lazyNext, lazyAfter := res[48], res[50], res[51]
	switch {
	case res[49]&tlfs.MessagePendingFlag == 0 || res[57]&tlfs.MessagePendingFlag == 0:
		return "", fmtErr("the busy slot's MessagePending: lazy %#x, not lazy %#x; want set", res[49], res[57])
	case lazyNext < lazyFirst+(1+stimerMinSkip)*stimerPeriod || (lazyNext-lazyFirst)%stimerPeriod != 0 || lazyAfter != lazyNext+stimerPeriod:
		return "", fmtErr("lazy: expirations %d then %d, %d; want the latest (at least %d periods on), then one period on", lazyFirst, lazyNext, lazyAfter, 1+stimerMinSkip)
	}
	for k := range 4 {
		if got, want := res[58+k], res[56]+uint64(k+1)*stimerPeriod; got != want {
			return "", fmtErr("not lazy: expiration %d after the hold is %d, want %d (one by one)", k, got, want)
		}
	}
	st := p.VP(0).SynIC().Stats()
	parts = append(parts, fmt.Sprintf("lazy after a %d.%d-period busy slot: skipped to %d periods on; not lazy: caught up one by one; SynIC: %d signals, %d coalesced",
		stimerHold/10, stimerHold%10, (lazyNext-lazyFirst)/stimerPeriod, st.TimerSignals, st.TimerCoalesced))
	if err := errors.Join(onlyVectors(s, testguests.HVSINT3Vector, testguests.HVSTimerVector), apicStats(p.VP(0).LAPIC().Stats(), s.Count)); err != nil {
		return "", err
	}
	return strings.Join(parts, "; ") + fmt.Sprintf(" (bound %v)", timerLateBound), nil
}

// crashCase is one run of the crash guest: the parameters it writes, the
// message the root puts where P3 points, and what the root must report.
type crashCase struct {
	name        string
	p           [5]uint64
	ctl         uint64
	text        string // written at testguests.HVCrashMessage
	wantMessage string
}

var crashText = "gohv crash check: kernel BUG at hv.c:42!\nthe end"

var crashCases = []crashCase{
	{"with a message", [5]uint64{0x1e, testguests.HVGuestOSID, 0xffff_ffff_8100_1234, testguests.HVCrashMessage, uint64(len(crashText))},
		tlfs.CrashNotify | tlfs.CrashMessage, crashText, crashText},
	{"notify only", [5]uint64{0xdead, testguests.HVGuestOSID, 0x1000, testguests.HVCrashMessage, 12},
		tlfs.CrashNotify, crashText, ""},
	{"message outside RAM", [5]uint64{1, 2, 3, testguests.HVOutsideRAM, 64},
		tlfs.CrashNotify | tlfs.CrashMessage, "", ""},
	{"message of 2^40 bytes with control characters", [5]uint64{4, 5, 6, testguests.HVCrashMessage, 1 << 40},
		tlfs.CrashNotify | tlfs.CrashMessage, "esc \x1b[2J bell \a\x00hidden", "esc .[2J bell ."},
}

// checkHyperVCrash: CRASH_CTL reads CrashNotify|CrashMessage; a reserved
// bit #GPs and the partition goes on; P0-P4 read back; CrashNotify ends
// the partition with ErrGuestCrash carrying the parameters as the guest
// wrote them, and with CrashMessage the text P3/P4 point at — made
// printable, read no further than a NUL or 4 KiB however long P4 says it
// is, and empty when P3 is outside RAM.
func checkHyperVCrash(env *Env) (string, error) {
	var parts []string
	for _, c := range crashCases {
		p, r, s, err := env.runHV("hvcrash", testguests.HVCrash, func(p *hv.Partition) error {
			if c.text != "" {
				if err := p.Mem.WriteRAM(testguests.HVCrashMessage, append([]byte(c.text), 0)); err != nil {
					return err
				}
			}
			return testguests.SetAPICParams(p.Mem, c.p[0], c.p[1], c.p[2], c.p[3], c.p[4], c.ctl)
		}, 30*time.Second)
		destroy(p)
		if err != nil {
			return "", err
		}
		var ce *hv.GuestCrashError
		switch {
		case r.HasStatus:
			return "", fmtErr("%s: %v at step %d, want the partition ended by its crash report", c.name, r, r.Status)
		case r.State != hv.StateCrashed || !errors.Is(r.Err, hv.ErrGuestCrash) || !errors.As(r.Err, &ce):
			return "", fmtErr("%s: %v (step %d), want ended by ErrGuestCrash", c.name, r, s.Step)
		case s.Step != 4:
			return "", fmtErr("%s: ended at step %d, want at step 4 (the CRASH_CTL write)", c.name, s.Step)
		case ce.P != c.p || ce.VP != 0:
			return "", fmtErr("%s: VP %d P %#x, want VP 0 P %#x", c.name, ce.VP, ce.P, c.p)
		case ce.Message != c.wantMessage:
			return "", fmtErr("%s: message %q, want %q", c.name, ce.Message, c.wantMessage)
		}
		parts = append(parts, fmt.Sprintf("%s: P0 %#x, message %q", c.name, ce.P[0], ce.Message))
	}
	return strings.Join(parts, "; ") + "; CRASH_CTL reserved bit #GP", nil
}

// hostileCalls are the hypercalls hyperv-hostile's first guest makes, each
// with the result the TLFS (and hv/hypercall's documented choices where it
// leaves room) gives it. The input page holds a well-formed post to
// hvOtherConn, a connection bound on another partition only.
func hostileCalls() []testguests.HVCallCase {
	const (
		post, signal, spin = tlfs.HvCallPostMessage, tlfs.HvCallSignalEvent, tlfs.HvCallNotifyLongSpinWait
		fast               = tlfs.ControlFast
		in                 = testguests.HVInputPage
		reps               = 0xfff << tlfs.ControlRepCountShift
		repStart           = 0xfff << tlfs.ControlRepStartShift
		align              = uint64(tlfs.StatusInvalidAlignment)
		input              = uint64(tlfs.StatusInvalidHypercallInput)
		code               = uint64(tlfs.StatusInvalidHypercallCode)
	)
	return []testguests.HVCallCase{
		{Name: "post, input outside RAM", RCX: post, RDX: testguests.HVOutsideRAM, Want: align},
		{Name: "post, input misaligned", RCX: post, RDX: in + 4, Want: align},
		{Name: "post, input crossing its page", RCX: post, RDX: in + 0xf08, Want: align},
		{Name: "post, input on the I/O APIC", RCX: post, RDX: hv.IOAPICBase, Want: align},
		{Name: "post, input on the LAPIC page", RCX: post, RDX: 0xfee0_0000, Want: align},
		{Name: "post, input at the top of the address space", RCX: post, RDX: 0xffff_ffff_ffff_f000, Want: align},
		{Name: "signal (slow), input outside RAM", RCX: signal, RDX: testguests.HVOutsideRAM, Want: align},
		{Name: "signal (slow), input on the I/O APIC", RCX: signal, RDX: hv.IOAPICBase, Want: align},
		{Name: "spin wait (slow), input outside RAM", RCX: spin, RDX: testguests.HVOutsideRAM, Want: align},
		{Name: "post, rep count 0xfff, start 0xfff", RCX: post | reps | repStart, RDX: in, Want: input},
		{Name: "post, rep count 0xfff", RCX: post | reps, RDX: in, Want: input},
		{Name: "post, rep start 5 without a count", RCX: post | 5<<tlfs.ControlRepStartShift, RDX: in, Want: input},
		{Name: "spin wait (fast), rep count 0xfff, start 0xfff", RCX: spin | fast | reps | repStart, Want: input},
		{Name: "flush list (rep), rep count 0xfff, start 0xfff", RCX: tlfs.HvCallFlushVirtualAddressList | reps | repStart, RDX: in, Want: input},
		{Name: "flush list (rep), rep count 5, start 10", RCX: tlfs.HvCallFlushVirtualAddressList | 5<<tlfs.ControlRepCountShift | 10<<tlfs.ControlRepStartShift, RDX: in, Want: input},
		{Name: "flush list (rep), no rep count", RCX: tlfs.HvCallFlushVirtualAddressList, RDX: in, Want: input},
		{Name: "flush space, input outside RAM", RCX: tlfs.HvCallFlushVirtualAddressSpace, RDX: testguests.HVOutsideRAM, Want: align},
		{Name: "flush space, fast (no register form)", RCX: tlfs.HvCallFlushVirtualAddressSpace | fast, RDX: in, Want: input},
		{Name: "synthetic IPI (fast), vector 15", RCX: tlfs.HvCallSendSyntheticClusterIpi | fast, RDX: 0x0f, R8: 1, Want: input},
		{Name: "synthetic IPI (fast), vector 256", RCX: tlfs.HvCallSendSyntheticClusterIpi | fast, RDX: 0x100, R8: 1, Want: input},
		{Name: "synthetic IPI (fast), target VTL 1", RCX: tlfs.HvCallSendSyntheticClusterIpi | fast, RDX: 0xf0 | 1<<32, R8: 1, Want: input},
		{Name: "synthetic IPI (slow), input outside RAM", RCX: tlfs.HvCallSendSyntheticClusterIpi, RDX: testguests.HVOutsideRAM, Want: align},
		{Name: "synthetic IPI Ex, fast (no register form)", RCX: tlfs.HvCallSendSyntheticClusterIpiEx | fast, RDX: 0xf0, Want: input},
		{Name: "synthetic IPI Ex, a rep count", RCX: tlfs.HvCallSendSyntheticClusterIpiEx | 1<<tlfs.ControlRepCountShift, RDX: in, Want: input},
		{Name: "code 0", RCX: 0, RDX: in, Want: code},
		{Name: "HvCallGetPartitionId (not offered)", RCX: tlfs.HvCallGetPartitionId, RDX: in, Want: code},
		{Name: "HvExtCallQueryCapabilities (not offered)", RCX: tlfs.HvExtCallQueryCapabilities, RDX: in, Want: code},
		{Name: "code 0xffff (fast)", RCX: 0xffff | fast, Want: code},
		{Name: "nested (bit 31)", RCX: spin | fast | tlfs.ControlNested, Want: input},
		{Name: "reserved bits 30:27", RCX: spin | fast | 1<<27, Want: input},
		{Name: "reserved bits 47:44", RCX: spin | fast | 1<<44, Want: input},
		{Name: "reserved bits 63:60", RCX: spin | fast | 1<<63, Want: input},
		{Name: "post with a variable header", RCX: post | 1<<tlfs.ControlVarHeaderShift, RDX: in, Want: input},
		{Name: "post, fast", RCX: post | fast, RDX: in, Want: input},
		{Name: "post to another partition's connection", RCX: post, RDX: in, Want: uint64(tlfs.StatusInvalidConnectionID)},
		{Name: "signal another partition's connection", RCX: signal | fast, RDX: hvOtherConn, Want: uint64(tlfs.StatusInvalidConnectionID)},
	}
}

// hostileMSRs are the MSR accesses hyperv-hostile's second guest makes:
// overlay pages in MMIO or outside RAM (accepted and inert), reserved and
// read-only bits, vectors below 16, unknown synthetic MSRs. It leaves
// SIMP outside RAM, SIEFP on the I/O APIC's page, the reference TSC page
// on it too, and the hypercall page back in RAM.
func hostileMSRs() []testguests.HVMSRCase {
	const (
		ioapic  = hv.IOAPICBase | tlfs.OverlayEnable
		lapic   = 0xfee0_0000 | tlfs.OverlayEnable
		outside = testguests.HVOutsideRAM | tlfs.OverlayEnable
		huge    = 1<<60 | tlfs.OverlayEnable // beyond any MAXPHYADDR
		sint2   = tlfs.MsrSINT0 + 2
	)
	ok := func(name string, msr uint32, v uint64) testguests.HVMSRCase {
		return testguests.HVMSRCase{Name: name, MSR: msr, Value: v, Op: testguests.MSRWriteReadOK, Want: v}
	}
	gpw := func(name string, msr uint32, v uint64) testguests.HVMSRCase {
		return testguests.HVMSRCase{Name: name, MSR: msr, Value: v, Op: testguests.MSRWriteGP}
	}
	gpr := func(name string, msr uint32) testguests.HVMSRCase {
		return testguests.HVMSRCase{Name: name, MSR: msr, Op: testguests.MSRReadGP}
	}
	return []testguests.HVMSRCase{
		ok("SIMP on the I/O APIC", tlfs.MsrSIMP, ioapic),
		ok("SIMP on the LAPIC page", tlfs.MsrSIMP, lapic),
		ok("SIMP beyond MAXPHYADDR", tlfs.MsrSIMP, huge),
		ok("SIMP outside RAM", tlfs.MsrSIMP, outside),
		ok("SIEFP outside RAM", tlfs.MsrSIEFP, outside),
		ok("SIEFP on the I/O APIC", tlfs.MsrSIEFP, ioapic),
		ok("REFERENCE_TSC outside RAM", tlfs.MsrReferenceTSC, outside),
		ok("REFERENCE_TSC on the I/O APIC", tlfs.MsrReferenceTSC, ioapic),
		gpw("REFERENCE_TSC beyond MAXPHYADDR", tlfs.MsrReferenceTSC, huge),
		ok("HYPERCALL on the I/O APIC", tlfs.MsrHypercall, ioapic),
		ok("HYPERCALL outside RAM", tlfs.MsrHypercall, outside),
		gpw("HYPERCALL beyond MAXPHYADDR", tlfs.MsrHypercall, huge),
		ok("HYPERCALL back in RAM", tlfs.MsrHypercall, testguests.HVHypercallPage|tlfs.OverlayEnable),
		gpw("SINT2 unmasked, vector 15", sint2, 15),
		gpw("SINT2 unmasked, vector 0", sint2, 0),
		gpw("SINT2 unmasked, vector 15, AutoEOI", sint2, 15|tlfs.SINTAutoEOI),
		ok("SINT2 masked, vector 5", sint2, tlfs.SINTMasked|5),
		ok("SINT2 unmasked, vector 16", sint2, 16),
		ok("SINT2 back to its vector", sint2, testguests.HVSINT2Vector),
		gpw("STIMER0 direct, vector 15", tlfs.MsrSTimer0Config, tlfs.STimerEnable|tlfs.STimerDirectMode|15<<tlfs.STimerVectorShift),
		gpw("STIMER0 RsvdZ bit 13", tlfs.MsrSTimer0Config, 1<<13),
		gpw("STIMER0 RsvdZ bit 20", tlfs.MsrSTimer0Config, 1<<20),
		{Name: "STIMER0 enabled on SINT 0: Enable dropped", MSR: tlfs.MsrSTimer0Config, Value: tlfs.STimerEnable, Op: testguests.MSRWriteReadOK, Want: 0},
		gpw("EOM non-zero", tlfs.MsrEOM, 1),
		{Name: "EOM reads 0", MSR: tlfs.MsrEOM, Op: testguests.MSRRead, Want: 0},
		gpw("SVERSION written", tlfs.MsrSVersion, 2),
		ok("SCONTROL RsvdP bits kept", tlfs.MsrSControl, 0xff00|tlfs.SControlEnable),
		gpw("CRASH_CTL reserved bit", tlfs.MsrCrashCtl, 1),
		{Name: "CRASH_CTL 0 (no report)", MSR: tlfs.MsrCrashCtl, Op: testguests.MSRWrite},
		gpw("VP_INDEX written", tlfs.MsrVPIndex, 1),
		gpw("TIME_REF_COUNT written", tlfs.MsrTimeRefCount, 0),
		gpr("HV_X64_MSR_RESET (not offered)", tlfs.MsrReset),
		gpr("0x40000004 (none)", 0x4000_0004),
		gpr("0x400000a0 (past SINT15)", 0x4000_00a0),
		gpr("0x400000b8 (past STIMER3)", tlfs.MsrSTimer3Count+1),
		gpw("HV_X64_MSR_GUEST_IDLE written (a read idles: smp-ipi-flush)", tlfs.MsrGuestIdle, 0),
		gpr("0x40000106 (past CRASH_CTL)", tlfs.MsrCrashCtl+1),
		gpw("0x400001ff written", tlfs.MsrRangeLast, 0),
	}
}

// bystanderLateBound is how late hyperv-hostile's bystander may take a
// timer tick while a neighbour storms: twice timerLateBound. The
// neighbour's thread gives way to a woken VP only at metal's slice end
// (1 ms of its clock), and under QEMU's TCG without -icount the storm's
// exits cost wall-clock time the guests' TSC also counts: measured there,
// a median of 2-3 ms and a maximum of 6-9 ms during the EOM storm (under
// -icount, a median of 0.1 ms and a maximum of 4 ms).
const bystanderLateBound = 2 * timerLateBound

// Storm sizes for hyperv-hostile's third guest.
const (
	stormFlood = 24                     // posts with IF clear
	stormEOMs  = 10000                  // EOM writes while the slot stays busy
	stormSpell = 100 * time.Millisecond // each period-1 timer's run
)

// hostileResult is one partition of hyperv-hostile: its name, its end,
// what its guest left, and the check of it.
type hostileResult struct {
	name string
	p    *hv.Partition
	r    hv.Result
	s    testguests.APICState
}

// checkHyperVHostile: three hostile guests run at once, and a bystander
// beside the third. The first makes hypercalls with inputs outside RAM,
// misaligned, crossing a page, on MMIO or at the top of the address
// space, rep counts of 0xfff with start indices beyond them, unknown and
// unoffered codes, reserved control bits, and posts and signals to a
// connection bound on the bystander only: each gets its TLFS status and
// nothing reaches the bystander's ports. The second points SIMP, SIEFP,
// the reference TSC page and the hypercall page at MMIO and outside RAM
// (accepted and inert: the I/O APIC still answers, a message and an event
// for the missing pages are dropped and counted), and tries reserved bits,
// vectors below 16 and unknown synthetic MSRs (#GP). The third floods the
// echo port, storms EOM with the slot busy and runs period-1 synthetic
// timers in direct and message mode (rate-limited to one signal per
// synic.DefaultMinTimerPeriod). From the EOM storm on, the bystander's
// periodic LAPIC timer keeps its period within bystanderLateBound, and the
// root's own sleep ends on time.
func checkHyperVHostile(env *Env) (string, error) {
	c := apicClocks()
	other := &countPort{}
	// The bystander is made first, so its ports exist for the hypercall
	// guest, and started once the storm is under way.
	const byTicks = 20
	const byPeriod = 10 * time.Millisecond
	div := timerDivides[1]
	byCount := uint64(byPeriod) * c.LAPICHz / 1e9 / div.by
	by, err := env.hv.NewPartition(hv.Config{Name: "hvbystander", RAMBytes: apicRAM, Console: env.Out})
	if err != nil {
		return "", err
	}
	defer by.Destroy()
	byStarted := false
	defer func() {
		if !byStarted {
			by.Start()
			by.Stop("the check failed before the bystander started")
		}
	}()
	if err := errors.Join(testguests.LoadAPIC(by, testguests.APICTimerPeriodic, c),
		by.Ports().AddMessagePort(hvOtherConn, other), by.Ports().AddEventPort(hvOtherConn+1, other)); err != nil {
		return "", err
	}
	if err := testguests.SetAPICParams(by.Mem, div.dcr, byCount, byTicks, 3*uint64(byPeriod)*c.TSCHz/1e9); err != nil {
		return "", err
	}
	calls, msrs := hostileCalls(), hostileMSRs()
	callsP, err1 := env.startHV("hvbadcalls", testguests.HVCallTable, func(p *hv.Partition) error {
		in := make([]byte, tlfs.PostMessageInputSize)
		if err := tlfs.PutPostMessageInput(in, tlfs.PostMessageInput{ConnectionID: hvOtherConn, Type: hvMessageType, Payload: []byte("to the bystander")}); err != nil {
			return err
		}
		if err := p.Mem.WriteRAM(testguests.HVInputPage, in); err != nil {
			return err
		}
		return testguests.SetHVCallCases(p.Mem, calls, false)
	})
	defer destroy(callsP)
	echo := &echoPort{conn: hvEchoConn}
	ev := &eventPort{}
	msrP, err2 := env.startHV("hvbadpages", testguests.HVMSRTable, func(p *hv.Partition) error {
		echo.p, ev.p = p, p
		if err := errors.Join(p.Ports().AddMessagePort(hvEchoConn, echo), p.Ports().AddEventPort(hvEventConn, ev)); err != nil {
			return err
		}
		in := make([]byte, tlfs.PostMessageInputSize)
		if err := tlfs.PutPostMessageInput(in, tlfs.PostMessageInput{ConnectionID: hvEchoConn, Type: hvMessageType, Payload: []byte("into no page")}); err != nil {
			return err
		}
		if err := p.Mem.WriteRAM(testguests.HVInputPage, in); err != nil {
			return err
		}
		return testguests.SetHVMSRCases(p.Mem, msrs, testguests.HVMSRAfter{
			IOAPICVersion: ioapicVersion, PostConn: hvEchoConn, PostWant: uint64(tlfs.StatusSuccess),
			SignalConn: hvEventConn, SignalWant: uint64(tlfs.StatusSuccess)})
	})
	defer destroy(msrP)
	stormEcho := &echoPort{conn: hvEchoConn}
	spell := uint64(stormSpell) * c.TSCHz / 1e9
	stormP, err3 := env.startHV("hvstorm", testguests.HVStorm, func(p *hv.Partition) error {
		stormEcho.p = p
		if err := p.Ports().AddMessagePort(hvEchoConn, stormEcho); err != nil {
			return err
		}
		return testguests.SetAPICParams(p.Mem, hvEchoConn, stormFlood, stormEOMs, spell, spell)
	})
	defer destroy(stormP)
	if err := errors.Join(err1, err2, err3); err != nil {
		for _, p := range []*hv.Partition{callsP, msrP, stormP} {
			if p != nil {
				p.Stop("another hostile guest failed to start")
			}
		}
		return "", err
	}
	// The bystander starts with the EOM storm (step 2), and the root
	// sleeps while it runs.
	if err := waitStep(stormP, 2, 30*time.Second); err != nil {
		by.Start()
		byStarted = true
		by.Stop("the storm guest never reached its EOM storm")
		return "", fmtErr("storm guest: %v", err)
	}
	by.Start()
	byStarted = true
	t0 := time.Now()
	time.Sleep(stormWindow)
	slept := time.Since(t0)

	var results []hostileResult
	for _, h := range []struct {
		name string
		p    *hv.Partition
	}{{"bystander", by}, {"hypercall guest", callsP}, {"page guest", msrP}, {"storm guest", stormP}} {
		r := h.p.WaitOrStop(time.Minute)
		s, err := testguests.ReadAPICState(h.p.Mem)
		if err != nil {
			return "", fmtErr("%s: %v", h.name, err)
		}
		results = append(results, hostileResult{h.name, h.p, r, s})
	}
	var parts []string
	// The bystander: its period kept, its ports untouched.
	b := results[0]
	if err := apicPassed(b.r, b.s, "bystander"); err != nil {
		return "", err
	}
	var tsc []uint64
	for _, rec := range b.s.Log {
		if rec.Vector == 0x41 {
			tsc = append(tsc, rec.TSC)
		}
	}
	f, err := fitPeriodic(tsc, b.s.Results[0], float64(byCount*div.by)*float64(c.TSCHz)/float64(c.LAPICHz), c.TSCHz)
	if err != nil {
		return "", fmtErr("bystander: %v", err)
	}
	if late := f.late[len(f.late)-1]; late > env.lateBound(bystanderLateBound) {
		return "", fmtErr("a bystander tick came %v late, bound %v%s", late, bystanderLateBound, env.stallNote())
	}
	if f.coalesced > 2+env.periodsLost(byPeriod) {
		return "", fmtErr("the bystander's timer coalesced %d periods%s", f.coalesced, env.stallNote())
	}
	if n := other.n.Load(); n != 0 {
		return "", fmtErr("the bystander's ports were reached %d times from another partition", n)
	}
	if slept > stormWindow+100*time.Millisecond {
		return "", fmtErr("the root slept %v for %v while the hostile guests ran", slept, stormWindow)
	}
	parts = append(parts, fmt.Sprintf("bystander from the EOM storm on: %d ticks of %v, lateness median %v max %v (during the storm's %s), its ports untouched; root slept %v for %v",
		len(tsc), byPeriod, f.late[len(f.late)/2].Round(time.Microsecond), f.late[len(f.late)-1].Round(time.Microsecond),
		stormPhase(results[3].s, worstTick(tsc, b.s.Results[0], float64(byCount*div.by)*float64(c.TSCHz)/float64(c.LAPICHz))),
		slept.Round(time.Millisecond), stormWindow))

	// The hypercalls.
	hc := results[1]
	if i, ok := testguests.TableCase(hc.r.Status, len(calls)); hc.r.HasStatus && ok {
		return "", fmtErr("hypercall %q returned %#x, want %#x", calls[i].Name, hc.s.Results[i], calls[i].Want)
	}
	if err := apicPassed(hc.r, hc.s, "hypercall guest"); err != nil {
		return "", err
	}
	parts = append(parts, fmt.Sprintf("%d hostile hypercalls got their statuses (INVALID_ALIGNMENT for bad inputs, INVALID_HYPERCALL_INPUT for reps and reserved bits, INVALID_HYPERCALL_CODE, INVALID_CONNECTION_ID across partitions)", len(calls)))

	// The pages.
	pg := results[2]
	if i, ok := testguests.TableCase(pg.r.Status, len(msrs)); pg.r.HasStatus && ok {
		return "", fmtErr("MSR case %q (MSR %#x, value %#x) failed: read %#x", msrs[i].Name, msrs[i].MSR, msrs[i].Value, pg.s.Results[i])
	}
	if err := apicPassed(pg.r, pg.s, "page guest"); err != nil {
		return "", err
	}
	st := pg.p.VP(0).SynIC().Stats()
	ev.mu.Lock()
	signals := len(ev.flags)
	ev.mu.Unlock()
	switch {
	case st.BadPages < 5:
		return "", fmtErr("the SynIC counted %d pages it could not clear, want at least 5", st.BadPages)
	case st.Dropped != 1 || st.EventsDropped != 1 || echo.messages.Load() != 1 || signals != 1:
		return "", fmtErr("a post and a signal into missing pages: %d dropped, %d events dropped, port saw %d and %d; want 1 each",
			st.Dropped, st.EventsDropped, echo.messages.Load(), signals)
	}
	if err := synICAccounting(pg.p.VP(0).SynIC()); err != nil {
		return "", err
	}
	parts = append(parts, fmt.Sprintf("%d MSR accesses: overlay pages in MMIO and outside RAM accepted and inert (%d bad pages; I/O APIC version %#x; a message and an event for them dropped, SUCCESS), reserved bits, vectors below 16, unknown MSRs #GP",
		len(msrs), st.BadPages, pg.s.Results[250]))

	// The storm.
	sg := results[3]
	if err := apicPassed(sg.r, sg.s, "storm guest"); err != nil {
		return "", err
	}
	d, err := stormFindings(sg, c.TSCHz)
	if err != nil {
		return "", err
	}
	parts = append(parts, d)
	return strings.Join(parts, "; "), nil
}

// worstTick returns the TSC of the latest tick of a periodic timer started
// at start with period p (TSC ticks): the one furthest past its period's
// boundary.
func worstTick(tsc []uint64, start uint64, p float64) uint64 {
	var at uint64
	worst := -1.0
	for _, t := range tsc {
		if t < start {
			continue
		}
		d := float64(t - start)
		if late := d - p*float64(uint64(d/p)); late > worst {
			worst, at = late, t
		}
	}
	return at
}

// stormPhase names what the storm guest was doing at guest TSC t (the
// partitions share the TSC).
func stormPhase(s testguests.APICState, t uint64) string {
	r := s.Results
	switch {
	case t < r[2]:
		return "flood and EOM storm"
	case t <= r[3]:
		return "period-1 direct timer"
	case t <= r[7]:
		return "period-1 message timer"
	}
	return "end"
}

// waitStep waits until a guest's data page says it reached step n (or it
// ended, or timeout passed).
func waitStep(p *hv.Partition, n uint64, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		s, err := testguests.ReadAPICState(p.Mem)
		if err != nil {
			return err
		}
		if s.Step >= n {
			return nil
		}
		select {
		case <-p.Done():
			return fmtErr("ended at step %d (%v) before step %d", s.Step, p.Result(), n)
		case <-time.After(2 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmtErr("still at step %d after %v", s.Step, timeout)
		}
	}
}

// ioapicVersion is what the I/O APIC's version register reads: version
// 0x20, 24 redirection entries (apic/ioapic).
const ioapicVersion = 0x17_0020

// stormFindings checks the storm guest's numbers against its SynIC's.
func stormFindings(h hostileResult, tscHz uint64) (string, error) {
	res := h.s.Results
	sy := h.p.VP(0).SynIC()
	st := sy.Stats()
	accepted, refused := res[0], res[1]
	direct := ticksToDuration(int64(res[3]-res[2]), tscHz)
	msg := ticksToDuration(int64(res[7]-res[6]), tscHz)
	per := time.Duration(synic.DefaultMinTimerPeriod) * 100
	limit := func(d time.Duration) uint64 { return uint64(d/per) + 2 }
	switch {
	case accepted != 1+synic.DefaultQueueDepth || refused != stormFlood-accepted:
		return "", fmtErr("storm flood: %d accepted, %d refused; want %d, %d", accepted, refused, 1+synic.DefaultQueueDepth, stormFlood-1-synic.DefaultQueueDepth)
	case st.EOMs < stormEOMs:
		return "", fmtErr("the SynIC counted %d EOMs, the guest wrote %d", st.EOMs, stormEOMs)
	case st.Delivered != accepted || st.QueueFull != refused:
		return "", fmtErr("the SynIC delivered %d messages and refused %d, want %d and %d", st.Delivered, st.QueueFull, accepted, refused)
	case res[4] > limit(direct):
		return "", fmtErr("the period-1 direct timer raised %d interrupts in %v, limit %d", res[4], direct, limit(direct))
	case res[5] > limit(msg):
		return "", fmtErr("the period-1 message timer delivered %d messages in %v, limit %d", res[5], msg, limit(msg))
	case st.TimerSignals > limit(direct)+limit(msg) || st.TimerCoalesced == 0:
		return "", fmtErr("the SynIC signalled %d timer expirations (limit %d) and coalesced %d", st.TimerSignals, limit(direct)+limit(msg), st.TimerCoalesced)
	}
	if err := synICAccounting(sy); err != nil {
		return "", err
	}
	return fmt.Sprintf("storm: flood of %d (%d accepted, %d INSUFFICIENT_BUFFERS), %d EOMs with the slot busy moved nothing, drained after; period-1 direct timer: %d interrupts in %v, message timer: %d messages in %v (limit one per %v; %d signals, %d coalesced)",
		stormFlood, accepted, refused, st.EOMs, res[4], direct.Round(time.Millisecond), res[5], msg.Round(time.Millisecond), per, st.TimerSignals, st.TimerCoalesced), nil
}
