package devices

import "sync/atomic"

// POSTPort is where firmware writes its power-on self-test codes and
// where Linux's io_delay writes to wait an ISA bus cycle.
const POSTPort = 0x80

// POST is port 0x80: writes have no effect beyond keeping the last code
// (the low byte) for a person reading a stuck guest's state; reads float
// (all ones). Called on VP threads without a lock; does not allocate.
type POST struct{ last atomic.Uint32 }

// In floats.
func (d *POST) In(port uint16, size int) uint32 { return floating(size) }

// Out keeps the code.
func (d *POST) Out(port uint16, size int, v uint32) {
	if port == POSTPort && validSize(size) {
		d.last.Store(v & 0xff)
	}
}

// Last is the last code written.
func (d *POST) Last() uint8 { return uint8(d.last.Load()) }
