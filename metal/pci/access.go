package pci

import (
	"gohv/x86"
)

// identityEnd is the top of the identity map metal keeps for MMIO
// (metal/memory.go): an ECAM window must lie below it to be reachable.
const identityEnd = 4 << 30

// ECAM is the enhanced configuration access mechanism: bus b's 1 MiB of
// configuration space at Base + b<<20, for buses StartBus..EndBus. Reads
// of a bus outside the range return all ones and writes are dropped.
type ECAM struct {
	Base             uint64
	StartBus, EndBus uint8
}

// Usable reports whether metal's identity map reaches the whole window.
func (e ECAM) Usable() bool {
	return e.StartBus <= e.EndBus && e.Base != 0 && e.Base+(uint64(e.EndBus)+1)<<20 <= identityEnd
}

func (e ECAM) reg(a Addr, off uint16) *uint32 {
	if a.Bus < e.StartBus || a.Bus > e.EndBus || !e.Usable() {
		return nil
	}
	pa := e.Base + uint64(a.Bus)<<20 | uint64(a.Dev&31)<<15 | uint64(a.Fn&7)<<12 | uint64(off&0xffc)
	return (*uint32)(x86.Ptr(uintptr(pa)))
}

// Read32 reads a dword of configuration space.
func (e ECAM) Read32(a Addr, off uint16) uint32 {
	if p := e.reg(a, off); p != nil {
		return *p
	}
	return ^uint32(0)
}

// Write32 writes a dword of configuration space.
func (e ECAM) Write32(a Addr, off uint16, v uint32) {
	if p := e.reg(a, off); p != nil {
		*p = v
	}
}

// Legacy configuration mechanism #1: an address written to port 0xCF8
// (enable bit 31, bus 23:16, device 15:11, function 10:8, register 7:2)
// selects the dword read or written at port 0xCFC. Only the first 256
// bytes of each function are reachable. Not safe for concurrent use; the
// boot report is its only user.
type Ports struct{}

const (
	portAddress = 0xcf8
	portData    = 0xcfc
)

func portAddr(a Addr, off uint16) uint32 {
	return 1<<31 | uint32(a.Bus)<<16 | uint32(a.Dev&31)<<11 | uint32(a.Fn&7)<<8 | uint32(off&0xfc)
}

// Read32 reads a dword of configuration space.
func (Ports) Read32(a Addr, off uint16) uint32 {
	if off >= 256 {
		return ^uint32(0)
	}
	x86.OUTL(portAddress, portAddr(a, off))
	return x86.INL(portData)
}

// Write32 writes a dword of configuration space.
func (Ports) Write32(a Addr, off uint16, v uint32) {
	if off >= 256 {
		return
	}
	x86.OUTL(portAddress, portAddr(a, off))
	x86.OUTL(portData, v)
}
