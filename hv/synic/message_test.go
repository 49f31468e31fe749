package synic

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	"gohv/hv/tlfs"
)

// TestPostIntoFreeSlot: a message lands in SIMP + 256 × SINT with its
// header (type, size, no flags, origin) and payload, and the SINT's vector
// is raised once.
func TestPostIntoFreeSlot(t *testing.T) {
	r := newRig(t, nil)
	r.enable(t)
	payload := []byte("version response")
	if err := r.s.Post(2, 1, 0x1234, payload); err != nil {
		t.Fatal(err)
	}
	h, p := r.ram.slot(simpGPA, 2)
	want := tlfs.MessageHeader{Type: 1, PayloadSize: uint8(len(payload)), Origin: 0x1234}
	if h != want || !bytes.Equal(p, payload) {
		t.Fatalf("slot %+v %q, want %+v %q", h, p, want, payload)
	}
	if r.intr.n(sintVector) != 1 || r.intr.total() != 1 {
		t.Fatalf("interrupts %v", r.intr.raised)
	}
	if other, _ := r.ram.slot(simpGPA, 3); other.Type != 0 {
		t.Fatal("another slot written")
	}
	if st := r.s.Stats(); st.Posted != 1 || st.Delivered != 1 {
		t.Fatalf("stats %+v", st)
	}
}

// TestPostWritesTypeLast: the header and payload are written before the
// type, and the type by compare-and-swap from 0, so a guest polling the
// type never sees a half-written message (TLFS "SynIC Messages").
func TestPostWritesTypeLast(t *testing.T) {
	r := newRig(t, nil)
	r.enable(t)
	slot := uint64(simpGPA + 2*tlfs.MessageSize)
	var ops []string
	r.ram.hook = func(op string, gpa uint64) {
		if gpa >= slot && gpa < slot+tlfs.MessageSize {
			ops = append(ops, fmt.Sprintf("%s+%d", op, gpa-slot))
		}
	}
	if err := r.s.Post(2, 7, 0, make([]byte, 240)); err != nil {
		t.Fatal(err)
	}
	want := []string{"or+0", "write+4", "cmpxchg+0"} // read the type, write size..payload, then the type
	if fmt.Sprint(ops) != fmt.Sprint(want) {
		t.Fatalf("slot operations %v, want %v", ops, want)
	}
}

// TestBusySlotQueuesAndSetsPending: a second message finds the slot busy,
// sets MessagePending and waits; the guest's EOM (Linux writes it when
// the flag was set) brings it in, its flags clear since nothing else
// waits, and its vector is raised again.
func TestBusySlotQueuesAndSetsPending(t *testing.T) {
	r := newRig(t, nil)
	r.enable(t)
	for i := range 3 {
		if err := r.s.Post(2, 1, 0, []byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
	}
	if r.s.Queued(2) != 2 || r.intr.n(sintVector) != 1 {
		t.Fatalf("queued %d, interrupts %d", r.s.Queued(2), r.intr.n(sintVector))
	}
	for i := range 3 {
		h, p, ok := r.ram.consume(simpGPA, 2)
		if !ok || p[0] != byte(i) {
			t.Fatalf("message %d: %+v %v", i, h, p)
		}
		pending := h.Flags&tlfs.MessagePendingFlag != 0
		if wantPending := i < 2; pending != wantPending {
			t.Fatalf("message %d: pending %v, want %v", i, pending, wantPending)
		}
		if pending {
			r.wr(t, tlfs.MsrEOM, 0)
		}
	}
	if _, _, ok := r.ram.consume(simpGPA, 2); ok {
		t.Fatal("a fourth message")
	}
	if r.intr.n(sintVector) != 3 || r.s.Stats().EOMs != 2 {
		t.Fatalf("interrupts %d, EOMs %d", r.intr.n(sintVector), r.s.Stats().EOMs)
	}
	checkConservation(t, r.s)
}

// TestPendingRace: the guest empties the slot after the SynIC found it
// busy but before the SynIC set MessagePending, so the guest saw no flag
// and will write no EOM: the SynIC's second look at the type catches it
// and delivers at once.
func TestPendingRace(t *testing.T) {
	r := newRig(t, nil)
	r.enable(t)
	mustPost(t, r.s, 2, 1, "first")
	slot := uint64(simpGPA + 2*tlfs.MessageSize)
	r.ram.hook = func(op string, gpa uint64) {
		if op == "or" && gpa == slot+tlfs.MessageSizeOffset {
			r.ram.hook = nil
			r.ram.consume(simpGPA, 2) // the guest, between the two reads
		}
	}
	mustPost(t, r.s, 2, 1, "second")
	if _, p, ok := r.ram.consume(simpGPA, 2); !ok || string(p) != "second" {
		t.Fatalf("second message not delivered: %q", p)
	}
	if r.s.Queued(2) != 0 || r.intr.n(sintVector) != 2 {
		t.Fatalf("queued %d, interrupts %d", r.s.Queued(2), r.intr.n(sintVector))
	}
}

// TestGuestWritesSlotMeanwhile: a guest that writes a type into its empty
// slot while the SynIC fills it keeps its own type (compare-and-swap); the
// SynIC's message stays queued with MessagePending set, and the next EOM
// delivers it.
func TestGuestWritesSlotMeanwhile(t *testing.T) {
	r := newRig(t, nil)
	r.enable(t)
	slot := uint64(simpGPA + 2*tlfs.MessageSize)
	r.ram.hook = func(op string, gpa uint64) {
		if op == "write" && gpa == slot+4 {
			r.ram.hook = nil
			r.ram.setU32(slot, 0x77)
		}
	}
	mustPost(t, r.s, 2, 1, "mine")
	if r.s.Queued(2) != 1 || r.intr.total() != 0 {
		t.Fatalf("queued %d, interrupts %d", r.s.Queued(2), r.intr.total())
	}
	h, _, _ := r.ram.consume(simpGPA, 2)
	if h.Type != 0x77 || h.Flags&tlfs.MessagePendingFlag == 0 {
		t.Fatalf("guest's slot %+v, want its type with MessagePending", h)
	}
	r.wr(t, tlfs.MsrEOM, 0)
	if _, p, ok := r.ram.consume(simpGPA, 2); !ok || string(p) != "mine" {
		t.Fatalf("after EOM: %q", p)
	}
	checkConservation(t, r.s)
}

// TestMaskedAndPollingSINTs: a masked SINT still gets the message in its slot
// and loses only the interrupt (TLFS "SynIC Messages"); so does a polling
// one.
func TestMaskedAndPollingSINTs(t *testing.T) {
	for _, sint := range []uint64{tlfs.SINTMasked | 0xf3, tlfs.SINTPolling | 0xf3, tlfs.SINTMasked} {
		r := newRig(t, nil)
		r.enable(t)
		r.wr(t, tlfs.MsrSINT0+2, sint)
		mustPost(t, r.s, 2, 1, "x")
		mustPost(t, r.s, 2, 1, "y")
		if _, p, ok := r.ram.consume(simpGPA, 2); !ok || string(p) != "x" {
			t.Fatalf("SINT %#x: slot %q", sint, p)
		}
		r.wr(t, tlfs.MsrEOM, 0) // drains a masked SINT (TLFS "EOM Register")
		if _, p, ok := r.ram.consume(simpGPA, 2); !ok || string(p) != "y" {
			t.Fatalf("SINT %#x: EOM did not drain: %q", sint, p)
		}
		if r.intr.total() != 0 {
			t.Fatalf("SINT %#x raised %v", sint, r.intr.raised)
		}
	}
}

// TestPostRefusedWhenDisabled: with SCONTROL or SIMP off the VP is no target
// (TLFS "SynIC Messages"): ErrDisabled, INVALID_SYNIC_STATE, nothing queued.
func TestPostRefusedWhenDisabled(t *testing.T) {
	for _, c := range []struct {
		msr uint32
		v   uint64
	}{{tlfs.MsrSControl, 0}, {tlfs.MsrSIMP, simpGPA}} {
		r := newRig(t, nil)
		r.enable(t)
		r.wr(t, c.msr, c.v)
		err := r.s.Post(2, 1, 0, nil)
		if !errors.Is(err, ErrDisabled) || Status(err) != tlfs.StatusInvalidSynicState {
			t.Fatalf("MSR %#x = %#x: Post %v", c.msr, c.v, err)
		}
		if st := r.s.Stats(); st.Refused != 1 || st.Posted != 0 || r.s.Queued(2) != 0 {
			t.Fatalf("stats %+v", st)
		}
	}
}

// TestPostBadArguments: the caller's mistakes, not queued.
func TestPostBadArguments(t *testing.T) {
	r := newRig(t, nil)
	r.enable(t)
	for _, c := range []struct {
		sint    uint8
		typ     tlfs.MessageType
		payload []byte
	}{{16, 1, nil}, {255, 1, nil}, {2, 0, nil}, {2, 1, make([]byte, 241)}} {
		err := r.s.Post(c.sint, c.typ, 0, c.payload)
		if !errors.Is(err, ErrBadArgument) || Status(err) != tlfs.StatusInvalidParameter {
			t.Errorf("Post(%d, %#x, %d bytes) = %v", c.sint, c.typ, len(c.payload), err)
		}
	}
	if err := r.s.Post(2, tlfs.MessageTypeTimerExpired, 0, make([]byte, 240)); err != nil {
		t.Errorf("hypervisor message type refused: %v", err)
	}
}

// TestQueueBoundIsPerSINT: a guest that never EOIs or EOMs fills its own
// SINT's queue (one message in the slot, QueueDepth waiting) and then
// gets ErrQueueFull (INSUFFICIENT_BUFFERS) there; other SINTs still work.
func TestQueueBoundIsPerSINT(t *testing.T) {
	r := newRig(t, func(c *Config) { c.QueueDepth = 4 })
	r.enable(t)
	r.wr(t, tlfs.MsrSINT0+3, 0x40)
	for i := range 5 {
		mustPost(t, r.s, 2, 1, fmt.Sprint(i))
	}
	err := r.s.Post(2, 1, 0, nil)
	if !errors.Is(err, ErrQueueFull) || Status(err) != tlfs.StatusInsufficientBuffers {
		t.Fatalf("sixth post: %v", err)
	}
	mustPost(t, r.s, 3, 1, "other")
	if _, p, ok := r.ram.consume(simpGPA, 3); !ok || string(p) != "other" {
		t.Fatal("SINT 3 starved by SINT 2's queue")
	}
	if st := r.s.Stats(); st.QueueFull != 1 || st.Posted != 6 || r.s.Queued(2) != 4 {
		t.Fatalf("stats %+v, queued %d", st, r.s.Queued(2))
	}
	// A guest that emptied the slot without EOM makes room for the next Post.
	r.ram.consume(simpGPA, 2)
	mustPost(t, r.s, 2, 1, "5")
	if _, p, _ := r.ram.consume(simpGPA, 2); string(p) != "1" {
		t.Fatalf("slot %q, want message 1 (FIFO)", p)
	}
	checkConservation(t, r.s)
}

// TestEOMGivesEachSINTOneMessage: an EOM brings the next waiting message
// of every SINT whose slot is free, in order per SINT.
func TestEOMGivesEachSINTOneMessage(t *testing.T) {
	r := newRig(t, nil)
	r.enable(t)
	for sint := uint8(3); sint < 16; sint++ {
		r.wr(t, tlfs.MsrSINT0+uint32(sint), 0x40+uint64(sint))
	}
	for i := range 3 {
		for sint := uint8(2); sint < 16; sint++ {
			mustPost(t, r.s, sint, 1, fmt.Sprintf("%d/%d", sint, i))
		}
	}
	for i := range 3 {
		for sint := uint8(2); sint < 16; sint++ {
			if _, p, ok := r.ram.consume(simpGPA, sint); !ok || string(p) != fmt.Sprintf("%d/%d", sint, i) {
				t.Fatalf("SINT %d message %d: %q", sint, i, p)
			}
		}
		r.wr(t, tlfs.MsrEOM, 0)
	}
	checkConservation(t, r.s)
}

// TestEOMStormIsCheap: an EOM with nothing waiting touches no memory; with
// every SINT's slot busy and messages waiting it costs a bounded number of
// memory operations per SINT, however many EOMs come.
func TestEOMStormIsCheap(t *testing.T) {
	r := newRig(t, nil)
	r.enable(t)
	ops := r.ram.ops
	for range 1000 {
		r.wr(t, tlfs.MsrEOM, 0)
	}
	if r.ram.ops != ops {
		t.Fatalf("idle EOMs made %d memory operations", r.ram.ops-ops)
	}
	for sint := range uint8(16) {
		mustPost(t, r.s, sint, 1, "a")
		mustPost(t, r.s, sint, 1, "b")
	}
	ops = r.ram.ops
	const eoms = 1000
	for range eoms {
		r.wr(t, tlfs.MsrEOM, 0)
	}
	if per := float64(r.ram.ops-ops) / eoms / 16; per > 3 {
		t.Fatalf("%.1f memory operations per SINT per EOM", per)
	}
	if st := r.s.Stats(); st.Delivered != 16 || r.s.queuedTotal() != 16 {
		t.Fatalf("stats %+v", st)
	}
}

// TestEOIRedelivers: an EOI of a SINT's vector retries that SINT's queue
// (TLFS "SynIC Messages"), for a guest that empties the slot and EOIs without
// EOM; an EOI of another vector, or of a masked SINT's, does nothing.
func TestEOIRedelivers(t *testing.T) {
	r := newRig(t, nil)
	r.enable(t)
	mustPost(t, r.s, 2, 1, "a")
	mustPost(t, r.s, 2, 1, "b")
	r.ram.consume(simpGPA, 2)
	r.s.EOI(0x40)
	if r.s.Queued(2) != 1 {
		t.Fatal("EOI of another vector delivered")
	}
	r.wr(t, tlfs.MsrSINT0+2, tlfs.SINTMasked|sintVector)
	r.s.EOI(sintVector)
	if r.s.Queued(2) != 1 {
		t.Fatal("EOI delivered to a masked SINT")
	}
	r.wr(t, tlfs.MsrSINT0+2, sintVector)
	r.s.EOI(sintVector)
	if _, p, ok := r.ram.consume(simpGPA, 2); !ok || string(p) != "b" {
		t.Fatalf("after EOI: %q", p)
	}
}

// TestQueueSurvivesSIMPOffAndMove: queued messages stay queued while SIMP
// is off, and re-enabling it (elsewhere) delivers the next one into the
// new, cleared page.
func TestQueueSurvivesSIMPOffAndMove(t *testing.T) {
	r := newRig(t, nil)
	r.enable(t)
	mustPost(t, r.s, 2, 1, "a")
	mustPost(t, r.s, 2, 1, "b")
	r.wr(t, tlfs.MsrSIMP, simpGPA)
	r.wr(t, tlfs.MsrEOM, 0)
	if r.s.Queued(2) != 1 {
		t.Fatal("delivered while SIMP is off")
	}
	const moved = 5 * 4096
	r.wr(t, tlfs.MsrSIMP, moved|1)
	if _, p, ok := r.ram.consume(moved, 2); !ok || string(p) != "b" {
		t.Fatalf("moved page: %q", p)
	}
	checkConservation(t, r.s)
}

// TestResetDropsAndCounts: Reset empties the queues (counted) and puts the
// registers back; Post is then refused until the guest enables again.
func TestResetDropsAndCounts(t *testing.T) {
	r := newRig(t, nil)
	r.enable(t)
	for range 4 {
		mustPost(t, r.s, 2, 1, "m")
	}
	r.s.Reset()
	if st := r.s.Stats(); st.Dropped != 3 || r.s.Queued(2) != 0 {
		t.Fatalf("stats %+v", st)
	}
	checkConservation(t, r.s)
	if err := r.s.Post(2, 1, 0, nil); !errors.Is(err, ErrDisabled) {
		t.Fatalf("Post after Reset: %v", err)
	}
	if got := r.rd(t, tlfs.MsrSINT0+2); got != tlfs.SINTReset {
		t.Fatalf("SINT2 %#x after Reset", got)
	}
}

func mustPost(t testing.TB, s *SynIC, sint uint8, typ tlfs.MessageType, payload string) {
	t.Helper()
	if err := s.Post(sint, typ, 0, []byte(payload)); err != nil {
		t.Fatalf("Post(%d, %q): %v", sint, payload, err)
	}
}

// TestPageLostMidDelivery: a SIM page that stops being RAM between the
// SynIC's accesses (the root took it away) drops what waits for the SINT,
// counted, at whichever access fails; nothing panics and the books
// balance.
func TestPageLostMidDelivery(t *testing.T) {
	for _, op := range []string{"write", "cmpxchg", "or"} {
		r := newRig(t, nil)
		r.enable(t)
		mustPost(t, r.s, 2, 1, "first") // occupies the slot, so the next sets MessagePending
		r.ram.failOp = op
		err := r.s.Post(2, 1, 0, []byte("second"))
		if op == "write" || op == "cmpxchg" {
			// The slot is busy: the failing write or cmpxchg is not reached
			// yet.
			if err != nil || r.s.Queued(2) != 1 {
				t.Fatalf("%s: Post %v, queued %d", op, err, r.s.Queued(2))
			}
			r.ram.failOp = ""
			r.ram.consume(simpGPA, 2)
			r.ram.failOp = op
			r.wr(t, tlfs.MsrEOM, 0)
		} else if !errors.Is(err, ErrNoPage) {
			t.Fatalf("%s: Post %v", op, err)
		}
		if st := r.s.Stats(); st.Dropped != 1 || r.s.Queued(2) != 0 {
			t.Fatalf("%s: stats %+v, queued %d", op, st, r.s.Queued(2))
		}
		checkConservation(t, r.s)
	}
}

// TestGuestRewritesSlotAndPageGoes: after a guest wrote its own type into
// the slot during a delivery, setting MessagePending may find the page
// gone: the waiting message is dropped and counted.
func TestGuestRewritesSlotAndPageGoes(t *testing.T) {
	r := newRig(t, nil)
	r.enable(t)
	slot := uint64(simpGPA + 2*tlfs.MessageSize)
	r.ram.hook = func(op string, gpa uint64) {
		if op == "cmpxchg" && gpa == slot {
			r.ram.hook = nil
			r.ram.setU32(slot, 0x77)
			r.ram.failOp = "or"
		}
	}
	if err := r.s.Post(2, 1, 0, []byte("x")); !errors.Is(err, ErrNoPage) {
		t.Fatalf("Post: %v", err)
	}
	if st := r.s.Stats(); st.Dropped != 1 {
		t.Fatalf("stats %+v", st)
	}
}
