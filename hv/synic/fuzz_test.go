package synic

import (
	"encoding/binary"
	"errors"
	"testing"

	"gohv/hv/tlfs"
)

// FuzzSynIC drives one SynIC with a byte string read as operations: MSR
// writes and reads (raw values and well-formed ones), root posts and
// signals, EOMs, EOIs, the guest consuming slots as Linux does, the guest
// scribbling on its SIM page, clock advances with and without host
// callbacks, and Reset. After every operation it checks the package's
// invariants:
//
//   - nothing panics;
//   - Posted == Delivered + Dropped + queued, and no queue is above its
//     depth;
//   - the Interrupter only ever sees vectors >= 16 that an unmasked,
//     non-polling SINT or a direct-mode timer named, before or after the
//     operation;
//   - the auto-EOI marks are exactly those the SINT registers call for;
//   - no unmasked SINT reads back a vector below 16;
//   - the guest reads each posted message at most once, in posting order
//     per SINT, and never a timer message before its expiration.
//
// At the end the guest enables everything and drains: every queue and
// held timer expiration must empty within a bounded number of EOMs.
func FuzzSynIC(f *testing.F) {
	for _, seed := range fuzzSeeds() {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 2048 {
			return
		}
		newFuzzRun(t, data).run()
	})
}

// Operations. Each takes its arguments from the bytes after it (zeros
// once the input ends).
const (
	fzWriteMSR = iota
	fzReadMSR
	fzPost
	fzSignal
	fzEOM
	fzEOI
	fzConsume
	fzScribble
	fzAdvance
	fzJump
	fzReset
	fzOps
)

// fuzzMSRs are the MSRs the operations pick from: the SynIC's and two
// neighbours it must refuse.
var fuzzMSRs = func() []uint32 {
	m := []uint32{tlfs.MsrSControl, tlfs.MsrSVersion, tlfs.MsrSIEFP, tlfs.MsrSIMP, tlfs.MsrEOM, 0x4000_0085, 0x4000_00b8}
	for i := range uint32(tlfs.SINTCount) {
		m = append(m, tlfs.MsrSINT0+i)
	}
	for msr := uint32(tlfs.MsrSTimer0Config); msr <= tlfs.MsrSTimer3Count; msr++ {
		m = append(m, msr)
	}
	return m
}()

const (
	fuzzType  tlfs.MessageType = 0x1234
	fuzzMagic                  = 0x464e5953 // "SYNF"
)

// fuzzIntr checks each raised vector against what the registers allow.
type fuzzIntr struct {
	raised  []uint8
	autoEOI [4]uint64
}

func (f *fuzzIntr) Interrupt(v uint8) { f.raised = append(f.raised, v) }
func (f *fuzzIntr) SetAutoEOI(v uint8, on bool) {
	if on {
		f.autoEOI[v>>6] |= 1 << (v & 63)
	} else {
		f.autoEOI[v>>6] &^= 1 << (v & 63)
	}
}

type fuzzRun struct {
	t     *testing.T
	data  []byte
	pos   int
	r     *rig
	intr  *fuzzIntr
	depth int

	seq      uint64           // last sequence number posted
	accepted map[uint64]uint8 // seq -> SINT, for Posts that returned nil or ErrNoPage
	read     map[uint64]bool  // seqs the guest read
	lastRead [tlfs.SINTCount]uint64
}

func newFuzzRun(t *testing.T, data []byte) *fuzzRun {
	fr := &fuzzRun{t: t, data: data, intr: &fuzzIntr{}, accepted: map[uint64]uint8{}, read: map[uint64]bool{}}
	fr.depth = 1 + int(fr.byte()%4)
	fr.r = newRig(t, func(c *Config) {
		c.Interrupter = fr.intr
		c.QueueDepth = fr.depth
		c.DirectTimers = fr.depth != 4
	})
	return fr
}

func (fr *fuzzRun) byte() byte {
	if fr.pos >= len(fr.data) {
		fr.pos++
		return 0
	}
	b := fr.data[fr.pos]
	fr.pos++
	return b
}

func (fr *fuzzRun) u16() uint16 { return uint16(fr.byte()) | uint16(fr.byte())<<8 }
func (fr *fuzzRun) u64() uint64 {
	var v uint64
	for i := range 8 {
		v |= uint64(fr.byte()) << (8 * i)
	}
	return v
}

func (fr *fuzzRun) run() {
	s := fr.r.s
	for fr.pos < len(fr.data) {
		before := fr.allowedVectors()
		fr.intr.raised = fr.intr.raised[:0]
		switch op := fr.byte() % fzOps; op {
		case fzWriteMSR:
			msr := fuzzMSRs[int(fr.byte())%len(fuzzMSRs)]
			err := s.WriteMSR(msr, fr.msrValue(msr))
			if err != nil && !errors.Is(err, ErrGP) {
				fr.t.Fatalf("WriteMSR(%#x): %v does not wrap ErrGP", msr, err)
			}
		case fzReadMSR:
			msr := fuzzMSRs[int(fr.byte())%len(fuzzMSRs)]
			if _, err := s.ReadMSR(msr); (err == nil) != HandlesMSR(msr) {
				fr.t.Fatalf("ReadMSR(%#x): %v", msr, err)
			}
		case fzPost:
			fr.post()
		case fzSignal:
			sint, flag := fr.byte()%17, uint32(fr.u16()%2100)
			if _, err := s.Signal(sint, flag); err != nil && !errors.Is(err, ErrDisabled) && !errors.Is(err, ErrMasked) &&
				!errors.Is(err, ErrNoPage) && !(errors.Is(err, ErrBadArgument) && (sint > 15 || flag > 2047)) {
				fr.t.Fatalf("Signal(%d, %d): %v", sint, flag, err)
			}
		case fzEOM:
			fr.r.wr(fr.t, tlfs.MsrEOM, 0)
		case fzEOI:
			s.EOI(fr.byte())
		case fzConsume:
			b := fr.byte()
			fr.consume(b%16, b&0x10 != 0)
		case fzScribble:
			fr.scribble()
		case fzAdvance:
			fr.r.clock.Advance(uint64(fr.u16())) // at most 66 callbacks per timer: bounded run time
		case fzJump:
			fr.r.clock.Jump(uint64(fr.u16()) << (fr.byte() % 24))
		case fzReset:
			s.Reset()
		}
		fr.check(before)
	}
	fr.drain()
}

// msrValue is a raw value, or (most of the time) a well-formed one for msr.
func (fr *fuzzRun) msrValue(msr uint32) uint64 {
	mode, raw := fr.byte(), fr.u64()
	if mode%8 == 0 {
		return raw
	}
	switch {
	case msr == tlfs.MsrSIMP || msr == tlfs.MsrSIEFP:
		// Pages 0-19: RAM, the MMIO hole at 8, and beyond RAM from 16.
		v := (raw >> 12 % 20) << 12
		if mode&0x10 != 0 {
			v |= raw & tlfs.OverlayReservedP
		}
		if mode&2 != 0 {
			v |= tlfs.OverlayEnable
		}
		return v
	case msr == tlfs.MsrEOM:
		return 0
	case msr >= tlfs.MsrSINT0 && msr <= tlfs.MsrSINT15:
		return raw & (tlfs.SINTVectorMask | tlfs.SINTMasked | tlfs.SINTAutoEOI | tlfs.SINTPolling)
	case msr >= tlfs.MsrSTimer0Config && (msr-tlfs.MsrSTimer0Config)%2 == 0:
		v := raw &^ tlfs.STimerReserved
		if v&tlfs.STimerDirectMode != 0 && (v&tlfs.STimerVectorMask)>>tlfs.STimerVectorShift < 16 {
			v |= 0x40 << tlfs.STimerVectorShift
		}
		return v
	case msr >= tlfs.MsrSTimer0Count:
		switch mode % 4 {
		case 1:
			return fr.r.clock.ReferenceTime() + raw%50_000 // one-shot soon
		case 2:
			return 1 + raw%30_000 // a period
		case 3:
			return 0
		}
	}
	return raw
}

// post sends a numbered message from the root.
func (fr *fuzzRun) post() {
	sint, size := fr.byte()%17, 14+int(fr.byte())%227
	var p [tlfs.MessagePayloadSize]byte
	fr.seq++
	binary.LittleEndian.PutUint32(p[0:], fuzzMagic)
	binary.LittleEndian.PutUint64(p[4:], fr.seq)
	p[12], p[13] = sint, byte(size)
	err := fr.r.s.Post(sint, fuzzType, fr.seq, p[:size])
	switch {
	case err == nil, errors.Is(err, ErrNoPage):
		if sint > 15 {
			fr.t.Fatalf("Post to SINT %d accepted", sint)
		}
		fr.accepted[fr.seq] = sint
	case errors.Is(err, ErrQueueFull):
		if fr.r.s.Queued(sint) != fr.depth {
			fr.t.Fatalf("ErrQueueFull with %d of %d queued", fr.r.s.Queued(sint), fr.depth)
		}
	case errors.Is(err, ErrDisabled), errors.Is(err, ErrBadArgument) && sint > 15:
	default:
		fr.t.Fatalf("Post(%d): %v", sint, err)
	}
}

// simp is the SIM page the guest reads, if it is enabled and in RAM.
func (fr *fuzzRun) simp() (uint64, bool) {
	v, _ := fr.r.s.ReadMSR(tlfs.MsrSIMP)
	base := pageBase(v)
	return base, v&tlfs.OverlayEnable != 0 && fr.r.ram.check(base, 4096) == nil
}

// consume empties SINT n's slot as Linux does and checks what it held;
// with eom it writes EOM when MessagePending was set.
func (fr *fuzzRun) consume(n uint8, eom bool) {
	base, ok := fr.simp()
	if !ok {
		return
	}
	slot := base + uint64(n)*tlfs.MessageSize
	h, p, err := tlfs.ParseMessage(fr.r.ram.bytes(slot, tlfs.MessageSize))
	if h.Type == 0 {
		return
	}
	switch {
	case err != nil: // a size the guest scribbled: not a message of ours
	case h.Type == fuzzType && len(p) >= 14 && binary.LittleEndian.Uint32(p) == fuzzMagic:
		seq := binary.LittleEndian.Uint64(p[4:])
		if sint, ok := fr.accepted[seq]; !ok || sint != n || fr.read[seq] || seq <= fr.lastRead[n] || h.Origin != seq {
			fr.t.Fatalf("SINT %d: message %d (accepted to %d: %v, read before %v, last read %d, origin %d)",
				n, seq, sint, ok, fr.read[seq], fr.lastRead[n], h.Origin)
		}
		fr.read[seq], fr.lastRead[n] = true, seq
		fr.r.ram.setU32(slot+tlfs.MessageHeaderSize, 0) // scrub the magic: a stale slot is no message
	case h.Type == tlfs.MessageTypeTimerExpired && h.PayloadSize == tlfs.TimerMessagePayloadSize:
		m, _ := tlfs.ParseTimerMessagePayload(p)
		if m.ExpirationTime > m.DeliveryTime || m.DeliveryTime > fr.r.clock.ReferenceTime() || m.TimerIndex > 3 {
			fr.t.Fatalf("timer message %+v at %d", m, fr.r.clock.ReferenceTime())
		}
		fr.r.ram.setU32(slot+tlfs.MessageHeaderSize+8, 0)
		fr.r.ram.setU32(slot+tlfs.MessageHeaderSize+12, 0)
		fr.r.ram.setU32(slot+tlfs.MessageHeaderSize+16, 1)
	}
	fr.r.ram.CmpxchgU32(slot, uint32(h.Type), 0)
	if eom && fr.r.ram.bytes(slot+tlfs.MessageFlagsOffset, 1)[0]&tlfs.MessagePendingFlag != 0 {
		fr.r.wr(fr.t, tlfs.MsrEOM, 0)
	}
}

// scribble is a hostile guest writing one of the two header words the
// SynIC reads of a slot: the type (a type into an empty slot, 0 into a
// full one) or size and flags (MessagePending set or cleared behind the
// SynIC's back). Payload and origin are the guest's to ruin and would
// only blind the checks.
func (fr *fuzzRun) scribble() {
	b := fr.byte()
	off, v := uint64(b%16)*tlfs.MessageSize+uint64(b>>4&1)*4, uint32(fr.u16())|uint32(fr.byte())<<24
	if base, ok := fr.simp(); ok {
		fr.r.ram.setU32(base+off, v)
	}
}

// allowedVectors are the vectors the registers let the SynIC raise.
func (fr *fuzzRun) allowedVectors() (set [4]uint64) {
	s := fr.r.s
	for i := range uint32(tlfs.SINTCount) {
		v, _ := s.ReadMSR(tlfs.MsrSINT0 + i)
		if v&(tlfs.SINTMasked|tlfs.SINTPolling) == 0 {
			set[v&0xff>>6] |= 1 << (v & 63)
		}
	}
	for i := range uint32(tlfs.STimerCount) {
		c, _ := s.ReadMSR(tlfs.MsrSTimer0Config + 2*i)
		if c&tlfs.STimerDirectMode != 0 {
			vec := (c & tlfs.STimerVectorMask) >> tlfs.STimerVectorShift
			set[vec>>6] |= 1 << (vec & 63)
		}
	}
	return set
}

func (fr *fuzzRun) check(before [4]uint64) {
	t, s := fr.t, fr.r.s
	after := fr.allowedVectors()
	for _, v := range fr.intr.raised {
		if v < 16 || (before[v>>6]|after[v>>6])&(1<<(v&63)) == 0 {
			t.Fatalf("raised vector %#x that no SINT or direct timer names", v)
		}
	}
	var want [4]uint64
	for i := range uint32(tlfs.SINTCount) {
		v, _ := s.ReadMSR(tlfs.MsrSINT0 + i)
		if v&tlfs.SINTMasked == 0 && v&0xff < 16 {
			t.Fatalf("SINT%d %#x: unmasked with vector below 16", i, v)
		}
		if v&(tlfs.SINTMasked|tlfs.SINTPolling|tlfs.SINTAutoEOI) == tlfs.SINTAutoEOI {
			want[v&0xff>>6] |= 1 << (v & 63)
		}
	}
	if want != fr.intr.autoEOI {
		t.Fatalf("auto-EOI marks %x, SINTs call for %x", fr.intr.autoEOI, want)
	}
	for n := range uint8(tlfs.SINTCount) {
		if q := s.Queued(n); q > fr.depth {
			t.Fatalf("SINT %d queues %d of %d", n, q, fr.depth)
		}
	}
	checkConservation(t, s)
	if st := s.Stats(); st.Posted != uint64(len(fr.accepted)) || uint64(len(fr.read)) > st.Delivered {
		t.Fatalf("posted %d, accepted %d; read %d, delivered %d", st.Posted, len(fr.accepted), len(fr.read), st.Delivered)
	}
}

// drain enables the SynIC on a page in RAM and consumes until nothing
// waits: a message or timer expiration that never reaches its slot is a
// stuck SINT.
func (fr *fuzzRun) drain() {
	s := fr.r.s
	if _, ok := fr.simp(); !ok {
		fr.r.wr(fr.t, tlfs.MsrSIMP, simpGPA|1)
	}
	fr.r.wr(fr.t, tlfs.MsrSControl, 1)
	for range fr.depth + tlfs.STimerCount + 2 {
		for n := range uint8(tlfs.SINTCount) {
			fr.consume(n, false)
		}
		fr.r.wr(fr.t, tlfs.MsrEOM, 0)
		fr.check(fr.allowedVectors())
	}
	if w := s.waiting.Load(); w != 0 || s.queuedTotal() != 0 {
		fr.t.Fatalf("after draining, SINTs %#x still wait (%d queued)", w, s.queuedTotal())
	}
}

// fuzzSeeds are inputs that walk the common paths: Linux's SynIC
// bring-up, messages through a busy slot, timers in both modes, and
// hostile writes.
func fuzzSeeds() [][]byte {
	wr := func(msr uint32, v uint64) []byte {
		i := 0
		for fuzzMSRs[i] != msr {
			i++
		}
		b := []byte{fzWriteMSR, byte(i), 0} // mode 0: raw value
		return binary.LittleEndian.AppendUint64(b, v)
	}
	cat := func(parts ...[]byte) []byte {
		var b []byte
		for _, p := range parts {
			b = append(b, p...)
		}
		return b
	}
	bringUp := cat([]byte{1}, // queue depth 2
		wr(tlfs.MsrSIMP, simpGPA|1), wr(tlfs.MsrSIEFP, siefGPA|1), wr(tlfs.MsrSINT0+2, 0xf3), wr(tlfs.MsrSControl, 1))
	postN := func(n int) []byte {
		var b []byte
		for range n {
			b = append(b, fzPost, 2, 20)
		}
		return b
	}
	return [][]byte{
		bringUp,
		cat(bringUp, postN(4), []byte{fzConsume, 0x12, fzConsume, 0x12, fzConsume, 0x12, fzSignal, 2, 5, 0, fzEOI, 0xf3}),
		cat(bringUp, wr(tlfs.MsrSTimer0Config, 0x20008), wr(tlfs.MsrSTimer0Count, 1_000_100), postN(2),
			[]byte{fzAdvance, 0xff, 0, fzConsume, 0x12, fzConsume, 0x12}),
		cat(bringUp, wr(tlfs.MsrSTimer0Count, 1), wr(tlfs.MsrSTimer0Config, 0x1ed3), []byte{fzAdvance, 0xff, 0xff, fzJump, 0xff, 0xff, 8, fzAdvance, 0, 0}),
		cat(bringUp, wr(tlfs.MsrSTimer0Config+2, 0x20007), wr(tlfs.MsrSTimer0Count+2, 3000), postN(3),
			[]byte{fzAdvance, 0x30, 0x75, fzScribble, 0x12, 1, 0, 0, fzConsume, 0x12, fzReset}),
		cat(bringUp, wr(tlfs.MsrSIMP, holeGPA|1), postN(2), wr(tlfs.MsrSINT0+3, 0x2000f), wr(tlfs.MsrSVersion, 0), wr(tlfs.MsrEOM, 3)),
	}
}
