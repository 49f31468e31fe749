package metal

import (
	"fmt"
	"sync/atomic"

	"gohv/x86"
)

// MMIO is a device's register window, reached through the identity map of
// the low 4 GiB (memory.go), which is where firmware places the DMAR
// units' registers, the local and I/O APICs and 32-bit PCI BARs. Reads
// are single loads and writes single stores of the register's width (no
// read-modify-write, no merging); an offset outside the window is a bug in
// the caller and panics. The identity map is write-back: the firmware's
// MTRRs make MMIO ranges uncacheable, as for the local APIC.
type MMIO struct {
	Base, Size uint64
}

// MapMMIO returns the window of size bytes at physical address pa, or an
// error when the identity map does not reach all of it.
func MapMMIO(pa, size uint64) (MMIO, error) {
	if pa < nullGuard || size == 0 || pa+size < pa || pa+size > identityEnd {
		return MMIO{}, fmt.Errorf("metal: MMIO %#x+%#x is outside the identity map [%#x, %#x)", pa, size, nullGuard, identityEnd)
	}
	return MMIO{Base: pa, Size: size}, nil
}

func (m MMIO) addr(off uint32, width uint64) uintptr {
	if uint64(off)+width > m.Size || uint64(off)%width != 0 {
		panic(fmt.Sprintf("metal: MMIO access of %d bytes at %#x outside the window %#x+%#x or unaligned", width, off, m.Base, m.Size))
	}
	return uintptr(m.Base + uint64(off))
}

// Read32 reads the 32-bit register at byte offset off.
func (m MMIO) Read32(off uint32) uint32 { return atomic.LoadUint32((*uint32)(x86.Ptr(m.addr(off, 4)))) }

// Read64 reads the 64-bit register at byte offset off.
func (m MMIO) Read64(off uint32) uint64 { return atomic.LoadUint64((*uint64)(x86.Ptr(m.addr(off, 8)))) }

// Write32 writes the 32-bit register at byte offset off.
func (m MMIO) Write32(off uint32, v uint32) { *(*uint32)(x86.Ptr(m.addr(off, 4))) = v }

// Write64 writes the 64-bit register at byte offset off.
func (m MMIO) Write64(off uint32, v uint64) { *(*uint64)(x86.Ptr(m.addr(off, 8))) = v }

// FlushPage writes the page at physical address pa (which the caller owns,
// AllocPage) back from the CPU's caches to memory, for a device that reads
// it without snooping them (a VT-d unit whose ECAP_REG.C is clear).
func FlushPage(pa uint64) {
	va := uintptr(physmapBase + pa&^(pageSize-1))
	x86.MFENCE()
	for off := uintptr(0); off < pageSize; off += 64 {
		x86.CLFLUSH(va + off)
	}
	x86.MFENCE()
}
