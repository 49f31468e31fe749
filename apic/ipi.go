package apic

import "fmt"

// This file: interrupt messages between APICs (SDM Vol. 3A 11.6): the
// ICR, destinations, and the Bus that finds a message's targets.

// DeliveryMode is a message's delivery mode (SDM Vol. 3A 11.6.1), the same
// three bits in the ICR, LVT entries, I/O APIC redirection entries and MSI
// data.
type DeliveryMode uint8

const (
	DeliveryFixed          DeliveryMode = 0b000
	DeliveryLowestPriority DeliveryMode = 0b001
	DeliverySMI            DeliveryMode = 0b010
	DeliveryNMI            DeliveryMode = 0b100
	DeliveryINIT           DeliveryMode = 0b101
	DeliveryStartUp        DeliveryMode = 0b110
	DeliveryExtINT         DeliveryMode = 0b111
)

func (m DeliveryMode) String() string {
	switch m {
	case DeliveryFixed:
		return "fixed"
	case DeliveryLowestPriority:
		return "lowest-priority"
	case DeliverySMI:
		return "SMI"
	case DeliveryNMI:
		return "NMI"
	case DeliveryINIT:
		return "INIT"
	case DeliveryStartUp:
		return "start-up"
	case DeliveryExtINT:
		return "ExtINT"
	}
	return fmt.Sprintf("DeliveryMode(%#b)", uint8(m))
}

// Message is one interrupt message on the partition's APIC bus: an IPI,
// an I/O APIC redirection, or a message-signalled interrupt.
type Message struct {
	Vector  uint8 // fixed and lowest-priority: the vector; start-up: the page
	Mode    DeliveryMode
	Logical bool   // destination mode: logical (LDR match) instead of physical (ID)
	Dest    uint32 // destination: 8 bits, or 32 when X2APIC
	X2APIC  bool   // Dest is in x2APIC format (broadcast 0xffffffff, not 0xff)
	Level   bool   // level-triggered: TMR set, EOI reported to the listener
}

// Bus lists the partition's local APICs: the candidates for every
// message.
type Bus interface {
	// LAPICs returns the partition's LAPICs; nil entries (VPs not yet
	// made) are skipped. Callers only read the slice, from any goroutine:
	// it must not change while messages may be in flight. Must not
	// allocate.
	LAPICs() []*LAPIC
}

// StaticBus is a Bus whose LAPICs are all added before the partition
// starts.
type StaticBus struct{ list []*LAPIC }

// Add appends a LAPIC. Not safe concurrently with message delivery: call
// it while building the partition.
func (b *StaticBus) Add(l *LAPIC) { b.list = append(b.list, l) }

// LAPICs implements Bus.
func (b *StaticBus) LAPICs() []*LAPIC { return b.list }

// Deliver sends m to the LAPICs of b that it addresses and reports how
// many matched the destination and how many of those took the message
// (a software-disabled LAPIC refuses fixed interrupts, an illegal vector
// is refused with an ESR error, a SIPI outside wait-for-SIPI is ignored).
// Lowest-priority messages go to the matching, software-enabled LAPIC
// with the lowest APIC ID, not to the lowest-priority one the SDM's
// arbitration would pick (which the SDM leaves model-specific anyway,
// 11.6.2.4). Any goroutine, holding no LAPIC mutex; does not allocate.
func Deliver(b Bus, m Message) (matched, accepted int) {
	return deliver(b, m, nil, 0)
}

// deliver sends m to the targets the shorthand sh (ICR bits 19:18) picks
// relative to the sender self, or with no shorthand to those m addresses.
func deliver(b Bus, m Message, self *LAPIC, sh uint32) (matched, accepted int) {
	if sh == ICR_DST_SELF {
		mt, ok := self.receive(m, false)
		return b2i(mt), b2i(ok)
	}
	list := b.LAPICs()
	if m.Mode == DeliveryLowestPriority {
		// The software-enabled match with the lowest ID; failing that the
		// lowest-ID match, which refuses the message and counts the drop.
		var best *LAPIC
		var bestID uint32
		bestEn := false
		for _, t := range list {
			if t == nil || (sh == ICR_DST_REST && t == self) {
				continue
			}
			t.mu.Lock()
			ok := t.mode() != ModeDisabled && (sh != 0 || t.matchesLocked(m))
			en := t.softwareEnabled()
			id := t.id
			t.mu.Unlock()
			if !ok {
				continue
			}
			matched++
			if best == nil || (en && !bestEn) || (en == bestEn && id < bestID) {
				best, bestID, bestEn = t, id, en
			}
		}
		if best != nil {
			_, ok := best.receive(m, false)
			accepted = b2i(ok)
		}
		return matched, accepted
	}
	for _, t := range list {
		if t == nil || (sh == ICR_DST_REST && t == self) {
			continue
		}
		mt, ok := t.receive(m, sh == 0)
		matched += b2i(mt)
		accepted += b2i(ok)
	}
	return matched, accepted
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// receive offers m to l: matched says whether l is enabled and (with
// match) m's destination names it; accepted whether l took the message.
func (l *LAPIC) receive(m Message, match bool) (matched, accepted bool) {
	l.mu.Lock()
	if l.mode() == ModeDisabled || (match && !l.matchesLocked(m)) {
		l.mu.Unlock()
		return false, false
	}
	ok, kick := l.acceptMessageLocked(m)
	l.mu.Unlock()
	if kick {
		l.sink.Kick()
	}
	return true, ok
}

// acceptMessageLocked takes a message addressed to l (SDM Vol. 3A 11.6.1,
// 11.4.7.2: a software-disabled LAPIC still takes NMI, INIT and SIPI).
func (l *LAPIC) acceptMessageLocked(m Message) (ok, kick bool) {
	switch m.Mode {
	case DeliveryFixed, DeliveryLowestPriority:
		if !l.softwareEnabled() {
			l.stats.dropped.Add(1)
			return false, false
		}
		if m.Vector < firstLegalVector {
			return false, l.recordErrorLocked(ESR_RECV_ILLEGAL_VEC)
		}
		return true, l.acceptFixedLocked(m.Vector, m.Level)
	case DeliveryNMI:
		l.nmi = true
		l.work.Store(true)
		return true, true
	case DeliveryINIT:
		l.acceptINITLocked()
		return true, true
	case DeliveryStartUp:
		ok := l.acceptSIPILocked(m.Vector)
		return ok, ok
	}
	// SMI (no SMM in the model), ExtINT (no 8259), reserved modes.
	l.stats.dropped.Add(1)
	return false, false
}

// matchesLocked reports whether m's destination names l (SDM Vol. 3A
// 11.6.2). The target's mode decides how a destination is read: an xAPIC
// compares 8 bits (an x2APIC-format destination above 0xff names no
// xAPIC), an x2APIC compares 32, and an 8-bit logical destination reaching
// an x2APIC is read as cluster 0. Broadcast is all ones in the message's
// format. A reserved DFR model matches no logical destination.
func (l *LAPIC) matchesLocked(m Message) bool {
	if (m.X2APIC && m.Dest == 0xffff_ffff) || (!m.X2APIC && m.Dest&0xff == 0xff) {
		return true
	}
	dest := m.Dest
	if !m.X2APIC {
		dest &= 0xff
	}
	if !m.Logical {
		return l.id == dest // SDM Vol. 3A 11.6.2.1
	}
	if l.mode() == ModeX2APIC {
		// x2APIC cluster model (SDM Vol. 3A 11.12.10.2): cluster in
		// bits 31:16, a bitmap of 16 members in 15:0.
		return dest>>16 == l.ldr>>16 && dest&l.ldr&0xffff != 0
	}
	if dest > 0xff {
		return false
	}
	ldr := l.ldr >> 24
	switch l.dfr >> DFR_MODEL {
	case DFR_MODEL_FLAT: // SDM Vol. 3A 11.6.2.2: any common bit of 8
		return ldr&dest != 0
	case DFR_MODEL_CLUSTER: // cluster in 7:4, four members in 3:0
		return ldr>>4 == dest>>4 && ldr&dest&0xf != 0
	}
	return false
}

// sendICRLocked sends the IPI the ICR now describes (SDM Vol. 3A 11.6.1)
// once the mutex is dropped; the package doc lists the outcome of each odd
// value.
func (l *LAPIC) sendICRLocked() post {
	var p post
	low := l.icrLow
	mode := DeliveryMode(low >> ICR_DLV & 7)
	sh := low & (3 << ICR_DST)
	m := Message{Vector: uint8(low), Mode: mode, Logical: low&(1<<ICR_DEST_MODE) != 0}
	if l.mode() == ModeX2APIC {
		m.Dest, m.X2APIC = l.icrHigh, true
	} else {
		m.Dest = l.icrHigh >> 24
	}
	switch mode {
	case DeliveryFixed, DeliveryLowestPriority:
		if m.Vector < firstLegalVector {
			p.kick = l.recordErrorLocked(ESR_SEND_ILLEGAL_VEC)
		}
	case DeliveryINIT:
		if low&(1<<ICR_TRIGGER) != 0 && low&(1<<ICR_INIT) == 0 {
			return p
		}
	case 0b011, DeliveryExtINT:
		l.stats.ipisInvalid.Add(1)
		return p
	}
	if (sh == ICR_DST_SELF && mode != DeliveryFixed) || (sh == ICR_DST_ALL && mode == DeliveryLowestPriority) {
		l.stats.ipisInvalid.Add(1)
		return p
	}
	p.send, p.msg, p.shorthand = true, m, sh
	return p
}

// selfIPILocked is a write of vector v to the x2APIC SELF_IPI register: a
// fixed, edge-triggered IPI to this LAPIC (SDM Vol. 3A 11.12.11).
func (l *LAPIC) selfIPILocked(v uint8) post {
	var p post
	if v < firstLegalVector {
		p.kick = l.recordErrorLocked(ESR_SEND_ILLEGAL_VEC)
	}
	p.send, p.msg, p.shorthand = true, Message{Vector: v, Mode: DeliveryFixed}, ICR_DST_SELF
	return p
}

// send delivers an IPI from l; called without l's mutex.
func (l *LAPIC) send(m Message, sh uint32) {
	l.stats.ipisSent.Add(1)
	if matched, _ := deliver(l.bus, m, l, sh); matched == 0 {
		l.stats.ipisNoTarget.Add(1)
	}
}

// DecodeMSI turns a PCI message-signalled interrupt (the address and data
// a device writes, SDM Vol. 3A 11.11) into a Message. The address must lie
// in the 0xfeexxxxx window; the redirection hint (address bit 3) is
// ignored, so a lowest-priority MSI is routed like an IPI. Without
// interrupt remapping the destination is 8 bits (address bits 19:12).
func DecodeMSI(addr uint64, data uint32) (Message, bool) {
	if addr>>20 != 0xfee {
		return Message{}, false
	}
	return Message{
		Vector:  uint8(data),
		Mode:    DeliveryMode(data >> 8 & 7),
		Logical: addr&(1<<2) != 0,
		Dest:    uint32(addr>>12) & 0xff,
		Level:   data&(1<<15) != 0,
	}, true
}
