package passthrough

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"gohv/iommu"
)

// fakeRemap is a Remapper that records its entries.
type fakeRemap struct {
	fakeUnit
	freed []iommu.Interrupt
}

func (r *fakeRemap) EnableInterruptRemapping() error    { return nil }
func (r *fakeRemap) InterruptRemapping() (bool, string) { return true, "" }
func (r *fakeRemap) FreeInterrupt(in iommu.Interrupt) error {
	r.freed = append(r.freed, in)
	return nil
}
func (r *fakeRemap) AllocInterrupt(s uint16, t iommu.Target) (iommu.Interrupt, error) {
	return iommu.Interrupt{Source: s, Index: 5, Target: t, Address: 0xfee0_00b8, Data: 0}, nil
}

// fakeSink records the messages sent into the partition and refuses
// addresses outside the interrupt window, as hv's does.
type fakeSink struct{ got [][2]uint64 }

func (s *fakeSink) SignalMSI(addr uint64, data uint32) error {
	if addr>>20 != 0xfee {
		return fmt.Errorf("address %#x is not an MSI address", addr)
	}
	s.got = append(s.got, [2]uint64{addr, uint64(data)})
	return nil
}

var hostEntry = iommu.Interrupt{Source: eduSource, Index: 5, Target: iommu.Target{APICID: 0, Vector: 0x23}, Address: 0xfee0_00b8}

func routedEdu(t *testing.T, pvm bool) (*Device, *fakeConfig, *fakeRemap, *fakeSink) {
	t.Helper()
	c, r, s := newFakeConfig(false), &fakeRemap{}, &fakeSink{}
	if pvm {
		c.space[0x40/4] |= msiPVM << 16
	}
	d, err := Assign(r, &fakeGuest{}, Function{Name: "00:03.0", Source: eduSource, Config: c, BARs: []BAR{{Index: 0, Base: eduBAR, Size: 1 << 20}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.RouteMSI(r, hostEntry, s); err != nil {
		t.Fatal(err)
	}
	return d, c, r, s
}

// TestRouteMSIProgramsHost: the host capability holds the remapping
// entry's message, enabled with one vector; the guest's shadow still
// reads disabled and empty, and its writes never reach the host.
func TestRouteMSIProgramsHost(t *testing.T) {
	d, c, _, _ := routedEdu(t, false)
	if c.space[0x40/4] != 0x0081_0005 || c.space[0x44/4] != 0xfee0_00b8 || c.space[0x48/4] != 0 || c.space[0x4c/4]&0xffff != 0 {
		t.Fatalf("host MSI %#x %#x %#x %#x", c.space[0x40/4], c.space[0x44/4], c.space[0x48/4], c.space[0x4c/4])
	}
	if d.ReadConfig(0x40) != 0x0080_0005 || d.ReadConfig(0x44) != 0 {
		t.Fatalf("guest MSI %#x %#x", d.ReadConfig(0x40), d.ReadConfig(0x44))
	}
	d.WriteConfig(0x44, 0xfed0_0000, 0xffff_ffff)
	d.WriteConfig(0x4c, 0x0500, 0xffff)
	d.WriteConfig(0x40, 0, 0xffff_0000)
	if c.space[0x40/4] != 0x0081_0005 || c.space[0x44/4] != 0xfee0_00b8 || c.space[0x4c/4]&0xffff != 0 {
		t.Fatalf("the guest's writes reached the host: %#x %#x %#x", c.space[0x40/4], c.space[0x44/4], c.space[0x4c/4])
	}
}

// TestInterruptDeliversGuestMessage: the host vector's interrupts are
// dropped while the guest's MSI is off, then sent as the guest
// programmed them, following its reprogramming; a message that is not
// one is refused and counted.
func TestInterruptDeliversGuestMessage(t *testing.T) {
	d, _, _, s := routedEdu(t, false)
	if err := d.Interrupt(); err != nil || len(s.got) != 0 || d.MSIStats().Disabled != 1 {
		t.Fatalf("disabled: %v %v %+v", err, s.got, d.MSIStats())
	}
	d.WriteConfig(0x44, 0xfee0_0000, 0xffff_ffff)
	d.WriteConfig(0x4c, 0x30, 0xffff)
	d.WriteConfig(0x40, msiEnable<<16, 0xffff_0000)
	if err := d.Interrupt(); err != nil || len(s.got) != 1 || s.got[0] != [2]uint64{0xfee0_0000, 0x30} {
		t.Fatalf("enabled: %v %#x", err, s.got)
	}
	d.WriteConfig(0x44, 0xfee0_1000, 0xffff_ffff) // to APIC ID 1
	d.WriteConfig(0x4c, 0x31, 0xffff)
	if err := d.Interrupt(); err != nil || s.got[1] != [2]uint64{0xfee0_1000, 0x31} {
		t.Fatalf("reprogrammed: %v %#x", err, s.got)
	}
	d.WriteConfig(0x44, 0xfed0_0000, 0xffff_ffff)
	if err := d.Interrupt(); err == nil || d.MSIStats().Invalid != 1 {
		t.Fatalf("invalid message: %v %+v", err, d.MSIStats())
	}
	if st := d.MSIStats(); st.Delivered != 2 {
		t.Fatalf("stats %+v", st)
	}
}

// TestInterruptMaskedIsHeld: with per-vector masking, an interrupt while
// the guest masks vector 0 is held and sent by the write that unmasks it.
func TestInterruptMaskedIsHeld(t *testing.T) {
	d, c, _, s := routedEdu(t, true)
	if c.space[0x50/4] != 0 {
		t.Fatalf("host mask %#x", c.space[0x50/4])
	}
	d.WriteConfig(0x44, 0xfee0_0000, 0xffff_ffff)
	d.WriteConfig(0x4c, 0x30, 0xffff)
	d.WriteConfig(0x50, 1, 0xffff_ffff) // mask
	d.WriteConfig(0x40, msiEnable<<16, 0xffff_0000)
	if err := d.Interrupt(); err != nil || len(s.got) != 0 || d.MSIStats().Pending != 1 {
		t.Fatalf("masked: %v %v %+v", err, s.got, d.MSIStats())
	}
	d.WriteConfig(0x50, 0, 0xffff_ffff)
	if len(s.got) != 1 || s.got[0] != [2]uint64{0xfee0_0000, 0x30} {
		t.Fatalf("unmasked: %#x", s.got)
	}
	d.WriteConfig(0x50, 0, 0xffff_ffff)
	if len(s.got) != 1 {
		t.Fatalf("sent twice: %#x", s.got)
	}
}

// TestRouteMSIRefusals and release: another device's entry, a second
// route, a function without MSI; Release disables the host's MSI and
// frees the entry, after which interrupts are ignored.
func TestRouteMSIRefusals(t *testing.T) {
	d, c, r, s := routedEdu(t, false)
	if err := d.RouteMSI(r, hostEntry, s); err == nil {
		t.Error("routed twice")
	}
	c2 := newFakeConfig(false)
	c2.space[1] &^= statusCaps << 16
	d2, err := Assign(&fakeRemap{}, &fakeGuest{}, Function{Name: "nomsi", Source: eduSource, Config: c2})
	if err != nil {
		t.Fatal(err)
	}
	if err := d2.RouteMSI(r, hostEntry, s); !errors.Is(err, ErrNoMSI) {
		t.Errorf("no MSI: %v", err)
	}
	d3, _, _, _ := assignEdu(t, false)
	if err := d3.RouteMSI(r, iommu.Interrupt{Source: 0x20}, s); err == nil {
		t.Error("another device's entry routed")
	}
	if _, err := d.Release(); err != nil {
		t.Fatal(err)
	}
	if c.space[0x40/4]>>16&msiEnable != 0 || len(r.freed) != 1 || r.freed[0] != hostEntry {
		t.Fatalf("after release: control %#x, freed %+v", c.space[0x40/4], r.freed)
	}
	if err := d.Interrupt(); err != nil || len(s.got) != 0 {
		t.Fatalf("interrupt after release: %v %v", err, s.got)
	}
}

// FuzzRoutedMSI: with the function's MSI routed, any sequence of guest
// configuration accesses and host interrupts leaves the host's MSI
// capability as RouteMSI programmed it (the remapping entry's message,
// enabled), writes nothing else but the command register, and sends
// into the partition only messages the sink accepted.
func FuzzRoutedMSI(f *testing.F) {
	f.Add([]byte{0x44, 0, 0, 0xe0, 0xfe, 0xf, 0x4c, 0x30, 0, 0, 0, 0x3, 0x40, 0, 0, 1, 0, 0xc, 0, 0, 0, 0, 0, 0x40})
	f.Add([]byte{0x50, 1, 0, 0, 0, 0xf, 0x40, 0, 0, 1, 1, 0xc, 0, 0, 0, 0, 0, 0x40, 0x50, 0, 0, 0, 0, 0xf})
	f.Fuzz(func(t *testing.T, ops []byte) {
		d, c, _, s := routedEdu(t, len(ops)%2 == 1)
		saved := append([]uint32(nil), c.space[0x40/4:0x58/4]...)
		c.writes = nil
		for len(ops) >= 6 {
			reg, v, mask := ops[0], uint32(ops[1])|uint32(ops[2])<<8|uint32(ops[3])<<16|uint32(ops[4])<<24, uint32(0)
			for i := range 4 {
				if ops[5]>>i&1 != 0 {
					mask |= 0xff << (8 * i)
				}
			}
			switch {
			case ops[5]&0x40 != 0:
				d.Interrupt()
			case ops[5]&0x80 != 0:
				d.ReadConfig(reg)
			default:
				d.WriteConfig(reg, v, mask)
			}
			ops = ops[6:]
		}
		for _, w := range c.writes {
			if w[:4] != "0x4=" {
				t.Fatalf("host write %s", w)
			}
		}
		for i, w := range saved {
			if c.space[0x40/4+i] != w {
				t.Fatalf("host MSI dword %d: %#x, was %#x", i, c.space[0x40/4+i], w)
			}
		}
		for _, m := range s.got {
			if m[0]>>20 != 0xfee {
				t.Fatalf("sent %#x", m)
			}
		}
		st := d.MSIStats()
		if st.Delivered != len(s.got) {
			t.Fatalf("stats %+v, %d sent", st, len(s.got))
		}
	})
}

// TestServeDeliversEachInterrupt: every interrupt the host vector counts
// becomes one delivery, including several counted between two waits, and
// closing quit ends it.
func TestServeDeliversEachInterrupt(t *testing.T) {
	d, _, _, s := routedEdu(t, false)
	d.WriteConfig(0x44, 0xfee0_0000, 0xffff_ffff)
	d.WriteConfig(0x4c, 0x30, 0xffff)
	d.WriteConfig(0x40, msiEnable<<16, 0xffff_0000)
	var count uint32 = 7
	fired := make(chan uint32)
	waits := make(chan struct{}, 16)
	v := HostVector{
		Count: func() uint32 { return 7 },
		Wait: func(seen uint32, _ time.Duration) (uint32, error) {
			waits <- struct{}{}
			select {
			case n := <-fired:
				count = n
			case <-time.After(time.Millisecond):
			}
			return count, nil
		},
	}
	quit, done := make(chan struct{}), make(chan struct{})
	go func() { d.Serve(v, quit, func(err error) { t.Error(err) }); close(done) }()
	fired <- 8
	fired <- 11
	<-waits
	<-waits
	close(quit)
	<-done
	if len(s.got) != 4 {
		t.Fatalf("%d delivered, want 4", len(s.got))
	}
}
