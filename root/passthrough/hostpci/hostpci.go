// Package hostpci hands root/passthrough a host PCI function as metal/pci
// enumerated it: its requester ID, BARs and configuration space. The image
// (cmd/gohv) and the in-image checks both assign devices through it.
package hostpci

import (
	"gohv/metal/pci"
	"gohv/root/passthrough"
)

// Function is f, on the host's configuration space c, as passthrough.Assign
// takes it.
func Function(c pci.Config, f pci.Function) passthrough.Function {
	out := passthrough.Function{Name: f.Addr.String(), Source: uint16(f.Bus)<<8 | uint16(f.Dev)<<3 | uint16(f.Fn),
		Config: functionConfig{c, f.Addr}}
	for _, b := range f.BARs {
		out.BARs = append(out.BARs, passthrough.BAR{Index: b.Index, Base: b.Base, Size: b.Size, IO: b.IO, Is64: b.Is64, Pref: b.Prefetch})
	}
	return out
}

// functionConfig is one function's configuration space.
type functionConfig struct {
	c pci.Config
	a pci.Addr
}

func (f functionConfig) Read32(off uint16) uint32     { return f.c.Read32(f.a, off) }
func (f functionConfig) Write32(off uint16, v uint32) { f.c.Write32(f.a, off, v) }
