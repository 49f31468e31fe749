package devices

import "sync"

// The hardware-reduced sleep registers (ACPI 6.5 4.8.3.7) gohv's FADT
// names: one byte each.
const (
	SleepControlPort = 0x600
	SleepStatusPort  = 0x601
	SleepPorts       = 2

	// S5SleepType is the SLP_TYP the DSDT's \_S5 gives and the control
	// register powers off on.
	S5SleepType = 5

	sleepControlOff = SleepControlPort - SleepControlPort
	sleepStatusOff  = SleepStatusPort - SleepControlPort

	slpTypShift = 2 // Sleep Control: SLP_TYP in bits 4:2
	slpTypMask  = 0x7
	slpEn       = 1 << 5 // Sleep Control: SLP_EN, write-only
	wakSts      = 1 << 7 // Sleep Status: WAK_STS, write 1 to clear
)

// Sleep is the Sleep Control and Sleep Status register pair of a
// hardware-reduced ACPI platform.
//
// Writing SLP_EN with SLP_TYP = S5SleepType to Sleep Control powers the
// partition off through the callback; Linux writes 0x34 (SLP_TYP 5 << 2 |
// SLP_EN) after clearing WAK_STS. SLP_EN with any other SLP_TYP is
// ignored: gohv offers no sleeping states (the DSDT has no \_S1-\_S4), so
// no guest that read the tables asks for one. Sleep Control reads back the
// last SLP_TYP with SLP_EN 0 (the bit is write-only); reserved bits read 0.
// Sleep Status reads 0: the partition never wakes from sleep, so WAK_STS
// is never set, and writing 1 to clear it does nothing. Bytes of a wider
// access outside the two ports float.
type Sleep struct {
	mu       sync.Mutex
	powerOff func(why string)
	slpTyp   uint8
	off      bool // a write asked for S5: call powerOff after unlocking
}

// WhyS5 is the power-off callback's argument.
const WhyS5 = "ACPI S5"

// NewSleep makes the registers; powerOff (nil: none) is called, on the VP's
// thread and without the device's lock, when the guest enters S5.
func NewSleep(powerOff func(why string)) *Sleep { return &Sleep{powerOff: powerOff} }

// In reads the registers. Called on a VP's thread; does not allocate.
func (s *Sleep) In(port uint16, size int) uint32 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return splitIn(s, SleepControlPort, SleepPorts, port, size)
}

// Out writes them. Called on a VP's thread; does not allocate (the
// power-off callback is the caller's).
func (s *Sleep) Out(port uint16, size int, v uint32) {
	s.mu.Lock()
	splitOut(s, SleepControlPort, SleepPorts, port, size, v)
	off := s.off
	s.off = false
	s.mu.Unlock()
	if off && s.powerOff != nil {
		s.powerOff(WhyS5)
	}
}

func (s *Sleep) inb(off uint16) uint8 {
	if off == sleepControlOff {
		return s.slpTyp << slpTypShift
	}
	return 0 // sleepStatusOff: WAK_STS is never set
}

func (s *Sleep) outb(off uint16, v uint8) {
	if off != sleepControlOff {
		return // Sleep Status: nothing to clear
	}
	s.slpTyp = v >> slpTypShift & slpTypMask
	if v&slpEn != 0 && s.slpTyp == S5SleepType {
		s.off = true
	}
}
