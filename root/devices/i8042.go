package devices

import "sync"

// The 8042 keyboard controller's ports.
const (
	I8042DataPort    = 0x60 // output buffer (read), input buffer data (write)
	I8042CommandPort = 0x64 // status (read), command (write)
)

// 8042 status register bits.
const (
	i8042StatusOBF = 1 << 0 // output buffer full: a byte waits at 0x60
	i8042StatusIBF = 1 << 1 // input buffer full: always 0, each byte is taken at once
	i8042StatusSYS = 1 << 2 // system flag, a copy of command byte bit 2
	i8042StatusA2  = 1 << 3 // the last write went to the command port
	i8042StatusINH = 1 << 4 // 1: keyboard not inhibited
)

// Controller commands (written to 0x64).
const (
	i8042CmdReadCommandByte  = 0x20
	i8042CmdWriteCommandByte = 0x60 // the next data byte is the command byte
	i8042CmdDisableAux       = 0xa7
	i8042CmdEnableAux        = 0xa8
	i8042CmdTestAux          = 0xa9
	i8042CmdSelfTest         = 0xaa
	i8042CmdTestKeyboard     = 0xab
	i8042CmdDisableKeyboard  = 0xad
	i8042CmdEnableKeyboard   = 0xae
	i8042CmdReadOutputPort   = 0xd0
	i8042CmdWriteOutputPort  = 0xd1 // the next data byte is the output port
	i8042CmdPulseOutputPort  = 0xf0 // 0xF0-0xFF: pulse the output port bits 3:0 that are 0
	// I8042CmdReset pulses bit 0, the CPU reset line: what Linux writes.
	I8042CmdReset = 0xfe

	i8042SelfTestOK      = 0x55
	i8042InterfaceTestOK = 0x00
)

// Command byte and output port bits.
const (
	i8042CCBSystem          = 1 << 2
	i8042CCBDisableKeyboard = 1 << 4
	i8042CCBDisableAux      = 1 << 5
	i8042CCBTranslate       = 1 << 6

	i8042OutResetLine = 1 << 0 // 0 asserts the CPU reset line
	i8042OutA20       = 1 << 1

	i8042CCBReset     = i8042CCBSystem | i8042CCBTranslate
	i8042OutPortReset = i8042OutResetLine | i8042OutA20
)

// I8042 is the keyboard controller with nothing plugged in: the minimum
// of an 8042 a guest reaches for its reset line.
//
// Status (0x64) reads output-buffer-full when an answer waits, input
// buffer empty always, the system flag, the command/data flag and
// "keyboard not inhibited". Commands: 0x20/0x60 read and write the
// command byte, 0xAA answers 0x55, 0xA9 and 0xAB answer 0x00 (interface
// good), 0xA7/0xA8/0xAD/0xAE set the port-disable bits, 0xD0/0xD1 read and
// write the output port, and 0xF0-0xFF pulse output port lines: one that
// pulses bit 0 (0xFE among them), or an output port write with bit 0
// clear, asserts the CPU reset line and calls the reboot callback. Every
// other command is ignored; data written with no command pending would go
// to a keyboard, and there is none, so it is dropped. Reading 0x60 takes
// the waiting answer, or returns the last one again (0 at first). The A20
// bit of the output port is stored and has no effect: partition memory has
// no A20 gate.
//
// Linux never probes it: gohv's FADT clears the "8042 present" boot flag
// and the DSDT names no PNP0303/PNP0F13, so i8042 gives up without touching
// a port ("absent" as Linux accepts it). Its reboot path does not ask the
// driver: it waits for input-buffer-empty at 0x64 and writes 0xFE there.
type I8042 struct {
	mu         sync.Mutex
	reboot     func(why string)
	commandB   uint8
	outputPort uint8
	out        uint8 // the output buffer
	full       bool  // out waits to be read
	pending    uint8 // a command waiting for its data byte, 0 for none
	lastCmd    bool  // the last write was to the command port
}

// WhyI8042Reset is the reboot callback's argument when the guest pulses
// the 8042's reset line.
const WhyI8042Reset = "i8042 reset line"

// NewI8042 makes the controller; reboot (nil: none) is called, on the VP's
// thread and without the device's lock, when the guest asserts the reset
// line.
func NewI8042(reboot func(why string)) *I8042 {
	return &I8042{reboot: reboot, commandB: i8042CCBReset, outputPort: i8042OutPortReset}
}

// In reads the data port or the status register; a wider access reads
// only its first port, the rest float. Called on a VP's thread; does not
// allocate.
func (k *I8042) In(port uint16, size int) uint32 {
	if !validSize(size) {
		return floating(size)
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	var b uint8
	switch port {
	case I8042DataPort:
		b = k.out
		k.full = false
	case I8042CommandPort:
		b = k.status()
	default:
		return floating(size)
	}
	return floating(size)&^0xff | uint32(b)
}

// Out writes a command or a data byte (the low byte of a wider access).
// Called on a VP's thread; does not allocate (the reboot callback is the
// caller's).
func (k *I8042) Out(port uint16, size int, v uint32) {
	if !validSize(size) {
		return
	}
	k.mu.Lock()
	var reset bool
	switch port {
	case I8042DataPort:
		reset = k.data(uint8(v))
	case I8042CommandPort:
		reset = k.command(uint8(v))
	}
	k.mu.Unlock()
	if reset && k.reboot != nil {
		k.reboot(WhyI8042Reset)
	}
}

func (k *I8042) status() uint8 {
	s := uint8(i8042StatusINH)
	if k.full {
		s |= i8042StatusOBF
	}
	if k.commandB&i8042CCBSystem != 0 {
		s |= i8042StatusSYS
	}
	if k.lastCmd {
		s |= i8042StatusA2
	}
	return s
}

func (k *I8042) answer(b uint8) { k.out, k.full = b, true }

// command runs a controller command; it reports whether the reset line
// was pulsed.
func (k *I8042) command(c uint8) bool {
	k.lastCmd = true
	k.pending = 0
	switch {
	case c == i8042CmdReadCommandByte:
		k.answer(k.commandB)
	case c == i8042CmdWriteCommandByte, c == i8042CmdWriteOutputPort:
		k.pending = c
	case c == i8042CmdDisableAux:
		k.commandB |= i8042CCBDisableAux
	case c == i8042CmdEnableAux:
		k.commandB &^= i8042CCBDisableAux
	case c == i8042CmdTestAux, c == i8042CmdTestKeyboard:
		k.answer(i8042InterfaceTestOK)
	case c == i8042CmdSelfTest:
		k.answer(i8042SelfTestOK)
	case c == i8042CmdDisableKeyboard:
		k.commandB |= i8042CCBDisableKeyboard
	case c == i8042CmdEnableKeyboard:
		k.commandB &^= i8042CCBDisableKeyboard
	case c == i8042CmdReadOutputPort:
		k.answer(k.outputPort)
	case c >= i8042CmdPulseOutputPort:
		return c&i8042OutResetLine == 0
	}
	return false
}

// data takes a byte written to 0x60; it reports whether the reset line
// was asserted.
func (k *I8042) data(b uint8) bool {
	k.lastCmd = false
	c := k.pending
	k.pending = 0
	switch c {
	case i8042CmdWriteCommandByte:
		k.commandB = b
	case i8042CmdWriteOutputPort:
		k.outputPort = b | i8042OutResetLine // the line is pulsed, not held
		return b&i8042OutResetLine == 0
	}
	return false
}
