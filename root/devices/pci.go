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
