package devices

import "testing"

func TestPCIConfigAddressLatchesAndReadsBack(t *testing.T) {
	var rb calls
	c := NewPCIConfig(rb.f)
	// Linux's pci_check_type1: a byte to 0xCFB, save CONFIG_ADDRESS,
	// write 0x80000000, expect it back, then read devices and find none.
	c.Out(0xcfb, 1, 0x01)
	saved := c.In(PCIConfigAddress, 4)
	c.Out(PCIConfigAddress, 4, 0x8000_0000)
	if got := c.In(PCIConfigAddress, 4); got != 0x8000_0000 {
		t.Fatalf("CONFIG_ADDRESS reads %#x", got)
	}
	c.Out(PCIConfigAddress, 4, saved)
	// Reserved bits 30:24 and 1:0 read 0.
	c.Out(PCIConfigAddress, 4, 0xffff_ffff)
	if got := c.In(PCIConfigAddress, 4); got != 0x80ff_fffc {
		t.Errorf("CONFIG_ADDRESS after all ones: %#x", got)
	}
	if rb.n != 0 {
		t.Error("reboot from a config access")
	}
}

func TestPCIConfigDataIsNoDevice(t *testing.T) {
	c := NewPCIConfig(nil)
	for _, addr := range []uint32{0x8000_0000, 0x8000_0800, 0x80ff_fffc, 0} {
		c.Out(PCIConfigAddress, 4, addr)
		for port := uint16(PCIConfigData); port < PCIConfigData+4; port++ {
			for _, size := range []int{1, 2, 4} {
				c.Out(port, size, 0x1234_5678) // dropped
				if got := c.In(port, size); got != floating(size) {
					t.Errorf("address %#x: IN %#x/%d = %#x", addr, port, size, got)
				}
			}
		}
		if got := c.In(PCIConfigAddress, 4); got != addr&pciAddressMask {
			t.Errorf("a data access changed CONFIG_ADDRESS to %#x", got)
		}
	}
}

func TestPCIConfigNarrowAccessesToTheAddressFloat(t *testing.T) {
	c := NewPCIConfig(nil)
	c.Out(PCIConfigAddress, 4, 0x8000_1234&pciAddressMask)
	// PCI mechanism #2's probe writes and reads bytes at 0xCF8/0xCFA:
	// they are not configuration cycles and must not look like a
	// mechanism #2 bridge (which would read 0).
	c.Out(PCIConfigAddress, 1, 0)
	c.Out(0xcfa, 1, 0)
	if c.In(PCIConfigAddress, 1) != 0xff || c.In(0xcfa, 1) != 0xff || c.In(PCIConfigAddress, 2) != 0xffff {
		t.Error("narrow access to 0xCF8-0xCFB does not float")
	}
	if c.In(PCIConfigAddress, 4) != 0x8000_1234&pciAddressMask {
		t.Error("a narrow write changed CONFIG_ADDRESS")
	}
}

func TestResetControlRegister(t *testing.T) {
	for _, c := range []struct {
		write  uint8
		reboot bool
		read   uint8
	}{
		{0x00, false, 0x00},
		{0x02, false, 0x02}, // SYS_RST alone selects, does not reset
		{0x08, false, 0x08}, // FULL_RST alone
		{0x06, true, 0x02},  // what the FADT says: hard reset
		{0x04, true, 0x00},  // soft (INIT) reset: a reboot too
		{0x0e, true, 0x0a},  // Linux's reboot=p (full reset)
		{0xff, true, 0x0a},
		{0xf1, false, 0x00},
	} {
		var rb calls
		r := NewPCIConfig(rb.f)
		r.Out(ResetControlPort, 1, uint32(c.write))
		if (rb.n == 1) != c.reboot || rb.n > 1 || c.reboot && rb.why != WhyResetControl {
			t.Errorf("write %#02x: %d reboots (%q)", c.write, rb.n, rb.why)
		}
		if got := r.In(ResetControlPort, 1); got != uint32(c.read) {
			t.Errorf("write %#02x reads back %#02x, want %#02x", c.write, got, c.read)
		}
	}
	// Only a byte access reaches the register.
	var rb calls
	r := NewPCIConfig(rb.f)
	r.Out(ResetControlPort, 2, 0x0606)
	r.Out(ResetControlPort, 4, 0x0606_0606)
	if rb.n != 0 || r.In(ResetControlPort, 2) != 0xffff {
		t.Errorf("wide access at 0xCF9: %d reboots", rb.n)
	}
	// No callback: nothing happens.
	NewPCIConfig(nil).Out(ResetControlPort, 1, ResetValue)
}

// recordingFunction is a function's configuration space that remembers
// the last write.
type recordingFunction struct {
	reg     uint8
	v, mask uint32
}

func (r *recordingFunction) ReadConfig(reg uint8) uint32 { return 0x11e8_1234 + uint32(reg) }
func (r *recordingFunction) WriteConfig(reg uint8, v, mask uint32) {
	r.reg, r.v, r.mask = reg, v, mask
}

// TestPCIConfigReachesAddedFunction: bus 0 device 1 function 0 answers
// through CONFIG_DATA at every width and byte; other functions, buses and
// a disabled CONFIG_ADDRESS still read "no device"; a byte write reaches
// the function with its byte's mask.
func TestPCIConfigReachesAddedFunction(t *testing.T) {
	c := NewPCIConfig(nil)
	f := &recordingFunction{}
	c.AddFunction(1, f)
	c.Out(PCIConfigAddress, 4, 0x8000_0800)
	if v := c.In(PCIConfigData, 4); v != 0x11e8_1234 {
		t.Fatalf("dword %#x", v)
	}
	if v := c.In(PCIConfigData+2, 2); v != 0x11e8 {
		t.Fatalf("word at 2: %#x", v)
	}
	if v := c.In(PCIConfigData+1, 1); v != 0x12 {
		t.Fatalf("byte at 1: %#x", v)
	}
	c.Out(PCIConfigAddress, 4, 0x8000_0804)
	c.Out(PCIConfigData+1, 1, 0x5)
	if f.reg != 4 || f.v != 0x500 || f.mask != 0xff00 {
		t.Fatalf("byte write: %+v", f)
	}
	for _, a := range []uint32{0x0000_0800, 0x8000_0900, 0x8001_0800, 0x8000_1000} {
		c.Out(PCIConfigAddress, 4, a)
		if v := c.In(PCIConfigData, 4); v != 0xffff_ffff {
			t.Errorf("address %#x reads %#x", a, v)
		}
	}
}

// TestHostBridgeOnlyWithFunctions: the ACPI platform has a PCI host bridge
// over [PCIWindowBase, PCIWindowTop) once a function is behind the ports,
// and none before (a partition without assigned devices keeps its DSDT).
func TestHostBridgeOnlyWithFunctions(t *testing.T) {
	p := New(Config{})
	if h := p.ACPI(1).PCI; h != nil {
		t.Fatalf("host bridge %+v without functions", h)
	}
	p.PCI.AddFunction(1, &recordingFunction{})
	h := p.ACPI(1).PCI
	if h == nil || h.MMIOBase != PCIWindowBase || uint64(h.MMIOBase)+uint64(h.MMIOLength) != PCIWindowTop {
		t.Fatalf("host bridge %+v, want the window %#x-%#x", h, PCIWindowBase, PCIWindowTop)
	}
}
