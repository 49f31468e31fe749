package devices

import (
	"sync"
	"testing"
	"time"
)

// TestVPsRaceOnLegacyPorts: two VPs use the CMOS's index/data pair and
// CONFIG_ADDRESS at once, as two CPUs of a guest that does not lock
// around them would. The race detector checks the devices' locking; the
// invariants, their state: the shared index may send one VP's data write
// to the cell the other selected (the chip's behaviour), but only the two
// selected cells change, each holds a byte one of them wrote, and
// CONFIG_ADDRESS reads back a whole value one of them wrote.
func TestVPsRaceOnLegacyPorts(t *testing.T) {
	clock := &fakeClock{t: time.Date(2026, 12, 1, 17, 0, 0, 0, time.UTC)}
	rtc := NewRTC(clock.now)
	pci := NewPCIConfig(nil)
	const cell, rounds = 0x40, 5000
	// VP i writes bytes with its own high nibble; its CONFIG_ADDRESS
	// values have its own bus number.
	val := func(i, k int) uint8 { return uint8(0x10*(i+1) | k&0xf) }
	addr := func(i, k int) uint32 { return 0x8000_0000 | uint32(i+1)<<16 | uint32(k&0x1f)<<11 }
	ok := func(v uint8) bool { return v>>4 == 1 || v>>4 == 2 }
	okAddr := func(a uint32) bool { b := a >> 16 & 0xff; return a&0x8000_0000 != 0 && (b == 1 || b == 2) }
	// Both cells start with a VP's byte: a VP may read the other's cell
	// before that VP wrote it, and all of one VP's writes may land in the
	// other's cell.
	for i := range 2 {
		rtc.Out(RTCPort, 1, uint32(cell+i))
		rtc.Out(RTCPort+1, 1, uint32(val(i, 0)))
	}
	var before [cmosSize]byte
	for i := range before {
		rtc.Out(RTCPort, 1, uint32(i))
		before[i] = uint8(rtc.In(RTCPort+1, 1))
	}
	var wg sync.WaitGroup
	errs := make(chan string, 8)
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range rounds {
				rtc.Out(RTCPort, 1, uint32(cell+i))
				rtc.Out(RTCPort+1, 1, uint32(val(i, k)))
				rtc.Out(RTCPort, 1, uint32(cell+i))
				if v := uint8(rtc.In(RTCPort+1, 1)); !ok(v) {
					errs <- "a CMOS read of a selected cell returned a byte no VP wrote"
					return
				}
				pci.Out(PCIConfigAddress, 4, addr(i, k))
				if a := pci.In(PCIConfigAddress, 4); !okAddr(a) {
					errs <- "CONFIG_ADDRESS read back a value no VP wrote"
					return
				}
				if d := pci.In(PCIConfigData, 4); d != 0xffff_ffff {
					errs <- "a configuration read found a device"
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	for i := range before {
		rtc.Out(RTCPort, 1, uint32(i))
		v := uint8(rtc.In(RTCPort+1, 1))
		switch {
		case i == cell || i == cell+1:
			if !ok(v) {
				t.Errorf("CMOS %#x: %#x, which no VP wrote", i, v)
			}
		case v != before[i]:
			t.Errorf("CMOS %#x, which no VP selected: %#x, was %#x", i, v, before[i])
		}
	}
}
