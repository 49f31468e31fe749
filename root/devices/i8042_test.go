package devices

import "testing"

func TestI8042StatusAfterReset(t *testing.T) {
	k := NewI8042(nil)
	// Input buffer empty (Linux's kb_wait), system flag, keyboard not
	// inhibited, nothing to read.
	if got := k.In(I8042CommandPort, 1); got != i8042StatusSYS|i8042StatusINH {
		t.Errorf("status %#02x", got)
	}
	if got := k.In(I8042DataPort, 1); got != 0 {
		t.Errorf("data %#02x with nothing waiting", got)
	}
}

func TestI8042ResetLine(t *testing.T) {
	for c := 0xf0; c <= 0xff; c++ {
		var rb calls
		k := NewI8042(rb.f)
		k.Out(I8042CommandPort, 1, uint32(c))
		want := c&1 == 0 // the commands that pulse bit 0
		if (rb.n == 1) != want || rb.n > 1 || want && rb.why != WhyI8042Reset {
			t.Errorf("command %#02x: %d reboots", c, rb.n)
		}
	}
	// What Linux does: wait for IBF clear, write 0xFE.
	var rb calls
	k := NewI8042(rb.f)
	if k.In(I8042CommandPort, 1)&i8042StatusIBF != 0 {
		t.Fatal("input buffer full")
	}
	k.Out(I8042CommandPort, 1, I8042CmdReset)
	if rb.n != 1 {
		t.Errorf("0xFE: %d reboots", rb.n)
	}
}

func TestI8042OutputPort(t *testing.T) {
	var rb calls
	k := NewI8042(rb.f)
	k.Out(I8042CommandPort, 1, i8042CmdReadOutputPort)
	if got := k.In(I8042DataPort, 1); got != i8042OutPortReset {
		t.Errorf("output port %#02x", got)
	}
	// A boot loader enabling A20: 0xD1, 0xDF. No reset.
	k.Out(I8042CommandPort, 1, i8042CmdWriteOutputPort)
	k.Out(I8042DataPort, 1, 0xdf)
	k.Out(I8042CommandPort, 1, i8042CmdReadOutputPort)
	if got := k.In(I8042DataPort, 1); got != 0xdf || rb.n != 0 {
		t.Errorf("output port %#02x, %d reboots", got, rb.n)
	}
	// Bit 0 written 0 asserts the reset line; it reads back deasserted.
	k.Out(I8042CommandPort, 1, i8042CmdWriteOutputPort)
	k.Out(I8042DataPort, 1, 0xfe)
	k.Out(I8042CommandPort, 1, i8042CmdReadOutputPort)
	if got := k.In(I8042DataPort, 1); rb.n != 1 || rb.why != WhyI8042Reset || got != 0xff {
		t.Errorf("output port bit 0 cleared: %d reboots, reads %#02x", rb.n, got)
	}
}

func TestI8042CommandsAnswer(t *testing.T) {
	k := NewI8042(nil)
	ask := func(cmd uint8) (uint32, bool) {
		k.Out(I8042CommandPort, 1, uint32(cmd))
		full := k.In(I8042CommandPort, 1)&i8042StatusOBF != 0
		v := k.In(I8042DataPort, 1)
		if k.In(I8042CommandPort, 1)&i8042StatusOBF != 0 {
			t.Errorf("command %#02x: output buffer still full after reading", cmd)
		}
		return v, full
	}
	for cmd, want := range map[uint8]uint32{i8042CmdSelfTest: 0x55, i8042CmdTestAux: 0, i8042CmdTestKeyboard: 0, i8042CmdReadCommandByte: 0x44} {
		if v, full := ask(cmd); !full || v != want {
			t.Errorf("command %#02x: %#02x (full %v), want %#02x", cmd, v, full, want)
		}
	}
	// Write the command byte, read it back; the system flag follows bit 2.
	k.Out(I8042CommandPort, 1, i8042CmdWriteCommandByte)
	k.Out(I8042DataPort, 1, 0x01)
	if v, _ := ask(i8042CmdReadCommandByte); v != 0x01 || k.In(I8042CommandPort, 1)&i8042StatusSYS != 0 {
		t.Errorf("command byte %#02x, status %#02x", v, k.In(I8042CommandPort, 1))
	}
	for _, c := range []struct {
		cmd  uint8
		want uint32
	}{{i8042CmdDisableKeyboard, 0x11}, {i8042CmdDisableAux, 0x31}, {i8042CmdEnableKeyboard, 0x21}, {i8042CmdEnableAux, 0x01}} {
		k.Out(I8042CommandPort, 1, uint32(c.cmd))
		if v, _ := ask(i8042CmdReadCommandByte); v != c.want {
			t.Errorf("after %#02x: command byte %#02x, want %#02x", c.cmd, v, c.want)
		}
	}
	// The data port repeats the last byte when nothing waits.
	if v := k.In(I8042DataPort, 1); v != 0x01 {
		t.Errorf("stale data %#02x", v)
	}
	// A2: the last write went to the command port.
	k.Out(I8042CommandPort, 1, 0xc0) // unknown: ignored
	if k.In(I8042CommandPort, 1)&i8042StatusA2 == 0 || k.In(I8042CommandPort, 1)&i8042StatusOBF != 0 {
		t.Error("status after an unknown command")
	}
	k.Out(I8042DataPort, 1, 0xff) // to a keyboard that is not there: dropped
	if k.In(I8042CommandPort, 1)&(i8042StatusA2|i8042StatusOBF) != 0 {
		t.Error("status after a keyboard byte")
	}
	// A command cancels one waiting for its data byte.
	k.Out(I8042CommandPort, 1, i8042CmdWriteOutputPort)
	k.Out(I8042CommandPort, 1, i8042CmdSelfTest)
	k.Out(I8042DataPort, 1, 0x00)
	if v, _ := ask(i8042CmdReadOutputPort); v != i8042OutPortReset {
		t.Errorf("output port %#02x: a cancelled 0xD1 took the data byte", v)
	}
}

func TestI8042WideAccesses(t *testing.T) {
	var rb calls
	k := NewI8042(rb.f)
	if got := k.In(I8042CommandPort, 2); got != 0xff00|i8042StatusSYS|i8042StatusINH {
		t.Errorf("16-bit status %#04x", got)
	}
	k.Out(I8042CommandPort, 4, 0xffff_ff00|I8042CmdReset)
	if rb.n != 1 {
		t.Error("the low byte of a wide write is the command")
	}
	k.Out(I8042CommandPort, 3, I8042CmdReset)
	if rb.n != 1 || k.In(I8042CommandPort, 3) != 0xffff_ffff {
		t.Error("size 3 reached the device")
	}
}
