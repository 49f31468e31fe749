package apic

import (
	"encoding/binary"
	"fmt"
	"sync"
	"sync/atomic"

	"gohv/x86"
)

// Mode is the LAPIC's mode, chosen by IA32_APIC_BASE.EN and EXTD (SDM Vol.
// 3A 11.12.5).
type Mode uint8

const (
	ModeDisabled Mode = iota // EN = 0: globally disabled
	ModeXAPIC                // EN = 1, EXTD = 0: registers in the MMIO page
	ModeX2APIC               // EN = 1, EXTD = 1: registers as MSRs 0x800-0x8ff
)

func (m Mode) String() string {
	switch m {
	case ModeDisabled:
		return "disabled"
	case ModeXAPIC:
		return "xAPIC"
	case ModeX2APIC:
		return "x2APIC"
	}
	return fmt.Sprintf("Mode(%d)", uint8(m))
}

// LAPIC is one VP's local APIC.
type LAPIC struct {
	mu sync.Mutex

	// Fixed at New.
	initialID      uint32
	x2apicOK       bool
	tscDeadlineOK  bool
	eoiSuppressOK  bool
	baseReserved   uint64 // IA32_APIC_BASE bits that raise #GP
	timerHz        uint64
	minTimerPeriod int64
	clock          Clock
	bus            Bus
	sink           Sink
	eoiListener    EOIListener

	// Architectural state, guarded by mu.
	base    uint64 // IA32_APIC_BASE
	id      uint32 // xAPIC: the 8-bit ID; x2APIC: the x2APIC ID
	tpr     uint32
	ldr     uint32
	dfr     uint32
	svr     uint32
	irr     [4]uint64 // guest-controlled only through accepted vectors >= 16
	isr     [4]uint64
	tmr     [4]uint64
	esr     uint32 // ESR as software reads it
	esrNext uint32 // errors seen since the last ESR write
	icrLow  uint32
	icrHigh uint32
	lvt     [numLVT]uint32
	lint    [2]bool // LINT0/LINT1 input levels
	timer   timerState

	// autoEOI marks the vectors Ack retires at once (autoeoi.go): the
	// SynIC's AutoEOI SINTs. Not architectural: resets leave it alone.
	autoEOI [4]uint64

	// Events for the run loop, guarded by mu.
	nmi, init, sipi bool
	sipiVector      uint8
	waitSIPI        bool

	// work is set (under mu) whenever IRR holds a vector or an event is
	// pending, and cleared when neither is true: Idle reads it without
	// the mutex so the run loop's common case takes no lock.
	work atomic.Bool
	// expiry mirrors the host timer's armed deadline for TimerExpiry.
	expiry atomic.Int64

	stats counters
}

// New makes a LAPIC in its power-up state (SDM Vol. 3A 11.4.7.1): xAPIC
// mode at the default base, software-disabled, every LVT masked.
func New(cfg Config) (*LAPIC, error) {
	if cfg.Clock == nil || cfg.Bus == nil || cfg.Sink == nil {
		return nil, fmt.Errorf("%w: Clock, Bus and Sink are required", errConfig)
	}
	if cfg.Clock.TSCHz() == 0 {
		return nil, fmt.Errorf("%w: clock's TSCHz is 0", errConfig)
	}
	phys := cfg.PhysAddrBits
	if phys == 0 {
		phys = 52
	}
	if phys < 32 || phys > 52 {
		return nil, fmt.Errorf("%w: PhysAddrBits %d outside 32-52", errConfig, phys)
	}
	l := &LAPIC{
		initialID:      cfg.ID,
		x2apicOK:       cfg.X2APIC,
		tscDeadlineOK:  cfg.TSCDeadline,
		eoiSuppressOK:  cfg.SuppressEOIBroadcast,
		timerHz:        cfg.TimerHz,
		minTimerPeriod: cfg.MinTimerPeriod,
		clock:          cfg.Clock,
		bus:            cfg.Bus,
		sink:           cfg.Sink,
		eoiListener:    cfg.EOI,
	}
	if l.timerHz == 0 {
		l.timerHz = DefaultTimerHz
	}
	if l.timerHz > 1e12 {
		return nil, errConfigTimerRate
	}
	if l.minTimerPeriod <= 0 {
		l.minTimerPeriod = DefaultMinTimerPeriod
	}
	// Bits 7:0 and 9 are reserved, and so is everything at or above
	// MAXPHYADDR; EXTD is reserved unless x2APIC is advertised (SDM Vol.
	// 3A 11.4.4, Figure 11-5).
	l.baseReserved = 0xff | 1<<9 | ^(uint64(1)<<phys - 1)
	if !cfg.X2APIC {
		l.baseReserved |= x86.APICBaseEXTD
	}
	l.base = x86.APICDefaultBase | x86.APICBaseEnable
	if cfg.BSP {
		l.base |= x86.APICBaseBSP
	}
	l.timer.host = cfg.Clock.NewTimer(l.timerCallback)
	l.resetLocked(true)
	return l, nil
}

// resetLocked puts the registers in their power-up state (SDM Vol. 3A
// 11.4.7.1), or with keepID their INIT state (11.4.7.3), which keeps the
// APIC ID (and in x2APIC mode the LDR derived from it). IA32_APIC_BASE
// is the caller's.
func (l *LAPIC) resetLocked(power bool) {
	if power {
		l.id = l.initialID
		if l.mode() == ModeXAPIC {
			l.id &= 0xff
		}
	}
	l.tpr = 0
	l.ldr = 0
	if l.mode() == ModeX2APIC {
		l.ldr = x2apicLDR(l.id)
	}
	l.dfr = dfrReset
	l.svr = svrReset
	l.irr, l.isr, l.tmr = [4]uint64{}, [4]uint64{}, [4]uint64{}
	l.esr, l.esrNext = 0, 0
	l.icrLow, l.icrHigh = 0, 0
	for i := range l.lvt {
		l.lvt[i] = lvtMasked
	}
	l.timerResetLocked()
	l.nmi, l.init, l.sipi, l.sipiVector = false, false, false, 0
	l.noteWorkLocked()
}

// noteWorkLocked brings the work hint in step with IRR and the events.
// Called with mu held after every change to either.
func (l *LAPIC) noteWorkLocked() {
	l.work.Store(l.irr != [4]uint64{} || l.nmi || l.init || l.sipi)
}

// Idle reports that the LAPIC has nothing for the VP: IRR is empty and no
// NMI, INIT or SIPI waits, so PendingVector and TakeEvents would return
// nothing. It takes no lock: a message another goroutine delivers at the
// same moment may be missed, but that delivery ends with Sink.Kick, which
// makes the VP look again. VP thread; does not allocate.
func (l *LAPIC) Idle() bool { return !l.work.Load() }

// x2apicLDR is the logical ID the hardware derives from an x2APIC ID: the
// cluster (ID bits 19:4) in 31:16 and one bit for ID bits 3:0 (SDM Vol. 3A
// 11.12.10.2).
func x2apicLDR(id uint32) uint32 {
	return (id>>4)<<16 | 1<<(id&0xf)
}

func (l *LAPIC) mode() Mode {
	switch l.base & (x86.APICBaseEnable | x86.APICBaseEXTD) {
	case x86.APICBaseEnable:
		return ModeXAPIC
	case x86.APICBaseEnable | x86.APICBaseEXTD:
		return ModeX2APIC
	}
	return ModeDisabled
}

func (l *LAPIC) softwareEnabled() bool { return l.svr&(1<<SVR_ENABLE) != 0 }

// Mode returns the current mode. Any goroutine.
func (l *LAPIC) Mode() Mode {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.mode()
}

// Base returns IA32_APIC_BASE. In ModeXAPIC the register page is at
// Base() & x86.APICBaseAddrMask. Any goroutine.
func (l *LAPIC) Base() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.base
}

// ID returns the APIC ID as destinations match it: the 8-bit xAPIC ID
// (which xAPIC software may rewrite) or the x2APIC ID. Any goroutine.
func (l *LAPIC) ID() uint32 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.id
}

// ReadMMIO reads the xAPIC page at offset off into data. VP thread.
//
// Each register is the first 4 bytes of its 16-byte slot, little-endian;
// the other 12 bytes read as zero (SDM Vol. 3A 11.4.1 asks for aligned
// 32-bit accesses and leaves others model-specific). A read of any width
// returns the bytes of that slot image it covers, so a 1- or 2-byte read
// returns part of the register and an 8-byte read at a slot's start
// returns the register in its low half; bytes past the slot (or the
// page) read as zero. Reading a slot
// that holds no register returns zero and sets ESR bit 7. Outside xAPIC
// mode (globally disabled, or x2APIC, where the page is not decoded:
// SDM Vol. 3A 11.12.1.2) every byte reads 0xff, as from an unclaimed bus.
func (l *LAPIC) ReadMMIO(off uint64, data []byte) {
	l.mu.Lock()
	p := l.readMMIOLocked(off, data)
	l.mu.Unlock()
	l.finish(p)
}

func (l *LAPIC) readMMIOLocked(off uint64, data []byte) post {
	var p post
	if l.mode() != ModeXAPIC {
		for i := range data {
			data[i] = 0xff
		}
		return p
	}
	for i := range data {
		data[i] = 0
	}
	if off >= PageSize || len(data) == 0 {
		return p
	}
	var slot [16]byte
	reg := uint32(off) &^ 15
	v, ok := l.readRegLocked(reg)
	if !ok {
		p.kick = l.recordErrorLocked(ESR_ILLEGAL_REG_ADDR)
		return p
	}
	binary.LittleEndian.PutUint32(slot[:], v)
	copy(data, slot[off&15:])
	return p
}

// WriteMMIO writes data to the xAPIC page at offset off. VP thread.
//
// Only a 4-byte write at the start of a register's slot reaches the
// register; the model drops any other width or alignment (the SDM leaves
// them model-specific), and writes outside xAPIC mode. Bits a register
// does not implement are dropped; writes to read-only registers are
// ignored; a write to a slot that holds no register sets ESR bit 7.
func (l *LAPIC) WriteMMIO(off uint64, data []byte) {
	l.mu.Lock()
	var p post
	if l.mode() == ModeXAPIC && off < PageSize {
		reg := uint32(off) &^ 15
		if !l.implementedLocked(reg) {
			p.kick = l.recordErrorLocked(ESR_ILLEGAL_REG_ADDR)
		} else if len(data) == 4 && off&15 == 0 {
			p = l.writeRegLocked(reg, binary.LittleEndian.Uint32(data), 0)
		}
	}
	l.mu.Unlock()
	l.finish(p)
}

// implementedLocked reports whether the xAPIC page has a register at off.
func (l *LAPIC) implementedLocked(off uint32) bool {
	_, ok := l.readRegLocked(off)
	return ok
}

// readRegLocked returns the register at offset off (a multiple of 16) as
// the current mode shows it. ok is false when no register is there; the
// MSR path rejects the xAPIC-only and write-only ones itself.
func (l *LAPIC) readRegLocked(off uint32) (v uint32, ok bool) {
	switch {
	case off == LAPIC_ID:
		if l.mode() == ModeX2APIC {
			return l.id, true
		}
		return l.id << ID, true
	case off == LAPIC_VER:
		return l.versionLocked(), true
	case off == LAPIC_TPR:
		return l.tpr, true
	case off == LAPIC_APR:
		return l.aprLocked(), true
	case off == LAPIC_PPR:
		return l.pprLocked(), true
	case off == LAPIC_EOI, off == LAPIC_RRD: // EOI is write-only, RRD unused: both read 0
		return 0, true
	case off == LAPIC_LDR:
		return l.ldr, true
	case off == LAPIC_DFR:
		return l.dfr, true
	case off == LAPIC_SVR:
		return l.svr, true
	case off >= LAPIC_ISR && off < LAPIC_ISR+0x80:
		return word32(&l.isr, (off-LAPIC_ISR)>>4), true
	case off >= LAPIC_TMR && off < LAPIC_TMR+0x80:
		return word32(&l.tmr, (off-LAPIC_TMR)>>4), true
	case off >= LAPIC_IRR && off < LAPIC_IRR+0x80:
		return word32(&l.irr, (off-LAPIC_IRR)>>4), true
	case off == LAPIC_ESR:
		return l.esr, true
	case off == LAPIC_ICRL:
		return l.icrLow, true
	case off == LAPIC_ICRH:
		return l.icrHigh, true
	case off == LAPIC_TIMER_INITIAL:
		return l.timer.initial, true
	case off == LAPIC_TIMER_CURRENT:
		return l.timerCurrentLocked(l.clock.Now()), true
	case off == LAPIC_TIMER_DIVIDE:
		return l.timer.dcr, true
	}
	if i, ok := lvtIndex(off); ok {
		return l.lvt[i], true
	}
	return 0, false
}

// versionLocked is the version register: an integrated APIC with seven
// LVT entries (CMCI included) and EOI-broadcast suppression as configured
// (SDM Vol. 3A 11.4.8).
func (l *LAPIC) versionLocked() uint32 {
	v := uint32(VER_VERSION | (numLVT-1)<<VER_ENTRIES)
	if l.eoiSuppressOK {
		v |= 1 << VER_EOI_SUPPRESS
	}
	return v
}

// writeRegLocked writes register off. v has already passed the x2APIC
// reserved-bit checks when it comes from WRMSR; high is the ICR's upper
// half for an x2APIC ICR write. What must happen without the mutex
// (sending an IPI, an EOI notification, a kick) comes back as a post.
func (l *LAPIC) writeRegLocked(off, v, high uint32) post {
	var p post
	x2 := l.mode() == ModeX2APIC
	switch off {
	case LAPIC_ID:
		if !x2 { // model-specific; allowed as most xAPICs do (SDM Vol. 3A 11.4.6)
			l.id = v >> ID
		}
	case LAPIC_TPR:
		l.tpr = v & 0xff
	case LAPIC_EOI:
		p = l.eoiLocked()
	case LAPIC_LDR:
		if !x2 {
			l.ldr = v & 0xff00_0000
		}
	case LAPIC_DFR:
		if !x2 {
			l.dfr = v | 0x0fff_ffff
		}
	case LAPIC_SVR:
		l.writeSVRLocked(v)
	case LAPIC_ESR:
		// Write-before-read: the write makes the errors seen since the
		// last write readable and starts collecting anew (SDM Vol. 3A
		// 11.5.3).
		l.esr, l.esrNext = l.esrNext, 0
	case LAPIC_ICRL:
		l.icrLow = v & icrLowWritable
		if x2 {
			l.icrHigh = high
		}
		p = l.sendICRLocked()
	case LAPIC_ICRH:
		if !x2 {
			l.icrHigh = v & 0xff00_0000
		}
	case LAPIC_TIMER_INITIAL:
		p.kick = l.writeTimerInitialLocked(v)
	case LAPIC_TIMER_DIVIDE:
		p.kick = l.writeTimerDivideLocked(v & TIMER_DIVIDE_MASK)
	case LAPIC_SELF_IPI:
		p = l.selfIPILocked(uint8(v))
	default:
		if i, ok := lvtIndex(off); ok {
			p.kick = l.writeLVTLocked(i, v)
		}
		// Read-only registers ignore writes.
	}
	return p
}

// writeSVRLocked writes the spurious-interrupt vector register (SDM Vol.
// 3A 11.9). Clearing the software enable masks every LVT entry (11.4.7.2).
func (l *LAPIC) writeSVRLocked(v uint32) {
	mask := uint32(0xff | 1<<SVR_ENABLE | 1<<SVR_FOCUS)
	if l.eoiSuppressOK {
		mask |= 1 << SVR_EOI_SUPPRESS
	}
	l.svr = v & mask
	if !l.softwareEnabled() {
		for i := range l.lvt {
			l.lvt[i] |= lvtMasked
		}
		l.timerRescheduleLocked(l.clock.Now())
	}
}

// writeLVTLocked writes LVT entry i; it reports whether the write made a
// vector deliverable (a level LINT input now unmasked).
func (l *LAPIC) writeLVTLocked(i int, v uint32) bool {
	now := l.clock.Now()
	kick := false
	if i == lvtTimer {
		kick = l.timerPollLocked(now) // expiries so far count under the old entry
	}
	old := l.lvt[i]
	v = v&l.lvtWritable(i) | old&lvtReadOnly(i)
	if !l.softwareEnabled() {
		v |= lvtMasked
	}
	l.lvt[i] = v
	if i == lvtTimer {
		l.timerModeChangedLocked(old, v)
		l.timerRescheduleLocked(now)
	}
	if i == lvtLINT0 || i == lvtLINT1 {
		if !l.lintLevelTriggered(i) {
			l.lvt[i] &^= 1 << LVT_REMOTE_IRR // nothing will EOI it now
		} else if old&lvtMasked != 0 && v&lvtMasked == 0 {
			kick = l.lintLevelLocked(i-lvtLINT0) || kick
		}
	}
	return kick
}

// post is what a locked operation leaves for after the mutex is dropped.
type post struct {
	send      bool
	msg       Message
	shorthand uint32
	eoi       bool
	eoiVector uint8
	kick      bool
}

// finish carries out p without the mutex.
func (l *LAPIC) finish(p post) {
	if p.send {
		l.send(p.msg, p.shorthand)
	}
	if p.eoi && l.eoiListener != nil {
		l.eoiListener.EOI(p.eoiVector)
	}
	if p.kick {
		l.sink.Kick()
	}
}

// word32 returns 32-bit word i (0-7) of a 256-bit vector set.
func word32(v *[4]uint64, i uint32) uint32 {
	return uint32(v[i/2] >> (32 * (i % 2)))
}
