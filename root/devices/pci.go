package devices

import "sync"

// PCI configuration mechanism #1 and the reset control register that
// shares its ports on PC chipsets.
const (
	PCIConfigAddress = 0xcf8 // CONFIG_ADDRESS, 32-bit accesses only
	ResetControlPort = 0xcf9 // reset control register, 8-bit accesses
	PCIConfigData    = 0xcfc // CONFIG_DATA, 0xCFC-0xCFF
	PCIConfigPorts   = 8

	// pciAddressMask keeps what CONFIG_ADDRESS stores: the enable bit 31,
	// bus 23:16, device 15:11, function 10:8 and register 7:2; the
	// reserved bits 30:24 and 1:0 read 0.
	pciAddressMask = 0x80ff_fffc

	rcrSysRst  = 1 << 1 // hard reset (with RST_CPU); else an INIT-only soft reset
	rcrRstCPU  = 1 << 2 // writing 1 starts the reset; reads 0
	rcrFullRst = 1 << 3 // full reset: power cycle
	rcrStored  = rcrSysRst | rcrFullRst

	// ResetValue is what the FADT tells the guest to write to
	// ResetControlPort: SYS_RST | RST_CPU, a hard reset.
	ResetValue = rcrSysRst | rcrRstCPU
)

// The guest-physical window assigned functions' memory BARs live in
// (root/passthrough places and relocates them there): the memory window
// of the host bridge the DSDT describes when a partition has functions.
const (
	PCIWindowBase = 0xc000_0000
	PCIWindowTop  = 0xfec0_0000 // the I/O APIC's page and what follows are not PCI's
)

// PCIConfig is a host bridge's configuration ports with nothing behind
// them, and the reset control register at 0xCF9.
//
// CONFIG_ADDRESS (a 32-bit access at 0xCF8) stores what is written and
// reads it back, so a guest's mechanism #1 probe sees the register; every
// configuration read through CONFIG_DATA (0xCFC-0xCFF, any width) returns
// all ones, "no device", whatever the address, and writes are dropped.
// Linux then finds no PCI device ("No config space access function
// found") and goes on; gohv's devices are on VMBus. Other accesses to
// 0xCF8-0xCFB (bytes, words) are not configuration cycles on a PC and
// float: all ones, writes dropped.
//
// The reset control register (an 8-bit access at 0xCF9, Intel's RST_CNT)
// keeps bits 1 (SYS_RST) and 3 (FULL_RST); writing bit 2 (RST_CPU) resets
// the partition through the reboot callback, whatever bits 1 and 3 say:
// gohv has no INIT-only soft reset of a whole partition, and a guest that
// asks for one wants to restart. Bit 2 reads 0. The FADT names this
// register with the value 0x06.
type PCIConfig struct {
	mu      sync.Mutex
	address uint32
	rcr     uint8
	reboot  func(why string)
	fns     map[uint8]PCIFunction // bus 0 device → its function 0 (AddFunction)
}

// PCIFunction is one function's configuration space behind the ports: an
// assigned device (root/passthrough). reg is a dword's byte offset below
// 256; a write's mask selects the bytes written. Called on a VP's
// thread; guest-controlled values.
type PCIFunction interface {
	ReadConfig(reg uint8) uint32
	WriteConfig(reg uint8, v, mask uint32)
}

// AddFunction puts f at bus 0, device dev (below 32), function 0: reads
// and writes through CONFIG_DATA with CONFIG_ADDRESS's enable bit set
// reach it, at any width within the dword; every other address still
// reads "no device". Call before the partition starts.
func (c *PCIConfig) AddFunction(dev uint8, f PCIFunction) {
	if c.fns == nil {
		c.fns = map[uint8]PCIFunction{}
	}
	c.fns[dev&31] = f
}

// Functions is how many functions AddFunction put behind the ports.
func (c *PCIConfig) Functions() int { return len(c.fns) }

// function is the function CONFIG_ADDRESS selects and the byte within
// the dword that port starts at, if a size-byte access there stays in
// the dword and a function is there.
func (c *PCIConfig) function(port uint16, size int) (PCIFunction, uint8, uint, bool) {
	if port < PCIConfigData || int(port-PCIConfigData)+size > 4 {
		return nil, 0, 0, false
	}
	c.mu.Lock()
	a := c.address
	c.mu.Unlock()
	if a&0x8000_0000 == 0 || a>>16&0xff != 0 || a>>8&7 != 0 {
		return nil, 0, 0, false
	}
	f := c.fns[uint8(a>>11&31)]
	return f, uint8(a & 0xfc), uint(port-PCIConfigData) * 8, f != nil
}

// WhyResetControl is the reboot callback's argument for a write to 0xCF9.
const WhyResetControl = "reset control register 0xCF9"

// NewPCIConfig makes the ports; reboot (nil: none) is called, on the VP's
// thread and without the device's lock, when the guest resets through
// 0xCF9.
func NewPCIConfig(reboot func(why string)) *PCIConfig {
	return &PCIConfig{reboot: reboot}
}

// In reads CONFIG_ADDRESS, the reset control register, or floating
// ports. Called on a VP's thread; does not allocate.
func (c *PCIConfig) In(port uint16, size int) uint32 {
	if f, reg, shift, ok := c.function(port, size); ok {
		return f.ReadConfig(reg) >> shift & floating(size)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case port == PCIConfigAddress && size == 4:
		return c.address
	case port == ResetControlPort && size == 1:
		return uint32(c.rcr)
	}
	return floating(size)
}

// Out writes CONFIG_ADDRESS or the reset control register; everything
// else is dropped. Called on a VP's thread; does not allocate (the reboot
// callback is the caller's).
func (c *PCIConfig) Out(port uint16, size int, v uint32) {
	if f, reg, shift, ok := c.function(port, size); ok {
		f.WriteConfig(reg, v<<shift, floating(size)<<shift)
		return
	}
	reset := false
	c.mu.Lock()
	switch {
	case port == PCIConfigAddress && size == 4:
		c.address = v & pciAddressMask
	case port == ResetControlPort && size == 1:
		c.rcr = uint8(v) & rcrStored
		reset = v&rcrRstCPU != 0
	}
	c.mu.Unlock()
	if reset && c.reboot != nil {
		c.reboot(WhyResetControl)
	}
}
