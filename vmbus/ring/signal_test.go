package ring

import (
	"errors"
	"testing"
)

// The producer signals only on the empty-to-non-empty transition with the
// mask clear (linux-guest-hyperv-facts.md §5.5).
func TestSignalOnlyWhenTheRingWasEmpty(t *testing.T) {
	tr := newTestRing(t, PageSize)
	buf := make([]byte, PageSize)
	write := func() {
		t.Helper()
		if err := tr.s.Write(inband(t, 0, 8), make([]byte, 8)); err != nil {
			t.Fatal(err)
		}
	}
	write()
	if tr.toReader != 1 {
		t.Fatalf("first packet into an empty ring: %d signals", tr.toReader)
	}
	write()
	write()
	if tr.toReader != 1 {
		t.Fatalf("packets behind an unread one: %d signals", tr.toReader)
	}
	// The consumer reads one of three: still not empty, no signal.
	tr.r.Read(buf)
	write()
	if tr.toReader != 1 {
		t.Fatalf("ring never emptied: %d signals", tr.toReader)
	}
	for tr.r.Skip() == nil {
	}
	write()
	if tr.toReader != 2 {
		t.Fatalf("after the consumer emptied the ring: %d signals", tr.toReader)
	}
	if tr.toWriter != 0 {
		t.Fatalf("the consumer signalled the producer %d times without pending_send_sz", tr.toWriter)
	}
}

func TestMaskedConsumerIsNotSignalled(t *testing.T) {
	tr := newTestRing(t, PageSize)
	tr.r.MaskInterrupts()
	if tr.ctl(InterruptMaskOffset) != 1 {
		t.Fatal("mask not in the control page")
	}
	if err := tr.s.Write(inband(t, 0, 8), make([]byte, 8)); err != nil {
		t.Fatal(err)
	}
	if tr.toReader != 0 {
		t.Fatal("signalled a masked consumer")
	}
	// The packet came while the mask was set: UnmaskInterrupts says so,
	// and the consumer must drain instead of waiting.
	if !tr.r.UnmaskInterrupts() {
		t.Fatal("UnmaskInterrupts missed the packet written under the mask")
	}
	if tr.ctl(InterruptMaskOffset) != 0 {
		t.Fatal("mask still set")
	}
	tr.r.Skip()
	if tr.r.UnmaskInterrupts() {
		t.Fatal("UnmaskInterrupts reports data in an empty ring")
	}
}

// The lost-wakeup race, step by step: the consumer drains under the mask,
// the producer writes after the consumer's last read but before it
// unmasks. No signal comes, and Drain must go round again.
func TestDrainRechecksAfterUnmasking(t *testing.T) {
	tr := newTestRing(t, PageSize)
	buf := make([]byte, PageSize)
	if err := tr.s.Write(inband(t, 1, 8), make([]byte, 8)); err != nil {
		t.Fatal(err)
	}
	seen := []uint64{}
	err := tr.r.Drain(buf, func(p []byte) error {
		tid := le.Uint64(p[8:])
		seen = append(seen, tid)
		if tid < 3 { // write the next while the consumer holds the mask
			if err := tr.s.Write(inband(t, tid+1, 8), make([]byte, 8)); err != nil {
				t.Fatal(err)
			}
		}
		return nil
	})
	if err != nil || len(seen) != 3 {
		t.Fatalf("%v, saw %v", err, seen)
	}
	if tr.toReader != 1 {
		t.Fatalf("%d signals: only the first packet found the consumer unmasked and the ring empty", tr.toReader)
	}
	if tr.ctl(InterruptMaskOffset) != 0 {
		t.Fatal("Drain returned with the mask set")
	}
	// And the next packet is signalled again.
	tr.s.Write(inband(t, 9, 8), make([]byte, 8))
	if tr.toReader != 2 {
		t.Fatal("no signal after Drain")
	}
}

func TestDrainStopsOnErrorsWithTheMaskClear(t *testing.T) {
	tr := newTestRing(t, PageSize)
	tr.s.Write(inband(t, 1, 200), make([]byte, 200))
	if err := tr.r.Drain(make([]byte, 16), func([]byte) error { return nil }); err != ErrShortBuffer {
		t.Fatalf("%v", err)
	}
	stop := errors.New("stop")
	if err := tr.r.Drain(make([]byte, 512), func([]byte) error { return stop }); err != stop {
		t.Fatalf("%v", err)
	}
	if tr.ctl(InterruptMaskOffset) != 0 {
		t.Fatal("mask left set")
	}
}

// pending_send_sz: the producer asks for the space one packet needs; the
// consumer signals once, when its reads make that space free, and not
// before or after.
func TestPendingSendSizeSignalsOnce(t *testing.T) {
	tr := newTestRing(t, PageSize)
	// Fill with 17 packets of 240 bytes: 4080 used, 16 free.
	for i := range 17 {
		if err := tr.s.Write(inband(t, uint64(i), payloadOfTotal(240)), make([]byte, payloadOfTotal(240))); err != nil {
			t.Fatal(err)
		}
	}
	bigN := 16 + payloadOfTotal(720) // a 720-byte packet
	if err := tr.s.Write(inband(t, 99, bigN-16), make([]byte, bigN-16)); err != ErrFull {
		t.Fatalf("write into a full ring: %v", err)
	}
	ok, err := tr.s.RequestSpace(bigN)
	if ok || err != nil {
		t.Fatalf("RequestSpace %v %v", ok, err)
	}
	if tr.ctl(PendingSendSizeOffset) != 720 {
		t.Fatalf("pending_send_sz %d", tr.ctl(PendingSendSizeOffset))
	}
	buf := make([]byte, PageSize)
	// Free space: 16, 256, 496, 736 after three reads: 736 > 720 signals.
	for i, want := range []int{0, 0, 1, 1, 1} {
		if _, err := tr.r.Read(buf); err != nil {
			t.Fatal(err)
		}
		if tr.toWriter != want {
			t.Fatalf("after read %d: %d signals, want %d", i+1, tr.toWriter, want)
		}
	}
	if err := tr.s.Write(inband(t, 99, bigN-16), make([]byte, bigN-16)); err != nil {
		t.Fatal(err)
	}
	if tr.ctl(PendingSendSizeOffset) != 0 {
		t.Fatal("the write did not clear pending_send_sz")
	}
}

// The space may come free between the failed write and RequestSpace's
// store of pending_send_sz: RequestSpace looks again and says so, instead
// of leaving the producer waiting for a signal that already passed.
func TestRequestSpaceRechecksAfterSettingPending(t *testing.T) {
	tr := newTestRing(t, PageSize)
	for tr.s.Write(inband(t, 0, payloadOfTotal(512)), make([]byte, payloadOfTotal(512))) == nil {
	}
	// The consumer reads everything (no pending_send_sz yet: no signal).
	for tr.r.Skip() == nil {
	}
	if tr.toWriter != 0 {
		t.Fatal("signal without pending_send_sz")
	}
	// The Sender's cached read index is stale; RequestSpace must reload.
	ok, err := tr.s.RequestSpace(16 + payloadOfTotal(512))
	if !ok || err != nil {
		t.Fatalf("RequestSpace %v %v with an empty ring", ok, err)
	}
	if tr.ctl(PendingSendSizeOffset) != 0 {
		t.Fatal("pending_send_sz left set")
	}
	if _, err := tr.s.RequestSpace(PageSize); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("RequestSpace for more than the ring: %v", err)
	}
}

// Without feat_pending_send_sz the consumer never signals for space
// (Linux hv_pkt_iter_close returns early).
func TestNoPendingSignalWithoutTheFeatureBit(t *testing.T) {
	tr := newTestRing(t, PageSize)
	for tr.s.Write(inband(t, 0, 100), make([]byte, 100)) == nil {
	}
	if ok, _ := tr.s.RequestSpace(116); ok {
		t.Fatal("space in a full ring")
	}
	tr.mem.StoreU32(FeatureBitsOffset, 0)
	for tr.r.Skip() == nil {
	}
	if tr.toWriter != 0 {
		t.Fatalf("%d signals with the feature off", tr.toWriter)
	}
}
