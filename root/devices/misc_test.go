package devices

import "testing"

func TestPortBReads0x20AndControlBits(t *testing.T) {
	var d PortB
	if got := d.In(PortBPort, 1); got != 0x20 {
		t.Errorf("port B %#02x, want 0x20", got)
	}
	d.Out(PortBPort, 1, 0xff)
	if got := d.In(PortBPort, 1); got != 0x2f {
		t.Errorf("port B after 0xFF: %#02x, want 0x2F (no SERR/IOCHK)", got)
	}
	// Linux's pit_calibrate_tsc: gate on, speaker off, then wait for bit 5.
	d.Out(PortBPort, 1, d.In(PortBPort, 1)&^0x02|0x01)
	if d.In(PortBPort, 1)&0x20 == 0 {
		t.Error("timer 2 output low")
	}
	if got := d.In(PortBPort, 2); got != 0xff2d {
		t.Errorf("16-bit port B %#04x", got)
	}
}

func TestPOSTKeepsTheLastCode(t *testing.T) {
	var d POST
	d.Out(POSTPort, 1, 0x5a)
	d.Out(POSTPort, 2, 0x12a5)
	if d.Last() != 0xa5 || d.In(POSTPort, 1) != 0xff || d.In(POSTPort, 4) != 0xffff_ffff {
		t.Errorf("last %#02x", d.Last())
	}
}

func TestSleepControlPowersOffOnS5(t *testing.T) {
	for _, c := range []struct {
		v   uint8
		off bool
	}{
		{5<<2 | slpEn, true}, // 0x34, what Linux writes
		{0xff, false},        // SLP_TYP 7
		{5 << 2, false},      // no SLP_EN
		{slpEn, false},       // S0
		{1<<2 | slpEn, false},
		{3<<2 | slpEn, false},
		{0xc0 | 5<<2 | slpEn | 0x03, true}, // reserved bits do not matter
	} {
		var po calls
		s := NewSleep(po.f)
		s.Out(SleepStatusPort, 1, wakSts) // clear WAK_STS first, as Linux does
		s.Out(SleepControlPort, 1, uint32(c.v))
		if (po.n == 1) != c.off || po.n > 1 || c.off && po.why != WhyS5 {
			t.Errorf("sleep control %#02x: %d power-offs", c.v, po.n)
		}
		if got := s.In(SleepControlPort, 1); got != uint32(c.v>>2&7)<<2 {
			t.Errorf("sleep control %#02x reads %#02x", c.v, got)
		}
		if s.In(SleepStatusPort, 1) != 0 {
			t.Error("WAK_STS set")
		}
	}
	// A 16-bit write covers both registers, control first.
	var po calls
	s := NewSleep(po.f)
	s.Out(SleepControlPort, 2, wakSts<<8|5<<2|slpEn)
	if po.n != 1 {
		t.Error("16-bit write of 0x34 to sleep control")
	}
	if got := s.In(SleepControlPort, 4); got != 0xffff_0014 {
		t.Errorf("32-bit read %#08x", got)
	}
	NewSleep(nil).Out(SleepControlPort, 1, 0x34)
}
