package devices

// How an access wider than a byte reaches byte-wide registers: as on the
// ISA bus, a 16- or 32-bit IN or OUT is that many 8-bit cycles to
// consecutive ports, lowest port (least significant byte) first. Bytes
// that fall on ports a device does not decode float high.

// floating is what a read returns where nothing drives the bus: all ones
// in an access of size bytes. Sizes other than 1, 2 or 4 (the core never
// passes them) read as a 32-bit access.
func floating(size int) uint32 {
	if !validSize(size) {
		return 0xffff_ffff
	}
	return 0xffff_ffff >> (32 - 8*size)
}

func validSize(size int) bool { return size == 1 || size == 2 || size == 4 }

// byteRegs is a device of byte registers at ports [base, base+n).
// Callers hold whatever lock the device needs.
type byteRegs interface {
	inb(off uint16) uint8
	outb(off uint16, v uint8)
}

// splitIn reads size bytes from port, each from the device when it
// decodes that port.
func splitIn(d byteRegs, base, n, port uint16, size int) uint32 {
	if !validSize(size) {
		return floating(size)
	}
	var v uint32
	for i := 0; i < size; i++ {
		p := port + uint16(i)
		b := uint8(0xff)
		if p-base < n {
			b = d.inb(p - base)
		}
		v |= uint32(b) << (8 * i)
	}
	return v
}

// splitOut writes size bytes of v to port, each to the device when it
// decodes that port.
func splitOut(d byteRegs, base, n, port uint16, size int, v uint32) {
	if !validSize(size) {
		return
	}
	for i := 0; i < size; i++ {
		if p := port + uint16(i); p-base < n {
			d.outb(p-base, uint8(v>>(8*i)))
		}
	}
}
