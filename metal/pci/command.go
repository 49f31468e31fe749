package pci

// Command register bits (PCI Local Bus 3.0, 6.2.2).
const (
	CommandIO        = cmdIO     // I/O space decoding
	CommandMemory    = cmdMemory // memory space decoding
	CommandBusMaster = 1 << 2    // the function may start DMA
)

// SetCommand is the one configuration write outside BAR sizing: it sets
// the bits set and clears the bits clear of function a's command register,
// writing zeros to the status register beside it (its error bits are
// write-one-to-clear), and returns the previous command value so the
// caller can put it back. Turning CommandBusMaster on lets the function
// DMA: only with an IOMMU blocking it, or for a device the caller drives.
func SetCommand(c Config, a Addr, set, clear uint16) (old uint16) {
	old = uint16(c.Read32(a, offCommand))
	c.Write32(a, offCommand, uint32(old&^clear|set))
	return old
}
