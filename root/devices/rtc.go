package devices

import (
	"sync"
	"time"
)

// RTCPort is the CMOS index port; the data port follows it.
const (
	RTCPort  = 0x70
	RTCPorts = 2
)

// MC146818 registers (the datasheet's names) and the PC's CMOS map.
const (
	rtcSeconds      = 0x00
	rtcSecondsAlarm = 0x01
	rtcMinutes      = 0x02
	rtcMinutesAlarm = 0x03
	rtcHours        = 0x04
	rtcHoursAlarm   = 0x05
	rtcDayOfWeek    = 0x06 // 1-7, Sunday = 1
	rtcDayOfMonth   = 0x07
	rtcMonth        = 0x08
	rtcYear         = 0x09 // 0-99
	rtcRegA         = 0x0a
	rtcRegB         = 0x0b
	rtcRegC         = 0x0c
	rtcRegD         = 0x0d
	// CMOSCentury is where a PC keeps the century (the FADT's CENTURY
	// field names it).
	CMOSCentury = 0x32

	cmosSize       = 128
	cmosIndexMask  = 0x7f
	cmosNMIDisable = 0x80 // index port bit 7: masks NMI on a PC; ignored

	regAUIP     = 0x80 // update in progress (read-only)
	regADVShift = 4    // divider select, bits 6:4
	regADVMask  = 0x7
	regADVReset = 0x6 // 110 and 111 hold the divider chain in reset: no updates

	regBSET  = 0x80 // halts updates so the time can be set
	regBPIE  = 0x40 // periodic interrupt enable
	regBAIE  = 0x20 // alarm interrupt enable
	regBUIE  = 0x10 // update-ended interrupt enable; cleared when SET is written 1
	regBSQWE = 0x08
	regBDM   = 0x04 // data mode: 1 binary, 0 BCD
	regB24   = 0x02 // 1: 24-hour, 0: 12-hour with bit 7 of the hours = PM
	regBDSE  = 0x01

	regDVRT = 0x80 // valid RAM and time

	hoursPM = 0x80

	// regAReset and regBReset are what a PC BIOS leaves: 32.768 kHz time
	// base, 1.024 kHz rate; 24-hour BCD, no interrupts.
	regAReset = 0x26
	regBReset = regB24

	// uipWindow: UIP reads 1 this long before each update (t_BUC, the
	// datasheet's 244 µs), so a reader that sees it clear has that long to
	// read the time undisturbed.
	uipWindow = 244 * time.Microsecond
)

// RTC is a PC's CMOS real-time clock and its 128 bytes of CMOS RAM, an
// MC146818 as Linux, firmware and boot loaders use it.
//
// Time comes from the caller's clock (the host's wall clock), shown in
// UTC, Linux's convention for a PC RTC. The registers are presented in the
// format register B asks for at the time of the read (BCD or binary,
// 24- or 12-hour): changing the mode does not scramble the time. A guest
// that sets the time (SET in register B, then the registers, then SET
// clear; or a register written while the clock runs) moves its clock by
// that much against the host's for as long as this RTC lives, as a
// battery-backed clock would. UIP is set in the last 244 µs of
// each second. While SET is 1, or the divider bits of register A hold the
// chain in reset, the clock stands still and UIP reads 0.
//
// Guest-controlled values: a written time field out of range (minute 75,
// BCD 0xFF read as 165, month 13) carries into the next field as a
// calendar would (time.Date's normalisation); the real part's behaviour
// there is undefined. The day of week is computed from the date: writes
// to it are ignored. The year register shows the year mod 100, the century
// byte the rest (mod 100 in BCD, mod 256 in binary).
//
// No interrupts: the periodic, alarm and update-ended interrupt enables in
// register B read back as written but never fire, register C (the flags)
// reads 0, register D reads 0x80 (valid RAM and time), and the alarm
// registers are plain RAM. gohv's DSDT describes the RTC without an IRQ,
// and Linux's rtc_cmos runs without one. Index port bit 7 (NMI disable on
// a PC) is ignored; reading the index port returns 0xFF.
type RTC struct {
	mu    sync.Mutex
	clock func() time.Time
	index uint8
	ram   [cmosSize]byte // CMOS RAM, alarms, registers A and B; the time is computed

	// The guest's clock: while running, host seconds + offset (the host's
	// nanoseconds); while held, the fields as the guest last set them,
	// kept apart as the chip's registers are (firmware writes them in any
	// order: a day of 31 before its month must not roll into the next
	// month), and combined when the clock runs again.
	offset   int64
	held     bool
	heldAt   clockFields
	heldNsec int
}

// clockFields are the date and time registers' values, not normalised.
type clockFields struct {
	year             int
	month            time.Month
	day, h, min, sec int
}

func fieldsOf(t time.Time) clockFields {
	y, mo, d := t.Date()
	h, mi, s := t.Clock()
	return clockFields{y, mo, d, h, mi, s}
}

func (f clockFields) time(nsec int) time.Time {
	return time.Date(f.year, f.month, f.day, f.h, f.min, f.sec, nsec, time.UTC)
}

// NewRTC makes an RTC whose time is clock's, in UTC; nil is time.Now.
func NewRTC(clock func() time.Time) *RTC {
	if clock == nil {
		clock = time.Now
	}
	r := &RTC{clock: clock}
	r.ram[rtcRegA] = regAReset
	r.ram[rtcRegB] = regBReset
	return r
}

// In reads the index port (0xFF) or the register it selects. Called on a
// VP's thread; does not allocate.
func (r *RTC) In(port uint16, size int) uint32 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return splitIn(r, RTCPort, RTCPorts, port, size)
}

// Out selects a register (index port) or writes it (data port). Called on
// a VP's thread; does not allocate.
func (r *RTC) Out(port uint16, size int, v uint32) {
	r.mu.Lock()
	defer r.mu.Unlock()
	splitOut(r, RTCPort, RTCPorts, port, size, v)
}

func (r *RTC) inb(off uint16) uint8 {
	if off == 0 {
		return 0xff
	}
	return r.read(r.index)
}

func (r *RTC) outb(off uint16, v uint8) {
	if off == 0 {
		r.index = v & cmosIndexMask
		return
	}
	r.write(r.index, v)
}

func (r *RTC) read(idx uint8) uint8 {
	switch idx {
	case rtcSeconds, rtcMinutes, rtcHours, rtcDayOfWeek, rtcDayOfMonth, rtcMonth, rtcYear, CMOSCentury:
		return r.timeField(idx, r.now())
	case rtcRegA:
		v := r.ram[rtcRegA]
		if !r.held && r.inUIPWindow() {
			v |= regAUIP
		}
		return v
	case rtcRegC:
		return 0
	case rtcRegD:
		return regDVRT
	}
	return r.ram[idx]
}

func (r *RTC) write(idx uint8, v uint8) {
	switch idx {
	case rtcSeconds, rtcMinutes, rtcHours, rtcDayOfMonth, rtcMonth, rtcYear, CMOSCentury:
		r.setTimeField(idx, v)
	case rtcDayOfWeek, rtcRegC, rtcRegD:
		// Computed or read-only.
	case rtcRegA:
		r.ram[rtcRegA] = v &^ regAUIP
		r.hold(r.haltedByRegisters())
	case rtcRegB:
		if v&regBSET != 0 {
			v &^= regBUIE
		}
		r.ram[rtcRegB] = v
		r.hold(r.haltedByRegisters())
	default:
		r.ram[idx] = v
	}
}

// haltedByRegisters: SET, or the divider chain in reset, stops the clock.
func (r *RTC) haltedByRegisters() bool {
	return r.ram[rtcRegB]&regBSET != 0 || r.ram[rtcRegA]>>regADVShift&regADVMask >= regADVReset
}

// hold stops or restarts the clock at the time it shows.
func (r *RTC) hold(stop bool) {
	switch {
	case stop && !r.held:
		t := r.now()
		r.heldAt, r.heldNsec = fieldsOf(t), t.Nanosecond()
	case !stop && r.held:
		r.offset = r.heldAt.time(0).Unix() - r.clock().Unix()
	}
	r.held = stop
}

// now is the time the clock shows.
func (r *RTC) now() time.Time {
	if r.held {
		return r.heldAt.time(r.heldNsec)
	}
	h := r.clock()
	return time.Unix(h.Unix()+r.offset, int64(h.Nanosecond())).UTC()
}

func (r *RTC) inUIPWindow() bool {
	return time.Duration(r.clock().Nanosecond()) >= time.Second-uipWindow
}

func (r *RTC) binary() bool { return r.ram[rtcRegB]&regBDM != 0 }

// timeField shows one field of t in the current data and hour modes.
func (r *RTC) timeField(idx uint8, t time.Time) uint8 {
	switch idx {
	case rtcSeconds:
		return r.encode(t.Second())
	case rtcMinutes:
		return r.encode(t.Minute())
	case rtcHours:
		h := t.Hour()
		if r.ram[rtcRegB]&regB24 != 0 {
			return r.encode(h)
		}
		h12 := h % 12
		if h12 == 0 {
			h12 = 12
		}
		v := r.encode(h12)
		if h >= 12 {
			v |= hoursPM
		}
		return v
	case rtcDayOfWeek:
		return r.encode(int(t.Weekday()) + 1)
	case rtcDayOfMonth:
		return r.encode(t.Day())
	case rtcMonth:
		return r.encode(int(t.Month()))
	case rtcYear:
		return r.encode(mod(t.Year(), 100))
	default: // CMOSCentury
		return r.encode(floorDiv(t.Year(), 100))
	}
}

// setTimeField sets one field of the clock to the guest's value.
func (r *RTC) setTimeField(idx uint8, v uint8) {
	t := r.now()
	f := fieldsOf(t)
	if r.held {
		f = r.heldAt
	}
	y, mo, d, h, mi, s := f.year, f.month, f.day, f.h, f.min, f.sec
	switch idx {
	case rtcSeconds:
		s = r.decode(v)
	case rtcMinutes:
		mi = r.decode(v)
	case rtcHours:
		if r.ram[rtcRegB]&regB24 != 0 {
			h = r.decode(v)
		} else {
			h = r.decode(v&^hoursPM) % 12
			if v&hoursPM != 0 {
				h += 12
			}
		}
	case rtcDayOfMonth:
		d = r.decode(v)
	case rtcMonth:
		mo = time.Month(r.decode(v))
	case rtcYear:
		y = floorDiv(y, 100)*100 + r.decode(v)
	case CMOSCentury:
		y = r.decode(v)*100 + mod(y, 100)
	}
	if r.held {
		r.heldAt = clockFields{y, mo, d, h, mi, s}
		return
	}
	nt := time.Date(y, mo, d, h, mi, s, t.Nanosecond(), time.UTC)
	r.offset += nt.Unix() - t.Unix()
}

// encode shows v in the current data mode: binary (mod 256) or BCD (mod
// 100).
func (r *RTC) encode(v int) uint8 {
	if r.binary() {
		return uint8(mod(v, 256))
	}
	v = mod(v, 100)
	return uint8(v/10<<4 | v%10)
}

// decode reads a guest's byte in the current data mode; BCD digits above
// 9 count as their value (0x1F is 25).
func (r *RTC) decode(b uint8) int {
	if r.binary() {
		return int(b)
	}
	return int(b>>4)*10 + int(b&0xf)
}

func mod(a, m int) int { return (a%m + m) % m }

func floorDiv(a, m int) int { return (a - mod(a, m)) / m }
