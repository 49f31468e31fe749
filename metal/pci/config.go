package pci

import "fmt"

// Addr is a function's address in segment 0.
type Addr struct {
	Bus, Dev, Fn uint8 // Dev < 32, Fn < 8
}

// String is the usual bb:dd.f form, e.g. "00:1f.2".
func (a Addr) String() string { return fmt.Sprintf("%02x:%02x.%x", a.Bus, a.Dev, a.Fn) }

// Config is a PCI configuration space, read and written a dword at a time.
// off is a byte offset below 4096 (256 for the legacy ports), a multiple of
// 4. A read of an absent function returns all ones.
type Config interface {
	Read32(a Addr, off uint16) uint32
	Write32(a Addr, off uint16, v uint32)
}

// Configuration header offsets and bits (PCI Local Bus 3.0, 6.1 and 6.2).
const (
	offVendor     = 0x00 // vendor ID, device ID
	offCommand    = 0x04 // command (low 16), status (high 16)
	offClass      = 0x08 // revision, prog-if, subclass, class
	offHeader     = 0x0c // cache line, latency, header type (bits 23:16), BIST
	offBAR0       = 0x10
	offBuses      = 0x18 // type 1: primary, secondary, subordinate bus
	offCapPtr     = 0x34
	cmdIO         = 1 << 0
	cmdMemory     = 1 << 1
	statusCapList = 1 << 4 // in the status register
	headerMulti   = 0x80
	headerTypeMsk = 0x7f
	capFirst      = 0x40 // the first byte after the standard header
	maxCaps       = 48   // (256-64)/4: more entries than fit means a loop
)
