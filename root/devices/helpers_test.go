package devices

import (
	"testing"
	"time"

	"gohv/hv"
)

// fakeClock is the host's wall clock, moved by the test.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }

func (c *fakeClock) add(d time.Duration) { c.t = c.t.Add(d) }

// calls counts the reboot or power-off callbacks and keeps the last reason.
type calls struct {
	n   int
	why string
}

func (c *calls) f(why string) { c.n++; c.why = why }

// fakeBus routes ports as hv's partition does: the first registered range
// that holds the access's first port gets the whole access; no device
// reads all ones.
type fakeBus struct {
	ranges []portRange
}

type portRange struct {
	base, n uint16
	dev     hv.PortDevice
}

func (b *fakeBus) AddPort(base, n uint16, dev hv.PortDevice) {
	b.ranges = append(b.ranges, portRange{base, n, dev})
}

func (b *fakeBus) dev(port uint16) hv.PortDevice {
	for _, r := range b.ranges {
		if port >= r.base && port-r.base < r.n {
			return r.dev
		}
	}
	return nil
}

func (b *fakeBus) in(port uint16, size int) uint32 {
	if d := b.dev(port); d != nil {
		return d.In(port, size) & floating(size)
	}
	return floating(size)
}

func (b *fakeBus) out(port uint16, size int, v uint32) {
	if d := b.dev(port); d != nil {
		d.Out(port, size, v&floating(size))
	}
}

// testPlatform is every device on a fake bus with a fake clock and
// counted callbacks.
type testPlatform struct {
	*Platform
	bus            fakeBus
	clock          fakeClock
	reboot, poweri calls
}

func newTestPlatform(t testing.TB) *testPlatform {
	t.Helper()
	tp := &testPlatform{clock: fakeClock{time.Date(2026, time.November, 30, 21, 45, 7, 500_000_000, time.UTC)}}
	tp.Platform = New(Config{Clock: tp.clock.now, Reboot: tp.reboot.f, PowerOff: tp.poweri.f})
	tp.Register(&tp.bus)
	return tp
}

// ports lists every port a device of the platform decodes, and the ports
// around each range.
func (tp *testPlatform) ports() []uint16 {
	var ps []uint16
	for _, r := range tp.bus.ranges {
		for p := r.base - 1; p != r.base+r.n+1; p++ {
			ps = append(ps, p)
		}
	}
	return ps
}
