package devices

import (
	"testing"
	"time"
)

func newTestRTC(t time.Time) (*RTC, *fakeClock) {
	c := &fakeClock{t}
	return NewRTC(c.now), c
}

func rtcRead(r *RTC, idx uint8) uint8 {
	r.Out(RTCPort, 1, uint32(idx))
	return uint8(r.In(RTCPort+1, 1))
}

func rtcWrite(r *RTC, idx, v uint8) {
	r.Out(RTCPort, 1, uint32(idx))
	r.Out(RTCPort+1, 1, uint32(v))
}

type rtcTime struct{ sec, min, hour, dow, dom, month, year, century uint8 }

func rtcReadTime(r *RTC) rtcTime {
	return rtcTime{rtcRead(r, rtcSeconds), rtcRead(r, rtcMinutes), rtcRead(r, rtcHours), rtcRead(r, rtcDayOfWeek),
		rtcRead(r, rtcDayOfMonth), rtcRead(r, rtcMonth), rtcRead(r, rtcYear), rtcRead(r, CMOSCentury)}
}

var monday = time.Date(2026, time.November, 30, 21, 45, 7, 500_000_000, time.UTC)

func TestRTCShowsTheHostClockInBCDAnd24HoursAfterReset(t *testing.T) {
	r, _ := newTestRTC(monday)
	want := rtcTime{0x07, 0x45, 0x21, 2 /* Monday */, 0x30, 0x11, 0x26, 0x20}
	if got := rtcReadTime(r); got != want {
		t.Errorf("time registers %+v, want %+v", got, want)
	}
	for idx, want := range map[uint8]uint8{rtcRegA: 0x26, rtcRegB: 0x02, rtcRegC: 0, rtcRegD: 0x80} {
		if got := rtcRead(r, idx); got != want {
			t.Errorf("register %#x = %#02x, want %#02x", idx, got, want)
		}
	}
}

func TestRTCShowsUTCWhateverTheClocksLocation(t *testing.T) {
	r, _ := newTestRTC(monday.In(time.FixedZone("UTC+9", 9*3600)))
	if got := rtcRead(r, rtcHours); got != 0x21 {
		t.Errorf("hours %#02x, want 0x21 (UTC)", got)
	}
}

func TestRTCFollowsTheHostClock(t *testing.T) {
	r, c := newTestRTC(monday)
	c.add(3*time.Second + 14*time.Minute)
	if s, m := rtcRead(r, rtcSeconds), rtcRead(r, rtcMinutes); s != 0x10 || m != 0x59 {
		t.Errorf("after 14m3s: %02x:%02x, want 59:10", m, s)
	}
	c.add(time.Hour * 27)
	if d, h := rtcRead(r, rtcDayOfMonth), rtcRead(r, rtcHours); d != 0x02 || h != 0x00 || rtcRead(r, rtcMonth) != 0x12 {
		t.Errorf("a day and 3 hours later: day %02x hour %02x", d, h)
	}
}

func TestRTCBinaryAnd12HourModes(t *testing.T) {
	r, c := newTestRTC(monday)
	rtcWrite(r, rtcRegB, regBDM|regB24) // binary, 24 h
	if got := rtcReadTime(r); got != (rtcTime{7, 45, 21, 2, 30, 11, 26, 20}) {
		t.Errorf("binary: %+v", got)
	}
	for _, c2 := range []struct {
		regB uint8
		hour int
		want uint8
	}{
		{0, 21, 0x89},           // BCD 12 h: 9 PM
		{0, 0, 0x12},            // midnight is 12 AM
		{0, 12, 0x92},           // noon is 12 PM
		{0, 1, 0x01},            // 1 AM
		{regBDM, 23, 0x80 | 11}, // binary 12 h: 11 PM
		{regBDM, 0, 12},         // binary midnight
		{regBDM | regB24, 0, 0}, // binary 24 h
		{regB24, 9, 0x09},       // BCD 24 h
	} {
		c.t = time.Date(2026, 1, 1, c2.hour, 0, 0, 0, time.UTC)
		rtcWrite(r, rtcRegB, c2.regB)
		if got := rtcRead(r, rtcHours); got != c2.want {
			t.Errorf("register B %#02x, %d:00: hours %#02x, want %#02x", c2.regB, c2.hour, got, c2.want)
		}
	}
}

func TestRTCUpdateInProgressInTheLast244Microseconds(t *testing.T) {
	r, c := newTestRTC(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	for _, cc := range []struct {
		ns  int
		uip bool
	}{{0, false}, {500_000_000, false}, {999_755_999, false}, {999_756_000, true}, {999_999_999, true}} {
		c.t = time.Date(2026, 1, 1, 0, 0, 0, cc.ns, time.UTC)
		if got := rtcRead(r, rtcRegA)&regAUIP != 0; got != cc.uip {
			t.Errorf("at %d ns: UIP %v, want %v", cc.ns, got, cc.uip)
		}
	}
	// While SET is 1 there is no update to be in progress.
	rtcWrite(r, rtcRegB, regBSET|regB24)
	if rtcRead(r, rtcRegA)&regAUIP != 0 {
		t.Error("UIP with SET")
	}
	// UIP is read-only.
	rtcWrite(r, rtcRegB, regB24)
	c.t = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	rtcWrite(r, rtcRegA, 0xa6)
	if got := rtcRead(r, rtcRegA); got != 0x26 {
		t.Errorf("register A %#02x after writing 0xA6, want 0x26", got)
	}
}

// TestRTCSetTheTimeTheWayFirmwareDoes: SET, the registers, SET clear; the
// clock stands still meanwhile and runs on from the set time.
func TestRTCSetTheTimeTheWayFirmwareDoes(t *testing.T) {
	r, c := newTestRTC(monday)
	rtcWrite(r, rtcRegB, regBSET|regB24)
	for _, f := range []struct{ idx, v uint8 }{{CMOSCentury, 0x19}, {rtcYear, 0x99}, {rtcMonth, 0x12}, {rtcDayOfMonth, 0x31},
		{rtcHours, 0x23}, {rtcMinutes, 0x59}, {rtcSeconds, 0x58}} {
		rtcWrite(r, f.idx, f.v)
	}
	c.add(time.Hour)
	if got := rtcReadTime(r); got != (rtcTime{0x58, 0x59, 0x23, 6 /* Friday */, 0x31, 0x12, 0x99, 0x19}) {
		t.Errorf("held: %+v", got)
	}
	rtcWrite(r, rtcRegB, regB24)
	c.add(2 * time.Second)
	if got := rtcReadTime(r); got != (rtcTime{0x00, 0x00, 0x00, 7 /* Saturday */, 0x01, 0x01, 0x00, 0x20}) {
		t.Errorf("two seconds after 1999-12-31 23:59:58: %+v", got)
	}
	c.add(365 * 24 * time.Hour)
	if rtcRead(r, rtcYear) != 0x00 || rtcRead(r, rtcMonth) != 0x12 || rtcRead(r, rtcDayOfMonth) != 0x31 {
		t.Error("the set clock does not keep running with the host's")
	}
}

func TestRTCFieldWrittenWhileRunningMovesOnlyThatField(t *testing.T) {
	r, c := newTestRTC(monday)
	rtcWrite(r, rtcMinutes, 0x00)
	c.add(time.Second)
	if got := rtcReadTime(r); got != (rtcTime{0x08, 0x00, 0x21, 2, 0x30, 0x11, 0x26, 0x20}) {
		t.Errorf("after setting minutes to 0: %+v", got)
	}
	rtcWrite(r, rtcRegB, regB24|regBDM)
	rtcWrite(r, rtcYear, 99)
	rtcWrite(r, CMOSCentury, 20)
	if rtcRead(r, rtcYear) != 99 || rtcRead(r, CMOSCentury) != 20 {
		t.Errorf("year %d century %d", rtcRead(r, rtcYear), rtcRead(r, CMOSCentury))
	}
}

func TestRTC12HourWrites(t *testing.T) {
	r, _ := newTestRTC(monday)
	rtcWrite(r, rtcRegB, 0) // BCD, 12 h
	for _, c := range []struct{ write, want24 uint8 }{{0x12, 0x00}, {0x92, 0x12}, {0x81, 0x13}, {0x11, 0x11}} {
		rtcWrite(r, rtcHours, c.write)
		rtcWrite(r, rtcRegB, regB24)
		if got := rtcRead(r, rtcHours); got != c.want24 {
			t.Errorf("12-hour %#02x is %#02x in 24-hour, want %#02x", c.write, got, c.want24)
		}
		rtcWrite(r, rtcRegB, 0)
	}
}

func TestRTCDividerResetHoldsTheClock(t *testing.T) {
	r, c := newTestRTC(monday)
	rtcWrite(r, rtcRegA, 0x70)
	c.add(5 * time.Second)
	if rtcRead(r, rtcSeconds) != 0x07 {
		t.Error("clock ran with the divider in reset")
	}
	rtcWrite(r, rtcRegA, 0x26)
	c.add(5 * time.Second)
	if got := rtcRead(r, rtcSeconds); got != 0x12 {
		t.Errorf("seconds %#02x after restarting, want 0x12", got)
	}
}

func TestRTCOutOfRangeValuesCarryLikeACalendar(t *testing.T) {
	r, _ := newTestRTC(monday)
	rtcWrite(r, rtcMonth, 0x13) // month 13 of 2026: January 2027
	if rtcRead(r, rtcMonth) != 0x01 || rtcRead(r, rtcYear) != 0x27 {
		t.Errorf("month 13: month %#02x year %#02x", rtcRead(r, rtcMonth), rtcRead(r, rtcYear))
	}
	rtcWrite(r, rtcSeconds, 0xff) // BCD digits 15,15: 165 s = 2:45 past the minute
	if rtcRead(r, rtcSeconds) != 0x45 || rtcRead(r, rtcMinutes) != 0x47 {
		t.Errorf("165 s: %02x:%02x", rtcRead(r, rtcMinutes), rtcRead(r, rtcSeconds))
	}
	// Year 0, month 0: December of year -1, shown mod 100.
	rtcWrite(r, CMOSCentury, 0)
	rtcWrite(r, rtcYear, 0)
	rtcWrite(r, rtcMonth, 0)
	if rtcRead(r, rtcYear) != 0x99 || rtcRead(r, CMOSCentury) != 0x99 || rtcRead(r, rtcMonth) != 0x12 {
		t.Errorf("year -1: %02x%02x-%02x", rtcRead(r, CMOSCentury), rtcRead(r, rtcYear), rtcRead(r, rtcMonth))
	}
}

func TestRTCNoInterruptsAndReadOnlyRegisters(t *testing.T) {
	r, _ := newTestRTC(monday)
	rtcWrite(r, rtcRegB, regBPIE|regBAIE|regBUIE|regBSQWE|regB24)
	if got := rtcRead(r, rtcRegB); got != regBPIE|regBAIE|regBUIE|regBSQWE|regB24 {
		t.Errorf("register B %#02x", got)
	}
	if rtcRead(r, rtcRegC) != 0 {
		t.Error("register C has flags")
	}
	rtcWrite(r, rtcRegB, regBSET|regBUIE|regB24) // SET clears UIE
	if got := rtcRead(r, rtcRegB); got != regBSET|regB24 {
		t.Errorf("register B %#02x after SET|UIE, want UIE cleared", got)
	}
	rtcWrite(r, rtcRegB, regB24)
	rtcWrite(r, rtcRegC, 0xff)
	rtcWrite(r, rtcRegD, 0x00)
	rtcWrite(r, rtcDayOfWeek, 0x05)
	if rtcRead(r, rtcRegC) != 0 || rtcRead(r, rtcRegD) != regDVRT || rtcRead(r, rtcDayOfWeek) != 2 {
		t.Errorf("C %#02x D %#02x day of week %d", rtcRead(r, rtcRegC), rtcRead(r, rtcRegD), rtcRead(r, rtcDayOfWeek))
	}
	for _, idx := range []uint8{rtcSecondsAlarm, rtcMinutesAlarm, rtcHoursAlarm} {
		rtcWrite(r, idx, 0xc0+idx)
		if rtcRead(r, idx) != 0xc0+idx {
			t.Errorf("alarm register %#x not stored", idx)
		}
	}
}

func TestCMOSRAMAndIndexPort(t *testing.T) {
	r, _ := newTestRTC(monday)
	// Linux's SMP boot writes the shutdown status byte, then restores it.
	rtcWrite(r, 0x0f, 0x0a)
	if rtcRead(r, 0x0f) != 0x0a {
		t.Error("CMOS 0x0F not stored")
	}
	// Bit 7 of the index (NMI disable) is ignored.
	r.Out(RTCPort, 1, 0x80|0x0f)
	if r.In(RTCPort+1, 1) != 0x0a {
		t.Error("index with NMI-disable does not select 0x0F")
	}
	rtcWrite(r, 0x7f, 0x5a)
	rtcWrite(r, 0x0e, 0xa5)
	if rtcRead(r, 0x7f) != 0x5a || rtcRead(r, 0x0e) != 0xa5 {
		t.Error("CMOS RAM")
	}
	if r.In(RTCPort, 1) != 0xff {
		t.Error("index port reads back")
	}
	// A 16-bit OUT to 0x70 is index then data, as the ISA bus splits it.
	r.Out(RTCPort, 2, 0x33<<8|0x40)
	if rtcRead(r, 0x40) != 0x33 {
		t.Error("16-bit OUT 0x70 did not write the data port")
	}
	r.Out(RTCPort, 1, 0x40)
	if got := r.In(RTCPort, 2); got != 0x33ff {
		t.Errorf("16-bit IN 0x70 = %#04x, want 0x33ff", got)
	}
	// A 32-bit access: ports 0x72-0x73 are not the RTC's.
	if got := r.In(RTCPort, 4); got != 0xffff33ff {
		t.Errorf("32-bit IN 0x70 = %#08x", got)
	}
}

// TestRTCAsLinuxReadsIt follows mc146818_get_time: register D bit 6 clear,
// seconds, UIP clear, seconds again, then the rest and register B.
func TestRTCAsLinuxReadsIt(t *testing.T) {
	r, c := newTestRTC(time.Date(2026, 11, 30, 21, 45, 7, 999_900_000, time.UTC))
	if rtcRead(r, rtcRegD)&0x40 != 0 {
		t.Fatal("register D bit 6 set: Linux refuses the RTC")
	}
	tries := 0
	for {
		tries++
		sec := rtcRead(r, rtcSeconds)
		if rtcRead(r, rtcRegA)&regAUIP != 0 {
			c.add(100 * time.Microsecond) // udelay(100)
			continue
		}
		if sec != rtcRead(r, rtcSeconds) {
			continue
		}
		break
	}
	if tries < 2 || rtcRead(r, rtcSeconds) != 0x08 {
		t.Errorf("%d tries, seconds %#02x", tries, rtcRead(r, rtcSeconds))
	}
}

// TestRTCFieldsSetInAnyOrder: with SET, each register holds what was
// written; a day of the month that the current month lacks (31 while the
// clock shows February) does not roll into March before the month is
// written. Each order of the seven writes gives the same time.
func TestRTCFieldsSetInAnyOrder(t *testing.T) {
	fields := []struct{ idx, v uint8 }{
		{CMOSCentury, 0x19}, {rtcYear, 0x99}, {rtcMonth, 0x12}, {rtcDayOfMonth, 0x31},
		{rtcHours, 0x23}, {rtcMinutes, 0x59}, {rtcSeconds, 0x58},
	}
	want := rtcTime{0x58, 0x59, 0x23, 6 /* Friday */, 0x31, 0x12, 0x99, 0x19}
	feb := time.Date(2026, time.February, 10, 8, 0, 0, 0, time.UTC)
	for _, order := range [][]int{{0, 1, 2, 3, 4, 5, 6}, {3, 2, 1, 0, 6, 5, 4}, {6, 5, 4, 3, 2, 1, 0}, {3, 4, 5, 6, 0, 1, 2}} {
		r, c := newTestRTC(feb)
		rtcWrite(r, rtcRegB, regBSET|regB24)
		for _, i := range order {
			rtcWrite(r, fields[i].idx, fields[i].v)
		}
		if got := rtcReadTime(r); got != want {
			t.Errorf("order %v, held: %+v, want %+v", order, got, want)
		}
		rtcWrite(r, rtcRegB, regB24)
		c.add(time.Second)
		if got := rtcReadTime(r); got != (rtcTime{0x59, 0x59, 0x23, 6, 0x31, 0x12, 0x99, 0x19}) {
			t.Errorf("order %v, a second after the set: %+v", order, got)
		}
	}
}
