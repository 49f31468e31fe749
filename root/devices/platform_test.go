package devices

import (
	"encoding/binary"
	"testing"
	"time"

	"gohv/hv"
	"gohv/metal/acpi"
	"gohv/root/acpitables"
)

func TestRegisterPortMap(t *testing.T) {
	tp := newTestPlatform(t)
	want := []struct {
		base, n uint16
		dev     hv.PortDevice
	}{
		{0x60, 1, tp.I8042}, {0x61, 1, tp.PortB}, {0x64, 1, tp.I8042}, {0x70, 2, tp.RTC}, {0x80, 1, tp.POST},
		{0x600, 2, tp.Sleep}, {0xcf8, 8, tp.PCI},
	}
	if len(tp.bus.ranges) != len(want) {
		t.Fatalf("registered %d ranges, want %d", len(tp.bus.ranges), len(want))
	}
	for i, w := range want {
		if r := tp.bus.ranges[i]; r.base != w.base || r.n != w.n || r.dev != w.dev {
			t.Errorf("range %d: %#x+%d %T, want %#x+%d %T", i, r.base, r.n, r.dev, w.base, w.n, w.dev)
		}
	}
	// Nothing overlaps another range or the core's COM1 and debug exit.
	taken := map[uint16]bool{}
	for p := uint16(COM1Port); p < COM1Port+8; p++ {
		taken[p] = true
	}
	for p := uint16(hv.DebugExitPort); p < hv.DebugExitPort+4; p++ {
		taken[p] = true
	}
	for _, r := range tp.bus.ranges {
		for p := r.base; p < r.base+r.n; p++ {
			if taken[p] {
				t.Errorf("port %#x registered twice", p)
			}
			taken[p] = true
		}
	}
}

// TestTablesDescribeTheDevices builds the ACPI tables from ACPI(), reads
// them with metal's parser, and drives the devices at the ports the
// tables name, as a guest that knows only the tables would.
func TestTablesDescribeTheDevices(t *testing.T) {
	tp := newTestPlatform(t)
	tb, err := acpitables.Build(tp.ACPI(2), 0xe0000)
	if err != nil {
		t.Fatal(err)
	}
	rsdp, err := acpi.ParseRSDP(tb.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	all, err := acpi.Load(acpi.Region{Base: tb.Base, Data: tb.Bytes}, rsdp)
	if err != nil || len(all.Invalid) != 0 {
		t.Fatalf("%v %v", err, all.Invalid)
	}
	f, err := all.FADT()
	if err != nil {
		t.Fatal(err)
	}
	m, err := all.MADT()
	if err != nil {
		t.Fatal(err)
	}
	if len(m.IOAPICs) != 1 || m.IOAPICs[0].Address != hv.IOAPICBase || m.IOAPICs[0].ID != hv.IOAPICID || m.EnabledCPUs() != 2 {
		t.Errorf("MADT: %+v", m)
	}
	if gsi, _, _ := m.ISAIRQ(4); gsi != hv.COM1IRQ {
		t.Errorf("COM1's IRQ reaches GSI %d, the core drives pin %d", gsi, hv.COM1IRQ)
	}

	// The century byte the FADT names holds the century.
	tp.bus.out(RTCPort, 1, uint32(f.Century))
	if got := tp.bus.in(RTCPort+1, 1); got != 0x20 {
		t.Errorf("CMOS %#x (the FADT's century) = %#02x", f.Century, got)
	}

	// Power off the way Linux's acpi_hw_extended_sleep does, with \_S5.
	slpTyp, _, err := all.S5()
	if err != nil {
		t.Fatal(err)
	}
	status, _ := f.SleepStatus.IOPort()
	control, ok := f.SleepControl.IOPort()
	if !ok || f.SleepControl.BitWidth != 8 {
		t.Fatalf("sleep control %v", f.SleepControl)
	}
	tp.bus.out(status, 1, 0x80)
	tp.bus.out(control, 1, uint32(slpTyp)<<2&0x1c|0x20)
	if tp.poweri.n != 1 || tp.poweri.why != "ACPI S5" || tp.reboot.n != 0 {
		t.Errorf("S5: %d power-offs (%q), %d reboots", tp.poweri.n, tp.poweri.why, tp.reboot.n)
	}

	// Reset through the FADT's reset register (Linux's acpi_reboot).
	port, ok := f.ResetReg.IOPort()
	if !f.ResetSupported() || !ok || f.ResetReg.BitWidth != 8 {
		t.Fatalf("reset register %v", f.ResetReg)
	}
	tp.bus.out(port, 1, uint32(f.ResetValue))
	if tp.reboot.n != 1 || tp.reboot.why != WhyResetControl {
		t.Errorf("ACPI reset: %d reboots (%q)", tp.reboot.n, tp.reboot.why)
	}
	// And through the keyboard controller (Linux's reboot=k path).
	tp.bus.out(I8042CommandPort, 1, I8042CmdReset)
	if tp.reboot.n != 2 || tp.reboot.why != WhyI8042Reset {
		t.Errorf("i8042 reset: %d reboots (%q)", tp.reboot.n, tp.reboot.why)
	}

	// The DSDT's RTC and COM1 name the registered ports.
	d, _ := all.Find("DSDT")
	var io [2]byte
	binary.LittleEndian.PutUint16(io[:], RTCPort)
	if !contains(d.Data, []byte{0x47, 0x01, io[0], io[1], io[0], io[1], 0x01, RTCPorts}) {
		t.Error("DSDT has no IO descriptor for the RTC's ports")
	}
	if tp.bus.dev(RTCPort) != tp.RTC || tp.bus.dev(control) != tp.Sleep || tp.bus.dev(port) != tp.PCI {
		t.Error("a port the tables name is not served by its device")
	}
}

func contains(b, sub []byte) bool {
	for i := 0; i+len(sub) <= len(b); i++ {
		if string(b[i:i+len(sub)]) == string(sub) {
			return true
		}
	}
	return false
}

func TestInAndOutDoNotAllocate(t *testing.T) {
	tp := newTestPlatform(t)
	ports := tp.ports()
	for _, size := range []int{1, 2, 4} {
		allocs := testing.AllocsPerRun(10, func() {
			for _, p := range ports {
				tp.bus.out(p, size, 0x0606_0606)
				tp.bus.in(p, size)
			}
			// The writes that reach the callbacks and the clock.
			tp.bus.out(SleepControlPort, 1, 0x34)
			tp.bus.out(I8042CommandPort, 1, I8042CmdReset)
			tp.bus.out(ResetControlPort, 1, ResetValue)
			tp.bus.out(RTCPort, 1, rtcRegB)
			tp.bus.out(RTCPort+1, 1, regBSET)
			tp.bus.out(RTCPort, 1, rtcSeconds)
			tp.bus.out(RTCPort+1, 1, 0x30)
			tp.bus.out(RTCPort, 1, rtcRegB)
			tp.bus.out(RTCPort+1, 1, regB24)
			tp.bus.out(RTCPort, 1, rtcRegA)
			tp.bus.in(RTCPort+1, 1)
		})
		if allocs != 0 {
			t.Errorf("size %d: %v allocations per round", size, allocs)
		}
	}
	if tp.reboot.n == 0 || tp.poweri.n == 0 {
		t.Error("the callbacks were not reached")
	}
}

// FuzzPorts drives random IN and OUT accesses, of every size, at every
// port the devices decode and the ports beside them, with the host clock
// moving: nothing may panic, and reads must fit their width.
func FuzzPorts(f *testing.F) {
	f.Add([]byte{1, 0x0b, 1, 0x80, 1, 0x09, 1, 0x99, 0, 0x0b, 1})                // set the RTC
	f.Add([]byte{1, 0x10, 1, 0x34, 1, 0x05, 1, 0xfe})                            // S5, i8042 reset
	f.Add([]byte{1, 0x14, 4, 0x00, 0x00, 0x00, 0x80, 0, 0x15, 4, 1, 0x13, 1, 6}) // PCI, 0xCF9
	f.Add([]byte{1, 0x06, 1, 0xd1, 1, 0x02, 1, 0xde, 3, 0x00, 0xff, 0xff})       // 8042 output port
	f.Fuzz(func(t *testing.T, ops []byte) {
		tp := newTestPlatform(t)
		ports := tp.ports()
		sizes := [...]int{1, 2, 4, 3}
		for len(ops) >= 3 {
			op, port, size := ops[0], ports[int(ops[1])%len(ports)], sizes[ops[2]%4]
			ops = ops[3:]
			switch op % 4 {
			case 0:
				d := tp.bus.dev(port)
				if d == nil {
					continue
				}
				if v := d.In(port, size); size != 3 && v&^floating(size) != 0 {
					t.Fatalf("IN %#x/%d = %#x: wider than the access", port, size, v)
				}
			case 1:
				var v uint32
				for i := 0; i < 4 && len(ops) > 0; i++ {
					v |= uint32(ops[0]) << (8 * i)
					ops = ops[1:]
				}
				tp.bus.out(port, size, v)
			case 2:
				tp.clock.add(tpStep(op))
			case 3:
				tp.bus.out(RTCPort, 1, uint32(op)) // select a CMOS register
			}
		}
		tp.RTC.In(RTCPort+1, 1)
	})
}

// tpStep turns an op byte into a clock step from 0 to about a day.
func tpStep(op byte) (d time.Duration) { return time.Duration(op) * time.Duration(op) * 1_300_000_000 }
