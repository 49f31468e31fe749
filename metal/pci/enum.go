package pci

import (
	"fmt"
	"strings"
)

// Function is one enumerated PCI function.
type Function struct {
	Addr
	Vendor, Device          uint16
	Class, Subclass, ProgIF uint8
	Revision                uint8
	HeaderType              uint8 // 0 device, 1 PCI-to-PCI bridge, 2 CardBus bridge (multi-function bit cleared)
	MultiFunction           bool
	BARs                    []BAR
	Caps                    []Cap
	Secondary, Subordinate  uint8 // bus numbers behind a bridge (header type 1)
}

// BAR is one implemented base address register.
type BAR struct {
	Index    int    // 0..5; a 64-bit BAR takes Index and Index+1
	IO       bool   // I/O space, else memory
	Is64     bool   // a 64-bit memory BAR
	Prefetch bool   // prefetchable memory
	Base     uint64 // the address it decodes at (as programmed)
	Size     uint64
}

// Cap is one entry of the capability list.
type Cap struct {
	ID  uint8
	Off uint8
}

// Capability IDs (PCI Code and ID Assignment, 2).
const (
	CapPM     = 0x01
	CapMSI    = 0x05
	CapVendor = 0x09
	CapSSVID  = 0x0d // a bridge's subsystem vendor ID
	CapPCIe   = 0x10
	CapMSIX   = 0x11
	CapSATA   = 0x12
)

// Name is the capability's short name in the boot report.
func (c Cap) Name() string {
	switch c.ID {
	case CapPM:
		return "pm"
	case CapMSI:
		return "msi"
	case CapVendor:
		return "vendor"
	case CapSSVID:
		return "ssvid"
	case CapPCIe:
		return "pcie"
	case CapMSIX:
		return "msix"
	case CapSATA:
		return "sata"
	}
	return fmt.Sprintf("cap%#02x", c.ID)
}

// Has reports whether the function has a capability with this ID.
func (f *Function) Has(id uint8) bool {
	for _, c := range f.Caps {
		if c.ID == id {
			return true
		}
	}
	return false
}

// Enumerate scans buses first..last, every device and (for a
// multi-function device) every function, and returns the functions in
// address order. Functions whose configuration space lies are left out,
// each with a message in skipped.
func Enumerate(c Config, first, last uint8) (fns []Function, skipped []string) {
	for bus := int(first); bus <= int(last); bus++ {
		for dev := uint8(0); dev < 32; dev++ {
			for fn := uint8(0); fn < 8; fn++ {
				a := Addr{uint8(bus), dev, fn}
				id := c.Read32(a, offVendor)
				if uint16(id) == 0xffff || uint16(id) == 0 {
					if fn == 0 {
						break // no function 0: no device
					}
					continue
				}
				f, err := probe(c, a, id)
				if err != nil {
					skipped = append(skipped, fmt.Sprintf("pci %v %04x:%04x skipped: %v", a, f.Vendor, f.Device, err))
				} else {
					fns = append(fns, f)
				}
				if fn == 0 && !f.MultiFunction {
					break
				}
			}
		}
	}
	return fns, skipped
}

// probe reads one present function. On error f still carries the IDs and
// header type.
func probe(c Config, a Addr, id uint32) (Function, error) {
	f := Function{Addr: a, Vendor: uint16(id), Device: uint16(id >> 16)}
	class := c.Read32(a, offClass)
	f.Revision, f.ProgIF, f.Subclass, f.Class = uint8(class), uint8(class>>8), uint8(class>>16), uint8(class>>24)
	ht := uint8(c.Read32(a, offHeader) >> 16)
	f.HeaderType, f.MultiFunction = ht&headerTypeMsk, ht&headerMulti != 0
	nbars := 0
	switch f.HeaderType {
	case 0:
		nbars = 6
	case 1:
		nbars = 2
		b := c.Read32(a, offBuses)
		f.Secondary, f.Subordinate = uint8(b>>8), uint8(b>>16)
	case 2:
		// CardBus: one BAR (the socket registers) and the capability
		// pointer at 0x14, not 0x34; report the IDs only.
		return f, nil
	default:
		return f, fmt.Errorf("header type %#x is not defined", f.HeaderType)
	}
	bars, err := sizeBARs(c, a, nbars)
	if err != nil {
		return f, err
	}
	f.BARs = bars
	caps, err := capabilities(c, a)
	if err != nil {
		return f, err
	}
	f.Caps = caps
	return f, nil
}

// sizeBARs sizes the first n BARs: with memory and I/O decoding off, each
// is written all ones and read back, then restored; the command register
// is restored last. The status half of the command dword is written as
// zero, which leaves its write-one-to-clear bits alone.
func sizeBARs(c Config, a Addr, n int) ([]BAR, error) {
	cmd := c.Read32(a, offCommand) & 0xffff
	c.Write32(a, offCommand, cmd&^(cmdIO|cmdMemory))
	defer c.Write32(a, offCommand, cmd)

	var bars []BAR
	var lie error
	for i := 0; i < n; i++ {
		off := uint16(offBAR0 + 4*i)
		orig := c.Read32(a, off)
		c.Write32(a, off, ^uint32(0))
		mask := c.Read32(a, off)
		c.Write32(a, off, orig)
		if orig&1 != 0 { // I/O
			m := mask &^ 3
			if m == 0 {
				continue // not implemented
			}
			if m>>16 == 0 {
				m |= 0xffff0000 // a 16-bit decoder: the upper bits read as zero
			}
			if !sizeValid(uint64(m) | 0xffffffff_00000000) {
				lie = fmt.Errorf("BAR%d (io) reads back %#x: the size is not a power of two", i, mask)
				continue
			}
			bars = append(bars, BAR{Index: i, IO: true, Base: uint64(orig &^ 3), Size: uint64(^m + 1)})
			continue
		}
		b := BAR{Index: i, Prefetch: orig&8 != 0, Base: uint64(orig &^ 0xf)}
		var m uint64
		switch orig >> 1 & 3 {
		case 0: // 32-bit
			if mask&^0xf == 0 {
				continue // not implemented
			}
			m = uint64(mask&^0xf) | 0xffffffff_00000000
		case 2: // 64-bit: the next BAR holds the upper half
			if i+1 >= n {
				lie = fmt.Errorf("BAR%d is 64-bit but the last BAR", i)
				continue
			}
			hiOff := off + 4
			hi := c.Read32(a, hiOff)
			c.Write32(a, hiOff, ^uint32(0))
			hiMask := c.Read32(a, hiOff)
			c.Write32(a, hiOff, hi)
			b.Is64, b.Base = true, b.Base|uint64(hi)<<32
			m = uint64(mask&^0xf) | uint64(hiMask)<<32
			i++
			if m == 0 {
				continue // not implemented
			}
		default:
			lie = fmt.Errorf("BAR%d has the reserved memory type %d", i, orig>>1&3)
			continue
		}
		if !sizeValid(m) {
			lie = fmt.Errorf("BAR%d reads back %#x: the size is not a power of two", b.Index, m)
			continue
		}
		b.Size = ^m + 1
		bars = append(bars, b)
	}
	return bars, lie
}

// sizeValid: a BAR's read-back mask (flag bits cleared) is ones from the
// top down to the size's bit, then zeros: its complement is one less than a
// power of two.
func sizeValid(m uint64) bool {
	inv := ^m
	return m != 0 && inv&(inv+1) == 0
}

// capabilities walks the capability list, if the status register says
// there is one.
func capabilities(c Config, a Addr) ([]Cap, error) {
	if c.Read32(a, offCommand)>>16&statusCapList == 0 {
		return nil, nil
	}
	var caps []Cap
	var seen [256]bool
	ptr := uint8(c.Read32(a, offCapPtr))
	for ptr != 0 {
		if ptr < capFirst {
			return caps, fmt.Errorf("capability pointer %#02x points into the header", ptr)
		}
		ptr &^= 3
		if seen[ptr] {
			return caps, fmt.Errorf("capability list loops back to %#02x", ptr)
		}
		if len(caps) == maxCaps {
			return caps, fmt.Errorf("capability list longer than %d entries", maxCaps)
		}
		seen[ptr] = true
		v := c.Read32(a, uint16(ptr))
		caps = append(caps, Cap{ID: uint8(v), Off: ptr})
		ptr = uint8(v >> 8)
	}
	return caps, nil
}

// String is the function's boot-report line (without the "gohv: " prefix):
//
//	pci 00:1f.2 8086:2922 class 01.06.01 bars mem32 0xfebd5000/4K io 0xc040/32 caps msi pcie
func (f *Function) String() string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "pci %v %04x:%04x class %02x.%02x.%02x", f.Addr, f.Vendor, f.Device, f.Class, f.Subclass, f.ProgIF)
	switch f.HeaderType {
	case 1:
		fmt.Fprintf(&sb, " bridge buses %02x-%02x", f.Secondary, f.Subordinate)
	case 2:
		sb.WriteString(" cardbus")
	}
	if len(f.BARs) > 0 {
		sb.WriteString(" bars")
		for _, b := range f.BARs {
			kind := "mem32"
			switch {
			case b.IO:
				kind = "io"
			case b.Is64:
				kind = "mem64"
			}
			if b.Prefetch {
				kind += "-pf"
			}
			fmt.Fprintf(&sb, " %s %#x/%s", kind, b.Base, sizeString(b.Size))
		}
	}
	if len(f.Caps) > 0 {
		sb.WriteString(" caps")
		for _, c := range f.Caps {
			sb.WriteString(" " + c.Name())
		}
	}
	return sb.String()
}

// sizeString is a power-of-two size in bytes, K, M, G or T.
func sizeString(n uint64) string {
	for _, u := range []string{"", "K", "M", "G", "T"} {
		if n < 1024 || n%1024 != 0 {
			return fmt.Sprintf("%d%s", n, u)
		}
		n /= 1024
	}
	return fmt.Sprintf("%dP", n)
}
