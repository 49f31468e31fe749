// Package ioapic models a partition's I/O APIC: 24 interrupt input pins,
// each routed by a redirection-table entry into an interrupt message that
// the partition's local APICs take through an apic.Bus. Registers and
// names follow the Intel 82093AA I/O APIC datasheet and tamago's
// soc/intel/ioapic (IOREGSEL, IOWIN, REDTBL_MASK); the EOI register and
// version 0x20 are those of the I/O APIC in Intel's later chipsets, which
// pairs with a local APIC that advertises EOI-broadcast suppression.
//
// # Behaviour
//
// Devices (or the root) drive pins with SetIRQ, giving each pin's logical
// state: asserted or not. The polarity bit of an entry is stored for the
// guest to read back but not applied; the caller speaks assertion.
//
//   - Edge-triggered entry: each assertion (a low-to-high change) sends
//     one message; while masked, assertions are lost (82093AA 3.2.4).
//   - Level-triggered fixed or lowest-priority entry: while the pin is
//     asserted, the entry unmasked and its remote IRR clear, the I/O APIC
//     sends the message and sets remote IRR if a local APIC took it. An
//     EOI for the entry's vector (a LAPIC's broadcast through EOI, or a
//     write to the EOI register) clears remote IRR, and the message goes
//     out again if the pin is still asserted. Rewriting an entry
//     re-evaluates it: unmasking an asserted level pin sends at once, and
//     making it edge-triggered (or giving it a delivery mode that is not
//     EOI'd) clears its remote IRR, so a lost EOI cannot wedge the pin.
//   - Level-triggered NMI, INIT, SMI or ExtINT entries behave as edge:
//     nothing EOIs them.
//
// # Failure
//
// Nothing a guest writes panics. IOREGSEL takes any value (bits 7:0 are
// kept); IOWIN reads 0 and ignores writes while IOREGSEL names no
// register; reserved, delivery-status and remote-IRR bits of an entry
// are not writable; ID bits other than 27:24 are dropped; the version and
// arbitration registers are read-only. MMIO accesses: a 4-byte write at
// the start of IOREGSEL, IOWIN or IOEOI reaches it (IOREGSEL also takes a
// 1-byte write); other writes are dropped. Reads of any width return the
// bytes of the 16-byte slot's image (the register in its first 4 bytes,
// zero elsewhere), zero outside the registers. Messages that reach no
// local APIC are counted (Stats.NoTarget). SetIRQ of a pin outside 0-23
// is ignored and counted (Stats.BadPin): a wiring bug, not the guest's.
//
// # Concurrency
//
// All methods are safe from any goroutine: one mutex guards the state.
// Messages go out with that mutex held, which is safe because a local
// APIC never calls back into the I/O APIC while holding its own mutex
// (lock order: I/O APIC, then one LAPIC). EOI runs on the EOI-writing
// VP's thread. MMIO accesses, SetIRQ and EOI allocate nothing.
package ioapic

import (
	"encoding/binary"
	"sync"
	"sync/atomic"

	"gohv/apic"
)

// Registers (82093AA datasheet 3.0, 3.1). IOREGSEL, IOWIN and IOEOI are
// offsets in the MMIO window; the rest are indexes written to IOREGSEL.
const (
	IOREGSEL = 0x00
	IOWIN    = 0x10
	IOEOI    = 0x40 // version 0x20: write a vector to clear remote IRR

	IOAPICID      = 0x00
	ID            = 24 // ID in bits 27:24
	IOAPICVER     = 0x01
	VER_ENTRIES   = 16 // number of entries minus one, bits 23:16
	IOAPICARB     = 0x02
	IOAPICREDTBLn = 0x10 // entry n: low half at 0x10+2n, high half at 0x11+2n

	REDTBL_INTVEC  = 0
	REDTBL_DELMOD  = 8 // 3 bits
	REDTBL_DESTMOD = 11
	REDTBL_DELIVS  = 12 // read-only
	REDTBL_INTPOL  = 13
	REDTBL_RIRR    = 14 // read-only
	REDTBL_TRIGGER = 15
	REDTBL_MASK    = 16
	REDTBL_DEST    = 56 // 8 bits

	// Version is the version register's low byte.
	Version = 0x20
	// Pins is the number of input pins and redirection entries.
	Pins = 24
	// DefaultBase is where PC firmware puts the first I/O APIC.
	DefaultBase = 0xfec0_0000
	// Size is the MMIO window to route to the device.
	Size = 0x1000

	redtblWritable = 0xff | 7<<REDTBL_DELMOD | 1<<REDTBL_DESTMOD | 1<<REDTBL_INTPOL |
		1<<REDTBL_TRIGGER | 1<<REDTBL_MASK | 0xff<<REDTBL_DEST
	rirr   = 1 << REDTBL_RIRR
	masked = 1 << REDTBL_MASK
)

// IOAPIC is one I/O APIC.
type IOAPIC struct {
	mu     sync.Mutex
	bus    apic.Bus
	id     uint32 // IOAPICID, bits 27:24
	sel    uint32 // IOREGSEL
	redtbl [Pins]uint64
	lines  uint32 // bit n: pin n asserted

	sent, noTarget, badPin atomic.Uint64
}

// Stats counts the I/O APIC's messages.
type Stats struct {
	Sent     uint64 // messages sent
	NoTarget uint64 // of those, messages no local APIC took
	BadPin   uint64 // SetIRQ calls with a pin outside 0-23
}

// New makes an I/O APIC in its reset state (every entry masked) with the
// given 4-bit ID, sending through bus.
func New(bus apic.Bus, id uint8) *IOAPIC {
	io := &IOAPIC{bus: bus, id: uint32(id&0xf) << ID}
	for i := range io.redtbl {
		io.redtbl[i] = masked
	}
	return io
}

// Stats returns the counters.
func (io *IOAPIC) Stats() Stats {
	return Stats{Sent: io.sent.Load(), NoTarget: io.noTarget.Load(), BadPin: io.badPin.Load()}
}

// ReadMMIO reads the window at offset off into data.
func (io *IOAPIC) ReadMMIO(off uint64, data []byte) {
	for i := range data {
		data[i] = 0
	}
	if off >= Size {
		return
	}
	var v uint32
	io.mu.Lock()
	switch off &^ 15 {
	case IOREGSEL:
		v = io.sel
	case IOWIN:
		v = io.readLocked(io.sel)
	}
	io.mu.Unlock()
	var slot [16]byte
	binary.LittleEndian.PutUint32(slot[:], v)
	copy(data, slot[off&15:])
}

// WriteMMIO writes data to the window at offset off.
func (io *IOAPIC) WriteMMIO(off uint64, data []byte) {
	if (len(data) != 4 && !(len(data) == 1 && off == IOREGSEL)) || off&15 != 0 {
		return
	}
	var v uint32
	for i := len(data) - 1; i >= 0; i-- {
		v = v<<8 | uint32(data[i])
	}
	io.mu.Lock()
	defer io.mu.Unlock()
	switch off {
	case IOREGSEL:
		io.sel = v & 0xff
	case IOWIN:
		io.writeLocked(io.sel, v)
	case IOEOI:
		io.eoiLocked(uint8(v))
	}
}

func (io *IOAPIC) readLocked(index uint32) uint32 {
	switch {
	case index == IOAPICID, index == IOAPICARB:
		return io.id // the arbitration ID follows the ID on a reset part
	case index == IOAPICVER:
		return Version | (Pins-1)<<VER_ENTRIES
	case index >= IOAPICREDTBLn && index < IOAPICREDTBLn+2*Pins:
		e := io.redtbl[(index-IOAPICREDTBLn)/2]
		if index&1 == 1 {
			return uint32(e >> 32)
		}
		return uint32(e)
	}
	return 0
}

func (io *IOAPIC) writeLocked(index, v uint32) {
	switch {
	case index == IOAPICID:
		io.id = v & (0xf << ID)
	case index >= IOAPICREDTBLn && index < IOAPICREDTBLn+2*Pins:
		pin := int(index-IOAPICREDTBLn) / 2
		old := io.redtbl[pin]
		e := old
		if index&1 == 1 {
			e = e&0xffff_ffff | uint64(v)<<32
		} else {
			e = e&^0xffff_ffff | uint64(v)
		}
		e = e&redtblWritable | old&rirr
		if !levelEntry(e) {
			e &^= rirr // nothing will EOI it now
		}
		io.redtbl[pin] = e
		io.levelLocked(pin)
	}
}

// SetIRQ drives input pin to the asserted or de-asserted state.
func (io *IOAPIC) SetIRQ(pin int, asserted bool) {
	if pin < 0 || pin >= Pins {
		io.badPin.Add(1)
		return
	}
	bit := uint32(1) << pin
	io.mu.Lock()
	defer io.mu.Unlock()
	was := io.lines&bit != 0
	if asserted {
		io.lines |= bit
	} else {
		io.lines &^= bit
	}
	if levelEntry(io.redtbl[pin]) {
		io.levelLocked(pin)
		return
	}
	if asserted && !was && io.redtbl[pin]&masked == 0 {
		io.sendLocked(pin)
	}
}

// EOI clears the remote IRR of every level-triggered entry with this
// vector and re-sends those whose pin is still asserted: apic.EOIListener.
func (io *IOAPIC) EOI(vector uint8) {
	io.mu.Lock()
	io.eoiLocked(vector)
	io.mu.Unlock()
}

func (io *IOAPIC) eoiLocked(vector uint8) {
	for pin, e := range io.redtbl {
		if e&rirr != 0 && uint8(e) == vector {
			io.redtbl[pin] &^= rirr
			io.levelLocked(pin)
		}
	}
}

// levelEntry reports whether e is level-triggered with a delivery mode
// that expects an EOI.
func levelEntry(e uint64) bool {
	mode := apic.DeliveryMode(e >> REDTBL_DELMOD & 7)
	return e&(1<<REDTBL_TRIGGER) != 0 && (mode == apic.DeliveryFixed || mode == apic.DeliveryLowestPriority)
}

// levelLocked sends a level-triggered entry's message if its pin is
// asserted, it is unmasked and its remote IRR is clear.
func (io *IOAPIC) levelLocked(pin int) {
	e := io.redtbl[pin]
	if !levelEntry(e) || io.lines&(1<<pin) == 0 || e&(masked|rirr) != 0 {
		return
	}
	if io.sendLocked(pin) {
		io.redtbl[pin] |= rirr
	}
}

// sendLocked sends entry pin's message and reports whether a local APIC
// took it.
func (io *IOAPIC) sendLocked(pin int) bool {
	e := io.redtbl[pin]
	m := apic.Message{
		Vector:  uint8(e >> REDTBL_INTVEC),
		Mode:    apic.DeliveryMode(e >> REDTBL_DELMOD & 7),
		Logical: e&(1<<REDTBL_DESTMOD) != 0,
		Dest:    uint32(e >> REDTBL_DEST & 0xff),
		Level:   levelEntry(e),
	}
	io.sent.Add(1)
	_, accepted := apic.Deliver(io.bus, m)
	if accepted == 0 {
		io.noTarget.Add(1)
	}
	return accepted > 0
}
