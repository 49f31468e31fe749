// Package testguests holds the test guests built into the image: small 64-bit
// programs (blobs_amd64.s) that run in child partitions and check the
// hypervisor from the inside, the long-mode environment they start in, and
// a Multiboot test kernel.
package testguests

import (
	"encoding/binary"
	"fmt"

	"gohv/hv"
	"gohv/hv/vcpu"
	"gohv/x86"
)

// Declarations for vet: these are guest code, never called in the host.
func handlerGP()
func handlerUD()
func guestExits()
func guestPattern()
func guestTripleFault()
func guestSpin()
func guestHalt()
func guestHostile()
func guestBadCR3()
func guestHello()
func guestLoop()
func guestBadCR4()
func guestMMIO()
func handlerIRQ()
func guestInterrupts()

// Program names a test guest.
type Program int

const (
	blobHandlerGP Program = iota
	blobHandlerUD
	Exits       // CPUID, MSR, port I/O and hypercall round trips
	Pattern     // fill RAM with a pattern, optionally probe an address
	TripleFault // #UD without an IDT
	Spin        // an endless loop
	Halt        // CLI; HLT forever
	Hostile     // reserved bits, bad EFER, VMRUN, XSETBV
	BadCR3      // CR3 outside its RAM
	Hello       // print a string through COM1
	Loop        // benchmark loop
	BadCR4      // a reserved CR4 bit
	MMIO        // loads, stores and string ops on an MMIO range
	blobHandlerIRQ
	Interrupts // external interrupts: IF, the STI shadow, waking from HLT
	numBlobs
)

var endMarker = []byte{0x0f, 0x0b, 'G', 'o', 'H', 'v', 'E', 'n', 'D'}

// Guest-physical layout of the long-mode environment.
const (
	GDTBase    = 0x1000
	IDTBase    = 0x2000
	HandlerGP  = 0x3000
	HandlerUD  = 0x3800
	HandlerIRQ = 0x3c00
	PML4Base   = 0x4000 // PML4, PDPT at +0x1000, four PDs after it
	StackTop   = 0x80000
	CodeBase   = 0x100000
	DataBase   = 0x200000 // first byte a guest may use freely
	SelCode    = 0x08
	SelData    = 0x10
)

// Options for Load.
type Options struct {
	NoIDT bool // IDTR limit 0: any exception ends in a triple fault
}

// Load copies program into p's RAM with a long-mode environment (identity
// map of the first 4 GiB with 2 MiB pages, a flat GDT, an IDT whose #GP and
// #UD gates point at the in-line fault handlers) and sets VP 0 to start at
// CodeBase in 64-bit mode with RSP = StackTop.
func Load(p *hv.Partition, prog Program, o Options) error {
	m := p.Mem
	if m.RAMSize() < DataBase {
		return fmt.Errorf("testguests: partition %s needs at least %d MiB of RAM", p.Name, DataBase>>20)
	}
	gdt := []uint64{0,
		x86.SegmentDescriptor(0, 0xfffff, x86.SegTypeCodeXR|x86.SegS|x86.SegP|x86.SegL|x86.SegG),
		x86.SegmentDescriptor(0, 0xfffff, x86.SegTypeDataRW|x86.SegS|x86.SegP|x86.SegDB|x86.SegG)}
	if err := writeU64s(m, GDTBase, gdt); err != nil {
		return err
	}
	// Page tables: PML4[0] -> PDPT, PDPT[0..3] -> PDs, 2 MiB identity pages.
	const rw, ps = 0x3, 0x80
	pdpt := uint64(PML4Base + 0x1000)
	if err := writeU64s(m, PML4Base, []uint64{pdpt | rw}); err != nil {
		return err
	}
	for i := uint64(0); i < 4; i++ {
		pd := pdpt + 0x1000*(i+1)
		if err := writeU64s(m, pdpt+8*i, []uint64{pd | rw}); err != nil {
			return err
		}
		ents := make([]uint64, 512)
		for j := range ents {
			ents[j] = (i<<30 | uint64(j)<<21) | rw | ps
		}
		if err := writeU64s(m, pd, ents); err != nil {
			return err
		}
	}
	for _, h := range []struct {
		prog   Program
		at     uint64
		vector int
	}{{blobHandlerGP, HandlerGP, x86.VectorGP}, {blobHandlerUD, HandlerUD, x86.VectorUD},
		{blobHandlerIRQ, HandlerIRQ, 0x30}, {blobHandlerIRQ, HandlerIRQ, 0x31}} {
		c, err := code(h.prog)
		if err != nil {
			return err
		}
		if err := m.WriteRAM(h.at, c); err != nil {
			return err
		}
		// 64-bit interrupt gate: offset 15:0, selector, type 0xE present, offset 63:16.
		lo := h.at&0xffff | SelCode<<16 | 0x8e00<<32 | (h.at>>16&0xffff)<<48
		if err := writeU64s(m, IDTBase+16*uint64(h.vector), []uint64{lo, h.at >> 32}); err != nil {
			return err
		}
	}
	c, err := code(prog)
	if err != nil {
		return err
	}
	if err := m.WriteRAM(CodeBase, c); err != nil {
		return err
	}
	idtLimit := uint32(256*16 - 1)
	if o.NoIDT {
		idtLimit = 0
	}
	code64 := vcpu.Segment{Selector: SelCode, Attrib: x86.SegTypeCodeXRA | x86.SegS | x86.SegP | x86.SegL | x86.SegG, Limit: 0xffff_ffff}
	data := vcpu.Segment{Selector: SelData, Attrib: x86.SegTypeDataRWA | x86.SegS | x86.SegP | x86.SegDB | x86.SegG, Limit: 0xffff_ffff}
	r := vcpu.ResetRegs()
	r.RIP = CodeBase
	r.CR0 = x86.CR0PE | x86.CR0ET | x86.CR0NE | x86.CR0WP | x86.CR0PG
	r.CR3 = PML4Base
	r.CR4 = x86.CR4PAE | x86.CR4OSFXSR | x86.CR4OSXMMEXCPT
	r.EFER = x86.EFERLME | x86.EFERLMA
	r.CS, r.DS, r.ES, r.SS, r.FS, r.GS = code64, data, data, data, data, data
	r.TR = vcpu.Segment{Attrib: x86.SegTypeTSSBusy | x86.SegP, Limit: 0x67}
	r.GDTR = vcpu.DescTable{Base: GDTBase, Limit: uint32(8*len(gdt) - 1)}
	r.IDTR = vcpu.DescTable{Base: IDTBase, Limit: idtLimit}
	r.GPR[x86.RSP] = StackTop
	p.VP(0).SetState(r)
	return nil
}

// Start creates a partition from c, loads prog into it, runs setup (if
// any) and starts it. A partition whose setup failed is released before
// the error is returned.
func Start(h *hv.Hypervisor, c hv.Config, prog Program, o Options, setup func(p *hv.Partition) error) (*hv.Partition, error) {
	return StartWith(h, c, func(p *hv.Partition) error { return Load(p, prog, o) }, setup)
}

// StartWith creates a partition from c, runs load and then setup (if any)
// on it, and starts it: what Start, StartAPIC and StartHyperV share, for
// a guest loaded another way. A partition whose loading or setup failed
// is released before the error is returned.
func StartWith(h *hv.Hypervisor, c hv.Config, load, setup func(p *hv.Partition) error) (*hv.Partition, error) {
	p, err := h.NewPartition(c)
	if err != nil {
		return nil, err
	}
	err = load(p)
	if err == nil && setup != nil {
		err = setup(p)
	}
	if err != nil {
		p.Destroy()
		return nil, err
	}
	p.Start()
	return p, nil
}

func writeU64s(m *hv.GuestMemory, gpa uint64, v []uint64) error {
	b := make([]byte, 8*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint64(b[8*i:], x)
	}
	return m.WriteRAM(gpa, b)
}
