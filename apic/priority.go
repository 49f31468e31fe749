package apic

import (
	"math/bits"

	"gohv/x86"
)

// This file: accepting interrupts into IRR, priorities, handing the
// highest one to the VP (IRR -> ISR), EOI, the error register and the
// NMI/INIT/SIPI events (SDM Vol. 3A 11.8).

// Events are what a VP's run loop must act on besides maskable vectors.
type Events struct {
	// NMI: inject an NMI (vector 2) once NMIs are not blocked. Several NMIs
	// arriving before TakeEvents merge into one, as a latched NMI does.
	NMI bool
	// INIT: the LAPIC has already done its INIT reset (SDM Vol. 3A
	// 11.4.7.3); the VP puts its registers in the INIT state (SDM Vol. 3A
	// 9.1.1). WaitForSIPI says what comes next: true for an application
	// processor, which waits, running nothing, for a SIPI; false for the
	// BSP (IA32_APIC_BASE.BSP), which starts at the reset vector.
	INIT        bool
	WaitForSIPI bool
	// SIPI: start in real mode at CS.selector = SIPIVector<<8, CS.base =
	// SIPIVector<<12, IP = 0 (SDM Vol. 3A 9.4.4). A LAPIC takes a SIPI
	// only in wait-for-SIPI and only once per INIT; when INIT and SIPI
	// come together, act on INIT first.
	SIPI       bool
	SIPIVector uint8
}

// TakeEvents returns and clears the pending events. VP thread; does not
// allocate.
func (l *LAPIC) TakeEvents() Events {
	l.mu.Lock()
	ev := Events{NMI: l.nmi, INIT: l.init, SIPI: l.sipi, SIPIVector: l.sipiVector}
	if l.init {
		ev.WaitForSIPI = l.base&x86.APICBaseBSP == 0
	}
	l.nmi, l.init, l.sipi, l.sipiVector = false, false, false, 0
	l.noteWorkLocked()
	l.mu.Unlock()
	return ev
}

// PendingVector returns the vector the VP should take next, if any: the
// highest vector in IRR whose priority class (bits 7:4) is above PPR's
// (SDM Vol. 3A 11.8.3.1, 11.8.4). The caller injects it, via Ack, when
// RFLAGS.IF, the interrupt shadow and its own pending events allow. VP
// thread; does not allocate.
func (l *LAPIC) PendingVector() (uint8, bool) {
	l.mu.Lock()
	v, ok := l.pendingLocked()
	l.mu.Unlock()
	return v, ok
}

// Ack is the processor's interrupt acknowledge: it moves the vector
// PendingVector reports from IRR to ISR and returns it (ok true) for the
// caller to inject as an external interrupt. If nothing is deliverable
// (the VP took an INIT meanwhile, or never asked PendingVector) it
// returns the spurious vector from SVR with ok false: the hardware
// delivers that vector without setting ISR and expects no EOI (SDM Vol.
// 3A 11.9); the caller may inject it or nothing. An auto-EOI vector
// (SetAutoEOI) leaves IRR without entering ISR. VP thread; does not
// allocate.
func (l *LAPIC) Ack() (uint8, bool) {
	l.mu.Lock()
	v, ok := l.pendingLocked()
	if !ok {
		v = uint8(l.svr)
		l.mu.Unlock()
		l.stats.spurious.Add(1)
		return v, false
	}
	clearBit(&l.irr, v)
	if !l.autoEOILocked(v) {
		setBit(&l.isr, v)
	}
	l.noteWorkLocked()
	l.mu.Unlock()
	l.stats.acked.Add(1)
	return v, true
}

// TPRThreshold is the priority class of the highest vector in IRR when the
// task priority alone holds it back (its class is not above TPR's but is
// above the highest in-service class), else 0: lowering CR8 below it makes
// the vector deliverable, so a hypervisor that lets the guest write CR8
// without exits asks the hardware to exit there. VP thread; does not
// allocate.
func (l *LAPIC) TPRThreshold() uint8 {
	l.mu.Lock()
	defer l.mu.Unlock()
	v := highest(&l.irr)
	if v < 0 {
		return 0
	}
	class := uint32(v) >> 4
	isrClass := uint32(max(highest(&l.isr), 0)) >> 4
	if class > isrClass && class <= l.tpr>>4 {
		return uint8(class)
	}
	return 0
}

// TPR returns the task-priority register; CR8 is TPR >> 4 (SDM Vol. 3A
// 11.8.6). VP thread.
func (l *LAPIC) TPR() uint8 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return uint8(l.tpr)
}

// SetTPR writes the task-priority register, as the TPR register or a MOV
// to CR8 (value CR8<<4) does. VP thread; does not allocate.
func (l *LAPIC) SetTPR(v uint8) {
	l.mu.Lock()
	l.tpr = uint32(v)
	l.mu.Unlock()
}

func (l *LAPIC) pendingLocked() (uint8, bool) {
	v := highest(&l.irr)
	if v < 0 || uint32(v)&0xf0 <= l.pprLocked()&0xf0 {
		return 0, false
	}
	return uint8(v), true
}

// pprLocked is the processor-priority register (SDM Vol. 3A 11.8.3.1):
// TPR if its class is at least the highest in-service vector's class,
// else that class with subclass 0.
func (l *LAPIC) pprLocked() uint32 {
	isrv := uint32(max(highest(&l.isr), 0))
	if l.tpr>>4 >= isrv>>4 {
		return l.tpr
	}
	return isrv & 0xf0
}

// aprLocked is the arbitration-priority register as SDM Vol. 3A 11.6.2.4
// defines it. Nothing here arbitrates with it (lowest-priority delivery
// picks the lowest APIC ID); xAPIC software can read it.
func (l *LAPIC) aprLocked() uint32 {
	tpr := l.tpr >> 4
	isrv := uint32(max(highest(&l.isr), 0)) >> 4
	irrv := uint32(max(highest(&l.irr), 0)) >> 4
	if tpr >= irrv && tpr > isrv {
		return l.tpr
	}
	return max(tpr&isrv, irrv) << 4
}

// acceptFixedLocked takes a fixed (or lowest-priority) vector into IRR,
// setting its TMR bit for a level-triggered one and clearing it for an
// edge (SDM Vol. 3A 11.8.4). A vector already in IRR merges. Vectors
// 0-15 are refused with the receive-illegal-vector error. It reports
// whether the VP now has a deliverable vector.
func (l *LAPIC) acceptFixedLocked(v uint8, level bool) bool {
	if v < firstLegalVector {
		return l.recordErrorLocked(ESR_RECV_ILLEGAL_VEC)
	}
	setBit(&l.irr, v)
	l.work.Store(true)
	if level {
		setBit(&l.tmr, v)
	} else {
		clearBit(&l.tmr, v)
	}
	l.stats.accepted.Add(1)
	_, ok := l.pendingLocked()
	return ok
}

// eoiLocked retires the highest in-service vector (SDM Vol. 3A 11.8.5);
// an EOI with nothing in service does nothing. A level-triggered vector
// clears the remote IRR of a LINT entry that delivered it, and is
// broadcast to the EOI listener unless SVR suppresses EOI broadcasts.
func (l *LAPIC) eoiLocked() post {
	var p post
	h := highest(&l.isr)
	if h < 0 {
		return p
	}
	v := uint8(h)
	clearBit(&l.isr, v)
	l.stats.eois.Add(1)
	if !testBit(&l.tmr, v) {
		return p
	}
	for pin := range l.lint {
		i := lvtLINT0 + pin
		if e := l.lvt[i]; e&(1<<LVT_REMOTE_IRR) != 0 && uint8(e) == v {
			l.lvt[i] &^= 1 << LVT_REMOTE_IRR
			p.kick = l.lintLevelLocked(pin) || p.kick
		}
	}
	if !(l.eoiSuppressOK && l.svr&(1<<SVR_EOI_SUPPRESS) != 0) {
		p.eoi, p.eoiVector = true, v
	}
	return p
}

// recordErrorLocked notes an error in ESR (SDM Vol. 3A 11.5.3). An error
// not already noted since the last ESR write raises the error LVT's
// interrupt; a repeat raises none, so a guest looping on an error costs
// at most one error interrupt per ESR write. If the error entry's own
// vector is illegal, ESR gets the receive-illegal bit without a second
// error interrupt. It reports whether a vector became deliverable.
func (l *LAPIC) recordErrorLocked(bit uint) bool {
	m := uint32(1) << bit
	if l.esrNext&m != 0 {
		return false
	}
	l.esrNext |= m
	l.stats.errorsRecorded.Add(1)
	e := l.lvt[lvtError]
	if e&lvtMasked != 0 {
		return false
	}
	if uint8(e) < firstLegalVector {
		l.esrNext |= 1 << ESR_RECV_ILLEGAL_VEC
		return false
	}
	return l.acceptFixedLocked(uint8(e), false)
}

// deliverLVTLocked raises the interrupt LVT entry i describes (SDM Vol.
// 3A 11.5.1). Masked: nothing. Fixed: the vector into IRR (the timer,
// error, CMCI, thermal and performance entries are always edge, LINT0 as
// its trigger bit says, LINT1 always edge). NMI: an NMI event. INIT (LINT
// only): an INIT. SMI, ExtINT (no 8259 behind LINT0 in this model),
// INIT on other entries and reserved modes: dropped and counted.
func (l *LAPIC) deliverLVTLocked(i int) bool {
	e := l.lvt[i]
	if e&lvtMasked != 0 {
		return false
	}
	mode := DeliveryMode(e >> LVT_DLV & 7)
	if i == lvtTimer || i == lvtError {
		mode = DeliveryFixed
	}
	switch {
	case mode == DeliveryFixed:
		return l.acceptFixedLocked(uint8(e), l.lintLevelTriggered(i))
	case mode == DeliveryNMI:
		l.nmi = true
		l.work.Store(true)
		return true
	case mode == DeliveryINIT && (i == lvtLINT0 || i == lvtLINT1):
		l.acceptINITLocked()
		return true
	}
	l.stats.dropped.Add(1)
	return false
}

// lintLevelTriggered reports whether LVT entry i is a level-triggered
// fixed LINT0 entry: the only level-triggered local source (SDM Vol. 3A
// 11.5.1: LINT1 is always edge-sensitive).
func (l *LAPIC) lintLevelTriggered(i int) bool {
	e := l.lvt[i]
	return i == lvtLINT0 && e&(1<<LVT_TRIGGER) != 0 && DeliveryMode(e>>LVT_DLV&7) == DeliveryFixed
}

// SetLINT drives local interrupt pin LINT0 (pin 0) or LINT1 (pin 1):
// asserted is the pin's logical state (polarity is the caller's concern;
// the LVT polarity bit is stored only). An edge-triggered entry delivers
// on each assertion; a level-triggered LINT0 entry delivers while the
// pin is asserted and its remote IRR is clear, sets remote IRR, and
// delivers again after the EOI if the pin is still asserted. Other pins
// are ignored. Any goroutine.
func (l *LAPIC) SetLINT(pin int, asserted bool) {
	if pin != 0 && pin != 1 {
		return
	}
	l.mu.Lock()
	kick := false
	if l.mode() != ModeDisabled {
		was := l.lint[pin]
		l.lint[pin] = asserted
		i := lvtLINT0 + pin
		if l.lintLevelTriggered(i) {
			kick = l.lintLevelLocked(pin)
		} else if asserted && !was {
			kick = l.deliverLVTLocked(i)
		}
	}
	l.mu.Unlock()
	if kick {
		l.sink.Kick()
	}
}

// lintLevelLocked delivers a level-triggered LINT entry's vector if the
// pin is asserted, the entry unmasked and its remote IRR clear.
func (l *LAPIC) lintLevelLocked(pin int) bool {
	i := lvtLINT0 + pin
	e := l.lvt[i]
	if !l.lint[pin] || !l.lintLevelTriggered(i) || e&(lvtMasked|1<<LVT_REMOTE_IRR) != 0 {
		return false
	}
	if uint8(e) >= firstLegalVector {
		l.lvt[i] |= 1 << LVT_REMOTE_IRR
	}
	return l.deliverLVTLocked(i)
}

// acceptINITLocked takes an INIT: the LAPIC's INIT reset, then wait for
// SIPI unless this is the BSP. A SIPI that came before the INIT is void.
func (l *LAPIC) acceptINITLocked() {
	l.resetLocked(false)
	l.init = true
	l.work.Store(true)
	l.waitSIPI = l.base&x86.APICBaseBSP == 0
}

// acceptSIPILocked takes a start-up IPI if the LAPIC waits for one (SDM
// Vol. 3A 9.4.4: a SIPI outside wait-for-SIPI is ignored, so the second
// SIPI of the INIT-SIPI-SIPI sequence is).
func (l *LAPIC) acceptSIPILocked(v uint8) bool {
	if !l.waitSIPI {
		l.stats.dropped.Add(1)
		return false
	}
	l.waitSIPI = false
	l.sipi, l.sipiVector = true, v
	l.work.Store(true)
	return true
}

// 256-bit vector sets (IRR, ISR, TMR).

func setBit(s *[4]uint64, v uint8)       { s[v>>6] |= 1 << (v & 63) }
func clearBit(s *[4]uint64, v uint8)     { s[v>>6] &^= 1 << (v & 63) }
func testBit(s *[4]uint64, v uint8) bool { return s[v>>6]&(1<<(v&63)) != 0 }

// highest returns the highest vector in s, or -1 if s is empty.
func highest(s *[4]uint64) int {
	for i := 3; i >= 0; i-- {
		if w := s[i]; w != 0 {
			return i*64 + 63 - bits.LeadingZeros64(w)
		}
	}
	return -1
}
