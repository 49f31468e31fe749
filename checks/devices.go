package checks

import (
	"time"

	"gohv/hv"
)

const mmioBase = 0xc000_0000

// testDevice is 4 KiB of device memory behind MMIO.
type testDevice struct {
	mem      [4096]byte
	accesses int
}

func (d *testDevice) ReadMMIO(off uint64, b []byte) {
	d.accesses++
	copy(b, d.mem[off:])
}

func (d *testDevice) WriteMMIO(off uint64, b []byte) {
	d.accesses++
	copy(d.mem[off:], b)
}

// irqDevice lets the interrupt test guest ask for interrupts: a write to
// port 0xe1 queues vector 0x30 now, to 0xe2 vector 0x31 after 20 ms.
type irqDevice struct{ vp *hv.VP }

func (d irqDevice) In(port uint16, size int) uint32 { return 0 }
func (d irqDevice) Out(port uint16, size int, v uint32) {
	if port == 0xe1 {
		d.vp.Interrupt(0x30)
		return
	}
	go func() {
		time.Sleep(20 * time.Millisecond)
		d.vp.Interrupt(0x31)
	}()
}
