package devices

import "sync/atomic"

// PortBPort is the PC's system control port B (NMI status and control).
const PortBPort = 0x61

// Port B bits.
const (
	portBControl = 0x0f // timer 2 gate, speaker data, parity and I/O check NMI masks: read back as written
	portBTimer2  = 1 << 5
)

// PortB is port 0x61 with no PIT, speaker or NMI sources behind it. It
// reads 0x20 (timer 2's output high) plus the control bits 3:0 as last
// written. Bit 5 set keeps a guest that waits for timer 2 (Linux's
// pit_calibrate_tsc) from spinning; bits 7 and 6 (SERR, IOCHK) clear keep
// it from blaming an unclaimed NMI on the bus. Reading 0 would hang the
// first and all ones trigger the second. Bytes of a wider access beyond
// 0x61 float. Called on VP threads without a lock; does not allocate.
type PortB struct{ control atomic.Uint32 }

// In reads port B.
func (d *PortB) In(port uint16, size int) uint32 { return splitIn(d, PortBPort, 1, port, size) }

// Out writes the control bits.
func (d *PortB) Out(port uint16, size int, v uint32) { splitOut(d, PortBPort, 1, port, size, v) }

func (d *PortB) inb(uint16) uint8 { return portBTimer2 | uint8(d.control.Load()) }

func (d *PortB) outb(_ uint16, v uint8) { d.control.Store(uint32(v & portBControl)) }
