package testguests

import (
	"encoding/binary"
	"fmt"

	"gohv/hv"
	"gohv/x86"
)

// Guest-physical layout the APIC guests add to Load's environment (free
// between Load's page directories, which end at 0xa000, and the stack).
const (
	APICHandlerBase = 0xa000 // the shared interrupt handler
	APICStubBase    = 0xc000 // 16 bytes per vector: PUSHQ $vector; JMP handler
	apicStubSize    = 16
	apicFirstVector = 16 // vectors 0-15 keep Load's gates: a LAPIC never delivers them
)

// APICClocks are the rates an APIC guest computes with, passed in
// registers: RSI the LAPIC timer's (before the divide configuration), RDI
// the guest TSC's.
type APICClocks struct {
	LAPICHz, TSCHz uint64
}

// LoadAPIC sets p up as Load does (the same long-mode environment), with
// an APIC test guest at CodeBase, the shared interrupt handler behind a
// stub and an interrupt gate for every vector from 16 up, a cleared data
// page in which the spurious vector (0xff) is not EOI'd (SDM Vol. 3A
// 11.9), and the clock rates in RSI and RDI.
func LoadAPIC(p *hv.Partition, prog APICProgram, c APICClocks) error {
	if prog == apicBlobHandler || prog == apicBlobSMPAP || prog == apicBlobSMPEntry {
		return fmt.Errorf("testguests: apic blob %d is not a program", prog)
	}
	if m := p.Mem.RAMSize(); m < APICRAMPage+0x1000 {
		return fmt.Errorf("testguests: partition %s needs at least %d MiB of RAM for an apic guest", p.Name, (APICRAMPage+0x1000+(1<<20)-1)>>20)
	}
	// Load's environment; its placeholder program is replaced below.
	if err := Load(p, Halt, Options{}); err != nil {
		return err
	}
	code, err := apicCode(prog)
	if err != nil {
		return err
	}
	handler, err := apicCode(apicBlobHandler)
	if err != nil {
		return err
	}
	if len(handler) > APICStubBase-APICHandlerBase {
		return fmt.Errorf("testguests: apic handler of %d bytes overlaps the stubs", len(handler))
	}
	m := p.Mem
	for _, w := range []struct {
		at uint64
		b  []byte
	}{
		{CodeBase, code},
		{APICHandlerBase, handler},
		{APICStubBase, apicStubs(APICStubBase, APICHandlerBase)},
		{APICData, make([]byte, apicLog)},
	} {
		if err := m.WriteRAM(w.at, w.b); err != nil {
			return err
		}
	}
	gates := make([]uint64, 0, 2*(256-apicFirstVector))
	for v := uint64(apicFirstVector); v < 256; v++ {
		g := x86.GateDescriptor64(APICStubBase+apicStubSize*v, SelCode, 0, x86.SegTypeIntGate|x86.SegP)
		gates = append(gates, g[0], g[1])
	}
	if err := writeU64s(m, IDTBase+16*apicFirstVector, gates); err != nil {
		return err
	}
	if err := SetAPICAction(m, 0xff, ActNoEOI); err != nil {
		return err
	}
	g := &p.VP(0).Regs().GPR
	g[x86.RSI], g[x86.RDI] = c.LAPICHz, c.TSCHz
	return nil
}

// StartAPIC is Start for an APIC guest: a partition from cfg with prog
// loaded by LoadAPIC, setup (if any) run, then started.
func StartAPIC(h *hv.Hypervisor, cfg hv.Config, prog APICProgram, c APICClocks, setup func(p *hv.Partition) error) (*hv.Partition, error) {
	return StartWith(h, cfg, func(p *hv.Partition) error { return LoadAPIC(p, prog, c) }, setup)
}

// apicStubs returns the stub page: for each vector v from 16, at
// base+16v, PUSHQ $v (68 imm32) and JMP rel32 to handler (E9), padded
// with INT3.
func apicStubs(base, handler uint64) []byte {
	b := make([]byte, 256*apicStubSize)
	for v := apicFirstVector; v < 256; v++ {
		s := b[v*apicStubSize : (v+1)*apicStubSize]
		for i := range s {
			s[i] = 0xcc
		}
		s[0] = 0x68
		binary.LittleEndian.PutUint32(s[1:], uint32(v))
		s[5] = 0xe9
		next := base + uint64(v*apicStubSize) + 10
		binary.LittleEndian.PutUint32(s[6:], uint32(int32(int64(handler)-int64(next))))
	}
	return b
}
